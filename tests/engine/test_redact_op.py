"""Redaction through the accountable engine, on real photos: ledgered, refused, fail-closed, unrecognisable."""

from __future__ import annotations

import dataclasses
import io
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from faceledger.core.redaction import RedactionStyle
from faceledger.errors import InputError, PermissionDeniedError, PurposeNotAllowedError
from faceledger.governance.ledger import LedgerEntry
from faceledger.redact import RedactOptions

from .conftest import ADMIN, REVIEWER, VERIFIER

# pytest runs with --import-mode=importlib: the redaction tests' helpers are not on sys.path.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "redact"))
from redact_helpers import RaisingDetector  # noqa: E402


def ledger(engine) -> list[LedgerEntry]:
    """The entries, without the policy_change that opens every fresh ledger."""
    return [e for e in map(LedgerEntry.from_row, engine.store.iter_ledger()) if e.operation != "policy_change"]


@pytest.fixture(scope="module")
def multiface(groups: Path) -> Path:
    """Six faces of 70-95 px in a 1200x630 photo."""
    return groups / "facenetpytorch_multiface.jpg"


def test_redaction_is_ledgered_with_digests_and_counts_only(engine, multiface: Path):
    image = engine.recognizer.load(multiface)
    out = engine.redact_photo(VERIFIER, multiface, purpose="access_control")
    assert out.format == "jpeg" and out.media_type == "image/jpeg" and out.extension == "jpg"
    assert out.faces >= 5 and not out.obscured and out.error is None
    with Image.open(io.BytesIO(out.data)) as im:
        assert im.format == "JPEG" and im.size == (image.width, image.height) == (out.width, out.height)
    (entry,) = ledger(engine)
    assert (entry.operation, entry.outcome, entry.actor, entry.purpose) == ("redact", "ok", "vera", "access_control")
    assert entry.inputs == {"photo": image.sha256}
    assert entry.result["faces"] == out.faces and entry.result["obscured"] is False
    assert (entry.result["method"], entry.result["mask"], entry.result["output_format"]) == ("blur", "ellipse", "jpeg")
    assert entry.result["output_sha256"] == out.sha256 and entry.seq == out.ledger_seq
    assert not {"boxes", "box", "landmarks", "faces_boxes"} & set(entry.result)
    assert all(not isinstance(v, (list, dict)) for v in entry.result.values())  # counts and names, no geometry


def test_nothing_is_stored_but_the_ledger_entry(engine, multiface: Path, tmp_path: Path):
    out = engine.redact_photo(VERIFIER, multiface)
    assert engine.store.list_galleries() == [] and [e.operation for e in ledger(engine)] == ["redact"]
    engine.close()
    stored = b"".join(p.read_bytes() for p in tmp_path.glob("fl.db*"))   # the database and its journal files
    assert stored and out.sha256.encode() in stored
    for content in (multiface.read_bytes(), out.data):
        assert not any(content[i : i + 64] in stored for i in range(1000, len(content) - 64, 20_000))


def test_style_and_format_follow_the_options_and_the_input(engine, multiface: Path):
    rgb = np.asarray(Image.open(multiface).convert("RGB"))
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "PNG")
    options = RedactOptions(style=RedactionStyle(method="fill", mask="box", mask_scale=1.2))
    out = engine.redact_photo(VERIFIER, buf.getvalue(), options=options)
    assert out.format == "png" and out.faces >= 5
    redacted = np.asarray(Image.open(io.BytesIO(out.data)).convert("RGB"))
    assert (redacted == 0).all(axis=2).sum() > 5 * 40 * 40   # solid black boxes over the faces
    result = ledger(engine)[-1].result
    settings = (result["method"], result["mask"], result["mask_scale"], result["output_format"])
    assert settings == ("fill", "box", 1.2, "png")


def test_a_role_without_redact_is_refused_and_the_refusal_ledgered(engine, multiface: Path):
    for actor in (ADMIN, REVIEWER):
        with pytest.raises(PermissionDeniedError):
            engine.redact_photo(actor, multiface)
    with pytest.raises(PurposeNotAllowedError):
        engine.redact_photo(VERIFIER, multiface, purpose="marketing")
    with pytest.raises(InputError):
        engine.redact_photo(VERIFIER, multiface, options=RedactOptions(keep_metadata=True))
    entries = ledger(engine)
    assert [(e.actor, e.outcome, e.result["error"]) for e in entries] == [
        ("ada", "refused", "permission_denied"), ("rita", "refused", "permission_denied"),
        ("vera", "refused", "purpose_not_allowed"), ("vera", "error", "invalid_input")]
    assert all(e.operation == "redact" and e.inputs == {} for e in entries)  # refused before the photo was read


def test_detector_failure_fails_closed_and_the_ledger_says_so(engine, multiface: Path, monkeypatch):
    rec = engine.recognizer   # shared by the session: monkeypatch puts its backend back afterwards
    monkeypatch.setattr(rec, "backend", dataclasses.replace(rec.backend, detector=RaisingDetector()))
    out = engine.redact_photo(VERIFIER, multiface)
    assert out.obscured and out.faces == 0 and "simulated detector failure" in out.error
    pixels = np.asarray(Image.open(io.BytesIO(out.data)).convert("RGB")).astype(int)
    assert np.abs(pixels - pixels[0, 0]).max() <= 3   # one colour (JPEG may shift it by a step): nothing survives
    (entry,) = ledger(engine)
    assert (entry.operation, entry.outcome, entry.result["error"]) == ("redact", "error", "detection_failed")
    assert entry.result["obscured"] is True and entry.result["faces"] == 0
    assert "simulated detector failure" in entry.result["message"]


def test_redacted_faces_no_longer_verify_against_the_originals(engine, multiface: Path):
    """SFace on the same landmarks: each face of the re-encoded photo verifies, the redacted one does not."""
    rec = engine.recognizer
    original = rec.load(multiface)
    faces = rec.detect(original, quality=False)
    assert len(faces) >= 5
    out = engine.redact_photo(VERIFIER, multiface)
    redacted = rec.load(out.data)
    control = rec.load(_jpeg(original.rgb))
    threshold = rec.backend.thresholds.get(None).threshold
    for face in faces:  # one face per call: each template from its own aligned crop
        before = rec.embed(original, [face])[0].vector
        assert float(np.dot(before, rec.embed(control, [face])[0].vector)) >= threshold
        after = rec.embed(redacted, [face])[0].vector
        assert float(np.dot(before, after)) < 0.3, f"face at {face.box} still recognisable"


def _jpeg(rgb: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "JPEG", quality=92)
    return buf.getvalue()
