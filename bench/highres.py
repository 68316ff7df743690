"""The high-resolution set of ``bench/speed.py``: real photos of 0.3-12 MP, FaceLedger vs face_recognition.

Made at bench time in a temporary folder (never committed) from the shared group photos:
*portraits* (a crop around one face of a group photo, face about a quarter of the width)
and *groups* (the whole photo), each resized (area filter down, bicubic up) to a target
size and written as JPEG quality 90. Every contender reads the same files from disk, so
decoding is part of each figure, as it is for a user.

* FaceLedger: ``Recognizer.template(path, face="largest")`` (decode for search, bounded
  coarse-to-fine detection, alignment, SFace); a shared ``Recognizer``.
* face_recognition 1.3.0, its defaults: ``load_image_file``, ``face_locations`` (HOG, one
  upsample), ``face_encodings`` of the largest face only (fewer encodings than its own
  ``face_encodings(image)``, which encodes every face).
* The floor: one reduced decode + one detector pass over the subject search's coarse copy
  (640 px) + one SFace forward pass, timed apart (what no pipeline can go below on this CPU).

``--before PATH`` also times FaceLedger from another source tree (e.g. a checkout of the
commit before issue 12) in a subprocess on the same files, for before/after in one run.
"""

from __future__ import annotations

import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from _common import REPO_ROOT, fmt_ms, md_table

#: (band label, megapixels made for it)
BANDS = [("0.2-0.5 MP", 0.3), ("0.5-1.5 MP", 1.0), ("1.5-3 MP", 2.8), ("3-6 MP", 5.0), ("6-12 MP", 12.0)]
GROUPS = ("deepface_couple.jpg", "facenetpytorch_multiface.jpg", "retinaface_img3.jpg", "ultralight_10.jpg")


@dataclass(frozen=True)
class Photo:
    path: Path
    band: str
    kind: str  # "portrait" or "group"
    megapixels: float


def _resize_to(rgb: np.ndarray, megapixels: float) -> np.ndarray:
    import cv2

    h, w = rgb.shape[:2]
    s = (megapixels * 1e6 / (w * h)) ** 0.5
    interp = cv2.INTER_AREA if s < 1 else cv2.INTER_CUBIC
    return cv2.resize(rgb, (max(1, round(w * s)), max(1, round(h * s))), interpolation=interp)


def _portrait(rgb: np.ndarray, box: tuple[float, float, float, float]) -> np.ndarray:
    """A 3:4 crop around a face, the face about a quarter of its width."""
    x, y, w, h = box
    cw = min(rgb.shape[1], 4 * w)
    ch = min(rgb.shape[0], cw * 4 / 3)
    cx, cy = x + w / 2, y + h / 2
    x0 = int(min(max(0, cx - cw / 2), rgb.shape[1] - cw))
    y0 = int(min(max(0, cy - ch * 0.4), rgb.shape[0] - ch))
    return rgb[y0 : y0 + int(ch), x0 : x0 + int(cw)]


def build_set(root: Path, folder: Path, recognizer, per_band: int = 2) -> list[Photo]:
    """Portraits and groups at every band (``per_band`` of each kind), written to ``folder``."""
    import cv2

    photos = []
    sources = []
    for name in GROUPS:
        img = recognizer.load(root / "groups" / name)
        faces = sorted(recognizer.detect(img, quality=False), key=lambda f: -f.box.w)
        sources.append((name, img.rgb, faces[0].box.as_tuple()))
    for band, mp in BANDS:
        for k in range(per_band):
            name, rgb, box = sources[k % len(sources)]
            for kind, pixels in (("portrait", _portrait(rgb, box)), ("group", rgb)):
                out = _resize_to(pixels, mp)
                path = folder / f"{kind}-{Path(name).stem}-{mp:g}MP.jpg"
                cv2.imwrite(str(path), cv2.cvtColor(out, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 90])
                photos.append(Photo(path, band, kind, out.shape[0] * out.shape[1] / 1e6))
    return photos


def time_paths(fn, paths: list[Path], runs: int) -> list[tuple[float, float]]:
    """Median (wall, process CPU) seconds of ``fn(path)`` per path (one warm-up call first)."""
    fn(paths[0])
    out = []
    for p in paths:
        wall, cpu = [], []
        for _ in range(runs):
            c, t = time.process_time(), time.perf_counter()
            fn(p)
            wall.append(time.perf_counter() - t)
            cpu.append(time.process_time() - c)
        out.append((statistics.median(wall), statistics.median(cpu)))
    return out


def face_recognition_template(path: Path) -> int:
    import face_recognition as fr

    img = fr.load_image_file(str(path))
    locs = fr.face_locations(img)
    if not locs:
        return 0
    largest = max(locs, key=lambda loc: (loc[1] - loc[3]) * (loc[2] - loc[0]))
    return len(fr.face_encodings(img, [largest]))


