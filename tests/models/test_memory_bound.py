"""A 39.7-megapixel photo is searched in bounded memory, and the memory is given back (issue 12).

The photo is made at test time from a real group photo (``groups/deepface_couple.jpg``,
two faces) placed on a 7720x5140 canvas and written as PNG (~6 MB: under the byte cap,
just under the 40 MP pixel cap). Peak RSS is the child process's own high-water mark
(VmHWM; ru_maxrss would fold in the parent's).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BUILD = """
import sys, numpy as np
from faceledger._cv import cv2
photo = cv2.imread(sys.argv[1])
H, W = 5140, 7720
canvas = np.full((H, W, 3), (90, 120, 150), np.uint8)
y, x = (H - photo.shape[0]) // 2, (W - photo.shape[1]) // 2
canvas[y:y + photo.shape[0], x:x + photo.shape[1]] = photo
ok, enc = cv2.imencode(sys.argv[3], canvas, [cv2.IMWRITE_PNG_COMPRESSION, 6, cv2.IMWRITE_JPEG_QUALITY, 90])
open(sys.argv[2], "wb").write(enc.tobytes())
"""

MEASURE = """
import json, sys
def status(field):
    for line in open("/proc/self/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
def rss():
    return status("VmRSS")
from faceledger import Recognizer
r = Recognizer()
r.detect(sys.argv[2])  # models loaded and warm on an ordinary photo
before = rss()
runs = []
for _ in range(3):
    faces = r.detect(sys.argv[1])
    runs.append({"faces": len(faces), "rss": rss(), "widths": [f.box.w for f in faces]})
print(json.dumps({"before": before, "runs": runs, "peak": status("VmHWM")}))
"""

PEAK_MB = 500


def _run(code: str, *args: str) -> str:
    out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout


@pytest.mark.slow
@pytest.mark.parametrize("suffix", [".png", ".jpg"])
def test_a_39_megapixel_photo_is_searched_in_bounded_memory(tmp_path: Path, groups: Path, lfw: Path, suffix: str):
    big = tmp_path / f"big{suffix}"
    _run(BUILD, str(groups / "deepface_couple.jpg"), str(big), suffix)
    assert big.stat().st_size < 15 * 1024 * 1024
    result = json.loads(_run(MEASURE, str(big), str(lfw / "Jean_Charest" / "Jean_Charest_0001.jpg")))
    runs = result["runs"]
    assert [r["faces"] for r in runs] == [2, 2, 2]
    assert all(w > 400 for w in runs[0]["widths"])  # in the photo's own pixels (the faces are ~600 px)
    assert result["peak"] <= PEAK_MB, result
    # Memory is given back: three photos in a row hold no more than one (only the bounded
    # cache of detector networks stays), and nowhere near the photo's 119 MB of pixels each.
    assert runs[2]["rss"] <= runs[0]["rss"] + 25, result
    assert runs[2]["rss"] <= result["before"] + 150, result
