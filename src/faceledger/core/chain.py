"""The hash chain of the ledger: canonical encoding and entry hashes (pure, no I/O).

Each ledger entry's hash is ``SHA-256(prev_hash || 0x1f || canonical_json(fields))``
where ``fields`` are the entry's fields *without* ``hash`` and ``prev_hash``, and
the canonical JSON has sorted keys, no whitespace, UTF-8, and no NaN. The first
entry's ``prev_hash`` is :data:`GENESIS` (64 zeros).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

__all__ = ["GENESIS", "canonical_json", "entry_hash"]

GENESIS = "0" * 64


def canonical_json(value: Mapping[str, Any]) -> bytes:
    """Deterministic JSON bytes for hashing (sorted keys, compact, UTF-8, finite numbers only)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


def entry_hash(prev_hash: str, fields: Mapping[str, Any]) -> str:
    """The hash of a ledger entry whose predecessor's hash is ``prev_hash``."""
    h = hashlib.sha256(prev_hash.encode("ascii"))
    h.update(b"\x1f")
    h.update(canonical_json(fields))
    return h.hexdigest()
