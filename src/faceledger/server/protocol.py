"""The HTTP/1.1 connection: uvicorn's h11 protocol with the deadlines it lacks.

uvicorn (h11 or httptools) has a keep-alive timeout between requests but no deadline for
reading a request: a client that opens a connection and sends half a header, or stops half-way
through a body, holds the connection for ever. Its ``limit_concurrency`` counts *connections*,
so a few hundred such clients made it answer 503 to everyone, ``/healthz`` included.

:class:`GuardedH11Protocol` adds, per connection:

* a **header deadline**: the request line and headers must arrive within ``header_timeout_s``
  of the connection opening (or of the previous response, on a kept-alive connection);
* a **body deadline**: no pause longer than ``body_timeout_s`` between body bytes, and the body
  must average ``body_min_rate`` bytes/s after its first ``body_timeout_s`` (a slow drip is cut
  like a stall). Time the application itself is not reading (flow control) does not count;
* a **send deadline**: a client that stops reading the answer for ``send_timeout_s`` is cut;
* a **header size cap**: a request head over ``max_header_bytes`` is answered 431 and closed;
* a **discard cap**: after an answer sent before the body was read (401, 429, 503 on the headers),
  the rest of the body is read and dropped, so the connection stays usable and the client reads
  the answer instead of a reset; past ``max_discard_bytes`` of it, the connection is closed;
* a **connection cap**: beyond ``max_connections`` open connections a new one is closed at once.

A cut connection is closed without an answer (as nginx and HAProxy do for slow clients). The
number of requests in flight is limited by the application (:class:`~.limits.RequestLimitMiddleware`),
which counts requests, not connections, and lets ``/healthz`` through.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any, ClassVar

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

__all__ = ["CUT_REASONS", "ConnectionLimits", "GuardedH11Protocol", "guarded_protocol"]

log = logging.getLogger("faceledger.server")


#: Why the server cut connections (counted per reason, see :attr:`GuardedH11Protocol.cut`).
CUT_REASONS = ("header", "body", "send", "refused", "discard")


@dataclass(frozen=True)
class ConnectionLimits:
    """Deadlines (seconds) and caps of one HTTP connection (see the module docstring)."""

    header_timeout_s: float = 10.0
    body_timeout_s: float = 15.0
    body_min_rate: int = 16 * 1024
    send_timeout_s: float = 30.0
    max_connections: int = 2048
    max_header_bytes: int = 32 * 1024
    max_discard_bytes: int = 32 * 1024 * 1024


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with header, body and send deadlines and a connection cap."""

    limits: ClassVar[ConnectionLimits] = ConnectionLimits()
    cut: ClassVar[dict[str, int]] = dict.fromkeys(CUT_REASONS, 0)
    _last_refusal_log: ClassVar[float] = 0.0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        transport = _Coalescing(transport, asyncio.get_running_loop())  # type: ignore[assignment]
        self._timer: asyncio.TimerHandle | None = None
        self._send_timer: asyncio.TimerHandle | None = None
        self._phase, self._since, self._last, self._received = "", 0.0, 0.0, 0
        self._discarded = 0
        super().connection_made(transport)
        if len(self.connections) > self.limits.max_connections:
            self._count("refused")
            now = time.monotonic()
            if now - GuardedH11Protocol._last_refusal_log > 10:
                GuardedH11Protocol._last_refusal_log = now
                log.warning("over %d open connections: new connections are closed at once",
                            self.limits.max_connections)
            transport.close()
            return
        self._update()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        if self._send_timer is not None:
            self._send_timer.cancel()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        self._last = self.loop.time()
        if self._phase == "body":
            self._received += len(data)
            if self.conn.our_state in (h11.DONE, h11.MUST_CLOSE) and self._discard(len(data)):
                return
        elif self._phase == "headers":
            end = data.find(b"\r\n\r\n")
            self._received += len(data) if end < 0 else end + 4
            if self._received > self.limits.max_header_bytes:
                self._refuse_head()
                return
        super().data_received(data)
        self._update()

    def _discard(self, size: int) -> bool:
        """Count body bytes that arrive after the answer (uvicorn drops them); True: over the cap, closed."""
        self._discarded += size
        if self._discarded <= self.limits.max_discard_bytes:
            return False
        self._count("discard")
        self.transport.close()
        return True

    def _refuse_head(self) -> None:
        """431 and close: the request line and headers are over ``max_header_bytes`` (h11 alone checks
        only what arrives in pieces)."""
        self._count("header")
        body = b"request line and headers are too large"
        self.transport.write(b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-type: text/plain\r\n"
                             b"content-length: %d\r\nconnection: close\r\n\r\n%s" % (len(body), body))
        self.transport.close()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._update()

    def pause_writing(self) -> None:
        super().pause_writing()
        if self._send_timer is None:
            self._send_timer = self.loop.call_later(self.limits.send_timeout_s, self._send_expired)

    def resume_writing(self) -> None:
        super().resume_writing()
        if self._send_timer is not None:
            self._send_timer.cancel()
            self._send_timer = None

    # -- deadlines ----------------------------------------------------------------------------------
    def _current_phase(self) -> str:
        """``headers`` (waiting for a request), ``body`` (reading one) or ``app`` (no read deadline)."""
        conn = self.conn
        if conn.their_state is h11.IDLE and conn.our_state is h11.IDLE:
            return "headers"
        if conn.their_state is h11.SEND_BODY and not self.flow.read_paused:
            return "body"
        return "app"

    def _update(self) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        phase, now = self._current_phase(), self.loop.time()
        if phase != self._phase:
            self._phase, self._since, self._last, self._received = phase, now, now, 0
            if phase == "headers":
                self._discarded = 0
        lim = self.limits
        if phase == "headers":
            self._arm(self._since + lim.header_timeout_s)
        elif phase == "body":
            self._arm(min(self._last + lim.body_timeout_s,
                          self._since + lim.body_timeout_s + self._received / lim.body_min_rate))
        else:
            self._disarm()

    def _arm(self, deadline: float) -> None:
        self._disarm()
        self._timer = self.loop.call_at(deadline, self._expired)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _expired(self) -> None:
        self._timer = None
        if self.transport.is_closing():
            return
        phase = self._current_phase()
        if phase != self._phase:      # e.g. the application paused reading: start this phase's clock
            self._update()
            return
        self._count("header" if phase == "headers" else "body")
        self.transport.close()

    def _send_expired(self) -> None:
        self._send_timer = None
        if not self.transport.is_closing() or self.flow.write_paused:
            self._count("send")
            self.transport.abort()

    @classmethod
    def _count(cls, what: str) -> None:
        cls.cut[what] = cls.cut.get(what, 0) + 1


