"""HTML fragments of the console pages, rendered on the server from ``gateway.console.data``.

Every value is escaped here (``esc``); the page's script only swaps these fragments in.
Bars and histograms are inline SVG whose sizes are attributes and whose colours are CSS
classes: the Content-Security-Policy forbids inline ``style``.
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

SEGMENTS = 6  # colour classes of traffic bar segments (seg0..seg5 in console.css)


def esc(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def model_href(name: str) -> str:
    return "/console/models/" + quote(name, safe="")


def percent(value: float | None, digits: int = 1) -> str:
    if value is None or not math.isfinite(value):
        return "–"
    text = f"{value:.{digits}f}"
    # trailing zeros of the decimals only: 50 with no decimals stays 50
    return (text.rstrip("0").rstrip(".") if digits > 0 else text) + " %"


def number(value: Any, digits: int = 3) -> str:
    if value is None or isinstance(value, bool):
        return "–" if value is None else str(value)
    if isinstance(value, float):
        return f"{value:.{digits}f}" if math.isfinite(value) else "–"
    return str(value)


def when(value: Any) -> str:
    """A Unix time or an ISO string as ``YYYY-MM-DD HH:MM:SS`` UTC."""
    if isinstance(value, int | float) and value > 0:
        return datetime.fromtimestamp(value, UTC).strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, str) and value:
        return value.replace("T", " ")[:19]
    return "–"


def table(headers: Sequence[str], rows: Iterable[Sequence[str]], caption: str = "") -> str:
    """A table whose cells are already-escaped HTML; ``data-label`` lets phones stack it."""
    head = "".join(f'<th scope="col">{esc(h)}</th>' for h in headers)
    body = "".join(
        "<tr>"
        + "".join(
            f'<td data-label="{esc(h)}">{cell}</td>' for h, cell in zip(headers, row, strict=True)
        )
        + "</tr>"
        for row in rows
    )
    cap = f"<caption>{esc(caption)}</caption>" if caption else ""
    return f'<table class="grid">{cap}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def traffic_bar(split: Sequence[dict[str, Any]]) -> str:
    """One horizontal bar of the weights (percent) with a legend."""
    if not split:
        return '<p class="muted">no traffic routed</p>'
    label = ", ".join(f"{s['version']} {percent(s['weight'])}" for s in split)
    x = 0.0
    rects = []
    legend = []
    for i, s in enumerate(split):
        cls = f"seg{i % SEGMENTS}"
        w = max(0.0, float(s["weight"]))
        rects.append(
            f'<rect x="{x:.3f}" y="0" width="{w:.3f}" height="10" class="{cls}">'
            f"<title>{esc(s['version'])}: {esc(percent(w))}</title></rect>"
        )
        legend.append(
            f'<li><span class="key {cls}" aria-hidden="true"></span>'
            f"<code>{esc(s['version'])}</code> {esc(percent(w))}</li>"
        )
        x += w
    return (
        f'<svg class="bar" viewBox="0 0 100 10" preserveAspectRatio="none" role="img" '
        f'aria-label="traffic: {esc(label)}">{"".join(rects)}</svg>'
        f'<ul class="legend">{"".join(legend)}</ul>'
    )


def verdict(healthy: bool | None) -> str:
    if healthy is None:
        return '<span class="badge unknown">no verdict</span>'
    if healthy:
        return '<span class="badge ok">healthy</span>'
    return '<span class="badge bad">unhealthy</span>'


def reasons_list(reasons: Sequence[str]) -> str:
    if not reasons:
        return ""
    return '<ul class="reasons">' + "".join(f"<li>{esc(r)}</li>" for r in reasons) + "</ul>"


def accuracy_text(summary: dict[str, Any]) -> str:
    labelled = summary.get("labelled") or 0
    if not labelled:
        return '<span class="muted">no labels yet</span>'
    if summary.get("accuracy") is not None:
        return f"{esc(percent(100 * summary['accuracy']))} <small>({labelled} labels)</small>"
    if summary.get("mae") is not None:
        return f"MAE {esc(number(summary['mae']))} <small>({labelled} labels)</small>"
    return f"{labelled} labels"


def rollout_text(rollout: dict[str, Any] | None) -> str:
    if rollout is None:
        return '<span class="muted">none</span>'
    if rollout["running"]:
        return (
            f"<code>{esc(rollout['candidate'])}</code> at {esc(percent(rollout['canary_weight']))}"
            f" — step {rollout['step']} of {rollout['steps']}"
        )
    return f"last: {esc(rollout['status'])} (<code>{esc(rollout['candidate'])}</code>)"


def overview_html(data: dict[str, Any]) -> str:
    models = data["models"]
    if not models:
        return '<p class="muted">No model is registered.</p>'
    rows = []
    for m in models:
        health = m["health"]
        drifted = health.get("drifted_features")
        rows.append(
            [
                f'<a href="{esc(model_href(m["name"]))}">{esc(m["name"])}</a>',
                f"<code>{esc(m['production_version'] or '–')}</code>",
                traffic_bar(m["traffic"]),
                verdict(health["healthy"]) + reasons_list(health["reasons"]),
                "–" if drifted is None else str(len(drifted)),
                accuracy_text(health),
                rollout_text(m["rollout"]),
            ]
        )
    headers = ["model", "production", "traffic", "health", "drifted", "live accuracy", "rollout"]
    return table(headers, rows, "Every model")


def lineage_text(lineage: dict[str, Any]) -> str:
    parity = lineage.get("parity_passed")
    parts = [
        esc(lineage.get("model_type") or "–"),
        f"data {esc(lineage.get('dataset_version') or '–')}",
        "parity ✓" if parity else "parity ✗" if parity is False else "parity –",
        esc(when(lineage.get("created_at"))),
    ]
    return "<br>".join(parts)


def versions_html(model: dict[str, Any]) -> str:
    rows = []
    for v in model["versions"]:
        state = esc(v["state"]) + (f"<br><small>{esc(v['reason'])}</small>" if v["reason"] else "")
        rows.append(
            [
                f"<code>{esc(v['version'])}</code>",
                f'<span class="stage {esc(v["stage"])}">{esc(v["stage"])}</span>',
                esc(", ".join(v["aliases"]) or "–"),
                state,
                esc(percent(v["weight"])),
                esc(", ".join(v["roles"]) or "–"),
                lineage_text(v["lineage"]),
            ]
        )
    headers = ["version", "stage", "aliases", "state", "weight", "roles", "lineage"]
    return table(headers, rows)


def traffic_html(detail: dict[str, Any]) -> str:
    model = detail["model"]
    traffic = model["traffic"]
    serving = model["serving"]
    shadows = traffic["shadow"]
    shadow_text = (
        ", ".join(f"{s['version']} ({percent(100 * s['sample'])} sampled)" for s in shadows)
        or "none"
    )
    facts = [
        ("production", model["production_version"] or "–"),
        ("rollback target", model["rollback_target"] or "–"),
        ("shadows", shadow_text),
        ("challenger", traffic.get("challenger") or "none"),
        ("sticky", "on" if traffic.get("sticky") else "off"),
        ("updated", when(traffic.get("updated_at"))),
        (
            "this worker",
            f"pid {detail['worker']['pid']}, generation "
            f"{detail['worker']['generation']}, primary {serving.get('primary') or '–'}",
        ),
    ]
    dl = "".join(f"<dt>{esc(k)}</dt><dd>{esc(v)}</dd>" for k, v in facts)
    return traffic_bar(detail["traffic_split"]) + f'<dl class="facts">{dl}</dl>'


def health_html(detail: dict[str, Any]) -> str:
    summary = detail["health_summary"]
    health = detail["health"]
    out = [verdict(summary["healthy"]), reasons_list(summary["reasons"])]
    if health is None:
        return "".join(out)
    rows = []
    for v in health["versions"]:
        rows.append(
            [
                f"<code>{esc(v['version'])}</code>",
                verdict(v["healthy"]),
                str(v.get("total_predictions", 0)),
                esc(percent(100 * (v.get("low_confidence_rate") or 0.0))),
                esc(number(v.get("p95_latency_ms"), 2)),
                esc(percent(100 * (v.get("error_rate") or 0.0), 2)),
                accuracy_text(
                    {
                        "labelled": (v.get("feedback") or {}).get("labelled", 0),
                        "accuracy": (v.get("feedback") or {}).get("accuracy"),
                        "mae": (v.get("feedback") or {}).get("mae"),
                    }
                ),
            ]
        )
    headers = ["version", "verdict", "predictions", "low confidence", "p95 ms", "5xx", "accuracy"]
    out.append(table(headers, rows, "Health per loaded version"))
    return "".join(out)


def psi_bar(value: float | None, scale: float, watch: float, drift: float) -> str:
    """A PSI bar on ``[0, scale]`` with marks at the watch and drift thresholds."""
    if value is None or not math.isfinite(value):
        return '<span class="muted">–</span>'
    level = "bad" if value >= drift else "warn" if value >= watch else "ok"
    width = 100.0 * min(value, scale) / scale
    marks = "".join(
        f'<line x1="{100 * t / scale:.3f}" x2="{100 * t / scale:.3f}" y1="0" y2="10" '
        f'class="mark"><title>{esc(number(t, 2))}</title></line>'
        for t in (watch, drift)
        if t <= scale
    )
    return (
        f'<svg class="psi" viewBox="0 0 100 10" preserveAspectRatio="none" role="img" '
        f'aria-label="PSI {esc(number(value))}"><rect x="0" y="1" width="{width:.3f}" '
        f'height="8" class="{level}"></rect>{marks}</svg>'
        f' <span class="num {level}">{esc(number(value))}</span>'
    )


def drift_html(detail: dict[str, Any]) -> str:
    drift = detail["drift"]
    if drift is None:
        return '<p class="muted">No drift report: monitoring is off or the model is not served.</p>'
    limits = detail["psi_thresholds"]
    watch, threshold = limits["watch"], limits["drift"]
    blocks = []
    for v in drift["versions"]:
        values = [f.get("psi") for f in v["features"]] + [v.get("confidence_psi")]
        finite = [x for x in values if isinstance(x, int | float) and math.isfinite(x)]
        scale = max(threshold * 1.5, max(finite, default=0.0))
        rows = []
        for f in v["features"]:
            status = (
                "drifted"
                if f.get("drifted")
                else "stable"
                if f.get("drifted") is False
                else (f.get("reason") or "no verdict")
            )
            rows.append(
                [
                    f"<code>{esc(f['name'])}</code>",
                    esc(f.get("kind", "")),
                    psi_bar(f.get("psi"), scale, watch, threshold),
                    esc(status),
                ]
            )
        role = "primary" if v.get("primary") else "shadow" if v.get("shadow") else "routed"
        caption = (
            f"{v['version']} ({role}): {len(v['drifted_features'])} drifted of "
            f"{len(v['features'])} features, {v['n_samples']} rows in the window"
        )
        blocks.append(table(["feature", "kind", "PSI", "verdict"], rows, caption))
    legend = (
        f'<p class="muted">Marks at PSI {esc(number(watch, 2))} (watch) and '
        f"{esc(number(threshold, 2))} (drift threshold).</p>"
    )
    return legend + "".join(blocks) if blocks else '<p class="muted">No loaded version.</p>'


def histogram(h: dict[str, Any]) -> str:
    """Bars of the observed confidence shares beside the reference's, per bin."""
    reference, observed, edges = h["reference"], h["observed"], h["edges"]
    bins = len(reference)
    top = max([x for x in [*reference, *observed] if x is not None] + [1e-9])
    width = 10
    parts = []
    for i in range(bins):
        for j, (value, cls) in enumerate(((reference[i], "ref"), (observed[i], "obs"))):
            if value is None:
                continue
            height = 40.0 * value / top
            x = i * width + 1 + j * 4
            low = "−∞" if i == 0 else number(edges[i - 1], 2)
            high = "+∞" if i == bins - 1 else number(edges[i], 2)
            name = "reference" if cls == "ref" else "observed"
            parts.append(
                f'<rect x="{x}" y="{40 - height:.3f}" width="4" height="{height:.3f}" '
                f'class="{cls}"><title>{esc(f"[{low}, {high}): {name} {percent(100 * value)}")}'
                f"</title></rect>"
            )
    return (
        f'<svg class="hist" viewBox="0 0 {bins * width} 40" preserveAspectRatio="none" '
        f'role="img" aria-label="confidence of {esc(h["version"])} against the reference">'
        f"{''.join(parts)}</svg>"
    )


