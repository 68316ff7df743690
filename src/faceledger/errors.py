"""One exception tree for FaceLedger.

Every error the library raises on purpose derives from :class:`FaceLedgerError`
and carries a stable ``code`` (a short snake_case string). The CLI maps codes to
exit codes and messages, the HTTP layer to ``application/problem+json`` types.
Nothing here is ever raised with ``assert``.

::

    FaceLedgerError
    ├── InputError                  bad input from the caller (CLI exit 2)
    │   ├── EmptyInputError
    │   ├── UnsupportedFormatError
    │   ├── CorruptImageError
    │   ├── FileTooLargeError
    │   ├── ImageTooLargeError
    │   ├── NoFaceError
    │   ├── MultipleFacesError
    │   └── FaceSelectionError
    ├── ModelError                  models and backends (CLI exit 3)
    │   ├── UnknownBackendError
    │   ├── BackendUnavailableError  (an optional dependency is missing)
    │   ├── ModelFileError           (missing file or SHA-256 mismatch)
    │   ├── NotCalibratedError       (no threshold for that operating point)
    │   └── ModelMismatchError       (templates from different models)
    └── ConfigError                 invalid configuration (CLI exit 4)
"""

from __future__ import annotations

__all__ = [
    "BackendUnavailableError",
    "ConfigError",
    "CorruptImageError",
    "EmptyInputError",
    "FaceLedgerError",
    "FaceSelectionError",
    "FileTooLargeError",
    "ImageTooLargeError",
    "InputError",
    "ModelError",
    "ModelFileError",
    "ModelMismatchError",
    "MultipleFacesError",
    "NoFaceError",
    "NotCalibratedError",
    "UnknownBackendError",
    "UnsupportedFormatError",
]


class FaceLedgerError(Exception):
    """Base of every error FaceLedger raises on purpose."""

    code: str = "faceledger_error"

    def __init__(self, message: str, **details: object) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def __str__(self) -> str:
        return self.message


class InputError(FaceLedgerError):
    """The caller's input cannot be used."""

    code = "invalid_input"


class EmptyInputError(InputError):
    code = "empty_input"


class UnsupportedFormatError(InputError):
    code = "unsupported_format"


class CorruptImageError(InputError):
    code = "corrupt_image"


class FileTooLargeError(InputError):
    code = "file_too_large"


class ImageTooLargeError(InputError):
    code = "image_too_large"


class NoFaceError(InputError):
    code = "no_face"


class MultipleFacesError(InputError):
    code = "multiple_faces"


class FaceSelectionError(InputError):
    code = "bad_face_selection"


class ModelError(FaceLedgerError):
    """A model or backend cannot be used."""

    code = "model_error"


class UnknownBackendError(ModelError):
    code = "unknown_backend"


class BackendUnavailableError(ModelError):
    code = "backend_unavailable"


class ModelFileError(ModelError):
    code = "model_file"


class NotCalibratedError(ModelError):
    code = "not_calibrated"


class ModelMismatchError(ModelError):
    code = "model_mismatch"


class ConfigError(FaceLedgerError):
    code = "invalid_config"
