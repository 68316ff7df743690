"""Ledger entries: what happened, by whom, under which policy, hash-chained.

Every operation that touches biometric data or its governance appends one
:class:`LedgerEntry`, written in the same store transaction as its effect. The
chain is defined in :mod:`faceledger.core.chain`: an entry's ``hash`` is
``entry_hash(prev_hash, entry.fields())``; ``fields()`` is every field except
``prev_hash`` and ``hash`` (``seq`` included). Sequence numbers start at 1 and
increase by exactly 1; the first entry's ``prev_hash`` is ``GENESIS``.

``credential`` says how the actor was authenticated (``key:<API key id>`` for the
HTTP service, ``os:<user>`` for the CLI, ``service`` for what the service does by
itself). It is hashed like every other field when present; entries written before
credentials existed have none, and a field that is absent (``None``) is left out of
the hashed fields, so those entries keep their hashes and old ledgers stay verifiable.

An entry holds *digests* of its inputs (SHA-256 hex), never photos, templates or
any other biometric data: :class:`EntryDraft` runs :func:`check_entry_data`, which
refuses arrays, byte strings, long base64-like strings and long runs of numbers. The
ledger therefore survives subject erasure unchanged.

Writing, with the store (``faceledger.store``): in the transaction of the effect,
``tx.append_ledger(entry_fields(draft, at))``; the store assigns ``seq``, ``prev_hash``
and ``hash`` by the same definition and keeps ``(seq, prev_hash, hash, fields)`` with
``fields`` as canonical JSON text. :meth:`LedgerEntry.from_row` reads that back.
Without a store, :func:`seal` computes the next entry itself.

Two row layouts are read back (by :meth:`LedgerEntry.from_row` and by
:func:`faceledger.governance.verify.verify_chain`): the store's ``(seq, prev_hash,
hash, fields)``, and the wide :data:`ROW_COLUMNS` of :meth:`LedgerEntry.to_row` (the
scalar fields as they are, ``inputs`` and ``result`` as canonical JSON text), used by
exports.

Result conventions the reports rely on: a refused entry's ``result`` is
:func:`refusal_result` (``{"error": code, "reason": ..., "message": ...}``); a review
entry's is :func:`faceledger.governance.review.review_result`; an erasure's carries
``{"reason": ...}``; an identification's carries ``candidates``, ``threshold`` and
``model_id``; ``reference`` holds the case or authorization reference.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from datetime import datetime
from operator import itemgetter
from typing import Any, NamedTuple

from faceledger.core.chain import GENESIS, canonical_json, entry_hash
from faceledger.errors import FaceLedgerError, InputError
from faceledger.governance._time import from_iso, to_iso
from faceledger.governance.roles import Operation

__all__ = [
    "GENESIS_HEAD",
    "HASHED_FIELDS",
    "OUTCOMES",
    "ROW_COLUMNS",
    "ChainHead",
    "EntryDraft",
    "LedgerEntry",
    "check_entry_data",
    "entry_fields",
    "refusal_result",
    "seal",
]

#: The fields an entry's hash covers, in the order of :data:`ROW_COLUMNS`.
HASHED_FIELDS = (
    "seq", "ts", "actor", "role", "operation", "purpose", "reference", "gallery", "subject_ref",
    "inputs", "result", "outcome", "policy_digest", "credential",
)  # fmt: skip
#: Hashed fields left out of :meth:`LedgerEntry.fields` when ``None`` (added after ledgers existed).
OPTIONAL_FIELDS = frozenset({"credential"})
#: A storage row: the hashed fields, then ``prev_hash`` and ``hash``.
ROW_COLUMNS = (*HASHED_FIELDS, "prev_hash", "hash")
#: The wide-row layout before ``credential`` existed (still read: old exports stay verifiable).
LEGACY_ROW_COLUMNS = tuple(c for c in ROW_COLUMNS if c not in OPTIONAL_FIELDS)
MAX_CREDENTIAL = 256
OUTCOMES = ("ok", "refused", "error")

#: Guard limits (see :func:`check_entry_data`).
MAX_NUMBERS_IN_LIST = 32  # a template has 128-512 numbers; a list of a few scores is fine
MAX_STRING = 4096  # characters
MAX_OPAQUE_STRING = 96  # a longer run of base64/hex characters is refused, except digests
MAX_DEPTH = 8
MAX_ENTRY_BYTES = 64 * 1024  # canonical JSON of inputs + result
_OPAQUE = re.compile(r"^[A-Za-z0-9+/=_-]+$")
_DIGEST = re.compile(r"^[0-9a-f]{64}$")
_HEX_RUN = re.compile(r"^[0-9a-fA-F]+$")
#: Keys refused inside ``inputs`` / ``result``: they would make the stored JSON text
#: ambiguous for the verifier's fast path (see verify.py).
_RESERVED_KEYS = {"inputs": "operation", "result": "role"}


class ChainHead(NamedTuple):
    """The last entry of a chain: its ``seq`` and ``hash`` (``(0, GENESIS)`` for an empty ledger)."""

    seq: int
    hash: str


GENESIS_HEAD = ChainHead(0, GENESIS)


@dataclass(frozen=True, slots=True)
class EntryDraft:
    """What the engine knows about an operation before the store appends it.

    ``role`` is the role the actor claimed (kept as given, so a refusal of an unknown
    role is ledgered too); ``operation`` is an :class:`Operation` value; ``outcome``
    one of :data:`OUTCOMES`; ``inputs`` maps input names to SHA-256 hex digests;
    ``result`` is a small JSON-able summary; ``credential`` how the actor was
    authenticated (``None``: not known, e.g. a direct Python call). Construction
    validates all of it.
    """

    actor: str
    role: str
    operation: str
    outcome: str = "ok"
    purpose: str | None = None
    reference: str | None = None
    gallery: str | None = None
    subject_ref: str | None = None
    inputs: Mapping[str, str] = field(default_factory=dict)
    result: Mapping[str, Any] = field(default_factory=dict)
    policy_digest: str | None = None
    credential: str | None = None

    def __post_init__(self) -> None:
        for name in ("actor", "role"):
            if not isinstance(getattr(self, name), str) or not getattr(self, name).strip():
                raise InputError(f"ledger entry: {name} is required", field=name)
        try:
            object.__setattr__(self, "operation", Operation(self.operation).value)
        except ValueError:
            raise InputError(f"ledger entry: unknown operation {self.operation!r}", field="operation") from None
        if self.outcome not in OUTCOMES:
            raise InputError(f"ledger entry: outcome must be one of {OUTCOMES}, got {self.outcome!r}")
        for name in ("purpose", "reference", "gallery", "subject_ref", "policy_digest", "credential"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, str):
                raise InputError(f"ledger entry: {name} must be a string or None", field=name)
        cred = self.credential
        if cred is not None and (not cred.strip() or len(cred) > MAX_CREDENTIAL or not cred.isprintable()):
            raise InputError(f"ledger entry: credential must be 1-{MAX_CREDENTIAL} printable characters",
                             field="credential")
        inputs, result = check_entry_data(self.inputs, self.result)
        object.__setattr__(self, "inputs", inputs)
        object.__setattr__(self, "result", result)


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    """One sealed ledger entry. ``ts`` is ISO-8601 UTC with microseconds and ``Z``."""

    seq: int
    ts: str
    actor: str
    role: str
    operation: str
    outcome: str
    purpose: str | None = None
    reference: str | None = None
    gallery: str | None = None
    subject_ref: str | None = None
    inputs: Mapping[str, str] = field(default_factory=dict)
    result: Mapping[str, Any] = field(default_factory=dict)
    policy_digest: str | None = None
    prev_hash: str = GENESIS
    hash: str = ""
    credential: str | None = None

    def fields(self) -> dict[str, Any]:
        """The hashed fields (everything but ``prev_hash`` and ``hash``; ``credential`` only when set)."""
        return _present({name: getattr(self, name) for name in HASHED_FIELDS})

    def compute_hash(self) -> str:
        """``entry_hash(prev_hash, fields())``: what ``hash`` must be."""
        return entry_hash(self.prev_hash, self.fields())

    @property
    def head(self) -> ChainHead:
        return ChainHead(self.seq, self.hash)

    @property
    def time(self) -> datetime:
        """``ts`` as a UTC datetime."""
        return from_iso(self.ts, "ledger ts")

    def to_row(self) -> dict[str, Any]:
        """The storage row: :data:`ROW_COLUMNS`, ``inputs``/``result`` as canonical JSON text."""
        row = {name: getattr(self, name) for name in ROW_COLUMNS}
        row["inputs"] = canonical_json(self.inputs).decode()
        row["result"] = canonical_json(self.result).decode()
        return row

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict with ``inputs``/``result`` as objects (for exports, one per line)."""
        return {name: getattr(self, name) for name in ROW_COLUMNS}

    def store_fields(self) -> dict[str, Any]:
        """The fields the store's ``append_ledger`` takes: every hashed field except ``seq``."""
        return {name: value for name, value in self.fields().items() if name != "seq"}

    @classmethod
    def from_row(cls, row: Any) -> LedgerEntry:
        """Build an entry from a stored row in either layout: a wide row (mapping, ``sqlite3.Row``,
        tuple in ROW_COLUMNS order) or a store row ``(seq, prev_hash, hash, fields)`` (4-tuple,
        mapping, or the store's ``LedgerRow``); JSON text columns are parsed."""
        store = _store_row(row)
        if store is not None:
            seq, prev_hash, hash_, stored = store
            data = _json(stored, "fields", seq) if isinstance(stored, str | bytes) else dict(stored)
            try:
                return cls(seq=seq, prev_hash=prev_hash, hash=hash_, **data)
            except TypeError as exc:
                raise InputError(f"ledger row {seq}: fields do not match a ledger entry: {exc}") from None
        values = list(row_values(row))
        for name in ("inputs", "result"):
            i = ROW_COLUMNS.index(name)
            if isinstance(values[i], str | bytes):
                values[i] = _json(values[i], name, values[0])
        return cls(**dict(zip(ROW_COLUMNS, values, strict=True)))


