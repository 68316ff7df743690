"""Which face of a photo is used by default: the subject, when it is clear (issue 12)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from faceledger.errors import MultipleFacesError
from faceledger.evaluate.lfw import read_pairs
from faceledger.recognizer import CENTRAL_RATIO, choose_face, subject_of
from faceledger.types import Box, Face


def face(x: float, y: float, w: float, h: float | None = None) -> Face:
    return Face(Box(x, y, w, h if h is not None else w * 1.3), ((0.0, 0.0),) * 5, 0.9)  # type: ignore[arg-type]


# -- the rule, on boxes (no model) ----------------------------------------------------------------
def test_one_face_is_the_subject():
    only = face(10, 10, 30)
    assert subject_of([only], 250, 250) is only


def test_a_centred_face_somewhat_wider_than_the_others_is_the_subject():
    subject, other = face(80, 70, 92), face(20, 100, 92 / (CENTRAL_RATIO + 0.05))
    assert subject_of([other, subject], 250, 250) is subject
    close = face(20, 100, 92 / (CENTRAL_RATIO - 0.05))
    assert subject_of([close, subject], 250, 250) is None


def test_faces_cut_by_the_frame_are_bystanders_of_a_centred_subject():
    subject = face(80, 70, 90)
    cut_and_larger = face(150, 40, 100, 160)  # reaches the right border
    assert subject_of([cut_and_larger, subject], 250, 250) is subject


def test_an_off_centre_subject_must_be_much_larger():
    centred_small = face(110, 110, 30)
    left_big = face(10, 60, 70)  # 2.3x wider, but not the face nearest the centre
    assert subject_of([centred_small, left_big], 250, 250) is left_big
    left_medium = face(10, 60, 50)  # 1.7x: not clear
    assert subject_of([centred_small, left_medium], 250, 250) is None


def test_only_faces_cut_by_the_frame_is_ambiguous():
    assert subject_of([face(0, 10, 60), face(200, 10, 50)], 250, 250) is None


def test_only_and_none_differ_on_a_photo_with_a_clear_subject():
    subject, bystander = face(80, 70, 92), face(5, 200, 30)
    assert choose_face([subject, bystander], None, 250, 250) is subject
    with pytest.raises(MultipleFacesError) as info:
        choose_face([subject, bystander], "only", 250, 250)
    assert info.value.details["count"] == 2


# -- on real photos ----------------------------------------------------------------------------------
def test_lfw_fold_1_default_choice_refuses_at_most_1_percent_and_picks_the_subject(engine, testdata: Path):
    """Every photo of LFW View 2 fold 1: the default choice refuses <= 1% of the 600 pairs,
    and whatever it picks is the centred subject (LFW's protocol face)."""
    pairs = [p for p in read_pairs(testdata / "lfw" / "pairs.txt").pairs if p.fold == 0]
    images = sorted({k for p in pairs for k in (p.a, p.b)})
    refused, several = set(), 0
    for key in images:
        faces = engine.detect(testdata / "lfw" / "images" / key, quality=False)
        several += len(faces) > 1
        try:
            chosen = choose_face(faces, None, 250, 250)
        except MultipleFacesError:
            refused.add(key)
            continue
        assert chosen is choose_face(faces, "center", 250, 250), key
    refused_pairs = sum(p.a in refused or p.b in refused for p in pairs)
    assert several >= 100  # the fold has many photos with background faces: the test means something
    assert refused_pairs <= 6, sorted(refused)


def test_verify_with_defaults_on_photos_with_background_faces(engine, lfw: Path):
    """Photos of fold 1 with two or three faces verify with default arguments, on the subject."""
    for name in ("Andy_Griffith/Andy_Griffith_0001.jpg", "Bertrand_Bonello/Bertrand_Bonello_0001.jpg"):
        path = lfw / name
        assert len(engine.detect(path, quality=False)) >= 2
        default, centre = engine.template(path), engine.template(path, face="center")
        assert np.allclose(default.vector, centre.vector)
    result = engine.verify(lfw / "Bertrand_Bonello/Bertrand_Bonello_0001.jpg",
                           lfw / "Bertrand_Bonello/Bertrand_Bonello_0002.jpg")
    assert result.match and result.face_a is not None and result.face_b is not None


def test_a_group_photo_is_still_refused_with_the_clear_error(engine, groups: Path):
    with pytest.raises(MultipleFacesError) as info:
        engine.template(groups / "ultralight_10.jpg")
    assert info.value.code == "multiple_faces" and "choose one" in info.value.message
