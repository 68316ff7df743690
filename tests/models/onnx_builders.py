"""Tiny ONNX models, built with the ``onnx`` package, for the ``onnx`` backend's tests.

* :func:`linear_embedder` — an "embedder" that is a fixed linear projection of its
  input tensor, so the expected template is computable in numpy.
* :func:`constant_scrfd` — a "detector" whose SCRFD-format outputs are constants
  encoding planted detections (:class:`Planted`), so decoding is checked exactly.
* :func:`pooled_scrfd` — a "detector" whose score at each stride-``s`` location is
  the mean of the first input channel over that ``s x s`` cell: a painted square is
  "detected" where it lands in the network's input (checks letterbox and pixels).
* :func:`sface_for_onnxruntime` — the real SFace file made loadable by onnxruntime.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17


def save(model: onnx.ModelProto, path: Path) -> str:
    """Check and write ``model``; return the file's SHA-256."""
    model.ir_version = 8
    onnx.checker.check_model(model)
    data = model.SerializeToString()
    Path(path).write_bytes(data)
    return hashlib.sha256(data).hexdigest()


def _model(nodes: list, inputs: list, outputs: list, inits: list | None = None) -> onnx.ModelProto:
    graph = helper.make_graph(nodes, "test", inputs, outputs, initializer=inits or [])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])


def _const(name: str, array: np.ndarray) -> onnx.NodeProto:
    value = numpy_helper.from_array(np.asarray(array), name + "_v")
    return helper.make_node("Constant", [], [name], value=value)


# -- embedder -----------------------------------------------------------------------


def linear_embedder(
    path: Path,
    weight: np.ndarray,
    *,
    size: int = 112,
    layout: str = "NCHW",
    batch: int | str = "N",
    input_name: str = "data",
    output_name: str = "embedding",
) -> str:
    """``y = flatten(x) @ weight.T`` with ``x`` the input tensor in ``layout``; returns the SHA-256.

    ``weight`` is ``(dimension, 3 * size * size)``; ``batch`` is a fixed size or a symbol.
    """
    dims = [batch, 3, size, size] if layout == "NCHW" else [batch, size, size, 3]
    x = helper.make_tensor_value_info(input_name, TensorProto.FLOAT, dims)
    y = helper.make_tensor_value_info(output_name, TensorProto.FLOAT, [batch, weight.shape[0]])
    w = numpy_helper.from_array(np.ascontiguousarray(weight.T, np.float32), "w")
    nodes = [
        helper.make_node("Flatten", [input_name], ["flat"], axis=1),
        helper.make_node("MatMul", ["flat", "w"], [output_name]),
    ]
    return save(_model(nodes, [x], [y], [w]), path)


# -- detectors ----------------------------------------------------------------------


@dataclass(frozen=True)
class Planted:
    """One detection planted in a constant SCRFD output.

    ``ltrb`` are box distances and ``kps`` keypoint offsets, both in units of ``stride``.
    """

    stride: int
    row: int
    col: int
    anchor: int
    score: float
    ltrb: tuple[float, float, float, float]
    kps: tuple[tuple[float, float], ...]