class _Coalescing:
    """A transport whose writes made in one turn of the event loop go out in one ``send``: uvicorn writes
    a response's head and body separately, and on a busy machine every ``send`` on loopback can hand
    the CPU to the woken client. Everything else is the wrapped transport's."""

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport, self._loop, self._out = transport, loop, []  # type: list[bytes]

    def write(self, data: bytes) -> None:
        if not self._out:
            self._loop.call_soon(self._flush)
        self._out.append(bytes(data))

    def _flush(self) -> None:
        if self._out:
            data = b"".join(self._out)
            self._out.clear()
            if not self._transport.is_closing():
                self._transport.write(data)

    def get_write_buffer_size(self) -> int:
        return self._transport.get_write_buffer_size() + sum(map(len, self._out))

    def close(self) -> None:
        self._flush()
        self._transport.close()

    def abort(self) -> None:
        self._out.clear()
        self._transport.abort()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


def guarded_protocol(limits: ConnectionLimits) -> type[GuardedH11Protocol]:
    """A protocol class with these ``limits`` (uvicorn builds one protocol object per connection)."""
    attrs: dict[str, Any] = {"limits": limits, "cut": dict.fromkeys(CUT_REASONS, 0)}
    return type("FaceLedgerH11Protocol", (GuardedH11Protocol,), attrs)