def confidence_html(detail: dict[str, Any]) -> str:
    hists = detail["confidence"]
    if not hists:
        return '<p class="muted">No confidence histogram (regressor, or monitoring off).</p>'
    blocks = [
        f"<figure><figcaption><code>{esc(h['version'])}</code>: {h['n']} predictions; "
        f'<span class="key ref" aria-hidden="true"></span> reference '
        f'<span class="key obs" aria-hidden="true"></span> observed</figcaption>'
        f"{histogram(h)}</figure>"
        for h in hists
    ]
    return "".join(blocks)


def shadow_html(detail: dict[str, Any]) -> str:
    shadow = detail["shadow"]
    if shadow is None:
        return '<p class="muted">The model is not served by this worker.</p>'
    rows = [
        [
            f"<code>{esc(s['version'])}</code>",
            "active" if s.get("active") else "inactive",
            esc(percent(100 * s["sample"]) if s.get("sample") is not None else "–"),
            str(s.get("requests", 0)),
            str(s.get("compared", 0)),
            esc(percent(100 * s["agreement"]) if s.get("agreement") is not None else "–"),
            esc(number(s.get("mean_abs_diff"))),
            str(s.get("dropped", 0)),
            str(s.get("errors", 0)),
        ]
        for s in shadow["shadows"]
    ]
    queue = shadow["queue"]
    note = f'<p class="muted">mirror queue {queue["size"]} of {queue["capacity"]}</p>'
    if not rows:
        return '<p class="muted">No shadow has run in this worker.</p>' + note
    headers = ["shadow", "state", "sample", "requests", "compared", "agreement", "mean |diff|"]
    return table([*headers, "dropped", "errors"], rows, "Shadow comparison") + note


