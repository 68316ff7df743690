"""The service's routes, one module per resource; each route parses, calls the Engine, renders."""

from __future__ import annotations

from faceledger.errors import FaceSelectionError

__all__ = ["face_choice"]

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
