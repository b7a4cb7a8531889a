"""`modelgate rollout N ...`: start, inspect or cancel an automated canary rollout.

    modelgate rollout N --candidate V --steps 5,25,50,100 --interval 60 --min-requests 100
                        [--max-failures 2] [--threshold NAME=VALUE ...]
    modelgate rollout N --status [--json]
    modelgate rollout N --cancel [--reason TEXT]

Writes go through the registry exactly like the admin API: step 1's weights are applied at
once, and the serving leader's controller takes the rollout from there (a server must be
running on the same home for it to advance).
"""

from __future__ import annotations

import argparse
from typing import Any

from gateway.cli.common import actor, common_options, home_of, named_number, opened_registry
from gateway.cli.output import CLIError, print_json, print_mapping, print_table, utc_time
from gateway.errors import GatewayError
from gateway.rollout.state import RolloutState
from gateway.rollout.store import Rollouts


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "rollout",
        help="automated canary rollout: start (--candidate), --status or --cancel",
        description="Shift traffic to a candidate step by step, comparing it with production "
        "over each interval; roll back on failed checks, promote when every step passes.",
    )
    p.add_argument("name", metavar="N", help="model name")
    action = p.add_mutually_exclusive_group(required=True)
    action.add_argument("--candidate", metavar="V", help="start a rollout of this version")
    action.add_argument("--status", action="store_true", help="show the model's rollout")
    action.add_argument("--cancel", action="store_true", help="cancel: all traffic to production")
    p.add_argument("--steps", default="5,25,50,100", help="canary weights in percent")
    p.add_argument("--interval", type=float, default=60.0, metavar="SECONDS")
    p.add_argument("--min-requests", type=int, default=100, metavar="N")
    p.add_argument("--max-failures", type=int, default=2, metavar="N")
    p.add_argument(
        "--threshold",
        type=named_number,
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="override a canary threshold, e.g. max_error_rate_increase=0.02 (repeatable)",
    )
    p.add_argument("--reason", default="", help="recorded in the audit log (--cancel)")
    common_options(p)
    p.set_defaults(handler=cmd_rollout)


def _print_state(state: RolloutState) -> None:
    spec = state.spec
    steps = ",".join(f"{s:g}" for s in spec.steps)
    weights = ", ".join(f"{v} {w:g} %" for v, w in state.describe()["weights"].items())
    print_mapping(
        [
            ("model", state.model),
            ("rollout", state.id),
            ("status", state.status + ("" if state.applied else " (applying)")),
            ("champion", spec.champion),
            ("candidate", spec.candidate),
            ("step", f"{state.step + 1}/{len(spec.steps)} ({steps})"),
            ("weights", weights if state.running else None),
            ("interval", f"{spec.interval_s:g} s, at least {spec.min_requests} requests"),
            ("failures", f"{state.failures}/{spec.max_failed_checks}"),
            ("started", f"{utc_time(state.created_at)} by {state.created_by or '-'}"),
            ("reason", state.reason or None),
        ]
    )
    if state.history:
        last = state.history[-1]
        print(f"\nlast analysis (step {last['step']}, {last['verdict']}):")
        rows = [
            (c["name"], c["status"], c["value"], c["threshold"], c["baseline"], c.get("p_value"))
            for c in last["checks"]
        ]
        print_table(rows, ["check", "status", "canary", "limit", "champion", "p"])


async def cmd_rollout(args: argparse.Namespace) -> int:
    async with opened_registry(args) as registry:
        rollouts = Rollouts(registry, home_of(args).root)
        try:
            if args.status:
                state = await rollouts.get(args.name)
            elif args.cancel:
                state = await rollouts.cancel(args.name, actor=actor(), reason=args.reason)
            else:
                payload: dict[str, Any] = {
                    "candidate": args.candidate,
                    "steps": args.steps,
                    "interval_s": args.interval,
                    "min_requests": args.min_requests,
                    "max_failed_checks": args.max_failures,
                    "thresholds": dict(args.threshold),
                }
                state = await rollouts.start(args.name, payload, actor=actor())
        except GatewayError as exc:
            raise CLIError(str(exc)) from None
    if args.json:
        print_json(state.describe())
    else:
        _print_state(state)
    return 0
