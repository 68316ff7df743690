"""Prometheus metrics, kept in memory and written in the text exposition format (version 0.0.4).

Series (all names prefixed ``faceledger_``):

* ``http_requests_total{method, route, status}`` and ``http_request_duration_seconds{method, route}``
  (a histogram); ``route`` is the route's template (``/v1/galleries/{gallery}/enroll``), never a
  raw path, so subject references never become label values.
* ``model_run_seconds{operation}``: time a model worker spent on detect, verify, enroll, identify.
* ``model_queue_depth``: requests admitted and waiting for a model worker; ``model_runs_in_progress``.
* ``overload_rejections_total``, ``rate_limited_total``, ``auth_failures_total``.
"""

from __future__ import annotations

import bisect
import threading
import time
from collections import defaultdict
from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["CONTENT_TYPE", "Metrics", "MetricsMiddleware"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
#: Latency buckets, seconds.
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
PREFIX = "faceledger_"


def _labels(names: tuple[str, ...], values: tuple[str, ...]) -> str:
    if not names:
        return ""
    esc = (v.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"') for v in values)
    return "{" + ",".join(f'{n}="{v}"' for n, v in zip(names, esc, strict=True)) + "}"


class _Histogram:
    def __init__(self, names: tuple[str, ...]) -> None:
        self.names = names
        self.counts: dict[tuple[str, ...], list[int]] = defaultdict(lambda: [0] * (len(BUCKETS) + 1))
        self.sums: dict[tuple[str, ...], float] = defaultdict(float)

    def observe(self, values: tuple[str, ...], seconds: float) -> None:
        self.counts[values][bisect.bisect_left(BUCKETS, seconds)] += 1
        self.sums[values] += seconds

    def lines(self, name: str) -> list[str]:
        out = []
        for values, counts in sorted(self.counts.items()):
            running = 0
            for bound, c in zip((*BUCKETS, float("inf")), counts, strict=True):
                running += c
                le = "+Inf" if bound == float("inf") else repr(bound)
                out.append(f"{name}_bucket{_labels((*self.names, 'le'), (*values, le))} {running}")
            out.append(f"{name}_sum{_labels(self.names, values)} {self.sums[values]:.6f}")
            out.append(f"{name}_count{_labels(self.names, values)} {running}")
        return out


class Metrics:
    """The service's counters, histograms and gauges (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests: dict[tuple[str, str, str], int] = defaultdict(int)
        self.latency = _Histogram(("method", "route"))
        self.model = _Histogram(("operation",))
        self.counters: dict[str, int] = {"overload_rejections_total": 0, "rate_limited_total": 0,
                                         "auth_failures_total": 0}
        self.gauges: dict[str, Callable[[], float]] = {}

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        with self._lock:
            self.requests[(method, route, str(status))] += 1
            self.latency.observe((method, route), seconds)

    def observe_model(self, operation: str, seconds: float) -> None:
        with self._lock:
            self.model.observe((operation,), seconds)

    def count(self, name: str) -> None:
        with self._lock:
            self.counters[name] += 1

    def render(self) -> str:
        """Every series in the Prometheus text format."""
        with self._lock:
            lines = [f"# HELP {PREFIX}http_requests_total HTTP requests by method, route template and status.",
                     f"# TYPE {PREFIX}http_requests_total counter"]
            lines += [f"{PREFIX}http_requests_total{_labels(('method', 'route', 'status'), k)} {v}"
                      for k, v in sorted(self.requests.items())]
            lines += [f"# HELP {PREFIX}http_request_duration_seconds Request latency, seconds.",
                      f"# TYPE {PREFIX}http_request_duration_seconds histogram",
                      *self.latency.lines(PREFIX + "http_request_duration_seconds"),
                      f"# HELP {PREFIX}model_run_seconds Time a model worker spent per operation, seconds.",
                      f"# TYPE {PREFIX}model_run_seconds histogram",
                      *self.model.lines(PREFIX + "model_run_seconds")]
            for name, value in sorted(self.counters.items()):
                lines += [f"# TYPE {PREFIX}{name} counter", f"{PREFIX}{name} {value}"]
        for name, read in sorted(self.gauges.items()):
            lines += [f"# TYPE {PREFIX}{name} gauge", f"{PREFIX}{name} {read():g}"]
        return "\n".join(lines) + "\n"


class MetricsMiddleware:
    """Counts and times every HTTP request by its route template."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start, status = time.perf_counter(), 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "(unmatched)"
            self.metrics.observe_request(scope["method"], template, status, time.perf_counter() - start)
