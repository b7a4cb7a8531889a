"""Hot-swap benchmark: how fast a rollback takes effect under load, and what swaps cost.

    python -m benchmarks.swap_bench [--rollbacks 20] [--clients 8] [--steady 5]
                                    [--interval 0.5] [--workers 1] [--poll-ms 250]
                                    [--quiet-wait 30] [--out FILE]

Registers the demo model ``churn`` (1.0.0 production, 1.1.0 staging) in a fresh home,
starts ``modelgate serve``, switches production to 1.1.0 so
1.0.0 is the warm rollback target, and drives ``--clients`` closed-loop HTTP clients
(httpx, keep-alive, one process) against ``POST /predict/churn``. Then:

1. steady phase: ``--steady`` seconds with no change;
2. swap phase: ``--rollbacks`` calls of ``POST /admin/models/churn/rollback``, one every
   ``--interval`` seconds (each rollback flips production between the two versions).

Per rollback: **admin** = the admin call's own latency; **first** = from sending the call
to the first client response served by the version it rolled back to (X-Model-Version; it
includes that request's own latency); **converged** = from sending the call to the sending
of the last client request still served by the version it left (0 when none): when the
swap took effect in every worker.

Client latency p50/p99 in three groups: the steady phase, requests sent while a rollback
call was in flight ("during swaps"), and requests of the swap phase sent away from any call
("between swaps", a baseline interleaved in time, so drift hits both alike). Failed
requests (non-200 or transport error) are counted; there must be none. Client and server
share the machine: the run first waits for other CPU load to stop (``--quiet-wait``) and
reports how many cores other processes used meanwhile; compare numbers within one run.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import shlex
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import orjson

from benchmarks.machine import describe_machine
from benchmarks.procs import ServerProcess, free_port, system_busy_s, wait_for_quiet

REPO = Path(__file__).resolve().parent.parent
TOKEN = "swap-bench-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
MODEL = "churn"
# requests sent this close to a rollback call count neither as during nor as between swaps
GUARD_S = 0.1


@dataclass
class Sample:
    sent: float
    done: float
    version: str
    ok: bool


async def _prepare_home(home: Path) -> bytes:
    """Register the demo; return one request body (a plausible named row)."""
    from converters.demo import register_demo
    from gateway.cli.serve_command import example_instance
    from registry.sqlite.store import open_registry

    registry = await open_registry(home)
    try:
        versions = await register_demo(registry, actor="swap-bench")
    finally:
        await registry.close()
    row = example_instance(versions[0].schema, versions[0].reference)
    return orjson.dumps({"instances": [row]})


def start_server(home: Path, work: Path, workers: int, poll_ms: int) -> ServerProcess:
    port = free_port()
    env = {
        **os.environ,
        "MODELGATE_HOME": str(home),
        "MODELGATE_ADMIN_TOKEN": TOKEN,
        "MODELGATE_POLL_INTERVAL_MS": str(poll_ms),
    }
    argv = [sys.executable, "-m", "gateway.cli.main", "serve", "--home", str(home)]
    argv += ["--port", str(port), "--workers", str(workers)]
    server = ServerProcess("modelgate", argv, env, REPO, port)
    server.start("/v2/health/ready", timeout_s=180)
    return server


async def _client(url: str, body: bytes, samples: list[Sample], stop: asyncio.Event) -> None:
    headers = {"content-type": "application/json"}
    async with httpx.AsyncClient(base_url=url, timeout=10) as http:
        while not stop.is_set():
            sent = time.perf_counter()
            try:
                response = await http.post(f"/predict/{MODEL}", content=body, headers=headers)
                ok = response.status_code == 200
                version = response.headers.get("x-model-version", "")
            except httpx.HTTPError:
                ok, version = False, ""
            samples.append(Sample(sent, time.perf_counter(), version, ok))


def _percentiles(samples: list[Sample]) -> dict[str, float]:
    latencies = np.array([s.done - s.sent for s in samples]) * 1000.0
    if latencies.size == 0:
        return {"requests": 0, "p50_ms": float("nan"), "p99_ms": float("nan")}
    return {
        "requests": int(latencies.size),
        "p50_ms": round(float(np.percentile(latencies, 50)), 3),
        "p99_ms": round(float(np.percentile(latencies, 99)), 3),
    }


def _swap_timings(
    samples: list[Sample], t0: float, t1: float, end: float, target: str, left: str
) -> dict[str, float | None]:
    """Timings of the rollback sent at ``t0`` (answered at ``t1``); ``end``: the next one."""
    first = min(
        (s.done for s in samples if s.version == target and t0 < s.done < end), default=None
    )
    stale = [s.sent for s in samples if s.version == left and t0 < s.sent < end]
    return {
        "admin_ms": (t1 - t0) * 1000.0,
        "first_ms": (first - t0) * 1000.0 if first is not None else None,
        "converged_ms": (max(stale) - t0) * 1000.0 if stale else 0.0,
    }


def _in_any(t: float, windows: list[tuple[float, float]]) -> bool:
    return any(a <= t <= b for a, b in windows)


async def measure(url: str, body: bytes, args: argparse.Namespace) -> dict[str, Any]:
    samples: list[Sample] = []
    stop = asyncio.Event()
    clients = [asyncio.create_task(_client(url, body, samples, stop)) for _ in range(args.clients)]
    swaps: list[dict[str, Any]] = []
    try:
        async with httpx.AsyncClient(base_url=url, headers=AUTH, timeout=30) as admin:
            await asyncio.sleep(args.warmup)
            steady_start = time.perf_counter()
            await asyncio.sleep(args.steady)
            swap_start = time.perf_counter()
            for _ in range(args.rollbacks):
                t0 = time.perf_counter()
                response = await admin.post(f"/admin/models/{MODEL}/rollback")
                t1 = time.perf_counter()
                if response.status_code != 200:
                    raise SystemExit(f"rollback failed: {response.status_code} {response.text}")
                outcome = response.json()
                swaps.append(
                    {"t0": t0, "t1": t1, "target": outcome["production"],
                     "left": outcome["rollback_target"]}
                )  # fmt: skip
                await asyncio.sleep(args.interval)
            swap_end = time.perf_counter()
    finally:
        stop.set()
        await asyncio.gather(*clients)
    # "during": sent while a rollback call was in flight (commit + swap on the server);
    # "between": the same phase away from any call (a baseline interleaved in time)
    during = [(sw["t0"], sw["t1"]) for sw in swaps]
    guarded = [(sw["t0"] - GUARD_S, sw["t1"] + GUARD_S) for sw in swaps]
    phase = [s for s in samples if swap_start <= s.sent < swap_end]
    ends = [sw["t0"] for sw in swaps[1:]] + [swap_end]
    timings = [
        _swap_timings(samples, sw["t0"], sw["t1"], end, sw["target"], sw["left"])
        for sw, end in zip(swaps, ends, strict=True)
    ]
    return {
        "steady": _percentiles([s for s in samples if steady_start <= s.sent < swap_start]),
        "between_swaps": _percentiles([s for s in phase if not _in_any(s.sent, guarded)]),
        "during_swaps": _percentiles([s for s in phase if _in_any(s.sent, during)]),
        "failed_requests": sum(1 for s in samples if not s.ok),
        "total_requests": len(samples),
        "rollbacks": timings,
    }


def _median(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return round(statistics.median(present), 3) if present else None


def summarise(raw: dict[str, Any]) -> dict[str, Any]:
    rollbacks = raw["rollbacks"]
    during = raw["during_swaps"]["p99_ms"]
    return {
        "rollbacks": len(rollbacks),
        "admin_ms_median": _median([r["admin_ms"] for r in rollbacks]),
        "admin_ms_max": round(max(r["admin_ms"] for r in rollbacks), 3),
        "first_ms_median": _median([r["first_ms"] for r in rollbacks]),
        "first_ms_max": round(max((r["first_ms"] or 0.0) for r in rollbacks), 3),
        "converged_ms_median": _median([r["converged_ms"] for r in rollbacks]),
        "converged_ms_max": round(max(r["converged_ms"] for r in rollbacks), 3),
        "never_served": sum(1 for r in rollbacks if r["first_ms"] is None),
        "steady": raw["steady"],
        "between_swaps": raw["between_swaps"],
        "during_swaps": raw["during_swaps"],
        "p99_ratio_during_over_between": round(during / raw["between_swaps"]["p99_ms"], 3),
        "p99_ratio_during_over_steady": round(during / raw["steady"]["p99_ms"], 3),
        "failed_requests": raw["failed_requests"],
        "total_requests": raw["total_requests"],
    }


def markdown(summary: dict[str, Any], args: argparse.Namespace) -> str:
    s = summary
    lines = [
        f"Rollback under load: {s['rollbacks']} rollbacks, {args.clients} clients, "
        f"{args.workers} worker(s), poll {args.poll_ms} ms",
        "",
        "| measure | median (ms) | max (ms) |",
        "| --- | --- | --- |",
        f"| admin call | {s['admin_ms_median']} | {s['admin_ms_max']} |",
        f"| call -> first response by the old version | {s['first_ms_median']} "
        f"| {s['first_ms_max']} |",
        f"| call -> every worker swapped | {s['converged_ms_median']} | {s['converged_ms_max']} |",
        "",
        "| client requests | requests | p50 (ms) | p99 (ms) |",
        "| --- | --- | --- | --- |",
    ]
    for phase, label in (
        ("steady", "steady (no changes)"),
        ("between_swaps", "between swaps"),
        ("during_swaps", "during swaps (call in flight)"),
    ):
        p = s[phase]
        lines.append(f"| {label} | {p['requests']} | {p['p50_ms']} | {p['p99_ms']} |")
    lines += [
        "",
        f"p99 during swaps / between swaps: **{s['p99_ratio_during_over_between']}**; "
        f"/ steady: **{s['p99_ratio_during_over_steady']}**; failed requests: "
        f"**{s['failed_requests']}** of {s['total_requests']}; other load on the machine: "
        f"{s['other_cpu_cores']} cores",
    ]
    return "\n".join(lines)


class CpuMeter:
    """Busy cores of the rest of the machine (not this process, not the server) over a run:
    a large value means other work disturbed the measurement."""

    def __init__(self, server: ServerProcess) -> None:
        self.server = server
        self.start = self._sample()

    def _sample(self) -> tuple[float, float, float, float]:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        own = usage.ru_utime + usage.ru_stime
        return time.perf_counter(), system_busy_s(), own, self.server.cpu_s()

    def other_cores(self) -> float:
        end = self._sample()
        wall, busy, own, server = (b - a for a, b in zip(self.start, end, strict=True))
        return round(max(0.0, busy - own - server) / wall, 2)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.swap_bench", description=__doc__)
    parser.add_argument("--rollbacks", type=int, default=20)
    parser.add_argument("--clients", type=int, default=8, help="concurrent closed-loop clients")
    parser.add_argument("--steady", type=float, default=5.0, help="seconds without changes")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds before measuring")
    parser.add_argument("--interval", type=float, default=0.5, help="seconds between rollbacks")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--poll-ms", type=int, default=250, help="generation poll interval")
    parser.add_argument(
        "--quiet-wait",
        type=float,
        default=30.0,
        help="wait up to this many seconds for other CPU load to stop first (default 30)",
    )
    parser.add_argument("--out", type=Path, help="write the JSON result here")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.rollbacks < 1 or args.clients < 1 or args.workers < 1:
        raise SystemExit("--rollbacks, --clients and --workers must be >= 1")
    with tempfile.TemporaryDirectory(prefix="swap-bench-") as tmp:
        work = Path(tmp)
        home = work / "home"
        print("registering the demo model...", file=sys.stderr)
        body = asyncio.run(_prepare_home(home))
        server = start_server(home, work, args.workers, args.poll_ms)
        try:
            switch = httpx.post(
                f"{server.base_url}/admin/models/{MODEL}/switch",
                json={"version": "1.1.0", "reason": "swap bench setup"},
                headers=AUTH,
                timeout=30,
            )
            switch.raise_for_status()
            if args.quiet_wait > 0:
                wait_for_quiet(args.quiet_wait, threshold=0.3)
            cpu = CpuMeter(server)
            raw = asyncio.run(measure(server.base_url, body, args))
            other_cores = cpu.other_cores()
        finally:
            server.stop()
    summary = {**summarise(raw), "other_cpu_cores": other_cores}
    command = "python -m benchmarks.swap_bench " + shlex.join(argv or sys.argv[1:])
    result = {
        "command": command.strip(),
        "machine": describe_machine(REPO, wrk_version="not used"),
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "summary": summary,
        "raw": raw,
    }
    print(markdown(summary, args))
    machine = result["machine"]
    print(f"\n`{result['command']}` on {machine['cpu_model']}, {machine['cores']} cores")
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2))
    return 0 if summary["failed_requests"] == 0 and summary["never_served"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
