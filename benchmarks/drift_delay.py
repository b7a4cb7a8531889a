"""Detection delay: time from a mean shift to the first drift cycle that flags it.

Streams run through the real ``PredictionWindow`` and ``compute_drift`` with a simulated
clock (no HTTP, no sleeping): one numerical feature, N(0, 1) in the reference (10,000
rows, 10 decile bins), stationary until the window holds only stationary rows, then a mean
shift of 0.5 sd or 1 sd. Each request is one row; rows arrive in one ``record`` call per
simulated second (the window stores one time per call). A drift cycle runs every
``--interval`` seconds (default 10, MODELGATE_DRIFT_INTERVAL_S) and flags the feature as
the report does: PSI >= 0.2 on at least 200 values. The shift starts at a random phase of
the cycle, so the delay of one seed is quantised to the cycle; the table gives the median
over seeds and the range.

Windows compared: the default count window (MODELGATE_RING_CAPACITY=10000, no time bound)
and time windows (MODELGATE_DRIFT_WINDOW_S) inside the same ring. False flags are the
cycles that flagged during the last ``--calm`` seconds before the shift (stationary rows).

    python -m benchmarks.drift_delay [--seeds 11] [--horizon 3600] [--out results/...json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from gateway.monitoring import psi_numba
from gateway.monitoring.drift import compute_drift
from gateway.monitoring.reference import Reference
from gateway.monitoring.stats import proportions, quantile_edges
from gateway.monitoring.window import PredictionWindow

RATES = (10, 100, 1000)  # requests per second, one row each
SHIFTS = (0.5, 1.0)  # mean shift in reference standard deviations
WINDOWS = (0.0, 300.0, 60.0)  # MODELGATE_DRIFT_WINDOW_S; 0 = the count window only
CAPACITY = 10_000
PSI_THRESHOLD = 0.2
MIN_SAMPLES = 200
REFERENCE_ROWS = 10_000


class SimClock:
    """The simulated monotonic clock the window reads."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def reference(seed: int = 0) -> Reference:
    values = np.random.default_rng(seed).normal(size=REFERENCE_ROWS)
    edges = quantile_edges(values)
    rng = np.random.default_rng(seed + 1)
    return Reference.from_dict(
        {
            "n_rows": REFERENCE_ROWS,
            "numerical": {
                "x": {
                    "edges": edges.tolist(),
                    "proportions": proportions(edges, values).tolist(),
                    "sample": rng.choice(values, 5000, replace=False).tolist(),
                }
            },
            "categorical": {},
        }
    )


def flagged(window: PredictionWindow, max_age_s: float) -> bool:
    report = compute_drift(
        window.snapshot(max_age_s),
        window.reference,
        psi_threshold=PSI_THRESHOLD,
        min_samples=MIN_SAMPLES,
    )
    return bool(report.drifted_features)


def time_to_flag(
    ref: Reference,
    *,
    rate: int,
    shift: float,
    max_age_s: float,
    seed: int,
    interval: float,
    horizon: float,
    calm: float,
) -> tuple[float | None, int]:
    """(seconds from the shift to the first flagging cycle or None, false flags before)."""
    rng = np.random.default_rng(seed)
    clock = SimClock()
    window = PredictionWindow(ref, capacity=CAPACITY, clock=clock)
    # stationary until the window holds only stationary rows, plus the calm check
    fill = max(CAPACITY / rate, max_age_s)
    shift_at = float(np.ceil(fill + calm)) + float(rng.integers(0, int(interval)))
    predictions = np.zeros(rate)
    false_flags = 0
    next_cycle = interval
    second = 0
    while second < shift_at + horizon:
        clock.now = float(second)
        rows = rng.normal(size=(rate, 1))
        if second >= shift_at:
            rows += shift
        window.record(rows, None, predictions, None, 0.001)
        second += 1
        clock.now = float(second)  # the cycle runs at the end of this second
        if clock.now >= next_cycle:
            next_cycle += interval
            if clock.now > shift_at:
                if flagged(window, max_age_s):
                    return clock.now - shift_at, false_flags
            elif clock.now > shift_at - calm:
                false_flags += flagged(window, max_age_s)
    return None, false_flags


