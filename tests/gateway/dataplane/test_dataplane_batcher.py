from __future__ import annotations

import asyncio
import threading

import numpy as np
import pytest

from gateway.dataplane import batcher as batcher_module
from gateway.dataplane.batcher import Batcher, InferenceFailed, choose_mode
from gateway.dataplane.runner import OnnxRunner
from gateway.errors import ModelNotReady

MODES = ["inline", "thread"]


class Recording:
    """Wraps the real runner and records how many rows each ORT call received."""

    def __init__(self, runner: OnnxRunner) -> None:
        self.runner = runner
        self.calls: list[int] = []
        self.threads: list[str] = []

    def __call__(self, feeds):
        self.calls.append(len(feeds["input"]))
        self.threads.append(threading.current_thread().name)
        return self.runner.run(feeds)


@pytest.fixture
def runner(models) -> OnnxRunner:
    return OnnxRunner(models["forest"][0])


def _requests(data, sizes):
    X, _y = data
    out, start = [], 0
    for size in sizes:
        out.append(X[start : start + size])
        start += size
    return out


@pytest.mark.parametrize("mode", MODES)
async def test_concurrent_requests_of_mixed_sizes_each_get_exactly_their_rows(mode, runner, data):
    sizes = [1, 3, 7, 2, 1, 5, 10, 1, 4, 6, 2, 9, 1, 1, 8, 3] * 3
    recording = Recording(runner)
    batcher = Batcher(recording, mode=mode, max_batch_size=16, label="m:1")
    rows = _requests(data, sizes)
    results = await asyncio.gather(*(batcher.infer({"input": x}, len(x)) for x in rows))
    for x, outputs in zip(rows, results, strict=True):
        alone = runner.run({"input": x})
        np.testing.assert_array_equal(outputs["label"], alone["label"])
        np.testing.assert_allclose(outputs["probabilities"], alone["probabilities"], rtol=1e-6)
    # merged: fewer ORT calls than requests, none above the batch size, every row run once
    assert len(recording.calls) < len(sizes)
    assert max(recording.calls) <= 16
    assert sum(recording.calls) == sum(sizes)
    assert batcher.batched_rows == sum(sizes) and batcher.in_flight == 0
    await batcher.aclose()


@pytest.mark.parametrize("mode", MODES)
async def test_a_request_larger_than_the_batch_size_runs_alone(mode, runner, data):
    recording = Recording(runner)
    batcher = Batcher(recording, mode=mode, max_batch_size=4, label="m:1")
    big, small = _requests(data, [10, 1])
    out_big, out_small = await asyncio.gather(
        batcher.infer({"input": big}, 10), batcher.infer({"input": small}, 1)
    )
    assert len(out_big["label"]) == 10 and len(out_small["label"]) == 1
    assert sorted(recording.calls) == [1, 10]
    await batcher.aclose()


@pytest.mark.parametrize("batching", [True, False])
async def test_inline_mode_sends_an_oversized_request_to_the_worker_thread(batching, runner, data):
    recording = Recording(runner)
    batcher = Batcher(recording, mode="inline", batching=batching, max_batch_size=4, label="m")
    big, small = _requests(data, [10, 2])
    out_big, out_small = await asyncio.gather(
        batcher.infer({"input": big}, 10), batcher.infer({"input": small}, 2)
    )
    assert len(out_big["label"]) == 10 and len(out_small["label"]) == 2
    ran_on = dict(zip(recording.calls, recording.threads, strict=True))
    assert ran_on[10].startswith("ort-") and ran_on[2] == threading.current_thread().name
    await batcher.aclose()


@pytest.mark.parametrize("mode", MODES)
async def test_batching_off_runs_every_request_alone(mode, runner, data):
    recording = Recording(runner)
    batcher = Batcher(recording, mode=mode, batching=False, label="m:1")
    rows = _requests(data, [2, 3, 1, 4])
    results = await asyncio.gather(*(batcher.infer({"input": x}, len(x)) for x in rows))
    assert sorted(recording.calls) == [1, 2, 3, 4]
    assert [len(r["label"]) for r in results] == [2, 3, 1, 4]
    await batcher.aclose()


