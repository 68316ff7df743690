"""The ``onnx`` backend: spec checks, SCRFD decoding, preprocessing, model ids, real photos.

The models are built here with the ``onnx`` package (see ``onnx_builders.py``), so
every expected output is computed independently in numpy. The real-photo tests run
the backend inside :class:`faceledger.Recognizer` on LFW photos, including the real SFace
weights fed through onnxruntime.
"""

from __future__ import annotations

import copy
import hashlib
import json
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnx", reason="the onnx package (dev extra) builds the test models")
pytest.importorskip("onnxruntime", reason="the backend needs onnxruntime: pip install 'faceledger[onnx]'")
# pytest runs with --import-mode=importlib, which does not put this folder on sys.path.
sys.path.insert(0, str(Path(__file__).resolve().parent))

from onnx_builders import (  # noqa: E402
    Planted,
    constant_scrfd,
    linear_embedder,
    pooled_scrfd,
    scrfd_arrays,
    sface_for_onnxruntime,
)

from faceledger import Recognizer  # noqa: E402
from faceledger.core.align import ARCFACE_112, align_face  # noqa: E402
from faceledger.errors import (  # noqa: E402
    ConfigError,
    InputError,
    ModelError,
    ModelFileError,
    ModelMismatchError,
    NotCalibratedError,
)
from faceledger.models.base import DetectOptions  # noqa: E402
from faceledger.models.onnx_backend import SPEC_ENV, letterbox, load  # noqa: E402
from faceledger.models.onnx_spec import parse_spec, read_spec  # noqa: E402
from faceledger.models.registry import load_backend  # noqa: E402

CROP = 3 * 112 * 112
MEAN, STD = [120.0, 110.0, 100.0], [50.0, 60.0, 70.0]


@pytest.fixture(scope="module")
def weight() -> np.ndarray:
    return np.random.default_rng(7).normal(size=(16, CROP)).astype(np.float32)


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("onnx-models")


@pytest.fixture(scope="module")
def linear(models_dir: Path, weight: np.ndarray) -> tuple[Path, str]:
    path = models_dir / "linear.onnx"
    return path, linear_embedder(path, weight)


def emb_spec(path: Path, sha: str, **fields: object) -> dict:
    table = {"path": str(path), "sha256": sha, "channels": "RGB", "mean": MEAN, "std": STD, **fields}
    return {"embedder": table}


def det_spec(path: Path, sha: str, **fields: object) -> dict:
    table = {"path": str(path), "sha256": sha, "channels": "RGB", "mean": 0, "std": 255, **fields}
    return {"detector": table}


def expected_templates(rgb: np.ndarray, marks: np.ndarray, weight: np.ndarray, channels: str = "RGB",
                       layout: str = "NCHW", mean=MEAN, std=STD) -> np.ndarray:
    """The linear embedder's output computed in numpy from the documented conventions."""
    rows = []
    for lm in marks:
        crop = align_face(rgb, lm).astype(np.float64)
        if channels == "BGR":
            crop = crop[..., ::-1]
        x = (crop - np.asarray(mean)) / np.asarray(std)
        if layout == "NCHW":
            x = x.transpose(2, 0, 1)
        y = weight.astype(np.float64) @ x.ravel()
        rows.append(y / np.linalg.norm(y))
    return np.array(rows)


def face_landmarks(centres: list[tuple[float, float]], scale: float = 1.2) -> np.ndarray:
    """Five ArcFace-layout points per face, scaled and centred at ``centres``."""
    base = (ARCFACE_112 - ARCFACE_112.mean(axis=0)) * scale
    return np.array([base + np.array(c) for c in centres], np.float32)


# -- spec ---------------------------------------------------------------------------

VALID = {
    "thresholds": "t.json",
    "detector": {"path": "d.onnx", "sha256": "a" * 64, "channels": "RGB", "mean": 127.5, "std": 128.0},
    "embedder": {"path": "e.onnx", "sha256": "b" * 64, "channels": "bgr", "mean": [1, 2, 3],
                 "std": [4, 5, 6]},
}


