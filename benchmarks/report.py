"""Render a results file as markdown and write it into benchmarks/README.md between markers.

Usage: ``python -m benchmarks.report [RESULTS.json]`` (default: the newest file in
benchmarks/results/). Only the text between ``<!-- load:start -->`` and
``<!-- load:end -->`` is replaced; the other sections of the README are left alone.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import orjson

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
    if ratio["clean"] is False:
        suffix = " (failed requests)"
    else:
        suffix = ""
    if ratio["passed"] is None:
        return "info" + suffix
    return ("PASS" if ratio["passed"] else "FAIL") + suffix


def render_ratios(results: dict[str, Any]) -> list[str]:
    if not any(scenario.get("ratios") for scenario in results["scenarios"]):
        return ["(these scenarios define no ratios)"]
    lines = [
        "| scenario | ratio | conns | workers | median (min–max) | target | result |",
        "| --- | --- | ---: | ---: | --- | --- | --- |",
    ]
    for scenario in results["scenarios"]:
        for r in scenario.get("ratios", []):
            target = f"{r['op']} {r['target']:g}" if r["target"] is not None else "—"
            lines.append(
                f"| {scenario['name']} | {r['name']} | {r['connections']} | {r['workers']} "
                f"| {_spread(r['value'])} | {target} | {_verdict(r)} |"
            )
    return lines


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
    return lines + [""]


def render(results: dict[str, Any]) -> str:
    machine = results["machine"]
    settings = results["settings"]
    packages = ", ".join(f"{k} {v}" for k, v in machine["packages"].items() if v)
    lines = [
        f"Run of {results['started_at']} (`{results['file']}`), commit `{machine['git_commit']}`.",
        "",
        f"- Command: `{results['command']}`",
        f"- Machine: {machine['cpu_model']}, {machine['cores']} cores "
        f"({machine['cores_usable']} usable), {machine['memory_gib']} GiB, "
        f"kernel {machine['kernel']}, Python {machine['python']}, {machine['wrk']}",
        f"- Packages: {packages}",
        f"- Load: wrk -t{settings['wrk_threads']}, {settings['duration_s']:g} s per point after "
        f"a {settings['warmup_s']:g} s warm-up, {settings['repetitions']} repetition(s), "
        "single-row requests with 30 features, 1 worker unless stated",
        "",
        "**Ratios (the results).** Median of the per-repetition ratios, min–max in brackets.",
        "",
        *render_ratios(results),
        "",
        "**Raw medians per server** (context for the ratios only: absolute numbers on this "
        "shared 2-core machine drift by ±25 % between runs; compare within one run).",
        "",
    ]
    for scenario in results["scenarios"]:
        lines += render_scenario(scenario)
    for picture in results.get("plots", []):
        lines += [f"![{Path(picture).stem}]({picture})", ""]
    return "\n".join(lines).rstrip() + "\n"


def write_readme(results: dict[str, Any], readme: Path = README) -> None:
    text = readme.read_text()
    if START not in text or END not in text:
        raise ValueError(f"{readme} has no {START} ... {END} markers")
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    readme.write_text(f"{head}{START}\n{render(results)}{END}{tail}")


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
