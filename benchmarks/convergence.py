"""Convergence benchmark: how fast an admin change reaches every worker of every node.

    python -m benchmarks.convergence [--changes 50] [--workers 2] [--rounds 5]
                                     [--duration 5] [--connections 16] [--out FILE]

Starts a private PostgreSQL server (``tests/support/postgres.py``: Debian's server binaries),
registers the demo model ``churn`` (1.0.0 production, 1.1.0 staging) in a SQLite home,
copies it into PostgreSQL with ``modelgate registry migrate`` and starts two
``modelgate serve`` nodes on it (``--workers`` each, each with its own empty home).

Convergence: one keep-alive connection is pinned to every worker of every node (a
connection stays on the worker that accepted it; ``GET /admin/models/churn`` on it names
the worker's pid). Then ``--changes`` switches of production between 1.0.0 and 1.1.0,
sent alternately to node a and node b; for each, the time from the admin call's 200 until
every pinned connection is answered (``POST /predict/churn``) by the new version
(``X-Model-Version``), probing all connections concurrently in a loop. After each change
every connection's pid is checked again (a connection that moved to another worker is
re-pinned and its change is not counted).

Throughput: node a (PostgreSQL registry) and a node on the SQLite home (same workers)
serve ``POST /predict/churn`` under wrk, alternately, ``--rounds`` times ``--duration``
seconds each; reported as the PostgreSQL/SQLite ratio per round (median, min, max).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shlex
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import orjson

from benchmarks.machine import describe_machine
from benchmarks.procs import ServerProcess, free_port, system_busy_s
from benchmarks.wrk import ensure_wrk, run_wrk, wrk_version

REPO = Path(__file__).resolve().parent.parent
TOKEN = "convergence-bench-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
MODEL = "churn"
VERSIONS = ("1.0.0", "1.1.0")
DEADLINE_S = 15.0


async def _prepare_home(home: Path) -> bytes:
    """Register the demo in a SQLite home; one request body."""
    from converters.demo import register_demo
    from gateway.cli.serve_command import example_instance
    from registry.sqlite.store import open_registry

    registry = await open_registry(home)
    try:
        versions = await register_demo(registry, actor="convergence-bench")
    finally:
        await registry.close()
    row = example_instance(versions[0].schema, versions[0].reference)
    return orjson.dumps({"instances": [row]})


def start_node(name: str, home: Path, workers: int, url: str | None) -> ServerProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODELGATE_")}
    env["PYTHONPATH"] = str(REPO)
    env["MODELGATE_ADMIN_TOKEN"] = TOKEN
    if url is not None:
        env["MODELGATE_REGISTRY_URL"] = url
    port = free_port()
    argv = [sys.executable, "-m", "gateway.cli.main", "serve", "--home", str(home)]
    argv += ["--port", str(port), "--workers", str(workers)]
    server = ServerProcess(name, argv, env, REPO, port)
    server.start("/v2/health/ready", timeout_s=240)
    return server


class Pinned:
    """One keep-alive connection to one worker of one node."""

    def __init__(self, node: str, url: str) -> None:
        self.node = node
        limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
        self.http = httpx.AsyncClient(base_url=url, limits=limits, timeout=10)
        self.pid = 0

    async def worker(self) -> int:
        reply = await self.http.get(f"/admin/models/{MODEL}", headers=AUTH)
        reply.raise_for_status()
        return int(reply.json()["worker"]["pid"])

    async def served(self, body: bytes) -> str:
        reply = await self.http.post(
            f"/predict/{MODEL}", content=body, headers={"content-type": "application/json"}
        )
        reply.raise_for_status()
        return reply.headers["x-model-version"]


async def pin_workers(nodes: dict[str, str], workers: int) -> list[Pinned]:
    """One connection per (node, worker): open connections until every worker is seen."""
    pinned: dict[tuple[str, int], Pinned] = {}
    for node, url in nodes.items():
        for _attempt in range(200):
            if sum(1 for n, _ in pinned if n == node) == workers:
                break
            conn = Pinned(node, url)
            conn.pid = await conn.worker()
            if (node, conn.pid) in pinned:
                await conn.http.aclose()
            else:
                pinned[(node, conn.pid)] = conn
        else:
            raise RuntimeError(f"{node}: could not reach all {workers} workers")
    return list(pinned.values())


async def converge(pinned: list[Pinned], body: bytes, version: str, t0: float) -> float:
    """Seconds from ``t0`` until every pinned connection answers with ``version``."""
    done: dict[int, float] = {}

    async def follow(index: int, conn: Pinned) -> None:
        while time.perf_counter() - t0 < DEADLINE_S:
            if await conn.served(body) == version:
                done[index] = time.perf_counter() - t0
                return

    await asyncio.gather(*(follow(i, c) for i, c in enumerate(pinned)))
    if len(done) < len(pinned):
        raise RuntimeError(f"not every worker served {version} within {DEADLINE_S:.0f} s")
    return max(done.values())


async def measure_convergence(
    nodes: dict[str, str], body: bytes, changes: int, workers: int
) -> dict[str, Any]:
    pinned = await pin_workers(nodes, workers)
    names = list(nodes)
    samples: list[float] = []
    admin_s: list[float] = []
    moved = 0
    current = VERSIONS[0]
    async with httpx.AsyncClient(timeout=30) as admin:
        for i in range(changes):
            target = VERSIONS[1] if current == VERSIONS[0] else VERSIONS[0]
            node = names[i % len(names)]
            sent = time.perf_counter()
            reply = await admin.post(
                f"{nodes[node]}/admin/models/{MODEL}/switch",
                json={"version": target, "reason": "convergence bench"},
                headers=AUTH,
            )
            t0 = time.perf_counter()
            if reply.status_code != 200:
                raise RuntimeError(f"switch on {node}: {reply.status_code} {reply.text}")
            admin_s.append(t0 - sent)
            took = await converge(pinned, body, target, t0)
            current = target
            pids = await asyncio.gather(*(c.worker() for c in pinned))
            if any(pid != c.pid for pid, c in zip(pids, pinned, strict=True)):
                moved += 1  # a connection was re-accepted by another worker: not counted
                for conn in pinned:
                    await conn.http.aclose()
                pinned = await pin_workers(nodes, workers)
                continue
            samples.append(took)
            await asyncio.sleep(0.2)
    for conn in pinned:
        await conn.http.aclose()
    return {"samples_s": samples, "admin_s": admin_s, "discarded_moved": moved}


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def measure_throughput(
    pg: ServerProcess, sqlite: ServerProcess, body: bytes, args: argparse.Namespace, work: Path
) -> dict[str, Any]:
    wrk = ensure_wrk()
    bodies = work / "bodies.txt"
    bodies.write_bytes(body + b"\n")
    rounds: list[dict[str, float]] = []
    for index in range(args.rounds):
        # alternate which goes first, so a drift in machine load hits both alike
        order = [("postgresql", pg), ("sqlite", sqlite)]
        if index % 2:
            order.reverse()
        rps: dict[str, float] = {}
        for label, server in order:
            result = run_wrk(
                wrk,
                f"{server.base_url}/predict/{MODEL}",
                bodies,
                connections=args.connections,
                duration_s=args.duration,
                threads=2,
            )
            if result.non_2xx or result.socket_errors:
                failed = f"{result.non_2xx} non-2xx, {result.socket_errors} socket errors"
                raise RuntimeError(f"{label}: {failed}")
            rps[label] = result.rps
        rounds.append({**rps, "ratio": rps["postgresql"] / rps["sqlite"]})
    ratios = [r["ratio"] for r in rounds]
    return {
        "rounds": rounds,
        "ratio_median": statistics.median(ratios),
        "ratio_min": min(ratios),
        "ratio_max": max(ratios),
        "wrk": wrk_version(wrk),
    }


def markdown(result: dict[str, Any]) -> str:
    conv, thr = result["convergence"], result["throughput"]
    samples = conv["samples_s"]
    lines = [
        "| measure | value |",
        "|---|---|",
        f"| changes measured | {len(samples)} (discarded: {conv['discarded_moved']}) |",
        f"| convergence p50 | {1000 * quantile(samples, 0.5):.0f} ms |",
        f"| convergence p99 | {1000 * quantile(samples, 0.99):.0f} ms |",
        f"| convergence max | {1000 * max(samples):.0f} ms |",
        f"| admin call p50 | {1000 * quantile(conv['admin_s'], 0.5):.0f} ms |",
    ]
    for i, r in enumerate(thr["rounds"], 1):
        lines.append(
            f"| throughput round {i}: PostgreSQL / SQLite | "
            f"{r['postgresql']:.0f} / {r['sqlite']:.0f} req/s = {r['ratio']:.2f} |"
        )
    lines.append(
        f"| throughput ratio PostgreSQL/SQLite | median {thr['ratio_median']:.2f} "
        f"(min {thr['ratio_min']:.2f}, max {thr['ratio_max']:.2f}) |"
    )
    lines.append(f"| other load on the machine | {result['other_cpu_cores']:.2f} cores |")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.convergence")
    parser.add_argument("--changes", type=int, default=50, help="admin changes (>= 1)")
    parser.add_argument("--workers", type=int, default=2, help="workers per node")
    parser.add_argument("--rounds", type=int, default=5, help="throughput rounds")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per wrk run")
    parser.add_argument("--connections", type=int, default=16, help="wrk connections")
    parser.add_argument("--out", type=Path, default=None, help="write the JSON result here")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.changes < 1 or args.workers < 1 or args.rounds < 1:
        raise SystemExit("--changes, --workers and --rounds must be >= 1")
    from gateway.cli import main as cli_main
    from tests.support.postgres import PostgresServer, find_binaries

    binaries, why = find_binaries()
    if binaries is None:
        raise SystemExit(why)
    server = PostgresServer(binaries)
    nodes: list[ServerProcess] = []
    with tempfile.TemporaryDirectory(prefix="convergence-bench-") as tmp:
        work = Path(tmp)
        try:
            server.start()
            url = server.new_database()
            print("registering the demo model...", file=sys.stderr)
            body = asyncio.run(_prepare_home(work / "sqlite"))
            migrate = ["registry", "migrate", "--home", str(work / "sqlite"), "--to", url]
            if cli_main.main(migrate) != 0:
                raise SystemExit("modelgate registry migrate failed")
            for name in ("a", "b"):
                nodes.append(start_node(name, work / name, args.workers, url))
            busy0, wall0 = system_busy_s(), time.monotonic()
            cpu0 = sum(n.cpu_s() for n in nodes)
            urls = {n.name: n.base_url for n in nodes}
            convergence = asyncio.run(measure_convergence(urls, body, args.changes, args.workers))
            ours = sum(n.cpu_s() for n in nodes) - cpu0
            other = max(0.0, (system_busy_s() - busy0 - ours) / (time.monotonic() - wall0))
            nodes.pop().stop()  # node b: not needed for throughput
            # the SQLite node serves the same model at the same state (production 1.0.0 or
            # 1.1.0 makes no difference to the cost of a request)
            nodes.append(start_node("sqlite", work / "sqlite", args.workers, None))
            throughput = measure_throughput(nodes[0], nodes[1], body, args, work)
        finally:
            for node in nodes:
                node.close()
            server.close()
    result = {
        "command": ("python -m benchmarks.convergence " + shlex.join(argv or sys.argv[1:])).strip(),
        "machine": describe_machine(REPO, wrk_version=throughput["wrk"]),
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "convergence": convergence,
        "throughput": throughput,
        "other_cpu_cores": other,
    }
    print(markdown(result))
    machine = result["machine"]
    print(f"\n`{result['command']}` on {machine['cpu_model']}, {machine['cores']} cores")
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