def test_a_valid_spec_is_parsed_with_documented_defaults(tmp_path: Path) -> None:
    spec = parse_spec(VALID, base_dir=tmp_path)
    det, emb = spec.detector, spec.embedder
    assert det is not None and emb is not None
    assert det.model.path == tmp_path / "d.onnx" and det.model.name == "d"
    assert det.strides == (8, 16, 32) and det.num_anchors is None and det.nms_threshold == 0.4
    assert det.model.preprocess.mean == (127.5,) * 3 and det.model.preprocess.layout == "NCHW"
    assert emb.model.preprocess.channels == "BGR" and emb.model.preprocess.std == (4.0, 5.0, 6.0)
    assert spec.thresholds == tmp_path / "t.json"


def _mutate(path: str, value: object) -> dict:
    data = copy.deepcopy(VALID)
    *parents, key = path.split(".")
    table = data
    for p in parents:
        table = table[p]
    if value is KeyError:
        del table[key]
    else:
        table[key] = value
    return data


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("embedder.sha256", KeyError),
        ("embedder.sha256", "abc"),
        ("embedder.path", KeyError),
        ("embedder.channels", "RGBA"),
        ("embedder.channels", KeyError),
        ("embedder.mean", KeyError),
        ("embedder.mean", [1, 2]),
        ("embedder.std", [1, 0, 1]),
        ("embedder.std", "1"),
        ("embedder.layout", "CHW"),
        ("embedder.input_size", [112, 96]),
        ("embedder.input_size", 112),
        ("embedder.name", "my model!"),
        ("embedder.chanels", "RGB"),
        ("detector.strides", [16, 8, 32]),
        ("detector.strides", [8, 0]),
        ("detector.input_size", [640, 630]),
        ("detector.num_anchors", 0),
        ("detector.nms_threshold", 1.5),
        ("detector.outputs.boxes", {"scores": ["a", "b", "c"], "boxes": ["d", "e"]}),
        ("detector.outputs.scores", {"boxes": ["c", "d", "e"]}),
        ("detector", "d.onnx"),
        ("model", {}),
    ],
)
def test_a_bad_spec_field_is_named(field: str, value: object) -> None:
    where = "detector.outputs" if field.startswith("detector.outputs") else field
    with pytest.raises(ConfigError) as err:
        parse_spec(_mutate(where, value))
    assert f": {field}:" in str(err.value)


def test_a_spec_needs_a_model_and_thresholds_need_an_embedder() -> None:
    with pytest.raises(ConfigError, match="detector.*embedder"):
        parse_spec({})
    with pytest.raises(ConfigError, match="thresholds"):
        parse_spec({"thresholds": "t.json", "detector": VALID["detector"]})


def test_a_toml_spec_resolves_paths_beside_it(tmp_path: Path, linear: tuple[Path, str]) -> None:
    path, sha = linear
    (tmp_path / "e.onnx").write_bytes(path.read_bytes())
    toml = tmp_path / "models.toml"
    toml.write_text(f'[embedder]\npath = "e.onnx"\nsha256 = "{sha}"\nchannels = "RGB"\nmean = 0\nstd = 1\n')
    assert read_spec(toml).embedder.model.path == tmp_path / "e.onnx"
    assert load(toml).info.dimension == 16
    (tmp_path / "bad.toml").write_text("[embedder\n")
    with pytest.raises(ConfigError, match="TOML"):
        read_spec(tmp_path / "bad.toml")
    with pytest.raises(ConfigError, match="cannot read"):
        read_spec(tmp_path / "absent.toml")


def test_load_takes_the_spec_from_the_environment(tmp_path: Path, linear, monkeypatch) -> None:
    path, sha = linear
    toml = tmp_path / "models.toml"
    toml.write_text(f'[embedder]\npath = "{path}"\nsha256 = "{sha}"\nchannels = "RGB"\nmean = 0\nstd = 1\n')
    monkeypatch.delenv(SPEC_ENV, raising=False)
    with pytest.raises(ConfigError, match=SPEC_ENV):
        load()
    monkeypatch.setenv(SPEC_ENV, str(toml))
    assert load_backend("onnx").info.backend == "onnx"


# -- files --------------------------------------------------------------------------


