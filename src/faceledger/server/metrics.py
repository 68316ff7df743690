"""Prometheus metrics through ``prometheus-client``, one registry per service.

The service runs as one process (uvicorn; model workers are threads, see :mod:`.pool`),
so the client's ordinary in-memory registry is the right one: its multiprocess mode is
for servers that fork worker processes, which this one does not.

Series (all names prefixed ``faceledger_``):

* ``http_requests_total{method, route, status}`` and ``http_request_duration_seconds{method, route}``
  (a histogram); ``route`` is the route's template (``/v1/galleries/{gallery}/enroll``), never a
  raw path, so subject references never become label values.
* ``model_run_seconds{operation}``: time a model worker spent on detect, verify, enroll, identify.
* ``model_queue_depth``: requests admitted and waiting for a model worker; ``model_runs_in_progress``;
  ``model_workers``.
* ``overload_rejections_total``, ``rate_limited_total``, ``auth_failures_total``.
* ``event_loop_lag_seconds``: how late the event loop ran a timer (sampled 10 times a second): a
  loop starved of CPU answers everything late, refusals included.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["CONTENT_TYPE", "Metrics", "MetricsMiddleware"]

#: What :func:`prometheus_client.generate_latest` writes: the classic text format, which every scraper reads.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
#: Latency buckets, seconds.
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
#: Event-loop lag buckets, seconds.
LAG_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
#: How often the event loop's lag is sampled, seconds.
LAG_EVERY_S = 0.1
PREFIX = "faceledger"
#: Counters a component may bump by name, with their help text (names without ``_total``).
COUNTERS = {
    "overload_rejections": "Requests refused at once because every model worker was busy and the queue full.",
    "rate_limited": "Requests refused by a key's rate limit.",
    "auth_failures": "Requests refused for a missing, unknown or revoked API key, or a role without the right.",
}


class Metrics:
    """The service's counters, histograms and gauges, in a registry of its own (so several
    services in one process, as in tests, do not share series). Thread-safe (the client's)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        reg = {"namespace": PREFIX, "registry": self.registry}
        self._requests = Counter("http_requests", "HTTP requests by method, route template and status.",
                                 ("method", "route", "status"), **reg)
        self._latency = Histogram("http_request_duration_seconds", "Request latency, seconds.",
                                  ("method", "route"), buckets=BUCKETS, **reg)
        self._loop_lag = Histogram("event_loop_lag_seconds", "How late the event loop ran a 0.1 s timer, seconds.",
                                   buckets=LAG_BUCKETS, **reg)
        self._model = Histogram("model_run_seconds", "Time a model worker spent per operation, seconds.",
                                ("operation",), buckets=BUCKETS, **reg)
        self._counters = {name: Counter(name, doc, **reg) for name, doc in COUNTERS.items()}
        self._gauges: dict[str, Gauge] = {}

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        self._requests.labels(method, route, str(status)).inc()
        self._latency.labels(method, route).observe(seconds)

    def observe_model(self, operation: str, seconds: float) -> None:
        self._model.labels(operation).observe(seconds)

    async def watch_loop(self) -> None:
        """Observe the event loop's lag for ever: sleep :data:`LAG_EVERY_S`, record how much later it woke."""
        loop = asyncio.get_running_loop()
        while True:
            start = loop.time()
            await asyncio.sleep(LAG_EVERY_S)
            self._loop_lag.observe(max(0.0, loop.time() - start - LAG_EVERY_S))

    def count(self, name: str) -> None:
        """Add one to a counter of :data:`COUNTERS` (``name`` with or without ``_total``)."""
        self._counters[name.removesuffix("_total")].inc()

    def gauge(self, name: str, doc: str, read: Callable[[], float]) -> None:
        """A gauge whose value is ``read()`` at scrape time (set again: the new reader wins)."""
        if name not in self._gauges:
            self._gauges[name] = Gauge(name, doc, namespace=PREFIX, registry=self.registry)
        self._gauges[name].set_function(read)

    def render(self) -> str:
        """Every series in the Prometheus text format (0.0.4)."""
        return generate_latest(self.registry).decode("utf-8")


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
