"""Fixtures for the accountable engine: a real SQLite store in a temp dir, a movable clock."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from faceledger.engine import Actor, Engine
from faceledger.governance.consent import ConsentRecord
from faceledger.governance.policy import parse_policy

POLICY = """
[organisation]
name = "Test Org"
complaint_channel = "privacy@example.org"

[purposes]
allowed = ["access_control", "investigation"]

[identification]
enabled = true

[limits]
max_candidates = 5
max_searches_per_actor_per_hour = 4
"""


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC).replace(microsecond=0)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kw: float) -> None:
        self.now += timedelta(**kw)


@pytest.fixture(scope="session")
def recognizer():
    from faceledger import Recognizer

    return Recognizer()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def make_engine(tmp_path: Path, recognizer, clock):
    from faceledger.store import open_store

    engines = []

    def make(policy_text: str = POLICY) -> Engine:
        store = open_store(f"sqlite:///{tmp_path}/fl.db")
        e = Engine(store, recognizer=recognizer, policy=parse_policy(policy_text), clock=clock)
        engines.append(e)
        return e

    yield make
    for e in engines:
        e.close()


@pytest.fixture
def engine(make_engine) -> Engine:
    return make_engine()


ADMIN = Actor("ada", "admin")
CLERK = Actor("carl", "enroller")
INVESTIGATOR = Actor("ines", "investigator")
REVIEWER = Actor("rita", "reviewer")
REVIEWER2 = Actor("rob", "reviewer")
AUDITOR = Actor("aud", "auditor")
VERIFIER = Actor("vera", "verifier")


GALLERY = "staff"


def photo(lfw: Path, name: str, n: int) -> Path:
    return lfw / name / f"{name}_{n:04d}.jpg"


def consent(engine, subject_ref: str, days: int = 365, purpose: str = "access_control") -> ConsentRecord:
    now = engine.now()
    record = ConsentRecord(
        id=uuid.uuid4().hex, gallery=GALLERY, subject_ref=subject_ref, notice_version="notice-v3",
        purpose=purpose, method="signed_form", given_at=now - timedelta(minutes=1),
        collected_by=CLERK.id, expires_at=now + timedelta(days=days),
    )
    return engine.record_consent(CLERK, record)


@pytest.fixture
def enrolled(engine, lfw):
    """A gallery with two consenting, enrolled people."""
    engine.create_gallery(ADMIN, GALLERY)
    for name in ("Aaron_Peirsol", "Padraig_Harrington"):
        consent(engine, name)
        engine.enroll(CLERK, GALLERY, name, [photo(lfw, name, 1), photo(lfw, name, 2)], purpose="access_control")
    return engine
