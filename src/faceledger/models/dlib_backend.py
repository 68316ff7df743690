"""``dlib``: dlib's HOG or MMOD face detector and its ResNet 128-D recogniser.

This is the model behind the ``face_recognition`` package, run through dlib's own
Python bindings (``dlib-bin``). The three model files come from the PyPI package
``face-recognition-models==0.3.0`` and are checked against SHA-256 at load. They
are public domain / CC0 (the 68-point landmark model is not used).

Detection
    ``hog`` (default): dlib's frontal-face HOG + linear SVM detector. ``mmod``: the
    MMOD CNN detector (more robust to pose, tens of times slower on a CPU). Both scan
    an 80x80 window, so at ``upsample`` n they find faces down to roughly
    ``80 / 2**n`` pixels (about 40 px with the default n = 1).
    ``DetectOptions.min_face_size`` is honoured by filtering boxes and, where faces
    that small are not wanted, by upsampling less or halving the image (faster; see
    :func:`plan_scale`). It never upsamples beyond ``upsample``: load with a larger
    ``upsample`` to find smaller faces.

Scores
    dlib's raw detection value (the HOG SVM margin, or the MMOD confidence) is not a
    probability and is not confined to ``[0, 1]``; 0 is dlib's own default threshold.
    It is mapped to ``[0, 1]`` by the logistic ``score = 1 / (1 + exp(-(a * raw + b)))``
    with ``b = logit(0.6)``, so that dlib's default threshold falls on 0.6, FaceLedger's
    default ``score_threshold``: default options reproduce dlib's default behaviour.
    The slope ``a`` puts the median raw value of LFW faces (HOG: 1.71 over the 3,418
    pairsDevTrain images where it found one; MMOD: 1.06 over 41 images) on 0.93, YuNet's
    median score on the same photos, so scores are on a comparable scale across backends.
    On a group photo the HOG faces score 0.93-0.97 and the best non-face window 0.47. The map is
    monotone: a ``score_threshold`` above 0.6 is stricter than dlib's default. A lower
    one lets the HOG detector report windows below its default threshold (more faces,
    more false alarms); the MMOD detector's Python binding has no threshold to lower,
    so for ``mmod`` values below 0.6 act like 0.6.

Landmarks
    dlib's 5-point model locates two corners of each eye and the base of the nose
    (the point under the nose, between the nostrils; *not* the nose tip that other
    detectors report). We report the eye centres (the mean of each corner pair), the
    nose base in the nose slot, and ``nan`` for both mouth corners. Pose proxies
    (``Quality.yaw``) and any crop aligned to these three points (the sharpness
    measure's) are therefore approximate: the nose base sits below the tip.

Embedding
    The recogniser aligns its own 150x150 chip from dlib's 5-point landmarks, which
    are located inside the given box, then maps it to 128 numbers. The shape
    predictor was trained on dlib-detector boxes; a box from another detector is
    first mapped to dlib's framing by a :class:`BoxFrame` (see :data:`YUNET_FRAME`,
    measured with ``bench/fuse_weights.py --box-study``). Descriptors are then
    L2-normalised and compared by cosine similarity (model id ``dlib-resnet-v1``).
    dlib's published decision rule is a *Euclidean* distance below 0.6 between the
    raw, unnormalised vectors; that number does not carry over to cosine scores of
    unit vectors, so this backend decides only with thresholds calibrated for it
    (``models/thresholds/dlib-resnet-v1.json``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from faceledger._cv import cv2
from faceledger.core.similarity import l2_normalize
from faceledger.errors import BackendUnavailableError, ConfigError
from faceledger.models.base import Backend, Detections, DetectOptions
from faceledger.models.files import ModelFile
from faceledger.models.thresholds import load_packaged_thresholds
from faceledger.types import ModelInfo

__all__ = [
    "DLIB_FRAME",
    "MMOD",
    "MODEL_ID",
    "RESNET",
    "SHAPE_PREDICTOR_5",
    "YUNET_FRAME",
    "BoxFrame",
    "DlibDetector",
    "DlibEmbedder",
    "DlibModels",
    "import_dlib",
    "load",
    "raw_threshold",
    "score_from_raw",
]

_INSTALL = "faceledger[dlib]"
SHAPE_PREDICTOR_5 = ModelFile(
    package="face_recognition_models",
    relative_path="models/shape_predictor_5_face_landmarks.dat",
    sha256="c4b1e9804792707d3a405c2c16a80a20269e6675021f64a41d30fffafbc41888",
    pip_name=_INSTALL,
)
RESNET = ModelFile(
    package="face_recognition_models",
    relative_path="models/dlib_face_recognition_resnet_model_v1.dat",
    sha256="55533b28a95800a551ba546ba62fe69625c7e95a7061c338adffead08719da30",
    pip_name=_INSTALL,
)
MMOD = ModelFile(
    package="face_recognition_models",
    relative_path="models/mmod_human_face_detector.dat",
    sha256="4cb19393e2fbaf2b1609a9319ad5386618c886a6234ec1b971f3e87c85d87fe6",
    pip_name=_INSTALL,
)
MODEL_ID = "dlib-resnet-v1"
DetectorKind = Literal["hog", "mmod"]

#: Side (pixels) of the window both dlib detectors scan at the input scale.
WINDOW = 80.0
#: How many windows the smallest wanted face should span when the scale is chosen.
_MARGIN = 1.5
#: The most upsampling ``load`` accepts (each step doubles width and height).
MAX_UPSAMPLE = 3
#: Score that dlib's own default threshold (raw value 0) maps to.
_ANCHOR = 0.6
#: Logistic slopes (see the module docstring for how they were set).
_SLOPE = {"hog": 1.28, "mmod": 2.06}


def import_dlib() -> Any:
    """Import dlib, or say what to install."""
    try:
        import dlib
    except ImportError:
        raise BackendUnavailableError(
            f"the dlib backends need dlib and face_recognition_models: pip install '{_INSTALL}'"
        ) from None
    return dlib


def _logit(p: float) -> float:
    return math.log(p / (1.0 - p))


def score_from_raw(raw: np.ndarray, kind: DetectorKind) -> np.ndarray:
    """Map dlib's raw detection values to ``[0, 1]`` scores (float32; see module docstring)."""
    z = _SLOPE[kind] * np.asarray(raw, np.float64) + _logit(_ANCHOR)
    return (1.0 / (1.0 + np.exp(-z))).astype(np.float32)


