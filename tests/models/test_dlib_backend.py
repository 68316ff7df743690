"""The ``dlib`` backend on real LFW photos: hashes, detection, landmarks, templates, ordering."""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("dlib", reason="the dlib backend needs: pip install 'faceledger[dlib]'")

from faceledger.errors import BackendUnavailableError, ConfigError, ModelFileError  # noqa: E402
from faceledger.media.image import load_image  # noqa: E402
from faceledger.models import dlib_backend as db  # noqa: E402
from faceledger.models.base import DetectOptions  # noqa: E402
from faceledger.models.files import ModelFile, sha256_file  # noqa: E402
from faceledger.recognizer import Recognizer  # noqa: E402

PORTRAITS = ["Aaron_Peirsol/Aaron_Peirsol_0001.jpg", "Jean_Charest/Jean_Charest_0002.jpg",
             "Serena_Williams/Serena_Williams_0003.jpg", "Gray_Davis/Gray_Davis_0013.jpg"]


def dev_test_pairs(lfw_root: Path, per_kind: int = 10) -> tuple[list, list]:
    """``per_kind`` genuine and impostor image-path pairs spread over LFW's pairsDevTest.txt."""
    rows = [line.split() for line in (lfw_root / "pairsDevTest.txt").read_text().splitlines()[1:]]

    def photo(name: str, number: str) -> Path:
        return lfw_root / "images" / name / f"{name}_{int(number):04d}.jpg"

    same = [(photo(r[0], r[1]), photo(r[0], r[2])) for r in rows if len(r) == 3]
    diff = [(photo(r[0], r[1]), photo(r[2], r[3])) for r in rows if len(r) == 4]
    step = len(same) // per_kind
    return same[::step][:per_kind], diff[::step][:per_kind]


def pair_cosines(recognizer: Recognizer, pairs: list) -> np.ndarray:
    cache: dict = {}

    def template(p: Path):
        if p not in cache:
            cache[p] = recognizer.template(p, face="center")
        return cache[p]

    return np.array([recognizer.compare(template(a), template(b)) for a, b in pairs])


def separation(genuine: np.ndarray, impostor: np.ndarray) -> float:
    """Difference of the means in pooled standard deviations (d'): scale-free, unlike raw cosines."""
    return float((genuine.mean() - impostor.mean()) / np.sqrt((genuine.var() + impostor.var()) / 2))


def ordering(genuine: np.ndarray, impostor: np.ndarray) -> float:
    """Fraction of (genuine, impostor) pairs ranked correctly (an AUC on the sample)."""
    return float(np.mean(genuine[:, None] > impostor[None, :]))


@pytest.fixture(scope="module")
def backend():
    return db.load()


@pytest.fixture(scope="module")
def recognizer(backend):
    return Recognizer(backend)


def test_load_checks_and_reports_model_files(backend):
    assert backend.model_id == "dlib-resnet-v1"
    assert backend.info.dimension == 128 and backend.info.detector == "dlib-hog"
    expected = {SHAPE.sha256 for SHAPE in (db.SHAPE_PREDICTOR_5, db.RESNET)}
    assert {sha for _, sha in backend.info.files} == expected
    for path, sha in backend.info.files:
        assert sha256_file(Path(path)) == sha


def _copy_as_package(tmp_path: Path, monkeypatch, model: ModelFile, extra: bytes) -> ModelFile:
    """A ModelFile pointing at a copy of ``model`` (plus ``extra`` bytes) in a temporary package."""
    pkg = tmp_path / "fl_tampered_models"
    (pkg / "models").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / model.relative_path).write_bytes(model.locate().read_bytes() + extra)
    monkeypatch.syspath_prepend(str(tmp_path))
    return replace(model, package="fl_tampered_models")


def test_intact_copy_verifies_and_tampered_copy_is_refused(tmp_path, monkeypatch):
    intact = _copy_as_package(tmp_path, monkeypatch, db.SHAPE_PREDICTOR_5, b"")
    assert intact.verified_path().is_file()
    (tmp_path / "fl_tampered_models" / intact.relative_path).open("ab").write(b"\0")
    with pytest.raises(ModelFileError, match="SHA-256"):
        intact.verified_path()
    monkeypatch.setattr(db, "SHAPE_PREDICTOR_5", intact)
    with pytest.raises(ModelFileError):
        db.load()


