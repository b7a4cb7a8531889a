"""Soak: ``python -m benchmarks.soak [--minutes 10] [--workers 2]``.

Starts ``modelgate serve --workers N`` on a private copy of a registry home (the demo
registry, built with ``modelgate demo``, unless ``--home`` names one), then drives mixed
traffic concurrently for the duration: predictions on both routes (``/predict`` and the
V2 ``infer``), label feedback for answered ids, an admin traffic change every few seconds
(random canary weights, made under one ``X-Actor``), and ``/metrics`` scrapes. At the end
it reports request counts and errors per kind, the RSS of every server process at start
and end, and the consistency checks of ``benchmarks/soak_checks.py``; the JSON result
goes to ``benchmarks/results/soak-<timestamp>.json``. Exit status 0 when there was no
error and every check passed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx

from benchmarks.launchers import ADMIN_TOKEN, modelgate_command, server_env
from benchmarks.procs import ServerProcess, free_port
from benchmarks.soak_checks import consistency, process_tree, rss_kib, served_states

RESULTS = Path(__file__).resolve().parent / "results"
ACTOR = "soak-driver"


class Driver:
    """Concurrent traffic loops sharing one client and one tally."""

    def __init__(self, base_url: str, model: str, metadata: dict[str, Any], seed: int) -> None:
        self.base_url = base_url
        self.model = model
        self.auth = {"Authorization": f"Bearer {ADMIN_TOKEN}", "X-Actor": ACTOR}
        self.counts: Counter[str] = Counter()
        self.errors: Counter[str] = Counter()
        self.error_samples: list[str] = []
        self.changes: list[list[dict[str, Any]]] = []
        self.rss_series: list[dict[str, Any]] = []
        self.rng = random.Random(seed)
        self.versions: list[str] = metadata["versions"]
        self.production: str = metadata["production"]
        self.instance: dict[str, Any] = metadata["instance"]
        self.infer_body: dict[str, Any] = metadata["infer"]
        self.classes: list[Any] = metadata["classes"]

    def _tally(self, kind: str, response: httpx.Response | None, error: str = "") -> None:
        self.counts[kind] += 1
        if response is not None and response.status_code == 200:
            return
        what = error or f"HTTP {response.status_code}: {response.text[:200]}"  # type: ignore[union-attr]
        self.errors[kind] += 1
        if len(self.error_samples) < 20:
            self.error_samples.append(f"{kind}: {what}")

    async def _call(self, http: httpx.AsyncClient, kind: str, method: str, path: str, **kw):
        try:
            response = await http.request(method, path, **kw)
        except httpx.HTTPError as exc:
            self._tally(kind, None, f"{type(exc).__name__}: {exc}")
            return None
        self._tally(kind, response)
        return response

    async def predictor(self, http: httpx.AsyncClient, until: float, n: int) -> None:
        while time.monotonic() < until:
            if n % 2:
                body: dict[str, Any] = {"instances": [self.instance]}
                response = await self._call(
                    http, "predict", "POST", f"/predict/{self.model}", json=body
                )
            else:
                path = f"/v2/models/{self.model}/infer"
                response = await self._call(http, "infer", "POST", path, json=self.infer_body)
            n += 1
            if response is not None and response.status_code == 200 and self.classes and n % 3 == 0:
                feedback = {
                    "id": response.headers["x-request-id"],
                    "label": self.rng.choice(self.classes),
                }
                path = f"/v2/models/{self.model}/feedback"
                await self._call(http, "feedback", "POST", path, json=feedback)

    async def admin(self, http: httpx.AsyncClient, until: float, every_s: float) -> None:
        others = [v for v in self.versions if v != self.production]
        while time.monotonic() + every_s < until:
            await asyncio.sleep(every_s)
            routes = [{"version": self.production, "weight": 100}]
            if others and self.rng.random() < 0.75:
                share = self.rng.choice([5, 10, 20, 30, 50])
                routes = [
                    {"version": self.production, "weight": 100 - share},
                    {"version": self.rng.choice(others), "weight": share},
                ]
            path = f"/admin/models/{self.model}/traffic"
            body = {"routes": routes, "sticky": self.rng.random() < 0.5}
            response = await self._call(http, "admin", "PUT", path, json=body, headers=self.auth)
            if response is not None and response.status_code == 200:
                if response.json()["changed"]:
                    self.changes.append(routes)
                else:  # the same state again: answered "unchanged", never audited
                    self.counts["admin_unchanged"] += 1

    async def scraper(self, http: httpx.AsyncClient, until: float) -> None:
        while time.monotonic() < until:
            await self._call(http, "metrics", "GET", "/metrics")
            await asyncio.sleep(1.0)

    async def rss_sampler(self, until: float, pids: Sequence[int], every_s: float) -> None:
        """RSS of the server processes over time: flat, or a plateau, or a leak."""
        started = time.monotonic()
        while time.monotonic() < until:
            await asyncio.sleep(min(every_s, max(0.0, until - time.monotonic())))
            sample = rss_kib(pids)
            self.rss_series.append({"t_s": round(time.monotonic() - started, 1), **sample})

    async def run(
        self, seconds: float, clients: int, admin_every_s: float, pids: Sequence[int]
    ) -> None:
        limits = httpx.Limits(max_connections=clients + 4, max_keepalive_connections=clients + 4)
        async with httpx.AsyncClient(base_url=self.base_url, timeout=30, limits=limits) as http:
            until = time.monotonic() + seconds
            loops = [self.predictor(http, until, i) for i in range(clients)]
            loops += [self.admin(http, until, admin_every_s), self.scraper(http, until)]
            loops.append(self.rss_sampler(until, pids, max(1.0, seconds / 20)))
            await asyncio.gather(*loops)


def build_demo_home(home: Path) -> None:
    command = [sys.executable, "-m", "gateway.cli.main", "demo", "--home", str(home)]
    subprocess.run(command, check=True, capture_output=True, env=server_env())


def model_metadata(home: Path, model: str | None) -> tuple[str, dict[str, Any]]:
    """The model to drive (the first in production unless named) and what requests need."""
    from gateway.cli.serve_command import example_instance
    from registry.sqlite.store import open_registry

    async def read() -> tuple[str, dict[str, Any]]:
        registry = await open_registry(home)
        try:
            names = [model] if model else [m.name for m in await registry.list_models()]
            for name in names:
                versions = await registry.list_versions(name)
                live = [v for v in versions if v.stage.value == "production"]
                if live:
                    break
            else:
                raise SystemExit(f"no model in production in {home}")
            prod = live[0]
            others = [v.version for v in versions if v.stage.value in ("production", "staging")]
            instance = example_instance(prod.schema, prod.reference)
            inputs = []
            for spec in prod.schema["inputs"]:
                data = [instance[f] for f in spec["features"]]
                inputs.append(
                    {
                        "name": spec["name"],
                        "datatype": spec["datatype"],
                        "shape": [1, len(data)],
                        "data": data,
                    }
                )
            return name, {
                "versions": others,
                "production": prod.version,
                "instance": instance,
                "infer": {"inputs": inputs},
                "classes": prod.schema.get("classes") or [],
            }
        finally:
            await registry.close()

    return asyncio.run(read())


def soak(
    seconds: float,
    workers: int,
    source: Path | None,
    model: str | None,
    clients: int = 4,
    admin_every_s: float = 3.0,
    out: Path | None = None,
    settings: dict[str, str] | None = None,
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="modelgate-soak-") as tmp:
        home = Path(tmp) / "home"
        if source is None:
            build_demo_home(home)
        else:
            shutil.copytree(source, home)
        name, metadata = model_metadata(home, model)
        port = free_port()
        env = server_env()
        env.update(settings or {})
        env["MODELGATE_ADMIN_TOKEN"] = ADMIN_TOKEN
        server = ServerProcess("soak", modelgate_command(home, port, workers), env, Path(tmp), port)
        server.start("/v2/health/ready")
        try:
            driver = Driver(server.base_url, name, metadata, seed=0)
            time.sleep(1.0)
            pids = process_tree(server.proc.pid)  # type: ignore[union-attr]
            rss_start = rss_kib(pids)
            started = time.time()
            asyncio.run(driver.run(seconds, clients, admin_every_s, pids))
            time.sleep(1.5)  # every worker past its generation poll
            rss_end = rss_kib(process_tree(server.proc.pid))  # type: ignore[union-attr]
            headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
            served = served_states(server.base_url, name, headers, workers)
            log = server.log_tail(2000)
        finally:
            server.close()
        checks = consistency(home, name, f"admin-api:{ACTOR}", driver.changes, served)
    result = {
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "duration_s": seconds,
        "workers": workers,
        "settings": settings or {},
        "model": name,
        "requests": dict(driver.counts),
        "errors": dict(driver.errors),
        "error_samples": driver.error_samples,
        "admin_changes": len(driver.changes),
        "rss_kib": {"start": rss_start, "end": rss_end},
        "rss_growth_kib": {p: rss_end[p] - rss_start[p] for p in rss_start if p in rss_end},
        "rss_series_kib": driver.rss_series,
        "tracebacks_in_log": log.count("Traceback"),
        "checks": checks,
    }
    result["ok"] = not driver.errors and checks["ok"] and result["tracebacks_in_log"] == 0
    target = out or RESULTS / f"soak-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime(started))}.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
    result["result_file"] = str(target)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.soak", description=__doc__)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--seconds", type=float, help="duration in seconds (overrides --minutes)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--clients", type=int, default=4, help="concurrent prediction loops")
    parser.add_argument("--admin-every", type=float, default=3.0, metavar="S")
    parser.add_argument("--home", type=Path, help="registry home to copy (default: the demo)")
    parser.add_argument("--model", help="model to drive (default: the first in production)")
    parser.add_argument("--out", type=Path, help="result file (default benchmarks/results/)")
    parser.add_argument(
        "--setting",
        action="append",
        default=[],
        metavar="MODELGATE_X=VALUE",
        help="a server setting (repeatable), e.g. MODELGATE_FEEDBACK_CAPACITY=20000",
    )
    args = parser.parse_args(argv)
    settings: dict[str, str] = {}
    for item in args.setting:
        key, equals, value = item.partition("=")
        if not equals or not key.startswith("MODELGATE_"):
            parser.error(f"--setting takes MODELGATE_NAME=VALUE, not {item!r}")
        settings[key] = value
    seconds = args.seconds if args.seconds is not None else args.minutes * 60.0
    result = soak(
        seconds,
        args.workers,
        args.home,
        args.model,
        args.clients,
        args.admin_every,
        args.out,
        settings,
    )
    summary = {k: result[k] for k in ("requests", "errors", "admin_changes", "rss_kib", "ok")}
    summary["checks"] = {k: v for k, v in result["checks"].items() if k != "served_by_worker"}
    print(json.dumps(summary, indent=2, sort_keys=True))
    print(f"result: {result['result_file']}")
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
