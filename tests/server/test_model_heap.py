"""A model thread reuses its heap between runs instead of faulting fresh pages in every time.

In fresh processes (the malloc setting is process-wide and applies to the arenas made after it,
as the service sets it before it starts its model threads): verifications of two real 640x480
photos on a new thread, with glibc's settings as the models leave them, and with
:func:`keep_model_heap` called first. Minor page faults are counted per thread (RUSAGE_THREAD),
after one warm-up run.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

CHILD = """
import io, json, resource, sys, threading
from PIL import Image
from faceledger import Recognizer
from faceledger.server.pool import keep_model_heap

def jpeg(path):
    with Image.open(path) as im:
        im = im.convert("RGB").resize((480, 480))
    canvas = Image.new("RGB", (640, 480), (128, 128, 128))
    canvas.paste(im, (80, 0))
    out = io.BytesIO()
    canvas.save(out, "JPEG", quality=90)
    return out.getvalue()

kept = keep_model_heap() if sys.argv[3] == "pad" else None
a, b = jpeg(sys.argv[1]), jpeg(sys.argv[2])
rec = Recognizer()
faults = []

def runs():
    rec.verify(a, b)
    before = resource.getrusage(resource.RUSAGE_THREAD).ru_minflt
    for _ in range(3):
        rec.verify(a, b)
    faults.append((resource.getrusage(resource.RUSAGE_THREAD).ru_minflt - before) / 3)

t = threading.Thread(target=runs)
t.start()
t.join()
print(json.dumps({"kept": kept, "faults": faults[0]}))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc settings")
def test_a_model_thread_keeps_its_heap_between_runs(lfw: Path):
    person = lfw / "Aaron_Peirsol"

    def child(mode: str) -> dict:
        out = subprocess.run([sys.executable, "-c", CHILD, str(person / "Aaron_Peirsol_0001.jpg"),
                              str(person / "Aaron_Peirsol_0002.jpg"), mode], capture_output=True, text=True,
                             timeout=300)
        assert out.returncode == 0, out.stderr[-2000:]
        return json.loads(out.stdout)

    default, pad = child("default"), child("pad")
    assert pad["kept"] is True
    # Without the pad every large buffer is mapped anew: ~600 faults (~2.4 MB) per verification since
    # YuNet's input buffer is kept per thread (~6,000 before); with it, next to none.
    assert default["faults"] > 300, default
    assert pad["faults"] < min(50, default["faults"] / 10), pad
