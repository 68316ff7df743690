"""Peak memory (RSS) of a 1:1 verification, FaceLedger vs its peers, in one run.

Each contender is a fresh process comparing the same two LFW photos; its peak
resident set size is measured by ``/usr/bin/time`` (the kernel's ``ru_maxrss`` of
that one process), so no contender's memory is counted against another. Goal:
``faceledger verify A B`` under 400 MB.

* ``faceledger verify A B``: the installed console script, as a user runs it, with
  a fresh data directory (``FACELEDGER_DATA_DIR``) so it creates its own store and
  ledger in a temporary folder and never writes to the user's.
* FaceLedger in Python: ``Recognizer.verify``; if the model is not calibrated yet
  (verify refuses before detecting anything), the same work by hand: two templates
  and their cosine. This is the figure for the whole job.
* face_recognition 1.3.0: ``load_image_file``, ``face_locations`` (HOG),
  ``face_encodings`` (5-point) and ``face_distance`` against its 0.6 threshold.

Every contender uses the face nearest the image centre (an LFW photo can show a
second, partial face).
* raw OpenCV: ``imread``, ``FaceDetectorYN``, ``FaceRecognizerSF`` on the same files.
* baseline: the interpreter importing numpy and cv2, nothing else.

Run from the repository root::

    .venv/bin/python bench/memory.py            # about 30 s on 2 cores
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from _common import REPO_ROOT, load_average, machine_rows, md_table, reproduce_command, testdata_dir

GOAL_MB = 400.0
TIME = "/usr/bin/time" if os.access("/usr/bin/time", os.X_OK) else None
PAIR = ("lfw/images/Jean_Charest/Jean_Charest_0001.jpg", "lfw/images/Jean_Charest/Jean_Charest_0002.jpg")

FACELEDGER_PY = """
import sys
from faceledger import Recognizer
from faceledger.errors import NotCalibratedError
r = Recognizer()
try:
    res = r.verify(sys.argv[1], sys.argv[2], face_a="center", face_b="center")
    print(f"match={res.match} score={res.score:.4f}")
except NotCalibratedError:
    ta, tb = (r.template(p, face="center") for p in sys.argv[1:3])
    print(f"not calibrated; score={r.compare(ta, tb):.4f}")
"""

FACE_RECOGNITION_PY = """
import sys
import face_recognition as fr
def encoding(path):
    img = fr.load_image_file(path)
    cy, cx = img.shape[0] / 2, img.shape[1] / 2
    locs = fr.face_locations(img)
    best = min(locs, key=lambda l: ((l[0] + l[2]) / 2 - cy) ** 2 + ((l[1] + l[3]) / 2 - cx) ** 2)
    return fr.face_encodings(img, [best])[0]
a, b = (encoding(p) for p in sys.argv[1:3])
d = fr.face_distance([a], b)[0]
print(f"match={d <= 0.6} distance={d:.4f}")
"""

OPENCV_PY = """
import sys
import cv2
import numpy as np
a_path, b_path, yunet, sface = sys.argv[1:5]
det = cv2.FaceDetectorYN.create(yunet, "", (320, 320), 0.6, 0.3, 5000)
rec = cv2.FaceRecognizerSF.create(sface, "")
def feature(path):
    img = cv2.imread(path)
    det.setInputSize((img.shape[1], img.shape[0]))
    _, faces = det.detect(img)
    centre = np.array([img.shape[1] / 2, img.shape[0] / 2])
    best = faces[np.argmin((((faces[:, :2] + faces[:, 2:4] / 2) - centre) ** 2).sum(axis=1))]
    return rec.feature(rec.alignCrop(img, best))