def test_a_missing_file_or_a_hash_mismatch_is_a_model_file_error(tmp_path: Path, linear) -> None:
    path, sha = linear
    with pytest.raises(ModelFileError, match="embedder.path"):
        load(emb_spec(tmp_path / "absent.onnx", sha))
    wrong = "0" * 64
    with pytest.raises(ModelFileError) as err:
        load(emb_spec(path, wrong))
    assert err.value.details["actual"] == sha and err.value.details["expected"] == wrong
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not a model")
    with pytest.raises(ModelFileError, match="onnxruntime cannot load"):
        load(emb_spec(junk, hashlib.sha256(b"not a model").hexdigest()))


def test_the_model_must_match_the_spec_input(tmp_path: Path, weight: np.ndarray, linear) -> None:
    path, sha = linear
    with pytest.raises(ConfigError, match="embedder.input_name"):
        load(emb_spec(path, sha, input_name="image"))
    with pytest.raises(ConfigError, match="embedder.input_size"):
        load(emb_spec(path, sha, input_size=[128, 128]))
    with pytest.raises(ConfigError, match="embedder.layout"):
        load(emb_spec(path, sha, layout="NHWC"))
    with pytest.raises(ConfigError, match="embedder.output_name"):
        load(emb_spec(path, sha, output_name="fc1"))


# -- embedder -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("layout", "channels", "batch"),
    [("NCHW", "RGB", "N"), ("NHWC", "BGR", 1), ("NCHW", "BGR", 2)],
)
def test_the_embedder_feeds_crops_as_the_spec_says(tmp_path, weight, layout, channels, batch) -> None:
    path = tmp_path / "e.onnx"
    sha = linear_embedder(path, weight, layout=layout, batch=batch)
    backend = load(emb_spec(path, sha, layout=layout, channels=channels))
    rgb = np.random.default_rng(1).integers(0, 256, size=(200, 260, 3), dtype=np.uint8)
    marks = face_landmarks([(70, 80), (150, 100), (200, 120)])
    got = backend.embedder.embed(rgb, np.zeros((3, 4), np.float32), marks)
    want = expected_templates(rgb, marks, weight, channels, layout)
    assert got.dtype == np.float32 and got.shape == (3, 16)
    np.testing.assert_allclose(got, want, atol=2e-5)
    other = "RGB" if channels == "BGR" else "BGR"
    assert np.abs(expected_templates(rgb, marks, weight, other, layout) - got).max() > 1e-2
    flat_std = expected_templates(rgb, marks, weight, channels, layout, std=[60.0] * 3)
    assert np.abs(flat_std - got).max() > 1e-3


def test_the_embedder_refuses_unalignable_landmarks(linear) -> None:
    backend = load(emb_spec(*linear))
    rgb = np.zeros((100, 100, 3), np.uint8)
    assert backend.embedder.embed(rgb, np.zeros((0, 4)), np.zeros((0, 5, 2))).shape == (0, 16)
    with pytest.raises(InputError, match="face 0"):
        backend.embedder.embed(rgb, np.zeros((1, 4)), np.full((1, 5, 2), 50.0, np.float32))


def test_the_model_id_changes_with_the_file_name_and_feeding(tmp_path, weight, linear) -> None:
    path, sha = linear
    base = load(emb_spec(path, sha)).model_id
    assert base.startswith(f"linear-{sha[:12]}-")
    assert load(emb_spec(path, sha, input_size=[112, 112])).model_id == base
    assert load(emb_spec(path, sha, channels="BGR")).model_id != base
    assert load(emb_spec(path, sha, std=[50, 60, 71])).model_id != base
    assert load(emb_spec(path, sha, name="linear2")).model_id != base
    other = tmp_path / "linear.onnx"
    other_sha = linear_embedder(other, weight * 2)
    assert load(emb_spec(other, other_sha)).model_id != base


# -- detector: exact decoding -------------------------------------------------------

