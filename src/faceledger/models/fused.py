"""``fused`` ("accurate mode"): YuNet detection, then SFace and dlib ResNet on the same face.

Template
    For one face, SFace gives a unit vector ``s`` (128-D, from the 112x112 aligned
    crop) and dlib's ResNet a unit vector ``d`` (128-D, from dlib's own 150x150 chip,
    located inside the YuNet box mapped to dlib's framing by
    :data:`~faceledger.models.dlib_backend.YUNET_FRAME`). The fused template is::

        t = concat(sqrt(w) * s, sqrt(1 - w) * d)        # 256-D, |t|^2 = w + (1 - w) = 1

    so the cosine of two fused templates is exactly the weighted mean of the two
    models' cosines: ``t1 . t2 = w * cos_sface + (1 - w) * cos_dlib``. This is
    score-level fusion that stays a single unit vector, so every store and vector
    index that searches by cosine (or inner product, or Euclidean distance on unit
    vectors) searches fused templates without knowing they are fused.

Why one weight is enough
    Normalising each model's score first (``z = a_i * cos_i + b_i`` with ``a_i > 0``,
    e.g. z-scores of impostor scores) and adding gives
    ``a_1 cos_1 + a_2 cos_2 + b_1 + b_2``, which is ``(a_1 + a_2) * (w cos_1 + (1 - w) cos_2)``
    plus a constant with ``w = a_1 / (a_1 + a_2)``: a positive scale and a shift of the
    weighted mean. A decision ``score >= threshold`` is unchanged by both once the
    threshold is moved accordingly, so any such normalisation amounts to a choice of
    ``w`` and a threshold, and both are calibrated instead.

Weight
    ``w`` (``weight_sface``) is read from ``models/thresholds/fused.params.json``,
    written by ``bench/fuse_weights.py`` from LFW View 1 (``pairsDevTrain.txt``) only;
    the file records the dataset, its SHA-256 and the criterion (the mean of the true
    accept rates at false match rates 1e-3 and 1e-4 over all same/different-person
    pairs among the 3,443 images). The model id encodes ``w``
    (``fused-sface-dlib-w0.22``) so templates made with another weight are never
    compared with these. Thresholds for that model id are written by calibration
    (``models/thresholds/<model id>.json``); none are invented here.

    ``w`` looks small because dlib's unit descriptors share a large common component:
    its cosines are compressed (impostors about 0.83 +- 0.035, genuine 0.95 on LFW)
    next to SFace's (0.09 +- 0.09 and 0.66). Measured in impostor standard deviations,
    ``w = 0.22`` weighs SFace 0.42 and dlib 0.58.

Cost: one YuNet pass per photo, then per face one SFace and one dlib ResNet pass
(the latter dominates; see ``bench/fuse_weights.py`` for measured times).
"""

from __future__ import annotations

import json
import math
import numbers
from importlib import resources

import numpy as np

from faceledger._cv import cv2
from faceledger.errors import ConfigError, NotCalibratedError
from faceledger.models.base import Backend
from faceledger.models.dlib_backend import YUNET_FRAME, DlibEmbedder, DlibModels
from faceledger.models.thresholds import load_packaged_thresholds
from faceledger.models.yunet_sface import SFACE, YUNET, SFaceEmbedder, YuNetDetector
from faceledger.types import ModelInfo

__all__ = ["PARAMS_FILE", "FusedEmbedder", "fuse", "fused_model_id", "load", "load_params"]

#: Name of the packaged fusion parameters file, beside the thresholds files.
PARAMS_FILE = "fused.params.json"


def fused_model_id(weight_sface: float) -> str:
    """The model id of fused templates made with SFace weight ``w`` (two decimals)."""
    return f"fused-sface-dlib-w{weight_sface:.2f}"