async def test_a_caller_cancelled_while_queued_is_never_run_and_strands_nobody(runner, data):
    recording = Recording(runner)
    batcher = Batcher(recording, mode="inline", label="m:1")
    a, b, c = _requests(data, [2, 3, 4])
    tasks = [asyncio.ensure_future(batcher.infer({"input": x}, len(x))) for x in (a, b, c)]
    await asyncio.sleep(0)  # every task has queued its request
    tasks[1].cancel()
    done_a, done_c = await asyncio.wait_for(asyncio.gather(tasks[0], tasks[2]), 10)
    assert tasks[1].cancelled()
    assert len(done_a["label"]) == 2 and len(done_c["label"]) == 4
    assert recording.calls == [6]
    assert batcher.in_flight == 0


async def test_a_caller_cancelled_mid_batch_does_not_strand_the_others(runner, data):
    """The worker is held inside the ORT call while one caller is cancelled."""
    started, release = threading.Event(), threading.Event()

    def gated(feeds):
        started.set()
        release.wait(10)
        return runner.run(feeds)

    loop_errors: list[dict] = []
    asyncio.get_running_loop().set_exception_handler(lambda _loop, ctx: loop_errors.append(ctx))
    batcher = Batcher(gated, mode="thread", label="m:1")
    rows = _requests(data, [1, 2, 3])
    tasks = [asyncio.ensure_future(batcher.infer({"input": x}, len(x))) for x in rows]
    await asyncio.to_thread(started.wait, 10)
    tasks[0].cancel()
    release.set()
    results = await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 10)
    assert isinstance(results[0], asyncio.CancelledError)
    assert [len(r["label"]) for r in results[1:]] == [2, 3]
    assert batcher.in_flight == 0 and loop_errors == []
    # the batcher keeps serving afterwards
    again = await batcher.infer({"input": rows[0]}, 1)
    assert len(again["label"]) == 1
    await batcher.aclose()


class Gated:
    """The real runner, with its first call held until ``release`` (the worker is busy)."""

    def __init__(self, runner: OnnxRunner) -> None:
        self.runner = runner
        self.calls: list[int] = []
        self.release = threading.Event()

    def __call__(self, feeds):
        self.calls.append(len(feeds["input"]))
        if len(self.calls) == 1:
            self.release.wait(10)
        return self.runner.run(feeds)

    async def first_call_started(self) -> None:
        for _ in range(10_000):
            if self.calls:
                return
            await asyncio.sleep(0.001)
        raise AssertionError("the first batch never started")


async def test_a_batch_dispatched_as_another_finishes_takes_half_of_the_two(runner, data):
    gated = Gated(runner)
    batcher = Batcher(gated, mode="thread", max_batch_size=64, label="m:1")
    rows = _requests(data, [1] * 16)
    first = [asyncio.ensure_future(batcher.infer({"input": x}, 1)) for x in rows[:4]]
    await gated.first_call_started()  # an idle worker takes all that is pending: 4 rows
    rest = [asyncio.ensure_future(batcher.infer({"input": x}, 1)) for x in rows[4:]]
    await asyncio.sleep(0)  # 12 rows queued behind the running batch
    gated.release.set()
    results = await asyncio.wait_for(asyncio.gather(*first, *rest), 10)
    # 12 pending + 4 answered -> at most 8; then 4 pending + 8 answered -> the last 4
    assert gated.calls == [4, 8, 4]
    for x, outputs in zip(rows, results, strict=True):
        np.testing.assert_array_equal(outputs["label"], runner.run({"input": x})["label"])
    await batcher.aclose()


