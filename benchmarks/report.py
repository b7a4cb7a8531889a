"""Render a results file as markdown and write it into benchmarks/README.md between markers.

Usage: ``python -m benchmarks.report [RESULTS.json]`` (default: the newest file in
benchmarks/results/). Only the text between the ``<!-- load:start -->`` /
``<!-- load:end -->``, ``<!-- sweep:... -->`` and ``<!-- drift:... -->`` markers is
replaced (the last two only when the run has something for them); the rest of the
README is left alone.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import orjson

from benchmarks.readme_section import replace_section
from benchmarks.summarize import DISTURBED_OTHER_CPU

HERE = Path(__file__).resolve().parent
README = HERE / "README.md"
RESULTS_DIR = HERE / "results"
START, END = "<!-- load:start -->", "<!-- load:end -->"


def _spread(value: dict[str, float] | None, scale: float = 1.0, digits: int = 2) -> str:
    if not value:
        return "n/a"
    med, low, high = (value[k] / scale for k in ("median", "min", "max"))
    if value.get("n", 1) < 2:
        return f"{med:.{digits}f}"
    return f"{med:.{digits}f} ({low:.{digits}f}–{high:.{digits}f})"


def _verdict(ratio: dict[str, Any]) -> str:
    if ratio.get("value") is None:
        return "not measured"
    suffix = " (failed requests)" if ratio["clean"] is False else ""
    if ratio.get("censored"):
        suffix += " (bound: a server left requests unanswered for the whole run)"
    if ratio.get("other_cpu_max", 0) > DISTURBED_OTHER_CPU:
        suffix += " (disturbed)"
    if ratio["passed"] is None:
        return "info" + suffix
    return ("**PASS**" if ratio["passed"] else "**FAIL**") + suffix


def _target(ratio: dict[str, Any]) -> str:
    return f"{ratio['op']} {ratio['target']:g}" if ratio["target"] is not None else "—"


def _ratio_row(scenario: str, r: dict[str, Any]) -> str:
    other = r.get("other_cpu_max")
    return (
        f"| {scenario} | {r['name']} | {r['connections']} | {r['workers']} "
        f"| {_spread(r['value'])} | {_target(r)} | {_verdict(r)} "
        f"| {'' if other is None else f'{other:.2f}'} |"
    )


RATIO_HEAD = [
    "| scenario | ratio | conns | workers | median (min–max) | target | result | CPU other (max) |",
    "| --- | --- | ---: | ---: | --- | --- | --- | ---: |",
]


def render_targets(results: dict[str, Any]) -> list[str]:
    rows = [
        _ratio_row(s["name"], r)
        for s in results["scenarios"]
        for r in s.get("ratios", [])
        if r["target"] is not None
    ]
    rows += _rollback_rows(results)
    rows += _shadow_rows(results)
    if not rows:
        return ["(these scenarios define no targets)"]
    return RATIO_HEAD + rows


def _swap_rate(scenario: dict[str, Any], point: dict[str, Any]) -> float:
    runs = [
        run
        for run in scenario.get("runs", [])
        if run["server"] == point["server"] and run["connections"] == point["connections"]
    ]
    seconds = sum(run["duration_s"] for run in runs)
    return point["swaps_ok"] / seconds if seconds > 0 else 0.0


def _rollback_rows(results: dict[str, Any]) -> list[str]:
    rows = []
    for scenario in results["scenarios"]:
        for p in scenario.get("points", []):
            if "swaps_ok" not in p:
                continue
            server = next((s for s in scenario["servers"] if s["label"] == p["server"]), {})
            every = server.get("rollback_every_s") or 0.1
            rate = _swap_rate(scenario, p)
            verdict = "**PASS**" if rate >= 1 / every else "**FAIL**"
            rows.append(
                f"| {scenario['name']} | rollbacks done per second under load "
                f"(asked: one every {every * 1000:g} ms) | {p['connections']} | {p['workers']} "
                f"| {rate:.2f} | >= {1 / every:g} | {verdict} "
                f"| {p['other_cpu']['max']:.2f} |"
            )
            failed = p["non_2xx"] + p["socket_errors"]
            ok = failed == 0 and p["swaps_ok"] > 0 and p["swaps_failed"] == 0
            rows.append(
                f"| {scenario['name']} | non-2xx + socket errors during "
                f"{p['swaps_ok']} rollbacks ({p['swaps_failed']} failed) | {p['connections']} "
                f"| {p['workers']} | {failed} | = 0 | {'**PASS**' if ok else '**FAIL**'} "
                f"| {p['other_cpu']['max']:.2f} |"
            )
    return rows


def _shadow_rows(results: dict[str, Any]) -> list[str]:
    """The drop rate the shadow target asks to report (no threshold: a copy that cannot
    keep up is dropped rather than delay a primary answer)."""
    rows = []
    for scenario in results["scenarios"]:
        for p in scenario.get("points", []):
            if p.get("shadow_drop_rate") is None:
                continue
            mirrored = p["shadow_compared"] + p["shadow_failed"] + p["shadow_dropped"]
            rows.append(
                f"| {scenario['name']} | shadow copies dropped ({p['shadow_dropped']} of "
                f"{mirrored}; {p['shadow_compared']} compared, {p['shadow_failed']} failed) "
                f"| {p['connections']} | {p['workers']} | {p['shadow_drop_rate']:.1%} "
                f"| reported | info | {p['other_cpu']['max']:.2f} |"
            )
    return rows


def render_ratios(results: dict[str, Any]) -> list[str]:
    rows = [_ratio_row(s["name"], r) for s in results["scenarios"] for r in s.get("ratios", [])]
    return RATIO_HEAD + rows if rows else ["(these scenarios define no ratios)"]


def render_scenario(scenario: dict[str, Any]) -> list[str]:
    lines = [f"#### {scenario['name']}: {scenario['title']}", ""]
    if scenario.get("error"):
        lines += [f"**Did not complete:** `{scenario['error'].splitlines()[0]}`", ""]
    disturbed = scenario.get("disturbed_runs", 0)
    if disturbed:
        lines += [
            f"**Disturbed:** {disturbed} of {len(scenario['runs'])} runs had other processes "
            f"using more than {DISTURBED_OTHER_CPU} cores of the machine (CPU other column); "
            "their absolute numbers are low, the interleaved ratios less affected.",
            "",
        ]
    for server in scenario["servers"]:
        lines.append(f"- `{server['label']}`: {server['description']} — `{server['command']}`")
        split = server.get("observed_split")
        if split:
            seen = ", ".join(f"{version}: {n}" for version, n in sorted(split.items()))
            lines.append(f"  (X-Model-Version of {sum(split.values())} check requests: {seen})")
    lines += [
        "",
        "| server | conns | workers | req/s | p50 ms | p99 ms | non-2xx | socket errors "
        "| CPU wrk | CPU server | CPU other |",
        "| --- | ---: | ---: | --- | --- | --- | ---: | ---: | --- | --- | --- |",
    ]
    for p in scenario.get("points", []):
        lines.append(
            f"| {p['server']} | {p['connections']} | {p['workers']} "
            f"| {_spread(p['rps'], digits=0)} "
            f"| {_spread(p['p50'], 1000)} | {_spread(p['p99'], 1000)} | {p['non_2xx']} "
            f"| {p['socket_errors']} | {_spread(p['wrk_cpu'])} | {_spread(p['server_cpu'])} "
            f"| {_spread(p['other_cpu'])} |"
        )
    for p in scenario.get("points", []):
        if "swaps_ok" in p:
            lines += [
                "",
                f"`{p['server']}` at {p['connections']} connections: {p['swaps_ok']} rollbacks "
                f"answered 200, {p['swaps_failed']} did not"
                + (f" (first: `{p['swap_failures'][0]}`)" if p.get("swap_failures") else "")
                + f"; the load saw {p['non_2xx']} non-2xx and {p['socket_errors']} socket errors."
                + (
                    f" A rollback took {p['swap_p50_ms']:.0f} ms (median of the runs' medians), "
                    f"{p['swap_max_ms']:.0f} ms at most, from request to answer."
                    if p.get("swap_p50_ms") is not None
                    else ""
                ),
            ]
    return lines + [""]


def _plots_of(results: dict[str, Any], scenario: str) -> list[str]:
    return [p for p in results.get("plots", []) if Path(p).stem.endswith(f"-{scenario}")]


def render(results: dict[str, Any]) -> str:
    machine = results["machine"]
    settings = results["settings"]
    packages = ", ".join(f"{k} {v}" for k, v in machine["packages"].items() if v)
    elapsed = results.get("elapsed_s")
    lines = [
        f"Run of {results['started_at']} (`{results['file']}`), commit `{machine['git_commit']}`"
        + (f", {elapsed / 60:.1f} minutes in all." if elapsed else "."),
        "",
        f"- Command: `{results['command']}`",
        f"- Machine: {machine['cpu_model']}, {machine['cores']} cores "
        f"({machine['cores_usable']} usable), {machine['memory_gib']} GiB, "
        f"kernel {machine['kernel']}, Python {machine['python']}, {machine['wrk']}",
        f"- Packages: {packages}",
        f"- Load: wrk -t{settings['wrk_threads']}, {settings['duration_s']:g} s per point after "
        f"a {settings['warmup_s']:g} s warm-up, {settings['repetitions']} repetition(s), "
        "single-row requests with 30 features, 1 worker unless stated",
        *(f"- Note: {note}" for note in results.get("notes", [])),
        "",
        "**Targets.** Median of the per-repetition ratios, min–max in brackets; CPU other is "
        "the largest disturbance (cores used by other processes) among the runs behind it.",
        "",
        *render_targets(results),
        "",
        "**All ratios.**",
        "",
        *render_ratios(results),
        "",
        "**Raw medians per server** (context for the ratios only: absolute numbers on this "
        "shared 2-core machine drift by ±25 % between runs; compare within one run).",
        "",
    ]
    for scenario in results["scenarios"]:
        lines += render_scenario(scenario)
        for picture in _plots_of(results, scenario["name"]):
            lines += [f"![{Path(picture).stem}]({picture})", ""]
    return "\n".join(lines).rstrip() + "\n"


def render_sweep(results: dict[str, Any]) -> str | None:
    sweeps = [s for s in results["scenarios"] if s["name"].startswith("sweep-")]
    if not sweeps:
        return None
    lines = [
        f"From the run of {results['started_at']} (`{results['file']}`; tables above). "
        "Medians with min–max whiskers, log axes, one line per server.",
        "",
    ]
    for scenario in sweeps:
        lines.append(f"- {scenario['title']}")
        lines += [f"  ![{Path(p).stem}]({p})" for p in _plots_of(results, scenario["name"])]
    return "\n".join(lines) + "\n"


def render_drift(results: dict[str, Any]) -> str | None:
    drift = results.get("drift")
    if not drift:
        return None
    try:
        from benchmarks.drift_bench import table
    except ImportError:  # numba or the gateway missing: show the rows without it
        rows = [f"| {r['measure']} | {r['ns']:,.0f} ns | {r['target']} |" for r in drift["results"]]
        text = "\n".join(["| measure | median | target |", "| --- | ---: | --- |", *rows])
    else:
        text = table(drift)
    met = ", ".join(f"{k}: {'PASS' if v else 'FAIL'}" for k, v in drift["targets_met"].items())
    return f"Run as part of the load-test run (`{drift['file']}`). Targets: {met}.\n\n{text}\n"


def write_readme(results: dict[str, Any], readme: Path = README) -> None:
    text = replace_section(readme.read_text(), "load", render(results))
    for name, body in (("sweep", render_sweep(results)), ("drift", render_drift(results))):
        if body is not None and f"<!-- {name}:start -->" in text:
            text = replace_section(text, name, body)
    readme.write_text(text)


def newest_results(folder: Path = RESULTS_DIR) -> Path:
    # load-test runs are named <UTC timestamp>.json; other benchmarks keep files here too
    files = sorted(folder.glob("[0-9]*T*Z.json"))
    if not files:
        raise FileNotFoundError(f"no results in {folder}; run `python -m benchmarks` first")
    return files[-1]


def main(argv: list[str]) -> int:
    path = Path(argv[0]) if argv else newest_results()
    write_readme(orjson.loads(path.read_bytes()))
    print(f"wrote {README} from {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
