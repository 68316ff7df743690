"""The storage contract: typed records and the ``Store`` / ``Transaction`` protocols.

Both backends (:mod:`faceledger.store.sqlite`, :mod:`faceledger.store.postgres`)
implement these protocols and pass one contract test suite.

Conventions:

* Templates are L2-normalised ``float32`` vectors of the gallery's dimension;
  scores are cosine similarities in ``[-1, 1]`` (higher is more alike).
* Times are timezone-aware ``datetime`` in UTC.
* Identifiers (gallery, subject, template ids) are integers that are never reused.
* Every write happens inside ``with store.transaction() as tx:``; writers are
  serialised. Leaving the block by an exception rolls everything back, including
  ledger rows: there is no effect without its ledger row and no row without its effect.
* Galleries are named by ``name`` in the API; subjects and templates by id.
* The store never returns template vectors to callers (except through ``search``
  scores): a data-subject export lists template *metadata* only.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

import numpy as np

__all__ = [
    "BulkSubject",
    "Candidate",
    "Gallery",
    "GallerySettings",
    "GalleryStats",
    "LedgerHead",
    "LedgerRow",
    "NewTemplate",
    "Record",
    "Store",
    "StoredTemplate",
    "Subject",
    "Transaction",
]


@dataclass(frozen=True)
class GallerySettings:
    """What a gallery is created with.

    ``model_id`` and ``dimension`` are pinned: templates of another model are refused.
    ``thresholds`` maps operating-point names (e.g. ``"fmr1e-3"``) to cosine thresholds
    calibrated for this gallery; ``operating_point`` names the one used by default.
    ``retention_days`` is how long a subject is kept after enrollment (``None``: no
    automatic expiry). ``quality_gate`` holds the enrollment gate (e.g. minimum face
    size in pixels, minimum sharpness, maximum absolute yaw) as plain JSON values.
    """

    model_id: str
    dimension: int
    retention_days: int | None = None
    thresholds: dict[str, float] = field(default_factory=dict)
    operating_point: str | None = None
    keep_photos: bool = False
    quality_gate: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Gallery:
    """A named collection of subjects whose templates come from one model."""

    name: str
    model_id: str
    dimension: int
    retention_days: int | None
    thresholds: dict[str, float]
    operating_point: str | None
    keep_photos: bool
    quality_gate: dict[str, Any]
    created_at: datetime

    @property
    def settings(self) -> GallerySettings:
        return GallerySettings(self.model_id, self.dimension, self.retention_days, dict(self.thresholds),
                               self.operating_point, self.keep_photos, dict(self.quality_gate))


@dataclass(frozen=True)
class GalleryStats:
    """Counts for one gallery."""

    name: str
    subjects: int
    templates: int


@dataclass(frozen=True)
class Subject:
    """A person in a gallery: the operator's ``external_ref`` is unique within the gallery."""

    id: int
    gallery: str
    external_ref: str
    display_name: str | None
    created_at: datetime
    template_count: int


@dataclass(frozen=True, eq=False)
class NewTemplate:
    """A template to add: unit ``float32`` vector, quality (JSON values), photo digest.

    ``source_sha256`` is the SHA-256 (hex) of the photo's bytes; adding the same
    digest twice to one subject is a no-op that returns the existing template.
    ``photo`` is kept (encrypted on SQLite) only if the gallery keeps photos. ``crop`` is the
    enrolled face crop (an encoded image) that reviewers compare a probe with: kept like the
    template (under the subject's data key on SQLite) and destroyed with it.
    """

    vector: np.ndarray = field(repr=False)
    model_id: str
    source_sha256: str
    quality: dict[str, Any] = field(default_factory=dict)
    photo: bytes | None = field(default=None, repr=False)
    crop: bytes | None = field(default=None, repr=False)


@dataclass(frozen=True)
class BulkSubject:
    """A subject with its templates, for :meth:`Transaction.bulk_enroll` (imports, re-enrollment)."""

    external_ref: str
    templates: Sequence[NewTemplate]
    display_name: str | None = None


@dataclass(frozen=True)
class StoredTemplate:
    """Metadata of a stored template (never the vector)."""

    id: int
    subject_id: int
    quality: dict[str, Any]
    source_sha256: str
    created_at: datetime
    has_photo: bool


@dataclass(frozen=True)
class Candidate:
    """One subject returned by a search, ``rank`` 1 being the most similar.

    ``score`` is the best cosine similarity over the subject's templates and
    ``template_id`` the template that gave it.
    """

    subject_id: int
    external_ref: str
    score: float
    rank: int
    template_id: int


