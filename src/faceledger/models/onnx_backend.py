"""``onnx``: bring your own SCRFD-style detector and/or ArcFace-style embedder (onnxruntime).

A spec (TOML file or dict; :mod:`faceledger.models.onnx_spec`, ``docs/backends.md``)
names the files, their SHA-256 and how to feed them. With a detector only, faces are
found but templates are refused (:class:`NoEmbedder`); with an embedder only, YuNet
(the ``yunet-sface`` detector) finds the faces.

Detector, SCRFD's conventions (InsightFace): per stride ``s`` (8, 16, 32), one row per
feature-map location (row-major) and anchor (``num_anchors`` consecutive rows per
location) holding a score in ``[0, 1]``, box distances ``(left, top, right, bottom)``
and optionally five keypoint offsets ``(dx, dy)``, both in units of ``s`` from the
anchor centre ``(col * s, row * s)``. Unnamed outputs are taken in model order: every
score output (ascending strides), then every box output, then every keypoint output.
A fixed input size (the model's or the spec's ``input_size``) gets the image
letterboxed (scaled to fit, aspect kept, top-left of a black canvas); a dynamic one
runs over :mod:`faceledger.models.pyramid`, each level padded right and bottom to a
multiple of the largest stride.

Embedder, ArcFace layout: each face aligned by :func:`faceledger.core.align.align_face`
to the square crop (112 unless the model or spec says otherwise), batched when the
batch dimension is symbolic, output L2-normalised; templates carry
:meth:`~faceledger.models.onnx_spec.EmbedderSpec.model_id`. Thresholds come only from
the spec's ``thresholds`` file; without one, verification raises ``NotCalibratedError``.

Each file is read once and checked against its SHA-256; those bytes are what
onnxruntime loads (models with external data files are not supported).
"""


from __future__ import annotations

import hashlib
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from faceledger._cv import cv2
from faceledger.core.align import align_face
from faceledger.core.geometry import nms
from faceledger.core.similarity import l2_normalize
from faceledger.errors import BackendUnavailableError, ConfigError, InputError, ModelError, ModelFileError
from faceledger.models.base import Backend, Detections, DetectOptions
from faceledger.models.onnx_spec import (
    DetectorOutputs,
    DetectorSpec,
    EmbedderSpec,
    ModelSpec,
    OnnxSpec,
    Preprocess,
    parse_spec,
    read_spec,
)
from faceledger.models.pyramid import run_pyramid
from faceledger.models.thresholds import Thresholds, load_thresholds_file
from faceledger.types import ModelInfo

__all__ = ["SPEC_ENV", "NoEmbedder", "OnnxEmbedder", "ScrfdDetector", "decode_scrfd", "letterbox", "load",
           "to_tensor"]

INSTALL_HINT = "pip install 'faceledger[onnx]'"
#: Environment variable naming the spec file when ``load()`` gets none (CLI, server).
SPEC_ENV = "FACELEDGER_ONNX_SPEC"
#: Crops per run when the embedder's batch dimension is symbolic.
EMBED_BATCH = 32


def _bad(source: str, field: str, problem: str) -> ConfigError:
    """The error for a spec field that does not fit the model (``field`` is named)."""
    return ConfigError(f"onnx spec {source}: {field}: {problem}", field=field)


def _onnxruntime() -> Any:
    try:
        import onnxruntime
    except ImportError:
        raise BackendUnavailableError(f"the onnx backend needs onnxruntime: {INSTALL_HINT}") from None
    return onnxruntime


# -- pixels -------------------------------------------------------------------------


def to_tensor(images: np.ndarray, prep: Preprocess) -> np.ndarray:
    """``(n, h, w, 3)`` RGB ``uint8`` images to the network's float32 input.

    Channels are reordered to ``prep.channels``, then each becomes
    ``(pixel - mean) / std``; the result is ``(n, 3, h, w)`` for NCHW or ``(n, h, w, 3)``.
    """
    x = np.asarray(images, dtype=np.float32)
    if prep.channels == "BGR":
        x = x[..., ::-1]
    x = (x - np.asarray(prep.mean, np.float32)) / np.asarray(prep.std, np.float32)
    if prep.layout == "NCHW":
        x = x.transpose(0, 3, 1, 2)
    return np.ascontiguousarray(x, dtype=np.float32)


