"""``faceledger redact`` through Typer's test runner: outputs, messages, exit codes."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from faceledger.cli.redact_commands import register

sys.path.insert(0, str(Path(__file__).resolve().parent))
from redact_helpers import RaisingDetector  # noqa: E402

runner = CliRunner()


@pytest.fixture(scope="module")
def app() -> typer.Typer:
    app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    register(app)

    @app.callback()
    def _root() -> None:  # keeps `redact` a subcommand, as in the real CLI
        pass

    return app


@pytest.fixture
def photo(tmp_path: Path, multiface: Path) -> Path:
    path = tmp_path / "group.jpg"
    path.write_bytes(multiface.read_bytes())
    return path


def test_redacts_a_photo_beside_it_and_exits_0(app, photo: Path):
    result = runner.invoke(app, ["redact", str(photo)])
    assert result.exit_code == 0, result.output
    assert (photo.parent / "group_redacted.jpg").is_file()
    assert "1 file(s)" in result.output and "face box(es) obscured" in result.output


def test_json_summary(app, photo: Path, tmp_path: Path):
    out = tmp_path / "x.png"
    result = runner.invoke(app, ["redact", str(photo), str(out), "--method", "pixelate", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["files"] == 1 and data["faces"] >= 6 and data["obscured"] == 0
    assert data["reports"][0]["output"] == str(out) and out.is_file()


def test_existing_output_exits_2_and_overwrite_replaces_it(app, photo: Path):
    assert runner.invoke(app, ["redact", str(photo)]).exit_code == 0
    result = runner.invoke(app, ["redact", str(photo)])
    assert result.exit_code == 2
    assert "output_exists" in result.output
    assert runner.invoke(app, ["redact", str(photo), "--overwrite"]).exit_code == 0


@pytest.mark.parametrize(
    "args",
    [["missing.jpg"], ["{photo}", "--mask-scale", "9"], ["{photo}", "--method", "smudge"], ["{photo}", "out.gif"]],
)
def test_bad_input_exits_2(app, photo: Path, args: list[str]):
    result = runner.invoke(app, ["redact", *(a.format(photo=photo) for a in args)])
    assert result.exit_code == 2, result.output


def test_detector_failure_exits_3_with_an_obscured_output(app, photo: Path, monkeypatch):
    import faceledger.models.registry as registry

    monkeypatch.setattr(registry, "load_detector", lambda name: RaisingDetector())
    result = runner.invoke(app, ["redact", str(photo)])
    assert result.exit_code == 3, result.output
    assert "detection_failed" in result.output
    assert (photo.parent / "group_redacted.jpg").is_file()


def test_folder_with_a_broken_file_exits_2_after_redacting_the_rest(app, photo: Path):
    (photo.parent / "broken.jpg").write_bytes(b"\xff\xd8\xff" + b"\x00" * 100)
    result = runner.invoke(app, ["redact", str(photo.parent)])
    assert result.exit_code == 2, result.output
    assert (photo.parent.with_name(photo.parent.name + "_redacted") / "group.jpg").is_file()
    assert "broken.jpg" in result.output
