"""Two Engines, as two application servers, on one PostgreSQL database, with real LFW photos.

One enrols and erases; the other identifies from the gallery it holds in memory. What
one does, the other's next identification sees: a new enrolment is found, an erased
person is never returned again, and both write to the one ledger, which stays intact.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import diskfull_work
import pytest

from faceledger.engine import Actor, Engine
from faceledger.governance.authorization import Authorization
from faceledger.governance.consent import ConsentRecord
from faceledger.governance.policy import parse_policy
from faceledger.store import open_store

POLICY = parse_policy(diskfull_work.POLICY)  # identification on, generous limits
ADMIN, CLERK, INVESTIGATOR, AUDITOR = (Actor("ada", "admin"), Actor("carl", "enroller"),
                                       Actor("ines", "investigator"), Actor("aud", "auditor"))
GALLERY = "staff"
PEOPLE = ("Aaron_Peirsol", "Padraig_Harrington", "Colin_Powell")


def photo(lfw: Path, name: str, n: int) -> Path:
    """The person's ``n``-th photo (1-based) in name order."""
    return sorted((lfw / name).glob("*.jpg"))[n - 1]


def enroll(engine: Engine, lfw: Path, name: str) -> None:
    now = datetime.now(UTC)
    engine.record_consent(CLERK, ConsentRecord(
        id=uuid.uuid4().hex, gallery=GALLERY, subject_ref=name, notice_version="notice-v3",
        purpose="access_control", method="signed_form", given_at=now - timedelta(minutes=1),
        collected_by=CLERK.id, expires_at=now + timedelta(days=30)))
    engine.enroll(CLERK, GALLERY, name, [photo(lfw, name, 1), photo(lfw, name, 2)], purpose="access_control")


def refs(engine: Engine, lfw: Path, name: str) -> list[str]:
    result = engine.identify(INVESTIGATOR, GALLERY, photo(lfw, name, 3), purpose="investigation")
    return [c.subject_ref for f in result.faces for c in f.candidates]


@pytest.fixture
def servers(new_pg_url: Callable[[], str], engine):  # noqa: ANN201 - engine: the session's Recognizer
    url = new_pg_url()
    a = Engine(open_store(url, sync_seconds=0), recognizer=engine, policy=POLICY)
    b = Engine(open_store(url, sync_seconds=0), recognizer=engine, policy=POLICY)
    yield a, b
    a.close()
    b.close()


def test_two_servers_on_one_database_see_each_other_s_enrolments_and_erasures(servers, lfw: Path) -> None:
    writer, searcher = servers
    writer.create_gallery(ADMIN, GALLERY)
    for name in PEOPLE[:2]:
        enroll(writer, lfw, name)
    now = datetime.now(UTC)
    searcher.record_authorization(ADMIN, Authorization(
        id=uuid.uuid4().hex, kind="court_order", reference="CASE-2026-0042", issuer="District Court",
        galleries=frozenset({GALLERY}), purposes=frozenset({"investigation"}),
        valid_from=now - timedelta(hours=1), valid_until=now + timedelta(days=1), recorded_by=ADMIN.id))
    assert refs(searcher, lfw, "Aaron_Peirsol")[:1] == ["Aaron_Peirsol"]  # the searcher now holds the gallery
    assert "Colin_Powell" not in refs(searcher, lfw, "Colin_Powell")

    enroll(writer, lfw, "Colin_Powell")  # through the other server
    assert refs(searcher, lfw, "Colin_Powell")[:1] == ["Colin_Powell"]

    assert writer.erase_subject(ADMIN, GALLERY, "Aaron_Peirsol") == 2
    assert "Aaron_Peirsol" not in refs(searcher, lfw, "Aaron_Peirsol")
    held = searcher.store.index(GALLERY)  # type: ignore[attr-defined]
    assert len(held) == 4  # two photos each of the two people left
    assert writer.verify_ledger(AUDITOR).ok and searcher.verify_ledger(AUDITOR).ok
