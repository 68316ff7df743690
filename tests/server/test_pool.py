"""Overload control and rate limits, isolated with fake workers and a fake clock (no models)."""

from __future__ import annotations

import os
import sys
import threading
import time

import anyio
import pytest

from faceledger.server.metrics import Metrics
from faceledger.server.pool import ModelPool, Place, RateLimiter
from faceledger.server.problems import ServiceError


def test_pool_runs_on_idle_workers_and_refuses_beyond_capacity_at_once():
    metrics = Metrics()
    pool = ModelPool(["w1", "w2"], queue_size=1, wait_s=5.0, retry_after_s=2, metrics=metrics)
    release = threading.Event()
    started = threading.Semaphore(0)
    seen: list[str] = []

    def slow(worker: str) -> str:
        seen.append(worker)
        started.release()
        release.wait(10)
        return worker

    async def main() -> list[object]:
        results: list[object] = []

        async def one() -> None:
            try:
                results.append(await pool.run("verify", slow))
            except ServiceError as exc:
                results.append(exc)

        async with anyio.create_task_group() as tg:
            for _ in range(3):            # two run, one waits in the queue
                tg.start_soon(one)
            for _ in range(2):
                await anyio.to_thread.run_sync(started.acquire)
            while pool.waiting < 1:
                await anyio.sleep(0.01)
            with anyio.fail_after(2):     # the fourth is refused at once, not after a wait
                await one()
            release.set()
        return results

    results = anyio.run(main)
    refused = [r for r in results if isinstance(r, ServiceError)]
    assert len(refused) == 1 and refused[0].status == 503 and refused[0].headers == {"Retry-After": "2"}
    assert sorted(r for r in results if isinstance(r, str)) == sorted(seen) and len(seen) == 3
    assert set(seen) == {"w1", "w2"}
    text = metrics.render()
    assert "faceledger_overload_rejections_total 1.0" in text
    assert 'faceledger_model_run_seconds_count{operation="verify"} 3.0' in text
    assert pool.waiting == 0 and pool.running == 0


def test_pool_gives_up_waiting_after_wait_s():
    pool = ModelPool(["only"], queue_size=5, wait_s=0.2, retry_after_s=1, metrics=Metrics())
    hold = threading.Event()

    async def main() -> ServiceError | None:
        async with anyio.create_task_group() as tg:
            tg.start_soon(pool.run, "enroll", lambda w: hold.wait(5))
            while pool.running < 1:
                await anyio.sleep(0.01)
            try:
                await pool.run("enroll", lambda w: None)
            except ServiceError as exc:
                hold.set()
                return exc
            hold.set()
        return None

    err = anyio.run(main)
    assert err is not None and err.status == 503 and "within 0.2 s" in err.detail


def test_worker_exceptions_propagate_and_the_worker_returns_to_the_pool():
    pool = ModelPool(["w"], queue_size=0, wait_s=1, retry_after_s=1, metrics=Metrics())

    def boom(w: str) -> None:
        raise ValueError("model failed")

    with pytest.raises(ValueError):
        anyio.run(pool.run, "detect", boom)
    assert anyio.run(pool.run, "detect", lambda w: w) == "w"


def test_admission_is_bounded_by_places_and_by_the_wait_estimated_from_run_times():
    pool = ModelPool(["w1", "w2"], queue_size=10, wait_s=1.0, retry_after_s=1, metrics=Metrics())
    places = [pool.admit() for _ in range(4)]        # no run measured yet: only the places bound admission
    assert all(isinstance(p, Place) for p in places) and pool.admitted == 4
    anyio.run(pool.run, "verify", lambda w: time.sleep(0.05))      # one run measured: the estimate starts
    assert pool.run_s is not None and pool.run_s >= 0.05
    pool.run_s = 0.5                                 # as if runs took 0.5 s: 2 workers finish one per 0.25 s
    assert pool.expected_wait_s(1) == 0.0 and pool.expected_wait_s(5) == 1.0
    assert isinstance(pool.admit(), Place)           # 4 ahead: waits 0.75 s
    assert isinstance(pool.admit(), Place)           # 5 ahead: waits 1.0 s, within wait_s
    why = pool.admit()                               # 6 ahead: 1.25 s, refused now rather than after waiting
    assert isinstance(why, str) and "about 1.2 s, over 1 s" in why and pool.admitted == 6
    assert pool.refusal() == why
    places[0].release()
    places[0].release()                              # a place is given back once
    assert pool.admitted == 5


def test_a_held_place_is_used_and_not_taken_twice():
    pool = ModelPool(["w"], queue_size=0, wait_s=1, retry_after_s=3, metrics=Metrics())
    place = pool.admit()
    assert isinstance(place, Place) and pool.full()
    assert anyio.run(pool.run, "detect", lambda w: w, place) == "w"    # runs on its own place
    with pytest.raises(ServiceError) as refused:                           # no place left for anyone else
        anyio.run(pool.run, "detect", lambda w: w)
    assert refused.value.status == 503 and refused.value.headers == {"Retry-After": "3"}
    assert pool.admitted == 1
    place.release()
    assert not pool.full() and anyio.run(pool.run, "detect", lambda w: w) == "w" and pool.admitted == 0


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread nice values are Linux's")
def test_model_threads_run_nicer_than_the_event_loop_and_stop_on_close():
    own = os.getpriority(os.PRIO_PROCESS, 0)
    pool = ModelPool(["w"], queue_size=0, wait_s=1, retry_after_s=1, metrics=Metrics(), nice=5)
    assert anyio.run(pool.run, "detect", lambda w: os.getpriority(os.PRIO_PROCESS, 0)) == min(19, own + 5)
    assert os.getpriority(os.PRIO_PROCESS, 0) == own          # the caller's thread is untouched
    pool.close()
    for t in pool._threads:
        t.join(5)
        assert not t.is_alive()


def test_token_bucket():
    now = [0.0]
    limiter = RateLimiter(per_minute=60, burst=3, clock=lambda: now[0])
    assert [limiter.take("k") for _ in range(3)] == [0, 0, 0]
    assert limiter.take("k") == 1               # empty: one token a second
    assert limiter.take("other") == 0           # buckets are per key
    now[0] += 1.0
    assert limiter.take("k") == 0
    assert RateLimiter(0, 1).take("k") == 0     # 0 turns the limit off
