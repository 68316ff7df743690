"""Overload control and rate limits, isolated with fake workers and a fake clock (no models)."""

from __future__ import annotations

import threading

import anyio
import pytest

from faceledger.server.metrics import Metrics
from faceledger.server.pool import ModelPool, RateLimiter
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


def test_token_bucket():
    now = [0.0]
    limiter = RateLimiter(per_minute=60, burst=3, clock=lambda: now[0])
    assert [limiter.take("k") for _ in range(3)] == [0, 0, 0]
    assert limiter.take("k") == 1               # empty: one token a second
    assert limiter.take("other") == 0           # buckets are per key
    now[0] += 1.0
    assert limiter.take("k") == 0
    assert RateLimiter(0, 1).take("k") == 0     # 0 turns the limit off