def letterbox(rgb: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, float, float]:
    """Fit ``rgb`` into the top-left of a black ``size = (width, height)`` canvas.

    The aspect ratio is kept. Returns ``(canvas, sx, sy)``: a point ``(x, y)`` of the
    canvas is ``(x / sx, y / sy)`` in ``rgb``.
    """
    ih, iw = rgb.shape[:2]
    width, height = size
    scale = min(width / iw, height / ih)
    nw = min(width, max(1, round(iw * scale)))
    nh = min(height, max(1, round(ih * scale)))
    if (nw, nh) != (iw, ih):
        interp = cv2.INTER_AREA if scale < 1.0 else cv2.INTER_LINEAR
        rgb = cv2.resize(rgb, (nw, nh), interpolation=interp)
    canvas = np.zeros((height, width, 3), np.uint8)
    canvas[:nh, :nw] = rgb
    return canvas, nw / iw, nh / ih


def _pad_to(rgb: np.ndarray, multiple: int) -> np.ndarray:
    """Pad at the right and bottom with black to a multiple of ``multiple`` pixels."""
    h, w = rgb.shape[:2]
    ph, pw = -h % multiple, -w % multiple
    if ph == 0 and pw == 0:
        return rgb
    return cv2.copyMakeBorder(rgb, 0, ph, 0, pw, cv2.BORDER_CONSTANT, value=(0, 0, 0))


# -- SCRFD decoding -----------------------------------------------------------------


def _anchor_centres(height: int, width: int, stride: int, num_anchors: int) -> np.ndarray:
    """``(rows * cols * num_anchors, 2)`` anchor centres (x, y) in input pixels."""
    rows, cols = math.ceil(height / stride), math.ceil(width / stride)
    ys, xs = np.mgrid[:rows, :cols]
    centres = np.stack([xs, ys], axis=-1).reshape(-1, 2).astype(np.float32) * stride
    return np.repeat(centres, num_anchors, axis=0)


def decode_scrfd(
    heads: list[tuple[np.ndarray, np.ndarray, np.ndarray | None]],
    strides: tuple[int, ...],
    num_anchors: int,
    input_hw: tuple[int, int],
    score_threshold: float,
) -> Detections:
    """Decode SCRFD outputs (one ``(scores, distances, keypoints)`` head per stride).

    Returns the detections scoring at least ``score_threshold``, in input pixels, with
    boxes as ``x, y, w, h``, unsorted and before NMS; landmarks are ``nan`` when the
    heads carry no keypoints. Raises :class:`ModelError` when a head does not match
    its feature map (``ceil(input / stride)`` locations times ``num_anchors``).
    """
    boxes, marks, scores = [], [], []
    for (score, dist, kps), stride in zip(heads, strides, strict=True):
        centres = _anchor_centres(*input_hw, stride, num_anchors)
        n = len(centres)
        if score.size != n or dist.size != 4 * n or (kps is not None and kps.size != 10 * n):
            raise ModelError(
                f"detector output for stride {stride} does not match a {input_hw[1]}x{input_hw[0]} input "
                f"with {num_anchors} anchor(s) per location: expected {n} rows, got scores of shape "
                f"{score.shape} and boxes of shape {dist.shape}"
            )
        s = score.reshape(-1)
        keep = s >= score_threshold
        c = centres[keep]
        d = dist.reshape(-1, 4)[keep].astype(np.float32) * stride
        x1, y1 = c[:, 0] - d[:, 0], c[:, 1] - d[:, 1]
        boxes.append(np.stack([x1, y1, c[:, 0] + d[:, 2] - x1, c[:, 1] + d[:, 3] - y1], axis=1))
        if kps is None:
            marks.append(np.full((len(c), 5, 2), np.nan, np.float32))
        else:
            marks.append(kps.reshape(-1, 5, 2)[keep].astype(np.float32) * stride + c[:, None, :])
        scores.append(s[keep].astype(np.float32))
    return Detections(
        np.concatenate(boxes).astype(np.float32),
        np.concatenate(marks).astype(np.float32),
        np.concatenate(scores),
    )