KPS = ((-0.5, -0.5), (0.5, -0.5), (0.0, 0.0), (-0.25, 0.5), (0.25, 0.5))  # stride units
PLANTED = [
    Planted(8, 2, 3, 1, 0.9, (1.0, 1.5, 2.0, 2.5), KPS),
    Planted(8, 2, 4, 0, 0.7, (2.0, 1.5, 1.0, 2.5), ((0, 0),) * 5),  # same box as the first: suppressed
    Planted(16, 2, 3, 0, 0.8, (1.0, 1.0, 1.0, 1.0), tuple((x * 0.6, y * 0.6) for x, y in KPS)),
    Planted(32, 1, 1, 1, 0.6, (0.25,) * 4, tuple((x * 0.2, y * 0.2) for x, y in KPS)),
    Planted(32, 0, 0, 0, 0.3, (0.5,) * 4, ((0, 0),) * 5),  # below the score threshold
]
KEPT = [0, 2, 3]  # best score first
SIZE = (64, 64)  # the network's input (width, height)
IMAGE_HW = (96, 128)  # letterboxed at scale 0.5 into 64x48


def expected_detection(p: Planted, scale: float) -> tuple[np.ndarray, np.ndarray]:
    """Box (x, y, w, h) and landmarks of a planted detection, in image pixels."""
    cx, cy = p.col * p.stride, p.row * p.stride
    left, top, right, bottom = (v * p.stride for v in p.ltrb)
    box = np.array([cx - left, cy - top, left + right, top + bottom]) / scale
    marks = (np.array(p.kps) * p.stride + [cx, cy]) / scale
    return box, marks


def _anchors_for(planted: list[Planted], anchors: int) -> list[Planted]:
    return [replace(p, anchor=min(p.anchor, anchors - 1)) for p in planted]


@pytest.mark.parametrize(("anchors", "batched", "order"), [(2, False, "grouped"), (1, True, "interleaved")])
def test_scrfd_outputs_are_decoded_exactly(tmp_path, anchors, batched, order) -> None:
    planted = _anchors_for(PLANTED, anchors)
    path = tmp_path / "det.onnx"
    arrays = scrfd_arrays(SIZE, (8, 16, 32), anchors, planted)
    sha, names = constant_scrfd(path, arrays, SIZE, batched=batched, order=order)
    fields = {}
    if order != "grouped":
        kinds = {"scores": "score", "boxes": "bbox", "keypoints": "kps"}
        fields["outputs"] = {key: [n for n in names if n.startswith(prefix)] for key, prefix in kinds.items()}
    backend = load(det_spec(path, sha, **fields))
    assert backend.detector.num_anchors == anchors and backend.detector.input_size == SIZE
    rgb = np.zeros((*IMAGE_HW, 3), np.uint8)
    found = backend.detector.detect(rgb, DetectOptions(score_threshold=0.5, min_face_size=1))
    np.testing.assert_allclose(found.scores, [planted[i].score for i in KEPT], rtol=1e-6)
    for k, i in enumerate(KEPT):
        box, marks = expected_detection(planted[i], scale=0.5)
        np.testing.assert_allclose(found.boxes[k], box, atol=1e-4)
        np.testing.assert_allclose(found.landmarks[k], marks, atol=1e-4)
    np.testing.assert_allclose(found.boxes[0], [32, 8, 48, 64])  # worked by hand


def test_size_and_count_limits_apply_in_image_pixels(tmp_path) -> None:
    path = tmp_path / "det.onnx"
    sha, _ = constant_scrfd(path, scrfd_arrays(SIZE, (8, 16, 32), 2, PLANTED), SIZE)
    det = load(det_spec(path, sha)).detector
    rgb = np.zeros((*IMAGE_HW, 3), np.uint8)
    wide = det.detect(rgb, DetectOptions(score_threshold=0.5, min_face_size=40))
    np.testing.assert_allclose(wide.scores, [0.9, 0.8], rtol=1e-6)  # widths 48 and 64; 32 dropped
    assert len(det.detect(rgb, DetectOptions(score_threshold=0.5, min_face_size=1, max_faces=1))) == 1
    assert len(det.detect(rgb, DetectOptions(score_threshold=0.95, min_face_size=1))) == 0


