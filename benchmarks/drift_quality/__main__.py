"""Drift quality side by side: modelgate's detectors, Evidently and NannyML on the same streams.

    python -m benchmarks.drift_quality [--quick] --out FILE [--no-report]

Generates the seeded streams (``streams.py``), writes them to ``benchmarks/.work/
drift-quality/``, judges them with modelgate's drift-cycle functions in this process
(``ours.py``), then with Evidently and NannyML in their own virtual environment
(``venv.py``, ``peers.py``, a subprocess reading the same file), and writes the JSON and,
unless ``--no-report``, the ``drift_quality`` section of benchmarks/README.md. A peer
environment that cannot be built leaves the peer columns "not run" with pip's error.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.drift_quality import ours, table
from benchmarks.drift_quality.streams import (
    CATEGORICAL,
    CATEGORIES,
    NUMERIC,
    Config,
    DelayCase,
    Windows,
    delay_cases,
    reference,
    windows,
)
from benchmarks.drift_quality.venv import PeerVenvError, ensure_peer_venv
from benchmarks.models import WORK_DIR
from benchmarks.readme_section import README, write_section

HERE = Path(__file__).parent
PEER_TIMEOUT_S = 3600.0
# the peers' windows are independent: this many forked processes share them (Evidently's
# report costs seconds of CPU per window; the modelgate side needs no such help)
PEER_WORKERS = 6


def write_streams(
    path: Path,
    config: Config,
    ref: tuple[np.ndarray, np.ndarray],
    judged: Windows,
    cases: list[DelayCase],
) -> None:
    """Everything the peers judge, as one ``.npz`` (arrays plus a JSON ``meta``)."""
    delay_numeric, delay_codes, case_of, since = [], [], [], []
    for index, case in enumerate(cases):
        for cycle in case.cycles_s:
            numeric, codes = case.window(cycle, config.window_rows)
            delay_numeric.append(numeric)
            delay_codes.append(codes)
            case_of.append(index)
            since.append(cycle - case.shift_at_s)
    meta = {
        "numeric": list(NUMERIC),
        "categorical": list(CATEGORICAL),
        "categories": {k: list(v) for k, v in CATEGORIES.items()},
        "window_rows": config.window_rows,
        "windows_scenario": list(judged.scenario),
        "delay_cases": len(cases),
        "delay_case": case_of,
        "delay_since_shift_s": since,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(
        path,
        meta=np.array(json.dumps(meta)),
        reference_numeric=ref[0],
        reference_codes=ref[1],
        windows_numeric=judged.numeric,
        windows_codes=judged.codes,
        delay_numeric=np.stack(delay_numeric),
        delay_codes=np.stack(delay_codes),
    )


def run_peers(streams: Path, out: Path) -> dict[str, Any]:
    """The peers' results, or ``{"error": one line}`` when they could not run."""
    try:
        python = ensure_peer_venv()
    except PeerVenvError as exc:
        return {"error": str(exc)}
    command = [str(python), str(HERE / "peers.py"), str(streams), str(out), str(PEER_WORKERS)]
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=PEER_TIMEOUT_S, check=False
        )
    except subprocess.TimeoutExpired:
        return {"error": f"peers.py did not finish in {PEER_TIMEOUT_S:.0f} s"}
    if done.returncode != 0 or not out.exists():
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        return {"error": f"peers.py failed (exit {done.returncode}): {' | '.join(tail)}"}
    return dict(json.loads(out.read_text()))


def run(config: Config, quick: bool, with_peers: bool = True) -> dict[str, Any]:
    started = time.perf_counter()
    load = [os.getloadavg()[0]]
    ref, judged, cases = reference(config), windows(config), delay_cases(config)
    registered = ours.registered_reference(*ref)
    verdicts = ours.judge_windows(registered, judged)
    delays: dict[str, list] = ours.delays(registered, cases, config)
    peers: dict[str, Any] = {"error": "skipped (modelgate side only)"}
    if with_peers:
        work = WORK_DIR / "drift-quality"
        name = "streams-quick" if quick else "streams"
        write_streams(work / f"{name}.npz", config, ref, judged, cases)
        peers = run_peers(work / f"{name}.npz", work / f"{name}-peers.json")
    if "error" not in peers:
        verdicts.update(peers.pop("windows"))
        delays.update(peers.pop("delays"))
    load.append(os.getloadavg()[0])
    scenarios = list(judged.scenario)
    return {
        "config": {**config.__dict__},
        "quick": quick,
        "peers": peers,
        "delay_cases": [
            {
                "seed": c.seed,
                "shift": c.shift,
                "rate": c.rate,
                "shift_at_s": c.shift_at_s,
                "horizon_s": c.cycles_s[-1] - c.shift_at_s,
            }
            for c in cases
        ],
        "summary": table.summarize(scenarios, verdicts, delays),
        "windows": {"scenario": scenarios, **verdicts},
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "load_average": load,
        "cores": os.cpu_count(),
        "wall_s": time.perf_counter() - started,
        "command": " ".join(["python -m benchmarks.drift_quality", shlex.join(sys.argv[1:])]),
    }


def write_readme(result: dict[str, Any], readme: Path = README) -> None:
    write_section("drift_quality", table.section(result), readme)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few windows: a harness check")
    parser.add_argument("--out", type=Path, required=True, help="results JSON")
    parser.add_argument("--no-report", action="store_true", help="leave the README alone")
    args = parser.parse_args(argv)
    config = Config.quick() if args.quick else Config()
    result = run(config, args.quick)
    print(table.section(result))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    if not args.no_report:
        write_readme(result)
    print(f"written: {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
