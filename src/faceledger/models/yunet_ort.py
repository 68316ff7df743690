"""YuNet on onnxruntime: the block-quantised file's weights folded to float32, decoded as OpenCV does.

onnxruntime cannot load the YuNet file as shipped (its ``DequantizeLinear`` nodes use block
quantisation); :func:`~faceledger.models.sface_ort.fold_weights` turns them into float32
initializers in memory, and :func:`_any_size` lets the input's height and width vary (the
graph has no fixed-size node: its two ``Resize`` nodes scale by 2, its ``Reshape`` nodes
flatten with -1). On this 2-core AVX2 CPU the folded graph runs a 640x480 input in about half
the CPU time of OpenCV's DNN module (``cv2.FaceDetectorYN``), which is most of a portrait's
detection and ~60% of video redaction's.

:class:`OrtYuNet` reproduces ``cv2.FaceDetectorYN.detect`` (OpenCV 4.x
``modules/objdetect/src/face_detect.cpp``, read for its behaviour, not copied): the BGR image is
padded right and bottom with zeros to multiples of 32, fed unscaled as float32 NCHW; each output
level (strides 8, 16, 32) gives per cell a class and an objectness score (clamped to [0, 1],
the face score is the square root of their product), a box (centre offset from the cell, log
width and height, in strides) and five landmarks (offsets from the cell, in strides); the
candidates at or above the score threshold go through ``cv2.dnn.NMSBoxes`` on integer boxes.
The rows are those of ``FaceDetectorYN`` (x, y, w, h, five landmarks, score) up to float
rounding (``tests/models/test_yunet_ort.py`` compares them on real photos).
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

from faceledger._cv import cv2
from faceledger.errors import ModelFileError

__all__ = ["OrtYuNet"]

_STRIDES = (8, 16, 32)
_OUTPUTS = tuple(f"{kind}_{s}" for kind in ("cls", "obj", "bbox", "kps") for s in _STRIDES)


class OrtYuNet:
    """One onnxruntime session of the YuNet graph for inputs of any size.

    ``threads``: onnxruntime's intra-op threads (idle ones sleep). ``detect`` takes a BGR
    ``uint8`` image, as ``cv2.FaceDetectorYN.detect`` does (or RGB with ``rgb=True``), and returns
    its rows. The session's memory arena keeps the buffers of the largest input seen; :meth:`detect`
    with ``release=True`` gives them back after the run (a large one-off input).

    The network's float input is written straight from the image into a buffer kept per thread
    and input size (:data:`_KEPT_BUFFERS` sizes, none over :data:`_KEPT_BUFFER_PIXELS`): building
    it anew each call (colour swap, padding, ``blobFromImage``) cost 5.6 ms at 640x360 and 16.6 ms
    at 1280x720, nearly all page faults on freshly mapped memory, against 0.3 and 1.2 ms.
    """

    def __init__(self, model: bytes, *, threads: int = 1, score_threshold: float = 0.3,
                 nms_threshold: float = 0.3, top_k: int = 5000) -> None:
        """``model``: the YuNet file's bytes, as checked against its SHA-256."""
        import onnxruntime as ort

        from faceledger.models.sface_ort import fold_weights

        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        opts.intra_op_num_threads = max(1, threads)
        opts.inter_op_num_threads = 1
        opts.enable_mem_pattern = False  # a plan per input size would be kept for every size seen
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            graph = _any_size(fold_weights(model, split_prelu=False))
            self._session: Any = ort.InferenceSession(graph, sess_options=opts, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnx and onnxruntime raise their own exception types
            raise ModelFileError(f"onnxruntime cannot load the YuNet model: {exc}") from None
        self._input = self._session.get_inputs()[0].name
        self._release = ort.RunOptions()
        self._release.add_run_config_entry("memory.enable_memory_arena_shrinkage", "cpu:0")
        self.score_threshold, self.nms_threshold, self.top_k = score_threshold, nms_threshold, top_k
        self._local = threading.local()

    def detect(self, image: np.ndarray, *, rgb: bool = False, release: bool = False) -> np.ndarray:
        """Face rows ``(n, 15)`` float32 (x, y, w, h, five landmarks x, y, score) for a BGR image
        (``rgb=True``: an RGB one)."""
        blob = self._blob(image, rgb)
        pw = blob.shape[3]
        outs = self._session.run(_OUTPUTS, {self._input: blob}, self._release if release else None)
        faces = np.concatenate([_decode_level(outs[i], outs[3 + i], outs[6 + i], outs[9 + i], s, pw // s,
                                              self.score_threshold) for i, s in enumerate(_STRIDES)])
        if len(faces) > 1:
            boxes = faces[:, 0:4].astype(np.int32).tolist()  # OpenCV suppresses on integer boxes
            keep = cv2.dnn.NMSBoxes(boxes, faces[:, 14].tolist(), self.score_threshold, self.nms_threshold,
                                    1.0, self.top_k)
            faces = faces[np.asarray(keep, np.int64).reshape(-1)]
        return faces

    def _blob(self, image: np.ndarray, rgb: bool) -> np.ndarray:
        """The network's input: ``image`` as float32 BGR planes, zero-padded right and bottom to
        multiples of 32 (OpenCV's ``padWithDivisor`` and ``blobFromImage``)."""
        h, w = image.shape[:2]
        ph, pw = -(-h // 32) * 32, -(-w // 32) * 32
        kept: dict[tuple[int, int], np.ndarray] = getattr(self._local, "buffers", None) or {}
        self._local.buffers = kept
        blob = kept.pop((h, w), None)  # keyed by the image's own size: its padding stays zero
        if blob is None:
            blob = np.zeros((1, 3, ph, pw), np.float32)
        if ph * pw <= _KEPT_BUFFER_PIXELS:
            while len(kept) >= _KEPT_BUFFERS:
                kept.pop(next(iter(kept)))  # least recently used first
            kept[(h, w)] = blob
        for c in range(3):  # BGR planes
            np.copyto(blob[0, c, :h, :w], image[:, :, 2 - c] if rgb else image[:, :, c], casting="unsafe")
        return blob


#: Input sizes whose float buffer a thread keeps, and the largest kept (padded pixels: 1920x1088).
_KEPT_BUFFERS = 4
_KEPT_BUFFER_PIXELS = 1920 * 1088


def _decode_level(cls: np.ndarray, obj: np.ndarray, bbox: np.ndarray, kps: np.ndarray, stride: int, cols: int,
                  threshold: float) -> np.ndarray:
    """The rows of one output level whose score is at least ``threshold``."""
    score = np.sqrt(np.clip(cls.reshape(-1), 0.0, 1.0) * np.clip(obj.reshape(-1), 0.0, 1.0))
    idx = np.flatnonzero(score >= threshold)
    if idx.size == 0:
        return np.zeros((0, 15), np.float32)
    c = (idx % cols).astype(np.float32)
    r = (idx // cols).astype(np.float32)
    b = bbox.reshape(-1, 4)[idx]
    k = kps.reshape(-1, 5, 2)[idx]
    out = np.empty((idx.size, 15), np.float32)
    cx, cy = (c + b[:, 0]) * stride, (r + b[:, 1]) * stride
    bw, bh = np.exp(b[:, 2]) * stride, np.exp(b[:, 3]) * stride
    out[:, 0], out[:, 1], out[:, 2], out[:, 3] = cx - bw / 2, cy - bh / 2, bw, bh
    out[:, 4:14:2] = (k[:, :, 0] + c[:, None]) * stride
    out[:, 5:14:2] = (k[:, :, 1] + r[:, None]) * stride
    out[:, 14] = score[idx]
    return out


def _any_size(model: bytes) -> bytes:
    """``model`` with its input's height and width (and every output's cell count) symbolic."""
    import onnx

    m = onnx.load_from_string(model)
    dims = m.graph.input[0].type.tensor_type.shape.dim
    dims[2].dim_param, dims[3].dim_param = "H", "W"
    for out in m.graph.output:
        out.type.tensor_type.shape.dim[1].dim_param = f"{out.name}_cells"
    del m.graph.value_info[:]  # shapes inferred for 640x640 would contradict other sizes
    return m.SerializeToString()
