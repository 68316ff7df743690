"""The CLI acts as the OS user running it, in roles the deployment gives that user; key management,
and the input rules every adapter shares (times with a zone, clean subject references, no wildcards)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from typer.testing import CliRunner

from faceledger.cli.main import app
from faceledger.config import current_os_user

runner = CliRunner()
ME = current_os_user().name  # root in CI


def fl(*args: object, env: dict[str, str] | None = None):
    return runner.invoke(app, [str(a) for a in args], env=env)


def entries(data_dir: Path):
    from faceledger.governance.ledger import LedgerEntry
    from faceledger.store import open_store

    store = open_store(f"sqlite:///{data_dir / 'faceledger.db'}")
    try:
        # without the policy_change that opens every fresh ledger
        return [e for e in map(LedgerEntry.from_row, store.iter_ledger()) if e.operation != "policy_change"]
    finally:
        store.close()


def test_fresh_data_directory_its_owner_acts_and_the_ledger_names_the_os_user(data_dir: Path):
    r = fl("--role", "admin", "gallery", "create", "staff")
    assert r.exit_code == 0, r.output
    (entry,) = entries(data_dir)
    assert (entry.actor, entry.role, entry.credential) == (ME, "admin", f"os:{ME}")
    assert os.stat(data_dir).st_uid == os.geteuid() and (os.stat(data_dir).st_mode & 0o777) == 0o700


def test_someone_who_does_not_own_the_data_directory_holds_no_role(data_dir: Path):
    assert fl("--role", "admin", "gallery", "create", "staff").exit_code == 0
    os.chown(data_dir, 4242, -1)  # as if another account had set the installation up
    try:
        r = fl("--role", "admin", "gallery", "list")
        assert r.exit_code == 6 and "holds no role" in r.output and "owner of the data directory" in r.output
        r = fl("detect", "nothing.jpg")
        assert r.exit_code == 6
        refused = [(e.operation, e.actor, e.role, e.credential, e.result.get("reason")) for e in entries(data_dir)][1:]
        assert refused == [("sign_in", ME, "admin", f"os:{ME}", "no_role"), ("sign_in", ME, "none", f"os:{ME}",
                                                                             "no_role")]
    finally:
        os.chown(data_dir, os.geteuid(), -1)


def test_operators_table_gives_roles_and_role_only_chooses_among_them(data_dir: Path):
    data_dir.mkdir(parents=True)
    (data_dir / "policy.toml").write_text(f'[operators]\n{ME} = ["auditor"]\nsomeone = ["admin"]\n')
    r = fl("--role", "admin", "gallery", "create", "staff")
    assert r.exit_code == 6 and "does not hold the role 'admin'" in r.output and "holds: auditor" in r.output
    r = fl("ledger", "verify")  # the only role held is used
    assert r.exit_code == 0, r.output
    r = fl("--role", "wizard", "ledger", "verify")
    assert r.exit_code == 2 and "unknown role" in r.output
    (data_dir / "policy.toml").write_text('[operators]\nsomeone = ["admin"]\n')
    r = fl("--role", "auditor", "ledger", "verify")
    assert r.exit_code == 6 and "does not name it" in r.output


def test_actor_flag_cannot_impersonate(data_dir: Path):
    r = fl("--actor", "someone-else", "--role", "admin", "gallery", "create", "staff")
    assert r.exit_code == 6 and f"acting as 'someone-else' is refused: this is '{ME}'" in r.output
    r = fl("--actor", "someone-else", "--role", "admin", "gallery", "create", "staff",
           env={"FACELEDGER_ACTOR": "x"})
    assert r.exit_code == 6
    r = fl("--actor", ME, "--role", "admin", "gallery", "create", "staff")  # naming yourself is harmless
    assert r.exit_code == 0, r.output
    got = [(e.operation, e.outcome, e.actor, e.result.get("reason")) for e in entries(data_dir)]
    assert got == [("sign_in", "refused", ME, "impersonation"), ("sign_in", "refused", ME, "impersonation"),
                   ("gallery_create", "ok", ME, None)]


def test_key_commands_and_acting_with_an_api_key(data_dir: Path):
    r = fl("--role", "admin", "key", "create", "carl", "enroller", "--label", "front desk", "--json")
    assert r.exit_code == 0, r.output
    carl = json.loads(r.output)
    assert carl["token"].startswith("flk_") and carl["actor"] == "carl" and carl["active"]
    r = fl("--role", "admin", "key", "create", "ada", "admin")
    assert r.exit_code == 0 and "shown only now" in r.output
    ada_token = r.output.strip().splitlines()[-1]
    listed = json.loads(fl("--role", "admin", "key", "list", "--json").output)
    assert [k["actor"] for k in listed] == ["carl", "ada"] and all("token" not in k for k in listed)
    # with the key in the environment, the CLI acts as carl (enroller), whatever the OS user holds
    as_carl = {"FACELEDGER_API_KEY": carl["token"]}
    assert fl("gallery", "list", env=as_carl).exit_code == 0
    r = fl("--role", "admin", "gallery", "create", "x", env=as_carl)
    assert r.exit_code == 6 and "does not hold the role 'admin'" in r.output
    r = fl("--role", "admin", "key", "create", "faceledger-service", "admin")
    assert r.exit_code == 6 and "service's own actor" in r.output
    r = fl("key", "revoke", carl["key_id"], env={"FACELEDGER_API_KEY": ada_token})
    assert r.exit_code == 0 and "revoked" in r.output
    r = fl("key", "revoke", json.loads(fl("--role", "admin", "key", "list", "--json").output)[1]["key_id"],
           env={"FACELEDGER_API_KEY": ada_token})
    assert r.exit_code == 8 and "last active admin key" in r.output  # ada's own key, the only admin key
    r = fl("gallery", "list", env=as_carl)
    assert r.exit_code == 6 and "unknown, malformed or revoked" in r.output
    ops = [(e.operation, e.outcome, e.actor) for e in entries(data_dir)]
    assert ops == [("key_create", "ok", ME), ("key_create", "ok", ME), ("key_list", "ok", ME),
                   ("sign_in", "refused", "carl"), ("key_create", "refused", ME),
                   ("key_revoke", "ok", "ada"), ("key_list", "ok", ME), ("key_revoke", "error", "ada")]


def test_shared_input_rules(data_dir: Path):
    assert fl("--role", "admin", "gallery", "create", "staff").exit_code == 0
    consent = ("--role", "enroller", "consent", "record", "staff")
    opts = ("--purpose", "access_control", "--notice-version", "v1", "--method", "signed_form")
    r = fl(*consent, "aaron", *opts, "--given-at", "2026-01-01T09:00")
    assert r.exit_code == 2 and "no time zone" in r.output
    assert fl(*consent, "aaron", *opts, "--given-at", "2026-01-01T09:00:00+01:00").exit_code == 0
    for bad in ("a/b", "a\x00b", "a\nb", "evil\u202etxt", "zero\u200bwidth", " padded", ".."):
        r = fl(*consent, bad, *opts)
        assert r.exit_code == 2 and "subject_ref" in r.output, (bad, r.output)
    r = fl("--role", "admin", "authorization", "record", "--kind", "court_order", "--reference", "C-1",
           "--issuer", "Court", "--gallery", "staff", "--purpose", "*")
    assert r.exit_code == 2 and "no wildcard" in r.output
    r = fl("--role", "auditor", "report", "usage", "--from", "2026-01-01")
    assert r.exit_code == 2 and "no time zone" in r.output
    refused = [e for e in entries(data_dir) if e.operation == "consent_record" and e.outcome == "error"]
    assert len(refused) == 8 and all(e.subject_ref is None for e in refused[1:])  # bad references never stored
