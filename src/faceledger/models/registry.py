"""The table of backends, chosen by name and imported only when loaded."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from types import ModuleType

from faceledger.errors import BackendUnavailableError, UnknownBackendError
from faceledger.models.base import Backend, Detector

__all__ = ["BACKENDS", "BackendSpec", "load_backend", "load_detector"]


@dataclass(frozen=True, slots=True)
class BackendSpec:
    name: str
    module: str
    summary: str
    install: str  # what to pip install for its optional dependencies ("" if none)


BACKENDS: dict[str, BackendSpec] = {
    spec.name: spec
    for spec in (
        BackendSpec(
            "yunet-sface",
            "faceledger.models.yunet_sface",
            "YuNet detector (OpenCV) + SFace 128-D recogniser (onnxruntime) (default)",
            "",
        ),
        BackendSpec(
            "dlib",
            "faceledger.models.dlib_backend",
            "dlib HOG/MMOD detector + ResNet 128-D recogniser (the face_recognition model)",
            "faceledger[dlib]",
        ),
        BackendSpec(
            "fused",
            "faceledger.models.fused",
            "score-level fusion of yunet-sface and dlib (accurate mode)",
            "faceledger[dlib]",
        ),
        BackendSpec(
            "onnx",
            "faceledger.models.onnx_backend",
            "your own SCRFD-style detector / ArcFace-style embedder ONNX files (onnxruntime)",
            "faceledger[onnx]",
        ),
    )
}


def load_backend(name: str, **options: object) -> Backend:
    """Import and load the backend called ``name``; options go to its ``load()``."""
    return _module(name).load(**options)


def load_detector(name: str) -> Detector:
    """Only the face detector of backend ``name`` (redaction needs no embedder): the module's
    ``load_detector()`` where it has one (the default backend's YuNet alone loads in milliseconds,
    the whole backend in seconds: SFace's weights are folded for onnxruntime), else its backend's."""
    module = _module(name)
    if hasattr(module, "load_detector"):
        return module.load_detector()
    return module.load().detector


def _module(name: str) -> ModuleType:
    try:
        spec = BACKENDS[name]
    except KeyError:
        known = ", ".join(BACKENDS)
        raise UnknownBackendError(f"unknown backend '{name}' (available: {known})") from None
    try:
        module = importlib.import_module(spec.module)
    except ImportError as exc:
        hint = f": pip install '{spec.install}'" if spec.install else ""
        raise BackendUnavailableError(
            f"backend '{name}' needs a package that is not installed ({exc.name}){hint}"
        ) from None
    return module
