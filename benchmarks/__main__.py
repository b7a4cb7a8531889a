"""`python -m benchmarks [--quick] [--scenarios ...] [--out DIR]`: run the load-test scenarios.

Writes ``<out>/<timestamp>.json`` with every run, the medians and the ratios, prints the
summary, and (unless --no-report) renders it into benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import orjson

from benchmarks.launchers import REPO_ROOT
from benchmarks.machine import describe_machine
from benchmarks.report import RESULTS_DIR, render, write_readme
from benchmarks.runner import RunSettings, run_scenario, stderr_log
from benchmarks.scenarios import DEFAULT_SCENARIOS, SCENARIOS
from benchmarks.wrk import WrkError, ensure_wrk, wrk_version


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Load-test modelgate against baselines with wrk on loopback.",
    )
    parser.add_argument(
        "--scenarios",
        nargs="+",
        default=list(DEFAULT_SCENARIOS),
        metavar="NAME",
        help=f"scenarios to run (default: {' '.join(DEFAULT_SCENARIOS)}; "
        f"known: {', '.join(SCENARIOS)})",
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
        help="2 s per point, 1 s warm-up, 1 repetition (a check, not a result)",
    )
    parser.add_argument("--duration", type=float, help="seconds per measured point (default 10)")
    parser.add_argument("--reps", type=int, help="repetitions per point (default 3)")
    parser.add_argument("--warmup", type=float, help="warm-up seconds per server start (default 2)")
    parser.add_argument(
        "--quiet-wait",
        type=float,
        default=30.0,
        help="seconds to wait for other load to stop before each server start (default 30)",
    )
    parser.add_argument("--wrk-threads", type=int, default=1, help="wrk threads (default 1)")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR, help="folder for the JSON file")
    parser.add_argument(
        "--plots", action="store_true", help="also write matplotlib PNGs next to the JSON file"
    )
    parser.add_argument(
        "--no-report", action="store_true", help="do not rewrite benchmarks/README.md"
    )
    return parser


def settings_from(args: argparse.Namespace) -> RunSettings:
    duration, reps, warmup = (2.0, 1, 1.0) if args.quick else (10.0, 3, 2.0)
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
    unknown = [name for name in args.scenarios if name not in SCENARIOS]
    if unknown:
        parser.error(f"unknown scenario(s) {', '.join(unknown)}; known: {', '.join(SCENARIOS)}")
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
    for name in args.scenarios:
        stderr_log(f"[{name}] {SCENARIOS[name].title}")
        results["scenarios"].append(run_scenario(SCENARIOS[name], settings, wrk))
    results["elapsed_s"] = round(time.monotonic() - t0, 1)

    args.out.mkdir(parents=True, exist_ok=True)
    if args.plots:
        from benchmarks.plots import plot_results

        pictures = plot_results(results, args.out, stamp)
        results["plots"] = [_relative(path, REPO_ROOT / "benchmarks") for path in pictures]
    out_file.write_bytes(orjson.dumps(results, option=orjson.OPT_INDENT_2) + b"\n")
    print(render(results))
    print(f"results: {out_file}")
    if not args.no_report:
        write_readme(results)
        print(f"README: {REPO_ROOT / 'benchmarks' / 'README.md'}")
    return 1 if any(s.get("error") for s in results["scenarios"]) else 0


def _shown(path: Path) -> str:
    return _relative(path, REPO_ROOT)


def _relative(path: Path, base: Path) -> str:
    try:
        return str(path.resolve().relative_to(base))
    except ValueError:
        return str(path.resolve())


if __name__ == "__main__":
    sys.exit(main())
