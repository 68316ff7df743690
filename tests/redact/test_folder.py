"""Folders: the tree is kept, other files are reported and not copied, one failure does not stop the walk."""

from __future__ import annotations

from pathlib import Path

import pytest

from faceledger.redact import OutputExistsError, RedactOptions, Redactor, default_output


@pytest.fixture
def tree(tmp_path: Path, multiface: Path, groups: Path) -> Path:
    root = tmp_path / "album"
    (root / "2024" / "summer").mkdir(parents=True)
    (root / "a.jpg").write_bytes(multiface.read_bytes())
    (root / "2024" / "summer" / "city.jpg").write_bytes((groups / "deface_city.jpg").read_bytes())
    (root / "2024" / "broken.jpg").write_bytes(multiface.read_bytes()[:4000])
    (root / "notes.txt").write_text("not media")
    (root / ".hidden.jpg").write_bytes(multiface.read_bytes())
    return root


def test_folder_is_redacted_recursively_keeping_its_tree(detector, tree: Path):
    summary = Redactor(detector).redact(tree)
    out = tree.with_name("album_redacted")
    assert default_output(tree) == out
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert written == ["2024/summer/city.jpg", "a.jpg"]
    assert summary.files == 2 and summary.faces >= 6 + 5
    assert [r.source.name for r in summary.failed] == ["broken.jpg"]
    assert summary.failed[0].error_code == "corrupt_image"
    assert [r.source.name for r in summary.skipped] == ["notes.txt"]
    assert not (out / "notes.txt").exists() and not (out / ".hidden.jpg").exists()
    # The input folder is untouched.
    assert sorted(p.name for p in tree.rglob("*")) == sorted(
        ["2024", "summer", "a.jpg", "city.jpg", "broken.jpg", "notes.txt", ".hidden.jpg"]
    )


def test_existing_output_folder_is_refused_unless_overwrite(detector, tree: Path):
    Redactor(detector).redact(tree)
    with pytest.raises(OutputExistsError):
        Redactor(detector).redact(tree)
    summary = Redactor(detector, RedactOptions(overwrite=True)).redact(tree)
    assert summary.files == 2


def test_output_inside_the_input_folder_is_refused(detector, tree: Path):
    with pytest.raises(OutputExistsError):
        Redactor(detector).redact(tree, tree / "redacted")
    assert not (tree / "redacted").exists()
