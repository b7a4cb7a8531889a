"""A hundred models on one gateway: start-up, memory, threads, throughput and swaps under load.

``python -m benchmarks.scale [--quick] --out FILE [--no-report]`` (an extra benchmark of
``benchmarks/extras.py``). The scenario: N models (100; 20 with ``--quick``), a mix of
LogisticRegression, RandomForest and HistGradientBoosting in turn, two versions each
(1.0.0 production, 1.1.0 staging) under a 90/10 canary, on one ``modelgate serve`` worker.
Each family's two versions are trained and published once (converters.publish: ONNX,
parity, reference) as template models nothing deploys; the N models register those
artifacts through the registry's Python API, so every model still gets its own
onnxruntime sessions, batchers and windows, as distinct weights of the same size would.

Measured in one run, side by side:

* start-up of the N-model gateway: time until it listens, until the first model answers
  ready, until ``/v2/health/ready``; its RSS and thread count once ready;
* the same for one-model gateways of each family (2 versions), and an empty gateway: RSS
  per loaded version is (one-model RSS - empty RSS) / 2, and the N-model gateway's
  (RSS - empty RSS) / 2N;
* throughput and p99 with wrk (64 connections), requests spread over the N models uniformly
  and Zipf-skewed (s = 1.1), against the one-model gateways measured alternately in the
  same repetitions. The one-model reference for a mix is what the one-model gateways would
  give for the same traffic shares: throughput 1 / sum(share_f / rps_f), p99 the highest
  one-model p99 of a family carrying at least 10 % of the requests;
* the control: each one-model gateway again with ``MODELGATE_BATCHING=off`` (every request
  its own onnxruntime call, as on the N-model gateway), which tells how much of the gap to
  one model is batching dilution;
* hot swap and rollback under load: three models (one per family) rolled back every 0.5 s
  while wrk spreads load over all models; failed requests must be 0.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from benchmarks.launchers import ADMIN_TOKEN, REPO_ROOT, modelgate_command, server_env
from benchmarks.models import WORK_DIR, dataset, feature_names, request_rows
from benchmarks.payloads import oip_body
from benchmarks.procs import ServerProcess, free_port
from benchmarks.readme_section import README, write_section
from benchmarks.rollback_load import RollbackLoad
from benchmarks.wrk import ensure_wrk, run_wrk, wrk_version

LUA = Path(__file__).with_name("wrk_models.lua")
SCALE_DIR = WORK_DIR / "scale"
CONNECTIONS = 64
ZIPF_S = 1.1
SEQUENCE = 20_000  # requests in the file wrk walks through
ROLLBACK_EVERY_S = 0.5
TARGETS = {"throughput": 0.8, "p99": 1.5}
UNBATCHED = {"MODELGATE_BATCHING": "off"}
# bump when a family's recipe changes so cached estimators are rebuilt
RECIPE = 1


def _logreg(seed: int) -> Any:
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(max_iter=1000, random_state=seed)


def _forest(seed: int) -> Any:
    from sklearn.ensemble import RandomForestClassifier

    return RandomForestClassifier(n_estimators=50, max_depth=10, random_state=seed, n_jobs=1)


def _boosted(seed: int) -> Any:
    from sklearn.ensemble import HistGradientBoostingClassifier

    return HistGradientBoostingClassifier(max_iter=50, max_depth=6, random_state=seed)


FAMILIES: dict[str, tuple[str, Callable[[int], Any]]] = {
    "logreg": ("LogisticRegression", _logreg),
    "forest": ("RandomForestClassifier, 50 trees, depth 10", _forest),
    "boosted": ("HistGradientBoostingClassifier, 50 iterations, depth 6", _boosted),
}
ORDER = tuple(FAMILIES)


def family_of(index: int) -> str:
    return ORDER[index % len(ORDER)]


def estimator(family: str, variant: int) -> Any:
    """The family's fitted estimator for ``variant`` (cached under benchmarks/.work/scale)."""
    import joblib

    path = SCALE_DIR / f"{family}-v{variant}-r{RECIPE}.joblib"
    if path.exists():
        return joblib.load(path)
    import pandas as pd

    x_train, y_train, _ = dataset()
    fitted = FAMILIES[family][1](variant)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fitted.fit(pd.DataFrame(x_train, columns=feature_names()), y_train)
    path.parent.mkdir(parents=True, exist_ok=True)
    joblib.dump(fitted, path)
    return fitted


