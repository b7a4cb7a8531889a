"""Benchmarks that run beside the load scenarios, each its own module and subprocess.

Each entry is a module runnable as ``python -m benchmarks.<module> [--quick] --out FILE
[--no-report]``: it measures side by side in one run, writes its JSON to ``FILE`` and, unless
``--no-report``, its own section of benchmarks/README.md between ``<!-- <name>:start -->`` and
``<!-- <name>:end -->``. ``python -m benchmarks`` runs every entry after the load scenarios
(the published suite, and a smaller variant with ``--quick``).
"""

from __future__ import annotations

import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import orjson

from benchmarks.launchers import REPO_ROOT
from benchmarks.runner import stderr_log


@dataclass(frozen=True)
class Extra:
    name: str  # README marker name and key in the results JSON
    module: str  # benchmarks.<module>
    timeout_s: float  # of the full run; --quick gets a third


# one line per benchmark; keep the list sorted by name
EXTRAS: tuple[Extra, ...] = (
    Extra("big_batch", "big_batch", 600.0),  # 1,000-row binary requests vs ORT in process
    Extra("drift_quality", "drift_quality", 7200.0),  # builds its peers' venv once
    Extra("label_free_cost", "label_free_cost", 300.0),  # label-free monitors per drift cycle
    Extra("request_cost", "request_cost", 1200.0),  # one request's microseconds, vs null server
    Extra("scale", "scale", 2400.0),  # a hundred models on one gateway
)


def run_extra(
    extra: Extra, out_dir: Path, quick: bool, report: bool, notes: list[str]
) -> dict | None:
    """Run one extra benchmark as a subprocess; its JSON, or None (and a note) on failure."""
    out_file = out_dir / (f"{extra.name}-quick.json" if quick else f"{extra.name}.json")
    command = [sys.executable, "-m", f"benchmarks.{extra.module}", "--out", str(out_file)]
    if quick:
        command.append("--quick")
    if not report:
        command.append("--no-report")
    stderr_log(f"[{extra.name}] {shlex.join(['python', *command[1:]])}")
    timeout = extra.timeout_s / 3 if quick else extra.timeout_s
    try:
        done = subprocess.run(
            command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired:
        notes.append(f"{extra.name}: timed out after {timeout:.0f} s")
        return None
    if done.returncode != 0 or not out_file.exists():
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        notes.append(f"{extra.name} failed: {' | '.join(tail)}")
        return None
    return orjson.loads(out_file.read_bytes())