def test_outputs_out_of_the_default_order_must_be_named(tmp_path) -> None:
    path = tmp_path / "det.onnx"
    sha, _ = constant_scrfd(path, scrfd_arrays(SIZE, (8, 16, 32), 2, PLANTED), SIZE, order="interleaved")
    with pytest.raises(ConfigError, match="detector.outputs"):
        load(det_spec(path, sha))
    path2 = tmp_path / "det2.onnx"
    sha2, _ = constant_scrfd(path2, scrfd_arrays(SIZE, (8, 16, 32), 2, PLANTED), SIZE)
    with pytest.raises(ConfigError, match="detector.num_anchors"):
        load(det_spec(path2, sha2, num_anchors=1))
    with pytest.raises(ConfigError, match="detector.outputs"):
        load(det_spec(path2, sha2, outputs={"scores": ["s8", "s16", "s32"], "boxes": ["b8", "b16", "b32"]}))


def test_a_detector_without_keypoints(tmp_path, linear) -> None:
    path = tmp_path / "det.onnx"
    sha, _ = constant_scrfd(path, scrfd_arrays(SIZE, (8, 16, 32), 2, PLANTED), SIZE, keypoints=False)
    backend = load(det_spec(path, sha))
    found = backend.detector.detect(np.zeros((*IMAGE_HW, 3), np.uint8), DetectOptions(score_threshold=0.5,
                                                                                       min_face_size=1))
    assert len(found) == 3 and np.isnan(found.landmarks).all()
    with pytest.raises(ConfigError, match="keypoint"):
        load({**det_spec(path, sha), **emb_spec(*linear)})


def test_letterbox_keeps_the_aspect_ratio_at_the_top_left() -> None:
    rgb = np.full((50, 200, 3), 200, np.uint8)
    canvas, sx, sy = letterbox(rgb, (100, 100))
    assert canvas.shape == (100, 100, 3) and (sx, sy) == (0.5, 0.5)
    assert (canvas[:25] == 200).all() and (canvas[25:] == 0).all()


# -- detector: pixels in, letterbox and pyramid ---------------------------------------


def red_square(h: int, w: int, y: int, x: int, side: int, channel: int = 0) -> np.ndarray:
    rgb = np.zeros((h, w, 3), np.uint8)
    rgb[y : y + side, x : x + side, channel] = 255
    return rgb


def test_a_fixed_size_detector_sees_the_letterboxed_image(tmp_path) -> None:
    path = tmp_path / "pool.onnx"
    sha = pooled_scrfd(path, size=(128, 128))
    backend = load(det_spec(path, sha))
    opts = DetectOptions(score_threshold=0.6, min_face_size=1)
    # At scale 0.5 the square covers the stride-32 cell (row 1, col 1): anchor centre (32, 32).
    found = backend.detector.detect(red_square(128, 256, 64, 64, 64), opts)
    np.testing.assert_allclose(found.boxes, [[32, 32, 64, 64]])
    np.testing.assert_allclose(found.scores, [1.0])
    assert len(backend.detector.detect(red_square(128, 256, 64, 64, 64, channel=2), opts)) == 0
    bgr = load(det_spec(path, sha, channels="BGR"))
    assert len(bgr.detector.detect(red_square(128, 256, 64, 64, 64, channel=2), opts)) == 1
    dim = load(det_spec(path, sha, std=510)).detector
    assert len(dim.detect(red_square(128, 256, 64, 64, 64), opts)) == 0
    half = dim.detect(red_square(128, 256, 64, 64, 64), DetectOptions(score_threshold=0.4, min_face_size=1))
    np.testing.assert_allclose(half.scores, [0.5])


def test_a_dynamic_detector_runs_on_the_padded_image_through_the_engine(tmp_path) -> None:
    path = tmp_path / "pool.onnx"
    sha = pooled_scrfd(path, size=None)
    backend = load(det_spec(path, sha))
    assert backend.detector.input_size is None
    rec = Recognizer(backend)
    faces = rec.detect(red_square(150, 200, 32, 64, 32), score_threshold=0.6)  # 200x150 -> padded 224x160
    assert [f.box.as_tuple() for f in faces] == [(48.0, 16.0, 32.0, 32.0)]
    assert faces[0].quality is not None and faces[0].landmarks[2] == (64.0, 32.0)
    with pytest.raises(ModelError, match="detector only"):
        rec.embed(red_square(150, 200, 32, 64, 32))
    with pytest.raises(NotCalibratedError):
        rec.verify(red_square(150, 200, 32, 64, 32), red_square(150, 200, 32, 64, 32))
    assert rec.info.dimension == 0 and rec.info.embedder == "none"
    assert rec.model_id.endswith("-detector-only")


