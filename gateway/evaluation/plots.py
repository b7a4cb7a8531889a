"""PNG figures for the HTML report, drawn with matplotlib's Agg canvas (no pyplot, no GUI).

Imported lazily by report_html: matplotlib is an optional dependency (the ``bench`` extra).
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

_SHORT = {
    "positive_rate": "positive rate",
    "true_positive_rate": "TPR",
    "false_positive_rate": "FPR",
}


def _png(fig: Figure) -> bytes:
    FigureCanvasAgg(fig)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    return buffer.getvalue()


def roc_png(curves: Sequence[Mapping[str, Any]]) -> bytes:
    fig = Figure(figsize=(4.6, 4.2))
    ax = fig.add_subplot()
    for curve in curves:
        auc = curve.get("auc")
        label = f"class {curve['class']}" + (f" (AUC {auc:.3f})" if auc is not None else "")
        ax.plot(curve["fpr"], curve["tpr"], label=label, linewidth=1.5)
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=0.8)
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC curve")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.01)
    ax.legend(loc="lower right", fontsize="small")
    return _png(fig)


def reliability_png(bins: Sequence[Mapping[str, Any]]) -> bytes:
    fig = Figure(figsize=(4.6, 4.2))
    ax = fig.add_subplot()
    filled = [b for b in bins if b["count"]]
    width = bins[0]["upper"] - bins[0]["lower"] if bins else 0.1
    ax.bar(
        [b["lower"] for b in filled],
        [b["accuracy"] for b in filled],
        width=width,
        align="edge",
        edgecolor="black",
        alpha=0.7,
        label="accuracy",
    )
    ax.plot(
        [b["mean_confidence"] for b in filled],
        [b["accuracy"] for b in filled],
        marker="o",
        color="C1",
        label="per-bin (confidence, accuracy)",
    )
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=0.8, label="perfect")
    ax.set(xlabel="top-class confidence", ylabel="accuracy", title="Reliability diagram")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.01)
    ax.legend(loc="upper left", fontsize="small")
    return _png(fig)


def confusion_png(labels: Sequence[Any], matrix: Sequence[Sequence[int]]) -> bytes:
    size = min(9.0, 3.5 + 0.45 * len(labels))
    fig = Figure(figsize=(size, size * 0.9))
    ax = fig.add_subplot()
    image = ax.imshow(matrix, cmap="Blues")
    fig.colorbar(image, ax=ax, shrink=0.8)
    ticks = range(len(labels))
    ax.set_xticks(ticks, [str(x) for x in labels], rotation=45, ha="right")
    ax.set_yticks(ticks, [str(x) for x in labels])
    peak = max((max(row) for row in matrix), default=0)
    if len(labels) <= 15:
        for i, row in enumerate(matrix):
            for j, value in enumerate(row):
                color = "white" if value > peak / 2 else "black"
                ax.text(j, i, str(value), ha="center", va="center", color=color, fontsize="small")
    ax.set(xlabel="predicted", ylabel="true", title="Confusion matrix")
    return _png(fig)


def group_bars_png(column: str, rows: Sequence[Mapping[str, Any]], metrics: Sequence[str]) -> bytes:
    fig = Figure(figsize=(max(4.6, 1.2 + 0.9 * len(rows)), 3.8))
    ax = fig.add_subplot()
    width = 0.8 / max(1, len(metrics))
    for k, metric in enumerate(metrics):
        values = [0.0 if (v := r.get(metric)) is None else v for r in rows]
        label = _SHORT.get(metric, metric)
        ax.bar([i + k * width for i in range(len(rows))], values, width=width, label=label)
    ax.set_xticks(
        [i + width * (len(metrics) - 1) / 2 for i in range(len(rows))],
        [str(r["group"]) for r in rows],
        rotation=30,
        ha="right",
    )
    ax.set(title=f"Per-group metrics: {column}")
    peak = max((r.get(m) or 0.0 for r in rows for m in metrics), default=0.0)
    if peak <= 1.0:  # rates: leave room above the bars for the legend
        ax.set_ylim(0, 1.25)
    ax.legend(fontsize="small", ncols=len(metrics), loc="upper center")
    return _png(fig)


def residuals_png(histogram: Mapping[str, Sequence[float]]) -> bytes:
    fig = Figure(figsize=(4.6, 3.6))
    ax = fig.add_subplot()
    edges, counts = histogram["edges"], histogram["counts"]
    ax.bar(
        edges[:-1],
        counts,
        width=[b - a for a, b in zip(edges[:-1], edges[1:], strict=True)],
        align="edge",
        edgecolor="black",
        alpha=0.7,
    )
    ax.set(xlabel="prediction - target", ylabel="rows", title="Residuals")
    return _png(fig)
