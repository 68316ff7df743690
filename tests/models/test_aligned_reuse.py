"""A template reuses the aligned crop its quality was measured on, and is the very same template."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from faceledger import Recognizer
from faceledger.models import sface_ort, yunet_sface


def _jpeg_640x480(path: Path) -> bytes:
    """load_verify's photos: an LFW portrait scaled to 480x480, edges replicated to 640x480."""
    with Image.open(path) as im:
        square = np.asarray(im.convert("RGB").resize((480, 480), Image.BICUBIC))
    out = io.BytesIO()
    Image.fromarray(np.pad(square, ((0, 0), (80, 80), (0, 0)), mode="edge")).save(out, "JPEG", quality=90)
    return out.getvalue()


@pytest.fixture(scope="module")
def photos(lfw: Path, groups: Path) -> list[tuple[bytes | Path, object]]:
    """(photo, face choice): the subject found at 320 px, an LFW photo searched whole, a group photo."""
    return [(_jpeg_640x480(lfw / "Aaron_Peirsol" / "Aaron_Peirsol_0001.jpg"), None),
            (lfw / "Jennifer_Garner" / "Jennifer_Garner_0003.jpg", None),
            (groups / "deepface_couple.jpg", "largest"),
            (groups / "facenetpytorch_multiface.jpg", 0)]


def test_templates_with_the_quality_crop_reused_equal_templates_aligned_again(engine: Recognizer, photos,
                                                                              monkeypatch):
    embedder = engine.backend.embedder
    assert hasattr(embedder, "embed_aligned")
    aligned = [0]
    real = sface_ort.align_face if isinstance(embedder, sface_ort.OrtSFaceEmbedder) else yunet_sface.align_face
    module = sface_ort if isinstance(embedder, sface_ort.OrtSFaceEmbedder) else yunet_sface

    def counting(*args, **kwargs):
        aligned[0] += 1
        return real(*args, **kwargs)

    monkeypatch.setattr(module, "align_face", counting)
    reused = [engine.template(photo, face=choice) for photo, choice in photos]
    assert aligned[0] == 0  # the embedder aligned nothing itself
    finish = Recognizer._finish
    monkeypatch.setattr(Recognizer, "_finish", lambda self, *a, **k: (finish(self, *a, **k)[0], None))  # no crop
    again = [engine.template(photo, face=choice) for photo, choice in photos]
    assert aligned[0] == len(photos)
    for a, b in zip(reused, again, strict=True):
        assert np.array_equal(a.vector, b.vector)
        assert a.face == b.face
