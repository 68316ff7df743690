"""Every ledger entry names the credential of the actor who caused it."""

from __future__ import annotations

import pytest

from faceledger.engine import Actor
from faceledger.errors import PermissionDeniedError
from faceledger.governance.ledger import LedgerEntry

from .conftest import GALLERY


def test_every_entry_carries_the_actors_credential(engine):
    admin = Actor("ada", "admin", credential="os:ada")
    engine.create_gallery(admin, GALLERY)
    with pytest.raises(PermissionDeniedError):
        engine.create_gallery(Actor("carl", "enroller", credential="key:0123456789ab"), "other")
    engine.verify_ledger(Actor("aud", "auditor"))
    entries = [LedgerEntry.from_row(r) for r in engine.store.iter_ledger()]
    assert [(e.operation, e.outcome, e.credential) for e in entries] == [
        ("policy_change", "ok", "service"),  # a fresh ledger opens with the policy in force
        ("gallery_create", "ok", "os:ada"), ("gallery_create", "refused", "key:0123456789ab"),
        ("ledger_verify", "ok", None)]
    assert engine.verify_ledger(admin).ok
