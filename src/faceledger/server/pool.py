"""Overload control: a bounded pool of model workers, and per-key token buckets.

The engine is synchronous and OpenCV's networks keep per-call state, so each model
worker owns its own :class:`~faceledger.engine.Engine` (its own copy of the models)
over the one shared, thread-safe store. A request that needs a model takes a **place**
(:meth:`ModelPool.admit`) while fewer than ``workers + queue`` places are taken; over HTTP
it takes it as soon as its headers arrive, before its upload is read (:mod:`.admission`),
and keeps it until it is answered. With a place it then waits (in a thread, at most
``wait_s``) for an idle worker. A request is answered 503 with ``Retry-After`` at once
instead when every place is taken, or when the wait it would have, estimated from the
measured model run times, is over ``wait_s``: a client never hangs on a full server, and
a request the service cannot start in time is refused before anything is spent on it.
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

__all__ = ["ModelPool", "Place", "RateLimiter"]

E = TypeVar("E")
R = TypeVar("R")

#: Weight of the newest model run in the moving average of run times.
EWMA_WEIGHT = 0.2


class Place:
    """One taken place of a :class:`ModelPool` (see :meth:`ModelPool.admit`); :meth:`release` gives it back
    (once; later calls do nothing)."""

    def __init__(self, release: Callable[[], None]) -> None:
        self._release: Callable[[], None] | None = release

    @property
    def held(self) -> bool:
        return self._release is not None

    def release(self) -> None:
        release, self._release = self._release, None
        if release is not None:
            release()


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
        self._lock = threading.Lock()
        self.waiting = self.running = self.admitted = 0
        self.run_s: float | None = None     # moving average of model run times (None until one is measured)
        self.wait_s, self.retry_after_s, self.metrics = wait_s, retry_after_s, metrics
        metrics.gauge("model_queue_depth", "Requests admitted and waiting for a model worker.", lambda: self.waiting)
        metrics.gauge("model_runs_in_progress", "Model runs in progress.", lambda: self.running)
        metrics.gauge("model_places_taken", "Places taken in the model pool (uploading, waiting or running).",
                      lambda: self.admitted)
        metrics.gauge("model_workers", "Model workers (one engine with its own models each).", lambda: self.size)

    def overloaded(self, why: str) -> ServiceError:
        """The 503 answer (counted in ``overload_rejections_total``)."""
        self.metrics.count("overload_rejections_total")
        return ServiceError(503, "overloaded", f"the service is at capacity ({why}); retry after "
                            f"{self.retry_after_s} s", headers={"Retry-After": str(self.retry_after_s)})

    def expected_wait_s(self, ahead: int) -> float:
        """How long a request with ``ahead`` places taken before it would wait for a worker (0 when one
        is free, or before any run time is measured)."""
        if ahead < self.size or self.run_s is None:
            return 0.0
        return (ahead - self.size + 1) * self.run_s / self.size

    def admit(self) -> Place | str:
        """Take a place without waiting; else the reason there is none (for the 503's detail)."""
        with self._lock:
            if self.admitted >= self.capacity:
                return "every model worker is busy and the queue is full"
            wait = self.expected_wait_s(self.admitted)
            if wait > self.wait_s:
                return f"the wait for a model worker would be about {wait:.1f} s, over {self.wait_s:g} s"
            self.admitted += 1
        return Place(self._leave)

    def _leave(self) -> None:
        with self._lock:
            self.admitted -= 1

    def full(self) -> bool:
        """Whether every place is taken now (a hint: :meth:`admit` decides)."""
        return self.admitted >= self.capacity

    async def run(self, operation: str, fn: Callable[[E], R], place: Place | None = None) -> R:
        """``fn(worker)`` in a worker thread, on ``place`` if it is held (the caller gives it back), else on
        a place taken now and given back after; 503 :class:`ServiceError` when none is free."""
        own = None
        if place is None or not place.held:
            own = self.admit()
            if isinstance(own, str):
                raise self.overloaded(own)
        try:
            return await anyio.to_thread.run_sync(self._run, operation, fn)
        finally:
            if own is not None:
                own.release()

    def _run(self, operation: str, fn: Callable[[E], R]) -> R:
        with self._lock:
            self.waiting += 1
        try:
            worker = self._idle.get(timeout=self.wait_s)
        except queue.Empty:
            raise self.overloaded(f"no model worker was free within {self.wait_s:g} s") from None
        finally:
            with self._lock:
                self.waiting -= 1
        with self._lock:
            self.running += 1
        start = time.perf_counter()
        try:
            return fn(worker)
        finally:
            took = time.perf_counter() - start
            self.metrics.observe_model(operation, took)
            with self._lock:
                self.running -= 1
                self.run_s = took if self.run_s is None else (1 - EWMA_WEIGHT) * self.run_s + EWMA_WEIGHT * took
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