def _check_weight(weight: object, source: str) -> float:
    if isinstance(weight, bool) or not isinstance(weight, numbers.Real):
        raise ConfigError(f"{source}: weight_sface must be a number, got {weight!r}")
    w = float(weight)
    if not (math.isfinite(w) and 0.0 <= w <= 1.0):
        raise ConfigError(f"{source}: weight_sface must be within [0, 1], got {w}")
    # Rounded as in the model id, so the id always describes the weight in use.
    return round(w, 2)


def load_params() -> dict:
    """The packaged fusion parameters (``weight_sface``, ``dataset``, ``criterion``, ...)."""
    res = resources.files("faceledger.models") / "thresholds" / PARAMS_FILE
    if not res.is_file():
        raise NotCalibratedError(
            f"no fusion weight: {PARAMS_FILE} is missing; run bench/fuse_weights.py (LFW View 1)"
        )
    try:
        data = json.loads(res.read_text())
        weight = data["weight_sface"]
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise ConfigError(f"{res}: invalid fusion parameters ({exc!r})") from None
    data["weight_sface"] = _check_weight(weight, str(res))
    return data


def fuse(t_sface: np.ndarray, t_dlib: np.ndarray, weight_sface: float) -> np.ndarray:
    """``concat(sqrt(w) * t_sface, sqrt(1 - w) * t_dlib)`` row by row, as float32.

    For unit rows the result has unit norm and ``fuse(a) . fuse(b)`` equals
    ``w * (a_sface . b_sface) + (1 - w) * (a_dlib . b_dlib)``.
    """
    w = _check_weight(weight_sface, "fuse")
    a, b = np.float32(math.sqrt(w)), np.float32(math.sqrt(1.0 - w))
    return np.concatenate([a * np.asarray(t_sface, np.float32), b * np.asarray(t_dlib, np.float32)], axis=1)


class FusedEmbedder:
    """``concat(sqrt(w) * sface, sqrt(1 - w) * dlib)``: 256-D unit vectors (see module docstring)."""

    dimension = 256

    def __init__(self, sface: SFaceEmbedder, dlib: DlibEmbedder, weight_sface: float) -> None:
        self.weight_sface = _check_weight(weight_sface, "FusedEmbedder")
        self.name = fused_model_id(self.weight_sface)
        self.sface = sface
        self.dlib = dlib

    def embed(self, rgb: np.ndarray, boxes: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
        """Fused templates of faces given by YuNet boxes (``x, y, w, h``) and 5 landmarks."""
        if len(boxes) == 0:
            return np.zeros((0, self.dimension), np.float32)
        parts = self.sface.embed(rgb, boxes, landmarks), self.dlib.embed(rgb, boxes, landmarks)
        return fuse(*parts, self.weight_sface)


def load(weight_sface: float | None = None) -> Backend:
    """Load YuNet, SFace and dlib (all checked against SHA-256) and the fusion weight.

    ``weight_sface`` overrides the packaged weight (its templates get their own model id,
    which has no calibrated thresholds unless you calibrate it).
    """
    if weight_sface is None:
        weight_sface = load_params()["weight_sface"]
    weight_sface = _check_weight(weight_sface, "fused.load")
    det_path, rec_path = YUNET.verified_path(), SFACE.verified_path()
    models = DlibModels.load()
    embedder = FusedEmbedder(
        SFaceEmbedder(str(rec_path)), DlibEmbedder(models, YUNET_FRAME), weight_sface
    )
    info = ModelInfo(
        backend="fused",
        model_id=embedder.name,
        detector=YuNetDetector.name,
        embedder=f"{SFaceEmbedder.name}+{DlibEmbedder.name}",
        dimension=embedder.dimension,
        runtime=f"OpenCV {cv2.__version__} DNN + dlib {models.dlib.__version__}",
        licence="YuNet: MIT; SFace: Apache-2.0 (OpenCV Zoo); dlib models: public domain / CC0",
        files=((str(det_path), YUNET.sha256), (str(rec_path), SFACE.sha256), *models.files),
    )
    detector = YuNetDetector(str(det_path))
    return Backend.build(info, detector, embedder, load_packaged_thresholds(embedder.name))