def _present(fields: dict[str, Any]) -> dict[str, Any]:
    """``fields`` without the optional ones that are ``None`` (see :data:`OPTIONAL_FIELDS`)."""
    for name in OPTIONAL_FIELDS:
        if fields.get(name, 0) is None:
            del fields[name]
    return fields


def _json(text: str | bytes, name: str, seq: Any) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        raise InputError(f"ledger row {seq}: {name} is not JSON") from None


def _store_row(row: Any) -> tuple[Any, Any, Any, Any] | None:
    """``(seq, prev_hash, hash, fields)`` if ``row`` is in the store's layout, else ``None``."""
    if type(row) in (tuple, list):
        return tuple(row) if len(row) == 4 else None  # type: ignore[return-value]
    if isinstance(row, LedgerEntry):
        return None
    if hasattr(row, "keys"):
        if "fields" not in row.keys():  # noqa: SIM118 - sqlite3.Row's "in" looks at values
            return None
        return row["seq"], row["prev_hash"], row["hash"], row["fields"]
    if hasattr(row, "fields") and hasattr(row, "prev_hash"):
        return row.seq, row.prev_hash, row.hash, row.fields
    return None


_GET_COLUMNS = itemgetter(*ROW_COLUMNS)
_GET_LEGACY = itemgetter(*LEGACY_ROW_COLUMNS)
_CREDENTIAL = ROW_COLUMNS.index("credential")


