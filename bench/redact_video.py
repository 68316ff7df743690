"""Video redaction at 720p: wall-clock fps of ``faceledger redact`` and leaks by two judges, against deface.

A short version of ``bench/redact_leaks.py``'s video part (about 15 minutes on 2 idle cores, most of it
deface and the two judges; ``--no-judge --no-deface`` times FaceLedger alone in about 2 minutes),
for issue 13's goal "720p >= 30 fps with no more leaks than before"::

    /tmp/deface-venv/bin/pip install deface==1.5.0 onnx onnxruntime   # once, its own venv
    .venv/bin/python bench/redact_video.py --deface-python /tmp/deface-venv/bin/python   # 84 frames x 4

1. The 720p test video of ``redact_leaks.py`` (camera moves over the photos of
   ``../shared/testdata/groups``, 30 fps, ``--frames`` frames) is written to the work folder,
   then played ``--loops`` times in one file (same motion, a cut at each loop): long enough that
   start-up does not dominate, and long enough (10 s and more) to be split across workers.
2. Each command is run in a fresh process and timed (wall clock, and CPU of all its processes
   and threads): ``faceledger redact`` with its defaults (the command the goal is about: a video
   of 10 s or more is split in time across one worker process per core), the same in one process
   (``--workers 1``), with the settings before issue 13 (x264 ``superfast``, which runs in one
   process: ``--detect-every 1 --detect-size 640 --preset superfast``), and deface with its
   defaults. Start-up (imports and loading the detector, in a fresh process) is timed apart, and
   each FaceLedger row also gives the fps once started: frames / (wall - start-up).
3. Every frame of the source and of each output is judged by deface's CenterFace (score >=
   0.5) and dlib's HOG detector (1 upsample), as in ``redact_leaks.py``; a leak is a face a
   judge finds in an output frame where (IoU >= 0.3) it found one in the same source frame.

Judgements are cached by the SHA-256 of each video's bytes in ``--workdir``.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

from _common import load_average, machine_rows, md_table, reproduce_command, testdata_dir
from redact_leaks import (
    SIZES,
    Run,
    build_video,
    count_frames,
    deface_command,
    judge_all,
    leaks,
    timed,
)

_CLI = [sys.executable, "-m", "faceledger.cli.main", "redact"]
_STARTUP = [sys.executable, "-c", "import faceledger.cli.main; from faceledger.redact import Redactor; Redactor()"]


def loop_video(clip: Path, loops: int, path: Path) -> None:
    """``clip`` played ``loops`` times in one H.264 file (30 fps, as ``build_video`` writes)."""
    import av

    with av.open(str(clip)) as container:
        planes = [f.to_ndarray(format="yuv420p") for f in container.decode(video=0)]
        width, height = container.streams.video[0].width, container.streams.video[0].height
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"crf": "17", "preset": "veryfast"}
        for _ in range(loops):
            for yuv in planes:
                for packet in stream.encode(av.VideoFrame.from_ndarray(yuv, format="yuv420p")):
                    out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)


def commands(args: argparse.Namespace, src: Path, workdir: Path) -> list[tuple[str, Path, list[str]]]:
    """(tool label, output, command) for every tool timed."""
    new, one, old, df = (workdir / f"{name}.mp4" for name in ("fl", "fl_one", "fl_before", "deface"))
    return [
        ("FaceLedger (defaults)", new, [*_CLI, str(src), str(new), "--overwrite"]),
        ("FaceLedger (one process: --workers 1)", one, [*_CLI, str(src), str(one), "--overwrite", "--workers", "1"]),
        ("FaceLedger (settings before: --detect-every 1 --detect-size 640 --preset superfast)", old,
         [*_CLI, str(src), str(old), "--overwrite", "--detect-every", "1", "--detect-size", "640", "--preset",
          "superfast"]),
        ("deface (defaults)", df, deface_command(args.deface_python, src, df, None)),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--deface-python", required=True, help="python of a venv with deface 1.5.0 installed")
    parser.add_argument("--frames", type=int, default=90, help="frames of the clip looped (default 90: 84 frames)")
    parser.add_argument("--loops", type=int, default=4,
                        help="times the clip is played in the test video (default 4: 336 frames, 11.2 s)")
    parser.add_argument("--cf-threshold", type=float, default=0.5, help="CenterFace judge score (default 0.5)")
    parser.add_argument("--workdir", type=Path, help="keep the videos and judgements here (default: temp, removed)")
    parser.add_argument("--no-deface", action="store_true", help="time and judge FaceLedger only")
    parser.add_argument("--no-judge", action="store_true", help="time only (no leak columns)")
    args = parser.parse_args()

    photos = sorted((testdata_dir() / "groups").glob("*.jpg"))
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="redact-video-"))
    workdir.mkdir(parents=True, exist_ok=True)
    load_before = load_average()
    try:
        clip = workdir / f"groups_720p_{args.frames}.mp4"
        src = workdir / f"groups_720p_{args.frames}x{args.loops}.mp4"
        if not src.exists():
            print(f"building {src.name} ...", file=sys.stderr)
            build_video(photos, SIZES["720p"], args.frames, clip)
            loop_video(clip, args.loops, src)
        frames = count_frames(src)
        startup = min(timed(_STARTUP)[0] for _ in range(2))
        runs = []
        for tool, out, cmd in commands(args, src, workdir):
            if args.no_deface and tool.startswith("deface"):
                continue
            print(f"  {tool} ...", file=sys.stderr)
            out.unlink(missing_ok=True)
            wall, cpu = timed(cmd)
            runs.append(Run(tool, "720p", out, wall, cpu, frames))
            if count_frames(out) != frames:
                sys.exit(f"{tool} wrote {count_frames(out)} frames for {frames}")
        load_mid = load_average()
        judged = {} if args.no_judge else judge_all(args, {"720p": src}, runs, workdir)
        print(f"## Video redaction at 720p: fps and leaks ({frames} frames, 30 fps)\n")
        rows = []
        for r in runs:
            started = f"{r.frames / (r.seconds - startup):.1f}" if r.tool.startswith("FaceLedger") else "-"
            cells = [r.tool, f"{r.frames / r.seconds:.1f}", started,
                     f"{1000 * r.cpu / r.frames:.0f}" if r.cpu else "-", f"{r.output.stat().st_size / 1e6:.1f}"]
            for boxes in judged.values():
                faces, leaked, big, big_leaked = leaks(boxes[str(src)], boxes[str(r.output)])
                rate, big_rate = 1000 * leaked / max(faces, 1), 1000 * big_leaked / max(big, 1)
                cells.append(f"{rate:.1f} ({big_rate:.1f}); {leaked} of {faces}")
            rows.append(cells)
        print(md_table(["tool", "fps (wall, whole command)", "fps once started", "CPU ms/frame", "output MB",
                        *(f"{j} leaks per 1000 (>= 24 px); count" for j in judged)], rows))
        print("\n" + md_table(["what", "value"], [*machine_rows(), ("FaceLedger start-up (imports, detector)",
                                                                 f"{startup:.2f} s wall"), (
            "load before / after timing / after judging", f"{load_before} / {load_mid} / {load_average()}")]))
        print(f"\nReproduce: `{reproduce_command()}`")
    finally:
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