def test_tampered_mmod_file_is_refused(tmp_path, monkeypatch):
    tampered = _copy_as_package(tmp_path, monkeypatch, db.MMOD, b"x")
    monkeypatch.setattr(db, "MMOD", tampered)
    with pytest.raises(ModelFileError):
        db.load(detector="mmod")


def test_missing_packages_say_what_to_install(monkeypatch):
    with pytest.raises(BackendUnavailableError, match=r"pip install 'faceledger\[dlib\]'"):
        replace(db.RESNET, package="fl_no_such_package").verified_path()
    monkeypatch.setitem(sys.modules, "dlib", None)  # makes `import dlib` fail
    with pytest.raises(BackendUnavailableError, match=r"pip install 'faceledger\[dlib\]'"):
        db.load()


BAD_OPTIONS = [{"detector": "cnn"}, {"upsample": -1}, {"upsample": 9}, {"upsample": 1.5}]


@pytest.mark.parametrize("options", BAD_OPTIONS)
def test_bad_options_are_config_errors(options):
    with pytest.raises(ConfigError):
        db.load(**options)


def test_score_map_is_anchored_monotone_and_invertible():
    raw = np.array([-2.0, -0.5, 0.0, 0.5, 1.71, 4.0])
    for kind in ("hog", "mmod"):
        s = db.score_from_raw(raw, kind)
        assert np.all(np.diff(s) > 0) and s.min() > 0 and s.max() < 1
        assert s[2] == pytest.approx(0.6)  # dlib's own threshold -> our default
        for p in (0.3, 0.6, 0.9):
            back = db.score_from_raw(np.array([db.raw_threshold(p, kind)]), kind)[0]
            assert back == pytest.approx(p, abs=1e-6)


def test_plan_scale_upsamples_only_as_allowed_and_halves_for_large_faces():
    assert db.plan_scale(20, 1) == (1.0, 1)
    assert db.plan_scale(20, 3) == (1.0, 3)
    assert db.plan_scale(120, 2) == (1.0, 0)
    assert db.plan_scale(240, 1) == (0.5, 0)
    assert db.plan_scale(500, 1) == (0.25, 0)


@pytest.mark.parametrize("name", PORTRAITS)
def test_hog_finds_the_portrait_face_with_our_landmark_order(backend, lfw: Path, name: str):
    rgb = load_image(lfw / name).rgb
    found = backend.detector.detect(rgb, DetectOptions())
    assert len(found) >= 1
    cx, cy = found.boxes[:, 0] + found.boxes[:, 2] / 2, found.boxes[:, 1] + found.boxes[:, 3] / 2
    k = int(np.argmin((cx - 125) ** 2 + (cy - 125) ** 2))
    x, y, w, h = found.boxes[k]
    assert abs(cx[k] - 125) < 30 and abs(cy[k] - 125) < 35 and 60 < w < 160
    assert 0.6 <= found.scores[k] <= 1.0
    left_eye, right_eye, nose, ml, mr = found.landmarks[k]
    assert left_eye[0] < nose[0] < right_eye[0]
    assert nose[1] > max(left_eye[1], right_eye[1])
    assert x < left_eye[0] and right_eye[0] < x + w
    assert np.isnan([ml, mr]).all()


def test_detect_options_filter_faces(backend, lfw: Path):
    rgb = load_image(lfw / PORTRAITS[0]).rgb
    assert len(backend.detector.detect(rgb, DetectOptions())) == 1
    assert len(backend.detector.detect(rgb, DetectOptions(min_face_size=200))) == 0
    assert len(backend.detector.detect(rgb, DetectOptions(score_threshold=0.999))) == 0


def test_group_photo_and_a_lower_score_threshold(backend, groups: Path):
    rgb = load_image(groups / "facenetpytorch_multiface.jpg").rgb
    found = backend.detector.detect(rgb, DetectOptions())
    assert 5 <= len(found) <= 7  # 6 faces, counted by eye
    assert np.all(np.diff(found.scores) <= 0)
    # Below dlib's own threshold the HOG detector reports weaker windows too.
    more = backend.detector.detect(rgb, DetectOptions(score_threshold=0.4))
    assert len(more) > len(found) and more.scores.min() >= 0.4
    assert found.scores.min() > 0.9 > 0.5 > more.scores[len(found):].max()  # the faces stand apart


