"""The data-subject access export (shared by the backends): metadata only, never vectors or photos."""

from __future__ import annotations

from typing import Any

from ._common import to_iso
from .base import Record, StoredTemplate, Subject


def export_dict(subject: Subject, templates: list[StoredTemplate], records: list[Record]) -> dict[str, Any]:
    """JSON-ready dict: the subject, its templates' metadata and the records naming it."""
    return {
        "subject": {
            "id": subject.id,
            "gallery": subject.gallery,
            "external_ref": subject.external_ref,
            "display_name": subject.display_name,
            "created_at": to_iso(subject.created_at),
        },
        "templates": [
            {
                "id": t.id,
                "source_sha256": t.source_sha256,
                "quality": t.quality,
                "created_at": to_iso(t.created_at),
                "photo_kept": t.has_photo,
            }
            for t in templates
        ],
        "records": [
            {
                "kind": r.kind,
                "record_id": r.record_id,
                "gallery": r.gallery,
                "data": r.data,
                "created_at": to_iso(r.created_at),
                "updated_at": to_iso(r.updated_at),
            }
            for r in records
        ],
    }
