"""Medians, spreads and paired ratios from a scenario's runs.

A ratio is computed per repetition from the two runs of that repetition (they were
measured minutes apart at most, under the same drift), then reported as the median of
those per-repetition ratios with their min-max spread.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from typing import Any

from benchmarks.scenarios import Ratio, Scenario
from benchmarks.shadow_counts import drop_rate

# a run during which other processes used more CPU than this (in cores) was disturbed
DISTURBED_OTHER_CPU = 0.25

QUANTILES = {"p50": 0.5, "p90": 0.9, "p99": 0.99}


def censored(run: dict[str, Any], metric: str) -> bool:
    """Whether wrk's percentile of ``run`` is provably too low: wrk reports the requests that
    completed only. In a closed loop a run with C connections that completed N < C requests
    left C - N of them unanswered for the whole run; when those exceed the share above the
    percentile (1 % of the N + C requests for p99), the percentile is at least the run's
    length."""
    quantile = QUANTILES.get(metric)
    if quantile is None:
        return False
    stuck = run["connections"] - run["requests"]
    return stuck > 0 and stuck > (1 - quantile) * (run["requests"] + run["connections"])


def latency_us(run: dict[str, Any], metric: str) -> float:
    """wrk's percentile, or the run's length when that is provably below it (``censored``)."""
    reported = float(run["latency_us"][metric])
    return max(reported, run["duration_s"] * 1e6) if censored(run, metric) else reported


METRICS = {
    "rps": lambda run: run["rps"],
    "p50": lambda run: latency_us(run, "p50"),
    "p90": lambda run: latency_us(run, "p90"),
    "p99": lambda run: latency_us(run, "p99"),
    "wrk_cpu": lambda run: run["wrk_cpu_cores"],
    "server_cpu": lambda run: run["server_cpu_cores"],
    "other_cpu": lambda run: run["other_cpu_cores"],
}


def spread(values: list[float]) -> dict[str, float]:
    return {
        "median": round(statistics.median(values), 4),
        "min": round(min(values), 4),
        "max": round(max(values), 4),
        "n": len(values),
    }


def summarize_points(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (server, connections, workers): every metric's median and spread."""
    groups: dict[tuple[str, int, int], list[dict[str, Any]]] = defaultdict(list)
    for run in runs:
        groups[(run["server"], run["connections"], run["workers"])].append(run)
    points = []
    for (server, connections, workers), group in groups.items():
        point: dict[str, Any] = {"server": server, "connections": connections, "workers": workers}
        for name, get in METRICS.items():
            point[name] = spread([float(get(run)) for run in group])
        point["non_2xx"] = sum(run["non_2xx"] for run in group)
        point["socket_errors"] = sum(run["socket_errors"] for run in group)
        if any("swaps_ok" in run for run in group):
            # rollback scenario: admin swaps done while wrk ran (benchmarks/rollback_load.py)
            point["swaps_ok"] = sum(run.get("swaps_ok", 0) for run in group)
            point["swaps_failed"] = sum(run.get("swaps_failed", 0) for run in group)
            point["swap_failures"] = [f for run in group for f in run.get("swap_failures", [])][:3]
            p50s = [run["swap_p50_ms"] for run in group if run.get("swap_p50_ms") is not None]
            worst = [run["swap_max_ms"] for run in group if run.get("swap_max_ms") is not None]
            point["swap_p50_ms"] = statistics.median(p50s) if p50s else None
            point["swap_max_ms"] = max(worst) if worst else None
        if any("shadow_dropped" in run for run in group):
            # shadow scenario: mirrored copies of this point's runs (benchmarks/shadow_counts.py)
            for key in ("shadow_compared", "shadow_failed", "shadow_dropped"):
                point[key] = sum(run.get(key, 0) for run in group)
            point["shadow_drop_rate"] = drop_rate(
                point["shadow_compared"], point["shadow_failed"], point["shadow_dropped"]
            )
        points.append(point)
    return points


def ratio_result(ratio: Ratio, runs: list[dict[str, Any]]) -> dict[str, Any]:
    get = METRICS[ratio.metric]

    def by_rep(server: str) -> dict[int, dict[str, Any]]:
        return {
            run["rep"]: run
            for run in runs
            if run["server"] == server
            and run["connections"] == ratio.connections
            and run["workers"] == ratio.workers
        }

    top, bottom = by_rep(ratio.numerator), by_rep(ratio.denominator)
    reps = sorted(set(top) & set(bottom))
    values = [get(top[r]) / get(bottom[r]) for r in reps if get(bottom[r]) > 0]
    result: dict[str, Any] = {
        "name": ratio.name,
        "numerator": ratio.numerator,
        "denominator": ratio.denominator,
        "metric": ratio.metric,
        "connections": ratio.connections,
        "workers": ratio.workers,
        "target": ratio.target,
        "op": ratio.op,
        "meaning": ratio.meaning,
    }
    if not values:
        result.update(value=None, passed=None, clean=None)
        return result
    involved = [top[r] for r in reps] + [bottom[r] for r in reps]
    result["value"] = spread(values)
    # a run with failed requests does not count as a pass, whatever its speed
    result["clean"] = all(run["non_2xx"] == 0 and run["socket_errors"] == 0 for run in involved)
    # a latency at least the run's length: the ratio is a bound, not a measurement
    result["censored"] = any(censored(run, ratio.metric) for run in involved)
    # the disturbance of the worst run behind this ratio (cores used by other processes)
    result["other_cpu_max"] = round(max(run["other_cpu_cores"] for run in involved), 3)
    if ratio.target is None:
        result["passed"] = None
    else:
        median = result["value"]["median"]
        met = median >= ratio.target if ratio.op == ">=" else median <= ratio.target
        result["passed"] = bool(met and result["clean"])
    return result


def summarize_scenario(scenario: Scenario, runs: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "disturbed_runs": sum(run["other_cpu_cores"] > DISTURBED_OTHER_CPU for run in runs),
        "points": summarize_points(runs),
        "ratios": [ratio_result(ratio, runs) for ratio in scenario.ratios],
    }