def test_large_min_face_size_halves_the_image_and_still_finds_the_face(backend, lfw: Path):
    import cv2

    rgb = cv2.resize(load_image(lfw / PORTRAITS[0]).rgb, (750, 750), interpolation=cv2.INTER_CUBIC)
    assert db.plan_scale(240, backend.detector.upsample) == (0.5, 0)
    found = backend.detector.detect(rgb, DetectOptions(min_face_size=240))
    assert len(found) == 1 and found.boxes[0, 2] >= 240
    cx, cy = found.boxes[0, :2] + found.boxes[0, 2:] / 2
    assert abs(cx - 375) < 60 and abs(cy - 375) < 80


def test_mmod_detector_finds_the_face(lfw: Path):
    backend = db.load(detector="mmod", upsample=0)  # LFW faces are ~100 px: no upsampling needed
    assert backend.info.detector == "dlib-mmod"
    assert db.MMOD.sha256 in {sha for _, sha in backend.info.files}
    rgb = load_image(lfw / PORTRAITS[0]).rgb
    found = backend.detector.detect(rgb, DetectOptions())
    assert len(found) == 1 and 0.6 <= found.scores[0] <= 1.0
    assert np.isfinite(found.landmarks[0, :3]).all()


def test_templates_are_unit_vectors_of_the_model(recognizer, lfw: Path):
    templates = recognizer.embed(lfw / PORTRAITS[2])
    assert len(templates) >= 1
    for t in templates:
        assert t.model_id == "dlib-resnet-v1" and t.dimension == 128 and t.vector.dtype == np.float32
        assert np.linalg.norm(t.vector) == pytest.approx(1.0, abs=1e-5)


def test_embedder_accepts_boxes_of_another_detector(backend, lfw: Path):
    """A YuNet-style box (taller, higher), mapped by YUNET_FRAME, gives nearly the same template."""
    from faceledger.models.yunet_sface import YUNET, YuNetDetector

    yunet = YuNetDetector(str(YUNET.verified_path()))
    mapped = db.DlibEmbedder(backend.embedder.models, db.YUNET_FRAME)
    for name in PORTRAITS[:3]:
        rgb = load_image(lfw / name).rgb
        own, other = backend.detector.detect(rgb, DetectOptions()), yunet.detect(rgb, DetectOptions())
        a = backend.embedder.embed(rgb, own.boxes[:1], own.landmarks[:1])
        b = mapped.embed(rgb, other.boxes[:1], other.landmarks[:1])
        assert float(a[0] @ b[0]) > 0.97


def test_genuine_pairs_score_above_impostor_pairs(recognizer, testdata: Path):
    same, diff = dev_test_pairs(testdata / "lfw")
    genuine, impostor = pair_cosines(recognizer, same), pair_cosines(recognizer, diff)
    # dlib's unit descriptors share a large common component: impostor cosines sit near 0.84
    # and genuine ones near 0.95 on LFW, so the margin is judged in standard deviations.
    assert genuine.mean() > impostor.mean() + 0.05
    assert separation(genuine, impostor) > 3.0
    assert ordering(genuine, impostor) >= 0.95


def test_recognizer_and_engine_by_name_detect(lfw: Path, tmp_path: Path):
    """The public paths: ``Recognizer("dlib")`` and the accountable Engine with ``recognizer="dlib"``."""
    from faceledger.engine import Actor, Engine

    recognizer = Recognizer("dlib")
    faces = recognizer.detect(lfw / PORTRAITS[3])
    assert len(faces) == 1
    assert recognizer.model_id == "dlib-resnet-v1" and recognizer.info.backend == "dlib"
    assert faces[0].quality is not None and np.isfinite(faces[0].quality.interocular)
    engine = Engine.open(f"sqlite:///{tmp_path}/fl.db", recognizer="dlib")
    try:
        found = engine.detect(Actor("vera", "verifier"), lfw / PORTRAITS[3])
        assert engine.recognizer.model_id == "dlib-resnet-v1"
        assert [f.box for f in found] == [f.box for f in faces]
    finally:
        engine.close()
