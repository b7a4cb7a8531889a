"""Experiments in the registry: start, stop and the controller's looks.

The admin API, the CLI and the controller each use ``Experiments`` from their own process.
Starting and stopping go through ``changes.apply.AdminChanges`` (the control-plane mutex,
the load check and undo of a serving worker, the trial load of the CLI), and ONE registry
transaction writes the traffic split and the experiment record (``experiment/<model>``
and ``experiment-history/<model>/<id>``), with their audit rows. A look is written with
``put_state`` under the same mutex, only while the stored experiment is still the one the
look was computed on.

Start: the variants take the model's routes with sticky routing (salt: the experiment id,
so a user stays in one arm, and a new experiment reshuffles). Stop: the control takes 100 %
(sticky as before the experiment), or with ``promote_winner`` the winner goes through the
promotion gate (``changes.plan.plan_switch``: production and 100 % in the same
transaction); a refusal is recorded in the record's ``promotion`` and the audit reason, and
the control takes the traffic instead.
"""

from __future__ import annotations

import dataclasses
import logging
import secrets
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gateway.changes.apply import AdminChanges
from gateway.changes.plan import NotLoaded, Plan, Refused, plan_split, plan_switch, resolve
from gateway.coordination.leader import FileMutex
from gateway.errors import Conflict, GatewayError, InputError
from gateway.experiments.analysis import GatewayReading, Look, fold
from gateway.experiments.keys import RUNNING, STOPPED, current_key, history_key, running_id
from gateway.experiments.planner import OutcomeData, make_plan
from gateway.experiments.spec import ExperimentSpec, parse_spec
from gateway.rollout.store import MUTEX_FILE  # the control-plane mutex AdminChanges takes
from gateway.serving.model_state import ModelState, read_model_state
from gateway.settings import Settings
from registry.errors import RegistryError
from registry.models import Route

if TYPE_CHECKING:
    from gateway.serving.publisher import Publisher
    from registry.sqlite.store import SqliteRegistry

logger = logging.getLogger("modelgate.experiments")

CONTROLLER = "experiment-controller"
OPERATOR_STOP = "stopped_by_operator"


class NoExperiment(GatewayError):
    status = 404
    reason = "no_experiment"


