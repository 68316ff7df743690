"""What the browser tests share: screen sizes, the screenshot folder, and a live service on a data
directory that holds the test policy."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .apihelp import POLICY
from .live import LiveServer

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1200, "height": 900}


def screenshot_folder(tmp_path: Path) -> Path:
    """``$FACELEDGER_SCREENSHOTS`` (``docs/screenshots`` when refreshing them) or a temporary folder."""
    folder = Path(os.environ.get("FACELEDGER_SCREENSHOTS") or tmp_path / "shots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@contextmanager
def live_with_policy(tmp_path_factory, name: str) -> Iterator[LiveServer]:
    """A real service (one model worker) on a fresh data directory that holds the test policy."""
    data = tmp_path_factory.mktemp(name) / "faceledger"
    data.mkdir()
    (data / "policy.toml").write_text(POLICY)
    with LiveServer(data, env={"FACELEDGER_MODEL_WORKERS": "1"}) as server:
        yield server