def rollout_html(detail: dict[str, Any]) -> str:
    rollout = detail["rollout"]
    if rollout is None:
        return '<p class="muted">No rollout has run for this model.</p>'
    steps = " → ".join(percent(s) for s in rollout["step_weights"])
    facts = [
        ("status", rollout["status"]),
        ("candidate", rollout["candidate"]),
        ("champion", rollout["champion"]),
        ("step", f"{rollout['step']} of {rollout['steps']} ({steps})"),
        ("canary weight", percent(rollout["canary_weight"])),
        ("failed analyses", f"{rollout['failures']} of {rollout['max_failed_checks']} allowed"),
        ("reason", rollout["reason"] or "–"),
        ("started", f"{when(rollout['created_at'])} by {rollout['created_by'] or '–'}"),
    ]
    out = '<dl class="facts">' + "".join(f"<dt>{esc(k)}</dt><dd>{esc(v)}</dd>" for k, v in facts)
    out += "</dl>"
    last = rollout["last_analysis"]
    if not last:
        return out + '<p class="muted">No analysis yet.</p>'
    rows = [
        [
            esc(c.get("name")),
            f'<span class="check {esc(c.get("status"))}">{esc(c.get("status"))}</span>',
            esc(number(c.get("value"), 4)),
            esc(number(c.get("threshold"), 4)),
            esc(number(c.get("baseline"), 4)),
            esc(number(c.get("p_value"), 4)),
            esc(c.get("detail") or ""),
        ]
        for c in last.get("checks", [])
    ]
    headers = ["check", "status", "canary", "limit", "champion", "p-value", "detail"]
    caption = f"Last analysis: {last.get('verdict', '–')}"
    return out + table(headers, rows, caption)