s = rec.match(feature(a_path), feature(b_path), cv2.FaceRecognizerSF_FR_COSINE)
print(f"match={s >= 0.363} cosine={s:.4f}")
"""


@dataclass(frozen=True)
class Run:
    """One reaped process: peak RSS in MB (10^6 bytes), wall seconds, exit code, what it printed."""

    peak_mb: float
    seconds: float
    exit_code: int
    said: str


def run_measured(argv: list[str]) -> Run:
    """Run ``argv`` to completion and return its own peak RSS.

    With ``/usr/bin/time`` (a tiny C parent) the figure is the child's alone. Without
    it, ``wait4`` is used; Linux then folds the *spawning* process's RSS high-water
    mark into the child's figure at ``exec``, so a result below this program's own
    RSS means "at most that much" (the table says which method was used).
    """
    with tempfile.TemporaryDirectory() as tmp:
        out_path, rss_path = Path(tmp) / "out", Path(tmp) / "rss"
        cmd = [TIME, "-f", "%M", "-o", str(rss_path), *argv] if TIME else argv
        # The CLI keeps a store and ledger; give it a fresh one here, never the user's own.
        env = {**os.environ, "FACELEDGER_DATA_DIR": str(Path(tmp) / "data")}
        for name in ("FACELEDGER_STORE", "FACELEDGER_POLICY"):
            env.pop(name, None)
        with open(out_path, "wb") as out:
            t0 = time.perf_counter()
            proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=REPO_ROOT, env=env)
            _, status, usage = os.wait4(proc.pid, 0)
            seconds = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here; keep Popen consistent
        kib = int(rss_path.read_text().split()[-1]) if TIME else usage.ru_maxrss
        said = " ".join(out_path.read_bytes().decode(errors="replace").split())
    if "error" in said:
        said = said[said.rindex("error"):]
    return Run(kib * 1024 / 1e6, seconds, proc.returncode, said)


def contenders(root: Path) -> list[tuple[str, list[str]]]:
    """(label, argv) of everything measured, on the same two photos."""
    from faceledger.models.yunet_sface import SFACE, YUNET

    py = sys.executable
    cli = REPO_ROOT / ".venv" / "bin" / "faceledger"
    if not cli.exists():
        cli = Path(py).parent / "faceledger"
    a, b = (str(root / p) for p in PAIR)
    models = [str(YUNET.verified_path()), str(SFACE.verified_path())]
    return [
        ("`faceledger verify A B --face-a center --face-b center`",
         [str(cli), "verify", a, b, "--face-a", "center", "--face-b", "center"]),
        ("FaceLedger in Python: Recognizer.verify (or 2 templates + cosine)",
         [py, "-c", FACELEDGER_PY, a, b]),
        ("face_recognition 1.3.0 (HOG + ResNet, distance <= 0.6)", [py, "-c", FACE_RECOGNITION_PY, a, b]),
        ("raw OpenCV (YuNet + SFace, cosine >= 0.363)", [py, "-c", OPENCV_PY, a, b, *models]),
        ("baseline: python -c 'import numpy, cv2'", [py, "-c", "import numpy, cv2"]),
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3, help="processes started per contender")
    args = ap.parse_args()
    root = testdata_dir()
    t_start = time.perf_counter()
    print("## Memory: peak RSS of one verification\n")
    print(md_table(["machine", "value"], [*machine_rows(), ("load average at start", load_average())]))
    print(f"\nReproduce: `{reproduce_command()}`\n")
    how = "/usr/bin/time" if TIME else "wait4 (an upper bound: includes this program's own RSS)"
    print(f"Photos: `{PAIR[0]}` and `{PAIR[1]}` (the same person). Peak RSS in MB (10^6 bytes) by {how}, "
          f"median of {args.runs} fresh processes (min-max); wall time includes imports and model loading.\n")
    rows = []
    for label, argv in contenders(root):
        print(f"  {label}", file=sys.stderr)
        runs = [run_measured(argv) for _ in range(args.runs)]
        peak = statistics.median(r.peak_mb for r in runs)
        lo, hi = min(r.peak_mb for r in runs), max(r.peak_mb for r in runs)
        goal = ""
        if "FaceLedger" in label or "faceledger" in label:
            goal = "PASS" if peak < GOAL_MB else "FAIL"
        rows.append([label, f"{peak:.0f} ({lo:.0f}-{hi:.0f})", goal,
                     f"{statistics.median(r.seconds for r in runs):.2f}",
                     ",".join(sorted({str(r.exit_code) for r in runs})), runs[-1].said[:110]])
    print(md_table(["process", "peak RSS MB", f"< {GOAL_MB:.0f} MB", "wall s", "exit", "output"],
                   rows))
    print(f"\nLoad average at the end: {load_average()}. "
          f"Total runtime of this program: {time.perf_counter() - t_start:.0f} s.")


if __name__ == "__main__":
    main()