# --- homes ---------------------------------------------------------------------------
def build_home(home: Path, families: list[str], *, prefix: str = "m") -> list[str]:
    """A fresh home whose model ``{prefix}{i:03d}`` has ``families[i]``'s two versions
    under a 90/10 canary; returns the model names."""
    if home.exists():
        shutil.rmtree(home)
    home.mkdir(parents=True)
    names = [f"{prefix}{i:03d}" for i in range(len(families))]
    asyncio.run(_populate(home, list(zip(names, families, strict=True))))
    return names


async def _populate(home: Path, models: list[tuple[str, str]]) -> None:
    import pandas as pd

    from converters.publish import publish
    from registry.home import resolve_home
    from registry.models import Deployment, NewVersion, Route, Stage
    from registry.sqlite.store import open_registry

    x_train, _, _ = dataset()
    sample = pd.DataFrame(x_train[:1000], columns=feature_names())
    registry = await open_registry(resolve_home(home))
    try:
        templates: dict[str, list[Any]] = {}
        for family in sorted({family for _name, family in models}):
            versions = []
            for variant, version in enumerate(("1.0.0", "1.1.0")):
                fitted = estimator(family, variant)
                await publish(registry, f"template-{family}", fitted, sample, version=version)
                versions.append(await registry.get_version(f"template-{family}", version))
            templates[family] = versions
        for name, family in models:
            for base in templates[family]:
                new = NewVersion(
                    base.artifact_sha256,
                    base.artifact_size,
                    base.schema,
                    lineage=base.lineage,
                    reference=base.reference,
                    parity=base.parity,
                    description=f"{FAMILIES[family][0]} (benchmarks/scale.py)",
                    created_by="benchmarks.scale",
                )
                await registry.register_version(name, new, version=base.version, actor="bench")
            await registry.set_stage(name, "1.0.0", Stage.PRODUCTION)
            await registry.set_stage(name, "1.1.0", Stage.STAGING)
            routes = (Route("1.0.0", 90.0), Route("1.1.0", 10.0))
            await registry.set_deployment(Deployment(model=name, routes=routes))
    finally:
        await registry.close()


# --- traffic -------------------------------------------------------------------------
def shares(n_models: int, distribution: str) -> np.ndarray:
    """Probability of each model under ``uniform`` or ``zipf`` (rank i: 1 / i^s)."""
    if distribution == "uniform":
        weights = np.ones(n_models)
    else:
        weights = 1.0 / np.arange(1, n_models + 1) ** ZIPF_S
    return weights / weights.sum()