async def test_the_next_batch_starts_before_the_finished_one_is_answered(runner, data, monkeypatch):
    """The handoff: the loop answers a finished batch only once the worker has started the
    batch it dispatched in its place."""
    # a slow machine must not turn the wait's timeout into a failure of this test
    monkeypatch.setattr(batcher_module, "HANDOFF_WAIT_S", 10.0)
    gated = Gated(runner)
    signals: list[int] = []  # ORT calls begun when the worker signalled a start

    class Watched(Batcher):
        def _started_signal(self) -> None:
            signals.append(len(gated.calls))
            super()._started_signal()

    class Probe:
        """A waiter that notes how many starts had been signalled when it was answered."""

        def __init__(self) -> None:
            self.outputs = None
            self.signals_then = -1
            self.answered = asyncio.Event()

        def done(self) -> bool:
            return self.outputs is not None

        def set_result(self, outputs) -> None:
            self.signals_then = len(signals)
            self.outputs = outputs
            self.answered.set()

        def set_exception(self, exception: BaseException) -> None:
            raise AssertionError(f"unexpected failure: {exception!r}")

    batcher = Watched(gated, mode="thread", label="m:1")
    a, b, c = _requests(data, [1, 1, 1])
    first, second, third = Probe(), Probe(), Probe()
    batcher.submit({"input": a}, 1, first)
    await gated.first_call_started()
    batcher.submit({"input": b}, 1, second)
    batcher.submit({"input": c}, 1, third)
    gated.release.set()
    for probe in (first, second, third):
        await asyncio.wait_for(probe.answered.wait(), 10)
    assert gated.calls == [1, 2]
    assert signals == [1]  # only the batch dispatched as the first finished waits for its start
    assert first.signals_then == 1  # answered after the second batch had started
    assert len(second.outputs["label"]) == len(third.outputs["label"]) == 1
    await batcher.aclose()


@pytest.mark.parametrize("mode", MODES)
async def test_an_ort_failure_fails_only_the_request_that_caused_it(mode, runner, data):
    recording = Recording(runner)
    batcher = Batcher(recording, mode=mode, label="m:1")
    good_a, good_b = _requests(data, [2, 3])
    wrong_width = np.zeros((1, 3), dtype=np.float32)  # the codec would refuse this
    results = await asyncio.gather(
        batcher.infer({"input": good_a}, 2),
        batcher.infer({"input": wrong_width}, 1),
        batcher.infer({"input": good_b}, 3),
        return_exceptions=True,
    )
    assert len(results[0]["label"]) == 2 and len(results[2]["label"]) == 3
    assert isinstance(results[1], InferenceFailed)
    assert results[1].status == 500 and "\n" not in str(results[1])
    await batcher.aclose()


@pytest.mark.parametrize("mode", MODES)
async def test_closing_fails_queued_requests_and_refuses_new_ones(mode, runner, data):
    batcher = Batcher(runner.run, mode=mode, max_delay_s=5.0, label="m:1")
    (x,) = _requests(data, [1])
    queued = asyncio.ensure_future(batcher.infer({"input": x}, 1))
    await asyncio.sleep(0)
    await batcher.aclose()
    with pytest.raises(ModelNotReady):
        await queued
    with pytest.raises(ModelNotReady):
        await batcher.infer({"input": x}, 1)


async def test_a_full_batch_does_not_wait_for_the_delay(runner, data):
    batcher = Batcher(runner.run, mode="thread", max_batch_size=4, max_delay_s=30.0, label="m")
    rows = _requests(data, [2, 2])
    results = await asyncio.wait_for(
        asyncio.gather(*(batcher.infer({"input": x}, 2) for x in rows)), timeout=10
    )
    assert [len(r["label"]) for r in results] == [2, 2]
    await batcher.aclose()


async def test_drain_waits_for_in_flight_requests(runner, data):
    batcher = Batcher(runner.run, mode="thread", label="m:1")
    rows = _requests(data, [3, 3])
    tasks = [asyncio.ensure_future(batcher.infer({"input": x}, 3)) for x in rows]
    await asyncio.sleep(0)
    assert batcher.in_flight == 2
    assert await batcher.drain(timeout_s=10)
    assert all(t.done() for t in tasks)
    await batcher.aclose()


def test_choose_mode():
    assert choose_mode("inline", 500.0, 60.0) == "inline"
    assert choose_mode("thread", 5.0, 60.0) == "thread"
    assert choose_mode("auto", 20.0, 60.0) == "inline"
    assert choose_mode("auto", 200.0, 60.0) == "thread"
    assert choose_mode("auto", None, 60.0) == "thread"


def test_unknown_mode_is_refused(runner):
    with pytest.raises(ValueError, match="mode"):
        Batcher(runner.run, mode="fast")
