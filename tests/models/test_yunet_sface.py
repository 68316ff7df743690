"""The default backend on real photos: detection counts, scales, hashes, the OpenCV pin."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from faceledger.errors import BackendUnavailableError, ModelFileError, UnknownBackendError
from faceledger.models.base import DetectOptions
from faceledger.models.files import ModelFile, sha256_file
from faceledger.models.pyramid import pyramid_scales
from faceledger.models.registry import load_backend
from faceledger.models.yunet_sface import SFACE, YUNET

# Expected face counts at the default settings (min face 20 px, score 0.6), counted by eye on
# the annotated photos; tolerances allow for ambiguous tiny or partly hidden faces.
GROUP_COUNTS = {
    "facenetpytorch_multiface.jpg": (6, 6),
    "deepface_couple.jpg": (2, 2),
    "ultralight_10.jpg": (18, 21),
    "ultralight_11.jpg": (24, 28),
    "deface_city.jpg": (10, 18),
    "retinaface_img3.jpg": (20, 40),
}


@pytest.mark.parametrize("name", sorted(GROUP_COUNTS))
def test_group_photo_face_counts(engine, groups: Path, name: str):
    low, high = GROUP_COUNTS[name]
    faces = engine.detect(groups / name)
    assert low <= len(faces) <= high, f"{name}: {len(faces)} faces, expected {low}-{high}"
    for f in faces:
        assert 0.6 <= f.score <= 1.0
        assert f.box.w >= 20
        assert f.quality is not None and f.quality.sharpness > 0
        # Landmarks sit inside (or very near) their box.
        xs = [p[0] for p in f.landmarks]
        ys = [p[1] for p in f.landmarks]
        assert f.box.x - 0.2 * f.box.w <= min(xs) and max(xs) <= f.box.x + 1.2 * f.box.w
        assert f.box.y - 0.2 * f.box.h <= min(ys) and max(ys) <= f.box.y + 1.2 * f.box.h


def test_small_faces_need_a_lower_minimum(engine, groups: Path):
    photo = groups / "ultralight_25.jpg"  # 100+ faces, most of them 12-25 px wide
    default = engine.detect(photo, quality=False)
    small = engine.detect(photo, min_face_size=12, score_threshold=0.5, quality=False)
    assert len(default) >= 30
    assert len(small) >= 100
    assert min(f.box.w for f in small) < 20


def test_face_filling_a_1920x1080_portrait_is_found(engine, lfw: Path):
    face = Image.open(lfw / "Jean_Charest" / "Jean_Charest_0002.jpg").crop((55, 45, 195, 205))
    canvas = Image.new("RGB", (1920, 1080), (90, 90, 90))
    canvas.paste(face.resize((945, 1080)), (487, 0))
    faces = engine.detect(np.asarray(canvas))
    assert len(faces) == 1
    assert faces[0].box.w > 500


def test_landmark_order_follows_the_convention(engine, lfw: Path):
    (face,) = engine.detect(lfw / "Aaron_Peirsol" / "Aaron_Peirsol_0001.jpg")
    le, re, nose, lm, rm = face.landmarks
    assert le[0] < nose[0] < re[0] and lm[0] < rm[0]
    assert le[1] < nose[1] < lm[1] and re[1] < nose[1] < rm[1]


def test_pyramid_scales():
    assert pyramid_scales(640, 480, 20) == [1.0]
    assert pyramid_scales(1920, 1080, 20) == [1.0, 0.5]
    assert pyramid_scales(4000, 3000, 20) == [1.0, 0.5, 0.25, 0.125]
    assert pyramid_scales(640, 480, 8) == [2.0]  # tiny faces: upsample
    assert pyramid_scales(640, 480, 8, upsample=False) == [1.0]
    assert pyramid_scales(1920, 1080, 12, upsample=False) == [1.0, 0.5]
    assert pyramid_scales(300, 200, 20) == [1.0]


def test_templates_are_unit_vectors_with_model_id(engine, lfw: Path):
    photo = lfw / "Aaron_Peirsol" / "Aaron_Peirsol_0001.jpg"
    t = engine.template(photo)
    assert t.vector.shape == (128,) and t.vector.dtype == np.float32
    assert np.linalg.norm(t.vector) == pytest.approx(1.0, abs=1e-5)
    assert t.model_id == "sface-2021dec-int8bq"
    assert t.source_sha256 == __import__("hashlib").sha256(photo.read_bytes()).hexdigest()


def test_model_files_are_the_pinned_ones():
    for mf in (YUNET, SFACE):
        assert sha256_file(mf.locate()) == mf.sha256


def test_tampered_model_file_is_refused(tmp_path: Path):
    fake_pkg = tmp_path / "fakepkg"
    (fake_pkg / "models").mkdir(parents=True)
    (fake_pkg / "__init__.py").write_text("")
    copy = fake_pkg / "models" / "m.onnx"
    shutil.copy(YUNET.locate(), copy)
    with copy.open("r+b") as f:
        f.seek(1000)
        f.write(b"\x00\x01\x02")
    import sys

    sys.path.insert(0, str(tmp_path))
    try:
        mf = replace(YUNET, package="fakepkg", relative_path="models/m.onnx")
        with pytest.raises(ModelFileError, match="SHA-256"):
            mf.verified_path()
        with pytest.raises(ModelFileError, match="missing"):
            replace(mf, relative_path="models/absent.onnx").verified_path()
    finally:
        sys.path.remove(str(tmp_path))


def test_missing_model_package_says_what_to_install():
    mf = ModelFile("faceledger_no_such_package", "m.onnx", "0" * 64, "some-package==1.0")
    with pytest.raises(BackendUnavailableError, match="pip install 'some-package==1.0'"):
        mf.locate()


def test_unknown_backend():
    with pytest.raises(UnknownBackendError, match="yunet-sface"):
        load_backend("no-such-backend")


def test_opencv_pin_runs_the_sface_file():
    """OpenCV 5.0.0 fails on this SFace graph; the dependency is pinned below 5 (pyproject.toml)."""
    import cv2

    assert int(cv2.__version__.split(".")[0]) == 4, cv2.__version__
    net = cv2.dnn.readNet(str(SFACE.verified_path()))
    net.setInput(cv2.dnn.blobFromImage(np.zeros((112, 112, 3), np.uint8)))
    assert net.forward().shape == (1, 128)
    pins = Path(__file__).resolve().parents[2] / "pyproject.toml"
    assert '"opencv-python-headless>=4.10,<5"' in pins.read_text()


def test_each_face_of_a_group_gets_its_own_template(engine, groups: Path):
    """Every template of a multi-face photo equals that face embedded on its own (OpenCV 4.14
    returns garbage for all but the first row of a batched forward pass on this graph)."""
    photo = groups / "facenetpytorch_multiface.jpg"
    faces = engine.detect(photo)
    together = engine.embed(photo, faces)
    for face, t in zip(faces, together, strict=True):
        alone = engine.embed(photo, [face])[0]
        assert np.all(np.isfinite(t.vector))
        assert float(np.dot(t.vector, alone.vector)) > 0.9999
    # Six different people: no two templates of the photo are near-identical.
    m = np.stack([t.vector for t in together])
    sims = m @ m.T - np.eye(len(m)) * 2
    assert sims.max() < 0.6


def test_opencv_detector_keeps_a_bounded_set_of_networks(groups: Path):
    from faceledger import Recognizer
    from faceledger.models.yunet_sface import load

    engine = Recognizer(load(yunet_runtime="opencv"))  # onnxruntime runs one session for every size
    det = engine.backend.detector
    assert det.runtime == "opencv"
    engine.detect(groups / "deepface_couple.jpg")  # bounded: the coarse copy, then refinement crops
    assert (1140, 794) in det._nets  # 2280x1588 halved: the whole-number step nearest 1280 px
    engine.detect(groups / "deepface_couple.jpg", full_coverage=True)  # 2280x1588 and 1140x794
    sizes = list(det._nets)
    assert (1140, 794) in sizes and (2280, 1588) not in sizes  # over 1920x1088: built, used, released
    for side in range(400, 1400, 100):  # many sizes: the cache stays within its count and pixels
        det.detect(np.zeros((side, side, 3), np.uint8), DetectOptions(upsample=False))
    assert len(det._nets) <= det._MAX_SIZES
    assert sum(w * h for w, h in det._nets) <= det._CACHE_PIXELS


@pytest.mark.parametrize("shape", [(1, 1), (2, 2), (15, 15), (5, 3000), (3000, 5), (20, 4000), (4000, 20)])
def test_tiny_and_extreme_inputs_give_no_face_outside_the_image(engine, shape):
    rng = np.random.default_rng(sum(shape))
    for arr in (np.full((*shape, 3), 128, np.uint8), rng.integers(0, 256, (*shape, 3), dtype=np.uint8)):
        for face in engine.detect(arr):
            _assert_inside(face, shape[1], shape[0])


def test_a_face_in_an_extreme_aspect_canvas_stays_finite_and_inside(engine, lfw: Path):
    face = engine.load(lfw / "Jean_Charest" / "Jean_Charest_0001.jpg").rgb
    for h, w in ((250, 20000), (12000, 250)):
        canvas = np.zeros((h, w, 3), np.uint8)
        canvas[:250, :250] = face
        for f in engine.detect(canvas):  # bounded search: the face is under 16 px at its scale
            _assert_inside(f, w, h)
        faces = engine.detect(canvas, full_coverage=True)
        for f in faces:
            _assert_inside(f, w, h)
        assert faces, "the face in the corner is found by the full-coverage search"


def _assert_inside(face, width: int, height: int) -> None:
    x, y, w, h = face.box.as_tuple()
    assert all(np.isfinite(v) for v in (x, y, w, h, face.score))
    assert x >= 0 and y >= 0 and w > 0 and h > 0 and x + w <= width + 1e-3 and y + h <= height + 1e-3