def floor_seconds(recognizer, path: Path, runs: int) -> float:
    """One reduced decode + one detector pass on the coarse copy + one SFace forward pass."""
    from faceledger.core.align import align_face
    from faceledger.models.coarse import shrink

    det, emb = recognizer.backend.detector, recognizer.backend.embedder
    img = recognizer.load(path, for_search=True)
    from faceledger.recognizer import SUBJECT_SIDE

    small = shrink(img.rgb, SUBJECT_SIDE)[0] if max(img.rgb.shape[:2]) > SUBJECT_SIDE else img.rgb
    face = recognizer.detect(img, quality=False)[0]
    crop = align_face(img.rgb, np.array(face.landmarks, np.float32) * img.scale)
    box = np.zeros((1, 4), np.float32)
    ref = np.array([[38.29, 51.70], [73.53, 51.50], [56.03, 71.74], [41.55, 92.37], [70.73, 92.20]], np.float32)

    def once() -> None:
        recognizer.load(path, for_search=True)
        det._detect_once(small)
        emb.embed(crop, box, ref[None])

    return statistics.median(c for _, c in time_paths(lambda _p: once(), [path] * runs, 1))


BEFORE = """
import json, sys, time, statistics
from faceledger import Recognizer
r = Recognizer()
paths = sys.argv[2:]
import cv2
cv2.setNumThreads(1)
r.template(paths[0], face="largest")
out = []
for p in paths:
    w, c = [], []
    for _ in range(int(sys.argv[1])):
        c0, t = time.process_time(), time.perf_counter(); r.template(p, face="largest")
        w.append(time.perf_counter() - t); c.append(time.process_time() - c0)
    out.append((statistics.median(w), statistics.median(c)))
print(json.dumps(out))
"""


def before_times(src: Path, paths: list[Path], runs: int) -> list[tuple[float, float]]:
    env = {"PYTHONPATH": str(src / "src"), "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-c", BEFORE, str(runs), *map(str, paths)], capture_output=True,
                         text=True, env=env, timeout=3600, cwd=REPO_ROOT)
    if out.returncode:
        raise RuntimeError(out.stderr[-2000:])
    return [tuple(x) for x in json.loads(out.stdout.strip().splitlines()[-1])]


def band_rows(photos: list[Photo], ours: list, theirs: list, before: list | None,
              floors: dict[str, float]) -> list[list[object]]:
    """Per band: CPU ms per photo (wall in brackets) and face_recognition's ratio on CPU time."""
    rows = []
    for band, _ in BANDS:
        idx = [i for i, p in enumerate(photos) if p.band == band]

        def cell(series: list, k: int = 1, idx: list[int] = idx) -> float:
            return sum(series[i][k] for i in idx)

        fl, fr_ = cell(ours), cell(theirs)
        row = [band, len(idx), f"{fmt_ms(1000 * fl / len(idx))} ({fmt_ms(1000 * cell(ours, 0) / len(idx))})",
               f"{fmt_ms(1000 * fr_ / len(idx))} ({fmt_ms(1000 * cell(theirs, 0) / len(idx))})",
               f"{fr_ / fl:.1f}x"]
        if before is not None:
            bf = cell(before)
            row += [f"{fmt_ms(1000 * bf / len(idx))} ({fmt_ms(1000 * cell(before, 0) / len(idx))})", f"{fr_ / bf:.1f}x"]
        row.append(fmt_ms(1000 * floors[band]))
        rows.append(row)
    return rows


LARGE = """
import json, sys, time
def status(field):
    for line in open("/proc/self/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
def rss():
    return status("VmRSS")
from faceledger import Recognizer
r = Recognizer()
r.template(sys.argv[2], face="largest")
base = rss()
runs = []
for _ in range(3):
    c, t = time.process_time(), time.perf_counter()
    n = len(r.detect(sys.argv[1]))
    runs.append((time.perf_counter() - t, time.process_time() - c, n, rss()))
print(json.dumps({"runs": runs, "base": base, "peak": status("VmHWM")}))
"""


def large_photo_rows(root: Path, folder: Path, before: Path | None) -> list[list[object]]:
    """A 39.7 MP PNG and JPEG (a group photo on a 7720x5140 canvas): detect time, CPU, peak RSS, RSS after."""
    import cv2

    photo = cv2.imread(str(root / "groups" / "deepface_couple.jpg"))
    canvas = np.full((5140, 7720, 3), (90, 120, 150), np.uint8)
    y, x = (5140 - photo.shape[0]) // 2, (7720 - photo.shape[1]) // 2
    canvas[y : y + photo.shape[0], x : x + photo.shape[1]] = photo
    rows = []
    small = root / "lfw" / "images" / "Jean_Charest" / "Jean_Charest_0001.jpg"
    for suffix in (".png", ".jpg"):
        path = folder / f"large-39.7MP{suffix}"
        cv2.imwrite(str(path), canvas, [cv2.IMWRITE_JPEG_QUALITY, 90])
        trees = [("after", REPO_ROOT)] + ([("before", before)] if before else [])
        for label, tree in trees:
            env = {"PYTHONPATH": str(tree / "src"), "PATH": "/usr/bin:/bin"}
            out = subprocess.run([sys.executable, "-c", LARGE, str(path), str(small)], capture_output=True,
                                 text=True, env=env, timeout=3600)
            if out.returncode:
                rows.append([f"{path.name} ({path.stat().st_size / 1e6:.1f} MB)", label, "failed", "", "", "", ""])
                continue
            r = json.loads(out.stdout.strip().splitlines()[-1])
            wall = statistics.median(x[0] for x in r["runs"])
            cpu = statistics.median(x[1] for x in r["runs"])
            rows.append([f"{path.name} ({path.stat().st_size / 1e6:.1f} MB)", label, f"{wall:.2f}", f"{cpu:.2f}",
                         r["runs"][0][2], f"{r['peak']:.0f}", f"{r['base']:.0f} -> {r['runs'][-1][3]:.0f}"])
    del canvas
    return rows


