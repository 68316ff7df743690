"""Start-up refuses a checkpoint signing key that others can read (issue 14, row 7).

Before: the service started, and every ``POST /v1/ledger/checkpoints`` then failed with a 500.
Now the start stops with a clear message (exit code 4 from ``faceledger serve``) that says how
to fix it; with the mode put right, the same data directory starts and signs checkpoints.
"""

from __future__ import annotations

import os

import pytest

from faceledger.errors import ConfigError

from .live import LiveServer


@pytest.fixture
def insecure_dir(make_server):
    """A data directory made by a first start, whose private checkpoint key is then made 0644."""
    handle = make_server()
    key = handle.data_dir / "keys" / "checkpoint-ed25519.pem"
    os.chmod(key, 0o644)
    return handle.data_dir, key


def test_the_app_refuses_to_start_with_a_readable_checkpoint_key(insecure_dir, recognizers):
    from faceledger.server import create_app, load_settings

    data, key = insecure_dir
    conf = load_settings(env={}, data_dir=data, retention_every_hours=0)
    with pytest.raises(ConfigError) as info:
        create_app(conf, recognizers=recognizers)
    message = str(info.value)
    assert "checkpoint signing key" in message and "readable by others (mode 0644)" in message
    assert f"chmod 600 {key}" in message

    os.chmod(key, 0o600)                      # put right: the same directory starts and signs
    app = create_app(conf, recognizers=recognizers, new_admin_key=True)
    try:
        from fastapi.testclient import TestClient

        with TestClient(app) as client:
            admin = app.state.service.first_admin_token
            r = client.post("/v1/ledger/checkpoints", headers={"Authorization": f"Bearer {admin}"})
            assert r.status_code == 201, r.text
    finally:
        app.state.service.close()


def test_a_key_that_is_not_a_key_stops_the_start_too(insecure_dir, recognizers):
    from faceledger.server import create_app, load_settings

    data, key = insecure_dir
    key.write_bytes(b"-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n")
    os.chmod(key, 0o600)
    with pytest.raises(ConfigError, match="checkpoint signing key cannot be used"):
        create_app(load_settings(env={}, data_dir=data, retention_every_hours=0), recognizers=recognizers)


def test_serve_exits_4_naming_the_insecure_key(insecure_dir):
    data, key = insecure_dir
    server = LiveServer(data)
    assert server.wait_exit() == 4, server.output
    text = " ".join(server.output.split())       # the error line may be wrapped to the terminal width
    assert "invalid_config" in text and "readable by others" in text and "chmod 600" in text
    assert "Traceback" not in text and "Admin API key" not in text
