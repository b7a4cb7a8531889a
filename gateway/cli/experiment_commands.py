"""`modelgate experiment start|status|stop N`: A/B experiments on business outcomes.

    modelgate experiment start N --variant 1.0.0=50 --variant 1.1.0=50
        --metric conversion:binary --metric revenue:continuous --metric p95_latency_ms:guardrail
        [--baseline conversion=0.1] [--baseline revenue=40 --sd revenue=25]
        [--tolerance NAME=X] [--limit NAME=X] [--lower-is-better NAME]
        --mde 0.02 [--mde-kind relative|absolute] [--alpha 0.05] [--power 0.8]
        [--control V] [--traffic-per-day N] [--baseline-days 14] [--promote-winner]
        [--spec FILE]   (the POST body as a JSON file instead of the options)
    modelgate experiment status N [--json]
    modelgate experiment stop N [--reason TEXT] [--promote-winner]

Writes go through the registry exactly like the admin API (the start's traffic split and
record in one transaction); the serving leader's controller takes the looks from there.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, cast

import orjson

from gateway.cli.common import actor, common_options, home_of, named_number, opened_registry
from gateway.cli.output import CLIError, print_json, print_mapping, print_table, utc_time
from gateway.errors import GatewayError
from gateway.experiments.api import experiment_view
from gateway.experiments.planner import OutcomeData
from gateway.experiments.store import Experiments


def _metric(text: str) -> tuple[str, str]:
    name, sep, kind = text.partition(":")
    if not sep or not name.strip() or not kind.strip():
        raise argparse.ArgumentTypeError(f"expected NAME:KIND, got {text!r}")
    return name.strip(), kind.strip()


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "experiment",
        help="A/B experiment between two versions: start, status or stop",
        description="Split traffic between two versions (sticky by X-Routing-Key), compare "
        "their business outcomes, stop with a verdict.",
    )
    verbs = p.add_subparsers(dest="verb", metavar="VERB", required=True)
    start = verbs.add_parser("start", help="plan and start an experiment")
    start.add_argument("name", metavar="N", help="model name")
    start.add_argument("--spec", type=Path, metavar="FILE", help="the POST body as JSON")
    start.add_argument(
        "--variant",
        type=named_number,
        action="append",
        default=[],
        metavar="V=WEIGHT",
        help="a version and its weight in percent (twice)",
    )
    start.add_argument(
        "--metric",
        type=_metric,
        action="append",
        default=[],
        metavar="NAME:KIND",
        help="binary, continuous or guardrail (repeatable)",
    )
    for flag, what in (
        ("--baseline", "baseline rate or mean of a metric (when production has too few outcomes)"),
        ("--sd", "baseline standard deviation of a continuous metric"),
        ("--tolerance", "how much worse the candidate may be on a guardrail"),
        ("--limit", "the most the candidate may reach on a gateway guardrail"),
    ):
        start.add_argument(flag, type=named_number, action="append", default=[],
                           metavar="NAME=X", help=what)  # fmt: skip
    start.add_argument("--lower-is-better", action="append", default=[], metavar="NAME")
    start.add_argument("--mde", type=float, help="minimum detectable effect")
    start.add_argument("--mde-kind", choices=("relative", "absolute"), default="relative")
    start.add_argument("--alpha", type=float, default=0.05)
    start.add_argument("--power", type=float, default=0.8)
    start.add_argument("--control", metavar="V", help="default: production, else the first")
    start.add_argument("--traffic-per-day", type=float, metavar="N")
    start.add_argument("--baseline-days", type=int, default=14, metavar="DAYS")
    start.add_argument("--promote-winner", action="store_true",
                       help="send the winner through the promotion gate at the end")  # fmt: skip
    start.add_argument("--reason", default="", help="recorded in the audit log")
    status = verbs.add_parser("status", help="the model's experiment, its numbers and verdict")
    status.add_argument("name", metavar="N", help="model name")
    stop = verbs.add_parser("stop", help="stop the running experiment (verdict: operator)")
    stop.add_argument("name", metavar="N", help="model name")
    stop.add_argument("--reason", default="", help="recorded in the audit log")
    stop.add_argument("--promote-winner", action="store_true", default=None,
                      help="promote the last look's winner through the gate")  # fmt: skip
    for verb in (start, status, stop):
        common_options(verb)
        verb.set_defaults(handler=cmd_experiment)


def start_payload(args: argparse.Namespace) -> dict[str, Any]:
    """The POST body the options describe (or the ``--spec`` file)."""
    if args.spec is not None:
        try:
            loaded = orjson.loads(args.spec.read_bytes())
        except (OSError, orjson.JSONDecodeError) as exc:
            raise CLIError(f"cannot read {args.spec}: {exc}") from None
        if not isinstance(loaded, dict):
            raise CLIError(f"{args.spec}: expected a JSON object")
        return cast(dict[str, Any], loaded)
    if args.mde is None:
        raise CLIError("--mde is required: the minimum detectable effect (e.g. 0.02)")
    metrics: list[dict[str, Any]] = []
    extras = {"baseline": args.baseline, "sd": args.sd, "tolerance": args.tolerance,
              "limit": args.limit}  # fmt: skip
    known = {name for name, _ in args.metric}
    for key, pairs in extras.items():
        for name, _ in pairs:
            if name not in known:
                raise CLIError(f"--{key} {name}=...: no --metric {name}:KIND")
    for name, kind in args.metric:
        metric: dict[str, Any] = {"name": name, "kind": kind}
        for key, pairs in extras.items():
            for named, value in pairs:
                if named == name:
                    metric[key] = value
        if name in args.lower_is_better:
            metric["higher_is_better"] = False
        metrics.append(metric)
    payload: dict[str, Any] = {
        "variants": dict(args.variant),
        "metrics": metrics,
        "alpha": args.alpha,
        "power": args.power,
        "mde": args.mde,
        "mde_kind": args.mde_kind,
        "baseline_days": args.baseline_days,
        "promote_winner": args.promote_winner,
        "reason": args.reason,
    }
    if args.control:
        payload["control"] = args.control
    if args.traffic_per_day is not None:
        payload["traffic_per_day"] = args.traffic_per_day
    return payload


def _when(seconds: float | None) -> str | None:
    return None if seconds is None else utc_time(seconds)


def print_experiment(view: dict[str, Any]) -> None:
    plan = view["plan"]
    verdict = view.get("verdict") or {}
    promotion = view.get("promotion") or {}
    days = plan.get("duration_days")
    print_mapping(
        [
            ("model", view["model"]),
            ("experiment", view["id"]),
            ("status", view["status"]),
            ("variants", ", ".join(f"{v} {w:g} %" for v, w in view["variants"].items())),
            ("control", view["control"]),
            (
                "planned",
                f"{plan['n_per_variant']} rows per variant at alpha "
                f"{plan['fixed_alpha']:g}, power {plan['power']:g}",
            ),  # fmt: skip
            ("duration", None if days is None else f"{days:.3g} days ({plan['traffic_source']})"),
            ("started", f"{_when(view['started_at'])} by {view.get('started_by') or '-'}"),
            ("looks", view.get("looks")),
            ("verdict", f"{verdict['outcome']}: {verdict['reason']}" if verdict else None),
            ("winner", verdict.get("winner")),
            ("promotion", promotion.get("status")),
            ("stopped", _when(view.get("stopped_at"))),
        ]
    )
    results = view.get("results") or {}
    rows = []
    for metric, numbers in (results.get("metrics") or {}).items():
        for version, v in numbers.get("variants", {}).items():
            n = v.get("n", v.get("requests"))
            mean = v.get("mean", v.get("value"))
            rows.append((metric, version, n, mean, v.get("lower"), v.get("upper"),
                         numbers.get("outcome")))  # fmt: skip
    if rows:
        print()
        print_table(rows, ["metric", "version", "n", "mean", "lower", "upper", "decision"])


async def cmd_experiment(args: argparse.Namespace) -> int:
    async with opened_registry(args) as registry:
        experiments = Experiments(
            registry, home_of(args).root, cast(OutcomeData, registry), actor=actor()
        )
        try:
            if args.verb == "status":
                record = await experiments.get(args.name)
            elif args.verb == "stop":
                record = await experiments.stop(
                    args.name, reason=args.reason, promote=args.promote_winner
                )
            else:
                record = await experiments.start(args.name, start_payload(args))
        except GatewayError as exc:
            raise CLIError(str(exc)) from None
    view = experiment_view(record)
    if args.json:
        print_json(view)
    else:
        print_experiment(view)
    return 0
