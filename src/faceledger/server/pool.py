"""Overload control: a bounded pool of model workers, and per-key token buckets.

The engine is synchronous and OpenCV's networks keep per-call state, so each model
worker owns its own :class:`~faceledger.engine.Engine` (its own copy of the models)
over the one shared, thread-safe store. A request that needs a model is *admitted*
only while fewer than ``workers + queue`` are admitted; it then waits (in a thread,
at most ``wait_s``) for an idle worker. Beyond that it is answered at once with 503
and ``Retry-After``: a client never hangs on a full server.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

import anyio

from .metrics import Metrics
from .problems import ServiceError

__all__ = ["ModelPool", "RateLimiter"]

E = TypeVar("E")
R = TypeVar("R")


class ModelPool(Generic[E]):
    """Runs ``fn(worker)`` on an idle worker, in a thread, with bounded admission (see the module docstring)."""

    def __init__(self, workers: Sequence[E], *, queue_size: int, wait_s: float, retry_after_s: int,
                 metrics: Metrics) -> None:
        if not workers:
            raise ValueError("a model pool needs at least one worker")
        self.size = len(workers)
        self._idle: queue.Queue[E] = queue.Queue()
        for w in workers:
            self._idle.put(w)
        self.capacity = self.size + queue_size
        self._admission = threading.BoundedSemaphore(self.capacity)
        self._lock = threading.Lock()
        self.waiting = self.running = self.admitted = 0
        self.wait_s, self.retry_after_s, self.metrics = wait_s, retry_after_s, metrics
        metrics.gauge("model_queue_depth", "Requests admitted and waiting for a model worker.", lambda: self.waiting)
        metrics.gauge("model_runs_in_progress", "Model runs in progress.", lambda: self.running)
        metrics.gauge("model_workers", "Model workers (one engine with its own models each).", lambda: self.size)

    def _overloaded(self, why: str) -> ServiceError:
        self.metrics.count("overload_rejections_total")
        return ServiceError(503, "overloaded", f"the service is at capacity ({why}); retry after "
                            f"{self.retry_after_s} s", headers={"Retry-After": str(self.retry_after_s)})

    async def run(self, operation: str, fn: Callable[[E], R]) -> R:
        """``fn(worker)`` in a worker thread; 503 :class:`ServiceError` when the pool is full."""
        if not self._admission.acquire(blocking=False):
            raise self._overloaded("every model worker is busy and the queue is full")
        with self._lock:
            self.admitted += 1
        try:
            return await anyio.to_thread.run_sync(self._run, operation, fn)
        finally:
            with self._lock:
                self.admitted -= 1
            self._admission.release()

    def full(self) -> bool:
        """Whether every worker is busy and the queue is full now (a hint: :meth:`run` decides)."""
        return self.admitted >= self.capacity

    def _run(self, operation: str, fn: Callable[[E], R]) -> R:
        with self._lock:
            self.waiting += 1
        try:
            worker = self._idle.get(timeout=self.wait_s)
        except queue.Empty:
            raise self._overloaded(f"no model worker was free within {self.wait_s:g} s") from None
        finally:
            with self._lock:
                self.waiting -= 1
        with self._lock:
            self.running += 1
        start = time.perf_counter()
        try:
            return fn(worker)
        finally:
            self.metrics.observe_model(operation, time.perf_counter() - start)
            with self._lock:
                self.running -= 1
            self._idle.put(worker)

    def workers(self) -> list[E]:
        """The workers (for start-up checks); do not run models on them outside :meth:`run`."""
        return list(self._idle.queue)


class RateLimiter:
    """A token bucket per key: ``per_minute`` requests a minute on average, bursts of ``burst``.

    ``per_minute == 0`` turns it off. :meth:`take` returns 0 when the request may go
    ahead, else the whole seconds until a token is available.
    """

    def __init__(self, per_minute: int, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate, self.burst, self.clock = per_minute / 60.0, float(burst), clock
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, key: str) -> int:
        if self.rate <= 0:
            return 0
        now = self.clock()
        with self._lock:
            tokens, last = self._buckets.get(key, (self.burst, now))
            tokens = min(self.burst, tokens + (now - last) * self.rate)
            if tokens >= 1.0:
                self._buckets[key] = (tokens - 1.0, now)
                return 0
            self._buckets[key] = (tokens, now)
            return max(1, int((1.0 - tokens) / self.rate + 0.999))