def scrfd_arrays(
    size: tuple[int, int], strides: tuple[int, ...], anchors: int, planted: list[Planted]
) -> dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Per stride, the ``(scores (n, 1), boxes (n, 4), keypoints (n, 10))`` holding ``planted``."""
    width, height = size
    out = {}
    for s in strides:
        cols = width // s
        n = (height // s) * cols * anchors
        scores, boxes, kps = (np.zeros((n, k), np.float32) for k in (1, 4, 10))
        for p in planted:
            if p.stride == s:
                i = (p.row * cols + p.col) * anchors + p.anchor
                scores[i, 0], boxes[i], kps[i] = p.score, p.ltrb, np.ravel(p.kps)
        out[s] = (scores, boxes, kps)
    return out


def constant_scrfd(
    path: Path,
    arrays: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]],
    size: tuple[int, int],
    *,
    keypoints: bool = True,
    batched: bool = False,
    order: str = "grouped",
    input_dims: list | None = None,
) -> tuple[str, list[str]]:
    """A model that ignores its input and outputs ``arrays``; returns the SHA-256 and output names.

    ``order`` is ``"grouped"`` (all scores, all boxes, all keypoints: the default
    convention) or ``"interleaved"`` (score, box, keypoints of each stride in turn).
    ``batched`` adds a leading dimension of 1 to every output, as some exports do.
    """
    width, height = size
    dims = input_dims or [1, 3, height, width]
    x = helper.make_tensor_value_info("input.1", TensorProto.FLOAT, dims)
    kinds = ("score", "bbox", "kps") if keypoints else ("score", "bbox")
    per_stride = [[(f"{k}_{s}", a) for k, a in zip(kinds, arrays[s], strict=False)] for s in sorted(arrays)]
    if order == "grouped":
        entries = [per_stride[j][i] for i in range(len(kinds)) for j in range(len(per_stride))]
    else:
        entries = [e for group in per_stride for e in group]
    nodes, outputs = [], []
    for name, array in entries:
        value = array[None] if batched else array
        nodes.append(_const(name, value.astype(np.float32)))
        outputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, list(value.shape)))
    return save(_model(nodes, [x], outputs), path), [name for name, _ in entries]


def pooled_scrfd(
    path: Path,
    *,
    size: tuple[int, int] | None,
    strides: tuple[int, ...] = (8, 16, 32),
    anchors: int = 2,
    gains: dict[int, float] | None = None,
    ltrb: tuple[float, float, float, float] = (0.5, 0.5, 0.5, 0.5),
    kps: tuple[float, ...] = (-0.2, -0.2, 0.2, -0.2, 0.0, 0.0, -0.15, 0.2, 0.15, 0.2),
) -> str:
    """A detector whose stride-``s`` score is ``gain[s]`` times the cell mean of input channel 0.

    Every location reports the same box distances ``ltrb`` and keypoint offsets ``kps``
    (stride units). ``size`` is the fixed ``(width, height)`` or None for dynamic input.
    """
    gains = gains if gains is not None else {s: (1.0 if s == strides[-1] else 0.0) for s in strides}
    dims = [1, 3, size[1], size[0]] if size else [1, 3, "H", "W"]
    x = helper.make_tensor_value_info("input.1", TensorProto.FLOAT, dims)
    nodes = [
        _const("c0_start", np.array([0], np.int64)),
        _const("c0_end", np.array([1], np.int64)),
        _const("c0_axis", np.array([1], np.int64)),
        helper.make_node("Slice", ["input.1", "c0_start", "c0_end", "c0_axis"], ["chan0"]),
        _const("col", np.array([-1, 1], np.int64)),
        _const("tile", np.array([1, anchors], np.int64)),
        _const("box", np.array([ltrb], np.float32)),
        _const("kps", np.array([kps], np.float32)),
        _const("zero", np.array(0.0, np.float32)),
    ]
    outs: dict[str, list[str]] = {"score": [], "bbox": [], "kps": []}
    for s in strides:
        nodes += [
            helper.make_node("AveragePool", ["chan0"], [f"pool{s}"], kernel_shape=[s, s], strides=[s, s]),
            helper.make_node("Reshape", [f"pool{s}", "col"], [f"flat{s}"]),
            helper.make_node("Tile", [f"flat{s}", "tile"], [f"tiled{s}"]),
            helper.make_node("Reshape", [f"tiled{s}", "col"], [f"raw{s}"]),
            _const(f"gain{s}", np.array(gains[s], np.float32)),
            helper.make_node("Mul", [f"raw{s}", f"gain{s}"], [f"score_{s}"]),
            helper.make_node("Mul", [f"raw{s}", "zero"], [f"nil{s}"]),
            helper.make_node("Add", [f"nil{s}", "box"], [f"bbox_{s}"]),
            helper.make_node("Add", [f"nil{s}", "kps"], [f"kps_{s}"]),
        ]
        for kind in outs:
            outs[kind].append(f"{kind}_{s}")
    widths = {"score": 1, "bbox": 4, "kps": 10}
    outputs = [
        helper.make_tensor_value_info(name, TensorProto.FLOAT, ["n", widths[kind]])
        for kind in ("score", "bbox", "kps")
        for name in outs[kind]
    ]
    return save(_model(nodes, [x], outputs), path)


# -- a real model -------------------------------------------------------------------


def sface_for_onnxruntime(src: Path, dst: Path) -> str:
    """SFace without its stale graph inputs and with a symbolic batch; returns the SHA-256.

    onnxruntime cannot run the shipped file as is (see MODEL-NOTES): it declares
    initializers and unused tensors as graph inputs. The weights are untouched.
    """
    model = onnx.load(str(src))
    graph = model.graph
    used = {name for node in graph.node for name in node.input}
    inits = {t.name for t in graph.initializer}
    keep = [i for i in graph.input if i.name in used and i.name not in inits]
    del graph.input[:]
    graph.input.extend(keep)
    graph.input[0].type.tensor_type.shape.dim[0].dim_param = "N"
    graph.output[0].type.tensor_type.shape.dim[0].dim_param = "N"
    data = model.SerializeToString()
    Path(dst).write_bytes(data)
    return hashlib.sha256(data).hexdigest()
