"""Summary, verdict and README section of the big-batch benchmark (``big_batch.py``)."""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

from benchmarks import readme_section
from benchmarks.readme_section import README
from benchmarks.summarize import DISTURBED_OTHER_CPU

TARGET = 0.7  # modelgate rows/s over onnxruntime's in process, at modelgate's peak
MARKER = "big_batch"


def spread(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def summarize(result: dict[str, Any]) -> dict[str, Any]:
    """Per point medians, and the verdict at modelgate's peak binary throughput."""
    points: dict[str, dict[str, Any]] = {}
    for run in result["runs"]:
        key = f"{run['kind']}-{run['conns']}"
        points.setdefault(key, {"kind": run["kind"], "conns": run["conns"], "runs": []})
        points[key]["runs"].append(run)
    table = []
    for point in points.values():
        runs, served = point["runs"], [r["modelgate"] for r in point["runs"]]
        table.append(
            {
                "kind": point["kind"],
                "conns": point["conns"],
                "rows_per_s": spread([s["rows_per_s"] for s in served]),
                "baseline_rows_per_s": spread([r["baseline"]["rows_per_s"] for r in runs]),
                "ratio": spread([r["ratio"] for r in runs]),
                "p50_ms": statistics.median(s["p50_ms"] for s in served),
                "p99_ms": statistics.median(s["p99_ms"] for s in served),
                "server_cores": statistics.median(s["server_cores"] for s in served),
                "server_cpu_ms_per_request": statistics.median(
                    s["server_cpu_ms_per_request"] for s in served
                ),
                "wrk_cores": statistics.median(s["wrk_cores"] for s in served),
                "wrk_us_per_request": statistics.median(s["wrk_us_per_request"] for s in served),
                "other_cores_max": max(
                    max(r["baseline"]["other_cores"], r["modelgate"]["other_cores"]) for r in runs
                ),
                "errors": sum(s["non_2xx"] + s["socket_errors"] for s in served),
            }
        )
    binary = [row for row in table if row["kind"] == "binary"]
    peak = max(binary, key=lambda row: row["rows_per_s"]["median"])
    met = peak["ratio"]["median"] >= TARGET and peak["errors"] == 0
    return {
        "points": table,
        "peak_conns": peak["conns"],
        "ratio": peak["ratio"],
        "met": met,
        "disturbed": peak["other_cores_max"] > DISTURBED_OTHER_CPU,
        "reason": "" if met else miss_reason(peak, result["split"]),
    }


def miss_reason(peak: dict[str, Any], split: dict[str, Any]) -> str:
    """Why the peak missed the target, from what the run measured."""
    if peak["errors"]:
        return f"{peak['errors']} failed requests at {_conns(peak['conns'])}"
    loop_ms = (split["decode_us"] + split["encode_us"] + split["monitoring_us"]) / 1000.0
    disturbed = peak["other_cores_max"] > DISTURBED_OTHER_CPU
    return (
        f"at {_conns(peak['conns'])} the server used {peak['server_cores']:.2f} cores and "
        f"{peak['server_cpu_ms_per_request']:.1f} ms of CPU per request against "
        f"{split['run_us'] / 1000:.1f} ms of onnxruntime run (decode + encode + monitoring "
        f"{loop_ms:.2f} ms; the rest is HTTP and the thread hop)"
        + ("; other processes took CPU during the run" if disturbed else "")
    )


def _conns(n: int) -> str:
    return f"{n} connection" + ("" if n == 1 else "s")


def _num(value: float) -> str:
    return f"{value:,.0f}"


def _verdict(summary: dict[str, Any]) -> str:
    verdict = "PASS" if summary["met"] else f"FAIL: {summary['reason']}"
    if summary["disturbed"]:
        verdict += " (disturbed: other load above 0.25 cores; rerun on a quiet machine)"
    return verdict


def render(results: dict[str, Any]) -> str:
    machine = results["machine"]
    lines = [
        f"From `{results['command']}` at {results['started_at']} on {machine['cpu_model']} "
        f"({machine['cores']} cores), commit {machine.get('git_commit')}. Target: modelgate "
        f">= {TARGET}x onnxruntime in process on 1,000-row binary requests, at modelgate's "
        "peak.",
        "",
        "| model | target | modelgate / in process | verdict |",
        "| --- | --- | --- | --- |",
    ]
    for model, res in results["models"].items():
        s, r = res["summary"], res["summary"]["ratio"]
        lines.append(
            f"| {model} ({res['description']}) | >= {TARGET}x | {r['median']:.2f}x "
            f"({r['min']:.2f}-{r['max']:.2f}) at {_conns(s['peak_conns'])} "
            f"| {_verdict(s)} |"
        )
    lines += [
        "",
        "| model | request | conns | modelgate rows/s | in-process rows/s | ratio | p50 / p99 ms "
        "| server cores (CPU ms/request) | wrk cores (µs/request) | other cores, max |",
        "| --- | --- | ---: | ---: | ---: | --- | --- | --- | --- | --- |",
    ]
    for model, res in results["models"].items():
        for row in res["summary"]["points"]:
            rows, base, ratio = row["rows_per_s"], row["baseline_rows_per_s"], row["ratio"]
            errors = f", **{row['errors']} errors**" if row["errors"] else ""
            lines.append(
                f"| {model} | {row['kind']} | {row['conns']} | {_num(rows['median'])} "
                f"({_num(rows['min'])}-{_num(rows['max'])}) | {_num(base['median'])} "
                f"| {ratio['median']:.2f}x ({ratio['min']:.2f}-{ratio['max']:.2f}){errors} "
                f"| {row['p50_ms']:.1f} / {row['p99_ms']:.1f} "
                f"| {row['server_cores']:.2f} ({row['server_cpu_ms_per_request']:.2f}) "
                f"| {row['wrk_cores']:.2f} ({row['wrk_us_per_request']:.0f}) "
                f"| {row['other_cores_max']:.2f} |"
            )
    lines += [
        "",
        "Time split of one 1,000-row binary request, in process (medians, µs):",
        "",
        "| model | decode (view) | decode (unaligned: 1 copy) | onnxruntime run | encode "
        "| monitoring | JSON decode | JSON encode | batcher |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for model, res in results["models"].items():
        sp = res["split"]
        view = "" if sp["decode_is_view_on_body"] else " (copy!)"
        lines.append(
            f"| {model} | {sp['decode_us']:.0f}{view} | {sp['decode_unaligned_us']:.0f} "
            f"| {_num(sp['run_us'])} | {sp['encode_us']:.0f} | {sp['monitoring_us']:.0f} "
            f"| {_num(sp['json_decode_us'])} | {sp['json_encode_us']:.0f} "
            f"| {sp['batcher_mode']}, > {sp['max_batch_size']} rows on the worker thread |"
        )
    p = results["profile"]
    threads = ", ".join(f"{m} {r['intra_op_threads']}" for m, r in results["models"].items())
    lines += [
        "",
        f"{p['reps']} repetition(s); each modelgate run ({p['duration_s']:g} s of wrk) is paired "
        f"with an in-process run just before it ({p['baseline_s']:g} s); medians (min-max). "
        f"onnxruntime intra-op threads: {threads}. Other cores above {DISTURBED_OTHER_CPU} "
        "mean other processes took CPU during a pair. Results: "
        f"`{results['file']}`.",
    ]
    return "\n".join(lines) + "\n"


def write_section(body: str, readme: Path = README) -> None:
    """Replace the text between the ``big_batch`` markers of ``readme``."""
    readme_section.write_section(MARKER, body, readme)
