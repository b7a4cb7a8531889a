"""A self-contained HTML page for an evaluation report (tables + PNG plots as data: URIs).

Plots need matplotlib (the ``bench`` extra); without it the page holds the tables only
and says so.
"""

from __future__ import annotations

import base64
import html
import importlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

_CSS = """
body{font-family:system-ui,sans-serif;margin:2em;max-width:1100px;color:#222}
table{border-collapse:collapse;margin:.6em 0 1.4em}
td,th{border:1px solid #ccc;padding:.25em .6em;text-align:right}
th{background:#f3f3f3} td:first-child,th:first-child{text-align:left}
.note{background:#fff7d6;border:1px solid #e6cf6e;padding:.5em 1em}
img{margin:.4em 1em .4em 0;vertical-align:top}
"""
_FAIRNESS_BARS = ("positive_rate", "true_positive_rate", "false_positive_rate")


def _fmt(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.4g}"
    return html.escape(str(value))


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{_fmt(v)}</td>" for v in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _pairs(block: Mapping[str, Any], keys: Sequence[str]) -> str:
    return _table(["metric", "value"], [(k, block.get(k)) for k in keys if k in block])


class _Images:
    """Renders figures when matplotlib is importable; otherwise records why not."""

    def __init__(self) -> None:
        try:
            plots = importlib.import_module("gateway.evaluation.plots")
        except ImportError:
            self.plots = None
        else:
            self.plots = plots

    def img(self, name: str, alt: str, *args: Any) -> str:
        """``plots.<name>(*args)`` as an inline PNG (empty without matplotlib)."""
        if self.plots is None:
            return ""
        data = base64.b64encode(getattr(self.plots, name)(*args)).decode()
        return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def _classification(report: Mapping[str, Any], images: _Images) -> list[str]:
    block = report["classification"]
    keys = [
        "accuracy",
        "precision_macro",
        "recall_macro",
        "f1_macro",
        "precision_weighted",
        "recall_weighted",
        "f1_weighted",
        "roc_auc",
        "pr_auc",
        "positive_class",
        "averaging",
    ]
    parts = ["<h2>Classification</h2>", _pairs(block, keys), "<h3>Per class</h3>"]
    parts.append(
        _table(
            ["class", "precision", "recall", "f1", "support"],
            [
                (r["class"], r["precision"], r["recall"], r["f1"], r["support"])
                for r in block["per_class"]
            ],
        )
    )
    cm = block["confusion_matrix"]
    if block.get("roc_curves"):
        parts.append(images.img("roc_png", "ROC curve", block["roc_curves"]))
    if len(cm["labels"]) <= 50:
        parts.append(images.img("confusion_png", "confusion matrix", cm["labels"], cm["matrix"]))
    if len(cm["labels"]) <= 20:
        parts.append("<h3>Confusion matrix (rows: true, columns: predicted)</h3>")
        parts.append(
            _table(
                ["true \\ predicted", *map(str, cm["labels"])],
                [(label, *row) for label, row in zip(cm["labels"], cm["matrix"], strict=True)],
            )
        )
    calibration = report.get("calibration")
    if calibration:
        parts += [
            "<h2>Calibration</h2>",
            _pairs(
                calibration,
                ["ece", "brier_score", "mean_confidence", "binning", "brier_definition"],
            ),
            images.img("reliability_png", "reliability diagram", calibration["reliability"]),
            _table(
                ["bin", "count", "mean confidence", "accuracy"],
                [
                    (
                        f"[{b['lower']:.1f}, {b['upper']:.1f})",
                        b["count"],
                        b["mean_confidence"],
                        b["accuracy"],
                    )
                    for b in calibration["reliability"]
                ],
            ),
        ]
    return parts


def _regression(report: Mapping[str, Any], images: _Images) -> list[str]:
    block = report["regression"]
    return [
        "<h2>Regression</h2>",
        _pairs(block, ["mae", "rmse", "r2", "mean_target", "mean_prediction"]),
        images.img("residuals_png", "residuals", block["residual_histogram"]),
    ]


