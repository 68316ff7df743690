"""Archive throughput: the same folder redacted by 1 and 2 worker processes and on local Ray (redact_leaks.py).

The archive is made at bench time in the work folder: the ``half`` and ``small`` photo sets
(14 photos) and the first ``clip_frames`` frames of the 720p test video cut into ``clips``
clips. Each run starts from an empty output folder; times are wall times of ``redact_archive`` including worker start-up
and model loading (Ray: the actors, not the Ray instance, which is started before timing).
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
    """Redact ``archive`` once per mode ("1", "2", "ray"), each in a fresh process."""
    runs = []
    for mode in modes:
        out = workdir / f"archive-out-{mode}"
        shutil.rmtree(out, ignore_errors=True)
        print(f"  archive with {mode} ...", file=sys.stderr)
        start = time.perf_counter()
        done = subprocess.run([sys.executable, "-c", _RUN, mode, str(archive), str(out)], capture_output=True,
                              text=True)
        if done.returncode != 0:
            sys.exit(f"archive run {mode} failed after {time.perf_counter() - start:.0f} s: {done.stderr[-2000:]}")
        seconds, files, frames, faces, failed = done.stdout.strip().splitlines()[-1].split()
        runs.append(ArchiveRun(mode, float(seconds), int(files), int(frames), int(faces), int(failed)))
    return runs
