"""A template reuses the aligned crop its quality was measured on, and is the very same template."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from faceledger import Recognizer
from faceledger.models import sface_ort, yunet_sface


@pytest.fixture(scope="module")
def photos(lfw: Path, groups: Path, photo_640x480) -> list[tuple[bytes | Path, object]]:
    """(photo, face choice): the subject found at 320 px, an LFW photo searched whole, a group photo."""
    return [(photo_640x480(lfw / "Aaron_Peirsol" / "Aaron_Peirsol_0001.jpg"), None),
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
