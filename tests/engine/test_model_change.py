"""Moving a gallery to another model: templates go, subjects and consents stay, the ledger records it."""

from __future__ import annotations

import pytest

from faceledger.engine import Engine
from faceledger.errors import ConflictError, ModelMismatchError, PermissionDeniedError
from faceledger.governance.ledger import LedgerEntry

from .conftest import ADMIN, CLERK, GALLERY, consent, photo

pytest.importorskip("dlib", reason="the dlib extra is needed for a second model")


@pytest.fixture(scope="module")
def dlib_recognizer():
    from faceledger import Recognizer

    return Recognizer("dlib")


def test_change_model_then_re_enroll(enrolled, dlib_recognizer, lfw, clock):
    before = enrolled.store.get_gallery(GALLERY)
    other = Engine(enrolled.store, recognizer=dlib_recognizer, policy=enrolled.policy, clock=clock)
    name = "Aaron_Peirsol"
    with pytest.raises(ModelMismatchError, match="gallery set-model"):
        other.enroll(CLERK, GALLERY, name, [photo(lfw, name, 3)], purpose="access_control")
    with pytest.raises(PermissionDeniedError):
        other.change_gallery_model(CLERK, GALLERY)
    assert enrolled.store.get_gallery(GALLERY).model_id == before.model_id  # refused: nothing changed

    gallery, deleted = other.change_gallery_model(ADMIN, GALLERY)
    assert deleted == 4  # two subjects, two templates each
    assert gallery.model_id == dlib_recognizer.model_id != before.model_id
    assert gallery.dimension == 128 and gallery.thresholds and gallery.operating_point in gallery.thresholds
    assert gallery.thresholds != before.thresholds
    subject = other.store.find_subject(GALLERY, name)
    assert subject.template_count == 0  # the subject and its consent stay
    entry = LedgerEntry.from_row(list(other.store.iter_ledger())[-1])
    assert (entry.operation, entry.outcome, entry.actor) == ("gallery_model_change", "ok", ADMIN.id)
    assert entry.result["templates_deleted"] == 4 and entry.result["from_model"] == before.model_id

    with pytest.raises(ConflictError, match="already uses"):
        other.change_gallery_model(ADMIN, GALLERY)
    with pytest.raises(ModelMismatchError):  # the old engine can no longer write to it
        enrolled.enroll(CLERK, GALLERY, name, [photo(lfw, name, 1)], purpose="access_control")
    result = other.enroll(CLERK, GALLERY, name, [photo(lfw, name, 1), photo(lfw, name, 2)], purpose="access_control")
    assert result.templates_added == 2
    assert other.verify_ledger(ADMIN).ok


def test_consent_survives_the_change(enrolled, dlib_recognizer, lfw, clock):
    other = Engine(enrolled.store, recognizer=dlib_recognizer, policy=enrolled.policy, clock=clock)
    other.change_gallery_model(ADMIN, GALLERY)
    consent(other, "Someone_New")  # consents keep working with the new model
    for name in ("Padraig_Harrington",):
        assert other.enroll(CLERK, GALLERY, name, [photo(lfw, name, 1)], purpose="access_control").templates_added == 1
