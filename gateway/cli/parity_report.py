"""A stored parity report as text (`modelgate show`, a forced `modelgate convert`) or as a file.

The report is plain JSON in the version's parity record (docs/conversion.md): the CLI
reads it without importing the converters.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from gateway.cli.output import CLIError, format_table

REPORTS_DIR = "parity-reports"


def _number(value: Any, digits: int) -> str:
    return "-" if value is None else f"{value:.{digits}g}"


def _worst_row(row: dict[str, Any]) -> tuple[Any, ...]:
    split = row.get("split") or {}
    output = f"p({row['class']})" if "class" in row else "value"
    digits = 4 if "class" in row else 6
    return (
        row.get("row"),
        output,
        _number(row.get("sklearn"), digits),
        _number(row.get("onnx"), digits),
        split.get("feature") or "-",
        _number(split.get("threshold"), 9),
        _number(split.get("sklearn_value"), 9),
        _number(split.get("onnx_value"), 9),
    )


def report_lines(parity: dict[str, Any] | None) -> list[str]:
    """The parity report of a version as terminal lines (empty when there is none)."""
    report = (parity or {}).get("report")
    if not report:
        return []
    lines = [
        f"parity report ({report.get('graph', '?')} graph): {report.get('rows_differ')} of "
        f"{report.get('rows')} rows differ beyond the tolerance"
    ]
    attempts = report.get("attempts") or []
    if attempts:
        tried = ", ".join(f"{a['graph']} ({a['rows_differ']} rows differ)" for a in attempts)
        lines.append(f"graphs tried: {tried}")
    if report.get("exact_graph_error"):
        lines.append(f"no exact graph: {report['exact_graph_error']}")
    worst = report.get("worst") or []
    if worst:
        lines.append("")
        headers = ["row", "output", "scikit-learn", "onnx", "split", "threshold"]
        headers += ["sklearn_value", "onnx_value"]
        lines.extend(format_table([_worst_row(r) for r in worst], headers).splitlines())
    features = report.get("features") or []
    if features:
        lines.append("")
        lines.append(
            f"{report.get('explained_rows', 0)} differing rows part from scikit-learn at a "
            "split on (nearest threshold per row):"
        )
        rows = [(f["feature"], f["rows"]) for f in features]
        lines.extend(format_table(rows, ["feature", "rows"]).splitlines())
    if report.get("explanation_error"):
        lines.append(report["explanation_error"])
    return lines


def write_report(path: Path, document: dict[str, Any]) -> Path:
    """Write ``document`` as indented JSON; CLIError when the file cannot be written."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(orjson.dumps(document, option=orjson.OPT_INDENT_2))
    except OSError as exc:
        raise CLIError(f"cannot write the parity report {path}: {exc.strerror or exc}") from None
    return path
