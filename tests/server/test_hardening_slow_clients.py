"""Slow and idle clients cannot take the service down (issue 14, row 1), on a real server over loopback.

Before: 600 connections that never finished their headers made uvicorn answer 503 to everyone
(its ``limit_concurrency`` counts connections), ``/healthz`` included, for as long as they were
held; a body that stopped half-way held its connection for minutes. Now ``faceledger serve``
cuts a connection that does not send its headers within ``header_timeout_s`` or stalls its body
for ``body_timeout_s``, and limits requests in flight (not connections), with probes exempt.
The deadlines are set short here (2 s) so the test waits seconds, not minutes.
"""

from __future__ import annotations

import contextlib
import socket
import time

import httpx
import pytest

from .live import LiveServer

HEADER_S = BODY_S = SEND_S = 2.0
HELD = 600
MAX_REQUESTS = 4


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    env = {"FACELEDGER_HEADER_TIMEOUT_S": str(HEADER_S), "FACELEDGER_BODY_TIMEOUT_S": str(BODY_S),
           "FACELEDGER_SEND_TIMEOUT_S": str(SEND_S),
           "FACELEDGER_MODEL_WORKERS": "1", "FACELEDGER_MAX_REQUESTS": str(MAX_REQUESTS),
           "FACELEDGER_RATE_LIMIT_PER_MINUTE": "0"}
    server = LiveServer(tmp_path_factory.mktemp("slow"), env=env).wait_ready()
    yield server
    assert server.stop() in (0, -15)


def _open(url_port: int, first: bytes) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", url_port), timeout=5)
    if first:
        s.sendall(first)
    return s


def _closed_by_server(s: socket.socket, within: float) -> bool:
    """Whether the server closes ``s`` within ``within`` seconds (without us sending anything more)."""
    s.settimeout(within)
    try:
        while True:
            data = s.recv(4096)
            if not data:
                return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except TimeoutError:
        return False


def _me(live: LiveServer) -> httpx.Response:
    return httpx.get(live.url + "/v1/me", headers={"Authorization": f"Bearer {live.token}"}, timeout=10)


def test_half_open_connections_do_not_block_anyone_and_are_cut(live):
    held = []
    try:
        for i in range(HELD):   # a third send nothing, the rest stop in the middle of their headers
            held.append(_open(live.port, b"" if i % 3 == 0 else b"GET /v1/me HTTP/1.1\r\nHost: x\r\nX-Slow: "))
        start = time.monotonic()
        health = httpx.get(live.url + "/healthz", timeout=5)
        me = _me(live)
        assert health.status_code == 200 and me.status_code == 200, (health.text, me.text)
        assert time.monotonic() - start < HEADER_S           # answered while all of them were held
        deadline = start + HEADER_S + 10
        still_open = [s for s in held if not _closed_by_server(s, max(0.05, deadline - time.monotonic()))]
        assert not still_open, f"{len(still_open)} of {HELD} half-open connections were not closed"
        assert time.monotonic() - start < HEADER_S + 10
    finally:
        for s in held:
            s.close()
    assert httpx.get(live.url + "/healthz", timeout=5).status_code == 200


def test_a_body_that_stops_half_way_is_cut_and_frees_its_request_slot(live, photos):
    photo = photos.lfw_photo("Aaron_Peirsol", 1)
    head = (f"POST /v1/detect HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {live.token}\r\n"
            f"Content-Type: multipart/form-data; boundary=b\r\nContent-Length: {len(photo) + 500}\r\n\r\n").encode()
    part = b'--b\r\nContent-Disposition: form-data; name="photo"; filename="a.jpg"\r\n\r\n' + photo[:1000]
    stalled = [_open(live.port, head + part) for _ in range(MAX_REQUESTS)]
    try:
        time.sleep(0.5)
        busy = _me(live)                          # every request slot is held by a stalled upload
        assert busy.status_code == 503 and busy.headers["retry-after"] and busy.json()["code"] == "overloaded"
        assert httpx.get(live.url + "/healthz", timeout=5).status_code == 200   # probes get through
        start = time.monotonic()
        assert all(_closed_by_server(s, BODY_S + 10) for s in stalled)
        assert time.monotonic() - start < BODY_S + 10
    finally:
        for s in stalled:
            s.close()
    time.sleep(0.2)
    assert _me(live).status_code == 200           # the slots are free again
    ok = httpx.post(live.url + "/v1/detect", headers={"Authorization": f"Bearer {live.token}"},
                    files={"photo": ("a.jpg", photo, "image/jpeg")}, timeout=60)
    assert ok.status_code in (200, 403), ok.text  # a whole upload is read and reaches the engine


