"""Measure MLServer settings side by side: ``python -m benchmarks.mlserver.tune``.

It serves the harness's 30-feature model with each MLServer configuration in turn and
loads it with wrk, the same way the harness does (same bodies, same Lua script, one wrk
thread). This is how the defaults in settings.MLServerOptions were chosen; the numbers are
single absolute figures for one machine and one moment, not results (those are the
harness's side-by-side ratios).

A configuration is ``KIND:WORKERS[:metrics][:batch=SIZE/SECONDS]``, e.g. ``sklearn:0``,
``onnx:1:metrics`` or ``sklearn:0:batch=16/0.002``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.mlserver.launch import infer_path, start_mlserver, stop_mlserver, wait_ready
from benchmarks.mlserver.settings import KINDS, MLServerOptions
from benchmarks.models import WORK_DIR, build_model, request_rows
from benchmarks.payloads import write_bodies
from benchmarks.procs import (
    HOST,
    free_port,
    process_tree_cpu_s,
    system_busy_s,
    wait_for_quiet,
)
from benchmarks.wrk import ensure_wrk, run_wrk

DEFAULT_CONFIGS = ("sklearn:0", "onnx:0", "sklearn:1", "onnx:1", "sklearn:2", "onnx:2")


def parse_config(text: str) -> tuple[str, MLServerOptions]:
    kind, _, rest = text.partition(":")
    parts = rest.split(":") if rest else ["0"]
    try:
        if kind not in KINDS:
            raise ValueError(f"unknown variant {kind!r}; known: {', '.join(KINDS)}")
        fields: dict[str, Any] = {"parallel_workers": int(parts[0])}
        for part in parts[1:]:
            if part == "metrics":
                fields["metrics"] = True
            elif part.startswith("batch="):
                size, _, seconds = part.removeprefix("batch=").partition("/")
                fields["max_batch_size"] = int(size)
                fields["max_batch_time"] = float(seconds)
            else:
                raise ValueError(f"unknown option {part!r}")
        return kind, MLServerOptions(**fields)
    except ValueError as exc:
        raise SystemExit(f"bad configuration {text!r}: {exc}") from exc


def measure(
    config: str, model: str, bodies: Path, connections: list[int], duration_s: float, wrk: str
) -> list[dict[str, Any]]:
    kind, options = parse_config(config)
    built = build_model(model)
    model_file = built.estimator_path if kind == "sklearn" else built.onnx_path
    quiet = wait_for_quiet(180.0, 0.25)
    port = free_port()
    proc = start_mlserver(model_file, kind, port, name=model, options=options)
    rows = []
    try:
        wait_ready(port, name=model, proc=proc)
        url = f"http://{HOST}:{port}{infer_path(model)}"
        run_wrk(wrk, url, bodies, connections=max(connections), duration_s=2.0)
        for conns in connections:
            cpu, busy, start = process_tree_cpu_s(proc.pid), system_busy_s(), time.monotonic()
            res = run_wrk(wrk, url, bodies, connections=conns, duration_s=duration_s)
            wall = time.monotonic() - start
            server = (process_tree_cpu_s(proc.pid) - cpu) / wall
            load = (res.cpu_user_s + res.cpu_system_s) / wall
            rows.append({
                "config": config, "connections": conns, "rps": round(res.rps),
                "p50_ms": res.latency_us["p50"] / 1000, "p99_ms": res.latency_us["p99"] / 1000,
                "non_2xx": res.non_2xx, "socket_errors": res.socket_errors,
                "server_cores": round(server, 2), "wrk_cores": round(load, 2),
                "other_cores": round(max(0.0, (system_busy_s() - busy) / wall - server - load), 2),
                "quiet_before": round(quiet, 2),
            })  # fmt: skip
    finally:
        stop_mlserver(proc)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.mlserver.tune")
    parser.add_argument("configs", nargs="*", default=list(DEFAULT_CONFIGS))
    parser.add_argument("--model", default="logreg")
    parser.add_argument("--connections", type=int, nargs="+", default=[16, 64])
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--json", type=Path, help="also write the rows to this file")
    args = parser.parse_args(argv)
    for config in args.configs:
        parse_config(config)  # fail on a typo before minutes of measuring
    wrk = ensure_wrk()
    # the harness's rows and encoding, in a file of our own (a harness run may be going on)
    bodies = WORK_DIR / "mlserver-bodies.jsonl"
    write_bodies(bodies, request_rows())
    print("| config | conns | req/s | p50 ms | p99 ms | errors | server cores | other cores |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    rows: list[dict[str, Any]] = []
    for config in args.configs:
        for row in measure(config, args.model, bodies, args.connections, args.duration, wrk):
            rows.append(row)
            errors = row["non_2xx"] + row["socket_errors"]
            print(f"| {config} | {row['connections']} | {row['rps']} | {row['p50_ms']:.1f} | "
                  f"{row['p99_ms']:.1f} | {errors} | {row['server_cores']} | "
                  f"{row['other_cores']} |", flush=True)  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
