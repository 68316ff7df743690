"""Data-subject access export: everything held about one subject, as JSON-able data.

Given the subject's consent records, the metadata of its templates (never the vectors)
and the ledger, :func:`subject_export` assembles the answer to an access request
(GDPR Art. 15, BIPA disclosure): who holds the data, under which policy, on which
legal basis, which templates exist, and every ledger entry that names the subject,
either as the entry's subject or as a search candidate. Other subjects named in the
same entries (other candidates of a search) are replaced by ``"(another subject)"``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from faceledger.errors import InputError
from faceledger.governance._time import to_iso
from faceledger.governance.consent import ART9_CONDITIONS, ConsentRecord
from faceledger.governance.ledger import LedgerEntry, check_entry_data
from faceledger.governance.policy import Policy

__all__ = ["EXPORT_FORMAT", "OTHER_SUBJECT", "subject_export"]

EXPORT_FORMAT = "faceledger-subject-export/1"
OTHER_SUBJECT = "(another subject)"


def subject_export(
    subject_ref: str,
    consents: Iterable[ConsentRecord],
    templates: Iterable[Mapping[str, Any]],
    entries: Iterable[LedgerEntry | Any],
    policy: Policy,
    at: datetime,
) -> dict[str, Any]:
    """The export for ``subject_ref`` generated at ``at``.

    ``templates`` are metadata dicts (id, gallery, model id, created time, photo
    digest, ...); anything that looks like a vector or encoded data is refused
    (:class:`InputError`), as in ledger entries. ``entries`` may be ledger entries or
    storage rows; only those naming the subject are kept, in ledger order.
    """
    if not subject_ref:
        raise InputError("a subject reference is required")
    own_consents = [c for c in consents if c.subject_ref == subject_ref]
    metadata = [check_entry_data({}, dict(t))[1] for t in templates]
    named = []
    for item in entries:
        e = item if isinstance(item, LedgerEntry) else LedgerEntry.from_row(item)
        if e.subject_ref == subject_ref or _mentions(e.result, subject_ref):
            named.append(_redacted(e.to_dict(), subject_ref))
    named.sort(key=lambda d: d["seq"])
    return {
        "format": EXPORT_FORMAT,
        "generated_at": to_iso(at),
        "subject_ref": subject_ref,
        "controller": {"organisation": policy.organisation, "complaint_channel": policy.complaint_channel},
        "policy_digest": policy.digest,
        "consents": [{**c.to_dict(), "art9_condition": ART9_CONDITIONS.get(c.legal_basis)} for c in own_consents],
        "templates": metadata,
        "ledger_entries": named,
        "notes": (
            "Templates are listed by their metadata only. The ledger never holds photos or templates; "
            "its entries are kept after erasure as the record of what was done."
        ),
    }


def _mentions(value: Any, subject_ref: str) -> bool:
    """Whether any mapping inside ``value`` has a ``*subject*`` key equal to ``subject_ref``."""
    if isinstance(value, Mapping):
        return any(("subject" in str(k) and v == subject_ref) or _mentions(v, subject_ref) for k, v in value.items())
    if isinstance(value, list | tuple):
        return any(_mentions(v, subject_ref) for v in value)
    return False


def _redacted(value: Any, subject_ref: str) -> Any:
    """A copy where every other subject's reference is replaced by :data:`OTHER_SUBJECT`."""
    if isinstance(value, Mapping):
        out = {}
        for k, v in value.items():
            if "subject" in str(k) and isinstance(v, str) and v != subject_ref:
                out[k] = OTHER_SUBJECT
            else:
                out[k] = _redacted(v, subject_ref)
        return out
    if isinstance(value, list | tuple):
        return [_redacted(v, subject_ref) for v in value]
    return value
