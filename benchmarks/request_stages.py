"""Where one single-row inference request's microseconds go, stage by stage, in process.

Calls the real functions of the fast path on a real app (``create_app`` on a benchmark home,
its lifespan run, the version loaded and bound to monitoring), each stage alone in a timing
loop, and the whole request through the real protocol (``GatewayHttpProtocol`` on a fake
transport, as ``benchmarks/fastpath_cpu.py`` does). Each figure is the median over
``reps`` repetitions of the mean of ``calls`` calls, in µs of the thread's CPU time
(``time.thread_time_ns``), so other processes on the machine move it little. The send
syscall is not in these figures (the fake transport drops the bytes): it is the same one
write per response as the null server's.

Used by ``benchmarks/request_cost.py``; on its own::

    python -m benchmarks.request_stages --home benchmarks/.work/homes/rf100-single --model rf100
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import uvicorn
import uvloop
from uvicorn.server import ServerState

from benchmarks.fastpath_cpu import (
    BODIES,
    FakeConnections,
    _Replies,
    _Transport,
    requests,
    serving_app,
)
from benchmarks.request_cost import STAGE_ROWS
from benchmarks.servers.null_protocol import NullProtocol
from gateway.dataplane.batcher import Batcher
from gateway.dataplane.codecs.oip import decode_infer_request
from gateway.dataplane.codecs.oip import load_json_object as parse_json
from gateway.dataplane.http.fastpath import GatewayHttpProtocol

BATCH_ROWS = 64


class _Sink:
    """A waiter that is never done and forgets what it gets (the hand-off stage)."""

    __slots__ = ()

    def done(self) -> bool:
        return False

    def set_result(self, result: Any) -> None:
        return None

    def set_exception(self, exception: BaseException) -> None:
        return None


class _ParseOnly(GatewayHttpProtocol):
    """The real protocol up to the collected body: the request is then marked answered."""

    def on_message_complete(self) -> None:
        cycle: Any = self.cycle
        b"".join(cycle.chunks)
        cycle.chunks = []
        cycle.response_complete = True


def _timed(fn: Callable[[], object], calls: int, reps: int) -> float:
    """Median over ``reps`` of the mean thread CPU µs of ``calls`` calls to ``fn``."""
    for _ in range(min(calls, 200)):
        fn()
    samples = []
    clock = time.thread_time_ns
    for _ in range(reps):
        start = clock()
        for _ in range(calls):
            fn()
        samples.append((clock() - start) / calls / 1000.0)
    return statistics.median(samples)


def _app_config(home: str) -> tuple[Any, uvicorn.Config, ServerState]:
    os.environ.setdefault("MODELGATE_ADMIN_TOKEN", "request-stages")
    return serving_app(home)


async def stage_costs(home: str, model: str, calls: int, reps: int) -> dict[str, float]:
    """µs of thread CPU per stage of one single-row request (keys of ``STAGE_ROWS``)."""
    app, config, state = _app_config(home)
    wires = requests(model, BODIES)
    wire = wires[0]
    body = wire.split(b"\r\n\r\n", 1)[1]
    replies = _Replies()
    out: dict[str, float] = {}
    async with app.router.lifespan_context(app):
        protocol = _ParseOnly(config=config, server_state=state, app_state={})
        protocol.connection_made(_Transport(replies))  # type: ignore[arg-type]
        out["http"] = _timed(lambda: protocol.data_received(wire), calls, reps)
        cycle: Any = protocol.cycle
        route_def = cycle.route_def
        variant = route_def.holder.current.models[model].routes[0]
        sig = variant.signature

        cycle.admit(body)
        decode = _timed(lambda: decode_infer_request(body, None, sig), calls, reps)
        out["json"] = _timed(lambda: parse_json(body, "request body"), calls, reps)
        out["decode"] = max(0.0, decode - out["json"])

        def admit_without_decoding() -> None:
            # what admit() does besides decoding: the snapshot read and the precedence rules
            # (``choose``), the request id, on the real request object
            cycle.request_id = None
            cycle.admit(body)

        out["route"] = max(0.0, _timed(admit_without_decoding, calls, reps) - decode)
        request = cycle.request
        feeds, n_rows = request.feeds, request.n_rows
        runner = variant.runner
        outputs = runner.run(feeds)
        out["ort"] = _timed(lambda: runner.run(feeds), calls, reps)
        # what one row costs in the batches 64 connections make (extra key, not a stage):
        # the 64 different rows wrk sends (one row 64 times would take one path per tree)
        decoded = [decode_infer_request(w.split(b"\r\n\r\n", 1)[1], None, sig) for w in wires]
        rows = {k: np.concatenate([d.feeds[k] for d in decoded[:BATCH_ROWS]]) for k in feeds}
        out["ort_row_in_batch"] = _timed(lambda: runner.run(rows), calls // 50, reps) / BATCH_ROWS
        batcher = variant.batcher
        out["handoff"] = await _handoff_cost(batcher, feeds, outputs, 1, calls, reps)
        out["handoff_batch"] = await _handoff_cost(batcher, feeds, outputs, BATCH_ROWS, calls, reps)
        recorder = variant.recorder
        batches = recorder.batches

        def record() -> None:
            batches.append((feeds, outputs, 20_000))  # what timed_run appends per call
            recorder.record(cycle.rule, cycle.body_id, feeds, outputs, n_rows, 50_000)

        out["monitoring"] = _timed(record, calls, reps)

        # answer() records (the stage above), then encodes and builds the reply headers
        def answer() -> None:
            batches.append((feeds, outputs, 20_000))
            cycle.answer(outputs)

        out["encode"] = max(0.0, _timed(answer, calls, reps) - out["monitoring"])
        reply = cycle._reply(200, b'{"outputs":[]}', [])
        writer = GatewayHttpProtocol(config=config, server_state=state, app_state={})
        writer.connection_made(_Transport(replies))  # type: ignore[arg-type]
        writer.cycle = cycle
        replies.left = -(10**9)  # never resolves a round here

        def write() -> None:
            cycle.response_complete = False
            writer.send_fast_reply(cycle, (reply[0], reply[1], list(reply[2])))

        out["write"] = _timed(write, calls, reps)
        for proto in (protocol, writer):
            proto.connection_lost(None)
    return out


async def _handoff_cost(
    template: Batcher, feeds: Any, outputs: Any, per_pass: int, calls: int, reps: int
) -> float:
    """The batcher's own work per request, ``per_pass`` requests merged per loop pass (the
    feeds concatenated, each request's rows sliced back), onnxruntime left out: the run
    returns outputs of the right length at once."""
    by_rows = {n: {k: np.repeat(v, n, axis=0) for k, v in outputs.items()} for n in (1, per_pass)}
    first = next(iter(feeds))
    batcher = Batcher(
        lambda merged: by_rows[len(merged[first])],
        mode=template.mode,
        batching=template.batching,
        max_batch_size=template.max_batch_size,
        max_delay_s=template.max_delay_s,
        label="stages",
    )
    sink = _Sink()
    passes = max(1, calls // per_pass)

    async def rounds(submit: bool) -> float:
        samples = []
        for _ in range(reps):
            start = time.thread_time_ns()
            for _ in range(passes):
                if submit:
                    for _ in range(per_pass):
                        batcher.submit(feeds, 1, sink)
                await asyncio.sleep(0)  # one loop pass: the dispatch runs
            samples.append((time.thread_time_ns() - start) / (passes * per_pass) / 1000.0)
        return statistics.median(samples)

    await rounds(True)
    with_batcher = await rounds(True)
    loop_pass = await rounds(False)  # the loop pass itself is not the batcher's
    return max(0.0, with_batcher - loop_pass / per_pass)


async def whole_request(
    home: str, model: str, conns: int, rounds: int, reps: int
) -> tuple[float, float]:
    """(µs of loop CPU per request through the real protocol, µs of onnxruntime per request
    in it): ``conns`` requests per loop pass, one per fake connection, as
    ``benchmarks/fastpath_cpu.py`` feeds them (its 64 request bodies in turn)."""
    app, config, state = _app_config(home)
    async with app.router.lifespan_context(app):
        wire = requests(model, BODIES)
        connections = FakeConnections(config, state, wire, conns, advance=conns)
        await connections.warm_up()
        # onnxruntime's thread CPU inside the batcher's call (the harness's own wrapper)
        batcher = app.state.gateway.holder.current.models[model].routes[0].batcher
        run, ort_ns = batcher._run, [0]

        def cpu_timed(feeds: Any) -> Any:
            start = time.thread_time_ns()
            try:
                return run(feeds)
            finally:
                ort_ns[0] += time.thread_time_ns() - start

        batcher._run = cpu_timed
        samples = await connections.cpu_per_request(rounds, reps)
        ort_us = ort_ns[0] / (reps * rounds * conns) / 1000
        connections.close()
    return statistics.median(samples), ort_us


def null_request(calls: int, reps: int) -> float:
    """µs of CPU per request of the null server's protocol (same parser, constant answer)."""
    wire = requests("x", BODIES)[0]
    protocol = NullProtocol()
    protocol.connection_made(_Transport(_Replies()))  # type: ignore[arg-type]
    protocol.transport.replies.left = -(10**9)  # type: ignore[attr-defined]
    return _timed(lambda: protocol.data_received(wire), calls, reps)


