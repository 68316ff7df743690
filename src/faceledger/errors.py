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
    │   ├── FaceSelectionError
    │   └── EnrollmentRejectedError   (quality gate: too small, blurred, turned)
    ├── ModelError                  models and backends (CLI exit 3)
    │   ├── UnknownBackendError
    │   ├── BackendUnavailableError  (an optional dependency is missing)
    │   ├── ModelFileError           (missing file or SHA-256 mismatch)
    │   ├── NotCalibratedError       (no threshold for that operating point)
    │   └── ModelMismatchError       (templates from different models)
    ├── ConfigError                 invalid configuration (CLI exit 4)
    ├── RefusedError                a rule of the engine refuses the operation (CLI exit 6)
    │   ├── PermissionDeniedError    (the actor's role may not do this)
    │   ├── ConsentRequiredError     (no valid consent record)
    │   ├── AuthorizationRequiredError (no valid authorization in scope)
    │   ├── IdentificationDisabledError (1:N identification is off in the policy)
    │   ├── ProhibitedUseError       (e.g. identification targeting lawful assembly)
    │   ├── UnknownTargetError       (a declared target outside the policy's vocabulary)
    │   ├── TrainingRequiredError    (the role needs a current training record)
    │   ├── PurposeNotAllowedError
    │   ├── SelfReviewError          (the searcher cannot review their own search)
    │   ├── RateLimitedError
    │   └── FpirTooHighError         (the gallery is too large for the operating point, per the policy)
    ├── NotFoundError               unknown gallery, subject, record (CLI exit 7)
    ├── ConflictError               duplicate or inconsistent state (CLI exit 8)
    └── StoreError                  storage failures: corrupt file, wrong key (CLI exit 9)
        ├── DataKeyError             (wrong key-encryption key, erased data key)
        ├── StorageFullError         (the disk or the database is full: nothing was written)
        └── StoreUnavailableError    (the database connection was lost: nothing was written)
"""

from __future__ import annotations

__all__ = [
    "AuthorizationRequiredError",
    "BackendUnavailableError",
    "ConfigError",
    "ConflictError",
    "ConsentRequiredError",
    "CorruptImageError",
    "DataKeyError",
    "EmptyInputError",
    "EnrollmentRejectedError",
    "FaceLedgerError",
    "FaceSelectionError",
    "FileTooLargeError",
    "FpirTooHighError",
    "IdentificationDisabledError",
    "ImageTooLargeError",
    "InputError",
    "ModelError",
    "ModelFileError",
    "ModelMismatchError",
    "MultipleFacesError",
    "NoFaceError",
    "NotCalibratedError",
    "NotFoundError",
    "PermissionDeniedError",
    "ProhibitedUseError",
    "PurposeNotAllowedError",
    "RateLimitedError",
    "RefusedError",
    "SelfReviewError",
    "StorageFullError",
    "StoreError",
    "StoreUnavailableError",
    "TrainingRequiredError",
    "UnknownBackendError",
    "UnknownTargetError",
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


class EnrollmentRejectedError(InputError):
    """Enrollment photos failed the gallery's quality gate (``details["rejections"]`` says why)."""

    code = "enrollment_rejected"


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


class RefusedError(FaceLedgerError):
    """An accountability rule refuses the operation (and the refusal is ledgered)."""

    code = "refused"


class PermissionDeniedError(RefusedError):
    code = "permission_denied"


class ConsentRequiredError(RefusedError):
    code = "consent_required"


class AuthorizationRequiredError(RefusedError):
    code = "authorization_required"


class IdentificationDisabledError(RefusedError):
    code = "identification_disabled"


class ProhibitedUseError(RefusedError):
    code = "prohibited_use"


class UnknownTargetError(RefusedError):
    """A declared target of a search is not in the policy's vocabulary."""

    code = "unknown_target"


class TrainingRequiredError(RefusedError):
    """The policy requires a current training record before this role may act."""

    code = "training_required"


class PurposeNotAllowedError(RefusedError):
    code = "purpose_not_allowed"


class SelfReviewError(RefusedError):
    code = "self_review"


class RateLimitedError(RefusedError):
    code = "rate_limited"


class FpirTooHighError(RefusedError):
    """The gallery's size makes the operating point's expected FPIR exceed the policy's cap."""

    code = "expected_fpir_too_high"


class NotFoundError(FaceLedgerError):
    code = "not_found"


class ConflictError(FaceLedgerError):
    code = "conflict"


class StoreError(FaceLedgerError):
    """The store cannot be used: corrupt file, failed migration, lost connection."""

    code = "store_error"


class DataKeyError(StoreError):
    """A key cannot unwrap or decrypt data (wrong key-encryption key, erased subject key)."""

    code = "data_key"


class StorageFullError(StoreError):
    """The disk (or the database's own size limit) is full: the transaction was rolled back whole;
    free space and retry."""

    code = "storage_full"


class StoreUnavailableError(StoreError):
    """The connection to the database was lost (server restart, terminated session, network):
    the transaction was rolled back whole; retry."""

    code = "store_unavailable"