def raw_threshold(score_threshold: float, kind: DetectorKind) -> float:
    """The raw dlib value that maps to ``score_threshold`` (clipped to stay finite)."""
    p = min(max(score_threshold, 0.01), 1.0 - 1e-6)
    return (_logit(p) - _logit(_ANCHOR)) / _SLOPE[kind]


def plan_scale(min_face_size: float, upsample: int) -> tuple[float, int]:
    """``(resize factor, dlib upsample count)`` to find faces of ``min_face_size`` px and up.

    Aims for the smallest wanted face to span 1.5 windows (120 px) at the scale the
    detector runs, clear of the window's own size where it is least reliable:
    upsamples as needed but at most ``upsample`` times, or, for large
    ``min_face_size``, halves the image as often as that allows (faster).
    """
    steps = math.ceil(math.log2(_MARGIN * WINDOW / min_face_size) - 1e-9)
    if steps >= 0:
        return 1.0, min(steps, upsample)
    return 2.0**steps, 0


@dataclass(frozen=True, slots=True)
class BoxFrame:
    """Maps a box ``(x, y, w, h)`` of some detector to the box dlib's detector would draw.

    The result is ``(x + dx * w, y + dy * h, sx * w, sy * h)``: offsets and scales are
    fractions of the input box's width and height.
    """

    dx: float = 0.0
    dy: float = 0.0
    sx: float = 1.0
    sy: float = 1.0

    def apply(self, boxes: np.ndarray) -> np.ndarray:
        b = np.asarray(boxes, np.float64).reshape(-1, 4)
        return np.stack(
            [b[:, 0] + self.dx * b[:, 2], b[:, 1] + self.dy * b[:, 3], self.sx * b[:, 2], self.sy * b[:, 3]],
            axis=1,
        )