def snapshot_cost(features: int = 30, calls: int = 50) -> dict[str, float]:
    """Median ms of ``snapshot()`` and ``snapshot(300)`` on a full ring of ``features``
    numerical features whose 10,000 rows span 1,000 s (10 req/s): the drift cycle's price
    of the time bound (taken on the event loop, between requests, never inside one)."""
    rng = np.random.default_rng(0)
    values = rng.normal(size=(REFERENCE_ROWS, features))
    stored: dict[str, Any] = {"numerical": {}, "categorical": {}}
    for j in range(features):
        edges = quantile_edges(values[:, j])
        stored["numerical"][f"x{j}"] = {
            "edges": edges.tolist(),
            "proportions": proportions(edges, values[:, j]).tolist(),
        }
    clock = SimClock()
    window = PredictionWindow(stored, capacity=CAPACITY, clock=clock)
    for second in range(CAPACITY // 10):
        clock.now = float(second)
        window.record(rng.normal(size=(10, features)), None, np.zeros(10), None, 0.001)
    out = {}
    for label, bound in (("count_ms", 0.0), ("time_300s_ms", 300.0)):
        samples = []
        for _ in range(calls):
            start = time.perf_counter()
            window.snapshot(bound)
            samples.append((time.perf_counter() - start) * 1000.0)
        out[label] = statistics.median(samples)
    return out


def run(seeds: int, interval: float, horizon: float, calm: float) -> dict[str, Any]:
    psi_numba.warmup()
    ref = reference()
    started = time.perf_counter()
    rows: list[dict[str, Any]] = []
    for max_age_s in WINDOWS:
        for shift in SHIFTS:
            for rate in RATES:
                delays: list[float | None] = []
                false_flags = 0
                for seed in range(seeds):
                    delay, false = time_to_flag(
                        ref,
                        rate=rate,
                        shift=shift,
                        max_age_s=max_age_s,
                        seed=seed,
                        interval=interval,
                        horizon=horizon,
                        calm=calm,
                    )
                    delays.append(delay)
                    false_flags += false
                rows.append(
                    {
                        "window_s": max_age_s,
                        "shift_sd": shift,
                        "rate": rate,
                        "delays_s": delays,
                        "false_flags": false_flags,
                    }
                )
    return {
        "capacity": CAPACITY,
        "interval_s": interval,
        "psi_threshold": PSI_THRESHOLD,
        "min_samples": MIN_SAMPLES,
        "seeds": seeds,
        "horizon_s": horizon,
        "calm_s": calm,
        "rows": rows,
        "snapshot_cost": snapshot_cost(),
        "wall_s": time.perf_counter() - started,
        "command": " ".join(["python -m benchmarks.drift_delay", *sys.argv[1:]]),
    }


def shown(delays: list[float | None], horizon: float) -> str:
    found = sorted(d for d in delays if d is not None)
    if len(found) * 2 <= len(delays):  # the median itself is "not flagged"
        return f"not within {horizon:.0f} s ({len(found)}/{len(delays)} seeds)"
    median = statistics.median([d if d is not None else float("inf") for d in delays])
    spread = f"{found[0]:.0f}-{found[-1]:.0f}"
    missed = len(delays) - len(found)
    tail = f", {missed} not flagged" if missed else ""
    return f"{median:.0f} s ({spread}{tail})"


def table(result: dict[str, Any]) -> str:
    def name(window_s: float) -> str:
        if not window_s:
            return f"count: last {result['capacity']:,} rows"
        return f"time: last {window_s:.0f} s (<= {result['capacity']:,} rows)"

    lines = [
        "| window | shift | 10 req/s | 100 req/s | 1,000 req/s | false flags |",
        "|---|---|---|---|---|---|",
    ]
    by_key = {(r["window_s"], r["shift_sd"], r["rate"]): r for r in result["rows"]}
    for window_s in WINDOWS:
        for shift in SHIFTS:
            cells = [
                shown(by_key[window_s, shift, rate]["delays_s"], result["horizon_s"])
                for rate in RATES
            ]
            false = sum(by_key[window_s, shift, rate]["false_flags"] for rate in RATES)
            cells = [name(window_s), f"{shift} sd", *cells, str(false)]
            lines.append("| " + " | ".join(cells) + " |")
    cycles = int(result["calm_s"] // result["interval_s"])
    lines += [
        "",
        f"time to flag: median over {result['seeds']} seeds (min-max); drift cycle every "
        f"{result['interval_s']:.0f} s, PSI >= {result['psi_threshold']} on >= "
        f"{result['min_samples']} values; false flags: flagging cycles among the "
        f"{cycles} stationary cycles before each shift, summed over seeds and rates "
        f"({len(RATES) * result['seeds'] * cycles} cycles per row)",
        "drift-cycle snapshot of a full 10,000-row ring, 30 features (median): count window "
        f"{result['snapshot_cost']['count_ms']:.2f} ms, 300 s time window "
        f"{result['snapshot_cost']['time_300s_ms']:.2f} ms (cut + recount of 3,000 rows)",
        f"simulated in {result['wall_s']:.0f} s of wall time; command: `{result['command']}`",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=11)
    parser.add_argument("--interval", type=float, default=10.0, help="drift cycle, seconds")
    parser.add_argument("--horizon", type=float, default=3600.0, help="give up after, seconds")
    parser.add_argument("--calm", type=float, default=600.0, help="false-flag check, seconds")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/drift_delay.json"))
    args = parser.parse_args(argv)
    if args.seeds < 1 or args.interval < 1 or args.horizon <= 0 or args.calm < 0:
        parser.error("need --seeds >= 1, --interval >= 1, --horizon > 0 and --calm >= 0")
    result = run(args.seeds, args.interval, args.horizon, args.calm)
    print(table(result))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nwritten: {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
