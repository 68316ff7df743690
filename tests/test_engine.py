"""The engine's public behaviour on real photos: verify, face choice, refusals."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import faceledger
from faceledger import Recognizer, Template
from faceledger.core.geometry import iou
from faceledger.errors import (
    FaceSelectionError,
    ModelMismatchError,
    MultipleFacesError,
    NoFaceError,
    NotCalibratedError,
)
from faceledger.models.thresholds import Thresholds


def pairs(path: Path, same: bool, n: int) -> list[tuple[str, str]]:
    """The first ``n`` same-person or different-person pairs of an LFW pairs file."""
    out = []
    for line in path.read_text().splitlines()[1:]:
        f = line.split("\t")
        if same and len(f) == 3:
            out.append((f"{f[0]}/{f[0]}_{int(f[1]):04d}.jpg", f"{f[0]}/{f[0]}_{int(f[2]):04d}.jpg"))
        elif not same and len(f) == 4:
            out.append((f"{f[0]}/{f[0]}_{int(f[1]):04d}.jpg", f"{f[2]}/{f[2]}_{int(f[3]):04d}.jpg"))
    return out[:n]


def test_verify_lfw_sample(engine: Recognizer, testdata: Path):
    """25 genuine and 25 impostor pairs of View 1's test split, at the default operating point."""
    images = testdata / "lfw" / "images"
    dev_test = testdata / "lfw" / "pairsDevTest.txt"
    right = 0
    for same in (True, False):
        for a, b in pairs(dev_test, same, 25):
            r = engine.verify(images / a, images / b, face_a="center", face_b="center")
            assert r.model_id == engine.model_id and r.operating_point == "fmr1e-3"
            assert r.match == (r.score >= r.threshold)
            right += r.match == same
    assert right >= 47, f"{right}/50 pairs decided correctly"


def test_verify_reports_score_threshold_and_faces(engine: Recognizer, lfw: Path):
    a = lfw / "Aaron_Peirsol" / "Aaron_Peirsol_0001.jpg"
    b = lfw / "Aaron_Peirsol" / "Aaron_Peirsol_0002.jpg"
    r = engine.verify(a, b)
    assert r.match and -1 <= r.score <= 1 and r.score > r.threshold
    assert r.face_a is not None and r.face_b is not None
    strict = engine.verify(a, b, operating_point="fmr1e-4")
    assert strict.threshold > r.threshold and strict.score == pytest.approx(r.score)
    with pytest.raises(NotCalibratedError, match="fmr0.5"):
        engine.verify(a, b, operating_point="fmr0.5")


def test_verify_accepts_templates_and_bytes(engine: Recognizer, lfw: Path):
    a = lfw / "Aaron_Peirsol" / "Aaron_Peirsol_0001.jpg"
    ta = engine.template(a)
    r1 = engine.verify(ta, a.read_bytes())
    assert r1.score == pytest.approx(1.0, abs=1e-5)


def test_no_face_is_an_error(engine: Recognizer):
    blank = np.full((200, 200, 3), 128, np.uint8)
    assert engine.detect(blank) == []
    with pytest.raises(NoFaceError):
        engine.verify(blank, blank)


def test_several_faces_need_a_choice(engine: Recognizer, groups: Path, lfw: Path):
    group = groups / "facenetpytorch_multiface.jpg"
    with pytest.raises(MultipleFacesError) as info:
        engine.template(group)
    assert info.value.details["count"] == 6
    faces = engine.detect(group)
    assert engine.template(group, face=2).face == faces[2]
    # A face chosen by rule is found on a reduced copy and refined on a crop of the photo, so its box is
    # the same face as detect()'s, re-measured: compare by overlap, not by equality.
    def same_face(chosen, expected) -> bool:
        boxes = np.array([[b.x, b.y, b.w, b.h] for b in (chosen.box, expected.box)], np.float64)
        return float(iou(boxes[:1], boxes[1:])[0, 0]) > 0.8

    largest = engine.template(group, face="largest").face
    assert same_face(largest, max(faces, key=lambda f: f.box.area))
    center = engine.template(group, face="center").face
    assert sum(same_face(center, f) for f in faces) == 1
    for bad in (6, -1, "smallest", 1.5, True):
        with pytest.raises(FaceSelectionError):
            engine.template(group, face=bad)


def test_templates_of_another_model_are_refused(engine: Recognizer, lfw: Path):
    t = engine.template(lfw / "Aaron_Peirsol" / "Aaron_Peirsol_0001.jpg")
    alien = Template(vector=t.vector, model_id="dlib-resnet-v1")
    with pytest.raises(ModelMismatchError):
        engine.compare(t, alien)


def test_uncalibrated_backend_refuses_to_decide(engine: Recognizer, lfw: Path):
    from dataclasses import replace

    bare = Recognizer(replace(engine.backend, thresholds=Thresholds(engine.model_id)))
    with pytest.raises(NotCalibratedError):
        bare.verify(lfw / "Aaron_Peirsol" / "Aaron_Peirsol_0001.jpg", lfw / "Aaron_Peirsol" / "Aaron_Peirsol_0002.jpg")


def test_module_level_functions(lfw: Path):
    photo = lfw / "Aaron_Peirsol" / "Aaron_Peirsol_0001.jpg"
    assert len(faceledger.detect(photo)) == 1
    assert faceledger.verify(photo, photo).match


def test_public_api_is_what_all_says():
    for name in faceledger.__all__:
        assert hasattr(faceledger, name), name
    assert not any(n in dir(faceledger) for n in ("age", "gender", "emotion", "race", "attributes"))
