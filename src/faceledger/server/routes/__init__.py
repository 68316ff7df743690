"""The service's routes, one module per resource; each route parses, calls the Engine, renders."""

from __future__ import annotations

import base64

from faceledger.errors import FaceSelectionError

__all__ = ["face_choice", "jpeg_data_url"]

FACE_CHOICE_HELP = "Which face: a detection index (0 = best score), 'largest' or 'center'; empty: exactly one face."


def face_choice(value: str | None):  # noqa: ANN201 - a FaceChoice
    """A face choice from a form field: None, an index, 'largest' or 'center'."""
    if value is None or value.strip() == "":
        return None
    value = value.strip()
    if value in ("largest", "center"):
        return value
    if value.isdigit() and len(value) < 6:
        return int(value)
    raise FaceSelectionError(f"invalid face choice {value[:40]!r}: use an index, 'largest' or 'center'")


def jpeg_data_url(jpeg: bytes) -> str:
    """A JPEG as a ``data:`` URL (face crops in JSON answers; the page shows them under its CSP)."""
    return "data:image/jpeg;base64," + base64.b64encode(jpeg).decode("ascii")
