"""The shadow mirror's own thread: a copy never delays a primary answer, drops are counted,
comparisons stay exact, shutdown is clean. Order of events, never timing, is asserted."""

from __future__ import annotations

import asyncio
import sys
import threading

import numpy as np
import pytest

from gateway.dataplane.batcher import Batcher
from gateway.dataplane.runner import Feeds, Outputs
from gateway.dataplane.shadow import ShadowMirror, ShadowTarget, compare
from tests.gateway.dataplane.test_dataplane_shadow import direct, route_with_shadows

# a blocked shadow run gives up after this long, so a design that runs it on the event loop
# fails the order assertions instead of hanging the suite
GUARD_S = 10.0


class GatedRun:
    """A real onnxruntime call that records its start and end in ``events`` and, while
    ``blocking``, waits for ``release`` before running."""

    def __init__(self, run, events: list[str], *, blocking: bool = True) -> None:
        self._run = run
        self.events = events
        self.started = threading.Event()
        self.release = threading.Event()
        if not blocking:
            self.release.set()
        self.threads: set[int] = set()

    def __call__(self, feeds: Feeds) -> Outputs:
        self.threads.add(threading.get_ident())
        self.events.append("shadow-start")
        self.started.set()
        self.release.wait(GUARD_S)
        outputs = self._run(feeds)
        self.events.append("shadow-end")
        return outputs


def gated_shadow(make_variant, events: list[str], **kwargs):
    shadow = make_variant("forest", version="2.0.0")
    gate = GatedRun(shadow.runner.run, events, **kwargs)
    shadow.batcher = Batcher(gate, mode="inline", batching=True, max_batch_size=64, label="m:2")
    return shadow, gate


@pytest.mark.parametrize("primary_mode", ["inline", "thread"])
async def test_a_running_shadow_never_delays_a_primary_answer(data, make_variant, primary_mode):
    X, _y = data
    events: list[str] = []
    primary = make_variant("logistic", mode=primary_mode)
    shadow, gate = gated_shadow(make_variant, events)
    mirror = ShadowMirror(maxsize=64)
    stats = mirror.stats_for("m", "2.0.0")
    route = route_with_shadows(primary, [ShadowTarget(shadow, 1.0, stats)])
    mirror.start()
    try:
        outputs = await primary.batcher.infer({"input": X[:1]}, 1)
        mirror.mirror(route, {"input": X[:1]}, 1, primary, outputs)
        assert await asyncio.to_thread(gate.started.wait, GUARD_S)
        # the shadow copy is running (and blocked); every primary is still answered
        for i in range(1, 21):
            await primary.batcher.infer({"input": X[i : i + 1]}, 1)
            events.append("primary")
        gate.release.set()
        await asyncio.wait_for(mirror.join(), GUARD_S)
    finally:
        gate.release.set()
        await mirror.stop()
        await primary.batcher.aclose()
    assert events == ["shadow-start", *["primary"] * 20, "shadow-end"]
    assert threading.get_ident() not in gate.threads  # never on the event loop
    assert stats.requests == 1 and stats.errors == 0 and stats.dropped == 0


async def test_copies_are_dropped_and_counted_when_the_shadow_cannot_keep_up(data, make_variant):
    X, _y = data
    events: list[str] = []
    primary = make_variant("logistic")
    shadow, gate = gated_shadow(make_variant, events)
    mirror = ShadowMirror(maxsize=8)
    stats = mirror.stats_for("m", "2.0.0")
    route = route_with_shadows(primary, [ShadowTarget(shadow, 1.0, stats)])
    outputs = await primary.batcher.infer({"input": X[:1]}, 1)
    mirror.start()
    try:
        mirror.mirror(route, {"input": X[:1]}, 1, primary, outputs)
        assert await asyncio.to_thread(gate.started.wait, GUARD_S)
        for _ in range(8 + 5):  # the thread is busy: 8 wait, 5 find the backlog full
            mirror.mirror(route, {"input": X[:1]}, 1, primary, outputs)
        assert mirror.queued == 8
        assert (stats.mirrored, stats.dropped) == (14, 5)
        gate.release.set()
        await asyncio.wait_for(mirror.join(), GUARD_S)
    finally:
        gate.release.set()
        await mirror.stop()
    summary = stats.summary()
    assert summary["requests"] == 9 and summary["dropped"] == 5 and summary["errors"] == 0
    assert summary["mirrored"] == 14
    assert summary["drop_rate"] == pytest.approx(5 / 14)
    # the 8 that waited ran together: one onnxruntime call, not eight
    assert events.count("shadow-start") == 2


