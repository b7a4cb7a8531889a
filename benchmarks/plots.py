"""matplotlib PNGs of a results file: req/s and p99 per server and connection count.

A scenario measured at 3 or more connection counts (the sweep) is drawn as lines against
concurrency, one line per server, on log axes; others as bars. Points and bars are
medians, whiskers the min-max of the repetitions. The y axes are absolute on purpose (a
plot has to show something), but only values drawn from the same run compare.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def plot_scenario(scenario: dict[str, Any], out: Path) -> Path | None:
    """Write one PNG for a scenario; None when it has no measured point."""
    points = scenario.get("points") or []
    if not points:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if len({p["connections"] for p in points}) >= 3:
        return _plot_lines(scenario, points, out, plt)
    servers = list(dict.fromkeys(p["server"] for p in points))
    loads = sorted({(p["workers"], p["connections"]) for p in points})
    table = {(p["server"], p["workers"], p["connections"]): p for p in points}
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    width = 0.8 / len(servers)
    for ax, metric, scale, label in (
        (axes[0], "rps", 1.0, "requests/s (higher is better)"),
        (axes[1], "p99", 1000.0, "p99 latency, ms (lower is better)"),
    ):
        for i, server in enumerate(servers):
            xs, heights, low, high = [], [], [], []
            for x, load in enumerate(loads):
                point = table.get((server, *load))
                if point is None:
                    continue
                value = point[metric]
                xs.append(x + (i - (len(servers) - 1) / 2) * width)
                heights.append(value["median"] / scale)
                low.append((value["median"] - value["min"]) / scale)
                high.append((value["max"] - value["median"]) / scale)
            ax.bar(xs, heights, width, yerr=[low, high], capsize=3, label=server)
        ax.set_xticks(range(len(loads)))
        ax.set_xticklabels([f"{c} conn\n{w} worker(s)" for w, c in loads])
        ax.set_ylabel(label)
        ax.grid(axis="y", alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle(scenario["title"], fontsize=10)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=90)
    plt.close(fig)
    return out


def _plot_lines(
    scenario: dict[str, Any], points: list[dict[str, Any]], out: Path, plt: Any
) -> Path:
    lines: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for p in points:
        lines.setdefault((p["server"], p["workers"]), []).append(p)
    several_workers = len({w for _, w in lines}) > 1
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    for ax, metric, scale, label in (
        (axes[0], "rps", 1.0, "requests/s (higher is better)"),
        (axes[1], "p99", 1000.0, "p99 latency, ms (lower is better)"),
    ):
        for (server, workers), group in lines.items():
            group = sorted(group, key=lambda p: p["connections"])
            xs = [p["connections"] for p in group]
            med = [p[metric]["median"] / scale for p in group]
            low = [(p[metric]["median"] - p[metric]["min"]) / scale for p in group]
            high = [(p[metric]["max"] - p[metric]["median"]) / scale for p in group]
            name = f"{server} ({workers} workers)" if several_workers else server
            ax.errorbar(xs, med, yerr=[low, high], marker="o", capsize=3, label=name)
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ticks = sorted({p["connections"] for p in points})
        ax.set_xticks(ticks)
        ax.set_xticklabels([str(t) for t in ticks])
        ax.set_xlabel("connections (wrk, closed loop)")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3, which="both")
    axes[0].legend(fontsize=8)
    fig.suptitle(scenario["title"], fontsize=10)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=90)
    plt.close(fig)
    return out


def plot_results(results: dict[str, Any], folder: Path, stem: str) -> list[Path]:
    written = []
    for scenario in results["scenarios"]:
        path = plot_scenario(scenario, folder / f"{stem}-{scenario['name']}.png")
        if path is not None:
            written.append(path)
    return written
