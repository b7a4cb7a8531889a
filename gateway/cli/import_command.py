"""`import` (an MLflow model -> the same conversion, parity and registration as `convert`)
and `mlflow sync` (report modelgate's stages back as MLflow model version tags).

mlflow, scikit-learn and the converters are imported inside the handlers only: every other
verb runs without the `mlflow` extra, and these say in one line that they need it.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import warnings
from typing import Any

from gateway.cli.common import actor, common_options, opened_registry
from gateway.cli.convert_commands import (
    _parse_tags,
    _tolerances,
    _version_dict,
    print_registered,
    registration_options,
)
from gateway.cli.extras import CONVERT, needs_extra
from gateway.cli.output import CLIError, fail, print_json, print_table
from registry.errors import NotFound
from registry.models import ModelVersion

MLFLOW = "mlflow"


def _tracking_uri(args: argparse.Namespace) -> str:
    uri = args.tracking_uri or os.environ.get("MLFLOW_TRACKING_URI")
    if not uri:
        fail("no MLflow tracking server: pass --tracking-uri URL (or set MLFLOW_TRACKING_URI)")
    return str(uri)


async def cmd_import(args: argparse.Namespace) -> int:
    with needs_extra(CONVERT, "modelgate import"):
        from converters import ConversionError, ParityError, publish, read_table, split_label
    with needs_extra(MLFLOW, "modelgate import"):
        with warnings.catch_warnings():  # mlflow warns at import time
            warnings.simplefilter("ignore")
            import mlflow  # noqa: F401  (fail here, in one line, before any work)

        from converters import mlflow_import
    tags = _parse_tags(args.tag)
    tracking_uri = _tracking_uri(args)
    try:
        with tempfile.TemporaryDirectory(prefix="modelgate-mlflow-") as workdir:
            imported = mlflow_import.load(args.model_uri, tracking_uri, workdir)
        if args.sample:
            sample = read_table(args.sample)
        elif imported.input_example is not None:
            sample = imported.input_example
        else:
            raise CLIError(
                f"{args.model_uri} has no logged input example: pass --sample DATA "
                "(held-out rows; --label COL names their label column)"
            )
        features, _ = split_label(sample, args.label)
        metadata = imported.metadata
        metadata["mlflow"]["signature_check"] = mlflow_import.check_signature(
            imported.signature, imported.estimator, features
        )
        metadata["mlflow"]["sample"] = "--sample" if args.sample else "input_example"
        async with opened_registry(args) as registry:
            mv = await publish(
                registry,
                args.name,
                imported.estimator,
                sample,
                args.label,
                version=args.version,
                bump=args.bump,
                metadata=metadata,
                force=False,
                reason=args.reason,
                actor=actor(),
                description=args.description,
                tags=tags,
                git_commit=imported.git_commit,
                **_tolerances(args.tolerance),
            )
        if args.report_to_mlflow:
            _report(mv, tracking_uri, mlflow_import)
    except ParityError as exc:
        raise CLIError(str(exc)) from None
    except ConversionError as exc:
        raise CLIError(str(exc)) from None
    source = mv.lineage.get("mlflow") or {}
    if args.json:
        print_json({**_version_dict(mv), "mlflow": source})
        return 0
    print_registered(mv, graph=False)
    print(
        f"from MLflow {source.get('model_uri')} (run {source.get('run_id')}, "
        f"registry version {source.get('registry_version')})"
    )
    return 0


def _report(mv: ModelVersion, tracking_uri: str | None, mlflow_import: Any) -> dict[str, str]:
    """Tag the MLflow model version ``mv`` was imported from with its modelgate stage."""
    source = mv.lineage.get("mlflow") or {}
    tags = mlflow_import.report_tags(mv.stage.value, mv.version, mv.stage_changed_at)
    mlflow_import.set_tags(
        tracking_uri or source["tracking_uri"],
        source["registered_model"],
        source["registry_version"],
        tags,
    )
    return tags


async def cmd_sync(args: argparse.Namespace) -> int:
    with needs_extra(MLFLOW, "modelgate mlflow sync"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import mlflow  # noqa: F401

        from converters import mlflow_import
    async with opened_registry(args) as registry:
        try:
            versions = await registry.list_versions(args.name)
        except NotFound:
            raise CLIError(f"no model {args.name!r}") from None
    imported = [mv for mv in versions if (mv.lineage.get("mlflow") or {}).get("registered_model")]
    if not imported:
        raise CLIError(f"no version of {args.name!r} was imported from an MLflow registered model")
    rows = []
    try:
        for mv in imported:
            tags = _report(mv, args.tracking_uri, mlflow_import)
            source = mv.lineage["mlflow"]
            rows.append((mv.version, source["registered_model"], source["registry_version"], tags))
    except mlflow_import.MlflowImportError as exc:
        raise CLIError(str(exc)) from None
    if args.json:
        print_json(
            [
                {"version": v, "mlflow_model": m, "mlflow_version": mv_, "tags": t}
                for v, m, mv_, t in rows
            ]
        )
        return 0
    table = [
        (v, f"{m}/{mv_}", ", ".join(f"{k}={val}" for k, val in t.items())) for v, m, mv_, t in rows
    ]
    print_table(table, ["version", "mlflow model version", "tags set"])
    return 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "import",
        help="import an MLflow model (scikit-learn, XGBoost, LightGBM flavour): convert, prove "
        "parity and register it with MLflow's lineage",
    )
    p.add_argument(
        "model_uri",
        metavar="MODEL_URI",
        help="models:/NAME@ALIAS, models:/NAME/VERSION or runs:/RUN_ID/PATH",
    )
    p.add_argument(
        "--tracking-uri",
        metavar="URL",
        help="MLflow tracking server (default: $MLFLOW_TRACKING_URI)",
    )
    p.add_argument(
        "--sample",
        metavar="DATA",
        help="held-out rows (csv, parquet, npy, npz); default: the model's logged input example",
    )
    registration_options(p)
    p.add_argument(
        "--report-to-mlflow",
        action="store_true",
        help="tag the MLflow model version with modelgate.stage / modelgate.version",
    )
    common_options(p)
    p.set_defaults(handler=cmd_import)

    group = subparsers.add_parser("mlflow", help="MLflow integration (report back stages)")
    verbs = group.add_subparsers(dest="mlflow_command", metavar="VERB", required=True)
    s = verbs.add_parser(
        "sync",
        help="tag every MLflow model version a model's versions were imported from with "
        "modelgate.stage, modelgate.version (and modelgate.deployed_at in production); "
        "MLflow aliases are never changed",
    )
    s.add_argument("name", metavar="NAME", help="modelgate model name")
    s.add_argument(
        "--tracking-uri",
        metavar="URL",
        help="MLflow tracking server (default: the one each version was imported from)",
    )
    common_options(s)
    s.set_defaults(handler=cmd_sync)