def _nms_sorted(d: Detections, threshold: float) -> Detections:
    """Greedy NMS; the kept detections best score first."""
    if len(d) == 0:
        return d
    idx = nms(d.boxes, d.scores, threshold)
    return Detections(d.boxes[idx], d.landmarks[idx], d.scores[idx])


# -- sessions -----------------------------------------------------------------------


@dataclass(frozen=True)
class _Model:
    """An onnxruntime session and its checked image input."""

    spec: ModelSpec
    session: Any
    input_name: str
    shape: tuple[int | None, ...]  # the input's dims; None where symbolic

    def run(self, names: list[str] | None, x: np.ndarray) -> list[np.ndarray]:
        try:
            return self.session.run(names, {self.input_name: x})
        except Exception as exc:  # onnxruntime raises its own exception types
            raise ModelError(f"onnxruntime failed to run {self.spec.path.name}: {exc}") from None

    def batch_dim(self) -> int | None:
        return self.shape[0]

    def spatial(self) -> tuple[int | None, int | None]:
        """The fixed (width, height) of the input, None where symbolic."""
        h, w = (self.shape[2], self.shape[3]) if self.spec.preprocess.layout == "NCHW" else self.shape[1:3]
        return (w, h)


def _verified_bytes(model: ModelSpec, field: str) -> bytes:
    try:
        data = model.path.read_bytes()
    except OSError as exc:
        raise ModelFileError(
            f"{field}.path: cannot read model file {model.path} ({exc.strerror or exc})", path=str(model.path)
        ) from None
    digest = hashlib.sha256(data).hexdigest()
    if digest != model.sha256:
        raise ModelFileError(
            f"{field}: model file {model.path} has SHA-256 {digest}, the spec expects {model.sha256}: "
            "it is a different or modified file",
            path=str(model.path),
            expected=model.sha256,
            actual=digest,
        )
    return data


