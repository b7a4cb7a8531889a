"""Big batches: 1,000-row requests through modelgate against onnxruntime in-process.

    python -m benchmarks.big_batch [--quick] --out FILE [--no-report] [--quiet-wait S]

For the forest (``rf100``) and the MLP (``mlp``), side by side in one run:

(a) onnxruntime in this process, on the artifact modelgate serves, with the session options
    modelgate uses (``gateway.dataplane.runner.session_options`` with the default
    ``MODELGATE_ORT_INTRA_OP_THREADS``), calling ``session.run`` back to back on the same
    1,000-row arrays the clients send: rows per second;
(b) ``modelgate serve`` (1 worker, default settings: monitoring, drift windows and feedback
    on) answering 1,000-row requests in the binary tensor extension (outputs in binary too),
    at several connection counts, and as plain JSON for reference: rows per second.

The load generator is wrk with ``wrk_binary.lua`` (one thread, closed loop): C, so its own
cost per request is small, and the same tool as the other scenarios; its CPU is read from
the kernel and reported (cores and µs per request). Each modelgate run is paired with a
baseline run just before it; the order of the connection counts rotates per repetition; a
ratio is (b) / (a) of one pair, reported as the median with its min-max spread. The target
(>= 0.7x) is checked at modelgate's peak: the connection count with the highest median
rows per second. Every server is checked first: its binary and JSON answers must equal
onnxruntime's on the same rows (bitwise for float32).

The time split of one 1,000-row binary request is measured in process on the same home:
decode (aligned tensor: a view on the body; unaligned: one copy), onnxruntime run, encode,
monitoring (``record`` + the ``flush`` that moves the rows into metrics, the drift window
and the feedback table); medians.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import os
import resource
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from benchmarks.big_batch_bodies import (
    ROWS,
    binary_body,
    json_body,
    parse_binary_reply,
    request_arrays,
    write_bodies,
)
from benchmarks.big_batch_report import TARGET, render, summarize, write_section
from benchmarks.launchers import ADMIN_TOKEN, READY_PATH, REPO_ROOT, modelgate_command, server_env
from benchmarks.machine import describe_machine
from benchmarks.modelgate_home import build_home
from benchmarks.models import RECIPES, WORK_DIR
from benchmarks.procs import HOST, ServerProcess, free_port, system_busy_s, wait_for_quiet
from benchmarks.summarize import DISTURBED_OTHER_CPU
from benchmarks.wrk import ensure_wrk, run_wrk, wrk_version

MODELS = ("rf100", "mlp")
VERSION = "1.0.0"
SCRIPT = Path(__file__).with_name("wrk_binary.lua")


@dataclass(frozen=True)
class Profile:
    duration_s: float  # one modelgate run (wrk rounds to whole seconds)
    baseline_s: float  # one in-process run
    reps: int
    conns: tuple[int, ...]  # binary requests
    json_conns: int  # the JSON reference
    split_calls: int  # per step of the time split


FULL = Profile(3.0, 2.0, 3, (1, 2, 4, 8), 4, 40)
QUICK = Profile(2.0, 1.0, 1, (1, 4), 4, 10)


# --- (a) onnxruntime in process --------------------------------------------------------------


def cpu_self_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class InProcess:
    """onnxruntime on the served artifact with the session options modelgate uses."""

    def __init__(self, model_bytes: bytes, intra_op_threads: int) -> None:
        import onnxruntime as ort

        from gateway.dataplane.runner import session_options

        self.intra_op_threads = intra_op_threads
        self.session = ort.InferenceSession(
            model_bytes,
            sess_options=session_options(intra_op_threads),
            providers=["CPUExecutionProvider"],
        )
        self.outputs = [o.name for o in self.session.get_outputs()]
        self.input = self.session.get_inputs()[0].name

    def run(self, rows: np.ndarray) -> dict[str, np.ndarray]:
        return dict(
            zip(self.outputs, self.session.run(self.outputs, {self.input: rows}), strict=True)
        )

    def measure(self, arrays: list[np.ndarray], seconds: float) -> dict[str, Any]:
        run, outputs, name = self.session.run, self.outputs, self.input
        for rows in arrays:
            run(outputs, {name: rows})
        calls = 0
        cpu0, busy0, t0 = cpu_self_s(), system_busy_s(), time.perf_counter()
        end = t0 + seconds
        while True:
            run(outputs, {name: arrays[calls % len(arrays)]})
            calls += 1
            now = time.perf_counter()
            if now >= end:
                break
        wall = now - t0
        own = cpu_self_s() - cpu0
        other = max(0.0, system_busy_s() - busy0 - own) / wall
        return {
            "rows_per_s": calls * ROWS / wall,
            "calls": calls,
            "ms_per_call": wall / calls * 1000.0,
            "cpu_cores": own / wall,
            "other_cores": other,
        }


# --- (b) modelgate ---------------------------------------------------------------------------


def start_server(home: Path) -> ServerProcess:
    port = free_port()
    env = server_env()
    env["MODELGATE_ADMIN_TOKEN"] = ADMIN_TOKEN
    process = ServerProcess("modelgate", modelgate_command(home, port, 1), env, REPO_ROOT, port)
    process.start(READY_PATH)
    return process


def post(port: int, path: str, body: bytes, header_length: int) -> tuple[int, bytes, int | None]:
    """One POST: (status, body, the reply's Inference-Header-Content-Length or None)."""
    headers = {"Content-Type": "application/json"}
    if header_length:
        headers = {
            "Content-Type": "application/octet-stream",
            "Inference-Header-Content-Length": str(header_length),
        }
    conn = http.client.HTTPConnection(HOST, port, timeout=30)
    try:
        conn.request("POST", path, body=body, headers=headers)
        response = conn.getresponse()
        data = response.read()
        length = response.getheader("Inference-Header-Content-Length")
        return response.status, data, int(length) if length else None
    finally:
        conn.close()


def check_answers(
    port: int, path: str, arrays: list[np.ndarray], baseline: InProcess
) -> dict[str, Any]:
    """The server's binary and JSON answers equal onnxruntime's on the same rows."""
    rows = arrays[0]
    expected = baseline.run(rows)
    body, header_length = binary_body(rows)
    status, data, reply_length = post(port, path, body, header_length)
    if status != 200 or reply_length is None:
        raise RuntimeError(f"binary request answered {status}: {data[:300]!r}")
    got = parse_binary_reply(data, reply_length)
    for name, want in expected.items():
        if got[name].dtype != want.dtype or not np.array_equal(got[name], want):
            raise RuntimeError(f"binary output {name!r} differs from onnxruntime in process")
    status, data, _ = post(port, path, json_body(rows), 0)
    if status != 200:
        raise RuntimeError(f"JSON request answered {status}: {data[:300]!r}")
    for out in orjson.loads(data)["outputs"]:
        want = expected[out["name"]]
        if not np.array_equal(np.asarray(out["data"], dtype=want.dtype).reshape(want.shape), want):
            raise RuntimeError(f"JSON output {out['name']!r} differs from onnxruntime in process")
    return {"binary_reply_bytes": len(data), "outputs": sorted(expected), "equal": True}


def measure_server(
    wrk: str, process: ServerProcess, path: str, bodies: Path, conns: int, seconds: float
) -> dict[str, Any]:
    cpu0, busy0 = process.cpu_s(), system_busy_s()
    result = run_wrk(
        wrk,
        process.base_url + path,
        bodies,
        connections=conns,
        duration_s=seconds,
        timeout_s=10.0,
        script=SCRIPT,
    )
    server = process.cpu_s() - cpu0
    busy = system_busy_s() - busy0
    wall = result.duration_s or seconds
    client = result.cpu_user_s + result.cpu_system_s
    return {
        "rows_per_s": result.rps * ROWS,
        "requests": result.requests,
        "p50_ms": result.latency_us["p50"] / 1000.0,
        "p99_ms": result.latency_us["p99"] / 1000.0,
        "non_2xx": result.non_2xx,
        "socket_errors": result.socket_errors,
        "server_cores": server / wall,
        "server_cpu_ms_per_request": server / max(1, result.requests) * 1000.0,
        "wrk_cores": client / wall,
        "wrk_us_per_request": client / max(1, result.requests) * 1e6,
        "other_cores": max(0.0, busy - server - client) / wall,
    }


# --- the time split, in process --------------------------------------------------------------


def median_us(fn: Callable[[], object], calls: int) -> float:
    samples = []
    for _ in range(calls):
        start = time.perf_counter_ns()
        fn()
        samples.append(time.perf_counter_ns() - start)
    return statistics.median(samples) / 1000.0


async def _split(home: Path, model: str, rows: np.ndarray, calls: int) -> dict[str, Any]:
    from gateway.app import create_app
    from gateway.dataplane.codecs.oip import decode_infer_request, encode_infer_response
    from gateway.settings import Settings

    env = {k: v for k, v in os.environ.items() if not k.startswith("MODELGATE_")}
    env["MODELGATE_ADMIN_TOKEN"] = ADMIN_TOKEN
    app = create_app(Settings.from_environ(env, home=str(home)))
    async with app.router.lifespan_context(app):
        variant = app.state.gateway.holder.current.models[model].primary
        sig, recorder = variant.signature, variant.recorder
        body, header_length = binary_body(rows)
        odd_body, odd_length = binary_body(rows, align=1)
        if odd_length % 4 == 0:  # make the tensor misaligned: one more space
            odd_body = odd_body[:odd_length] + b" " + odd_body[odd_length:]
            odd_length += 1
        request = decode_infer_request(body, header_length, sig)
        aligned_view = bool(np.shares_memory(request.feeds["input"], np.frombuffer(body, np.uint8)))
        outputs = variant.runner.run(request.feeds)
        text = json_body(rows)
        json_request = decode_infer_request(text, None, sig)

        def monitoring() -> None:
            if recorder is not None:
                recorder.batches.append((request.feeds, outputs, 0))
                recorder.record(0, "split", request.feeds, outputs, ROWS, 1_000_000)
                recorder.flush()

        steps = {
            "decode_us": lambda: decode_infer_request(body, header_length, sig),
            "decode_unaligned_us": lambda: decode_infer_request(odd_body, odd_length, sig),
            "run_us": lambda: variant.runner.run(request.feeds),
            "encode_us": lambda: encode_infer_response(
                model, VERSION, "split", outputs, sig, request
            ),
            "monitoring_us": monitoring,
            "json_decode_us": lambda: decode_infer_request(text, None, sig),
            "json_encode_us": lambda: encode_infer_response(
                model, VERSION, "split", outputs, sig, json_request
            ),
        }
        split: dict[str, Any] = {
            key: median_us(fn, calls if key != "run_us" else max(5, calls // 2))
            for key, fn in steps.items()
        }
        split["decode_is_view_on_body"] = aligned_view
        split["batcher_mode"] = variant.batcher.mode
        split["max_batch_size"] = variant.batcher.max_batch_size
        return split


def time_split(home: Path, model: str, rows: np.ndarray, calls: int) -> dict[str, Any]:
    return asyncio.run(_split(home, model, rows, calls))


# --- one model -------------------------------------------------------------------------------


async def _artifact(home: Path, model: str) -> tuple[bytes, int]:
    from gateway.settings import Settings
    from registry.home import resolve_home
    from registry.sqlite.store import open_registry

    threads = Settings.from_environ({}, home=str(home)).ort_intra_op_threads
    registry = await open_registry(resolve_home(home))
    try:
        return await registry.read_artifact(model, VERSION), threads
    finally:
        await registry.close()


def log(message: str) -> None:
    print(f"[big_batch] {message}", file=sys.stderr, flush=True)


def run_model(model: str, profile: Profile, wrk: str, quiet_wait_s: float) -> dict[str, Any]:
    home = build_home(WORK_DIR / "homes" / f"{model}-big-batch", model, ())
    model_bytes, threads = asyncio.run(_artifact(home, model))
    baseline = InProcess(model_bytes, threads)
    arrays = request_arrays()
    work = WORK_DIR / "big_batch"
    work.mkdir(parents=True, exist_ok=True)
    binary_file = write_bodies(work / f"{model}-binary.bin", [binary_body(a) for a in arrays])
    json_file = write_bodies(work / f"{model}-json.bin", [(json_body(a), 0) for a in arrays])
    path = f"/v2/models/{model}/infer"
    runs: list[dict[str, Any]] = []
    process = start_server(home)
    try:
        check = check_answers(process.port, path, arrays, baseline)
        log(f"{model}: answers equal onnxruntime's; warming up")
        measure_server(wrk, process, path, binary_file, max(profile.conns), 1.0)
        points = [("binary", c) for c in profile.conns] + [("json", profile.json_conns)]
        for rep in range(profile.reps):
            busy = wait_for_quiet(quiet_wait_s, DISTURBED_OTHER_CPU, sample_s=0.5)
            shift = rep % len(points)
            for kind, conns in points[shift:] + points[:shift]:
                base = baseline.measure(arrays, profile.baseline_s)
                bodies = binary_file if kind == "binary" else json_file
                served = measure_server(wrk, process, path, bodies, conns, profile.duration_s)
                ratio = served["rows_per_s"] / base["rows_per_s"]
                runs.append(
                    {"rep": rep, "kind": kind, "conns": conns, "ratio": ratio,
                     "quiet_before": busy, "baseline": base, "modelgate": served}
                )  # fmt: skip
                log(
                    f"{model} rep {rep} {kind} c={conns}: {served['rows_per_s']:,.0f} rows/s "
                    f"vs {base['rows_per_s']:,.0f} in process = {ratio:.2f}x "
                    f"(wrk {served['wrk_cores']:.2f} cores, other {served['other_cores']:.2f})"
                )
    finally:
        process.close()
    split = time_split(home, model, arrays[0], profile.split_calls)
    result = {
        "description": RECIPES[model][0],
        "intra_op_threads": threads,
        "check": check,
        "runs": runs,
        "split": split,
    }
    result["summary"] = summarize(result)
    return result


def _shown(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(REPO_ROOT))
    except ValueError:
        return str(path)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 repetition, 2 connection counts")
    parser.add_argument("--out", type=Path, required=True, help="the JSON results file")
    parser.add_argument("--no-report", action="store_true", help="leave README.md alone")
    parser.add_argument(
        "--quiet-wait",
        type=float,
        default=5.0,
        help="before each repetition, wait up to this long for a quiet machine",
    )
    parser.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS))
    args = parser.parse_args(argv)
    profile = QUICK if args.quick else FULL
    wrk = ensure_wrk()
    started = datetime.now(UTC)
    t0 = time.monotonic()
    results: dict[str, Any] = {
        "command": " ".join(["python -m benchmarks.big_batch", *argv]),
        "file": _shown(args.out),
        "started_at": started.isoformat(timespec="seconds"),
        "machine": describe_machine(REPO_ROOT, wrk_version(wrk)),
        "profile": asdict(profile),
        "rows_per_request": ROWS,
        "target": TARGET,
        "models": {},
    }
    for model in args.models:
        log(f"{model}: building the home and measuring")
        results["models"][model] = run_model(model, profile, wrk, max(0.0, args.quiet_wait))
    results["targets_met"] = {m: r["summary"]["met"] for m, r in results["models"].items()}
    results["elapsed_s"] = round(time.monotonic() - t0, 1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(orjson.dumps(results, option=orjson.OPT_INDENT_2) + b"\n")
    text = render(results)
    print(text)
    if not args.no_report:
        write_section(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
