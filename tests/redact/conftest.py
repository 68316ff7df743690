"""Fixtures for redaction tests: the default detector and the photo most tests use."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def detector(engine):  # noqa: ANN001, ANN201 - the shared engine fixture
    return engine.backend.detector


@pytest.fixture(scope="session")
def multiface(groups: Path) -> Path:
    """Six faces of 70-95 px in a 1200x630 photo."""
    return groups / "facenetpytorch_multiface.jpg"
