"""How the CLI reads when piped: nothing clipped, install hints whole, photos numbered from 1,
``ledger verify`` naming each checkpoint's outcome once."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image
from typer.testing import CliRunner

from faceledger.cli.main import app
from faceledger.cli.render import fail
from faceledger.errors import BackendUnavailableError

runner = CliRunner()


def fl(role: str, *args: object):
    return runner.invoke(app, ["--role", role, *[str(a) for a in args]])


def test_piped_tables_are_not_clipped_to_80_columns(groups: Path):
    photo = groups / "facenetpytorch_multiface.jpg"
    r = runner.invoke(app, ["detect", str(photo)])
    assert r.exit_code == 0, r.output
    assert str(photo) in r.output and "…" not in r.output
    assert max(len(line) for line in r.output.splitlines()) > 80


def test_install_hints_keep_their_brackets(capsys):
    exit_ = fail(BackendUnavailableError("the dlib backends need dlib: pip install 'faceledger[dlib]'"))
    err = capsys.readouterr().err
    assert "pip install 'faceledger[dlib]'" in err and exit_.exit_code == 3


def test_enrollment_refusal_numbers_photos_from_1(lfw: Path, tmp_path: Path):
    blank = tmp_path / "blank.png"
    Image.fromarray(np.full((200, 200, 3), 128, np.uint8)).save(blank)
    assert fl("admin", "gallery", "create", "staff").exit_code == 0
    assert fl("enroller", "consent", "record", "staff", "aaron", "--purpose", "access_control",
              "--notice-version", "v1", "--method", "signed_form").exit_code == 0
    r = fl("enroller", "enroll", "staff", "aaron", lfw / "Aaron_Peirsol" / "Aaron_Peirsol_0001.jpg", blank)
    assert r.exit_code == 2
    assert "photo 2: no_face" in r.output and "photo 1" not in r.output


def test_ledger_verify_says_whether_each_checkpoint_matched_and_says_why_once(tmp_path: Path):
    assert fl("admin", "gallery", "create", "staff").exit_code == 0
    key, pub, cp = tmp_path / "cp.key", tmp_path / "cp.pub", tmp_path / "cp.json"
    assert fl("admin", "ledger", "keygen", key, pub).exit_code == 0
    assert fl("admin", "ledger", "checkpoint", "--key", key, "--out", cp).exit_code == 0
    seq = json.loads(cp.read_text())["seq"]
    ok = fl("auditor", "ledger", "verify", "--checkpoint", cp, "--public-key", pub)
    assert ok.exit_code == 0, ok.output
    assert f"checkpoint {cp} (entry {seq}): matched" in ok.output and "ledger intact" in ok.output

    later = tmp_path / "later.json"
    assert fl("admin", "gallery", "create", "visitors").exit_code == 0
    assert fl("admin", "ledger", "checkpoint", "--key", key, "--out", later).exit_code == 0
    data = json.loads(later.read_text())
    data["head_hash"] = "0" * len(data["head_hash"])          # forged: the signature no longer verifies
    later.write_text(json.dumps(data))
    bad = fl("auditor", "ledger", "verify", "--checkpoint", cp, "--checkpoint", later, "--public-key", pub)
    assert bad.exit_code == 1, bad.output
    assert f"checkpoint {cp} (entry {seq}): matched" in bad.output
    assert f"checkpoint {later} (entry {data['seq']}): NOT matched: the signature does not verify" in bad.output
    assert bad.output.count("does not verify") == 1 and bad.output.count("NOT intact") == 1
