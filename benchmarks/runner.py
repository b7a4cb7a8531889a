"""Drive one scenario: start each server in turn, warm it up, load it with wrk, record the run.

Repetitions interleave the servers and rotate their order (ABC, BCA, CAB), so drift of
the shared machine hits every server alike and each repetition yields a paired sample.
Only one server runs at a time: the 2 cores are shared by that server and wrk alone.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from benchmarks.launchers import (
    ADMIN_TOKEN,
    READY_PATH,
    describe_command,
    launch,
    modelgate_home_path,
)
from benchmarks.modelgate_home import build_home, modelgate_missing
from benchmarks.models import WORK_DIR, build_model, request_rows
from benchmarks.payloads import write_bodies
from benchmarks.procs import ServerError, ServerProcess, system_busy_s, wait_for_quiet
from benchmarks.rollback_load import RollbackLoad
from benchmarks.scenarios import Scenario, ServerSpec
from benchmarks.shadow_counts import read_shadow_counts, shadow_delta
from benchmarks.summarize import DISTURBED_OTHER_CPU, summarize_scenario
from benchmarks.wrk import WrkError, run_wrk

Log = Callable[[str], None]
# requests sent once per routed server, before any load, to show the split is live
SPLIT_CHECK_REQUESTS = 500
# homes registered by this process, reused by later scenarios of the same invocation
# (registration converts, proves parity and publishes: seconds per model). Homes whose
# registry a scenario changes (rollback) are rebuilt for every scenario instead.
_REGISTERED: set[Path] = set()


def stderr_log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@dataclass(frozen=True, slots=True)
class RunSettings:
    duration_s: float = 10.0
    reps: int = 3
    warmup_s: float = 2.0
    wrk_threads: int = 1
    timeout_s: float = 5.0
    servers: tuple[str, ...] = ()  # empty: every server of the scenario
    # before each server start, wait up to this long for other load to go away
    quiet_wait_s: float = 30.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "duration_s": self.duration_s,
            "repetitions": self.reps,
            "warmup_s": self.warmup_s,
            "wrk_threads": self.wrk_threads,
            "wrk_timeout_s": self.timeout_s,
            "quiet_wait_s": self.quiet_wait_s,
        }


def rotated(items: tuple[ServerSpec, ...], rep: int) -> list[ServerSpec]:
    shift = rep % len(items) if items else 0
    return list(items[shift:] + items[:shift])


def run_scenario(
    scenario: Scenario, settings: RunSettings, wrk: str, log: Log = stderr_log
) -> dict[str, Any]:
    """Every run of one scenario plus its summary; a failure is recorded, not raised."""
    wanted = settings.servers
    servers = tuple(s for s in scenario.servers if not wanted or s.label in wanted)
    result: dict[str, Any] = {
        "name": scenario.name,
        "title": scenario.title,
        "model": scenario.model,
        "connections": list(scenario.connections),
        "workers": list(scenario.workers),
        "servers": [],
        "runs": [],
    }
    try:
        if not servers:
            raise ServerError(f"no server of {scenario.name} matches {list(settings.servers)}")
        model = build_model(scenario.model) if scenario.model else None
        homes = _prepare_homes(scenario, servers, log)
        bodies_file = WORK_DIR / "bodies.jsonl"
        bodies = write_bodies(bodies_file, request_rows())
        path = f"/v2/models/{scenario.model or 'bare'}/infer"
        described: set[str] = set()
        for rep in range(settings.reps):
            for workers in scenario.workers:
                for spec in rotated(servers, rep):
                    _settle(settings, log)
                    process = launch(spec, model, workers, homes.get(spec.label))
                    try:
                        sample = _start_and_check(process, path, bodies[0], log)
                        if spec.label not in described:
                            described.add(spec.label)
                            info = _describe(spec, process, sample)
                            if spec.routes:
                                info["observed_split"] = process.header_counts(
                                    path, bodies[0], "X-Model-Version", SPLIT_CHECK_REQUESTS
                                )
                            result["servers"].append(info)
                        result["runs"].extend(
                            _measure(process, spec, scenario, settings, wrk, path, bodies_file,
                                     rep, workers, log)
                        )  # fmt: skip
                    finally:
                        process.close()
    except (ServerError, WrkError, ValueError, KeyError) as exc:
        result["error"] = str(exc)
        log(f"[{scenario.name}] FAILED: {exc}")
    result.update(summarize_scenario(scenario, result["runs"]))
    return result


def _settle(settings: RunSettings, log: Log) -> None:
    if settings.quiet_wait_s <= 0:
        return
    busy = wait_for_quiet(settings.quiet_wait_s, DISTURBED_OTHER_CPU, sample_s=0.5)
    if busy >= DISTURBED_OTHER_CPU:
        log(f"  machine still busy ({busy:.2f} cores used by others): measuring anyway")


def _prepare_homes(
    scenario: Scenario, servers: tuple[ServerSpec, ...], log: Log
) -> dict[str, Path]:
    homes: dict[str, Path] = {}
    built: dict[Path, Path] = {path: path for path in _REGISTERED if path.exists()}
    for spec in servers:
        if spec.kind != "modelgate":
            continue
        missing = modelgate_missing()
        if missing:
            raise ServerError(missing)
        if scenario.model is None:
            raise ValueError(f"server {spec.label} needs a model")
        target = modelgate_home_path(scenario.model, spec)
        if target not in built:
            log(f"[{scenario.name}] registering {scenario.model} into {target}")
            try:
                built[target] = build_home(target, scenario.model, spec.routes, spec.shadow)
            except Exception as exc:  # conversion, parity or registry refusal: report it
                raise ServerError(f"registering {scenario.model} failed: {exc}") from exc
            if spec.rollback_every_s <= 0:
                _REGISTERED.add(target)
        homes[spec.label] = built[target]
    return homes


def _start_and_check(process: ServerProcess, path: str, body: bytes, log: Log) -> bytes:
    log(f"  starting {process.name} on port {process.port}")
    process.start(READY_PATH)
    status, answer = process.request("POST", path, body)
    if status != 200:
        raise ServerError(
            f"{process.name} answered {status} to a valid request: {answer[:300]!r}\n"
            f"{process.log_tail()}"
        )
    orjson.loads(answer)
    return answer


def _describe(spec: ServerSpec, process: ServerProcess, sample: bytes) -> dict[str, Any]:
    return {
        "label": spec.label,
        "kind": spec.kind,
        "description": spec.description,
        "routes": [{"version": v, "weight": w} for v, w in spec.routes],
        "shadow": [{"version": v, "sample": f} for v, f in spec.shadow],
        "rollback_every_s": spec.rollback_every_s,
        "command": describe_command(process),
        "response_sample": sample[:400].decode(errors="replace"),
    }


# one request answered within this long: the server has nothing queued any more
IDLE_ANSWER_S = 0.5
DRAIN_LIMIT_S = 120.0


def _drain(process: ServerProcess, path: str, body: bytes, log: Log) -> None:
    """Wait until the server worked through what the previous load left queued: wrk
    closes its connections when its time is up, but a slow server may still be processing
    hundreds of requests they sent, and would measure the next point on that backlog
    (MLServer's scikit-learn runtime answered nothing in a 1-connection point after the
    256-connection warm-up)."""
    deadline = time.monotonic() + DRAIN_LIMIT_S
    waited = False
    while time.monotonic() < deadline:
        started = time.monotonic()
        status, _answer = process.request("POST", path, body, timeout_s=DRAIN_LIMIT_S)
        if status == 200 and time.monotonic() - started < IDLE_ANSWER_S:
            return
        if status != 200:
            time.sleep(0.1)
        if not waited:
            log(f"  waiting for {process.name} to work through its backlog")
            waited = True
    raise ServerError(f"{process.name} did not become idle within {DRAIN_LIMIT_S:g} s")


def _measure(
    process: ServerProcess,
    spec: ServerSpec,
    scenario: Scenario,
    settings: RunSettings,
    wrk: str,
    path: str,
    bodies_file: Path,
    rep: int,
    workers: int,
    log: Log,
) -> list[dict[str, Any]]:
    url = process.base_url + path
    top = max(scenario.connections)
    duration_s = max(settings.duration_s, scenario.min_duration_s or 0.0)
    if settings.warmup_s > 0:
        run_wrk(wrk, url, bodies_file, connections=top, duration_s=settings.warmup_s,
                threads=settings.wrk_threads, timeout_s=settings.timeout_s)  # fmt: skip
    sample = bodies_file.read_bytes().split(b"\n", 1)[0]
    runs = []
    for connections in scenario.connections:
        _drain(process, path, sample, log)
        swapper = None
        if spec.rollback_every_s > 0:
            swapper = RollbackLoad(
                process.port, scenario.model or "", ADMIN_TOKEN, spec.rollback_every_s
            )
        shadow_before = None
        if spec.shadow and scenario.model:
            shadow_before = read_shadow_counts(process.port, scenario.model, ADMIN_TOKEN)
        cpu_before, busy_before, wall_before = process.cpu_s(), system_busy_s(), time.monotonic()
        if swapper is not None:
            swapper.__enter__()
        try:
            res = run_wrk(wrk, url, bodies_file, connections=connections,
                          duration_s=duration_s, threads=settings.wrk_threads,
                          timeout_s=settings.timeout_s)  # fmt: skip
        finally:
            if swapper is not None:
                swapper.__exit__()
        wall = time.monotonic() - wall_before
        server_cores = (process.cpu_s() - cpu_before) / wall
        wrk_cores = (res.cpu_user_s + res.cpu_system_s) / wall
        other_cores = max(0.0, (system_busy_s() - busy_before) / wall - server_cores - wrk_cores)
        if process.proc is not None and process.proc.poll() is not None:
            raise ServerError(f"{process.name} died under load:\n{process.log_tail()}")
        run = {
            "server": spec.label,
            "connections": connections,
            "workers": workers,
            "rep": rep,
            "requests": res.requests,
            "duration_s": round(res.duration_s, 3),
            "rps": round(res.rps, 1),
            "latency_us": res.latency_us,
            "non_2xx": res.non_2xx,
            "socket_errors": res.socket_errors,
            "errors": res.errors,
            "wrk_cpu_cores": round(wrk_cores, 3),
            "server_cpu_cores": round(server_cores, 3),
            "other_cpu_cores": round(other_cores, 3),
        }
        shadow = ""
        if shadow_before is not None:
            # read after the run: copies still in the mirror's backlog are not counted yet
            after = read_shadow_counts(process.port, scenario.model or "", ADMIN_TOKEN)
            run.update(shadow_delta(shadow_before, after))
            shadow = (f"  shadow {run['shadow_compared']} compared "
                      f"{run['shadow_dropped']} dropped {run['shadow_failed']} failed")  # fmt: skip
        swaps = ""
        if swapper is not None:
            run.update(swapper.stats.as_dict())
            swaps = f"  swaps {swapper.stats.ok} ok {swapper.stats.failed} failed"
        runs.append(run)
        log(
            f"  rep {rep + 1} {spec.label:<20} c={connections:<4} w={workers} "
            f"{res.rps:9.0f} req/s  p50 {res.latency_us['p50'] / 1000:6.2f} ms  "
            f"p99 {res.latency_us['p99'] / 1000:7.2f} ms  non2xx {res.non_2xx}  "
            f"err {res.socket_errors}  cpu: wrk {wrk_cores:.2f} server {server_cores:.2f} "
            f"other {other_cores:.2f}{swaps}{shadow}"
        )
    return runs
