"""Who acts is decided by the Engine: OS users by the policy's [operators] (or the bootstrap rule),
API keys by their record; a requested role only chooses among the roles held."""

from __future__ import annotations

from pathlib import Path

import pytest

from faceledger.config import OsUser
from faceledger.engine import Actor, Engine
from faceledger.errors import InputError, PermissionDeniedError
from faceledger.governance.ledger import LedgerEntry
from faceledger.governance.policy import parse_policy
from faceledger.records import Role

ROOT, ANA, BEN = OsUser("root", 0), OsUser("ana", 1001), OsUser("ben", 1002)
OPERATORS = """
[operators]
ana = ["enroller", "reviewer"]
ben = ["investigator"]
"""
IDENTIFICATION = "[identification]\nenabled = true\n"


@pytest.fixture
def open_engine(tmp_path: Path):
    from faceledger.store import open_store

    engines = []

    def make(policy: str = "") -> Engine:
        engine = Engine(open_store(f"sqlite:///{tmp_path}/id.db"), recognizer="yunet-sface",
                        policy=parse_policy(policy))
        engines.append(engine)
        return engine

    yield make
    for e in engines:
        e.close()


def test_bootstrap_the_data_directory_owner_holds_every_role_and_nobody_else_any(open_engine):
    engine = open_engine()
    assert engine.operator_roles(ROOT, owner_uid=0) == frozenset(Role)
    assert engine.operator_roles(ANA, owner_uid=0) == frozenset()
    assert engine.operator_roles(ROOT, owner_uid=None) == frozenset()
    actor = engine.operator(ROOT, "enroller", owner_uid=0)
    assert actor == Actor("root", "enroller", credential="os:root")
    with pytest.raises(PermissionDeniedError) as refused:
        engine.operator(ANA, "enroller", owner_uid=0)
    assert refused.value.details["reason"] == "no_role" and "owner of the data directory" in refused.value.message


def test_bootstrap_under_a_policy_that_enables_identification_gives_admin_only(open_engine):
    engine = open_engine(IDENTIFICATION)
    assert engine.operator_roles(ROOT, owner_uid=0) == frozenset({Role.ADMIN})
    assert engine.operator(ROOT, owner_uid=0).role == Role.ADMIN
    with pytest.raises(PermissionDeniedError):
        engine.operator(ROOT, "investigator", owner_uid=0)


def test_operators_table_decides_and_ends_the_bootstrap(open_engine):
    engine = open_engine(OPERATORS)
    assert engine.operator_roles(ROOT, owner_uid=0) == frozenset()  # the owner is not special any more
    assert engine.operator_roles(ANA, owner_uid=0) == {Role.ENROLLER, Role.REVIEWER}
    assert engine.operator(BEN).role == Role.INVESTIGATOR  # the only role held
    assert engine.operator(ANA, default_role="reviewer").role == Role.REVIEWER
    with pytest.raises(InputError) as which:
        engine.operator(ANA, default_role="auditor")  # not held, and two others are: say which
    assert which.value.details["field"] == "role"
    with pytest.raises(PermissionDeniedError) as refused:
        engine.operator(ANA, "admin")
    assert refused.value.details["reason"] == "role_not_held" and "holds: enroller, reviewer" in refused.value.message
    with pytest.raises(InputError):
        engine.operator(ANA, "wizard")
    with pytest.raises(PermissionDeniedError):
        engine.operator(ROOT, "admin", owner_uid=0)
    with pytest.raises(PermissionDeniedError) as claim:
        engine.operator(BEN, claimed="ana")
    assert claim.value.details["reason"] == "impersonation"
    assert engine.operator(BEN, claimed="ben").id == "ben"
    refused = [LedgerEntry.from_row(r) for r in engine.store.iter_ledger()]
    assert [(e.operation, e.outcome, e.actor, e.role, e.credential, e.result["reason"]) for e in refused] == [
        ("sign_in", "refused", "ana", "admin", "os:ana", "role_not_held"),
        ("sign_in", "refused", "root", "admin", "os:root", "no_role"),
        ("sign_in", "refused", "ben", "none", "os:ben", "impersonation")]
    assert engine.verify_ledger(Actor("aud", "auditor")).ok


def test_an_api_key_acts_as_its_actor_in_its_one_role(open_engine):
    engine = open_engine()
    key, token = engine.create_key(Actor("ada", "admin"), "rita", "reviewer")
    actor = engine.key_holder(token, via=ANA)
    assert actor == Actor("rita", "reviewer", credential=f"key:{key.key_id} os:ana")
    assert engine.key_holder(token, "reviewer").credential == f"key:{key.key_id}"
    with pytest.raises(PermissionDeniedError):
        engine.key_holder(token, "admin")
    with pytest.raises(PermissionDeniedError):
        engine.key_holder(token, claimed="rob")
    signs = [LedgerEntry.from_row(r) for r in engine.store.iter_ledger() if r.fields["operation"] == "sign_in"]
    assert [(e.actor, e.role, e.credential, e.result["reason"]) for e in signs] == [
        ("rita", "admin", f"key:{key.key_id}", "role_not_held"), ("rita", "none", f"key:{key.key_id}", "impersonation")]
    with pytest.raises(PermissionDeniedError) as unknown:
        engine.key_holder("flk_000000000000_" + "A" * 43)
    assert unknown.value.details["reason"] == "unauthenticated"


def test_dual_control_holds_for_os_users_the_searcher_cannot_review(make_engine, lfw):
    """The actor id is the OS account, not something typed: ben searches, ben (also a reviewer)
    cannot confirm his own lead, ana can; the ledger names each with its credential."""
    from faceledger.errors import SelfReviewError
    from faceledger.records import AuthorizationRequest, ConsentRequest

    from .conftest import GALLERY, POLICY, photo

    engine = make_engine(POLICY + '[operators]\nada = ["admin"]\ncarl = ["enroller"]\n'
                         'ben = ["investigator", "reviewer"]\nana = ["reviewer"]\n')
    users = {name: OsUser(name, 2000 + i) for i, name in enumerate(("ada", "carl", "ben", "ana"))}
    admin, clerk = engine.operator(users["ada"]), engine.operator(users["carl"])
    engine.create_gallery(admin, GALLERY)
    engine.record_consent(clerk, ConsentRequest(GALLERY, "Aaron_Peirsol", "access_control", "v3", "signed_form"))
    engine.enroll(clerk, GALLERY, "Aaron_Peirsol", [photo(lfw, "Aaron_Peirsol", 1)], purpose="access_control")
    engine.record_authorization(admin, AuthorizationRequest("court_order", "CASE-1", "Court", [GALLERY],
                                                            ["investigation"]))
    result = engine.identify(engine.operator(users["ben"], "investigator"), GALLERY, photo(lfw, "Aaron_Peirsol", 2),
                             purpose="investigation")
    lead = result.faces[0].lead_id
    with pytest.raises(SelfReviewError):
        engine.review(engine.operator(users["ben"], "reviewer"), lead, "confirmed", "me", subject_ref="Aaron_Peirsol")
    done = engine.review(engine.operator(users["ana"]), lead, "confirmed", "same scar", subject_ref="Aaron_Peirsol")
    assert done.status.value == "confirmed"
    from faceledger.governance.ledger import LedgerEntry

    reviews = [LedgerEntry.from_row(r) for r in engine.store.iter_ledger() if r.fields["operation"] == "review"]
    assert [(e.actor, e.credential, e.outcome) for e in reviews] == [("ben", "os:ben", "refused"),
                                                                     ("ana", "os:ana", "ok")]
