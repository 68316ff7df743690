"""The model spec of the ``onnx`` backend: which ONNX files to run, and how.

A spec is a TOML file (or the same structure as a ``dict``) with a ``[detector]``
section, an ``[embedder]`` section, or both, and an optional top-level
``thresholds`` file. Paths are relative to the spec file's folder (to the current
directory for a ``dict``). Every field is checked here, before any file is opened;
an error names the field (``ConfigError: onnx spec my.toml: embedder.sha256 ...``).
The full format, with an example, is in ``docs/backends.md``.

Conventions:

* Pixels are ``uint8`` values 0-255. Each model is fed ``(pixel - mean) / std``,
  with ``mean`` and ``std`` given per channel *in the order of* ``channels``
  (``"RGB"`` or ``"BGR"``: the order the network expects; FaceLedger's images are RGB).
* ``layout`` is ``"NCHW"`` (default) or ``"NHWC"``.
* ``input_size`` is ``[width, height]`` in pixels.
* The detector follows SCRFD's conventions (InsightFace): per stride, a score
  output, a box-distance output and optionally a 5-point keypoint output.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from faceledger import tomlfile
from faceledger.errors import ConfigError

__all__ = [
    "DetectorOutputs",
    "DetectorSpec",
    "EmbedderSpec",
    "ModelSpec",
    "OnnxSpec",
    "Preprocess",
    "parse_spec",
    "read_spec",
]

_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_COMMON_KEYS = {
    "name", "path", "sha256", "licence", "input_name", "input_size", "channels", "mean", "std", "layout"
}
_DETECTOR_KEYS = _COMMON_KEYS | {"strides", "num_anchors", "nms_threshold", "outputs"}
_EMBEDDER_KEYS = _COMMON_KEYS | {"output_name"}
_TOP_KEYS = {"detector", "embedder", "thresholds"}


@dataclass(frozen=True, slots=True)
class Preprocess:
    """How an RGB ``uint8`` image becomes the network's float32 input."""

    channels: str  # "RGB" or "BGR": the order fed to the network
    mean: tuple[float, float, float]  # per channel, in ``channels`` order, 0-255 scale
    std: tuple[float, float, float]
    layout: str  # "NCHW" or "NHWC"

    def describe(self) -> dict[str, object]:
        """The settings as plain JSON values (they enter the embedder's model id)."""
        return {"channels": self.channels, "mean": list(self.mean), "std": list(self.std),
                "layout": self.layout}


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """What every model of a spec has: a file, its SHA-256 and its input."""

    name: str
    path: Path
    sha256: str
    licence: str
    input_name: str | None  # None: the model's only input
    input_size: tuple[int, int] | None  # (width, height); None: from the model
    preprocess: Preprocess


@dataclass(frozen=True, slots=True)
class DetectorOutputs:
    """Output names per stride (ascending strides); ``keypoints`` is empty for box-only models."""

    scores: tuple[str, ...]
    boxes: tuple[str, ...]
    keypoints: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class DetectorSpec:
    """An SCRFD-style detector."""

    model: ModelSpec
    strides: tuple[int, ...] = (8, 16, 32)
    num_anchors: int | None = None  # None: inferred from the output shapes at load
    nms_threshold: float = 0.4
    outputs: DetectorOutputs | None = None  # None: discovered by output order


@dataclass(frozen=True, slots=True)
class EmbedderSpec:
    """An ArcFace-style embedder fed the aligned square crop."""

    model: ModelSpec
    output_name: str | None = None  # None: the model's first output

    def model_id(self, crop_size: int, output_name: str) -> str:
        """``<name>-<12 hex of the file's SHA-256>-<6 hex of how crops are fed>``.

        ``crop_size`` and ``output_name`` are the values resolved at load (from the spec
        or the model). Changing the file, the name, or how crops are fed (size, channels,
        mean, std, layout, output) changes the id, so such templates never compare.
        """
        m = self.model
        feed = {**m.preprocess.describe(), "crop_size": crop_size, "output": output_name}
        digest = hashlib.sha256(json.dumps(feed, sort_keys=True).encode()).hexdigest()
        return f"{m.name}-{m.sha256[:12]}-{digest[:6]}"


@dataclass(frozen=True, slots=True)
class OnnxSpec:
    """A parsed spec: at least one of ``detector`` and ``embedder``."""

    source: str  # the spec's file name, or "<dict>"
    detector: DetectorSpec | None
    embedder: EmbedderSpec | None
    thresholds: Path | None


