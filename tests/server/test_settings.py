"""Settings: defaults, the TOML file, FACELEDGER_* variables and overrides, in that order; clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from faceledger.errors import ConfigError
from faceledger.server.settings import Settings, load_settings


def test_defaults_are_local_and_bounded():
    s = load_settings(env={})
    assert s.host == "127.0.0.1" and s.port == 8000
    assert s.model_workers >= 1 and s.max_request_bytes >= 2 * 15 * 1024 * 1024


def test_file_then_env_then_overrides(tmp_path: Path):
    f = tmp_path / "faceledger.toml"
    f.write_text('port = 9000\nmodel_workers = 3\ndata_dir = "data"\n[server]\nrate_limit_per_minute = 60\n')
    s = load_settings(f, env={"FACELEDGER_MODEL_WORKERS": "4", "FACELEDGER_METRICS_PUBLIC": "false"})
    assert (s.port, s.model_workers, s.rate_limit_per_minute, s.metrics_public) == (9000, 4, 60, False)
    assert s.data_dir == (tmp_path / "data").resolve()
    s = load_settings(f, env={"FACELEDGER_PORT": "9100"}, port=9200)
    assert s.port == 9200
    assert load_settings(env={"FACELEDGER_SETTINGS": str(f)}).port == 9000


def test_store_and_policy_follow_the_data_dir(tmp_path: Path):
    s = Settings(data_dir=tmp_path)
    assert s.store_url == f"sqlite://{(tmp_path / 'faceledger.db').resolve()}"
    assert s.policy_file is None
    (tmp_path / "policy.toml").write_text("")
    assert s.policy_file == tmp_path / "policy.toml"


@pytest.mark.parametrize("text, key", [
    ("prot = 9000\n", "prot"),                      # misspelt: refused, with a hint
    ("port = 'eighty'\n", "port"),                  # wrong type
    ("port = 70000\n", "port"),                     # out of range
    ("model_workers = 1.5\n", "model_workers"),
    ("port = \n", None),                            # not TOML
])
def test_bad_settings_file_names_the_key(tmp_path: Path, text: str, key: str | None):
    f = tmp_path / "s.toml"
    f.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_settings(f, env={})
    if key:
        assert key in err.value.message


def test_bad_environment_value_is_refused():
    with pytest.raises(ConfigError, match="FACELEDGER_PORT"):
        load_settings(env={"FACELEDGER_PORT": "http"})
    with pytest.raises(ConfigError):
        load_settings(env={"FACELEDGER_RATE_LIMIT_BURST": "0"})


def test_missing_settings_file():
    with pytest.raises(ConfigError, match="cannot read"):
        load_settings("/nonexistent/faceledger.toml", env={})
