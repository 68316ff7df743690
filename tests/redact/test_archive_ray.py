"""Archive runs on a local Ray instance: the same outputs and manifest as local worker processes."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from faceledger.redact import ArchiveJob, PhotoSearch, RedactOptions, redact_archive
from faceledger.redact.manifest import MANIFEST_NAME

sys.path.insert(0, str(Path(__file__).resolve().parent))
from redact_helpers import make_clip  # noqa: E402

FAST = RedactOptions(photo=PhotoSearch(fast=True))


@pytest.fixture(scope="module")
def ray_instance():
    """One local Ray instance for the module (its start-up takes several seconds)."""
    import ray

    ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR", log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def archive(tmp_path_factory, groups: Path) -> Path:
    root = tmp_path_factory.mktemp("ray-archive") / "in"
    (root / "a").mkdir(parents=True)
    for name in ("facenetpytorch_multiface", "deface_city", "ultralight_10"):
        (root / "a" / f"{name}.jpg").write_bytes((groups / f"{name}.jpg").read_bytes())
    make_clip(root / "pan.mp4", groups / "facenetpytorch_multiface.jpg", frames=10)
    return root


def _outputs(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and not p.name.startswith(".")}


def test_ray_run_matches_local_processes_and_resumes(ray_instance, archive: Path, tmp_path: Path):
    local, on_ray = tmp_path / "local", tmp_path / "ray"
    redact_archive(archive, local, ArchiveJob(options=FAST, workers=1))
    summary = redact_archive(archive, on_ray, ArchiveJob(options=FAST, ray="auto"))
    assert summary.files == 4 and not summary.failed and summary.frames == 3 + 10
    assert _outputs(on_ray) == _outputs(local)
    assert (on_ray / MANIFEST_NAME).read_text().splitlines()[0] == (local / MANIFEST_NAME).read_text().splitlines()[0]
    (on_ray / "pan.mp4").unlink()
    again = redact_archive(archive, on_ray, ArchiveJob(options=FAST, ray="auto"))
    assert again.resumed == 3 and [r.source.name for r in again.reports if not r.resumed] == ["pan.mp4"]
    assert _outputs(on_ray) == _outputs(local)


def test_a_dead_ray_worker_fails_closed(ray_instance, archive: Path, tmp_path: Path, monkeypatch):
    from faceledger.redact import ray_pool

    class Dying(ray_pool._RayWorker):  # kills its own process on one file
        def run(self, task):  # noqa: ANN001, ANN201
            if task.source.name == "deface_city.jpg":
                import os

                os._exit(9)
            return super().run(task)

    monkeypatch.setattr(ray_pool, "_RayWorker", Dying)
    out = tmp_path / "out"
    summary = redact_archive(archive, out, ArchiveJob(options=FAST, ray="auto", workers=2))
    assert {r.source.name: r.error_code for r in summary.failed} == {"deface_city.jpg": "worker_crashed"}
    assert summary.files == 3 and not (out / "a" / "deface_city.jpg").exists()


@pytest.fixture()
def long_clip_archive(tmp_path: Path, groups: Path, monkeypatch) -> Path:
    """One 3 s clip, split from 2 s (the driver decides, in this process)."""
    from faceledger.redact import split

    monkeypatch.setattr(split, "MIN_SPLIT_SECONDS", 2.0)
    root = tmp_path / "long"
    root.mkdir()
    make_clip(root / "pan.mp4", groups / "facenetpytorch_multiface.jpg", frames=72)
    return root


def test_ray_splits_a_long_video_as_local_processes_do(ray_instance, long_clip_archive: Path, tmp_path: Path):
    import av

    local, on_ray = tmp_path / "local", tmp_path / "ray"
    redact_archive(long_clip_archive, local, ArchiveJob(workers=2))
    summary = redact_archive(long_clip_archive, on_ray, ArchiveJob(ray="auto"))
    assert summary.files == 1 and summary.frames == 72 and not summary.failed
    with av.open(str(on_ray / "pan.mp4")) as container:
        assert [i for i, f in enumerate(container.decode(video=0)) if f.key_frame] == [0, 36]  # split in two
    assert _outputs(on_ray) == _outputs(local)


def test_a_dead_ray_worker_fails_a_split_video_closed(ray_instance, long_clip_archive: Path, tmp_path: Path,
                                                      monkeypatch):
    from faceledger.redact import ray_pool

    class Dying(ray_pool._RayWorker):  # kills its own process on the video's second segment
        def run(self, task):  # noqa: ANN001, ANN201
            if getattr(task, "index", None) == 1:
                import os

                os._exit(9)
            return super().run(task)

    monkeypatch.setattr(ray_pool, "_RayWorker", Dying)
    out = tmp_path / "out"
    summary = redact_archive(long_clip_archive, out, ArchiveJob(ray="auto", workers=2))
    assert [(r.source.name, r.error_code) for r in summary.failed] == [("pan.mp4", "worker_crashed")]
    assert [p.name for p in out.iterdir()] == [MANIFEST_NAME]  # no output, no segment left
    assert (out / MANIFEST_NAME).read_text().count("\n") == 1  # the header only