def read_spec(path: str | Path) -> OnnxSpec:
    """Read and check a TOML spec file; relative paths are resolved against its folder."""
    path = Path(path)
    return parse_spec(tomlfile.load(path, "onnx spec"), base_dir=path.resolve().parent, source=str(path))


def parse_spec(data: Mapping[str, Any], base_dir: Path | None = None, source: str = "<dict>") -> OnnxSpec:
    """Check a spec given as a mapping (the TOML file's structure) and build an :class:`OnnxSpec`."""
    ctx = _Ctx(source, Path(base_dir) if base_dir is not None else Path.cwd())
    if not isinstance(data, Mapping):
        raise ConfigError(f"onnx spec {source}: must be a table of sections, got {type(data).__name__}")
    ctx.no_unknown(data, _TOP_KEYS, "")
    detector = _detector(ctx, data["detector"]) if "detector" in data else None
    embedder = _embedder(ctx, data["embedder"]) if "embedder" in data else None
    if detector is None and embedder is None:
        raise ConfigError(f"onnx spec {source}: needs a [detector] section, an [embedder] section, or both")
    thresholds = ctx.path(data, "thresholds", "") if "thresholds" in data else None
    if thresholds is not None and embedder is None:
        raise ConfigError(f"onnx spec {source}: thresholds: a spec without an embedder makes no decisions")
    return OnnxSpec(source, detector, embedder, thresholds)


@dataclass(frozen=True, slots=True)
class _Ctx:
    """The spec being checked: its name (for messages) and the folder of relative paths."""

    source: str
    base_dir: Path

    def fail(self, field: str, problem: str) -> ConfigError:
        return ConfigError(f"onnx spec {self.source}: {field}: {problem}", field=field)

    def no_unknown(self, table: Mapping[str, Any], allowed: set[str], prefix: str) -> None:
        for key in table:
            if key not in allowed:
                known = ", ".join(sorted(allowed))
                raise self.fail(f"{prefix}{key}", f"unknown field (known: {known})")

    def table(self, value: object, field: str) -> Mapping[str, Any]:
        if not isinstance(value, Mapping):
            raise self.fail(field, f"must be a table, got {type(value).__name__}")
        return value

    def string(self, table: Mapping[str, Any], key: str, prefix: str, default: str | None = None) -> str:
        if key not in table:
            if default is None:
                raise self.fail(prefix + key, "is required")
            return default
        value = table[key]
        if not isinstance(value, str) or not value:
            raise self.fail(prefix + key, f"must be a non-empty string, got {value!r}")
        return value

    def path(self, table: Mapping[str, Any], key: str, prefix: str) -> Path:
        p = Path(self.string(table, key, prefix)).expanduser()
        return p if p.is_absolute() else self.base_dir / p

    def number(self, value: object, field: str) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise self.fail(field, f"must be a finite number, got {value!r}")
        return float(value)

    def triple(self, table: Mapping[str, Any], key: str, prefix: str) -> tuple[float, float, float]:
        """A per-channel value: one number (all channels) or a list of 3."""
        if key not in table:
            raise self.fail(prefix + key, "is required (one number or three, in the order of 'channels')")
        value = table[key]
        items = value if isinstance(value, list) else [value]
        if len(items) not in (1, 3):
            raise self.fail(prefix + key, f"must be one number or a list of three, got {value!r}")
        nums = [self.number(v, prefix + key) for v in items]
        return (nums[0], nums[0], nums[0]) if len(nums) == 1 else (nums[0], nums[1], nums[2])

    def int_list(self, value: object, field: str, length: int | None = None) -> tuple[int, ...]:
        ok = isinstance(value, list) and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
        if not ok or not value or (length is not None and len(value) != length):
            shape = f"a list of {length} integers" if length else "a non-empty list of integers"
            raise self.fail(field, f"must be {shape}, got {value!r}")
        if any(v <= 0 for v in value):
            raise self.fail(field, f"must hold positive integers, got {value!r}")
        return tuple(value)

    def names(self, value: object, field: str, count: int) -> tuple[str, ...]:
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise self.fail(field, f"must be a list of output names, got {value!r}")
        if len(value) != count:
            raise self.fail(field, f"must name one output per stride ({count}), got {len(value)}")
        return tuple(value)


