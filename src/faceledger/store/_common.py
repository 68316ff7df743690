"""Validation, JSON and ranking shared by the store backends (no I/O)."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import numpy as np

from faceledger.core.chain import canonical_json, entry_hash
from faceledger.errors import ConflictError, InputError, ModelMismatchError

from .base import BulkSubject, Gallery, GallerySettings, LedgerRow

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
UNIT_TOLERANCE = 1e-3  # |norm - 1| allowed for a "unit" vector
RESERVED_LEDGER_KEYS = frozenset({"seq", "hash", "prev_hash"})
UPDATABLE = frozenset({"retention_days", "thresholds", "operating_point", "keep_photos", "quality_gate"})


def utc_now() -> datetime:
    return datetime.now(UTC)


def to_iso(t: datetime) -> str:
    """UTC ISO 8601 with microseconds, sortable as text."""
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def from_iso(s: str) -> datetime:
    return datetime.fromisoformat(s)  # Python 3.11 reads the "Z" suffix as UTC


def check_name(name: object) -> str:
    """A gallery name: 1-64 characters of letters, digits, ``.``, ``_``, ``-``."""
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise InputError(f"invalid gallery name {name!r}: use 1-64 letters, digits, '.', '_' or '-'")
    return name


def check_text(value: object, what: str, max_len: int = 256) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > max_len:
        raise InputError(f"invalid {what} {value!r}: a non-empty string of at most {max_len} characters")
    return value


def check_settings(s: GallerySettings) -> GallerySettings:
    """Validate gallery settings (types and ranges); returns them unchanged."""
    check_text(s.model_id, "model id", 128)
    if not isinstance(s.dimension, int) or isinstance(s.dimension, bool) or not 1 <= s.dimension <= 4096:
        raise InputError(f"invalid template dimension {s.dimension!r}: an integer in [1, 4096]")
    if s.retention_days is not None and (not isinstance(s.retention_days, int) or s.retention_days < 1):
        raise InputError(f"invalid retention {s.retention_days!r}: a positive number of days or None")
    for op, t in s.thresholds.items():
        if not isinstance(op, str) or not isinstance(t, (int, float)) or not -1.0 <= float(t) <= 1.0:
            raise InputError(f"invalid threshold {op!r}: {t!r} (a cosine in [-1, 1])")
    if s.operating_point is not None and s.operating_point not in s.thresholds:
        raise InputError(f"operating point {s.operating_point!r} has no threshold in this gallery")
    dump_json(s.quality_gate, "quality gate")
    return replace(s, thresholds={k: float(v) for k, v in s.thresholds.items()}, keep_photos=bool(s.keep_photos))


def updated_settings(current: Gallery, changes: Mapping[str, Any]) -> GallerySettings:
    """Settings after ``update_gallery(**changes)``; the model is changed by ``set_gallery_model``."""
    unknown = set(changes) - UPDATABLE
    if unknown:
        raise InputError(f"cannot update {sorted(unknown)}: updatable are {sorted(UPDATABLE)}")
    return check_settings(replace(current.settings, **changes))


def check_model(gallery: Gallery | tuple[str, str], model_id: str | None) -> None:
    """Refuse ``model_id`` unless it is the gallery's (a :class:`Gallery` or ``(name, model_id)``)."""
    name, expected = (gallery.name, gallery.model_id) if isinstance(gallery, Gallery) else gallery
    if model_id is not None and model_id != expected:
        raise ModelMismatchError(
            f"gallery '{name}' holds templates of model '{expected}', not '{model_id}'; "
            "use the gallery's model or re-enroll the gallery with the new model",
            gallery=name, expected=expected, got=model_id)


def check_vector(vector: object, dimension: int) -> np.ndarray:
    """A finite unit ``float32`` vector of ``dimension`` values (a contiguous copy)."""
    v = np.asarray(vector)
    if v.dtype != np.float32 or v.shape != (dimension,):
        raise InputError(f"a template must be float32 of shape ({dimension},), got {v.dtype} {v.shape}")
    if not np.all(np.isfinite(v)) or abs(float(np.linalg.norm(v)) - 1.0) > UNIT_TOLERANCE:
        raise InputError("a template must be a finite L2-normalised vector")
    return np.array(v, dtype=np.float32, copy=True, order="C")


