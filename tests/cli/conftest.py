"""Every CLI test gets its own data directory (store, keys, policy)."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def data_dir(tmp_path, monkeypatch):
    d = tmp_path / "data"
    monkeypatch.setenv("FACELEDGER_DATA_DIR", str(d))
    for name in ("FACELEDGER_STORE", "FACELEDGER_POLICY", "FACELEDGER_ACTOR", "FACELEDGER_ROLE"):
        monkeypatch.delenv(name, raising=False)
    return d
