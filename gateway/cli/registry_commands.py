"""Registry verbs: models, versions, show, stage, alias, audit, gc.

``stage N V production`` goes through the promotion gate (``gateway.cli.stage_gate``).

Tables for people, ``--json`` for machines; every failure is a RegistryError or a
CLIError, which ``main`` prints as one line with exit status 2.
"""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any

from gateway.cli.common import actor, common_options, named_number, opened_registry
from gateway.cli.output import CLIError, print_json, print_mapping, print_table
from gateway.cli.parity_report import report_lines
from gateway.cli.stage_gate import (
    forced_promotion,
    gate_for,
    gate_summary,
    parse_tolerances,
    refusal,
)
from registry.metadata_yaml import dump_yaml, version_to_metadata
from registry.models import ModelVersion, Stage
from registry.stages import parse_stage

DEFAULT_GC_MIN_AGE = 3600.0


def _summary(mv: ModelVersion) -> dict[str, Any]:
    """A version without its bulky payloads (schema, reference distributions)."""
    return {
        "model": mv.model,
        "version": mv.version,
        "stage": mv.stage.value,
        "aliases": list(mv.aliases),
        "artifact_sha256": mv.artifact_sha256,
        "artifact_size": mv.artifact_size,
        "description": mv.description,
        "tags": mv.tags,
        "created_at": mv.created_at,
        "created_by": mv.created_by,
        "stage_changed_at": mv.stage_changed_at,
        "parity": mv.parity,
        "evaluation": mv.evaluation,
    }


def _parity_cell(mv: ModelVersion) -> str:
    if not mv.parity:
        return "-"
    passed = mv.parity.get("passed")
    text = "passed" if passed else "FAILED" if passed is False else "?"
    return f"{text} (forced)" if mv.parity.get("forced") else text


async def cmd_models(args: argparse.Namespace) -> int:
    async with opened_registry(args) as registry:
        models = await registry.list_models()
    if args.json:
        print_json([dataclasses.asdict(m) for m in models])
    elif not models:
        print("no models registered")
    else:
        rows = [(m.name, m.production_version, m.latest_version, m.created_at) for m in models]
        print_table(rows, ["name", "production", "latest", "created_at"])
    return 0


async def cmd_versions(args: argparse.Namespace) -> int:
    async with opened_registry(args) as registry:
        versions = await registry.list_versions(args.name)
    if args.json:
        print_json([_summary(mv) for mv in versions])
        return 0
    rows = [
        (
            mv.version,
            mv.stage.value,
            mv.aliases,
            mv.artifact_sha256[:12],
            mv.artifact_size,
            _parity_cell(mv),
            mv.created_at,
            mv.created_by,
        )
        for mv in versions
    ]
    headers = ["version", "stage", "aliases", "artifact", "size", "parity", "created_at", "by"]
    print_table(rows, headers)
    return 0


async def cmd_show(args: argparse.Namespace) -> int:
    if args.yaml and args.json:
        raise CLIError("choose one of --yaml or --json")
    async with opened_registry(args) as registry:
        mv = await registry.get_version(args.name, args.version)
    if args.yaml:
        print(dump_yaml(version_to_metadata(mv)), end="")
    elif args.json:
        print_json(dataclasses.asdict(mv))
    else:
        lineage = mv.lineage or {}
        training = lineage.get("training") or {}
        conversion = lineage.get("conversion") or {}
        print_mapping(
            [
                ("model", mv.model),
                ("version", mv.version),
                ("stage", mv.stage.value),
                ("aliases", mv.aliases),
                ("model_type", lineage.get("model_type")),
                ("framework", lineage.get("framework")),
                ("task", (mv.schema or {}).get("task")),
                ("features", len((mv.schema or {}).get("features") or [])),
                ("dataset_version", training.get("dataset_version")),
                ("config_hash", lineage.get("config_hash")),
                ("parity", _parity_cell(mv)),
                ("graph", conversion.get("graph")),
                ("graph_reason", conversion.get("reason")),
                ("artifact", f"sha256:{mv.artifact_sha256} ({mv.artifact_size} bytes)"),
                ("created", f"{mv.created_at} by {mv.created_by or '-'}"),
                ("stage_changed_at", mv.stage_changed_at),
                ("description", mv.description or None),
                ("tags", [f"{k}={v}" for k, v in sorted(mv.tags.items())]),
            ]
        )
        report = report_lines(mv.parity)
        if report:
            print()
            print("\n".join(report))
    return 0


async def cmd_stage(args: argparse.Namespace) -> int:
    target = parse_stage(args.stage)
    tolerances = parse_tolerances(args.tolerance)
    if args.force and target != Stage.PRODUCTION:
        raise CLIError("--force overrides the promotion gate: it applies to production only")
    if args.force and not args.reason.strip():
        raise CLIError("overriding the promotion gate (--force) needs --reason TEXT")
    gate: dict[str, Any] | None = None
    async with opened_registry(args) as registry:
        before = await registry.get_version(args.name, args.version)
        model_before = await registry.get_model(args.name)
        previous = model_before.production_version
        checked = None
        if target == Stage.PRODUCTION and before.stage != Stage.PRODUCTION:
            checked = await gate_for(registry, before, previous, tolerances)
        if checked is not None and not checked[0].passed:
            result, production = checked
            if not args.force:
                raise refusal(before, production, result)
            mv = await forced_promotion(
                registry, before, production, result, args.reason.strip(), actor()
            )
            gate = gate_summary(result, production, forced=True)
        else:
            mv = await registry.set_stage(
                args.name, before.version, target, actor=actor(), reason=args.reason
            )
            if checked is not None:
                gate = gate_summary(checked[0], checked[1], forced=False)
    archived = previous if target == Stage.PRODUCTION and previous != mv.version else None
    if args.json:
        out: dict[str, Any] = {
            "model": mv.model,
            "version": mv.version,
            "from": before.stage.value,
            "to": mv.stage.value,
            "archived": archived,
        }
        if gate is not None:  # a promotion the gate judged
            out["gate"] = gate
        print_json(out)
        return 0
    if gate is not None:
        verdict = "passed" if gate["passed"] else "REFUSED, overridden (gate_override audited)"
        print(f"promotion gate vs {gate['production']}: {verdict}")
        for reason in gate["reasons"]:
            print(f"  - {reason}")
    print(f"{mv.model} {mv.version}: {before.stage.value} -> {mv.stage.value}")
    if archived:
        print(f"{mv.model} {archived}: production -> archived (superseded)")
    if target == Stage.PRODUCTION:
        print(f"traffic: 100 % to {mv.version}")
    return 0