def measure_all(home: Path, model: str, calls: int, reps: int, conns: int) -> dict[str, Any]:
    """Stages, the whole request at 1 and ``conns`` requests per loop pass, the null
    server's request; all µs of CPU."""
    uvloop.install()
    stages = asyncio.run(stage_costs(str(home), model, calls, reps))
    ort_row_in_batch = stages.pop("ort_row_in_batch")
    rounds = max(20, calls // conns)
    whole_1, ort_1 = asyncio.run(whole_request(str(home), model, 1, calls, reps))
    whole_n, ort_n = asyncio.run(whole_request(str(home), model, conns, rounds, reps))
    return {
        "model": model,
        "stages_us": stages,
        # one request alone: its hand-off in a batch of one, not the 64-row figure too
        "stages_sum_us": sum(v for k, v in stages.items() if k != "handoff_batch"),
        "ort_row_in_batch_us": ort_row_in_batch,
        "batch_rows": BATCH_ROWS,
        "whole_us": {"1": whole_1, str(conns): whole_n},
        # onnxruntime's share of those (wall time of its calls, per request)
        "whole_ort_us": {"1": ort_1, str(conns): ort_n},
        "null_us": null_request(calls, reps),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", required=True, help="a modelgate home (registry)")
    parser.add_argument("--model", required=True)
    parser.add_argument("--calls", type=int, default=3000)
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--conns", type=int, default=64)
    args = parser.parse_args()
    result = measure_all(Path(args.home), args.model, args.calls, args.reps, args.conns)
    for key, label in STAGE_ROWS:
        print(f"{result['stages_us'][key]:8.2f} µs  {label}")
    print(f"{result['stages_sum_us']:8.2f} µs  sum of the stages")
    for conns, value in result["whole_us"].items():
        ort = result["whole_ort_us"][conns]
        print(
            f"{value:8.2f} µs  whole request, {conns} per loop pass ({ort:.2f} of it onnxruntime)"
        )
    batch = result["ort_row_in_batch_us"]
    print(f"{batch:8.2f} µs  onnxruntime per row in a {BATCH_ROWS}-row batch")
    print(f"{result['null_us']:8.2f} µs  null server's request")


if __name__ == "__main__":
    main()