def _model(ctx: _Ctx, table: Mapping[str, Any], prefix: str) -> ModelSpec:
    path = ctx.path(table, "path", prefix)
    name = ctx.string(table, "name", prefix, default=path.stem)
    if not _NAME.match(name):
        raise ctx.fail(prefix + "name", f"use 1-64 letters, digits, '.', '_' or '-', got {name!r}")
    sha256 = ctx.string(table, "sha256", prefix).lower()
    if not _SHA256.match(sha256):
        raise ctx.fail(prefix + "sha256", "must be the file's SHA-256 as 64 hex digits (sha256sum FILE)")
    input_name = ctx.string(table, "input_name", prefix) if "input_name" in table else None
    size = ctx.int_list(table["input_size"], prefix + "input_size", 2) if "input_size" in table else None
    channels = ctx.string(table, "channels", prefix).upper()
    if channels not in ("RGB", "BGR"):
        raise ctx.fail(prefix + "channels", f"must be 'RGB' or 'BGR', got {table['channels']!r}")
    layout = ctx.string(table, "layout", prefix, default="NCHW").upper()
    if layout not in ("NCHW", "NHWC"):
        raise ctx.fail(prefix + "layout", f"must be 'NCHW' or 'NHWC', got {table['layout']!r}")
    mean, std = ctx.triple(table, "mean", prefix), ctx.triple(table, "std", prefix)
    if any(s <= 0 for s in std):
        raise ctx.fail(prefix + "std", f"must be positive, got {table['std']!r}")
    licence = ctx.string(table, "licence", prefix, default="not stated in the spec: check the weights' terms")
    prep = Preprocess(channels=channels, mean=mean, std=std, layout=layout)
    return ModelSpec(name, path, sha256, licence, input_name, (size[0], size[1]) if size else None, prep)


def _detector(ctx: _Ctx, value: object) -> DetectorSpec:
    table = ctx.table(value, "detector")
    ctx.no_unknown(table, _DETECTOR_KEYS, "detector.")
    model = _model(ctx, table, "detector.")
    strides = ctx.int_list(table.get("strides", [8, 16, 32]), "detector.strides")
    if list(strides) != sorted(set(strides)):
        raise ctx.fail("detector.strides", f"must be strictly ascending, got {list(strides)}")
    if model.input_size and any(v % strides[-1] for v in model.input_size):
        raise ctx.fail("detector.input_size", f"width and height must be multiples of {strides[-1]}")
    anchors = None
    if "num_anchors" in table:
        anchors = ctx.int_list([table["num_anchors"]], "detector.num_anchors", 1)[0]
    nms = ctx.number(table.get("nms_threshold", 0.4), "detector.nms_threshold")
    if not 0.0 < nms <= 1.0:
        raise ctx.fail("detector.nms_threshold", f"must be within (0, 1], got {nms}")
    outputs = _outputs(ctx, table["outputs"], len(strides)) if "outputs" in table else None
    return DetectorSpec(model, strides, anchors, nms, outputs)


def _outputs(ctx: _Ctx, value: object, count: int) -> DetectorOutputs:
    table = ctx.table(value, "detector.outputs")
    ctx.no_unknown(table, {"scores", "boxes", "keypoints"}, "detector.outputs.")
    for key in ("scores", "boxes"):
        if key not in table:
            raise ctx.fail(f"detector.outputs.{key}", "is required when [detector.outputs] is given")
    kps = ctx.names(table["keypoints"], "detector.outputs.keypoints", count) if "keypoints" in table else ()
    return DetectorOutputs(
        scores=ctx.names(table["scores"], "detector.outputs.scores", count),
        boxes=ctx.names(table["boxes"], "detector.outputs.boxes", count),
        keypoints=kps,
    )


def _embedder(ctx: _Ctx, value: object) -> EmbedderSpec:
    table = ctx.table(value, "embedder")
    ctx.no_unknown(table, _EMBEDDER_KEYS, "embedder.")
    model = _model(ctx, table, "embedder.")
    if model.input_size and model.input_size[0] != model.input_size[1]:
        raise ctx.fail("embedder.input_size", f"the aligned crop is square, got {list(model.input_size)}")
    output = ctx.string(table, "output_name", "embedder.") if "output_name" in table else None
    return EmbedderSpec(model, output)