@dataclass(frozen=True)
class Record:
    """A governance record (consent, authorization, lead, review, ...) kept as JSON."""

    kind: str
    record_id: str
    data: dict[str, Any]
    gallery: str | None
    subject_id: int | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class LedgerRow:
    """One ledger entry: ``hash = entry_hash(prev_hash, {**fields, "seq": seq})``."""

    seq: int
    prev_hash: str
    hash: str
    fields: dict[str, Any]


@dataclass(frozen=True)
class LedgerHead:
    """The last entry's sequence number and hash (``0`` and ``GENESIS`` when empty)."""

    seq: int
    hash: str


@runtime_checkable
class Transaction(Protocol):
    """The writes (and the reads a rule needs to check first) of one atomic unit of work."""

    # galleries
    def create_gallery(self, name: str, settings: GallerySettings) -> Gallery: ...
    def update_gallery(self, name: str, **changes: Any) -> Gallery: ...
    def set_gallery_model(self, name: str, model_id: str, dimension: int) -> int: ...
    def delete_gallery(self, name: str, *, cascade: bool = False) -> None: ...
    def get_gallery(self, name: str) -> Gallery: ...
    # subjects and templates
    def add_subject(self, gallery: str, external_ref: str, display_name: str | None = None) -> Subject: ...
    def get_subject(self, subject_id: int) -> Subject: ...
    def find_subject(self, gallery: str, external_ref: str) -> Subject: ...
    def remove_subject(self, subject_id: int) -> Subject: ...
    def add_template(self, subject_id: int, template: NewTemplate) -> StoredTemplate: ...
    def bulk_enroll(self, gallery: str, subjects: Sequence[BulkSubject]) -> list[int]: ...
    def remove_template(self, template_id: int) -> None: ...
    # governance records
    def put_record(self, kind: str, record_id: str, data: Mapping[str, Any], *,
                   gallery: str | None = None, subject_id: int | None = None) -> Record: ...
    def get_record(self, kind: str, record_id: str) -> Record: ...
    def list_records(self, kind: str, *, gallery: str | None = None,
                     subject_id: int | None = None) -> list[Record]: ...
    def delete_records(self, *, subject_id: int | None = None, kind: str | None = None,
                       record_id: str | None = None) -> int: ...
    # review evidence (a probe's face crop, under a key of its own on SQLite)
    def put_evidence(self, evidence_id: str, data: bytes) -> None: ...
    def delete_evidence(self, evidence_id: str) -> bool: ...
    # ledger
    def append_ledger(self, fields: Mapping[str, Any]) -> LedgerRow: ...
    def ledger_head(self) -> LedgerHead: ...


@runtime_checkable
class Store(Protocol):
    """A gallery store: transactions for writes, plus reads and search."""

    backend: str  # "sqlite" or "postgresql"

    def transaction(self) -> AbstractContextManager[Transaction]: ...
    def get_gallery(self, name: str) -> Gallery: ...
    def list_galleries(self) -> list[Gallery]: ...
    def gallery_stats(self, name: str) -> GalleryStats: ...
    def get_subject(self, subject_id: int) -> Subject: ...
    def find_subject(self, gallery: str, external_ref: str) -> Subject: ...
    def list_subjects(self, gallery: str, *, created_before: datetime | None = None,
                      limit: int | None = None, offset: int = 0) -> list[Subject]: ...
    def list_templates(self, subject_id: int) -> list[StoredTemplate]: ...
    def get_photo(self, template_id: int) -> bytes | None: ...
    def get_crop(self, template_id: int) -> bytes | None: ...
    def get_evidence(self, evidence_id: str) -> bytes | None: ...
    def get_record(self, kind: str, record_id: str) -> Record: ...
    def list_records(self, kind: str, *, gallery: str | None = None,
                     subject_id: int | None = None) -> list[Record]: ...
    def search(self, gallery: str, probes: np.ndarray, k: int = 5, *,
               model_id: str | None = None) -> list[list[Candidate]]: ...
    def warm(self, gallery: str) -> int: ...
    def ledger_head(self) -> LedgerHead: ...
    def iter_ledger(self, start_seq: int = 1, stop_seq: int | None = None) -> Iterator[LedgerRow]: ...
    def ledger_rows(self, start_seq: int = 1,
                    stop_seq: int | None = None) -> Iterator[tuple[int, str, str, str]]: ...
    def subject_export(self, subject_id: int) -> dict[str, Any]: ...
    def close(self) -> None: ...


def candidates_sequence(rows: Sequence[tuple[int, str, float, int]]) -> list[Candidate]:
    """Candidates ranked 1.. from ``(subject_id, external_ref, score, template_id)`` best first."""
    return [Candidate(sid, ref, float(score), i + 1, tid) for i, (sid, ref, score, tid) in enumerate(rows)]
