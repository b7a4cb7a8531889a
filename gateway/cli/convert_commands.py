"""`convert` (scikit-learn -> ONNX with a parity proof, registered) and `demo`.

scikit-learn, skl2onnx and pandas are imported inside the handlers only: the gateway
(and every other verb) runs without the `convert` extra installed, and these two verbs
say in one line that they need it.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import Any

from gateway.cli.common import actor, common_options, home_of, opened_registry
from gateway.cli.extras import CONVERT, needs_extra
from gateway.cli.output import CLIError, fail, print_json, print_table
from gateway.cli.parity_report import REPORTS_DIR, report_lines, write_report
from registry.models import ModelVersion

_SHA = re.compile(r"[0-9a-fA-F]{7,64}")


def _parse_tags(items: list[str]) -> dict[str, str]:
    tags: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            fail(f"invalid --tag {item!r}: expected KEY=VALUE")
        tags[key.strip()] = value.strip()
    return tags


def _tolerances(value: float | None) -> dict[str, float]:
    if value is None:
        return {}
    if not value >= 0:
        fail(f"invalid --tolerance {value}: must be >= 0")
    return {"abs_tolerance": value, "rel_tolerance": value}


def _version_dict(mv: ModelVersion) -> dict[str, Any]:
    return {
        "model": mv.model,
        "version": mv.version,
        "stage": mv.stage.value,
        "artifact_sha256": mv.artifact_sha256,
        "artifact_size": mv.artifact_size,
        "config_hash": mv.lineage.get("config_hash"),
        "performance": mv.lineage.get("performance"),
        "parity": mv.parity,
        "graph": (mv.lineage.get("conversion") or {}).get("graph"),
        "inputs": mv.schema.get("inputs"),
        "created_by": mv.created_by,
        "version_change": mv.lineage.get("version_change"),
    }


def _version_note(mv: ModelVersion) -> str | None:
    """Why a schema change did not stop this version (auto major or a forced override)."""
    change = mv.lineage.get("version_change") or {}
    changes = change.get("schema_changes") or []
    if not changes:
        return None
    listing = "; ".join(changes)
    if change.get("forced"):
        return (
            f"forced {change.get('part')} version {mv.version} over schema changes from "
            f"{change.get('previous')} (audited): {listing}"
        )
    return (
        f"major version {mv.version}: the schema differs from {change.get('previous')}: {listing}"
    )


def _parity_summary(parity: dict[str, Any]) -> tuple[Any, Any, str]:
    """(max diff, agreement-or-relative diff, verdict) for the table."""
    verdict = "passed" if parity.get("passed") else "FAILED"
    if parity.get("forced"):
        verdict += " (forced)"
    if parity.get("label_agreement") is not None:
        return parity.get("max_abs_diff"), parity.get("label_agreement"), verdict
    return parity.get("max_abs_diff"), f"rel {parity.get('max_rel_diff', 0):.3g}", verdict


def _failed_report(args: argparse.Namespace, parity: dict[str, Any]) -> Path:
    """Where the report of a refused registration goes: --parity-report, else the home."""
    path = args.parity_report or home_of(args).root / REPORTS_DIR / f"{args.name}.json"
    document = {"model": args.name, "version": args.version, "bump": args.bump, "parity": parity}
    return write_report(Path(path), document)


async def cmd_convert(args: argparse.Namespace) -> int:
    with needs_extra(CONVERT, "modelgate convert"):
        from converters import (
            ConversionError,
            ParityError,
            git_commit_of,
            load_estimator,
            load_metadata,
            publish,
            read_table,
        )
    tags = _parse_tags(args.tag)
    if args.git_commit is not None and not _SHA.fullmatch(args.git_commit):
        fail(f"invalid --git-commit {args.git_commit!r}: expected a hex commit sha")
    try:
        estimator = load_estimator(args.estimator)
        sample = read_table(args.sample)
        metadata = load_metadata(args.metadata) if args.metadata else {}
        if args.git_commit:
            metadata["git_commit"] = args.git_commit.lower()
        async with opened_registry(args) as registry:
            mv = await publish(
                registry,
                args.name,
                estimator,
                sample,
                args.label,
                version=args.version,
                bump=args.bump,
                metadata=metadata,
                force=args.force,
                reason=args.reason,
                actor=actor(),
                description=args.description,
                tags=tags,
                git_commit=None if args.git_commit else git_commit_of(args.estimator),
                **_tolerances(args.tolerance),
            )
    except ParityError as exc:
        path = _failed_report(args, exc.parity)
        raise CLIError(f"{exc}; full report: {path}") from None
    except ConversionError as exc:
        raise CLIError(str(exc)) from None
    if args.parity_report:
        document = {"model": mv.model, "version": mv.version, "parity": mv.parity}
        write_report(Path(args.parity_report), document)
    if args.json:
        print_json(_version_dict(mv))
        return 0
    print_registered(mv, graph=True)
    return 0


def print_registered(mv: ModelVersion, *, graph: bool) -> None:
    """What a registration printed: the version note, one row with the parity summary (and
    the converted graph's kind with ``graph``), the parity report's lines."""
    note = _version_note(mv)
    if note:
        print(note)
    max_diff, agreement, verdict = _parity_summary(mv.parity)
    row = [mv.model, mv.version, mv.stage.value, mv.artifact_sha256[:12], mv.parity.get("rows")]
    headers = ["model", "version", "stage", "sha256", "rows", "max_diff", "agreement", "parity"]
    row += [max_diff, agreement, verdict]
    if graph:
        row.append((mv.lineage.get("conversion") or {}).get("graph"))
        headers.append("graph")
    print_table([tuple(row)], headers)
    for line in report_lines(mv.parity):
        print(line)


async def cmd_demo(args: argparse.Namespace) -> int:
    with needs_extra(CONVERT, "modelgate demo"):
        from converters.demo import MODEL, register_demo
        from converters.demo_data import write_demo_dataset
    async with opened_registry(args) as registry:
        existing = {m.name for m in await registry.list_models()}
        created = MODEL not in existing
        if created:
            versions = await register_demo(registry, actor=actor())
        else:
            versions = await registry.list_versions(MODEL)
    data_path = None
    if args.write_data:
        try:
            data_path = str(write_demo_dataset(args.write_data, drift=args.drift))
        except OSError as exc:
            fail(f"cannot write {args.write_data}: {exc.strerror or exc}")
    if args.json:
        print_json(
            {
                "model": MODEL,
                "created": created,
                "data": data_path,
                "versions": [_version_dict(mv) for mv in versions],
            }
        )
        return 0
    if created:
        print(f"registered the demo model {MODEL!r}:")
    else:
        print(f"model {MODEL!r} already exists; nothing registered:")
    rows = [
        (
            mv.version,
            mv.stage.value,
            mv.lineage.get("model_type"),
            (mv.lineage.get("performance") or {}).get("test_auc"),
            mv.artifact_sha256[:12],
        )
        for mv in versions
    ]
    print_table(rows, ["version", "stage", "model_type", "test_auc", "sha256"])
    if data_path:
        print(f"wrote demo data to {data_path}")
    return 0


def registration_options(parser: argparse.ArgumentParser) -> None:
    """The options of a registered version, which `convert` and `import` share."""
    parser.add_argument("--name", required=True, metavar="N", help="modelgate model name")
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--version", metavar="V", help="explicit version, e.g. 1.2.0")
    which.add_argument(
        "--bump",
        nargs="?",
        const="auto",
        choices=["major", "minor", "patch", "auto"],
        help="next version after the highest existing one (1.0.0 for a new model); auto "
        "(also a bare --bump): major when the input schema or classes changed, else minor",
    )
    parser.add_argument("--label", metavar="COL", help="label column of the sample (not a feature)")
    parser.add_argument(
        "--tolerance",
        type=float,
        metavar="T",
        help="parity tolerance: max probability difference for classifiers, max "
        "relative difference for regressors (default 1e-4)",
    )
    parser.add_argument(
        "--reason", default="", metavar="TEXT", help="why: recorded in the audit log"
    )
    parser.add_argument("--description", default="", help="free text stored with the version")
    parser.add_argument("--tag", action="append", default=[], metavar="K=V", help="repeatable")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "convert",
        help="convert a fitted scikit-learn (or XGBoost / LightGBM) estimator to ONNX, prove "
        "parity and register it",
    )
    p.add_argument(
        "estimator",
        metavar="ESTIMATOR",
        help="joblib/pickle file of a fitted estimator (trusted files only: unpickling runs code)",
    )
    p.add_argument(
        "--sample",
        required=True,
        metavar="DATA",
        help="held-out rows (csv, parquet, npy, npz) for parity and reference distributions",
    )
    registration_options(p)
    p.add_argument(
        "--metadata",
        metavar="FILE.yaml",
        help="metadata.yaml (layout: docs/lifecycle.md): extends / overrides inferred lineage",
    )
    p.add_argument(
        "--force",
        action="store_true",
        help="register even when parity fails (recorded as forced); with --reason, also a "
        "minor/patch version over a changed schema (audited)",
    )
    p.add_argument(
        "--parity-report",
        metavar="FILE.json",
        help="write the parity record (with the report of differing rows when it fails) "
        "here; a refused registration writes it to $MODELGATE_HOME/parity-reports/N.json",
    )
    p.add_argument(
        "--git-commit",
        metavar="SHA",
        help="training code commit (default: HEAD of the estimator file's repository)",
    )
    common_options(p)
    p.set_defaults(handler=cmd_convert)

    p = subparsers.add_parser("demo", help="register the demo model 'churn' unless it exists")
    p.add_argument(
        "--write-data",
        metavar="FILE.csv",
        help="also write the demo's labelled holdout rows (for evaluate / curl examples)",
    )
    p.add_argument(
        "--drift",
        action="store_true",
        help="with --write-data: rows from a shifted population instead",
    )
    common_options(p)
    p.set_defaults(handler=cmd_demo)