def row_values(row: Any) -> Sequence[Any]:
    """The :data:`ROW_COLUMNS` values of a row, whatever its shape (raises :class:`InputError`).

    A tuple or list is taken to be in ``ROW_COLUMNS`` order; a mapping or ``sqlite3.Row``
    is read by column name; a :class:`LedgerEntry` by attribute. Rows of the layout
    before ``credential`` existed (:data:`LEGACY_ROW_COLUMNS`) read as having none.
    """
    if type(row) is tuple or type(row) is list:
        if len(row) == len(LEGACY_ROW_COLUMNS):
            return _with_credential(row, None)
        if len(row) != len(ROW_COLUMNS):
            raise InputError(f"ledger row has {len(row)} columns, expected {len(ROW_COLUMNS)}")
        return row
    if isinstance(row, LedgerEntry):
        return [getattr(row, name) for name in ROW_COLUMNS]
    try:
        return _GET_COLUMNS(row)
    except (KeyError, IndexError) as exc:
        try:
            return _with_credential(_GET_LEGACY(row), None)
        except (KeyError, IndexError, TypeError):
            raise InputError(f"ledger row is missing a column: {exc}") from None
    except TypeError as exc:
        raise InputError(f"ledger row is missing a column: {exc}") from None


def _with_credential(values: Sequence[Any], credential: str | None) -> list[Any]:
    out = list(values)
    out.insert(_CREDENTIAL, credential)
    return out


def seal(draft: EntryDraft, head: ChainHead, at: datetime) -> LedgerEntry:
    """The entry that follows ``head`` (seq ``head.seq + 1``, linked to ``head.hash``), sealed.

    ``at`` is the time of the operation (timezone-aware). The store calls this inside
    the transaction that applies the effect, with the head it has just read.
    """
    entry = LedgerEntry(
        seq=head.seq + 1,
        ts=to_iso(at, "ledger ts"),
        prev_hash=head.hash,
        **{f.name: getattr(draft, f.name) for f in fields(EntryDraft)},
    )
    return replace(entry, hash=entry.compute_hash())


def entry_fields(draft: EntryDraft, at: datetime) -> dict[str, Any]:
    """What the store's ``append_ledger`` takes for ``draft`` at time ``at``: every hashed field
    except ``seq``, which the store assigns (with ``prev_hash`` and ``hash``) inside its transaction."""
    return _present({"ts": to_iso(at, "ledger ts"), **{f.name: getattr(draft, f.name) for f in fields(EntryDraft)}})


