"""Review evidence in the storage contract, on both backends: enrolled face crops kept with their
templates and destroyed with the subject; a probe's crop kept apart and deleted on demand."""

from __future__ import annotations

import pytest
from storehelp import MODEL, sha, unit_vectors

from faceledger.errors import NotFoundError
from faceledger.store import NewTemplate, Store

CROP = b"\xff\xd8\xff\xe0 an enrolled face crop " + bytes(range(256))
PROBE = b"\xff\xd8\xff\xe0 a probe face crop " + bytes(range(255, -1, -1))


def test_a_template_keeps_its_face_crop_and_loses_it_with_the_subject(store: Store) -> None:
    from storehelp import settings

    v = unit_vectors(2, 7)
    with store.transaction() as tx:
        tx.create_gallery("staff", settings())
        s = tx.add_subject("staff", "ann")
        with_crop = tx.add_template(s.id, NewTemplate(v[0], MODEL, sha("a1"), crop=CROP))
        without = tx.add_template(s.id, NewTemplate(v[1], MODEL, sha("a2")))
    assert store.get_crop(with_crop.id) == CROP and store.get_crop(without.id) is None
    with store.transaction() as tx:
        tx.remove_subject(s.id)
    for tid in (with_crop.id, without.id):
        with pytest.raises(NotFoundError):
            store.get_crop(tid)


def test_probe_evidence_is_kept_apart_deleted_on_demand_and_rolled_back_with_its_transaction(store: Store) -> None:
    with store.transaction() as tx:
        tx.put_evidence("lead-1", PROBE)
        tx.put_evidence("lead-2", b"other")
    assert store.get_evidence("lead-1") == PROBE and store.get_evidence("nope") is None
    with pytest.raises(RuntimeError), store.transaction() as tx:
        tx.put_evidence("lead-3", b"rolled back")
        assert tx.delete_evidence("lead-2")
        raise RuntimeError("stop")
    assert store.get_evidence("lead-3") is None and store.get_evidence("lead-2") == b"other"
    with store.transaction() as tx:
        assert tx.delete_evidence("lead-1") and not tx.delete_evidence("lead-1")
    assert store.get_evidence("lead-1") is None and store.get_evidence("lead-2") == b"other"


def test_on_sqlite_crops_and_evidence_are_encrypted_and_gone_from_the_file_after_deletion(store: Store,
                                                                                         store_url: str) -> None:
    if store.backend != "sqlite":
        pytest.skip("PostgreSQL keeps crops like its templates: protected by the server's storage encryption")
    from pathlib import Path

    from storehelp import settings

    path = Path(store_url.removeprefix("sqlite://"))
    v = unit_vectors(1, 3)
    with store.transaction() as tx:
        tx.create_gallery("staff", settings())
        s = tx.add_subject("staff", "ann")
        t = tx.add_template(s.id, NewTemplate(v[0], MODEL, sha("a1"), crop=CROP))
        tx.put_evidence("lead-1", PROBE)
    store.checkpoint()
    raw = path.read_bytes()
    assert CROP[20:80] not in raw and PROBE[20:80] not in raw  # only ciphertext is written
    with store.transaction() as tx:
        tx.delete_evidence("lead-1")
        tx.remove_subject(s.id)
    store.close()
    from faceledger.store import open_store

    again = open_store(store_url)
    try:
        assert again.get_evidence("lead-1") is None
        with pytest.raises(NotFoundError):
            again.get_crop(t.id)
    finally:
        again.close()
