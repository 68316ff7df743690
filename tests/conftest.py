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


def _photo_640x480(path: Path) -> bytes:
    """bench/load_verify.py's photos: a portrait scaled to 480x480, edges replicated to 640x480, JPEG q90."""
    import io

    import numpy as np
    from PIL import Image

    with Image.open(path) as im:
        square = np.asarray(im.convert("RGB").resize((480, 480), Image.BICUBIC))
    out = io.BytesIO()
    Image.fromarray(np.pad(square, ((0, 0), (80, 80), (0, 0)), mode="edge")).save(out, "JPEG", quality=90)
    return out.getvalue()


@pytest.fixture(scope="session")
def photo_640x480():
    """Make a 640x480 phone-style JPEG (bytes) from a portrait's path, as the service load bench sends."""
    return _photo_640x480


@pytest.fixture(scope="session")
def engine():
    from faceledger import Recognizer

    return Recognizer()
