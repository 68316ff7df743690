"""The ledger over HTTP (verify, export, checkpoints, tampering found), usage reports, retention."""

from __future__ import annotations

import json
import sqlite3

from .apihelp import entries, problem


def test_ledger_verify_is_intact_and_ledgered(api, server):
    seq = server.head()
    r = api.post("auditor", "/v1/ledger/verify", json={"checkpoints": False})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["ok"] is True and body["problems"] == [] and body["checked"] >= seq
    assert "intact" in body["summary"]
    (e,) = entries(server, seq, "ledger_verify")
    assert (e.actor, e.outcome, e.result["intact"]) == ("aud", "ok", True)
    problem(api.post("enroller", "/v1/ledger/verify"), 403, "permission_denied")


def test_checkpoint_then_verify_against_it(api, server):
    problem(api.post("auditor", "/v1/ledger/checkpoints"), 403, "permission_denied")
    r = api.post("admin", "/v1/ledger/checkpoints")
    assert r.status_code == 201, r.text
    cp = r.json()
    assert cp["format"] == "faceledger-checkpoint/1" and len(cp["signature"]) == 128
    assert (server.data_dir / "checkpoints" / cp["file"]).is_file()
    v = api.post("auditor", "/v1/ledger/verify").json()        # checkpoints are used by default
    assert v["ok"] and v["checkpoints"] >= 1


def test_ledger_export_is_json_lines_without_biometric_data(api, server):
    seq = server.head()
    r = api.get("auditor", "/v1/ledger/export")
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/x-ndjson")
    lines = [json.loads(x) for x in r.text.splitlines()]
    assert [x["seq"] for x in lines] == list(range(1, seq + 1))
    assert all(set(x) >= {"hash", "prev_hash", "operation", "actor"} for x in lines)
    tail = api.get("auditor", "/v1/ledger/export", params={"start_seq": seq})
    assert [json.loads(x)["seq"] for x in tail.text.splitlines()] == [seq, seq + 1]  # + the first export
    assert [e.operation for e in entries(server, seq, "ledger_export")] == ["ledger_export", "ledger_export"]
    problem(api.get("admin", "/v1/ledger/export"), 403, "permission_denied")
    problem(api.get("auditor", "/v1/ledger/export", params={"start_seq": 0}), 422, "validation_error")
    assert not list(server.data_dir.glob(".ledger-export-*"))


def test_tampering_is_found_through_the_api(make_server):
    s = make_server()
    h = s.headers("admin")
    assert s.client.post("/v1/galleries", headers=h, json={"name": "t1"}).status_code == 201
    assert s.client.post("/v1/galleries", headers=h, json={"name": "t2"}).status_code == 201
    db = sqlite3.connect(s.data_dir / "faceledger.db")
    fields = json.loads(db.execute("SELECT fields FROM ledger WHERE seq = 3").fetchone()[0])
    fields["actor"] = "someone-else"
    db.execute("UPDATE ledger SET fields = ? WHERE seq = 3", (json.dumps(fields, sort_keys=True),))
    db.commit()
    db.close()
    body = s.client.post("/v1/ledger/verify", headers=h).json()
    assert body["ok"] is False and body["problems"][0]["seq"] == 3 and "NOT intact" in body["summary"]


def test_usage_report_json_and_markdown(api, server):
    seq = server.head()
    r = api.get("auditor", "/v1/reports/usage")
    assert r.status_code == 200, r.text
    report = r.json()
    assert report["entries"] >= seq - 1 and report["organisation"] == "Test Org"
    assert report["by_operation"]["key_change"] >= 1
    md = api.get("auditor", "/v1/reports/usage", params={"from": "2020-01-01", "to": "2100-01-01",
                                                         "format": "markdown"})
    assert md.status_code == 200 and md.headers["content-type"].startswith("text/markdown") and "|" in md.text
    assert [e.outcome for e in entries(server, seq, "report")] == ["ok", "ok"]
    problem(api.get("auditor", "/v1/reports/usage", params={"from": "yesterday"}), 422, "invalid_input")
    problem(api.get("auditor", "/v1/reports/usage", params={"format": "pdf"}), 422, "validation_error")
    problem(api.get("enroller", "/v1/reports/usage"), 403, "permission_denied")


def test_retention_dry_run_and_run(api, server, photos):
    gallery = api.gallery("ret")
    assert api.consent(gallery, "Aaron_Peirsol").status_code == 201
    assert api.enroll(gallery, "Aaron_Peirsol", [photos.lfw_photo("Aaron_Peirsol", 1)]).status_code == 201
    assert api.post("enroller", f"/v1/galleries/{gallery}/consents/withdraw",
                    json={"subject_ref": "Aaron_Peirsol"}).status_code == 200
    seq = server.head()
    dry = api.post("admin", "/v1/retention/run", json={"dry_run": True})
    assert dry.status_code == 200 and dry.json()["dry_run"] is True and dry.json()["kept"] >= 0
    run = api.post("admin", "/v1/retention/run")
    assert run.status_code == 200 and run.json()["dry_run"] is False
    assert [e.result["dry_run"] for e in entries(server, seq, "retention_run")] == [True, False]
    problem(api.post("enroller", "/v1/retention/run", json={"dry_run": True}), 403, "permission_denied")


def test_policy_change_and_training_over_http(make_server):
    from .conftest import POLICY

    srv = make_server()
    for name, role in (("admin2", "admin"), ("aud", "auditor"), ("inv", "investigator")):
        srv.add_key(name, name, role)
    c = srv.client
    shown = c.get("/v1/policy", headers=srv.headers("aud"))
    assert shown.status_code == 200, shown.text
    assert c.put("/v1/policy", headers=srv.headers("inv"), json={"toml": POLICY}).status_code == 403
    broken = c.put("/v1/policy", headers=srv.headers("admin2"), json={"toml": "[limits\n"})
    assert broken.status_code == 422 and broken.json()["code"] == "invalid_input"
    bad = c.put("/v1/policy", headers=srv.headers("admin2"), json={"toml": "[review]\nrequired_reviewers = 9\n"})
    assert bad.status_code == 422 and "review.required_reviewers" in bad.json()["detail"]
    new = POLICY + "\n[training]\nrequired_for = [\"reviewer\"]\n"
    r = c.put("/v1/policy", headers=srv.headers("admin2"), json={"toml": new})
    assert r.status_code == 200, r.text
    assert r.json()["policy"]["training"]["required_for"] == ["reviewer"]
    assert r.json()["digest"] != shown.json()["digest"]
    t = c.post("/v1/trainings", headers=srv.headers("admin2"), json={"person": "rita", "course": "FRT 101"})
    assert t.status_code == 201 and t.json()["actor"] == "rita"
    assert [x["actor"] for x in c.get("/v1/trainings", headers=srv.headers("aud")).json()] == ["rita"]
    changes = [e for e in srv.ledger() if e.operation == "policy_change" and e.actor in ("admin2", "inv")]
    assert [e.outcome for e in changes] == ["refused", "error", "error", "ok"]
    assert changes[-1].result["changes"] == [{"key": "training.required_for", "old": [], "new": ["reviewer"]}]
