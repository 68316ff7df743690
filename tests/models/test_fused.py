"""The ``fused`` backend on real LFW photos: parameters, hashes, the fusion identity, ordering."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("dlib", reason="the fused backend needs: pip install 'faceledger[dlib]'")

from faceledger.errors import ConfigError, ModelFileError  # noqa: E402
from faceledger.media.image import load_image  # noqa: E402
from faceledger.models import dlib_backend as db  # noqa: E402
from faceledger.models import fused  # noqa: E402
from faceledger.models.files import sha256_file  # noqa: E402
from faceledger.models.registry import load_backend  # noqa: E402
from faceledger.models.yunet_sface import SFACE, YUNET  # noqa: E402
from faceledger.recognizer import Recognizer  # noqa: E402

PHOTOS = ["Serena_Williams/Serena_Williams_0003.jpg", "Serena_Williams/Serena_Williams_0001.jpg",
          "Jean_Charest/Jean_Charest_0002.jpg", "Aaron_Peirsol/Aaron_Peirsol_0001.jpg"]


def dev_test_pairs(lfw_root: Path, per_kind: int = 10) -> tuple[list, list]:
    """``per_kind`` genuine and impostor image-path pairs spread over LFW's pairsDevTest.txt."""
    rows = [line.split() for line in (lfw_root / "pairsDevTest.txt").read_text().splitlines()[1:]]

    def photo(name: str, number: str) -> Path:
        return lfw_root / "images" / name / f"{name}_{int(number):04d}.jpg"

    same = [(photo(r[0], r[1]), photo(r[0], r[2])) for r in rows if len(r) == 3]
    diff = [(photo(r[0], r[1]), photo(r[2], r[3])) for r in rows if len(r) == 4]
    step = len(same) // per_kind
    return same[::step][:per_kind], diff[::step][:per_kind]


@pytest.fixture(scope="module")
def backend():
    return load_backend("fused")  # through the registry, as Recognizer("fused") does


@pytest.fixture(scope="module")
def recognizer(backend):
    return Recognizer(backend)


def test_weight_was_chosen_on_lfw_view1(backend, testdata: Path):
    params = fused.load_params()
    w = params["weight_sface"]
    assert 0.0 <= w <= 1.0
    assert "pairsDevTrain.txt" in params["dataset"] and params["criterion"]
    digest = hashlib.sha256((testdata / "lfw" / "pairsDevTrain.txt").read_bytes()).hexdigest()
    assert params["dataset_sha256"] == digest
    assert backend.model_id == fused.fused_model_id(w) == f"fused-sface-dlib-w{w:.2f}"
    assert backend.info.dimension == 256 and backend.info.backend == "fused"


def test_load_checks_and_reports_all_four_files(backend):
    expected = {m.sha256 for m in (YUNET, SFACE, db.SHAPE_PREDICTOR_5, db.RESNET)}
    assert {sha for _, sha in backend.info.files} == expected
    for path, sha in backend.info.files:
        assert sha256_file(Path(path)) == sha


@pytest.mark.parametrize("target", ["sface", "resnet"])
def test_tampered_copy_of_either_model_is_refused(tmp_path, monkeypatch, target: str):
    model = SFACE if target == "sface" else db.RESNET
    pkg = tmp_path / "fl_tampered_fused"
    (pkg / "models").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / model.relative_path).write_bytes(model.locate().read_bytes()[:-1] + b"\x01")
    monkeypatch.syspath_prepend(str(tmp_path))
    tampered = replace(model, package="fl_tampered_fused")
    if target == "sface":
        monkeypatch.setattr(fused, "SFACE", tampered)
    else:
        monkeypatch.setattr(db, "RESNET", tampered)
    with pytest.raises(ModelFileError, match="SHA-256"):
        fused.load()


@pytest.mark.parametrize("weight", [-0.1, 1.01, float("nan"), "0.5"])
def test_weight_outside_unit_interval_is_refused(weight):
    with pytest.raises(ConfigError):
        fused.load(weight_sface=weight)


def test_fuse_gives_the_weighted_mean_of_cosines():
    """Logic only: random unit vectors stand in for the two models' templates."""
    rng = np.random.default_rng(7)
    s, d = (v / np.linalg.norm(v, axis=1, keepdims=True) for v in rng.normal(size=(2, 6, 128)))
    t = fused.fuse(s, d, 0.3)
    assert t.shape == (6, 256) and t.dtype == np.float32
    assert np.allclose(np.linalg.norm(t, axis=1), 1.0, atol=1e-6)
    assert np.allclose(t @ t.T, 0.3 * (s @ s.T) + 0.7 * (d @ d.T), atol=1e-6)


def test_fused_cosine_is_the_weighted_mean_on_real_templates(backend, lfw: Path):
    w = fused.load_params()["weight_sface"]
    emb = backend.embedder
    parts, whole = [], []
    for name in PHOTOS:
        rgb = load_image(lfw / name).rgb
        found = backend.detector.detect(rgb, Recognizer(backend).detect_options)
        box, marks = found.boxes[:1], found.landmarks[:1]
        parts.append((emb.sface.embed(rgb, box, marks)[0], emb.dlib.embed(rgb, box, marks)[0]))
        whole.append(emb.embed(rgb, box, marks)[0])
    for i in range(len(PHOTOS)):
        for j in range(i + 1, len(PHOTOS)):
            expected = w * parts[i][0] @ parts[j][0] + (1 - w) * parts[i][1] @ parts[j][1]
            assert float(whole[i] @ whole[j]) == pytest.approx(float(expected), abs=1e-5)
    # The same person (first two photos) is closer than anyone else.
    assert whole[0] @ whole[1] > max(whole[0] @ whole[k] for k in (2, 3))


def test_templates_are_256d_unit_vectors_of_the_fused_model(recognizer, lfw: Path):
    t = recognizer.template(lfw / PHOTOS[2], face="center")
    assert t.model_id == recognizer.model_id and t.model_id.startswith("fused-sface-dlib-w")
    assert t.dimension == 256 and t.vector.dtype == np.float32
    assert np.linalg.norm(t.vector) == pytest.approx(1.0, abs=1e-5)


def test_genuine_pairs_score_above_impostor_pairs(recognizer, testdata: Path):
    same, diff = dev_test_pairs(testdata / "lfw")
    cache: dict = {}

    def cosines(pairs: list) -> np.ndarray:
        for p in {p for pair in pairs for p in pair} - cache.keys():
            cache[p] = recognizer.template(p, face="center")
        return np.array([recognizer.compare(cache[a], cache[b]) for a, b in pairs])

    genuine, impostor = cosines(same), cosines(diff)
    spread = np.sqrt((genuine.var() + impostor.var()) / 2)
    # On all View 1 training pairs the means differ by about 0.22 (genuine ~0.89, impostor ~0.67).
    assert genuine.mean() > impostor.mean() + 0.12
    assert (genuine.mean() - impostor.mean()) / spread > 3.0
    assert np.mean(genuine[:, None] > impostor[None, :]) >= 0.95