# -- real photos --------------------------------------------------------------------


def test_an_embedder_only_spec_runs_on_a_real_photo(lfw: Path, weight, linear, models_dir) -> None:
    rec = Recognizer(load(emb_spec(*linear)))
    photo = lfw / "Aaron_Peirsol" / "Aaron_Peirsol_0001.jpg"
    template = rec.template(photo, face="center")
    assert rec.info.detector == "yunet-2023mar-int8bq" and template.model_id == rec.model_id
    rgb = rec.load(photo).rgb
    want = expected_templates(rgb, template.face.landmarks_array()[None], weight)[0]
    np.testing.assert_allclose(template.vector, want, atol=2e-5)
    with pytest.raises(NotCalibratedError):
        rec.verify(photo, photo)
    other_path = models_dir / "other.onnx"
    other = Recognizer(load(emb_spec(other_path, linear_embedder(other_path, weight[::-1].copy()))))
    assert rec.compare(template, template) == pytest.approx(1.0)
    with pytest.raises(ModelMismatchError):
        other.compare(template, other.template(photo, face="center"))


def test_thresholds_come_from_the_spec_file_of_the_same_model(tmp_path, lfw, linear) -> None:
    model_id = load(emb_spec(*linear)).model_id
    point = {"target_fmr": 1e-3, "threshold": 0.5, "measured_fmr": 1e-3, "measured_fnmr": 0.02}
    layout = {"model_id": model_id, "default": "fmr1e-3", "operating_points": {"fmr1e-3": point}}
    (tmp_path / "t.json").write_text(json.dumps(layout))
    rec = Recognizer(load({**emb_spec(*linear), "thresholds": str(tmp_path / "t.json")}))
    photo = lfw / "Aaron_Peirsol" / "Aaron_Peirsol_0001.jpg"
    result = rec.verify(photo, photo)
    assert (result.threshold, result.operating_point, result.match) == (0.5, "fmr1e-3", True)
    (tmp_path / "x.json").write_text(json.dumps({**layout, "model_id": "someone-else"}))
    with pytest.raises(ConfigError, match="someone-else"):
        load({**emb_spec(*linear), "thresholds": str(tmp_path / "x.json")})


@pytest.fixture(scope="module")
def sface_onnx(models_dir: Path) -> tuple[Path, str]:
    from faceledger.models.yunet_sface import SFACE

    path = models_dir / "sface_ort.onnx"
    return path, sface_for_onnxruntime(SFACE.verified_path(), path)


def test_real_sface_weights_through_onnxruntime_match_the_default_backend(lfw, sface_onnx) -> None:
    path, sha = sface_onnx
    table = {"name": "sface", "path": str(path), "sha256": sha, "channels": "RGB", "mean": 0, "std": 1}
    mine = Recognizer(load({"embedder": table}, threads=2))
    a1, a2 = (lfw / "Aaron_Peirsol" / f"Aaron_Peirsol_000{i}.jpg" for i in (1, 2))
    b1 = lfw / "George_W_Bush" / "George_W_Bush_0007.jpg"
    default = Recognizer("yunet-sface")
    faces = [default.template(p, face="center") for p in (a1, a2, b1)]
    faces_a1_again = mine.embed(a1, [faces[0].face])[0]  # the same face, the same landmarks
    assert float(np.dot(faces_a1_again.vector, faces[0].vector)) > 0.99
    t = mine.embed(a1, [faces[0].face]) + mine.embed(a2, [faces[1].face]) + mine.embed(b1, [faces[2].face])
    assert mine.compare(t[0], t[1]) > mine.compare(t[0], t[2]) + 0.2
