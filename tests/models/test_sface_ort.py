"""SFace on onnxruntime (weights folded in memory): the same templates as OpenCV's, the hash checked first."""

from __future__ import annotations

import shutil
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

from faceledger import Recognizer  # noqa: E402
from faceledger.core.align import align_face  # noqa: E402
from faceledger.core.similarity import l2_normalize  # noqa: E402
from faceledger.errors import ConfigError, ModelFileError  # noqa: E402
from faceledger.models import sface_ort, yunet_sface  # noqa: E402
from faceledger.models.registry import load_backend  # noqa: E402
from faceledger.models.sface_ort import OrtSFaceEmbedder, _dequantize, fold_weights  # noqa: E402
from faceledger.models.yunet_sface import SFACE, SFaceEmbedder  # noqa: E402


@pytest.fixture(scope="module")
def sface_bytes() -> bytes:
    return SFACE.verified_bytes()[1]


def test_the_default_backend_runs_sface_on_onnxruntime(engine):
    assert isinstance(engine.backend.embedder, OrtSFaceEmbedder)
    assert "onnxruntime" in engine.info.runtime and engine.info.runtime.endswith("YuNet and SFace")
    assert engine.backend.embedder.name == engine.model_id == "sface-2021dec-int8bq"


def test_folded_graph_has_no_dequantize_and_no_stale_inputs(sface_bytes: bytes):
    import onnx

    original = onnx.load_from_string(sface_bytes)
    folded = onnx.load_from_string(fold_weights(sface_bytes))
    assert sum(n.op_type == "DequantizeLinear" for n in original.graph.node) > 20
    assert not any(n.op_type in ("DequantizeLinear", "PRelu") for n in folded.graph.node)
    assert sum(n.op_type == "PRelu" for n in original.graph.node) == 27
    assert [i.name for i in folded.graph.input] == ["data"]
    assert len(original.graph.input) > 100  # the stale inputs OpenCV 5 trips over
    assert all(i.data_type == onnx.TensorProto.FLOAT or "shape" in i.name for i in folded.graph.initializer)
    assert folded.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "N"


def test_dequantize_per_tensor_axis_and_block():
    q = np.arange(-6, 6, dtype=np.int8).reshape(2, 6)
    assert np.array_equal(_dequantize(q, np.float32(0.5), np.int8(2), 1, 0), (q - 2) * 0.5)
    scale, zero = np.array([1.0, 2.0], np.float32), np.array([0, 1], np.int8)
    assert np.array_equal(_dequantize(q, scale, zero, 0, 0), (q - zero[:, None]) * scale[:, None])
    # Blocks of 4 along axis 1 (6 columns: the last block is cut short).
    block_scale = np.array([[1.0, 10.0], [2.0, 20.0]], np.float32)
    out = _dequantize(q, block_scale, None, 1, 4)
    expected = q.astype(np.float32) * np.array([[1, 1, 1, 1, 10, 10], [2, 2, 2, 2, 20, 20]], np.float32)
    assert out.dtype == np.float32 and np.array_equal(out, expected)


def test_onnxruntime_templates_equal_opencv_templates_on_real_photos(engine, lfw: Path, groups: Path,
                                                                     sface_bytes: bytes):
    opencv = SFaceEmbedder(sface_bytes)
    photos = [lfw / "Aaron_Peirsol" / "Aaron_Peirsol_0001.jpg", lfw / "Jennifer_Garner" / "Jennifer_Garner_0003.jpg",
              groups / "facenetpytorch_multiface.jpg", groups / "deepface_couple.jpg"]
    n = 0
    for photo in photos:
        img = engine.load(photo, for_search=True)
        faces = engine.detect(img, quality=False)
        marks = np.array([f.landmarks for f in faces], np.float32) * img.scale  # decoded pixels
        boxes = np.zeros((len(faces), 4), np.float32)
        ours, theirs = engine.backend.embedder.embed(img.rgb, boxes, marks), opencv.embed(img.rgb, boxes, marks)
        cos = np.sum(ours * theirs, axis=1)
        assert cos.min() >= 0.99999, (photo.name, cos)
        n += len(faces)
    assert n >= 10


def test_prelu_written_as_relus_and_depthwise_convolutions_gives_the_same_templates(engine, lfw: Path,
                                                                                     groups: Path, sface_bytes: bytes):
    import onnxruntime as ort

    def run(model: bytes, crops: np.ndarray) -> np.ndarray:
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        session = ort.InferenceSession(model, sess_options=opts, providers=["CPUExecutionProvider"])
        return np.concatenate([session.run(None, {"data": c[None]})[0] for c in crops])

    crops = []
    for photo in (lfw / "Jennifer_Garner" / "Jennifer_Garner_0003.jpg", groups / "facenetpytorch_multiface.jpg"):
        img = engine.load(photo, for_search=True)
        for face in engine.detect(img, quality=False):
            crop = align_face(img.rgb, np.array(face.landmarks, np.float32) * img.scale)
            crops.append(crop.transpose(2, 0, 1).astype(np.float32))
    crops.append(np.full((3, 112, 112), -50.0, np.float32))  # every first activation negative
    crops = np.array(crops)
    split, prelu = run(fold_weights(sface_bytes), crops), run(fold_weights(sface_bytes, split_prelu=False), crops)
    assert len(crops) >= 6
    # The same values up to float rounding (the sum is fused into a convolution), far inside the
    # 0.99999 cosine the runtimes are held to.
    assert np.abs(split - prelu).max() <= 1e-5 * np.abs(prelu).max()
    cos = np.sum(l2_normalize(split) * l2_normalize(prelu), axis=1)
    assert cos.min() >= 0.9999999, cos


def test_the_hash_is_checked_before_anything_is_folded(tmp_path: Path, monkeypatch):
    package = tmp_path / "tamperedpkg"
    (package / "models").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    for mf in (yunet_sface.YUNET, SFACE):
        shutil.copy(mf.locate(), package / mf.relative_path)
    with (package / SFACE.relative_path).open("r+b") as f:
        f.seek(5000)
        f.write(b"\x7f\x7f\x7f")
    folded: list[int] = []
    monkeypatch.setattr(sface_ort, "fold_weights", lambda b, **_: folded.append(len(b)) or b)
    monkeypatch.setattr(yunet_sface, "YUNET", replace(yunet_sface.YUNET, package="tamperedpkg"))
    monkeypatch.setattr(yunet_sface, "SFACE", replace(SFACE, package="tamperedpkg"))
    monkeypatch.setattr(sys, "path", [str(tmp_path), *sys.path])
    with pytest.raises(ModelFileError, match="SHA-256"):
        yunet_sface.load()
    assert folded == []


def test_opencv_runs_sface_when_asked_or_when_onnxruntime_is_missing(monkeypatch, lfw: Path):
    photo = lfw / "Aaron_Peirsol" / "Aaron_Peirsol_0002.jpg"
    asked = load_backend("yunet-sface", sface_runtime="opencv")
    assert isinstance(asked.embedder, SFaceEmbedder) and asked.info.runtime.endswith("DNN (SFace)")
    monkeypatch.setattr(sface_ort, "available", lambda: False)
    fallback = yunet_sface.load()
    assert isinstance(fallback.embedder, SFaceEmbedder)
    a, b = Recognizer(fallback).template(photo), Recognizer(load_backend("yunet-sface")).template(photo)
    assert a.model_id == b.model_id and float(a.vector @ b.vector) >= 0.99999
    with pytest.raises(ConfigError, match="unknown SFace runtime"):
        yunet_sface.load(sface_runtime="tensorflow")