def test_a_slow_drip_body_is_cut_by_the_minimum_rate(live):
    head = (b"POST /v1/detect HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer flk_x\r\n"
            b"Content-Type: multipart/form-data; boundary=b\r\nContent-Length: 1000000\r\n\r\n--b\r\n")
    s = _open(live.port, head)
    start = time.monotonic()
    try:
        cut = False
        while time.monotonic() - start < BODY_S + 15:     # 10 bytes every half second: never a long pause
            try:
                s.sendall(b"x" * 10)
            except (BrokenPipeError, ConnectionResetError):
                cut = True
                break
            if _closed_by_server(s, 0.5):
                cut = True
                break
        assert cut, "a body dripping at 20 bytes/s was never cut"
    finally:
        s.close()


def test_a_kept_alive_connection_that_stops_in_its_next_request_is_cut(live):
    s = _open(live.port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    try:
        s.settimeout(5)
        assert b"200 OK" in s.recv(4096)
        s.sendall(b"GET /healthz HTTP/1.1\r\nHo")      # the next request, never finished
        start = time.monotonic()
        assert _closed_by_server(s, HEADER_S + 10)
        assert time.monotonic() - start < HEADER_S + 10
    finally:
        s.close()


def test_uvicorn_gets_the_guarded_protocol_and_no_connection_limit():
    from faceledger.cli.serve_command import uvicorn_options
    from faceledger.server import load_settings
    from faceledger.server.protocol import GuardedH11Protocol

    opts = uvicorn_options(load_settings(env={}, header_timeout_s=3, max_connections=100))
    assert issubclass(opts["http"], GuardedH11Protocol) and opts["limit_concurrency"] is None
    assert opts["http"].limits.header_timeout_s == 3 and opts["http"].limits.max_connections == 100


@pytest.mark.parametrize("request_bytes", [
    b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Huge: " + b"a" * 100_000 + b"\r\n\r\n",       # one huge header
    b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + b"X-Many: 1\r\n" * 5000 + b"\r\n",             # very many
    b"GET /" + b"p" * 70_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",                                  # a huge target
    b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 200,                                 # TLS to plain HTTP
])
def test_oversized_or_garbled_request_heads_are_refused_at_once(live, request_bytes):
    s = _open(live.port, b"")
    try:
        start = time.monotonic()
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):   # refused while sending: as good
            s.sendall(request_bytes)
        s.settimeout(5)
        try:
            answer = s.recv(4096)
        except ConnectionResetError:
            answer = b""
        assert answer == b"" or answer.startswith(b"HTTP/1.1 4"), answer[:200]
        assert _closed_by_server(s, 5) and time.monotonic() - start < 5
    finally:
        s.close()
    assert httpx.get(live.url + "/healthz", timeout=5).status_code == 200


def test_a_client_that_stops_reading_its_answers_is_cut(live):
    """400 pipelined requests for the OpenAPI document, never read: the server's send buffer fills,
    and the connection is cut after the send deadline instead of holding its task for ever."""
    size = len(httpx.get(live.url + "/openapi.json", timeout=10).content)
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect(("127.0.0.1", live.port))
    try:
        s.sendall(b"GET /openapi.json HTTP/1.1\r\nHost: x\r\n\r\n" * 400)
        time.sleep(SEND_S + 3)                        # read nothing meanwhile
        received, start = 0, time.monotonic()
        s.settimeout(10)
        with contextlib.suppress(ConnectionResetError):
            while chunk := s.recv(65536):
                received += len(chunk)
        assert time.monotonic() - start < 10           # the stream ended: the server cut it
        assert received < 400 * size / 2, (received, 400 * size)
    finally:
        s.close()
    assert httpx.get(live.url + "/healthz", timeout=5).status_code == 200


def test_the_connection_cap_closes_new_connections_at_once(tmp_path):
    env = {"FACELEDGER_MAX_CONNECTIONS": "16", "FACELEDGER_HEADER_TIMEOUT_S": str(HEADER_S),
           "FACELEDGER_MODEL_WORKERS": "1"}
    with LiveServer(tmp_path / "cap", env=env) as server:
        held = [_open(server.port, b"") for _ in range(16)]
        try:
            extra = _open(server.port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            assert _closed_by_server(extra, 2)     # over the cap: closed without an answer
            extra.close()
        finally:
            for s in held:
                s.close()
        time.sleep(0.5)
        assert httpx.get(server.url + "/healthz", timeout=5).status_code == 200


def test_the_cuts_are_counted_in_the_metrics(live):
    text = httpx.get(live.url + "/metrics", timeout=5).text
    counts = {line.split()[0]: float(line.split()[1]) for line in text.splitlines()
              if line.startswith("faceledger_connections_cut_")}
    assert counts["faceledger_connections_cut_header"] >= HELD and counts["faceledger_connections_cut_body"] >= 1
    assert counts["faceledger_connections_cut_send"] >= 1, counts


def test_cut_clients_leave_no_traceback_in_the_log(live):
    assert "Traceback" not in live.output, live.output[-3000:]
