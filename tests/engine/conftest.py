"""Fixtures for the accountable engine: a real SQLite store in a temp dir, a movable clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from faceledger.engine import Actor, Engine
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
