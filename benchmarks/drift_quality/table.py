"""Summaries of the per-window verdicts, and the markdown section of benchmarks/README.md."""

from __future__ import annotations

import statistics
from typing import Any

import numpy as np

from benchmarks.drift_delay import shown
from benchmarks.drift_quality.streams import (
    CATEGORICAL,
    DELAY_SHIFTS,
    MIXED,
    NUMERIC,
    RATES,
    SHIFTED,
    scenario_names,
)

# (key, column title, per-feature verdicts?) in the table's column order
METHODS: tuple[tuple[str, str, bool], ...] = (
    ("modelgate_univariate", "modelgate univariate (PSI >= 0.2)", True),
    ("modelgate_multivariate", "modelgate multivariate (PCA error)", False),
    ("evidently_any_column", "Evidently DataDriftPreset, any column", True),
    ("evidently_dataset", "Evidently DataDriftPreset, dataset drift", False),
    ("nannyml_univariate", "NannyML univariate (Jensen-Shannon)", True),
    ("nannyml_reconstruction", "NannyML data reconstruction", False),
)
SCENARIO_TITLES = {
    "stationary": "stationary: false alarms",
    "shift_0.1": f"mean shift 0.1 sd ({SHIFTED})",
    "shift_0.25": f"mean shift 0.25 sd ({SHIFTED})",
    "shift_0.5": f"mean shift 0.5 sd ({SHIFTED})",
    "shift_1": f"mean shift 1 sd ({SHIFTED})",
    "category_mix": f"category mix ({MIXED}: 60/30/10 -> 40/30/30 %)",
    "correlation_flip": "correlation flip (n00/n01: +0.8 -> -0.8)",
}
FEATURES = len(NUMERIC) + len(CATEGORICAL)


def target_of(scenario: str) -> str | None:
    if scenario.startswith("shift_"):
        return SHIFTED
    return MIXED if scenario == "category_mix" else None


def summarize(
    scenarios: list[str], windows: dict[str, list[dict[str, Any]]], delays: dict[str, list]
) -> dict[str, Any]:
    """Rates per method and scenario, CPU spread, delay lists; methods absent are skipped."""
    out: dict[str, Any] = {}
    for key, _, per_feature in METHODS:
        if key not in windows:
            continue
        verdicts = windows[key]
        rates: dict[str, Any] = {}
        for scenario in scenario_names():
            picked = [v for v, s in zip(verdicts, scenarios, strict=True) if s == scenario]
            cell: dict[str, Any] = {
                "windows": len(picked),
                "alarm_rate": sum(v["alarm"] for v in picked) / len(picked),
            }
            target = target_of(scenario)
            if per_feature and scenario == "stationary":
                flags = sum(len(v["flagged"]) for v in picked)
                cell["feature_alarm_rate"] = flags / (len(picked) * FEATURES)
            if per_feature and target is not None:
                cell["target_rate"] = sum(target in v["flagged"] for v in picked) / len(picked)
            rates[scenario] = cell
        cpu_ms = np.array([v["cpu_s"] * 1000.0 for v in verdicts])
        out[key] = {
            "rates": rates,
            "cpu_ms": {
                "median": float(np.median(cpu_ms)),
                "p10": float(np.percentile(cpu_ms, 10)),
                "p90": float(np.percentile(cpu_ms, 90)),
            },
            "delays_s": delays.get(key),
        }
    return out


def _percent(rate: float) -> str:
    return f"{100 * rate:.1f} %" if 0 < rate < 0.01 else f"{100 * rate:.0f} %"


def _cell(summary: dict[str, Any] | None, scenario: str, per_feature: bool) -> str:
    if summary is None:
        return "not run"
    cell = summary["rates"][scenario]
    text = _percent(cell["alarm_rate"])
    if per_feature and "target_rate" in cell:
        text += f" ({_percent(cell['target_rate'])})"
    return text


def render(result: dict[str, Any]) -> str:
    summary, config = result["summary"], result["config"]
    titles = [title for _, title, _ in METHODS]
    lines = [
        "| scenario (windows) | " + " | ".join(titles) + " |",
        "|---" * (len(titles) + 1) + "|",
    ]
    for scenario in scenario_names():
        n = config["stationary_windows"] if scenario == "stationary" else config["shifted_windows"]
        cells = [_cell(summary.get(k), scenario, pf) for k, _, pf in METHODS]
        lines.append(f"| {SCENARIO_TITLES[scenario]} ({n}) | " + " | ".join(cells) + " |")
        if scenario == "stationary":
            feature = []
            for key, _, _ in METHODS:
                s = summary.get(key)
                rate = s["rates"]["stationary"].get("feature_alarm_rate") if s else None
                feature.append("-" if rate is None else f"{100 * rate:.2f} %")
            lines.append(
                f"| stationary: false alarms per feature ({n} x {FEATURES}) | "
                + " | ".join(feature)
                + " |"
            )
    cpu = []
    for key, _, _ in METHODS:
        s = summary.get(key)
        c = s["cpu_ms"] if s else None
        cpu.append("-" if c is None else f"{c['median']:.1f} ms ({c['p10']:.1f}-{c['p90']:.1f})")
    lines.append("| CPU per check, median (p10-p90) | " + " | ".join(cpu) + " |")
    return "\n".join(lines)


def delay_table(result: dict[str, Any]) -> str:
    summary, cases = result["summary"], result["delay_cases"]
    lines = [
        "| method | shift | " + " | ".join(f"{r:,} req/s" for r in RATES) + " |",
        "|---|---|" + "---|" * len(RATES),
    ]
    for key, title, _ in METHODS:
        s = summary.get(key)
        for shift in DELAY_SHIFTS:
            cells = []
            for rate in RATES:
                idx = [i for i, c in enumerate(cases) if c["shift"] == shift and c["rate"] == rate]
                if s is None or s["delays_s"] is None:
                    cells.append("not run")
                    continue
                horizon = max(cases[i]["horizon_s"] for i in idx)
                cells.append(shown([s["delays_s"][i] for i in idx], horizon))
            lines.append(f"| {title} | {shift:g} sd | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def section(result: dict[str, Any]) -> str:
    """The README section: the tables and what they were measured with."""
    config, peers = result["config"], result["peers"]
    if peers.get("error"):
        peer_line = f"Peers not run: {peers['error']}"
    else:
        v = peers["versions"]
        peer_line = (
            f"Peers: evidently {v['evidently']}, nannyml {v['nannyml']} (pandas {v['pandas']}, "
            f"numpy {v['numpy']}) in their own virtual environment, same run."
        )
    cpu = statistics.fmean(result["load_average"])
    return "\n".join(
        [
            f"Measured {result['date']} with `{result['command']}` "
            f"({result['wall_s']:.0f} s of wall time; load average {cpu:.1f} on "
            f"{result['cores']} cores{', --quick' if result['quick'] else ''}). {peer_line}",
            "",
            f"Detection: share of windows of {config['window_rows']} rows with an alarm "
            "(univariate methods: any feature flagged; in brackets the share of windows that "
            "flagged the changed feature itself).",
            "",
            render(result),
            "",
            f"Delay: seconds from the shift of {SHIFTED} to the first flagging drift cycle "
            f"(every {config['interval_s']:.0f} s, each method judging the last "
            f"{config['window_rows']} rows), median over {config['delay_seeds']} seeds "
            "(min-max).",
            "",
            delay_table(result),
            "",
        ]
    )