async def cmd_alias(args: argparse.Namespace) -> int:
    if args.delete == (args.version is not None):
        raise CLIError("give VERSION to set the alias, or --delete (without VERSION) to remove it")
    async with opened_registry(args) as registry:
        if args.delete:
            await registry.delete_alias(args.name, args.alias, actor=actor())
            result = {"model": args.name, "alias": args.alias, "version": None}
        else:
            await registry.set_alias(args.name, args.alias, args.version, actor=actor())
            mv = await registry.get_version(args.name, args.alias)
            result = {"model": args.name, "alias": args.alias, "version": mv.version}
    if args.json:
        print_json(result)
    elif args.delete:
        print(f"{args.name}: alias {args.alias} removed")
    else:
        print(f"{args.name}: alias {args.alias} -> {result['version']}")
    return 0


async def cmd_audit(args: argparse.Namespace) -> int:
    async with opened_registry(args) as registry:
        entries = await registry.audit(
            model=args.model,
            action=args.action,
            actor=args.actor,
            since=args.since,
            limit=args.limit,
        )
    if args.json:
        print_json([dataclasses.asdict(e) for e in entries])
        return 0
    rows = [
        (e.id, e.at, e.actor or None, e.action, e.model, e.version, e.reason or None)
        for e in entries
    ]
    print_table(rows, ["id", "at", "actor", "action", "model", "version", "reason"])
    return 0


async def cmd_gc(args: argparse.Namespace) -> int:
    if args.min_age < 0:
        raise CLIError("--min-age must be >= 0 seconds")
    async with opened_registry(args) as registry:
        removed = await registry.collect_garbage(min_age=args.min_age)
    if args.json:
        print_json({"removed": removed})
    elif not removed:
        print("no orphaned artifacts")
    else:
        for path in removed:
            print(f"removed {path}")
        print(f"{len(removed)} file(s) removed")
    return 0


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be >= 1")
    return value


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the registry verbs to the ``modelgate`` parser."""
    p = subparsers.add_parser("models", help="list registered models")
    common_options(p)
    p.set_defaults(handler=cmd_models)

    p = subparsers.add_parser("versions", help="list a model's versions")
    p.add_argument("name", metavar="N", help="model name")
    common_options(p)
    p.set_defaults(handler=cmd_versions)

    p = subparsers.add_parser("show", help="show one version (--yaml: metadata.yaml)")
    p.add_argument("name", metavar="N", help="model name")
    p.add_argument("version", metavar="V", help="version or alias")
    p.add_argument("--yaml", action="store_true", help="metadata.yaml layout (docs/lifecycle.md)")
    common_options(p)
    p.set_defaults(handler=cmd_show)

    p = subparsers.add_parser("stage", help="move a version to another stage")
    p.add_argument("name", metavar="N", help="model name")
    p.add_argument("version", metavar="V", help="version or alias")
    p.add_argument("stage", metavar="STAGE", help="staging | production | archived | none")
    p.add_argument("--reason", default="", help="recorded in the audit log")
    p.add_argument(
        "--force",
        action="store_true",
        help="promote even though the promotion gate refuses (needs --reason; audited as "
        "gate_override)",
    )
    p.add_argument(
        "--tolerance",
        type=named_number,
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="promotion gate tolerance, e.g. primary_metric_drop=0.02 or "
        "latency_p95_slack_ms=1 (repeatable)",
    )
    common_options(p)
    p.set_defaults(handler=cmd_stage)

    p = subparsers.add_parser("alias", help="point an alias at a version (--delete removes it)")
    p.add_argument("name", metavar="N", help="model name")
    p.add_argument("alias", metavar="ALIAS", help="alias name, e.g. champion")
    p.add_argument("version", metavar="V", nargs="?", help="version (or another alias)")
    p.add_argument("--delete", action="store_true", help="remove the alias")
    common_options(p)
    p.set_defaults(handler=cmd_alias)

    p = subparsers.add_parser("audit", help="show the audit log, newest first")
    p.add_argument("--model", help="only this model")
    p.add_argument("--action", help="only this action (register, stage, traffic, alias...)")
    p.add_argument("--actor", help="only this actor")
    p.add_argument("--since", help="only entries at or after this ISO-8601 time")
    p.add_argument("--limit", type=_positive_int, default=50, help="at most this many entries")
    common_options(p)
    p.set_defaults(handler=cmd_audit)

    p = subparsers.add_parser("gc", help="remove artifact files no version references")
    p.add_argument(
        "--min-age",
        type=float,
        default=DEFAULT_GC_MIN_AGE,
        metavar="SECONDS",
        help="keep orphans younger than this, they may be mid-registration (default: 3600)",
    )
    common_options(p)
    p.set_defaults(handler=cmd_gc)
