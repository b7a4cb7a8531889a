"""The shared inference pool: many thread-mode batchers, a fixed number of threads."""

from __future__ import annotations

import asyncio
import threading

import numpy as np
import pytest

from gateway.dataplane.batcher import Batcher
from gateway.dataplane.pool import InferencePool, default_threads
from gateway.dataplane.runner import OnnxRunner


def _pool_threads(name: str) -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith(f"{name}-")]


async def test_forty_batchers_share_the_pool_s_threads_and_get_their_own_rows(models, data):
    X, _y = data
    runners = [OnnxRunner(models["forest" if i % 2 else "logistic"][0]) for i in range(40)]
    pool = InferencePool(3, name="test-pool")
    ran_on: set[str] = set()

    def noting(run):
        def noted(feeds):
            ran_on.add(threading.current_thread().name)
            return run(feeds)

        return noted

    batchers = [
        Batcher(noting(r.run), mode="thread", max_batch_size=8, label=f"m{i}:1", pool=pool)
        for i, r in enumerate(runners)
    ]

    async def ask(i: int, row: int) -> None:
        x = X[row : row + 1 + row % 3]
        outputs = await batchers[i].infer({"input": x}, len(x))
        np.testing.assert_array_equal(outputs["label"], runners[i].run({"input": x})["label"])

    await asyncio.gather(*(ask(i, row) for row in range(0, 120, 7) for i in range(40)))
    assert ran_on <= {f"test-pool-{k}" for k in range(3)} and ran_on
    assert len(_pool_threads("test-pool")) == pool.threads == 3
    assert all(b.in_flight == 0 for b in batchers)
    for batcher in batchers:
        await batcher.aclose()
    await asyncio.to_thread(pool.close)
    assert _pool_threads("test-pool") == [] and pool.threads == 0


async def test_a_pool_starts_on_its_first_job_and_again_after_close(models, data):
    X, _y = data
    runner = OnnxRunner(models["forest"][0])
    pool = InferencePool(2, name="lazy-pool")
    batcher = Batcher(runner.run, mode="thread", label="m:1", pool=pool)
    assert pool.threads == 0  # nothing ran yet: no thread
    await batcher.infer({"input": X[:2]}, 2)
    assert pool.threads == 2 and pool.idle == 2
    await asyncio.to_thread(pool.close)
    assert pool.threads == 0
    outputs = await batcher.infer({"input": X[:3]}, 3)
    assert len(outputs["label"]) == 3 and pool.threads == 2
    await batcher.aclose()
    await asyncio.to_thread(pool.close)


def test_pool_sizes():
    assert InferencePool().size == default_threads() >= 1
    with pytest.raises(ValueError, match="at least 1 thread"):
        InferencePool(0)


async def test_one_batch_after_another_stays_on_the_worker_that_ran_the_last(models, data):
    """The worker idle last gets the next job: it has not gone to sleep yet."""
    X, _y = data
    runner = OnnxRunner(models["forest"][0])
    pool = InferencePool(3, name="hot-pool")
    ran_on: list[str] = []

    def noted(feeds):
        ran_on.append(threading.current_thread().name)
        return runner.run(feeds)

    batcher = Batcher(noted, mode="thread", label="m:1", pool=pool)
    for row in range(12):
        await batcher.infer({"input": X[row : row + 1]}, 1)
    assert len(ran_on) == 12 and len(set(ran_on)) == 1, ran_on
    await batcher.aclose()
    await asyncio.to_thread(pool.close)


async def test_batches_beyond_the_idle_workers_wait_and_all_run(models, data):
    X, _y = data
    runner = OnnxRunner(models["logistic"][0])
    pool = InferencePool(1, name="one-pool")
    batchers = [
        Batcher(runner.run, mode="thread", batching=False, label=f"m{i}:1", pool=pool)
        for i in range(8)
    ]
    replies = await asyncio.gather(
        *(b.infer({"input": X[i : i + 2]}, 2) for i, b in enumerate(batchers) for _ in range(5))
    )
    assert [len(r["label"]) for r in replies] == [2] * 40
    assert pool.threads == 1 and pool.idle == 1
    await asyncio.to_thread(pool.close)
