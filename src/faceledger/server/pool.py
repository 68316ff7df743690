"""Overload control: a bounded pool of model workers, and per-key token buckets.

The engine is synchronous and OpenCV's networks keep per-call state, so each model
worker owns its own :class:`~faceledger.engine.Engine` (its own copy of the models)
over the one shared, thread-safe store. A request that needs a model takes a **place**
(:meth:`ModelPool.admit`) while fewer than ``workers + queue`` places are taken; over HTTP
it takes it as soon as its headers arrive, before its upload is read (:mod:`.admission`),
and keeps it until it is answered. With a place it then waits (at most ``wait_s``) for a
model thread: each worker has its own thread, which runs at a lower CPU priority than the
event loop (``nice``), so that answering, refusals and probes included, is not starved by
the models. A request is answered 503 with ``Retry-After`` at once
instead when every place is taken, or when the wait it would have, estimated from the
measured model run times, is over ``wait_s``: a client never hangs on a full server, and
a request the service cannot start in time is refused before anything is spent on it.

Each model thread keeps a scratch heap between runs (:func:`keep_model_heap`): without it,
glibc gave every buffer of a run fresh pages from the kernel on a thread (about 6,000 page
faults and 40 ms of CPU per verification, a quarter of its cost).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import ctypes
import os
import queue
import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

from .metrics import Metrics
from .problems import ServiceError

__all__ = ["MODEL_HEAP_PAD", "ModelPool", "Place", "RateLimiter", "keep_model_heap"]

E = TypeVar("E")
R = TypeVar("R")

#: Weight of the newest model run in the moving average of run times.
EWMA_WEIGHT = 0.2

#: Heap that each thread's malloc arena keeps for reuse when it gives memory back (glibc's ``M_TOP_PAD``).
MODEL_HEAP_PAD = 32 * 1024 * 1024
_M_TOP_PAD = -2  # glibc's malloc.h


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
                 metrics: Metrics, nice: int = 0) -> None:
        if not workers:
            raise ValueError("a model pool needs at least one worker")
        self.size, self.nice = len(workers), nice
        self._workers = list(workers)
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
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
        self._threads = [threading.Thread(target=self._serve, args=(w,), name=f"faceledger-model-{i}", daemon=True)
                         for i, w in enumerate(self._workers)]
        for t in self._threads:
            t.start()

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

    def refusal(self) -> str | None:
        """Why a request arriving now would be refused (for the 503's detail), or None: a hint,
        :meth:`admit` decides."""
        if self.admitted >= self.capacity:
            return "every model worker is busy and the queue is full"
        wait = self.expected_wait_s(self.admitted)
        if wait > self.wait_s:
            return f"the wait for a model worker would be about {wait:.1f} s, over {self.wait_s:g} s"
        return None

    def admit(self) -> Place | str:
        """Take a place without waiting; else the reason there is none (see :meth:`refusal`)."""
        with self._lock:
            why = self.refusal()
            if why is not None:
                return why
            self.admitted += 1
        return Place(self._leave)

    def _leave(self) -> None:
        with self._lock:
            self.admitted -= 1

    def full(self) -> bool:
        """Whether every place is taken now (a hint: :meth:`admit` decides)."""
        return self.admitted >= self.capacity

    async def run(self, operation: str, fn: Callable[[E], R], place: Place | None = None) -> R:
        """``fn(worker)`` on a model thread, on ``place`` if it is held (the caller gives it back), else on
        a place taken now and given back after; 503 :class:`ServiceError` when none is free, or when no
        worker took the job within ``wait_s``."""
        own = None
        if place is None or not place.held:
            own = self.admit()
            if isinstance(own, str):
                raise self.overloaded(own)
        job = _Job(operation, fn)
        with self._lock:
            self.waiting += 1
        self._jobs.put(job)
        timer = asyncio.get_running_loop().call_later(self.wait_s, self._expire, job)
        try:
            return await asyncio.wrap_future(job.future)
        finally:
            timer.cancel()
            self._drop(job)
            if own is not None:
                own.release()

    def _expire(self, job: _Job) -> None:
        if self._drop(job):
            with contextlib.suppress(concurrent.futures.InvalidStateError):   # the request was cancelled
                job.future.set_exception(self.overloaded(f"no model worker was free within {self.wait_s:g} s"))

    def _drop(self, job: _Job) -> bool:
        """Take a job that no worker has started out of the queue (its thread will skip it)."""
        with self._lock:
            if job.state != "waiting":
                return False
            job.state = "dropped"
            self.waiting -= 1
        return True

    def _serve(self, worker: E) -> None:
        """A model thread: runs the queued jobs on its own ``worker``, at a lower CPU priority than the
        event loop's thread (see :func:`_lower_priority`), until :meth:`close`."""
        _lower_priority(self.nice)
        while (job := self._jobs.get()) is not None:
            with self._lock:
                if job.state != "waiting" or not job.future.set_running_or_notify_cancel():
                    continue
                job.state = "running"
                self.waiting -= 1
                self.running += 1
            start = time.perf_counter()
            result, error = None, None
            try:
                result = job.fn(worker)
            except BaseException as exc:  # noqa: BLE001 - handed to the awaiting request
                error = exc
            # The run's time is counted before the request is woken: its next admission sees it.
            took = time.perf_counter() - start
            self.metrics.observe_model(job.operation, took)
            with self._lock:
                self.running -= 1
                self.run_s = took if self.run_s is None else (1 - EWMA_WEIGHT) * self.run_s + EWMA_WEIGHT * took
            if error is None:
                job.future.set_result(result)
            else:
                job.future.set_exception(error)

    def workers(self) -> list[E]:
        """The workers (for start-up checks); do not run models on them outside :meth:`run`."""
        return list(self._workers)

    def close(self) -> None:
        """Stop the model threads once the jobs queued so far are done."""
        for _ in self._threads:
            self._jobs.put(None)


class _Job:
    """One model run waiting for, or running on, a model thread."""

    __slots__ = ("fn", "future", "operation", "state")

    def __init__(self, operation: str, fn: Callable[[Any], Any]) -> None:
        self.operation, self.fn, self.state = operation, fn, "waiting"
        self.future: concurrent.futures.Future[Any] = concurrent.futures.Future()


def _lower_priority(nice: int) -> None:
    """Make the calling thread ``nice`` steps nicer (Linux: per thread), so that the event loop, which
    answers probes and refusals, gets the CPU first when the model threads would take it all."""
    if nice <= 0 or not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), os.getpriority(os.PRIO_PROCESS, 0) + nice)


def keep_model_heap(pad: int = MODEL_HEAP_PAD) -> bool:
    """Let each malloc arena keep ``pad`` bytes of free heap when it trims (glibc; process-wide).

    The models' buffers of a photo (decode, detector input and outputs, crops: 0.1-1.3 MB each,
    ~25 MB per 640x480 verification) are bigger than the fixed mmap threshold that
    :mod:`faceledger.models.sface_ort` sets for bounded memory. The main thread serves them from
    the heap freed at model load; a model thread's arena starts empty, so each one was mmapped and
    unmapped, its pages faulted in anew on every run. With the pad an arena is made with ``pad``
    bytes more than it needs and keeps ``pad`` bytes free when it trims; buffers larger than what
    it keeps (a 40 MP photo's pixels) are still mapped and given back. The pad must stay under
    half of glibc's 64 MB arena heap, or new heaps get none. Returns whether the setting took
    (False without glibc)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        return bool(ctypes.CDLL("libc.so.6").mallopt(_M_TOP_PAD, pad))
    except (OSError, AttributeError):
        return False


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