def write_requests(path: Path, names: list[str], distribution: str, seed: int = 11) -> None:
    """The sequence wrk walks: ``SEQUENCE`` requests drawn from ``distribution``; the Zipf
    ranks are shuffled so the popular models are of every family."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(names)) if distribution == "zipf" else np.arange(len(names))
    p = shares(len(names), distribution)
    picks = rng.choice(len(names), size=SEQUENCE, p=p)
    bodies = [oip_body(row).decode() for row in request_rows(64)]
    lines = [
        f"/v2/models/{names[order[pick]]}/infer\t{bodies[i % len(bodies)]}"
        for i, pick in enumerate(picks)
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")


def family_shares(names: list[str], families: list[str], path: Path) -> dict[str, float]:
    """Share of the requests in ``path`` that go to each family."""
    family = dict(zip(names, families, strict=True))
    counts: dict[str, int] = dict.fromkeys(ORDER, 0)
    for line in path.read_text().splitlines():
        name = line.split("/", 4)[3]
        counts[family[name]] += 1
    total = sum(counts.values())
    return {f: counts[f] / total for f in ORDER if counts[f]}


# --- servers -------------------------------------------------------------------------
def proc_status(pid: int) -> dict[str, int]:
    """VmRSS (KiB) and Threads of a process, from /proc."""
    out: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "Threads"):
            out[key] = int(value.split()[0])
    return out


def start_gateway(
    name: str,
    home: Path,
    first: str | None,
    timeout_s: float,
    mode: str = "auto",
    settings: dict[str, str] | None = None,
) -> tuple[ServerProcess, dict[str, Any]]:
    """Start ``modelgate serve`` on ``home`` (``settings``: more MODELGATE_* variables) and
    time its start-up: until it listens, until model ``first`` answers ready, until
    ``/v2/health/ready``; then its RSS and threads."""
    port = free_port()
    env = server_env()
    env["MODELGATE_ADMIN_TOKEN"] = ADMIN_TOKEN
    env["MODELGATE_INFERENCE_MODE"] = mode
    env.update(settings or {})
    server = ServerProcess(name, modelgate_command(home, port, 1), env, REPO_ROOT, port)
    began = time.perf_counter()
    server.start("/v2/health/live", timeout_s)
    info: dict[str, Any] = {"listening_s": time.perf_counter() - began}
    end = began + timeout_s
    first_ready: float | None = None
    while time.perf_counter() < end:
        if first is not None and first_ready is None:
            if server.request("GET", f"/v2/models/{first}/ready", timeout_s=1.0)[0] == 200:
                first_ready = time.perf_counter() - began
        if server.request("GET", "/v2/health/ready", timeout_s=1.0)[0] == 200:
            info["ready_s"] = time.perf_counter() - began
            info["first_model_ready_s"] = (
                first_ready if first_ready is not None else info["ready_s"]
            )
            status = proc_status(server.proc.pid)
            info["rss_mib"] = status["VmRSS"] / 1024.0
            info["threads"] = status["Threads"]
            return server, info
        time.sleep(0.02)
    server.close()
    raise RuntimeError(f"{name} not ready after {timeout_s:.0f} s:\n{server.log_tail()}")


def touch_every_version(server: ServerProcess, names: list[str]) -> None:
    """One pinned request to each loaded version (thread-mode batchers start their work)."""
    body = oip_body(request_rows(1)[0])
    for name in names:
        for version in ("1.0.0", "1.1.0"):
            status, answer = server.request(
                "POST", f"/v2/models/{name}/versions/{version}/infer", body
            )
            if status != 200:
                raise RuntimeError(f"{name} {version}: {status} {answer[:200]!r}")


# --- the run -------------------------------------------------------------------------
def measure(args: argparse.Namespace) -> dict[str, Any]:
    wrk = ensure_wrk()
    n_models = 20 if args.quick else args.models
    duration = 3.0 if args.quick else args.duration
    reps = 1 if args.quick else args.reps
    families = [family_of(i) for i in range(n_models)]
    mode = args.inference_mode
    homes = SCALE_DIR / "homes"
    log = _log
    log(f"building homes ({n_models} models)")
    names = build_home(homes / f"many-{n_models}", families)
    singles = {f: build_home(homes / f"one-{f}", [f], prefix=f"one-{f}-") for f in ORDER}
    for family in ORDER:  # the batching-off control serves a copy (a home per server)
        shutil.rmtree(homes / f"one-{family}-unbatched", ignore_errors=True)
        shutil.copytree(homes / f"one-{family}", homes / f"one-{family}-unbatched")
    build_home(homes / "empty", [])
    files = SCALE_DIR / "requests"
    for distribution in ("uniform", "zipf"):
        write_requests(files / f"many-{n_models}-{distribution}.txt", names, distribution)
    for family, single in singles.items():
        write_requests(files / f"one-{family}.txt", single, "uniform")

    servers: dict[str, ServerProcess] = {}
    result: dict[str, Any] = {
        "quick": args.quick,
        "inference_mode": mode,
        "models": n_models,
        "versions": 2 * n_models,
        "families": {f: FAMILIES[f][0] for f in ORDER},
        "connections": CONNECTIONS,
        "duration_s": duration,
        "reps": reps,
        "wrk": wrk_version(wrk),
        "cores": _cores(),
    }
    try:
        log("starting the empty gateway")
        servers["empty"], result["empty"] = start_gateway("empty", homes / "empty", None, 60, mode)
        log(f"starting the {n_models}-model gateway")
        servers["many"], result["startup"] = start_gateway(
            "many", homes / f"many-{n_models}", names[0], 900, mode
        )
        log(f"  {result['startup']}")
        result["single"] = {}
        for family in ORDER:
            home = homes / f"one-{family}"
            server, info = start_gateway(f"one-{family}", home, singles[family][0], 120, mode)
            servers[f"one-{family}"] = server
            result["single"][family] = info
            # the control: the same gateway with every request its own onnxruntime call, as
            # nearly every request is on the many-model gateway
            servers[f"one-{family}-unbatched"], _info = start_gateway(
                f"one-{family}-unbatched",
                homes / f"one-{family}-unbatched",
                None,
                120,
                mode,
                UNBATCHED,
            )
        touch_every_version(servers["many"], names)
        for family, single in singles.items():
            touch_every_version(servers[f"one-{family}"], single)
            touch_every_version(servers[f"one-{family}-unbatched"], single)
        after = proc_status(servers["many"].proc.pid)
        result["startup"]["threads_after_traffic"] = after["Threads"]
        result["startup"]["rss_after_traffic_mib"] = after["VmRSS"] / 1024.0
        for family in ORDER:
            status = proc_status(servers[f"one-{family}"].proc.pid)
            result["single"][family]["threads_after_traffic"] = status["Threads"]
            result["single"][family]["rss_after_traffic_mib"] = status["VmRSS"] / 1024.0

        runs = [("many", "uniform"), ("many", "zipf")] + [
            (f"one-{f}{variant}", f) for f in ORDER for variant in ("", "-unbatched")
        ]
        samples: dict[str, list[dict[str, float]]] = {f"{s}:{d}": [] for s, d in runs}
        for rep in range(reps):
            order = runs[rep % len(runs) :] + runs[: rep % len(runs)]
            for server_name, what in order:
                file = (
                    files / f"many-{n_models}-{what}.txt"
                    if server_name == "many"
                    else files / f"one-{what}.txt"
                )
                server = servers[server_name]
                outcome = run_wrk(
                    wrk,
                    server.base_url + "/",
                    file,
                    connections=CONNECTIONS,
                    duration_s=duration,
                    script=LUA,
                )
                point = {
                    "rps": outcome.rps,
                    "p99_ms": outcome.latency_us["p99"] / 1000.0,
                    "p50_ms": outcome.latency_us["p50"] / 1000.0,
                    "non_2xx": outcome.non_2xx,
                    "socket_errors": outcome.socket_errors,
                }
                samples[f"{server_name}:{what}"].append(point)
                log(f"  rep {rep + 1} {server_name} {what}: {point}")
        result["load"] = {key: _summary(points) for key, points in samples.items()}

        log("rollback under load")
        rollback_models = [names[i] for i in range(min(3, n_models))]
        loads = [
            RollbackLoad(servers["many"].port, m, ADMIN_TOKEN, ROLLBACK_EVERY_S)
            for m in rollback_models
        ]
        for load in loads:
            load.__enter__()
        try:
            swap_run = run_wrk(
                wrk,
                servers["many"].base_url + "/",
                files / f"many-{n_models}-uniform.txt",
                connections=CONNECTIONS,
                duration_s=max(duration, 6.0),
                script=LUA,
            )
        finally:
            for load in loads:
                load.__exit__(None, None, None)
        swaps = [load.stats.as_dict() for load in loads]
        result["rollback"] = {
            "models": rollback_models,
            "every_s": ROLLBACK_EVERY_S,
            "requests": swap_run.requests,
            "rps": swap_run.rps,
            "p99_ms": swap_run.latency_us["p99"] / 1000.0,
            "non_2xx": swap_run.non_2xx,
            "socket_errors": swap_run.socket_errors,
            "swaps_ok": sum(s["swaps_ok"] for s in swaps),
            "swaps_failed": sum(s["swaps_failed"] for s in swaps),
            "swap_failures": [f for s in swaps for f in s["swap_failures"]],
        }
        final = proc_status(servers["many"].proc.pid)
        result["startup"]["threads_end"] = final["Threads"]
        result["startup"]["rss_end_mib"] = final["VmRSS"] / 1024.0
    finally:
        for server in servers.values():
            server.close()

    for distribution in ("uniform", "zipf"):
        path = files / f"many-{n_models}-{distribution}.txt"
        result.setdefault("shares", {})[distribution] = family_shares(names, families, path)
    result["memory"] = memory_figures(result)
    result["targets"] = judge(result)
    return result


def _summary(points: list[dict[str, float]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in ("rps", "p99_ms", "p50_ms"):
        values = [p[key] for p in points]
        out[key] = statistics.median(values)
        out[f"{key}_range"] = [min(values), max(values)]
    out["non_2xx"] = sum(int(p["non_2xx"]) for p in points)
    out["socket_errors"] = sum(int(p["socket_errors"]) for p in points)
    return out


def memory_figures(result: dict[str, Any]) -> dict[str, Any]:
    """RSS per loaded version: the marginal cost (N-model worker over the one-model workers'
    mean, per extra version) and, per family, a one-model worker over an empty one (that
    includes one-time costs: the first model's monitoring set-up, numba's compilation)."""
    empty = result["empty"]["rss_mib"]
    singles = {f: info["rss_after_traffic_mib"] for f, info in result["single"].items()}
    one = statistics.mean(singles.values())
    many = result["startup"]["rss_after_traffic_mib"]
    return {
        "empty_worker_mib": empty,
        "one_model_worker_mib": one,
        "many_worker_mib": many,
        "per_version_mib": (many - one) / (result["versions"] - 2),
        "first_model_by_family_mib": {f: rss - empty for f, rss in singles.items()},
    }


def reference(result: dict[str, Any], distribution: str, variant: str = "") -> tuple[float, float]:
    """One-model throughput and p99 for the traffic shares of ``distribution``
    (``variant="-unbatched"``: of the one-model gateways with batching off)."""
    share = result["shares"][distribution]
    load = result["load"]
    rps = 1.0 / sum(s / load[f"one-{f}{variant}:{f}"]["rps"] for f, s in share.items())
    p99 = max(load[f"one-{f}{variant}:{f}"]["p99_ms"] for f, s in share.items() if s >= 0.1)
    return rps, p99


def batching_share(result: dict[str, Any]) -> list[str]:
    """What the unbatched control says: how much of the gap to one model batching explains
    (None when the run has no control)."""
    lines = []
    for distribution in ("uniform", "zipf"):
        if f"one-{ORDER[0]}-unbatched:{ORDER[0]}" not in result["load"]:
            return []
        many = result["load"][f"many:{distribution}"]["rps"]
        batched, _p99 = reference(result, distribution)
        unbatched, _p99 = reference(result, distribution, "-unbatched")
        lines.append(
            f"{distribution}: one model {batched:,.0f} req/s batched, {unbatched:,.0f} with "
            f"batching off ({unbatched / batched:.2f}x); {result['models']} models "
            f"{many:,.0f} ({many / unbatched:.2f}x the unbatched one-model figure)"
        )
    return lines


def judge(result: dict[str, Any]) -> list[dict[str, Any]]:
    targets: list[dict[str, Any]] = []
    for distribution in ("uniform", "zipf"):
        many = result["load"][f"many:{distribution}"]
        ref_rps, ref_p99 = reference(result, distribution)
        ratio = many["rps"] / ref_rps
        low, high = (v / ref_rps for v in many["rps_range"])
        targets.append(
            {
                "target": f"throughput, {distribution}: >= {TARGETS['throughput']}x one model",
                "value": f"{ratio:.2f}x ({many['rps']:,.0f} vs {ref_rps:,.0f} req/s; "
                f"range {low:.2f}-{high:.2f})",
                "pass": ratio >= TARGETS["throughput"],
            }
        )
        p99_ratio = many["p99_ms"] / ref_p99
        targets.append(
            {
                "target": f"p99, {distribution}: <= {TARGETS['p99']}x one model",
                "value": f"{p99_ratio:.2f}x ({many['p99_ms']:.1f} vs {ref_p99:.1f} ms)",
                "pass": p99_ratio <= TARGETS["p99"],
            }
        )
    startup = result["startup"]
    single_threads = max(info["threads_after_traffic"] for info in result["single"].values())
    bounded = startup["threads_end"] <= single_threads + 4
    targets.append(
        {
            "target": "threads bounded whatever the number of models",
            "value": f"{startup['threads_end']} threads with {result['versions']} versions, "
            f"{single_threads} with 2",
            "pass": bounded,
        }
    )
    first, ready, listening = (
        startup["first_model_ready_s"],
        startup["ready_s"],
        startup["listening_s"],
    )
    targets.append(
        {
            "target": "start-up: listens at once, readiness per model as each is ready",
            "value": f"listening after {listening:.1f} s, first model ready after {first:.1f} s, "
            f"all {result['models']} after {ready:.1f} s",
            "pass": listening is not None and first < ready,
        }
    )
    rollback = result["rollback"]
    failed = rollback["non_2xx"] + rollback["socket_errors"] + rollback["swaps_failed"]
    targets.append(
        {
            "target": "hot swap and rollback under load: 0 failed requests",
            "value": f"{rollback['non_2xx']} non-2xx, {rollback['socket_errors']} socket errors "
            f"in {rollback['requests']:,} requests; {rollback['swaps_ok']} swaps ok, "
            f"{rollback['swaps_failed']} failed",
            "pass": failed == 0 and rollback["swaps_ok"] > 0,
        }
    )
    return targets


def _cores() -> int:
    from gateway.dataplane.pool import default_threads

    return default_threads()


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --- report --------------------------------------------------------------------------
def render(result: dict[str, Any], out: Path) -> str:
    startup, memory, load = result["startup"], result["memory"], result["load"]
    lines = [
        f"{result['models']} models ({', '.join(result['families'].values())} in turn), "
        f"{result['versions']} loaded versions, 90/10 canary each, one worker, "
        f"MODELGATE_INFERENCE_MODE={result['inference_mode']}, "
        f"{result['cores']} cores; wrk {CONNECTIONS} connections, {result['duration_s']:g} s "
        f"per point, {result['reps']} repetition(s), medians (min-max). "
        f"Command: `{command(result)}`; "
        f"results: `{_shown(out)}`.",
        "",
        "| target | measured | verdict |",
        "| --- | --- | --- |",
    ]
    for target in result["targets"]:
        lines.append(
            f"| {target['target']} | {target['value']} | {'PASS' if target['pass'] else 'FAIL'} |"
        )
    lines += [
        "",
        "| load | req/s | p99 ms | p50 ms | non-2xx |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for key, row in load.items():
        low, high = row["rps_range"]
        lines.append(
            f"| {key} | {row['rps']:,.0f} ({low:,.0f}-{high:,.0f}) | {row['p99_ms']:.1f} | "
            f"{row['p50_ms']:.1f} | {row['non_2xx']} |"
        )
    first = ", ".join(f"{f} {v:.0f} MiB" for f, v in memory["first_model_by_family_mib"].items())
    lines += [
        "",
        f"Start-up of the {result['models']}-model gateway: listening after "
        f"{startup['listening_s']:.1f} s, first model ready after "
        f"{startup['first_model_ready_s']:.1f} s, every model after {startup['ready_s']:.1f} s.",
        f"Memory: RSS of the worker {memory['many_worker_mib']:.0f} MiB with "
        f"{result['versions']} versions, {memory['one_model_worker_mib']:.0f} MiB with one "
        f"model (2 versions), {memory['empty_worker_mib']:.0f} MiB with none: "
        f"{memory['per_version_mib']:.1f} MiB per additional loaded version; the first "
        f"model (2 versions, one-time costs included): {first}.",
        f"Threads of the worker: {startup['threads_end']} at the end (with "
        f"{result['versions']} versions loaded).",
        "",
    ]
    control = batching_share(result)
    if control:
        lines += [
            "Control, the one-model gateways with `MODELGATE_BATCHING=off` (every request its "
            "own onnxruntime call, as on the many-model gateway): " + "; ".join(control) + ".",
            "",
        ]
    return "\n".join(lines)


def command(result: dict[str, Any]) -> str:
    words = ["python -m benchmarks.scale"]
    if result["quick"]:
        words.append("--quick")
    if result["inference_mode"] != "auto":
        words.append(f"--inference-mode {result['inference_mode']}")
    return " ".join(words)


def _shown(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(REPO_ROOT))
    except ValueError:
        return str(path)


def write_readme(body: str, readme: Path = README) -> None:
    write_section("scale", body, readme)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="20 models, 3 s, 1 repetition")
    parser.add_argument("--models", type=int, default=100)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per point")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/scale.json"))
    parser.add_argument("--no-report", action="store_true", help="leave the README alone")
    parser.add_argument(
        "--inference-mode",
        default="auto",
        choices=("auto", "inline", "thread"),
        help="MODELGATE_INFERENCE_MODE of every gateway (thread: every version on the pool)",
    )
    args = parser.parse_args(argv)
    if args.models < 3 or args.duration < 1 or args.reps < 1:
        parser.error("need --models >= 3, --duration >= 1 and --reps >= 1")
    result = measure(args)
    body = render(result, args.out)
    print(body)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2) + b"\n")
    if not args.no_report:
        write_readme(body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