def refusal_result(error: FaceLedgerError) -> dict[str, Any]:
    """The ``result`` of a refused (or failed) entry: the error's code, reason and message."""
    reason = error.details.get("reason")
    return {
        "error": error.code,
        "reason": reason if isinstance(reason, str) else None,
        "message": error.message,
    }


# -- the biometric-data guard --------------------------------------------------------------------------


def check_entry_data(inputs: Mapping[str, str], result: Mapping[str, Any]) -> tuple[dict[str, str], dict[str, Any]]:
    """Plain-JSON copies of ``inputs`` and ``result``, or :class:`InputError` if either could
    carry biometric data or is not plain JSON.

    ``inputs`` must map names to SHA-256 hex digests (64 lower-case hex characters).
    ``result`` may hold ``None``, booleans, integers, finite floats, strings, lists and
    string-keyed dicts, with: no list of more than ``MAX_NUMBERS_IN_LIST`` numbers
    (counting nested lists; a template is hundreds), no string longer than
    ``MAX_STRING``, no string of more than ``MAX_OPAQUE_STRING`` characters that looks
    like encoded binary data (an encoded photo or vector: hex longer than 128 digits,
    or base64 mixing upper case, lower case and digits), no byte strings or arrays,
    nesting at most ``MAX_DEPTH``, at most ``MAX_ENTRY_BYTES`` in all.
    This is a guard against mistakes, not a proof: the engine must only pass summaries.
    """
    if not isinstance(inputs, Mapping):
        raise InputError("ledger entry: inputs must be a mapping of name -> SHA-256 hex digest")
    plain_inputs: dict[str, str] = {}
    for name, digest in inputs.items():
        if not isinstance(name, str) or not name or len(name) > 64 or name == _RESERVED_KEYS["inputs"]:
            raise InputError(f"ledger entry: bad input name {name!r}")
        if not isinstance(digest, str) or not _DIGEST.match(digest):
            raise InputError(f"ledger entry: input {name!r} must be a SHA-256 hex digest, never the data itself")
        plain_inputs[name] = digest
    if not isinstance(result, Mapping):
        raise InputError("ledger entry: result must be a mapping")
    plain_result = _plain(result, "result", 0)
    size = len(canonical_json(plain_inputs)) + len(canonical_json(plain_result))
    if size > MAX_ENTRY_BYTES:
        raise InputError(f"ledger entry: {size} bytes of inputs and result (limit {MAX_ENTRY_BYTES})")
    return plain_inputs, plain_result


def _plain(value: Any, path: str, depth: int) -> Any:
    if depth > MAX_DEPTH:
        raise InputError(f"ledger entry: {path} is nested deeper than {MAX_DEPTH}")
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InputError(f"ledger entry: {path} is not a finite number")
        return float(value)
    if isinstance(value, str):
        _check_string(value, path)
        return value
    if isinstance(value, Mapping):
        out = {}
        for key, item in value.items():
            if not isinstance(key, str) or key == _RESERVED_KEYS["result"]:
                raise InputError(f"ledger entry: key {key!r} in {path} is not allowed")
            out[key] = _plain(item, f"{path}.{key}", depth + 1)
        return out
    if isinstance(value, list | tuple):
        if _count_numbers(value) > MAX_NUMBERS_IN_LIST:
            raise InputError(f"ledger entry: {path} holds a long list of numbers (a template?); refused")
        return [_plain(item, f"{path}[{i}]", depth + 1) for i, item in enumerate(value)]
    raise InputError(f"ledger entry: {path} is a {type(value).__name__}; only plain JSON values are allowed")


def _check_string(value: str, path: str) -> None:
    if len(value) > MAX_STRING:
        raise InputError(f"ledger entry: {path} is a string of {len(value)} characters (limit {MAX_STRING})")
    if len(value) <= MAX_OPAQUE_STRING or not _OPAQUE.match(value):
        return
    if _HEX_RUN.match(value):
        opaque = len(value) > 128  # longer than a SHA-512 or an Ed25519 signature
    else:  # base64 of binary data mixes upper case, lower case and digits
        opaque = any(c.isupper() for c in value) and any(c.islower() for c in value)
        opaque = opaque and any(c.isdigit() for c in value)
    if opaque:
        raise InputError(f"ledger entry: {path} looks like encoded binary data; refused")


def _count_numbers(items: list[Any] | tuple[Any, ...]) -> int:
    n = 0
    for item in items:
        if isinstance(item, int | float) and not isinstance(item, bool):
            n += 1
        elif isinstance(item, list | tuple):
            n += _count_numbers(item)
    return n
