"""The CLI's core commands, their output and their documented exit codes."""

from __future__ import annotations

import json
import re
from pathlib import Path

from typer.testing import CliRunner

from faceledger.cli.main import app

runner = CliRunner()
DOCS = Path(__file__).resolve().parents[2] / "docs" / "cli.md"


def run(*args: str):
    return runner.invoke(app, [str(a) for a in args])


def test_detect_json(groups: Path):
    r = run("detect", groups / "facenetpytorch_multiface.jpg", "--json")
    assert r.exit_code == 0, r.output
    (result,) = json.loads(r.output)
    assert len(result["faces"]) == 6
    face = result["faces"][0]
    assert set(face) == {"box", "landmarks", "score", "quality"}
    assert len(face["landmarks"]) == 5


def test_detect_annotate_one_and_many(groups: Path, tmp_path: Path):
    out = tmp_path / "faces.png"
    r = run("detect", groups / "facenetpytorch_multiface.jpg", "--annotate", out)
    assert r.exit_code == 0, r.output
    assert out.stat().st_size > 10_000
    folder = tmp_path / "many"
    r = run("detect", groups / "ultralight_10.jpg", groups / "deface_city.jpg", "--annotate", folder)
    assert r.exit_code == 0, r.output
    assert sorted(p.name for p in folder.iterdir()) == ["deface_city_faces.png", "ultralight_10_faces.png"]


def test_detect_bad_inputs_exit_2(tmp_path: Path, groups: Path):
    bad = tmp_path / "notes.jpg"
    bad.write_text("not an image")
    r = run("detect", bad)
    assert r.exit_code == 2
    assert "unsupported_format" in r.output
    # With several photos, good ones are still reported and the exit code says something failed.
    r = run("detect", groups / "deface_city.jpg", bad, "--json")
    assert r.exit_code == 2
    results = json.loads(r.output[: r.output.rindex("]") + 1])
    assert results[1]["error"]["code"] == "unsupported_format" and len(results[0]["faces"]) > 5
    r = run("detect", groups / "deface_city.jpg", "--max-pixels", "1000")
    assert r.exit_code == 2 and "image_too_large" in r.output


def test_verify_exit_codes(lfw: Path, groups: Path):
    a = lfw / "Aaron_Peirsol" / "Aaron_Peirsol_0001.jpg"
    b = lfw / "Aaron_Peirsol" / "Aaron_Peirsol_0002.jpg"
    other = lfw / "Padraig_Harrington" / "Padraig_Harrington_0001.jpg"
    same = run("verify", a, b, "--json")
    assert same.exit_code == 0, same.output
    body = json.loads(same.output)
    assert body["match"] is True and body["score"] >= body["threshold"]
    assert run("verify", a, other).exit_code == 1
    many = run("verify", a, groups / "facenetpytorch_multiface.jpg")
    assert many.exit_code == 2 and "multiple_faces" in many.output
    assert run("verify", a, groups / "facenetpytorch_multiface.jpg", "--face-b", "largest").exit_code == 1
    assert run("--backend", "nope", "verify", a, b).exit_code == 3


def test_models_lists_every_backend():
    r = run("models", "--json")
    assert r.exit_code == 0, r.output
    rows = {row["backend"]: row for row in json.loads(r.output)}
    assert set(rows) >= {"yunet-sface", "dlib", "fused", "onnx"}
    default = rows["yunet-sface"]["info"]
    assert [h for _, h in default["files"]] == [
        "49f000ec501fef24739071fc7e68267d32209045b6822c0c72dce1da25726f10",
        "fb143eea07838aa532d1c95df5f69899974ea0140e1fba05e94204be13ed74ee",
    ]
    assert default["default_operating_point"] == "fmr1e-3"


def test_every_command_is_documented():
    documented = set(re.findall(r"^##+ `faceledger ([a-z-]+(?: [a-z-]+)?)", DOCS.read_text(), re.M))
    commands = {c.name or c.callback.__name__ for c in app.registered_commands}
    for group in app.registered_groups:
        sub = group.typer_instance
        commands |= {f"{group.name} {c.name or c.callback.__name__.replace('_', '-')}" for c in sub.registered_commands}
    missing = commands - documented
    assert not missing, f"commands missing from docs/cli.md: {sorted(missing)}"