#: Boxes from dlib's own detectors are used as they are.
DLIB_FRAME = BoxFrame()
#: YuNet boxes are taller (height about 1.32 x width, reaching the forehead) and sit
#: higher than dlib's nearly square boxes. These are the medians of the per-face ratios
#: between the HOG box and the YuNet box of the same face on LFW View 1 (the 3,418
#: pairsDevTrain images where both found it). Measured there (``bench/fuse_weights.py
#: --box-study``, all pairs among those images), dlib templates from mapped YuNet boxes
#: match those from HOG boxes (TAR at FMR 1e-3 / 1e-4: 93.3% / 78.3% against 93.2% /
#: 78.5%; EER 0.97% against 1.04%), while unmapped YuNet boxes lose about a point
#: (92.6% / 77.2%, EER 1.14%), and boxes placed from YuNet's eyes gain nothing.
YUNET_FRAME = BoxFrame(dx=-0.096, dy=0.112, sx=1.140, sy=0.857)


@dataclass(frozen=True, slots=True)
class DlibModels:
    """The dlib objects loaded from verified files (shared by detector and embedder)."""

    dlib: Any
    predictor: Any  # dlib.shape_predictor (5 points)
    recogniser: Any  # dlib.face_recognition_model_v1
    files: tuple[tuple[str, str], ...]

    @classmethod
    def load(cls) -> DlibModels:
        dlib = import_dlib()
        sp, rn = SHAPE_PREDICTOR_5.verified_path(), RESNET.verified_path()
        files = ((str(sp), SHAPE_PREDICTOR_5.sha256), (str(rn), RESNET.sha256))
        return cls(dlib, dlib.shape_predictor(str(sp)), dlib.face_recognition_model_v1(str(rn)), files)

    def rectangle(self, box: np.ndarray) -> Any:
        """A ``dlib.rectangle`` (inclusive integer corners) for a box ``x, y, w, h``."""
        x, y, w, h = (float(v) for v in box)
        return self.dlib.rectangle(round(x), round(y), round(x + w) - 1, round(y + h) - 1)

    def shape(self, rgb: np.ndarray, box: np.ndarray) -> Any:
        """dlib's 5-point ``full_object_detection`` inside ``box`` (pixels of ``rgb``)."""
        return self.predictor(rgb, self.rectangle(box))


def landmarks_from_shape(shape: Any) -> np.ndarray:
    """Our ``(5, 2)`` landmark layout from dlib's 5 points (see module docstring).

    dlib's points 0-1 are the corners of the eye on the image's right (the subject's
    left eye), 2-3 those of the eye on the image's left, 4 the base of the nose.
    """
    p = np.array([(shape.part(i).x, shape.part(i).y) for i in range(5)], np.float32)
    out = np.full((5, 2), np.nan, np.float32)
    out[0] = (p[2] + p[3]) / 2.0
    out[1] = (p[0] + p[1]) / 2.0
    out[2] = p[4]
    return out


