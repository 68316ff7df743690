"""Paths and the installation's owner, from one module."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from faceledger import config


def test_paths_follow_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("FACELEDGER_DATA_DIR", str(tmp_path / "d"))
    assert config.data_dir() == tmp_path / "d"
    assert config.default_store_url() == f"sqlite://{(tmp_path / 'd' / 'faceledger.db').resolve()}"
    assert config.policy_file() is None
    config.ensure_data_dir()
    assert (os.stat(tmp_path / "d").st_mode & 0o777) == 0o700
    (tmp_path / "d" / "policy.toml").write_text("")
    assert config.policy_file() == tmp_path / "d" / "policy.toml"
    assert config.policy_file("/etc/fl.toml") == Path("/etc/fl.toml")


def test_store_owner_is_the_owner_of_the_sqlite_directory_and_nobody_for_postgres(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("FACELEDGER_DATA_DIR", str(tmp_path / "absent"))
    assert config.store_owner_uid(None) is None  # no data directory yet
    (tmp_path / "db").mkdir()
    os.chown(tmp_path / "db", 4321, -1)
    assert config.store_owner_uid(f"sqlite:///{tmp_path / 'db' / 'fl.db'}") == 4321
    assert config.store_owner_uid("postgresql://u@localhost/fl") is None


def test_the_os_user_is_the_effective_one():
    me = config.current_os_user()
    assert me.uid == os.geteuid() and me.name and me.credential == f"os:{me.name}"
