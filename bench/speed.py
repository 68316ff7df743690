"""Speed of detect + embed per photo: FaceLedger vs raw OpenCV vs face_recognition.

All three run in this one process, on the same decoded RGB arrays, interleaved
run by run (so drift hits all of them alike), with OpenCV limited to one and then
two threads (``cv2.setNumThreads``; dlib uses one core whatever the setting).

* FaceLedger: ``Recognizer().embed(image)`` — YuNet over the image pyramid, quality
  (aligned crop + sharpness) per face, SFace on all faces in one batch.
* raw OpenCV: ``cv2.FaceDetectorYN`` once at the native size (score 0.6, NMS 0.3,
  faces narrower than 20 px dropped like FaceLedger's default), then
  ``FaceRecognizerSF.alignCrop`` + ``feature`` per face, on the same model files.
* face_recognition 1.3.0: ``face_locations`` (HOG, 1 upsample) + ``face_encodings``
  (5-point landmarks, 1 jitter) — its defaults.

Decoding is timed apart (FaceLedger: Pillow + EXIF transpose + SHA-256). Times
are milliseconds, "median (p90)". Then the high-resolution set (``bench/highres.py``):
photos of 0.3-12 MP made from the shared group photos, one template per photo from the
file, with face_recognition's ratio per resolution band in the same run, the floor per
photo, a 39.7 MP photo (time and peak RSS) and ``faceledger.verify`` in a loop.
Prints Markdown; run from the repository root::

    .venv/bin/python bench/speed.py                      # about 8 minutes on 2 cores
    .venv/bin/python bench/speed.py --only-highres --before ../old-checkout
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import face_recognition as fr
import numpy as np

import highres
from _common import (
    Stats,
    fmt_ms,
    load_average,
    machine_rows,
    md_table,
    reproduce_command,
    stats_of,
    testdata_dir,
    time_call,
    time_call_cpu,
)
from faceledger import Recognizer
from faceledger.core.align import align_face
from faceledger.core.quality import quality_of
from faceledger.media.image import DecodedImage, load_image
from faceledger.models.pyramid import pyramid_scales
from faceledger.models.yunet_sface import SFACE, YUNET
from faceledger.types import Face

MIN_FACE = 20.0  # FaceLedger's default DetectOptions.min_face_size, applied to raw OpenCV too
PORTRAIT = "lfw/images/Jean_Charest/Jean_Charest_0001.jpg"


@dataclass(frozen=True)
class Scene:
    """One benchmark photo: a name, how it was made, and its RGB pixels."""

    name: str
    how: str
    rgb: np.ndarray


def letterbox(rgb: np.ndarray, width: int, height: int) -> np.ndarray:
    """Scale ``rgb`` to fit ``width`` x ``height`` keeping its aspect ratio, centred on black."""
    h, w = rgb.shape[:2]
    s = min(width / w, height / h)
    nw, nh = round(w * s), round(h * s)
    interp = cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR
    out = np.zeros((height, width, 3), np.uint8)
    x0, y0 = (width - nw) // 2, (height - nh) // 2
    out[y0 : y0 + nh, x0 : x0 + nw] = cv2.resize(rgb, (nw, nh), interpolation=interp)
    return out


def build_scenes(root: Path) -> list[Scene]:
    """The four photos of the per-photo table (decoded once with FaceLedger's loader)."""
    def rgb(rel: str) -> np.ndarray:
        return load_image(root / rel).rgb

    how = "letterboxed: scaled to fit (area down / bilinear up), centred on black"
    return [
        Scene("640x480 portrait", f"LFW {Path(PORTRAIT).name} 250x250 -> 480x480, {how}",
              letterbox(rgb(PORTRAIT), 640, 480)),
        Scene("640x480 group", f"groups/facenetpytorch_multiface.jpg 1200x630 -> 640x336, {how}",
              letterbox(rgb("groups/facenetpytorch_multiface.jpg"), 640, 480)),
        Scene("1920x1080 portrait", f"groups/deepface_couple.jpg 2280x1588 -> 1551x1080, {how}",
              letterbox(rgb("groups/deepface_couple.jpg"), 1920, 1080)),
        Scene("1920x1080 group", f"groups/ultralight_10.jpg 1024x715 -> 1547x1080, {how}",
              letterbox(rgb("groups/ultralight_10.jpg"), 1920, 1080)),
    ]


class RawOpenCV:
    """The plain OpenCV recipe on FaceLedger's model files (checked by SHA-256)."""

    def __init__(self) -> None:
        self.det = cv2.FaceDetectorYN.create(str(YUNET.verified_path()), "", (320, 320), 0.6, 0.3, 5000)
        self.rec = cv2.FaceRecognizerSF.create(str(SFACE.verified_path()), "")

    def detect(self, bgr: np.ndarray) -> np.ndarray:
        self.det.setInputSize((bgr.shape[1], bgr.shape[0]))
        _, faces = self.det.detect(bgr)
        if faces is None:
            return np.zeros((0, 15), np.float32)
        return faces[faces[:, 2] >= MIN_FACE]

    def embed_rows(self, bgr: np.ndarray, rows: np.ndarray) -> list[np.ndarray]:
        return [self.rec.feature(self.rec.alignCrop(bgr, row)) for row in rows]

    def __call__(self, rgb: np.ndarray) -> int:
        bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
        return len(self.embed_rows(bgr, self.detect(bgr)))


def face_recognition_pipeline(rgb: np.ndarray) -> int:
    """face_recognition's defaults: HOG with one upsample, then 5-point encodings."""
    return len(fr.face_encodings(rgb, fr.face_locations(rgb)))


def pipelines(engine: Recognizer, raw: RawOpenCV) -> dict[str, Callable[[Scene, DecodedImage], int]]:
    """name -> callable(scene, decoded) returning the number of faces embedded."""
    return {
        "FaceLedger": lambda sc, dec: len(engine.embed(dec)),
        "raw OpenCV": lambda sc, dec: raw(sc.rgb),
        "face_recognition": lambda sc, dec: face_recognition_pipeline(sc.rgb),
    }


@dataclass(frozen=True)
class Timed:
    """One pipeline on one photo: wall-clock and CPU statistics, faces embedded."""

    wall: Stats
    cpu: Stats
    faces: int


def time_scene(scene: Scene, decoded: DecodedImage, pipes: dict, runs: int) -> dict[str, Timed]:
    """Warm each pipeline up once, then time them round-robin ``runs`` times."""
    faces = {name: fn(scene, decoded) for name, fn in pipes.items()}
    wall: dict[str, list[float]] = {name: [] for name in pipes}
    cpu: dict[str, list[float]] = {name: [] for name in pipes}
    for _ in range(runs):
        for name, fn in pipes.items():
            c0, t0 = time.process_time(), time.perf_counter()
            faces[name] = fn(scene, decoded)
            wall[name].append(time.perf_counter() - t0)
            cpu[name].append(time.process_time() - c0)
    return {name: Timed(stats_of(wall[name]), stats_of(cpu[name]), faces[name]) for name in pipes}


def goal_cells(fl: Stats, raw: Stats, dlib: Stats) -> list[str]:
    """The two goals on medians: face_recognition/FaceLedger >= 8, FaceLedger/raw <= 1.2."""
    vs_dlib, vs_raw = dlib.median / fl.median, fl.median / raw.median
    return [f"{vs_dlib:.1f}x {'PASS' if vs_dlib >= 8 else 'FAIL'}",
            f"{vs_raw:.2f}x {'PASS' if vs_raw <= 1.2 else 'FAIL'}"]


def per_photo(
    scenes: list[Scene], engine: Recognizer, raw: RawOpenCV, threads: list[int], runs: int
) -> tuple[list[list[object]], list[list[object]], dict[tuple[str, int], float]]:
    """Wall-clock rows, CPU-time rows, and FaceLedger/raw ratios (worse of wall, CPU) by (photo, threads)."""
    pipes = pipelines(engine, raw)
    decoded = [engine.load(sc.rgb) for sc in scenes]  # hashed once, outside the timing
    wall_rows, cpu_rows, ratios = [], [], {}
    for t in threads:
        cv2.setNumThreads(t)
        for sc, dec in zip(scenes, decoded, strict=True):
            print(f"  {sc.name}, {t} thread(s)", file=sys.stderr)
            r = time_scene(sc, dec, pipes, runs)
            fl, rw, dl = r["FaceLedger"], r["raw OpenCV"], r["face_recognition"]
            ratios[(sc.name, t)] = max(fl.wall.median / rw.wall.median, fl.cpu.median / rw.cpu.median)
            wall_rows.append([sc.name, t, fl.wall.cell(), fl.faces, rw.wall.cell(), rw.faces,
                              dl.wall.cell(), dl.faces, *goal_cells(fl.wall, rw.wall, dl.wall)])
            cpu_rows.append([sc.name, t, fmt_ms(fl.cpu.median), fmt_ms(rw.cpu.median),
                             fmt_ms(dl.cpu.median), *goal_cells(fl.cpu, rw.cpu, dl.cpu)])
    return wall_rows, cpu_rows, ratios


def template_agreement(scene: Scene, engine: Recognizer, raw: RawOpenCV) -> str:
    """How many of FaceLedger's templates equal raw OpenCV's for the same face (cosine > 0.99).

    Faces are paired by nearest box centre; both sides use the same SFace file.
    Checked as ``embed`` returns them (all faces in one call) and one face per call,
    which tells a batching fault apart from different landmarks.
    """
    bgr = cv2.cvtColor(scene.rgb, cv2.COLOR_RGB2BGR)
    rows = raw.detect(bgr)
    faces = engine.detect(scene.rgb)
    if len(rows) == 0 or not faces:
        return "no faces to compare"
    theirs = np.array([f.ravel() for f in raw.embed_rows(bgr, rows)])
    centres = rows[:, :2] + rows[:, 2:4] / 2
    pair = [int(np.argmin(((centres - np.array(f.box.center)) ** 2).sum(axis=1))) for f in faces]
    together = np.array([t.vector for t in engine.embed(scene.rgb, faces)])
    alone = np.array([engine.embed(scene.rgb, [f])[0].vector for f in faces])
    parts = []
    for label, ours in (("all faces in one call", together), ("one face per call", alone)):
        cos = cosine_rows(ours, theirs[pair])
        worst = "not finite" if not np.isfinite(cos).all() else f"{cos.min():.3f}"
        parts.append(f"{label}: {int((cos > 0.99).sum())} of {len(cos)} agree (worst {worst})")
    return "; ".join(parts)


def cosine_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise cosine of two (n, d) arrays (nan where a row is not finite)."""
    a, b = np.asarray(a, np.float64).reshape(len(a), -1), np.asarray(b, np.float64).reshape(len(b), -1)
    with np.errstate(all="ignore"):
        return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


# -- batched embedding ------------------------------------------------------------------
def lfw_faces(root: Path, engine: Recognizer, n: int) -> list[tuple[np.ndarray, Face]]:
    """The first ``n`` LFW photos (sorted) with exactly one face: (rgb, face)."""
    out = []
    for path in sorted((root / "lfw/images").glob("*/*.jpg")):
        img = engine.load(path)
        faces = engine.detect(img, quality=False)
        if len(faces) == 1:
            out.append((img.rgb, faces[0]))
        if len(out) == n:
            break
    return out


def dlib_chips(items: list[tuple[np.ndarray, Face]]) -> list[np.ndarray]:
    """dlib's own 150x150 chips (5-point predictor on FaceLedger's box, padding 0.25)."""
    import dlib

    chips = []
    for rgb, face in items:
        x, y, w, h = (int(round(v)) for v in face.box.as_tuple())
        shape = fr.api.pose_predictor_5_point(rgb, dlib.rectangle(x, y, x + w, y + h))
        chips.append(dlib.get_face_chip(rgb, shape, size=150, padding=0.25))
    return chips


def agreement(vectors: np.ndarray, reference: np.ndarray) -> str:
    """``"ok"`` if every row matches the reference (cosine > 0.99), else how many do not."""
    cos = cosine_rows(vectors, reference)
    bad = int((~(cos > 0.99)).sum())
    return "ok (cosine > 0.99)" if bad == 0 else f"WRONG: {bad} of {len(cos)} rows differ from batch-1"


@dataclass(frozen=True)
class Case:
    """One row of the batch table: what, how many faces, the call, runs, a correctness note."""

    label: str
    faces: int
    fn: Callable[[], object]
    runs: int
    check: str


def batch_cases(root: Path, engine: Recognizer, raw: RawOpenCV, n_crops: int) -> list[Case]:
    """Crowd photo (Recognizer.embed) and aligned LFW crops (embedders alone)."""
    crowd = engine.load(root / "groups/ultralight_25.jpg")
    faces = engine.detect(crowd)
    bgr = cv2.cvtColor(crowd.rgb, cv2.COLOR_RGB2BGR)
    rows_cv = np.array([[*f.box.as_tuple(), *np.ravel(f.landmarks), f.score] for f in faces], np.float32)
    css = [(round(f.box.y), round(f.box.x + f.box.w), round(f.box.y + f.box.h), round(f.box.x))
           for f in faces]  # face_recognition's (top, right, bottom, left)
    items = lfw_faces(root, engine, n_crops)
    crops = [align_face(rgb, np.array(face.landmarks, np.float32)) for rgb, face in items]
    crops_bgr = [np.ascontiguousarray(c[:, :, ::-1]) for c in crops]
    chips = dlib_chips(items)
    net = cv2.dnn.readNet(str(SFACE.verified_path()))

    def sface(batch: list[np.ndarray]) -> np.ndarray:
        net.setInput(cv2.dnn.blobFromImages(batch, 1.0, (112, 112), (0, 0, 0), swapRB=False, crop=False))
        return net.forward().reshape(len(batch), -1).copy()

    def sface_single() -> np.ndarray:
        return np.concatenate([sface([c]) for c in crops])

    raw_crowd = np.array([v.ravel() for v in raw.embed_rows(bgr, rows_cv)])
    fl_crowd = np.array([t.vector for t in engine.embed(crowd, faces)])
    single = sface_single()
    nc, nf = len(crops), len(faces)
    return [
        Case(f"FaceLedger embed(photo), ultralight_25.jpg 1024x675, {nf} faces, detection included",
             nf, lambda: engine.embed(crowd), 3, "see next row"),
        Case(f"FaceLedger embed(photo, faces): the same {nf} faces, align + embed only", nf,
             lambda: engine.embed(crowd, faces), 3, "vs raw OpenCV: " + agreement(fl_crowd, raw_crowd)),
        Case(f"raw OpenCV alignCrop + feature, one face at a time, the same {nf} faces", nf,
             lambda: raw.embed_rows(bgr, rows_cv), 3, "reference"),
        Case(f"face_recognition.face_encodings on the same {nf} boxes (1 jitter)", nf,
             lambda: fr.face_encodings(crowd.rgb, css), 2, "other model"),
        Case(f"SFace (cv2.dnn) alone, {nc} aligned LFW crops in one batch", nc, lambda: sface(crops), 3,
             agreement(sface(crops), single)),
        Case(f"SFace (cv2.dnn) alone, {nc} aligned LFW crops one at a time", nc, sface_single, 3,
             "reference"),
        Case(f"cv2.FaceRecognizerSF.feature alone, {nc} aligned crops one at a time", nc,
             lambda: [raw.rec.feature(c) for c in crops_bgr], 3,
             agreement(np.array([raw.rec.feature(c).ravel() for c in crops_bgr]), single)),
        Case(f"dlib ResNet alone, {nc} dlib 150x150 chips in one call", nc,
             lambda: fr.api.face_encoder.compute_face_descriptor(chips), 2, "other model"),
    ]


def batch_rows(root: Path, engine: Recognizer, raw: RawOpenCV, threads: list[int], n_crops: int, runs: int):
    """Faces per second for each :func:`batch_cases` case at each thread count."""
    cases = batch_cases(root, engine, raw, n_crops)
    rows = []
    for t in threads:
        cv2.setNumThreads(t)
        for c in cases:
            print(f"  batch: {c.label[:50]}..., {t} thread(s)", file=sys.stderr)
            st = time_call(c.fn, runs=max(2, min(runs, c.runs)))
            rows.append([c.label, t, st.cell(), f"{c.faces / (st.median / 1000):.0f}", c.check])
    return rows


# -- decoding ---------------------------------------------------------------------------
def decode_rows(root: Path, scenes: list[Scene], runs: int) -> list:
    """Decode time of JPEG bytes: FaceLedger's loader vs Pillow (face_recognition) vs OpenCV."""
    blobs = []
    for sc in scenes:
        bgr = cv2.cvtColor(sc.rgb, cv2.COLOR_RGB2BGR)
        _, enc = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, 95])
        blobs.append((f"{sc.name} (JPEG q95, {len(enc) // 1024} KiB)", enc.tobytes()))
    orig = (root / "groups/deepface_couple.jpg").read_bytes()
    blobs.append((f"deepface_couple.jpg as shipped, 2280x1588 ({len(orig) // 1024} KiB)", orig))
    rows = []
    for label, data in blobs:
        fl = time_call(lambda d=data: load_image(d), runs)
        pil = time_call(lambda d=data: fr.load_image_file(io.BytesIO(d)), runs)
        ocv = time_call(lambda d=data: cv2.cvtColor(
            cv2.imdecode(np.frombuffer(d, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB), runs)
        rows.append([label, fl.cell(), pil.cell(), ocv.cell()])
    return rows


# -- where FaceLedger's time goes -----------------------------------------------------------
class LevelRunner:
    """YuNet over pyramid levels, either one detector per input size or one shared detector.

    The shared detector gets ``setInputSize`` before every call, as the backend's
    detector does; a detector per size never changes its input size.
    """

    def __init__(self, rgb: np.ndarray, shared: bool) -> None:
        self.rgb, self.shared = rgb, shared
        self.path = str(YUNET.verified_path())
        self.dets: dict[tuple[int, int], cv2.FaceDetectorYN] = {}

    def _detector(self, size: tuple[int, int]) -> cv2.FaceDetectorYN:
        key = (0, 0) if self.shared else size
        if key not in self.dets:
            self.dets[key] = cv2.FaceDetectorYN.create(self.path, "", size, 0.3, 0.3, 5000)
        return self.dets[key]

    def run(self, scales: list[float]) -> None:
        h, w = self.rgb.shape[:2]
        for s in scales:
            lvl = self.rgb if s == 1.0 else cv2.resize(
                self.rgb, (round(w * s), round(h * s)), interpolation=cv2.INTER_AREA)
            det = self._detector((lvl.shape[1], lvl.shape[0]))
            det.setInputSize((lvl.shape[1], lvl.shape[0]))
            det.detect(cv2.cvtColor(lvl, cv2.COLOR_RGB2BGR))


def attribution_rows(scene: Scene, engine: Recognizer, raw: RawOpenCV, runs: int) -> list:
    """Time of each stage of Recognizer.embed, measured directly (no profiler), one photo."""
    dec = engine.load(scene.rgb)
    faces = engine.detect(dec)
    marks = [np.array(f.landmarks, np.float32) for f in faces]
    h, w = scene.rgb.shape[:2]
    scales = pyramid_scales(w, h, engine.detect_options.min_face_size)
    extra = [s for s in scales if s != 1.0]
    own, shared = LevelRunner(scene.rgb, shared=False), LevelRunner(scene.rgb, shared=True)
    boxes = np.array([f.box.as_tuple() for f in faces], np.float32)
    stages = [
        ("YuNet at native size (RGB->BGR + detect)", lambda: own.run([1.0])),
        (f"extra pyramid levels {extra} (resize + RGB->BGR + detect)", lambda: own.run(extra)),
        (f"all levels {scales}, one detector per input size", lambda: own.run(scales)),
        (f"all levels {scales}, one detector, input size switched per call (as the backend does)",
         lambda: shared.run(scales)),
        (f"quality crop for {len(faces)} face(s) (align_face + sharpness)",
         lambda: [quality_of(f.box, m, align_face(scene.rgb, m)) for f, m in zip(faces, marks, strict=True)]),
        (f"SFace embedder on {len(faces)} face(s), as the backend runs it (align + forward)",
         lambda: engine.backend.embedder.embed(scene.rgb, boxes, np.array(marks))),
        ("Recognizer.embed(photo), total", lambda: engine.embed(dec)),
        ("raw OpenCV pipeline, total", lambda: raw(scene.rgb)),
        ("(not in the table above) Recognizer.embed(ndarray): copy + SHA-256 of the pixels",
         lambda: engine.load(scene.rgb)),
    ]
    rows = []
    for label, fn in stages:
        wall, cpu = time_call_cpu(fn, runs)
        rows.append([label, wall.cell(), fmt_ms(cpu.median)])
    return rows


def profile_text(scene: Scene, engine: Recognizer, calls: int = 5, top: int = 12) -> str:
    """cProfile of ``calls`` Recognizer.embed calls on ``scene``: the top functions by own time."""
    dec = engine.load(scene.rgb)
    engine.embed(dec)
    prof = cProfile.Profile()
    prof.enable()
    for _ in range(calls):
        engine.embed(dec)
    prof.disable()
    buf = io.StringIO()
    pstats.Stats(prof, stream=buf).strip_dirs().sort_stats("tottime").print_stats(top)
    lines = [ln for ln in buf.getvalue().splitlines() if ln.strip()]
    start = next(i for i, ln in enumerate(lines) if ln.lstrip().startswith("ncalls"))
    return f"cProfile, {calls} calls of Recognizer.embed on {scene.name}, 1 thread:\n\n```\n" + \
        "\n".join(lines[start:]) + "\n```"


def print_header(scenes: list[Scene], engine: Recognizer, raw: RawOpenCV) -> None:
    print("## Speed: detect + embed per photo\n")
    print(md_table(["machine", "value"], [*machine_rows(), ("load average at start", load_average())]))
    print(f"\nReproduce: `{reproduce_command()}`\n")
    print("Photos (decoded once; every pipeline gets the same RGB array). The last column checks that "
          "FaceLedger's templates equal raw OpenCV's for the same faces (same SFace file):\n")
    print(md_table(["photo", "made from", "FaceLedger vs raw OpenCV templates"],
                   [[s.name, s.how, template_agreement(s, engine, raw)] for s in scenes]))


def print_per_photo(scenes: list[Scene], engine: Recognizer, raw: RawOpenCV, threads: list[int],
                    runs: int) -> dict[tuple[str, int], float]:
    wall, cpu, ratios = per_photo(scenes, engine, raw, threads, runs)
    print(f"\nWall-clock ms per photo, median (p90) of {runs} interleaved runs after 1 warm-up; "
          "'faces' = faces embedded. Goals: FaceLedger >= 8x faster than face_recognition, "
          "and <= 1.2x raw OpenCV.\n")
    print(md_table(["photo", "threads", "FaceLedger", "faces", "raw OpenCV", "faces", "face_recognition",
                    "faces", "face_recognition / FaceLedger", "FaceLedger / raw OpenCV"], wall))
    n8 = sum("PASS" in str(r[-2]) for r in wall)
    n12 = sum("PASS" in str(r[-1]) for r in wall)
    print(f"\nGoal >= 8x faster than face_recognition: met in {n8} of {len(wall)} cells; "
          f"goal <= 1.2x raw OpenCV: met in {n12} of {len(wall)} (wall clock).")
    print("\nThe same runs in process CPU time (ms, median; all threads summed, so 1 thread is the "
          "figure least disturbed by other load on the machine):\n")
    print(md_table(["photo", "threads", "FaceLedger", "raw OpenCV", "face_recognition",
                    "face_recognition / FaceLedger", "FaceLedger / raw OpenCV"], cpu))
    return ratios


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5, help="timed runs per measurement (after 1 warm-up)")
    ap.add_argument("--threads", default=None,
                    help="OpenCV thread counts to measure, comma-separated (default 1,2; the high-resolution "
                         "tables use the smallest given: one thread, as their text says)")
    ap.add_argument("--crops", type=int, default=16, help="aligned LFW crops for the embedder-alone rows")
    ap.add_argument("--profile", choices=["auto", "always", "never"], default="auto",
                    help="show where FaceLedger's time goes where it is over 1.2x raw OpenCV (auto)")
    ap.add_argument("--only-highres", action="store_true", help="only the high-resolution tables")
    ap.add_argument("--no-highres", action="store_true", help="skip the high-resolution tables")
    ap.add_argument("--before", type=Path, default=None,
                    help="another checkout of FaceLedger to time on the high-resolution set (before/after)")
    ap.add_argument("--per-band", type=int, default=2, help="source photos per band (each gives 2 photos)")
    args = ap.parse_args()
    threads = [int(t) for t in (args.threads or ("1" if args.only_highres else "1,2")).split(",")]
    root = testdata_dir()
    t_start = time.perf_counter()
    if args.only_highres:
        cv2.setNumThreads(min(threads))
        print("## Speed on high-resolution photos\n")
        print(md_table(["machine", "value"], [*machine_rows(), ("load average at start", load_average())]))
        print(f"\nReproduce: `{reproduce_command()}`; OpenCV threads: {min(threads)}")
        highres.run(root, args.runs, args.before, args.per_band)
        print(f"\nLoad average at the end: {load_average()}. "
              f"Total runtime of this program: {time.perf_counter() - t_start:.0f} s.")
        return
    engine, raw = Recognizer(), RawOpenCV()
    scenes = build_scenes(root)
    print_header(scenes, engine, raw)
    ratios = print_per_photo(scenes, engine, raw, threads, args.runs)

    print("\n### Batched embedding (faces per second)\n")
    print(md_table(["what", "threads", "ms per call, median (p90)", "faces/s", "output check"],
                   batch_rows(root, engine, raw, threads, args.crops, args.runs)))

    cv2.setNumThreads(max(threads))
    print(f"\n### Decoding, apart from the model time ({max(threads)} OpenCV threads; ms, median (p90))\n")
    print(md_table(["JPEG bytes", "FaceLedger load_image (Pillow + EXIF + SHA-256)",
                    "face_recognition.load_image_file (Pillow)", "cv2.imdecode + BGR->RGB"],
                   decode_rows(root, scenes, args.runs)))

    if not args.no_highres:
        cv2.setNumThreads(min(threads))
        highres.run(root, args.runs, args.before, args.per_band)

    slow = [s for s in scenes if ratios.get((s.name, threads[0]), 0) > 1.2]
    to_profile = scenes if args.profile == "always" else ([] if args.profile == "never" else slow)
    cv2.setNumThreads(1)
    for sc in to_profile:
        print(f"\n### Where FaceLedger's time goes: {sc.name}, 1 thread\n")
        print(md_table(["stage", "wall ms, median (p90)", "CPU ms, median"],
                       attribution_rows(sc, engine, raw, args.runs)))
        print("\n" + profile_text(sc, engine))
    print(f"\nLoad average at the end: {load_average()}. "
          f"Total runtime of this program: {time.perf_counter() - t_start:.0f} s.")


if __name__ == "__main__":
    main()