def _fairness(report: Mapping[str, Any], images: _Images) -> list[str]:
    fairness = report.get("fairness") or {}
    columns = fairness.get("columns") or {}
    if not columns:
        return []
    parts = ["<h2>Fairness</h2>"]
    if "positive_class" in fairness:
        parts.append(f"<p>Positive outcome: class {_fmt(fairness['positive_class'])}.</p>")
    for column, block in columns.items():
        rows = block["groups"]
        headers = [k for k in rows[0] if k != "group"] if rows else []
        bars = [m for m in _FAIRNESS_BARS if headers and m in headers] or ["mae"]
        parts.append(f"<h3>{html.escape(column)}</h3>")
        parts.append(
            _table(["group", *headers], [(r["group"], *(r[h] for h in headers)) for r in rows])
        )
        parts.append(
            _pairs(
                block,
                [
                    "demographic_parity_difference",
                    "equal_opportunity_difference",
                    "disparate_impact_ratio",
                    "four_fifths_rule_violated",
                    "mae_difference",
                ],
            )
        )
        parts.append(images.img("group_bars_png", column, column, rows, bars))
    return parts


def _operational(report: Mapping[str, Any]) -> list[str]:
    op = report.get("operational")
    if not op:
        return []
    lat, thr, mem = op["latency_ms"], op["throughput"], op["memory"]
    rows = [
        ("model size (bytes)", op["model_size_bytes"]),
        (
            "latency p50 / p95 / p99 (ms, batch 1)",
            f"{lat['p50']:.4g} / {lat['p95']:.4g} / {lat['p99']:.4g}",
        ),
        ("latency runs", lat["runs"]),
        (f"throughput (rows/s, batch {thr['batch_size']})", thr["rows_per_second"]),
        ("peak memory delta (bytes)", mem["peak_rss_delta_bytes"]),
        ("onnxruntime process setup (bytes, not included above)", mem.get("runtime_init_bytes")),
        ("memory method", mem["method"]),
        ("measured in", op.get("process")),
        (
            "onnxruntime",
            f"{op.get('onnxruntime_version')} ({op.get('intra_op_threads')} intra-op thread)",
        ),
    ]
    return ["<h2>Operational</h2>", _table(["measure", "value"], rows)]


def render_html(report: Mapping[str, Any], title: str | None = None) -> str:
    images = _Images()
    name = " ".join(str(report[k]) for k in ("model", "version") if report.get(k))
    title = title or f"Evaluation {name}".strip()
    dataset, primary = report.get("dataset") or {}, report.get("primary_metric") or {}
    body = [
        f"<h1>{html.escape(title)}</h1>",
        _table(
            ["", ""],
            [
                ("created", report.get("created_at")),
                ("task", report.get("task")),
                ("dataset fingerprint", dataset.get("fingerprint")),
                ("dataset", dataset.get("path")),
                ("rows", dataset.get("rows")),
                ("label column", dataset.get("label")),
                (f"primary metric: {primary.get('name')}", primary.get("value")),
            ],
        ),
    ]
    if images.plots is None:
        body.append(
            '<p class="note">matplotlib is not installed (pip install "modelgate[bench]"): '
            "plots are omitted, tables only.</p>"
        )
    for warning in report.get("warnings") or []:
        body.append(f'<p class="note">{html.escape(str(warning))}</p>')
    if "classification" in report:
        body += _classification(report, images)
    if "regression" in report:
        body += _regression(report, images)
    body += _fairness(report, images) + _operational(report)
    return (
        f'<!DOCTYPE html><html><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f"<style>{_CSS}</style></head><body>{''.join(body)}</body></html>\n"
    )


def write_html_report(
    report: Mapping[str, Any], path: str | Path, title: str | None = None
) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_html(report, title), encoding="utf-8")
    return path