def _open(model: ModelSpec, field: str, source: str, threads: int | None) -> _Model:
    """Check the file's SHA-256, start a CPU session and find the image input."""
    ort = _onnxruntime()
    data = _verified_bytes(model, field)
    opts = ort.SessionOptions()
    opts.log_severity_level = 3  # errors only: shape warnings on symbolic dims are expected
    if threads:
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
    try:
        session = ort.InferenceSession(data, sess_options=opts, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own exception types
        raise ModelFileError(f"{field}: onnxruntime cannot load {model.path}: {exc}") from None
    name, shape = _image_input(session, model, field, source)
    return _Model(model, session, name, shape)


def _image_input(session: Any, model: ModelSpec, field: str, source: str) -> tuple[str, tuple]:
    """The image input's name and dims (None where symbolic), checked against the spec."""
    inputs = {i.name: i for i in session.get_inputs()}
    if model.input_name is None and len(inputs) != 1:
        problem = f"the model has {len(inputs)} inputs ({', '.join(inputs)}); name the image input"
        raise _bad(source, f"{field}.input_name", problem)
    name = model.input_name or next(iter(inputs))
    if name not in inputs:
        raise _bad(source, f"{field}.input_name", f"the model has no input '{name}' ({', '.join(inputs)})")
    meta = inputs[name]
    if meta.type != "tensor(float)" or len(meta.shape) != 4:
        raise ModelError(f"{field}: input '{name}' is {meta.type} {meta.shape}; need a 4-D float32 image")
    shape = tuple(d if isinstance(d, int) and d > 0 else None for d in meta.shape)
    layout = model.preprocess.layout
    if (shape[1] if layout == "NCHW" else shape[3]) not in (None, 3):
        raise _bad(source, f"{field}.layout", f"input '{name}' {list(meta.shape)} is not {layout} RGB")
    return name, shape


def _input_size(m: _Model, field: str, source: str) -> tuple[int, int] | None:
    """The (width, height) to feed: the spec's, the model's fixed one, or None (dynamic)."""
    fixed = m.spatial()
    wanted = m.spec.input_size
    if wanted is not None:
        if any(f is not None and f != v for f, v in zip(fixed, wanted, strict=True)):
            problem = f"{list(wanted)}, but the model's input is fixed at {fixed[0]}x{fixed[1]} (w x h)"
            raise _bad(source, f"{field}.input_size", problem)
        return wanted
    if fixed[0] is not None and fixed[1] is not None:
        return (fixed[0], fixed[1])
    return None


# -- detector -----------------------------------------------------------------------


class ScrfdDetector:
    """An SCRFD-style detector run by onnxruntime (see the module docstring for the format)."""

    def __init__(self, model: _Model, spec: DetectorSpec, outputs: DetectorOutputs,
                 input_size: tuple[int, int] | None, num_anchors: int) -> None:
        self.name = spec.model.name
        self._model, self._spec, self._outputs = model, spec, outputs
        self.input_size, self.num_anchors = input_size, num_anchors
        self._names = [*outputs.scores, *outputs.boxes, *outputs.keypoints]

    @property
    def has_keypoints(self) -> bool:
        return bool(self._outputs.keypoints)

    def heads(self, image: np.ndarray) -> list[tuple[np.ndarray, np.ndarray, np.ndarray | None]]:
        """Run the network on an image already sized for it; one head per stride."""
        raw = self._model.run(self._names, to_tensor(image[None], self._spec.model.preprocess))
        k = len(self._spec.strides)
        kps: list[np.ndarray | None] = list(raw[2 * k :]) if self.has_keypoints else [None] * k
        return list(zip(raw[:k], raw[k : 2 * k], kps, strict=True))

    def _detect_sized(self, image: np.ndarray, score_threshold: float) -> Detections:
        found = decode_scrfd(self.heads(image), self._spec.strides, self.num_anchors,
                             image.shape[:2], score_threshold)
        return _nms_sorted(found, self._spec.nms_threshold)

    def detect(self, rgb: np.ndarray, options: DetectOptions) -> Detections:
        """Faces in an RGB ``uint8`` image, best score first, in its pixels (boxes x, y, w, h)."""
        if self.input_size is None:
            stride = self._spec.strides[-1]
            return run_pyramid(
                rgb, options,
                lambda level: self._detect_sized(_pad_to(level, stride), options.score_threshold),
                nms_threshold=self._spec.nms_threshold,
            )
        canvas, sx, sy = letterbox(rgb, self.input_size)
        d = self._detect_sized(canvas, options.score_threshold)
        boxes = d.boxes / np.array([sx, sy, sx, sy], np.float32)
        marks = d.landmarks / np.array([sx, sy], np.float32)
        keep = np.flatnonzero(boxes[:, 2] >= options.min_face_size)[: options.max_faces]
        return Detections(boxes[keep], marks[keep], d.scores[keep])


def _detector_outputs(m: _Model, spec: DetectorSpec, source: str) -> DetectorOutputs:
    """The spec's output names, or the model's outputs in the documented order."""
    present = [o.name for o in m.session.get_outputs()]
    if spec.outputs is not None:
        for name in (*spec.outputs.scores, *spec.outputs.boxes, *spec.outputs.keypoints):
            if name not in present:
                raise _bad(source, "detector.outputs", f"no output '{name}' ({', '.join(present)})")
        return spec.outputs
    k = len(spec.strides)
    if len(present) not in (2 * k, 3 * k):
        problem = f"the model has {len(present)} outputs, not {2 * k} or {3 * k} for {k} strides; name them"
        raise _bad(source, "detector.outputs", problem)
    kps = tuple(present[2 * k :])
    return DetectorOutputs(tuple(present[:k]), tuple(present[k : 2 * k]), kps)


def _check_detector(det: ScrfdDetector, spec: DetectorSpec, source: str) -> int:
    """Run once on a black image; check every head's shape; return the anchors per location."""
    w, h = det.input_size or (2 * spec.strides[-1], 2 * spec.strides[-1])
    heads = det.heads(np.zeros((h, w, 3), np.uint8))
    kinds = (("scores", 1), ("boxes", 4), ("keypoints", 10))
    anchors: set[float] = set()
    for stride, head in zip(spec.strides, heads, strict=True):
        cells = math.ceil(h / stride) * math.ceil(w / stride)
        for (kind, per), arr in zip(kinds, head, strict=True):
            if arr is not None and (arr.shape[-1] != per or arr.size % (per * cells)):
                problem = (f"the {kind} output for stride {stride} has shape {list(arr.shape)}, not {per} "
                           f"value(s) per anchor at {cells} locations; check strides or name the outputs")
                raise _bad(source, "detector.outputs", problem)
        anchors.add(head[0].size / cells)
    found = anchors.pop() if len(anchors) == 1 else None
    if found is None or found not in (1.0, 2.0, 3.0, 4.0):
        raise ModelError(f"detector: the outputs imply inconsistent anchors per location ({sorted(anchors)})")
    if spec.num_anchors is not None and spec.num_anchors != int(found):
        problem = f"{spec.num_anchors}, but the outputs hold {int(found)} per location"
        raise _bad(source, "detector.num_anchors", problem)
    return int(found)


def _load_detector(dspec: DetectorSpec, source: str, threads: int | None) -> ScrfdDetector:
    m = _open(dspec.model, "detector", source, threads)
    if m.batch_dim() not in (None, 1):
        raise ModelError(f"detector: the model's batch dimension is fixed at {m.batch_dim()}; 1 is needed")
    outputs = _detector_outputs(m, dspec, source)
    det = ScrfdDetector(m, dspec, outputs, _input_size(m, "detector", source), num_anchors=1)
    det.num_anchors = _check_detector(det, dspec, source)
    return det


# -- embedder -----------------------------------------------------------------------


class OnnxEmbedder:
    """An ArcFace-style embedder: aligned square crop in, L2-normalised vector out."""

    def __init__(self, model: _Model, output_name: str, crop_size: int, model_id: str) -> None:
        self.name = model_id
        self._model, self._output, self.crop_size = model, output_name, crop_size
        self._fixed_batch = model.batch_dim()
        self.dimension = self._run(np.zeros((1, crop_size, crop_size, 3), np.uint8)).shape[1]

    def _run(self, crops: np.ndarray) -> np.ndarray:
        """Raw outputs ``(n, dimension)`` for ``(n, size, size, 3)`` RGB crops, in batches."""
        step = self._fixed_batch or EMBED_BATCH
        parts = []
        for start in range(0, len(crops), step):
            chunk = crops[start : start + step]
            real = len(chunk)
            if self._fixed_batch and real < self._fixed_batch:
                pad = np.zeros((self._fixed_batch - real, *chunk.shape[1:]), chunk.dtype)
                chunk = np.concatenate([chunk, pad])
            out = self._model.run([self._output], to_tensor(chunk, self._model.spec.preprocess))[0]
            if out.shape[0] != len(chunk):
                raise ModelError(f"embedder: output '{self._output}' is {out.shape} for {len(chunk)} crops")
            parts.append(out.reshape(len(chunk), -1)[:real])
        return np.concatenate(parts).astype(np.float32)

    def _align(self, rgb: np.ndarray, landmarks: np.ndarray, index: int) -> np.ndarray:
        try:
            return align_face(rgb, landmarks, size=self.crop_size)
        except ValueError as exc:
            raise InputError(f"face {index}: cannot align it from its landmarks ({exc})") from None

    def embed(self, rgb: np.ndarray, boxes: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
        """``(n, dimension)`` float32 unit rows, one per face (``landmarks`` ``(n, 5, 2)``)."""
        if len(landmarks) == 0:
            return np.zeros((0, self.dimension), np.float32)
        crops = np.stack([self._align(rgb, lm, i) for i, lm in enumerate(landmarks)])
        vectors = self._run(crops)
        if vectors.shape[1] != self.dimension or not np.isfinite(vectors).all():
            raise ModelError(f"embedder '{self.name}' returned a non-finite or mis-shaped output")
        return l2_normalize(vectors)


class NoEmbedder:
    """Stands in when a spec has a detector only: making a template is refused."""

    name = "none"
    dimension = 0

    def __init__(self, source: str) -> None:
        self._source = source

    def embed(self, rgb: np.ndarray, boxes: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
        raise ModelError(
            f"onnx spec {self._source} has a detector only: it finds faces but makes no templates; "
            "add an [embedder] section to verify or identify"
        )


def _load_embedder(espec: EmbedderSpec, source: str, threads: int | None) -> OnnxEmbedder:
    m = _open(espec.model, "embedder", source, threads)
    size = _input_size(m, "embedder", source) or (112, 112)
    if size[0] != size[1]:
        raise ModelError(f"embedder: the model's input is {size[0]}x{size[1]}; an aligned crop is square")
    present = [o.name for o in m.session.get_outputs()]
    output = espec.output_name or present[0]
    if output not in present:
        problem = f"the model has no output '{output}' ({', '.join(present)})"
        raise _bad(source, "embedder.output_name", problem)
    return OnnxEmbedder(m, output, size[0], espec.model_id(size[0], output))


# -- the backend --------------------------------------------------------------------


def _parse(spec: str | os.PathLike | Mapping[str, Any] | None) -> OnnxSpec:
    if spec is None:
        spec = os.environ.get(SPEC_ENV) or None
        if spec is None:
            raise ConfigError(
                f"the onnx backend needs a model spec: load_backend('onnx', spec='models.toml') "
                f"or set {SPEC_ENV}; see docs/backends.md", field="spec")
    if isinstance(spec, Mapping):
        return parse_spec(spec)
    if isinstance(spec, (str, os.PathLike)):
        return read_spec(Path(spec).expanduser())
    raise ConfigError(f"onnx spec must be a path or a dict, got {type(spec).__name__}", field="spec")


def _thresholds(spec: OnnxSpec, model_id: str) -> Thresholds:
    if spec.thresholds is None:
        return Thresholds(model_id)
    found = load_thresholds_file(spec.thresholds)
    if found.model_id != model_id:
        problem = (f"{spec.thresholds} was calibrated for model '{found.model_id}', but this spec's "
                   f"embedder is '{model_id}'; calibrate it again")
        raise _bad(spec.source, "thresholds", problem)
    return found


def _parts(parsed: OnnxSpec, threads: int | None) -> tuple[Any, Any, list[tuple[str, str]], str]:
    """Detector, embedder, checked files and licence text (YuNet stands in for a missing detector)."""
    det = _load_detector(parsed.detector, parsed.source, threads) if parsed.detector else None
    emb = _load_embedder(parsed.embedder, parsed.source, threads) if parsed.embedder else None
    if det is not None and emb is not None and not det.has_keypoints:
        problem = "the embedder needs five keypoints per face to align it; the detector outputs none"
        raise _bad(parsed.source, "detector.outputs", problem)
    specs = [p.model for p in (parsed.detector, parsed.embedder) if p is not None]
    files = [(str(m.path), m.sha256) for m in specs]
    licences = [f"{m.name}: {m.licence}" for m in specs]
    if det is None:
        from faceledger.models.yunet_sface import YUNET, YuNetDetector

        yunet_path = YUNET.verified_path()
        det = YuNetDetector(str(yunet_path))
        files.insert(0, (str(yunet_path), YUNET.sha256))
        licences.insert(0, "YuNet: MIT (OpenCV Zoo)")
    return det, emb or NoEmbedder(parsed.source), files, "; ".join(licences)


def load(spec: str | os.PathLike | Mapping[str, Any] | None = None, *, threads: int | None = None) -> Backend:
    """Load the models a spec names (TOML path or dict; default: ``$FACELEDGER_ONNX_SPEC``).

    ``threads`` caps onnxruntime's intra-op threads per session (default: its own choice).
    Raises :class:`ConfigError` for a bad spec (naming the field), :class:`ModelFileError`
    for a missing file or a SHA-256 mismatch, :class:`BackendUnavailableError` without onnxruntime.
    """
    parsed = _parse(spec)
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
        raise ConfigError(f"threads must be a positive integer, got {threads!r}", field="threads")
    ort = _onnxruntime()
    detector, embedder, files, licence = _parts(parsed, threads)
    runtime = f"onnxruntime {ort.__version__}"
    if parsed.detector is None:
        runtime += f"; YuNet on OpenCV {cv2.__version__} DNN"
        model_id = embedder.name
    elif parsed.embedder is None:
        model_id = f"{detector.name}-{parsed.detector.model.sha256[:12]}-detector-only"
    else:
        model_id = embedder.name
    info = ModelInfo(
        backend="onnx", model_id=model_id, detector=detector.name, embedder=embedder.name,
        dimension=int(embedder.dimension), runtime=runtime, licence=licence, files=tuple(files),
    )
    return Backend.build(info, detector, embedder, _thresholds(parsed, model_id))