class DlibDetector:
    """dlib's HOG or MMOD detector, with 5-point landmarks from dlib's shape predictor."""

    def __init__(self, models: DlibModels, kind: DetectorKind, upsample: int, mmod_path: str = "") -> None:
        self.name = f"dlib-{kind}"
        self.kind = kind
        self.upsample = upsample
        self._models = models
        dlib = models.dlib
        self._hog = dlib.get_frontal_face_detector() if kind == "hog" else None
        self._cnn = dlib.cnn_face_detection_model_v1(mmod_path) if kind == "mmod" else None

    def _raw(self, rgb: np.ndarray, n_up: int, threshold: float) -> tuple[np.ndarray, np.ndarray]:
        """Boxes ``(n, 4)`` in ``rgb``'s pixels and raw dlib values ``(n,)``."""
        if self._hog is not None:
            rects, raw, _ = self._hog.run(rgb, n_up, threshold)
        else:
            found = self._cnn(rgb, n_up)
            rects, raw = [d.rect for d in found], [d.confidence for d in found]
        boxes = np.array([[r.left(), r.top(), r.width(), r.height()] for r in rects], np.float64)
        return boxes.reshape(-1, 4), np.asarray(raw, np.float64).reshape(-1)

    def detect(self, rgb: np.ndarray, options: DetectOptions) -> Detections:
        """Faces in an RGB ``uint8`` image, best score first (see module docstring)."""
        rgb = np.ascontiguousarray(rgb, dtype=np.uint8)
        factor, n_up = plan_scale(options.min_face_size, self.upsample)
        level = rgb
        if factor != 1.0:
            h, w = rgb.shape[:2]
            size = (max(1, round(w * factor)), max(1, round(h * factor)))
            level = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
        boxes, raw = self._raw(level, n_up, raw_threshold(options.score_threshold, self.kind))
        if factor != 1.0:
            boxes = boxes / factor
        scores = score_from_raw(raw, self.kind)
        keep = (scores >= options.score_threshold) & (boxes[:, 2] >= options.min_face_size)
        order = np.argsort(-scores[keep], kind="stable")[: options.max_faces]
        boxes, scores = boxes[keep][order], scores[keep][order]
        if len(scores) == 0:
            return Detections.empty()
        marks = np.stack([landmarks_from_shape(self._models.shape(rgb, b)) for b in boxes])
        return Detections(boxes.astype(np.float32), marks, scores)


class DlibEmbedder:
    """dlib's ResNet (``dlib_face_recognition_resnet_model_v1``): 128-D unit vectors.

    ``frame`` maps the boxes this embedder receives to dlib's framing: the default
    :data:`DLIB_FRAME` for boxes of dlib's detectors, :data:`YUNET_FRAME` for YuNet's.
    The landmarks passed to :meth:`embed` are not used: dlib locates its own.
    """

    name = MODEL_ID
    dimension = 128

    def __init__(self, models: DlibModels, frame: BoxFrame = DLIB_FRAME) -> None:
        self.models = models
        self.frame = frame

    def embed(self, rgb: np.ndarray, boxes: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
        """Return ``(n, 128)`` float32 L2-normalised descriptors, one per box (``x, y, w, h``)."""
        boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
        if len(boxes) == 0:
            return np.zeros((0, self.dimension), np.float32)
        rgb = np.ascontiguousarray(rgb, dtype=np.uint8)
        shapes = self.models.dlib.full_object_detections()
        for box in self.frame.apply(boxes):
            shapes.append(self.models.shape(rgb, box))
        raw = self.models.recogniser.compute_face_descriptor(rgb, shapes)
        return l2_normalize(np.array([np.asarray(v) for v in raw], np.float32))


def load(detector: str = "hog", upsample: int = 1) -> Backend:
    """Load the dlib backend: ``detector`` ``"hog"`` or ``"mmod"``; ``upsample`` 0-3 (see docstring)."""
    if detector not in ("hog", "mmod"):
        raise ConfigError(f"unknown dlib detector '{detector}': use 'hog' or 'mmod'")
    if isinstance(upsample, bool) or not isinstance(upsample, int) or not 0 <= upsample <= MAX_UPSAMPLE:
        raise ConfigError(f"upsample must be an integer from 0 to {MAX_UPSAMPLE}, got {upsample!r}")
    models = DlibModels.load()
    files = models.files
    mmod_path = ""
    if detector == "mmod":
        mmod_path = str(MMOD.verified_path())
        files = ((mmod_path, MMOD.sha256), *files)
    det = DlibDetector(models, detector, upsample, mmod_path)  # type: ignore[arg-type]
    info = ModelInfo(
        backend="dlib",
        model_id=MODEL_ID,
        detector=det.name,
        embedder=DlibEmbedder.name,
        dimension=DlibEmbedder.dimension,
        runtime=f"dlib {models.dlib.__version__}",
        licence="dlib models: public domain / CC0 (Davis E. King)",
        files=files,
    )
    return Backend.build(info, det, DlibEmbedder(models), load_packaged_thresholds(MODEL_ID))