def experiment_html(detail: dict[str, Any]) -> str:
    """The model's A/B experiment: plan, per-variant numbers per metric, verdict."""
    experiment = detail.get("experiment")
    if experiment is None:
        return '<p class="muted">No experiment has run for this model.</p>'
    plan = experiment["plan"]
    verdict = experiment.get("verdict") or {}
    promotion = experiment.get("promotion") or {}
    days = plan.get("duration_days")
    facts = [
        ("experiment", experiment["id"]),
        ("status", experiment["status"]),
        ("variants", ", ".join(f"{v} {percent(w, 0)}" for v, w in experiment["variants"].items())),
        ("control", experiment["control"]),
        (
            "planned",
            f"{plan['n_per_variant']} rows per variant"
            + ("" if days is None else f", about {number(days, 3)} days"),
        ),  # fmt: skip
        ("started", f"{when(experiment['started_at'])} by {experiment.get('started_by') or '–'}"),
        ("looks", experiment.get("looks", 0)),
        ("verdict", f"{verdict['outcome']}: {verdict['reason']}" if verdict else "running"),
        ("winner", verdict.get("winner") or "–"),
        ("promotion", promotion.get("status") or "–"),
    ]
    out = '<dl class="facts">' + "".join(f"<dt>{esc(k)}</dt><dd>{esc(v)}</dd>" for k, v in facts)
    out += "</dl>"
    results = experiment.get("results")
    if not results:
        return out + '<p class="muted">No look yet.</p>'
    rows = []
    for metric, view in results.get("metrics", {}).items():
        diff = view.get("difference") or {}
        for version, numbers in view.get("variants", {}).items():
            low, high = numbers.get("lower"), numbers.get("upper")
            interval = "–" if low is None or high is None else f"{number(low)} … {number(high)}"
            rows.append(
                [
                    esc(metric),
                    f"<code>{esc(version)}</code>",
                    esc(numbers.get("n", numbers.get("requests"))),
                    esc(number(numbers.get("mean", numbers.get("value")), 4)),
                    esc(interval),
                    esc(number(diff.get("estimate"), 4)),
                    esc(number(diff.get("p_value"), 4)),
                    esc(view.get("outcome")),
                ]
            )
    srm = results.get("srm") or {}
    caption = (
        f"Assignments {', '.join(f'{v}: {n}' for v, n in results['assignments'].items())}; "
        f"sample-ratio p = {number(srm.get('p_value'), 3)}"
    )
    headers = ["metric", "version", "n", "mean", "interval", "difference", "p-value", "decision"]
    return out + table(headers, rows, caption)


def compact(value: Any, limit: int = 160) -> str:
    if value is None:
        return ""
    text = json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def audit_html(detail: dict[str, Any]) -> str:
    entries = detail["audit"]
    if not entries:
        return '<p class="muted">No audit row for this model.</p>'
    rows = [
        [
            esc(when(e["at"])),
            esc(e["actor"]),
            esc(e["action"]),
            f"<code>{esc(e['version'] or '–')}</code>",
            esc(e["reason"] or "–"),
            f"<small>{esc(compact(e['after']))}</small>",
        ]
        for e in entries
    ]
    return table(["at (UTC)", "actor", "action", "version", "reason", "after"], rows)


def model_fragments(detail: dict[str, Any]) -> dict[str, str]:
    """The model page's regions by element id."""
    return {
        "versions": versions_html(detail["model"]),
        "traffic": traffic_html(detail),
        "health": health_html(detail),
        "drift": drift_html(detail),
        "confidence": confidence_html(detail),
        "shadow": shadow_html(detail),
        "rollout": rollout_html(detail),
        "experiment": experiment_html(detail),
        "audit": audit_html(detail),
    }
