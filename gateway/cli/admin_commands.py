"""Traffic verbs: ``traffic``, ``rollback``, ``switch``, straight against the registry.

    modelgate traffic N                                   print the current traffic
    modelgate traffic N --route 1.0.0=95 --route 1.1.0=5 [--shadow 2.0.0=0.5]
                        [--challenger 1.1.0|none] [--sticky | --no-sticky] [--reason TEXT]
    modelgate rollback N [--reason TEXT]
    modelgate switch N V [--reason TEXT] [--force]

Options left out keep their current value (``--route`` replaces all routes, ``--shadow``
all shadows; ``--shadow none`` and ``--challenger none`` clear them). The same checks and
transaction as the admin API apply (``gateway.changes.apply``); a running
server picks the change up through its generation watcher, the path every worker uses.
With no server to verify the swap, a version the change newly sends traffic to is loaded
once as a trial first, and the change is refused with nothing written if it cannot load.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

from gateway.changes.apply import AdminChanges, traffic_view
from gateway.cli.common import actor, common_options, home_of, opened_registry
from gateway.cli.output import CLIError, print_json, print_table
from gateway.errors import GatewayError
from gateway.serving.model_state import effective_weights, read_model_state
from gateway.settings import Settings, SettingsError

NONE = "none"


def _pair(kind: str) -> Any:
    def parse(text: str) -> tuple[str, float]:
        version, sep, value = text.partition("=")
        if not sep or not version.strip():
            raise argparse.ArgumentTypeError(f"expected VERSION={kind}, got {text!r}")
        try:
            return version.strip(), float(value)
        except ValueError:
            message = f"{version.strip()}: not a number: {value!r}"
            raise argparse.ArgumentTypeError(message) from None

    return parse


def _shadow(text: str) -> tuple[str, float] | None:
    return None if text.strip().lower() == NONE else _pair("RATE")(text)


def _payload(args: argparse.Namespace, current: dict[str, Any]) -> dict[str, Any] | None:
    """The traffic to PUT: the current one with the given options applied (None: no option)."""
    given = (args.route, args.shadow, args.challenger, args.sticky)
    if all(option is None for option in given):
        return None
    payload = {k: current[k] for k in ("routes", "shadow", "challenger", "sticky")}
    if args.route is not None:
        payload["routes"] = [{"version": v, "weight": w} for v, w in args.route]
    if args.shadow is not None:
        pairs = [pair for pair in args.shadow if pair is not None]
        payload["shadow"] = [{"version": v, "sample": s} for v, s in pairs]
    if args.challenger is not None:
        payload["challenger"] = None if args.challenger.lower() == NONE else args.challenger
    if args.sticky is not None:
        payload["sticky"] = args.sticky
    return payload


def _changes(args: argparse.Namespace, registry: Any) -> AdminChanges:
    home = home_of(args)
    try:
        settings = Settings.from_environ(os.environ, home=str(home.root))
    except SettingsError as exc:
        raise CLIError(str(exc)) from None
    return AdminChanges(registry, home.root, actor=actor(), settings=settings)


async def _run(args: argparse.Namespace, change: str) -> dict[str, Any] | None:
    async with opened_registry(args) as registry:
        try:
            if change == "traffic":
                current = traffic_view(args.name, await registry.get_deployment(args.name))
                payload = _payload(args, current)
                if payload is None:
                    return None
                return await _changes(args, registry).traffic(args.name, payload, args.reason)
            if change == "rollback":
                return await _changes(args, registry).rollback(args.name, args.reason)
            return await _changes(args, registry).switch(
                args.name, args.version, reason=args.reason, force=args.force
            )
        except GatewayError as exc:
            raise CLIError(str(exc)) from None


async def _print_traffic(args: argparse.Namespace, outcome: dict[str, Any] | None) -> None:
    async with opened_registry(args) as registry:
        ms = await read_model_state(registry, args.name)
    view = traffic_view(args.name, ms.deployment)
    if args.json:
        print_json(outcome if outcome is not None else view)
        return
    if outcome is not None and outcome["changed"]:
        print(f"{args.name}: {outcome['action']} applied (generation {outcome['generation']})")
    elif outcome is not None:
        print(f"{args.name}: already as asked, nothing changed")
    weights = effective_weights(ms.deployment, ms.production)
    shadows = {s.version: s.sample for s in ms.deployment.shadows}
    rows = []
    for mv in ms.versions:
        roles = [
            role
            for role, applies in (
                ("production", mv.version == ms.production),
                ("rollback target", mv.version == ms.rollback_target),
                ("challenger", mv.version == ms.deployment.challenger),
            )
            if applies
        ]
        weight = weights.get(mv.version)
        rows.append((mv.version, mv.stage.value, weight, shadows.get(mv.version), roles))
    print_table(rows, ["version", "stage", "weight %", "shadow", "role"])
    sticky = "on" if ms.deployment.sticky else "off"
    print(f"sticky routing: {sticky}; updated {ms.deployment.updated_at or '-'}")


async def cmd_traffic(args: argparse.Namespace) -> int:
    await _print_traffic(args, await _run(args, "traffic"))
    return 0


async def cmd_rollback(args: argparse.Namespace) -> int:
    await _print_traffic(args, await _run(args, "rollback"))
    return 0


async def cmd_switch(args: argparse.Namespace) -> int:
    await _print_traffic(args, await _run(args, "switch"))
    return 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``traffic``, ``rollback`` and ``switch`` to the ``modelgate`` parser."""
    p = subparsers.add_parser(
        "traffic",
        help="show or change a model's traffic (weights, shadows, challenger, sticky)",
        description="Without options: print the traffic. With options: change it in one "
        "audited transaction (options left out keep their value).",
    )
    p.add_argument("name", metavar="N", help="model name")
    p.add_argument(
        "--route",
        type=_pair("WEIGHT"),
        action="append",
        metavar="V=WEIGHT",
        help="a route, weight in percent (repeat; all routes together replace the current ones)",
    )
    p.add_argument(
        "--shadow",
        type=_shadow,
        action="append",
        metavar="V=RATE",
        help="mirror a fraction 0..1 of the traffic to V (repeat; 'none' clears)",
    )
    p.add_argument("--challenger", metavar="V", help="version for X-Use-Challenger ('none' clears)")
    sticky = p.add_mutually_exclusive_group()
    sticky.add_argument("--sticky", dest="sticky", action="store_true", default=None)
    sticky.add_argument("--no-sticky", dest="sticky", action="store_false")
    p.add_argument("--reason", default="", help="recorded in the audit log")
    common_options(p)
    p.set_defaults(handler=cmd_traffic)

    p = subparsers.add_parser(
        "rollback", help="production back to the previous production version, all traffic"
    )
    p.add_argument("name", metavar="N", help="model name")
    p.add_argument("--reason", default="", help="recorded in the audit log")
    common_options(p)
    p.set_defaults(handler=cmd_rollback)

    p = subparsers.add_parser(
        "switch",
        help="blue-green: V becomes production with all traffic; the old one stays warm",
    )
    p.add_argument("name", metavar="N", help="model name")
    p.add_argument("version", metavar="V", help="version or alias")
    p.add_argument("--reason", default="", help="recorded in the audit log")
    p.add_argument(
        "--force", action="store_true", help="override a promotion-gate refusal (needs --reason)"
    )
    common_options(p)
    p.set_defaults(handler=cmd_switch)
