"""Overload is refused on the request's headers, and the connection survives the refusal (issue 14),
on a real ``faceledger serve`` over loopback with raw sockets (so the test sees exactly what was sent
before the answer came).

The server has one model worker and no queue: one model request in progress takes the only place.
A refused request's body is then sent *after* its answer was read: the answer cannot have waited for
the body, and a request on the same connection afterwards shows it was not reset.
"""

from __future__ import annotations

import contextlib
import json
import socket
import time

import httpx
import pytest

from .live import LiveServer

BODY_S = 4.0
MAX_BODY = 256 * 1024


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    env = {"FACELEDGER_MODEL_WORKERS": "1", "FACELEDGER_MODEL_QUEUE": "0", "FACELEDGER_RATE_LIMIT_PER_MINUTE": "0",
           "FACELEDGER_BODY_TIMEOUT_S": str(BODY_S), "FACELEDGER_HEADER_TIMEOUT_S": "5",
           "FACELEDGER_MAX_REQUEST_BYTES": str(MAX_BODY), "FACELEDGER_RETRY_AFTER_S": "2"}
    server = LiveServer(tmp_path_factory.mktemp("overload"), env=env).wait_ready()
    yield server
    assert server.stop() in (0, -15)
    assert "Traceback" not in server.output, server.output[-3000:]


def _upload(token: str | None, photo: bytes, path: str = "/v1/detect") -> tuple[bytes, bytes]:
    """(request head, body) of a multipart photo upload."""
    body = (b'--b\r\nContent-Disposition: form-data; name="photo"; filename="a.jpg"\r\n'
            b"Content-Type: image/jpeg\r\n\r\n" + photo + b"\r\n--b--\r\n")
    auth = f"Authorization: Bearer {token}\r\n" if token is not None else ""
    head = (f"POST {path} HTTP/1.1\r\nHost: x\r\n{auth}Content-Type: multipart/form-data; boundary=b\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode()
    return head, body


def _connect(port: int, first: bytes = b"") -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port), timeout=15)
    if first:
        s.sendall(first)
    return s


