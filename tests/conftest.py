"""Shared fixtures: where the real test photos are, and one loaded default engine.

Photos are read from ``$FACELEDGER_TESTDATA`` or ``../shared/testdata`` next to the
repository. Where that folder is absent the tests that need it skip with a clear
reason — except in CI (``CI=true``), where a missing folder is an error.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def testdata_root() -> Path:
    return Path(os.environ.get("FACELEDGER_TESTDATA") or REPO.parent / "shared" / "testdata")


@pytest.fixture(scope="session")
def testdata() -> Path:
    root = testdata_root()
    if not (root / "lfw" / "images").is_dir():
        message = f"test photos not found at {root} (set FACELEDGER_TESTDATA)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return root


@pytest.fixture(scope="session")
def lfw(testdata: Path) -> Path:
    return testdata / "lfw" / "images"


@pytest.fixture(scope="session")
def groups(testdata: Path) -> Path:
    return testdata / "groups"


@pytest.fixture(scope="session")
def engine():
    from faceledger import Recognizer

    return Recognizer()
