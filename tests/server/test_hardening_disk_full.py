"""A full store answers 507 ``storage_full`` with ``Retry-After``, names no file, and writes nothing;
the same request succeeds once space is freed (issue 14; the store-level proof is in
tests/store/test_disk_full.py)."""

from __future__ import annotations

from .apihelp import Api, problem


def test_a_full_store_answers_507_and_recovers(make_server):
    server = make_server()
    server.add_key("enroller", "carl", "enroller")
    api = Api(server)
    gallery = api.gallery("full")
    db = server.service.gov.store._db           # fault injection: SQLite's own limit on the file's size
    head = server.head()
    db.execute(f"PRAGMA max_page_count = {db.execute('PRAGMA page_count').fetchone()[0]}")
    try:
        refused = [api.consent(gallery, f"s-{i}") for i in range(40)]
        full = [r for r in refused if r.status_code != 201]
        assert full, "the store never filled up"
        body = problem(full[0], 507, "storage_full")
        assert full[0].headers["retry-after"] and "nothing of this request was written" in body["detail"]
        assert str(server.data_dir) not in full[0].text and ".db" not in full[0].text
        written = sum(r.status_code == 201 for r in refused)
        assert len([e for e in server.ledger(head) if e.operation == "consent_record" and e.outcome == "ok"]) \
            == written
    finally:
        db.execute("PRAGMA max_page_count = 1073741823")
    assert api.consent(gallery, "after").status_code == 201
    verify = api.post("admin", "/v1/ledger/verify")
    assert verify.status_code == 200 and verify.json()["ok"]

