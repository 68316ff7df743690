"""Fixtures of the governance tests. Builders live in ``govhelp`` (importable from the tests)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

# pytest runs with --import-mode=importlib, which does not put this folder on sys.path.
sys.path.insert(0, str(Path(__file__).resolve().parent))
from govhelp import chain  # noqa: E402

from faceledger.governance.ledger import LedgerEntry  # noqa: E402


@pytest.fixture
def entries() -> list[LedgerEntry]:
    """A valid 20-entry ledger (see :func:`govhelp.chain`)."""
    return chain(20)
