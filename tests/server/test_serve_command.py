"""``faceledger serve`` as a user runs it: first start creates everything and prints the admin key once;
later starts reuse it all; the page and the API answer on loopback."""

from __future__ import annotations

import stat

import httpx

from .live import LiveServer, free_port


def test_first_start_creates_everything_and_later_starts_reuse_it(tmp_path, lfw):
    data = tmp_path / "fresh" / "faceledger"          # does not exist yet
    with LiveServer(data) as first:
        token = first.token
        assert token, first.output
        assert "created data directory" in first.output and "created store" in first.output
        assert "checkpoint signing key" in first.output and "Sign in at http://127.0.0.1:" in first.output
        page = httpx.get(first.url + "/")
        assert page.status_code == 200 and "FaceLedger" in page.text
        me = httpx.get(first.url + "/v1/me", headers={"Authorization": f"Bearer {token}"}).json()
        assert (me["actor"], me["role"]) == ("admin", "admin")
        assert httpx.get(first.url + "/v1/me").status_code == 401
        assert "identification is off" in first.output        # the safe default policy
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    key = data / "keys" / "checkpoint-ed25519.pem"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    pem = key.read_bytes()

    settings = tmp_path / "faceledger.toml"
    port = free_port()
    settings.write_text(f"port = {port}\nmodel_workers = 1\n")
    with LiveServer(data, "--settings", str(settings), port=port, pass_port=False) as second:
        assert second.token is None and "  created " not in second.output
        assert "Sign in with an API key created earlier" in second.output
        me = httpx.get(second.url + "/v1/me", headers={"Authorization": f"Bearer {token}"})
        assert me.status_code == 200
        assert httpx.get(second.url + "/readyz").json()["model_workers"] == 1
    assert key.read_bytes() == pem

    with LiveServer(data, "--new-admin-key") as third:
        assert third.token and third.token != token
        ledger = httpx.get(third.url + "/v1/keys", headers={"Authorization": f"Bearer {third.token}"}).json()
        assert sum(k["role"] == "admin" and k["active"] for k in ledger) == 2


def test_bad_settings_stop_the_start_with_a_clear_message(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("prot = 1\n")
    server = LiveServer(tmp_path / "d", "--settings", str(bad))
    assert server.wait_exit() == 4
    text = " ".join(server.output.split())         # the error line may be wrapped to the terminal width
    assert "unknown setting 'prot'" in text and "did you mean 'port'" in text and "invalid_config" in text
    assert "Traceback" not in text
