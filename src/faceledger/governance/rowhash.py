"""Recompute a stored ledger row's hash, fast, for the two storage layouts.

The chain's definition (:func:`faceledger.core.chain.entry_hash`) hashes the canonical
JSON of an entry's fields. Parsing each stored row back into objects and re-encoding
it costs more than the hashing itself, so rows in their stored form are hashed by
assembling the canonical bytes directly; :func:`row_parts` falls back to the exact
definition whenever the fast form does not apply or does not match, so a mismatch is
always confirmed by the definition before it is reported.

Two layouts are understood:

* **wide rows**, :data:`~faceledger.governance.ledger.ROW_COLUMNS` (16 values, from
  :meth:`LedgerEntry.to_row`; 15 in the layout before ``credential``): tuples or lists in that order, mappings or
  ``sqlite3.Row`` by name, or :class:`LedgerEntry` objects. ``inputs`` and ``result``
  are canonical JSON text (spliced as they are) or already parsed.
* **store rows** ``(seq, prev_hash, hash, fields)``, where ``fields`` is every hashed
  field but ``seq`` (the layout of :mod:`faceledger.store`): 4-tuples, objects with
  those attributes (the store's ``LedgerRow``), or mappings with those keys.
  ``fields`` is canonical JSON text, or a parsed mapping. The hash is
  ``entry_hash(prev_hash, {**fields, "seq": seq})``.

Why splicing stored text is sound: the bytes hashed must equal the original bytes
exactly, so a tampered row could only pass by moving bytes between columns. For wide
rows a JSON text may therefore not contain the key that follows it in the canonical
order (``,"operation":`` in inputs, ``,"role":`` in result; the ledger's guard never
writes such keys). For store rows the only freedom is where ``"seq":N`` goes, so the
fast form applies only to texts without any ``"seq":`` key; otherwise the text is
parsed, must re-encode to itself (canonical), and is hashed by the definition.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from json.encoder import encode_basestring
from typing import Any

from faceledger.core.chain import canonical_json, entry_hash
from faceledger.errors import FaceLedgerError
from faceledger.governance.ledger import (
    HASHED_FIELDS,
    LEGACY_ROW_COLUMNS,
    OPTIONAL_FIELDS,
    ROW_COLUMNS,
    LedgerEntry,
    row_values,
)

__all__ = ["Parts", "peek", "row_parts"]

#: ``(seq, prev_hash, stored hash, recomputed hash or None, why it could not be recomputed or None)``
Parts = tuple[Any, Any, Any, str | None, str | None]

_SEQ, _PREV, _HASH = ROW_COLUMNS.index("seq"), ROW_COLUMNS.index("prev_hash"), ROW_COLUMNS.index("hash")
_INPUTS, _RESULT = ROW_COLUMNS.index("inputs"), ROW_COLUMNS.index("result")
_FOLLOWER = {_INPUTS: ',"operation":', _RESULT: ',"role":'}
_A, _C, _G, _OP, _OUT, _PD, _PU, _REF, _ROLE, _SUB, _TS = (
    ROW_COLUMNS.index(k)
    for k in ("actor", "credential", "gallery", "operation", "outcome", "policy_digest", "purpose", "reference",
              "role", "subject_ref", "ts")
)  # fmt: skip


class _Malformed(Exception):
    pass


def row_parts(row: Any) -> Parts:
    """Seq, link, stored hash and recomputed hash of a row in either layout (see the module doc)."""
    kind = type(row)
    if kind is tuple or kind is list:
        if len(row) == 4:
            return _store_parts(row[0], row[1], row[2], row[3])
        if len(row) in (len(ROW_COLUMNS), len(LEGACY_ROW_COLUMNS)):
            return _wide_parts(row_values(row))
        return None, None, None, None, f"a row has {len(row)} values, expected 4 or {len(ROW_COLUMNS)}"
    if isinstance(row, LedgerEntry):
        return _wide_parts([getattr(row, name) for name in ROW_COLUMNS])
    try:
        if _is_store_row(row):
            get = row.__getitem__ if hasattr(row, "keys") else row.__getattribute__
            return _store_parts(get("seq"), get("prev_hash"), get("hash"), get("fields"))
        return _wide_parts(row_values(row))
    except (FaceLedgerError, KeyError, AttributeError, IndexError, TypeError) as exc:
        return None, None, None, None, f"a column is missing: {exc}"


def peek(row: Any) -> tuple[int | None, str | None]:
    """``(seq, hash)`` of a row when readable, else ``None`` for either (used to classify problems)."""
    try:
        if type(row) in (tuple, list) and len(row) == 4:
            seq, stored = row[0], row[2]
        elif not isinstance(row, LedgerEntry) and _is_store_row(row):
            get = row.__getitem__ if hasattr(row, "keys") else row.__getattribute__
            seq, stored = get("seq"), get("hash")
        else:
            values = row_values(row)
            seq, stored = values[_SEQ], values[_HASH]
    except (FaceLedgerError, KeyError, AttributeError, IndexError, TypeError):
        return None, None
    return (seq if type(seq) is int else None), (stored if type(stored) is str else None)


def _is_store_row(row: Any) -> bool:
    if hasattr(row, "keys"):
        return "fields" in row.keys()  # noqa: SIM118 - sqlite3.Row's "in" looks at values, not names
    return hasattr(row, "fields") and hasattr(row, "prev_hash")


# -- wide rows -------------------------------------------------------------------------------------------


def _wide_parts(v: Sequence[Any]) -> Parts:
    seq, link, stored = v[_SEQ], v[_PREV], v[_HASH]
    computed = _wide_fast(v)
    if computed is None or computed != stored:
        try:
            computed = _wide_exact(v)
        except _Malformed as exc:
            return seq, link, stored, None, str(exc)
    return seq, link, stored, computed, None


def _wide_fast(v: Sequence[Any]) -> str | None:
    """The hash of a wide row in storage form (JSON text columns, plain strings), else ``None``."""
    inputs, result, seq = v[_INPUTS], v[_RESULT], v[_SEQ]
    if type(inputs) is not str or type(result) is not str or type(seq) is not int:
        return None
    if _FOLLOWER[_INPUTS] in inputs or _FOLLOWER[_RESULT] in result:
        return None
    q = encode_basestring
    try:
        # canonical_json's output for these keys, spelled out for speed (tests compare it with entry_hash)
        credential = "" if (c := v[_C]) is None else f'"credential":{q(c)},'
        body = (
            f'{{"actor":{q(v[_A])},{credential}'
            f'"gallery":{"null" if (g := v[_G]) is None else q(g)},'
            f'"inputs":{inputs},'
            f'"operation":{q(v[_OP])},'
            f'"outcome":{q(v[_OUT])},'
            f'"policy_digest":{"null" if (pd := v[_PD]) is None else q(pd)},'
            f'"purpose":{"null" if (pu := v[_PU]) is None else q(pu)},'
            f'"reference":{"null" if (ref := v[_REF]) is None else q(ref)},'
            f'"result":{result},'
            f'"role":{q(v[_ROLE])},'
            f'"seq":{seq},'
            f'"subject_ref":{"null" if (sub := v[_SUB]) is None else q(sub)},'
            f'"ts":{q(v[_TS])}}}'
        )
        return hashlib.sha256(f"{v[_PREV]}\x1f{body}".encode()).hexdigest()
    except (TypeError, UnicodeError):
        return None


def _wide_exact(v: Sequence[Any]) -> str:
    """The hash by the definition: JSON text columns parsed (and required canonical), then hashed."""
    fields: dict[str, Any] = {}
    for i, name in enumerate(ROW_COLUMNS):
        value = v[i]
        if i in (_INPUTS, _RESULT) and isinstance(value, str | bytes):
            value = _parse_canonical(value, name)
        if name in HASHED_FIELDS and not (value is None and name in OPTIONAL_FIELDS):
            fields[name] = value
    prev = v[_PREV]
    if type(prev) is not str or type(v[_SEQ]) is not int:
        raise _Malformed("seq must be an integer and prev_hash a string")
    try:
        return entry_hash(prev, fields)
    except (TypeError, ValueError, UnicodeError) as exc:
        raise _Malformed(str(exc)) from None


# -- store rows ------------------------------------------------------------------------------------------


def _store_parts(seq: Any, link: Any, stored: Any, fields: Any) -> Parts:
    computed = _store_fast(seq, link, fields)
    if computed is None or computed != stored:
        try:
            computed = _store_exact(seq, link, fields)
        except _Malformed as exc:
            return seq, link, stored, None, str(exc)
    return seq, link, stored, computed, None


def _store_fast(seq: Any, link: Any, fields: Any) -> str | None:
    if type(seq) is not int or type(link) is not str:
        return None
    if type(fields) is str:
        cut = fields.rfind(',"subject_ref":')
        if cut < 0 or '"seq":' in fields:
            return None
        body = f'{fields[:cut]},"seq":{seq}{fields[cut:]}'
        return hashlib.sha256(f"{link}\x1f{body}".encode()).hexdigest()
    return None


def _store_exact(seq: Any, link: Any, fields: Any) -> str:
    if type(seq) is not int or type(link) is not str:
        raise _Malformed("seq must be an integer and prev_hash a string")
    parsed = _parse_canonical(fields, "fields") if isinstance(fields, str | bytes) else fields
    if not isinstance(parsed, Mapping):
        raise _Malformed("fields is not a JSON object")
    if "seq" in parsed:
        raise _Malformed("fields holds a 'seq' key")
    try:
        return entry_hash(link, {**parsed, "seq": seq})
    except (TypeError, ValueError, UnicodeError) as exc:
        raise _Malformed(str(exc)) from None


def _parse_canonical(text: str | bytes, name: str) -> Any:
    """Parse stored JSON text that must be canonical (so no two texts mean the same row)."""
    try:
        value = json.loads(text)
        again = canonical_json(value) if isinstance(value, Mapping) else None
    except (ValueError, TypeError) as exc:
        raise _Malformed(f"{name} is not JSON: {exc}") from None
    raw = text.encode() if isinstance(text, str) else text
    if again != raw:
        raise _Malformed(f"{name} is not canonical JSON text")
    return value
