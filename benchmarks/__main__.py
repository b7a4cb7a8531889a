"""`python -m benchmarks [--quick] [--scenarios ...] [--out DIR]`: run the load-test scenarios.

Without ``--scenarios`` it runs the published benchmark (``benchmarks/suite.py``: the
concurrency sweep against the hand-written server and MLServer, batching, 2 workers,
rollback under load), the drift micro-benchmarks and the extra benchmarks of
``benchmarks/extras.py`` (each its own subprocess and README section). Writes
``<out>/<timestamp>.json`` with every run, the medians and the ratios, PNG plots next to it,
prints the summary, and (unless --no-report) renders it into benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import shlex
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import orjson

from benchmarks.extras import EXTRAS, run_extra
from benchmarks.launchers import REPO_ROOT
from benchmarks.machine import describe_machine
from benchmarks.report import RESULTS_DIR, render, write_readme
from benchmarks.runner import RunSettings, run_scenario, stderr_log
from benchmarks.scenarios import Scenario
from benchmarks.suite import (
    ALL_SCENARIOS,
    FULL_SCENARIOS,
    MLSERVER_LABELS,
    QUICK_SCENARIOS,
    uses_mlserver,
)
from benchmarks.wrk import WrkError, ensure_wrk, wrk_version


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Load-test modelgate against baselines with wrk on loopback.",
    )
    parser.add_argument(
        "--scenarios",
        nargs="+",
        default=None,
        metavar="NAME",
        help=f"scenarios to run (default: {' '.join(FULL_SCENARIOS)}; with --quick: "
        f"{' '.join(QUICK_SCENARIOS)}; known: {', '.join(ALL_SCENARIOS)})",
    )
    parser.add_argument(
        "--servers",
        nargs="+",
        default=[],
        metavar="LABEL",
        help="only these servers of each scenario (e.g. bare naive)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="2 s per point, 1 s warm-up, 1 repetition, a subset (a check, not a result)",
    )
    parser.add_argument(
        "--duration", type=float, help=f"seconds per measured point (default {FULL[0]:g})"
    )
    parser.add_argument("--reps", type=int, help=f"repetitions per point (default {FULL[1]})")
    parser.add_argument(
        "--warmup", type=float, help=f"warm-up seconds per server start (default {FULL[2]:g})"
    )
    parser.add_argument(
        "--quiet-wait",
        type=float,
        default=5.0,
        help="seconds to wait for other load to stop before each server start (default 5)",
    )
    parser.add_argument("--wrk-threads", type=int, default=1, help="wrk threads (default 1)")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR, help="folder for the JSON file")
    parser.add_argument(
        "--no-plots", action="store_true", help="do not write matplotlib PNGs next to the JSON"
    )
    parser.add_argument(
        "--drift",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="run benchmarks/drift_bench.py too (default: only without --scenarios)",
    )
    parser.add_argument(
        "--no-mlserver", action="store_true", help="leave the MLServer baselines out"
    )
    parser.add_argument(
        "--no-report", action="store_true", help="do not rewrite benchmarks/README.md"
    )
    return parser


# (seconds per point, repetitions, warm-up seconds): sized so the full suite fits in 20
# minutes on 2 cores (each server start costs ~5 s more for start-up and checks)
FULL = (2.0, 3, 1.0)
QUICK = (2.0, 1, 1.0)


def settings_from(args: argparse.Namespace) -> RunSettings:
    duration, reps, warmup = QUICK if args.quick else FULL
    settings = RunSettings(
        duration_s=args.duration if args.duration is not None else duration,
        reps=args.reps if args.reps is not None else reps,
        warmup_s=args.warmup if args.warmup is not None else warmup,
        wrk_threads=args.wrk_threads,
        quiet_wait_s=max(0.0, args.quiet_wait),
        servers=tuple(args.servers),
    )
    if settings.duration_s < 1 or settings.reps < 1 or settings.warmup_s < 0:
        raise ValueError("--duration must be >= 1, --reps >= 1 and --warmup >= 0")
    if settings.wrk_threads < 1:
        raise ValueError("--wrk-threads must be >= 1")
    return settings


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser()
    args = parser.parse_args(argv)
    suite = args.scenarios is None
    names = list(QUICK_SCENARIOS if args.quick else FULL_SCENARIOS) if suite else args.scenarios
    unknown = [name for name in names if name not in ALL_SCENARIOS]
    if unknown:
        parser.error(f"unknown scenario(s) {', '.join(unknown)}; known: {', '.join(ALL_SCENARIOS)}")
    try:
        settings = settings_from(args)
        wrk = ensure_wrk()
    except (ValueError, WrkError) as exc:
        print(f"benchmarks: error: {exc}", file=sys.stderr)
        return 2

    started = datetime.now(UTC)
    stamp = started.strftime("%Y%m%dT%H%M%SZ")
    out_file = args.out / f"{stamp}.json"
    results = {
        "schema": 1,
        "started_at": started.isoformat(timespec="seconds"),
        "file": _shown(out_file),
        "command": shlex.join(["python", "-m", "benchmarks", *argv]),
        "machine": describe_machine(REPO_ROOT, wrk_version(wrk)),
        "settings": settings.as_dict(),
        "scenarios": [],
    }
    t0 = time.monotonic()
    scenarios = [ALL_SCENARIOS[name] for name in names]
    notes: list[str] = results.setdefault("notes", [])
    if any(uses_mlserver(s) for s in scenarios):
        scenarios = _with_mlserver_or_without(scenarios, args, notes)
    for scenario in scenarios:
        stderr_log(f"[{scenario.name}] {scenario.title}")
        results["scenarios"].append(run_scenario(scenario, settings, wrk))
    results["load_elapsed_s"] = round(time.monotonic() - t0, 1)
    args.out.mkdir(parents=True, exist_ok=True)
    if args.drift if args.drift is not None else suite:
        drift_file = args.out / ("drift_bench-quick.json" if args.quick else "drift_bench.json")
        results["drift"] = _run_drift(drift_file, args.quick, notes)
    if suite:
        results["extras"] = {
            extra.name: run_extra(extra, args.out, args.quick, not args.no_report, notes)
            for extra in EXTRAS
        }
    results["elapsed_s"] = round(time.monotonic() - t0, 1)

    if not args.no_plots:
        from benchmarks.plots import plot_results

        pictures = plot_results(results, args.out, stamp)
        results["plots"] = [_relative(path, REPO_ROOT / "benchmarks") for path in pictures]
    out_file.write_bytes(orjson.dumps(results, option=orjson.OPT_INDENT_2) + b"\n")
    print(render(results))
    print(f"results: {out_file}")
    if not args.no_report:
        write_readme(results)
        print(f"README: {REPO_ROOT / 'benchmarks' / 'README.md'}")
    print(f"total time: {time.monotonic() - t0:.0f} s")
    return 1 if any(s.get("error") for s in results["scenarios"]) else 0


def _with_mlserver_or_without(
    scenarios: list[Scenario], args: argparse.Namespace, notes: list[str]
) -> list[Scenario]:
    """Build MLServer's virtual environment once, outside any measurement; when that is
    not wanted or not possible, drop the MLServer servers and say why."""
    from benchmarks.mlserver.venv import (
        DEFAULT_VENV,
        MLServerVenvError,
        ensure_mlserver_venv,
        mlserver_executable,
    )

    reason = ""
    if args.no_mlserver:
        reason = "left out (--no-mlserver)"
    elif args.quick and not mlserver_executable(DEFAULT_VENV).exists():
        reason = f"skipped in --quick: its virtual environment {DEFAULT_VENV} is not built yet"
    else:
        stderr_log(f"[mlserver] preparing its virtual environment {DEFAULT_VENV} (once)")
        t0 = time.monotonic()
        try:
            ensure_mlserver_venv()
            stderr_log(f"[mlserver] ready after {time.monotonic() - t0:.0f} s")
        except MLServerVenvError as exc:
            reason = f"left out: its virtual environment could not be built: {exc}"
    if not reason:
        return scenarios
    notes.append(f"MLServer {reason}")
    stderr_log(f"[mlserver] {reason}")
    return [
        dataclasses.replace(
            s, servers=tuple(v for v in s.servers if v.label not in MLSERVER_LABELS)
        )
        for s in scenarios
    ]


def _run_drift(out_file: Path, quick: bool, notes: list[str]) -> dict | None:
    """benchmarks/drift_bench.py as a subprocess (it loads numba); its JSON, or None."""
    command = [sys.executable, str(REPO_ROOT / "benchmarks" / "drift_bench.py"),
               "--out", str(out_file), "--repeats", "3" if quick else "15"]  # fmt: skip
    stderr_log(f"[drift] {shlex.join(['python', *command[1:]])}")
    done = subprocess.run(
        command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=300, check=False
    )
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        notes.append(f"drift micro-benchmarks failed: {' | '.join(tail)}")
        return None
    result = orjson.loads(out_file.read_bytes())
    result["file"] = _shown(out_file)
    return result


def _shown(path: Path) -> str:
    return _relative(path, REPO_ROOT)


def _relative(path: Path, base: Path) -> str:
    try:
        return str(path.resolve().relative_to(base))
    except ValueError:
        return str(path.resolve())


if __name__ == "__main__":
    sys.exit(main())