def module_loop_rows(root: Path, calls: int) -> list[list[object]]:
    """``faceledger.verify`` in a loop against a held ``Recognizer.verify`` (same pair, same process)."""
    import faceledger

    a = root / "lfw" / "images" / "Jean_Charest" / "Jean_Charest_0001.jpg"
    b = root / "lfw" / "images" / "Jean_Charest" / "Jean_Charest_0002.jpg"
    held = faceledger.Recognizer()
    held.verify(a, b, face_a="center", face_b="center")
    faceledger.verify(a, b, face_a="center", face_b="center")  # the first call loads the shared one
    t = time.perf_counter()
    for _ in range(calls):
        held.verify(a, b, face_a="center", face_b="center")
    t_held = (time.perf_counter() - t) / calls
    t = time.perf_counter()
    for _ in range(calls):
        faceledger.verify(a, b, face_a="center", face_b="center")
    t_module = (time.perf_counter() - t) / calls
    ratio = t_module / t_held
    return [[f"{calls} calls, LFW pair", fmt_ms(1000 * t_held), fmt_ms(1000 * t_module), f"{ratio:.2f}x",
             "PASS" if ratio <= 1.2 else "FAIL"]]


def run(root: Path, runs: int, before: Path | None, per_band: int) -> None:
    """Print the high-resolution tables."""
    import cv2

    from faceledger import Recognizer

    rec = Recognizer()
    cv2.setNumThreads(1)  # dlib uses one core: compare the work on one core, in CPU time
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        photos = build_set(root, folder, rec, per_band)
        paths = [p.path for p in photos]
        print("\n### High-resolution photos: one template per photo, from the file\n")
        print(f"{len(photos)} photos made from `groups/` ({', '.join(GROUPS)}): portraits (a crop around the "
              "largest face, face about 1/4 of the width) and whole group photos, resized to each band and "
              "written as JPEG q90. One thread for every contender. Times are the mean over the band's photos "
              f"of each photo's median ({runs} runs; 1 for face_recognition above 3 MP): process CPU ms, "
              "wall ms in brackets; the ratio is on CPU time (least disturbed by other load).\n")
        print("  FaceLedger", file=sys.stderr)
        ours = time_paths(lambda p: rec.template(p, face="largest"), paths, runs)
        print("  face_recognition", file=sys.stderr)
        theirs = [time_paths(face_recognition_template, [p.path], 1 if p.megapixels > 3 else runs)[0]
                  for p in photos]
        prior = None
        if before is not None:
            print("  FaceLedger before", file=sys.stderr)
            prior = before_times(before, paths, runs)
        floors = {band: statistics.median(floor_seconds(rec, p.path, runs) for p in photos if p.band == band)
                  for band, _ in BANDS}
        headers = ["band", "photos", "FaceLedger CPU (wall) ms", "face_recognition CPU (wall) ms",
                   "face_recognition / FaceLedger"]
        if prior is not None:
            headers += ["FaceLedger before CPU (wall) ms", "face_recognition / before"]
        headers.append("floor CPU ms (decode + 1 detector pass at 640 px + 1 SFace)")
        print(md_table(headers, band_rows(photos, ours, theirs, prior, floors)))
        small = [i for i, p in enumerate(photos) if p.megapixels <= 3.0]
        total_ours, total_theirs = sum(ours[i][1] for i in small), sum(theirs[i][1] for i in small)
        line = (f"\nPhotos of 0.2-2.8 MP ({len(small)}): face_recognition / FaceLedger = "
                f"**{total_theirs / total_ours:.1f}x** in CPU time over the set (goal >= 10x)")
        if prior is not None:
            line += f"; before: {total_theirs / sum(prior[i][1] for i in small):.1f}x"
        print(line + ".")
        print("\n### A 39.7-megapixel photo: `Recognizer.detect`, in a fresh process\n")
        print(md_table(["photo", "code", "wall s (median of 3)", "CPU s", "faces", "peak RSS MB",
                        "RSS MB before -> after 3 photos"], large_photo_rows(root, folder, before)))
    print("\n### `faceledger.verify` in a loop against a held `Recognizer` (goal <= 1.2x)\n")
    print(md_table(["what", "held Recognizer ms/call", "faceledger.verify ms/call", "ratio", "goal"],
                   module_loop_rows(root, 10)))
    print(f"\n(peak RSS of this benchmark process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB)")