def check_probes(probes: object, dimension: int, k: int) -> np.ndarray:
    """Probe vectors as a ``(n, dimension)`` float32 matrix (a single vector becomes one row)."""
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= 1000:
        raise InputError(f"k must be an integer in [1, 1000], got {k!r}")
    p = np.asarray(probes)
    if p.ndim == 1:
        p = p[None, :]
    if p.ndim != 2 or p.shape[1] != dimension:
        raise InputError(f"probes must have shape (n, {dimension}), got {p.shape}")
    p = np.ascontiguousarray(p, dtype=np.float32)
    if not np.all(np.isfinite(p)):
        raise InputError("probe vectors contain NaN or infinite values")
    return p


def check_sha256(value: object) -> str:
    if not isinstance(value, str) or not SHA256_RE.match(value):
        raise InputError(f"invalid source_sha256 {value!r}: 64 lower-case hex digits")
    return value


def _finite_or_none(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {str(k): _finite_or_none(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite_or_none(v) for v in value]
    return value


def quality_json(quality: Mapping[str, Any]) -> str:
    """Quality measures as JSON; NaN and infinities (measures that could not be made) become null."""
    return dump_json(_finite_or_none(dict(quality)), "quality")


def dump_json(value: Any, what: str) -> str:
    """Compact JSON with sorted keys; refuses NaN and values JSON cannot hold."""
    try:
        return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{what} is not JSON-serialisable: {exc}") from None


def check_record_key(kind: object, record_id: object) -> None:
    check_text(kind, "record kind", 64)
    check_text(record_id, "record id", 256)


def new_ledger_row(prev_hash: str, seq: int, fields: Mapping[str, Any]) -> tuple[LedgerRow, str]:
    """The row for ``fields`` after ``prev_hash``, and the canonical JSON text to store."""
    if not isinstance(fields, Mapping) or not fields:
        raise InputError("a ledger entry needs a non-empty mapping of fields")
    bad = RESERVED_LEDGER_KEYS & set(fields)
    if bad:
        raise InputError(f"ledger fields may not contain {sorted(bad)}: the store assigns them")
    try:
        text = canonical_json(fields).decode()
        stored = json.loads(text)
        h = entry_hash(prev_hash, {**stored, "seq": seq})
    except (TypeError, ValueError) as exc:
        raise InputError(f"ledger fields are not canonical JSON: {exc}") from None
    return LedgerRow(seq=seq, prev_hash=prev_hash, hash=h, fields=stored), text


def rank_subjects(
    scores_of: Callable[[int], tuple[np.ndarray, np.ndarray]],
    subject_of: Callable[[np.ndarray], np.ndarray],
    k: int,
    total: int | None = None,
) -> list[tuple[int, float, int]]:
    """Top ``k`` subjects by their best template score, from a template-level top-m search.

    ``scores_of(m)`` returns up to ``m`` best template ids and scores (best first;
    fewer than ``m`` means there are no more); ``subject_of(ids)`` maps template ids
    to subject ids (negative: gone, skipped). ``m`` grows until ``k`` distinct
    subjects are found or the gallery (``total`` templates, if known) is exhausted,
    so a subject with many templates never hides the others. Returns
    ``(subject_id, score, template_id)`` best first.
    """
    m = max(4 * k, 16) if total is None else min(total, max(4 * k, 16))
    while True:
        tids, scores = scores_of(m)
        sids = subject_of(tids)
        out: list[tuple[int, float, int]] = []
        seen: set[int] = set()
        for sid, score, tid in zip(sids.tolist(), scores.tolist(), tids.tolist(), strict=True):
            if sid >= 0 and sid not in seen:
                seen.add(sid)
                out.append((sid, score, tid))
                if len(out) == k:
                    return out
        if len(tids) < m or (total is not None and m >= total):
            return out
        m = m * 4 if total is None else min(total, m * 4)


def bulk_rows(g: Gallery, subjects: Sequence[BulkSubject]) -> list[list[tuple[np.ndarray, str, str, bytes | None]]]:
    """Validated ``(vector, quality JSON, sha256, photo)`` per template, per subject (duplicates dropped)."""
    refs: set[str] = set()
    out = []
    for s in subjects:
        check_text(s.external_ref, "external reference")
        if s.external_ref in refs:
            raise ConflictError(f"subject '{s.external_ref}' appears twice in the import", external_ref=s.external_ref)
        refs.add(s.external_ref)
        tpls, shas = [], set()
        for t in s.templates:
            check_model(g, t.model_id)
            sha = check_sha256(t.source_sha256)
            if sha in shas:
                continue
            shas.add(sha)
            photo = bytes(t.photo) if t.photo is not None and g.keep_photos else None
            tpls.append((check_vector(t.vector, g.dimension), quality_json(t.quality), sha, photo))
        out.append(tpls)
    return out