def new_id(model: str, now: float) -> str:
    stamp = datetime.fromtimestamp(now, UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"{model}-{stamp}-{secrets.token_hex(2)}"


def parse_record(model: str, raw: Any) -> dict[str, Any] | None:
    """The stored experiment of ``model`` (None: none, or unreadable)."""
    if not isinstance(raw, dict):
        return None
    needed = ("id", "model", "variants", "metrics", "started_at", "status", "control", "plan")
    if any(key not in raw for key in needed) or raw["model"] != model:
        logger.warning("ignoring unreadable experiment state of %s", model)
        return None
    return raw


def gateway_limits(settings: Settings) -> dict[str, float]:
    """Default limits of the gateway's guardrails: the health verdict's thresholds."""
    return {
        "p95_latency_ms": settings.health_max_p95_ms,
        "error_rate": settings.health_max_error_rate,
        "low_confidence_rate": settings.health_max_low_confidence_rate,
    }


class Experiments:
    """Start, stop and look at a model's experiment through the registry."""

    def __init__(
        self,
        registry: SqliteRegistry,
        home: str | Path,
        data: OutcomeData,
        *,
        actor: str,
        publisher: Publisher | None = None,
        settings: Settings | None = None,
        clock: Any = time.time,
    ) -> None:
        self.registry = registry
        self.home = Path(home)
        self.data = data
        self.actor = actor
        self.publisher = publisher
        self.settings = settings or Settings(home=self.home)
        self.clock = clock

    def _changes(self) -> AdminChanges:
        return AdminChanges(
            self.registry,
            self.home,
            actor=self.actor,
            publisher=self.publisher,
            settings=self.settings,
        )

    async def load(self, model: str) -> dict[str, Any] | None:
        return parse_record(model, await self.registry.get_state(current_key(model)))

    async def get(self, model: str) -> dict[str, Any]:
        await self.registry.get_model(model)  # 404 for an unknown model
        record = await self.load(model)
        if record is None:
            raise NoExperiment(f"model {model!r} has no experiment")
        return record

    async def history(self, model: str) -> list[dict[str, Any]]:
        """Every experiment of ``model`` ever started, oldest first."""
        prefix = history_key(model, "")
        view = await self.registry.serving_view(model, state_prefix=prefix)
        found = [parse_record(model, raw) for raw in view.states.values()]
        return sorted((r for r in found if r is not None), key=lambda r: r["started_at"])

    # --- start -----------------------------------------------------------------------
    async def start(self, model: str, payload: Any) -> dict[str, Any]:
        """Plan, then route the variants and store the experiment in one transaction."""
        spec = parse_spec(payload)
        ms = await read_model_state(self.registry, model)  # 404 first
        variants: dict[str, float] = {}
        for ref, weight in spec.variants.items():
            variants[resolve(ms, ref).version] = weight  # 404 for an unknown version
        if len(variants) != len(spec.variants):
            raise InputError("variants name the same version twice")
        control = self._control(ms, spec, variants)
        candidate = next(v for v in variants if v != control)
        previous = await self.registry.get_state(current_key(model))
        running = running_id(previous)
        if running is not None:
            raise Refused(
                f"experiment {running} is already running for {model!r}; stop it first "
                f"(DELETE /admin/models/{model}/experiment)",
                {"experiment": running},
            )
        plan = await make_plan(spec, model, ms.production or control, self.data)
        now = self.clock()
        experiment_id = new_id(model, now)
        limits = gateway_limits(self.settings)
        metrics = []
        for metric in spec.metrics:
            entry = metric.to_dict()
            if metric.measured_by_gateway and metric.limit is None:
                entry["limit"] = limits[metric.name]
            metrics.append(entry)
        record: dict[str, Any] = {
            "id": experiment_id,
            "model": model,
            "variants": variants,
            "control": control,
            "candidate": candidate,
            "metrics": metrics,
            "started_at": now,
            "started_by": self.actor,
            "status": RUNNING,
            "reason": spec.reason,
            "promote_winner": spec.promote_winner,
            "plan": plan.to_dict(),
            "sticky_before": {
                "sticky": ms.deployment.sticky,
                "sticky_salt": ms.deployment.sticky_salt,
            },
            "states": {},
            "looks": 0,
            "last_look": None,
            "verdict": None,
            "promotion": None,
            "stopped_at": None,
            "stopped_by": None,
        }
        split = ", ".join(f"{v} {w:g} %" for v, w in variants.items())
        why = f"experiment {experiment_id} started by {self.actor}: {split}" + (
            f" ({spec.reason})" if spec.reason else ""
        )
        aborted = {
            **record,
            "status": STOPPED,
            "verdict": {"outcome": "aborted", "winner": None, "winners": {},
                        "reason": "a variant failed to load; the previous traffic was restored"},
        }  # fmt: skip

        def build(state: ModelState, not_loaded: NotLoaded) -> Plan:
            dropped = set(variants)
            after = dataclasses.replace(
                state.deployment,
                routes=tuple(Route(v, w) for v, w in variants.items()),
                shadows=tuple(s for s in state.deployment.shadows if s.version not in dropped),
                challenger=(
                    None if state.deployment.challenger in dropped else state.deployment.challenger
                ),
                sticky=True,
                sticky_salt=experiment_id,
            )
            return plan_split(
                state,
                after,
                "experiment_start",
                why,
                not_loaded,
                states={current_key(model): record, history_key(model, experiment_id): record},
                restore_states={
                    current_key(model): previous,
                    history_key(model, experiment_id): aborted,
                },
            )

        outcome = await self._changes().apply(model, build, owner=None)
        return {**(await self.get(model)), "traffic": outcome["traffic"]}

    @staticmethod
    def _control(ms: ModelState, spec: ExperimentSpec, variants: Mapping[str, float]) -> str:
        if spec.control is not None:
            return resolve(ms, spec.control).version
        if ms.production in variants:
            assert ms.production is not None
            return ms.production
        return next(iter(variants))

    # --- looks -----------------------------------------------------------------------
    async def look(
        self, record: Mapping[str, Any], gateway: Mapping[str, GatewayReading] | None = None
    ) -> Look:
        """One look at the outcomes and assignments stored now (not saved)."""
        moments = await self.data.outcome_moments(record["id"], record["model"])
        assignments = await self.data.assignments(record["id"])
        return fold(record, moments, assignments, gateway or {}, self.clock())

    async def save_look(
        self, record: Mapping[str, Any], states: Mapping[str, Any], look: Mapping[str, Any]
    ) -> dict[str, Any] | None:
        """Store one look if the experiment is still the one it was computed on."""
        async with FileMutex(self.home / MUTEX_FILE):
            fresh = await self.load(record["model"])
            if fresh is None or fresh["id"] != record["id"] or fresh["status"] != RUNNING:
                return None
            if fresh["looks"] != record["looks"]:
                return None
            updated = {**fresh, "states": dict(states), "looks": fresh["looks"] + 1,
                       "last_look": dict(look)}  # fmt: skip
            await self.registry.put_state(
                current_key(record["model"]),
                updated,
                actor=self.actor,
                reason=f"experiment {record['id']}: look {updated['looks']}",
            )
            return updated

    # --- stop ------------------------------------------------------------------------
    async def stop(
        self,
        model: str,
        *,
        reason: str = "",
        promote: bool | None = None,
        verdict: Mapping[str, Any] | None = None,
        states: Mapping[str, Any] | None = None,
        look: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """End the running experiment with ``verdict`` (None: stopped by the operator, whose
        verdict carries the winner of the last look, if any) and hand the traffic back."""
        record = await self.get(model)
        if record["status"] != RUNNING:
            raise Conflict(f"experiment {record['id']} of {model!r} is already {record['status']}")
        if verdict is None:
            if look is None:  # the operator's verdict carries the numbers as they are now
                fresh = await self.look(record)
                states, look = fresh.states, fresh.look
            final = look.get("final") or {}
            verdict = {
                "outcome": OPERATOR_STOP,
                "winner": final.get("winner") if final.get("outcome") == "winner" else None,
                "winners": final.get("winners") or {},
                "reason": f"stopped by {self.actor}" + (f": {reason}" if reason else ""),
            }
        promote = bool(record.get("promote_winner")) if promote is None else promote
        winner = verdict.get("winner")
        stopped = {
            **record,
            "states": dict(states) if states is not None else record["states"],
            "looks": record["looks"] + (1 if look is not None else 0),
            "last_look": dict(look) if look is not None else record["last_look"],
            "status": STOPPED,
            "verdict": dict(verdict),
            "stopped_at": self.clock(),
            "stopped_by": self.actor,
        }
        why = f"experiment {record['id']} {verdict['outcome']}: {verdict['reason']}"

        def build(state: ModelState, not_loaded: NotLoaded) -> Plan:
            promotion: dict[str, Any] | None = None
            promoted: Plan | None = None
            if promote and winner:
                try:
                    promoted = plan_switch(
                        state, winner, why, False, not_loaded, action="experiment_promote"
                    )
                    promotion = {"version": winner, "status": "promoted",
                                 "gate": promoted.gate if promoted else None}  # fmt: skip
                except (GatewayError, RegistryError) as exc:
                    promotion = {"version": winner, "status": "refused", "reason": str(exc),
                                 **getattr(exc, "details", {})}  # fmt: skip
            elif promote:
                promotion = {"version": None, "status": "no_winner",
                             "reason": "the experiment ended without a winner"}  # fmt: skip
            final = {**stopped, "promotion": promotion}
            writes = {current_key(model): final, history_key(model, record["id"]): final}
            back = {current_key(model): record}
            before = record.get("sticky_before") or {}
            sticky = bool(before.get("sticky", False))
            salt = str(before.get("sticky_salt", ""))
            if promoted is not None and promoted.after is not None:
                return dataclasses.replace(
                    promoted,
                    after=dataclasses.replace(promoted.after, sticky=sticky, sticky_salt=salt),
                    reason=f"{why}; {winner} promoted through the gate",
                    states=writes,
                    restore_states=back,
                )
            after = dataclasses.replace(
                state.deployment,
                routes=(Route(record["control"], 100.0),),
                sticky=sticky,
                sticky_salt=salt,
            )
            refusal = ""
            if promotion is not None and promotion["status"] == "refused":
                refusal = f"; promotion of {winner} refused: {promotion['reason']}"
            return plan_split(
                state,
                after,
                "experiment_stop",
                f"{why}{refusal}; 100 % to {record['control']}",
                not_loaded,
                states=writes,
                restore_states=back,
            )

        outcome = await self._changes().apply(model, build, owner=record["id"])
        return {**(await self.get(model)), "traffic": outcome["traffic"]}