def _answer(s: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """One whole HTTP answer read from ``s``: (status, headers in lower case, body)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(65536)
        assert chunk, f"connection closed without an answer after {data!r}"
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v for k, _, v in (line.partition(": ") for line in lines[1:])}
    size = int(headers.get("content-length", "0"))
    while len(rest) < size:
        chunk = s.recv(65536)
        assert chunk, "connection closed in the middle of an answer"
        rest += chunk
    return int(lines[0].split()[1]), headers, rest[:size]


def _healthz_on(s: socket.socket) -> int:
    s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    return _answer(s)[0]


def _places_taken(live: LiveServer) -> float:
    text = httpx.get(live.url + "/metrics", timeout=10).text
    return float(next(line.split()[1] for line in text.splitlines()
                      if line.startswith("faceledger_model_places_taken")))


def _wait_places(live: LiveServer, n: int, within: float = 20.0) -> None:
    deadline = time.monotonic() + within
    while _places_taken(live) != n:
        assert time.monotonic() < deadline, f"model places taken stayed {_places_taken(live)}, not {n}"
        time.sleep(0.05)


@contextlib.contextmanager
def _holding_the_only_place(live: LiveServer, photo: bytes):
    """A model request whose upload is half sent: it holds the pool's only place until it is finished."""
    head, body = _upload(live.token, photo)
    holder = _connect(live.port, head + body[:500])
    try:
        _wait_places(live, 1)
        yield holder, body[500:]
    finally:
        holder.close()


def test_a_full_pool_answers_503_with_retry_after_before_the_body_and_keeps_the_connection(live, photos):
    photo = photos.lfw_photo("Aaron_Peirsol", 1)
    with _holding_the_only_place(live, photo) as (holder, rest):
        head, body = _upload(live.token, photo)
        s = _connect(live.port, head)                    # headers only: not one byte of the body sent
        try:
            status, headers, answer = _answer(s)
            assert status == 503 and headers["retry-after"] == "2", answer
            assert json.loads(answer)["code"] == "overloaded" and "connection" not in headers
            s.sendall(body)                              # the body the client was already sending
            assert _healthz_on(s) == 200                 # same connection: read and dropped, not reset
        finally:
            s.close()
        holder.sendall(rest)
        status, _, answer = _answer(holder)
        assert status in (200, 403), answer              # the admitted request ran to its end
    _wait_places(live, 0)


def test_a_client_that_vanishes_mid_body_gives_its_place_back(live, photos):
    photo = photos.lfw_photo("Aaron_Peirsol", 2)
    with _holding_the_only_place(live, photo):
        pass                                             # closed half-way through its upload
    _wait_places(live, 0)
    head, body = _upload(live.token, photo)
    s = _connect(live.port, head + body)
    try:
        assert _answer(s)[0] in (200, 403)               # let in: the place was free again
    finally:
        s.close()


def test_a_flood_of_slow_uploads_is_refused_at_once_while_probes_and_the_api_answer(live, photos):
    """One slow upload holds the place; 200 more arrive and trickle their bodies: each is answered 503 on
    its headers, /healthz and /v1/me answer meanwhile, and the slow one is cut at the body deadline."""
    photo = photos.lfw_photo("Aaron_Peirsol", 3)
    head, body = _upload(live.token, photo)
    holder = _connect(live.port, head + body[:100])
    flood: list[socket.socket] = []
    try:
        _wait_places(live, 1)
        flood = [_connect(live.port, head + body[:100]) for _ in range(200)]
        statuses = {_answer(s)[0] for s in flood}
        assert statuses == {503}, statuses
        started = time.monotonic()
        for s in flood[:20]:                            # still trickling: the server keeps reading them
            s.sendall(body[100:200])
        assert httpx.get(live.url + "/healthz", timeout=5).status_code == 200
        me = httpx.get(live.url + "/v1/me", headers={"Authorization": f"Bearer {live.token}"}, timeout=5)
        assert me.status_code == 200 and time.monotonic() - started < BODY_S
        _wait_places(live, 0, within=BODY_S * 4)         # the stalled holder was cut, its place given back
    finally:
        for s in [holder, *flood]:
            s.close()


@pytest.mark.parametrize("token", [None, "flk_000000000000_" + "x" * 43], ids=["no key", "unknown key"])
def test_401_is_answered_before_the_body_and_keeps_the_connection(live, photos, token):
    head, body = _upload(token, photos.lfw_photo("Aaron_Peirsol", 1) * 4)
    s = _connect(live.port, head)
    try:
        status, headers, answer = _answer(s)
        assert status == 401 and headers["www-authenticate"].startswith("Bearer"), answer
        assert "connection" not in headers
        s.sendall(body)
        assert _healthz_on(s) == 200
    finally:
        s.close()


def test_an_unread_body_past_the_discard_cap_closes_the_connection(live):
    """After a 401 on the headers, a chunked body (no length to refuse up front) goes on past
    max_request_bytes: the server stops reading it and closes the connection."""
    s = _connect(live.port, b"POST /v1/detect HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                            b"Content-Type: multipart/form-data; boundary=b\r\n\r\n")
    try:
        assert _answer(s)[0] == 401
        chunk = b"%x\r\n%s\r\n" % (16384, b"x" * 16384)
        closed = False
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            for _ in range(4 * MAX_BODY // 16384):
                s.sendall(chunk)
        s.settimeout(10)
        try:
            closed = s.recv(1) == b""
        except ConnectionResetError:
            closed = True
        assert closed
    finally:
        s.close()
    text = httpx.get(live.url + "/metrics", timeout=10).text
    assert "faceledger_connections_cut_discard 1.0" in text
    assert httpx.get(live.url + "/healthz", timeout=5).status_code == 200