async def test_compared_copies_equal_a_direct_computation(models, data, make_variant):
    X, _y = data
    first, second = make_variant("logistic"), make_variant("logistic", version="1.1.0")
    shadow = make_variant("forest", version="2.0.0")
    mirror = ShadowMirror(maxsize=1024, batch_rows=40)  # several batches, mixed primaries
    stats = mirror.stats_for("m", "2.0.0")
    target = ShadowTarget(shadow, 1.0, stats)
    routes = {v: route_with_shadows(v, [target]) for v in (first, second)}
    expected_rows = expected_labels = expected_agreed = 0
    expected_diffs = []
    mirror.start()
    try:
        start = 0
        for i in range(60):
            n = 1 + i % 7
            rows = X[start % 300 : start % 300 + n]
            start += n
            primary = first if i % 3 else second
            outputs = await primary.batcher.infer({"input": rows}, n)
            mirror.mirror(routes[primary], {"input": rows}, n, primary, outputs)
            label_rows, agreed, diffs = compare(
                primary, outputs, shadow, direct(models, "forest", rows)
            )
            expected_rows += n
            expected_labels += label_rows
            expected_agreed += agreed
            expected_diffs.append(diffs)
        await asyncio.wait_for(mirror.join(), GUARD_S)
    finally:
        await mirror.stop()
    assert stats.requests == 60 and stats.rows == expected_rows
    assert stats.label_rows == expected_labels and stats.agreed == expected_agreed
    assert 0 < expected_agreed < expected_labels
    window = np.sort(stats._window[: stats._filled])
    np.testing.assert_array_equal(window, np.sort(np.concatenate(expected_diffs)))
    assert shadow.batcher.batched_rows == expected_rows  # the version's statistics count them
    assert 0 < shadow.batcher.batches < 60


async def test_stop_finishes_the_running_batch_and_drops_what_waits(data, make_variant):
    X, _y = data
    events: list[str] = []
    primary = make_variant("logistic")
    shadow, gate = gated_shadow(make_variant, events)
    mirror = ShadowMirror(maxsize=16)
    stats = mirror.stats_for("m", "2.0.0")
    route = route_with_shadows(primary, [ShadowTarget(shadow, 1.0, stats)])
    outputs = await primary.batcher.infer({"input": X[:1]}, 1)
    mirror.start()
    mirror.mirror(route, {"input": X[:1]}, 1, primary, outputs)
    assert await asyncio.to_thread(gate.started.wait, GUARD_S)
    for _ in range(3):
        mirror.mirror(route, {"input": X[:1]}, 1, primary, outputs)
    stopping = asyncio.create_task(mirror.stop())
    await asyncio.sleep(0)  # the stop is asked for before the running batch ends
    gate.release.set()
    await asyncio.wait_for(stopping, GUARD_S)
    assert events == ["shadow-start", "shadow-end"]
    assert (stats.requests, stats.dropped, mirror.queued) == (1, 3, 0)
    mirror.mirror(route, {"input": X[:1]}, 1, primary, outputs)  # after stop: dropped
    assert (stats.dropped, mirror.queued) == (4, 0)
    await asyncio.wait_for(mirror.join(), GUARD_S)  # nothing left outstanding


@pytest.mark.skipif(sys.platform != "linux", reason="SCHED_IDLE is Linux's")
async def test_the_shadow_thread_runs_at_idle_priority(data, make_variant):
    X, _y = data
    primary, shadow = make_variant("logistic"), make_variant("forest", version="2.0.0")
    mirror = ShadowMirror(maxsize=8)
    route = route_with_shadows(primary, [ShadowTarget(shadow, 1.0, mirror.stats_for("m", "2"))])
    mirror.start()
    try:
        outputs = await primary.batcher.infer({"input": X[:1]}, 1)
        mirror.mirror(route, {"input": X[:1]}, 1, primary, outputs)
        await asyncio.wait_for(mirror.join(), GUARD_S)
        assert mirror.priority == "idle"
    finally:
        await mirror.stop()
