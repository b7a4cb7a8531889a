"""`modelgate evaluate N V --data FILE --label COL [--group COL ...]`: offline evaluation.

Runs the registered ONNX artifact on a labelled table, stores the report on the version
(`save_evaluation`, which the promotion gate reads) and writes `evaluation.json` +
`evaluation.html` to `--out` (default `<home>/reports/<name>-<version>/`). Needs the
`convert` extra for reading the data (pandas); converters are imported lazily here only.
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path
from typing import Any

import orjson

from gateway.cli.common import actor, common_options, home_of, opened_registry
from gateway.cli.extras import CONVERT, needs_extra
from gateway.cli.output import fail, print_json, print_table

REPORT_JSON = "evaluation.json"
REPORT_HTML = "evaluation.html"


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "evaluate",
        help="evaluate a version on labelled data (metrics, calibration, fairness, latency)",
        description="Evaluate a registered version on a labelled table and store the report.",
    )
    parser.add_argument("name", help="model name")
    parser.add_argument("version", help="version (or alias)")
    parser.add_argument("--data", required=True, help="labelled data: csv, tsv, parquet, npy, npz")
    parser.add_argument("--label", required=True, help="name of the label (target) column")
    parser.add_argument(
        "--group",
        action="append",
        default=[],
        metavar="COL",
        help="sensitive column for per-group fairness metrics (repeatable)",
    )
    parser.add_argument(
        "--positive-class",
        default=None,
        metavar="C",
        help="class counted as the positive outcome (default: the model's last class)",
    )
    parser.add_argument("--out", help="report folder (default: <home>/reports/<name>-<version>/)")
    common_options(parser)
    parser.set_defaults(handler=run_evaluate)


def _load(path: str) -> tuple[Any, str]:
    with needs_extra(CONVERT, "modelgate evaluate"):
        from converters.data import dataset_fingerprint, load_sample
        from converters.errors import DataError
    try:
        frame, _ = load_sample(path)
    except DataError as exc:
        fail(str(exc))
    return frame, dataset_fingerprint(frame)


def _write(report: dict[str, Any], out: Path) -> tuple[Path, Path]:
    from gateway.evaluation.report_html import write_html_report

    try:
        out.mkdir(parents=True, exist_ok=True)
        json_path = out / REPORT_JSON
        json_path.write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2))
        html_path = write_html_report(report, out / REPORT_HTML)
    except OSError as exc:
        fail(f"cannot write the report to {out}: {exc.strerror or exc}")
    return json_path, html_path


def _print_summary(report: dict[str, Any], json_path: Path, html_path: Path) -> None:
    primary = report["primary_metric"]
    rows: list[tuple[str, Any]] = [(f"primary: {primary['name']}", primary["value"])]
    if "classification" in report:
        block = report["classification"]
        rows += [
            (k, block.get(k))
            for k in (
                "accuracy",
                "precision_macro",
                "recall_macro",
                "f1_macro",
                "f1_weighted",
                "roc_auc",
                "pr_auc",
            )
        ]
        calibration = report.get("calibration") or {}
        rows += [(k, calibration.get(k)) for k in ("ece", "brier_score", "mean_confidence")]
    else:
        rows += [(k, report["regression"][k]) for k in ("mae", "rmse", "r2")]
    op = report.get("operational")
    if op:
        rows += [(f"latency_{p}_ms", op["latency_ms"][p]) for p in ("p50", "p95", "p99")]
        rows += [
            ("throughput_rows_per_s (batch 64)", op["throughput"]["rows_per_second"]),
            ("model_size_bytes", op["model_size_bytes"]),
            ("peak_memory_delta_bytes", op["memory"]["peak_rss_delta_bytes"]),
        ]
    print_table(rows, ["metric", "value"])
    for column, block in (report.get("fairness") or {}).get("columns", {}).items():
        print()
        groups = block["groups"]
        headers = [k for k in groups[0] if k != "group"]
        print(f"fairness: {column}")
        print_table([(g["group"], *(g[h] for h in headers)) for g in groups], ["group", *headers])
        summary = [
            (k, block[k])
            for k in (
                "demographic_parity_difference",
                "equal_opportunity_difference",
                "disparate_impact_ratio",
                "four_fifths_rule_violated",
                "mae_difference",
            )
            if k in block
        ]
        print_table(summary, ["measure", "value"])
    for warning in report.get("warnings") or []:
        print(f"warning: {warning}")
    print(f"\nreport: {json_path}\nhtml:   {html_path}")


async def run_evaluate(args: argparse.Namespace) -> int:
    with needs_extra(CONVERT, "modelgate evaluate"):
        from gateway.evaluation.evaluator import evaluate
    from gateway.evaluation.errors import EvaluationError

    frame, fingerprint = _load(args.data)
    if args.label not in frame.columns:
        fail(f"label column {args.label!r} not in {args.data}")
    async with opened_registry(args) as registry:
        mv = await registry.get_version(args.name, args.version)
        if args.positive_class is not None and mv.schema.get("task") != "classification":
            fail("--positive-class applies to classifiers only")
        model_bytes = await registry.read_artifact(mv.model, mv.version)
        try:
            report = await asyncio.to_thread(
                evaluate,
                model_bytes,
                mv.schema,
                frame,
                args.label,
                args.group,
                args.positive_class,
                fingerprint=fingerprint,
            )
        except EvaluationError as exc:
            fail(f"{mv.model} {mv.version}: {exc}")
        report = {"model": mv.model, "version": mv.version, **report}
        report["dataset"]["path"] = str(Path(args.data).resolve())
        out = (
            Path(args.out)
            if args.out
            else home_of(args).root / "reports" / f"{mv.model}-{mv.version}"
        )
        json_path, html_path = _write(report, out)
        await registry.save_evaluation(mv.model, mv.version, report, actor=actor())
    if args.json:
        print_json({**report, "files": {"json": str(json_path), "html": str(html_path)}})
    else:
        _print_summary(report, json_path, html_path)
    return 0
