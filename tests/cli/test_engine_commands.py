"""The governance commands end to end through the CLI, on a real store and real photos."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from typer.testing import CliRunner

from faceledger.cli.main import app

runner = CliRunner()

POLICY = """
[purposes]
allowed = ["access_control", "investigation"]
[identification]
enabled = true
[operators]
root = ["admin", "enroller", "investigator", "reviewer", "auditor"]
"""


def fl(role: str, *args: object, env: dict[str, str] | None = None):
    """The CLI as the OS user running the tests (root), in ``role``."""
    return runner.invoke(app, ["--role", role, *[str(a) for a in args]], env=env)


def test_full_workflow(lfw: Path, data_dir: Path, tmp_path: Path):
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / "policy.toml").write_text(POLICY)
    a1, a2, a3 = (lfw / "Aaron_Peirsol" / f"Aaron_Peirsol_000{i}.jpg" for i in (1, 2, 3))

    assert fl("admin", "gallery", "create", "staff").exit_code == 0
    r = fl("enroller", "enroll", "staff", "aaron", a1, a2)
    assert r.exit_code == 6 and "consent_required" in r.output
    r = fl("enroller", "consent", "record", "staff", "aaron", "--purpose", "access_control",
           "--notice-version", "v1", "--method", "signed_form")
    assert r.exit_code == 0, r.output
    r = fl("enroller", "enroll", "staff", "aaron", a1, a2)
    assert r.exit_code == 0 and "2 template(s) added" in r.output

    r = fl("investigator", "identify", "staff", a3, "--purpose", "investigation")
    assert r.exit_code == 6 and "authorization_required" in r.output
    r = fl("admin", "authorization", "record", "--kind", "court_order", "--reference", "CASE-9",
           "--issuer", "Court", "--gallery", "staff", "--purpose", "investigation")
    assert r.exit_code == 0, r.output
    r = fl("investigator", "identify", "staff", a3, "--purpose", "investigation", "--flag", "protest")
    assert r.exit_code == 6 and "prohibited_use" in r.output
    r = fl("investigator", "identify", "staff", a3, "--purpose", "investigation", "--json")
    assert r.exit_code == 0, r.output
    result = json.loads(r.output)
    lead = result["faces"][0]["lead_id"]
    assert result["faces"][0]["candidates"][0]["subject_ref"] == "aaron"
    assert result["label"] == "not a basis for action on its own"

    pending = json.loads(fl("reviewer", "review", "list").output)
    assert [x["id"] for x in pending] == [lead]
    r = fl("investigator", "review", "decide", lead, "confirmed", "--rationale", "mine", "--subject", "aaron")
    assert r.exit_code == 6
    # the searcher (OS user root) holds the reviewer role too, but may not review their own lead ...
    r = fl("reviewer", "review", "decide", lead, "confirmed", "--rationale", "ears", "--subject", "aaron")
    assert r.exit_code == 6 and "self_review" in r.output
    # ... and cannot get around it by typing another name
    r = runner.invoke(app, ["--actor", "someone-else", "--role", "reviewer", "review", "decide", lead, "confirmed",
                            "--rationale", "ears", "--subject", "aaron"])
    assert r.exit_code == 6 and "acting as 'someone-else' is refused: this is 'root' (os:root)" in r.output
    # another person reviews: here with their own API key (the ledger names the key and the OS user)
    created = fl("admin", "key", "create", "rita", "reviewer", "--json")
    assert created.exit_code == 0, created.output
    rita = json.loads(created.output)
    # the reviewer sees the probe's face beside the enrolled one, with the score, before deciding
    shown = tmp_path / "evidence.jpg"
    r = fl("reviewer", "review", "show", lead, "--out", shown, env={"FACELEDGER_API_KEY": rita["token"]})
    assert r.exit_code == 0 and "#1 aaron  score" in r.output, r.output
    assert shown.read_bytes()[:3] == b"\xff\xd8\xff" and (shown.stat().st_mode & 0o077) == 0
    r = fl("reviewer", "review", "show", lead, "--out", shown, env={"FACELEDGER_API_KEY": rita["token"]})
    assert r.exit_code == 2 and "exists" in r.output  # never over an existing file
    r = fl("reviewer", "review", "decide", lead, "confirmed", "--rationale", "ears", "--subject", "aaron",
           env={"FACELEDGER_API_KEY": rita["token"]})
    assert r.exit_code == 0 and "confirmed" in r.output
    entries = ledger_entries(data_dir)
    reviews = [(e.actor, e.credential, e.outcome) for e in entries if e.operation == "review"]
    assert reviews == [("root", "os:root", "refused"), ("root", "os:root", "refused"),
                       ("rita", f"key:{rita['key_id']} os:root", "ok")]
    assert {e.credential for e in entries if e.operation == "identify"} == {"os:root"}
    (claim,) = [e for e in entries if e.operation == "sign_in"]
    assert (claim.actor, claim.role, claim.outcome, claim.result["reason"]) == ("root", "reviewer", "refused",
                                                                              "impersonation")

    assert fl("auditor", "ledger", "verify").exit_code == 0
    report = fl("auditor", "report", "usage", "--json")
    assert report.exit_code == 0 and json.loads(report.output)
    export = fl("admin", "subject", "export", "staff", "aaron")
    assert export.exit_code == 0 and json.loads(export.output)["subject_ref"] == "aaron"
    assert "would erase 0 subject(s); 1 kept" in fl("admin", "retention", "run", "--dry-run").output

    r = fl("admin", "subject", "remove", "staff", "aaron")
    assert r.exit_code == 0 and "2 template(s)" in r.output
    assert fl("enroller", "subject", "list", "staff", "--json").output.strip() == "[]"

    key, pub = tmp_path / "cp.key", tmp_path / "cp.pub"
    assert fl("admin", "ledger", "keygen", key, pub).exit_code == 0
    assert fl("admin", "ledger", "checkpoint", "--key", key, "--out", tmp_path / "cp.json").exit_code == 0
    ok = fl("auditor", "ledger", "verify", "--checkpoint", tmp_path / "cp.json", "--public-key", pub)
    assert ok.exit_code == 0, ok.output

    db = sqlite3.connect(data_dir / "faceledger.db")
    db.execute("DELETE FROM ledger WHERE seq = 5")
    db.commit()
    db.close()
    broken = fl("auditor", "ledger", "verify")
    assert broken.exit_code == 1 and "NOT intact" in broken.output and "5" in broken.output


def ledger_entries(data_dir: Path):
    from faceledger.governance.ledger import LedgerEntry
    from faceledger.store import open_store

    store = open_store(f"sqlite:///{data_dir / 'faceledger.db'}")
    try:
        return [LedgerEntry.from_row(r) for r in store.iter_ledger()]
    finally:
        store.close()


def test_role_is_required_for_governance_commands_when_several_are_held(data_dir: Path):
    import getpass

    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / "policy.toml").write_text(f'[operators]\n{getpass.getuser()} = ["enroller", "reviewer"]\n')
    r = runner.invoke(app, ["gallery", "list"])          # its natural role (admin) is not held; two others are
    assert r.exit_code == 2 and "several roles" in r.output and "--role" in r.output


def test_unknown_gallery_and_role(lfw: Path):
    r = fl("enroller", "enroll", "nope", "x", lfw / "Aaron_Peirsol" / "Aaron_Peirsol_0001.jpg")
    assert r.exit_code == 7
    r = runner.invoke(app, ["--role", "wizard", "gallery", "list"])
    assert r.exit_code == 2


def test_gallery_set_model_needs_yes_then_empties_the_gallery(lfw: Path, data_dir: Path):
    import pytest

    pytest.importorskip("dlib", reason="the dlib extra is needed for a second model")
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / "policy.toml").write_text(POLICY)
    a1 = lfw / "Aaron_Peirsol" / "Aaron_Peirsol_0001.jpg"
    assert fl("admin", "gallery", "create", "staff").exit_code == 0
    fl("enroller", "consent", "record", "staff", "aaron", "--purpose", "access_control",
       "--notice-version", "v1", "--method", "signed_form")
    assert fl("enroller", "enroll", "staff", "aaron", a1).exit_code == 0
    r = fl("admin", "--backend", "dlib", "gallery", "set-model", "staff")
    assert r.exit_code == 2 and "--yes" in r.output
    r = runner.invoke(app, ["--role", "admin", "--backend", "dlib", "gallery", "set-model", "staff", "--yes"])
    assert r.exit_code == 0, r.output
    assert "1 template(s) deleted" in " ".join(r.output.split())
    r = fl("admin", "gallery", "show", "staff")
    assert r.exit_code == 0, r.output
    shown = json.loads(r.output)
    assert shown["model_id"].startswith("dlib") and shown["templates"] == 0 and shown["subjects"] == 1


def test_declared_targets_through_the_cli(lfw: Path, data_dir: Path):
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / "policy.toml").write_text(POLICY)
    probe = lfw / "Aaron_Peirsol" / "Aaron_Peirsol_0003.jpg"
    assert fl("admin", "gallery", "create", "staff").exit_code == 0
    r = fl("admin", "authorization", "record", "--kind", "court_order", "--reference", "CASE-9",
           "--issuer", "Court", "--gallery", "staff", "--purpose", "investigation")
    assert r.exit_code == 0, r.output
    for given in ("Protest", " protest", "protests", "lawful-assembly", "religious activity", "prot\u0435st",
                  "pro\u200btest"):
        r = fl("investigator", "identify", "staff", probe, "--purpose", "investigation", "--flag", given)
        assert r.exit_code == 6 and "prohibited_use" in r.output, (given, r.output)
    r = fl("investigator", "identify", "staff", probe, "--purpose", "investigation", "--flag", "rally")
    assert r.exit_code == 6 and "unknown_target" in r.output
    r = fl("investigator", "identify", "staff", probe, "--purpose", "investigation", "--flag", "Suspects")
    assert r.exit_code == 1, r.output  # allowed: the search runs (an empty gallery: no match)
    db = sqlite3.connect(data_dir / "faceledger.db")
    results = [json.loads(f)["result"] for (f,) in db.execute("SELECT fields FROM ledger ORDER BY seq")
               if json.loads(f)["operation"] == "identify"]
    assert [r["targets"]["normalised"] for r in results][-2:] == [[None], ["suspect"]]
    assert all(r["targets"]["given"] for r in results)


def test_consent_renewal_through_the_cli(data_dir: Path):
    assert fl("admin", "gallery", "create", "staff").exit_code == 0
    args = ("consent", "record", "staff", "sam", "--purpose", "access_control", "--method", "signed_form")
    r = fl("enroller", *args, "--notice-version", "v1", "--consent-id", "c-1")
    assert r.exit_code == 0, r.output
    r = fl("enroller", *args, "--notice-version", "v2")
    assert r.exit_code == 8 and "already has an active consent" in r.output
    r = fl("enroller", *args, "--notice-version", "v2", "--supersedes", "c-1")
    assert r.exit_code == 0, r.output


def test_policy_and_training_through_the_cli(data_dir: Path, tmp_path: Path):
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / "policy.toml").write_text(POLICY)
    shown = json.loads(fl("auditor", "policy", "show").output)
    assert shown["policy"]["review"]["required_reviewers"] == 1 and shown["source"] == "policy.toml"
    new = tmp_path / "new.toml"
    new.write_text(POLICY + '[review]\nrequired_reviewers = 2\n[training]\nrequired_for = ["reviewer"]\n')
    r = fl("investigator", "policy", "set", new)
    assert r.exit_code == 6 and "permission_denied" in r.output
    bad = tmp_path / "bad.toml"
    bad.write_text("[review]\nrequired_reviewers = 7\n")
    assert fl("admin", "policy", "set", bad).exit_code == 2
    r = fl("admin", "policy", "set", new)
    assert r.exit_code == 0 and "policy changed" in r.output, r.output
    assert (data_dir / "policy.toml").read_text() == new.read_text()
    assert json.loads(fl("admin", "policy", "show").output)["policy"]["review"]["required_reviewers"] == 2
    r = fl("admin", "training", "record", "rita", "--course", "FRT review 101", "--valid-days", "90")
    assert r.exit_code == 0, r.output
    assert [t["actor"] for t in json.loads(fl("auditor", "training", "list").output)] == ["rita"]
    db = sqlite3.connect(data_dir / "faceledger.db")
    ops = [(json.loads(f)["operation"], json.loads(f)["outcome"]) for (f,) in db.execute("SELECT fields FROM ledger")]
    assert ops[0] == ("policy_change", "ok")  # the ledger opens with the policy in force
    assert ("policy_change", "refused") in ops and ("policy_change", "error") in ops
    assert ops.count(("policy_change", "ok")) == 2 and ops[-1] == ("training_record", "ok")
