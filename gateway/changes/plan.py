"""Pure planning of admin changes: registry state in, the exact change (or a refusal) out.

A ``Plan`` is everything one registry transaction writes (the new deployment, the stage
changes that go with it, the audit action and reason) plus what is needed to check and,
if a version fails to load, undo it. Nothing here does I/O; ``changes.apply`` applies plans.

Refusals, all raised before anything is written:

* 404 ``NotFound``: a version the change names does not exist;
* 400 ``InvalidDeployment`` / ``InputError``: malformed traffic (weights that do not sum to
  100, a negative weight, a shadow that is also a route, duplicates, a bad stage name);
* 409 ``Conflict`` / ``Refused``: a running experiment owns the model's split
  (``refuse_during_experiment``, with ``experiment``: its id), an archived version asked to
  take traffic, no version to roll back to, a challenger or a new production version that
  is not loaded (stage it first: staging versions are loaded and warmed), the promotion
  gate refused (details: the gate's reasons).

Promotion gate (stage -> production and switch): it applies when the CURRENT production
version has a stored evaluation; the candidate must then have one on the same dataset and
pass ``gateway.evaluation.gates.check_promotion``. With no production evaluation there is
nothing to compare against and the gate does not apply (a fresh model, the demo flow).
``force`` overrides a refusal; the change is then audited as ``gate_override`` with the
operator's reason (required) and the gate's reasons. A rollback is not gated: it returns
to the version that served production last.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from gateway.errors import Conflict, InputError
from gateway.evaluation.gates import check_promotion
from gateway.experiments.keys import current_key, running_id
from gateway.serving.model_state import ModelState, traffic_versions
from registry import semver
from registry.deployment import deployment_from_json, validate_deployment
from registry.errors import NotFound
from registry.models import Deployment, ModelVersion, Route, Stage

# the stages the admin API moves a version to (docs/contracts.md, "Stages")
ADMIN_STAGES = (Stage.STAGING, Stage.PRODUCTION, Stage.ARCHIVED)


# ``not_loaded(version)``: None when the version is loaded where the change is made, else why
NotLoaded = Callable[[str], str | None]


class Refused(Conflict):
    """A 409 carrying structured details (gate reasons, load failures) for the client."""

    def __init__(self, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.details = details or {}


@dataclass(frozen=True, slots=True)
class Plan:
    model: str
    action: str
    reason: str
    before: Deployment
    # None: a stage change that moves no traffic (applied with set_stage)
    after: Deployment | None
    stage_changes: dict[str, Stage] = field(default_factory=dict)
    production_before: str | None = None
    production_after: str | None = None
    rollback_target_before: str | None = None
    # set_stage plans: (version, target stage)
    stage_target: tuple[str, Stage] | None = None
    gate: dict[str, Any] | None = None
    # control-plane state written in the same transaction (an experiment's record), and
    # what to write back if the change is undone because a version failed to load
    states: dict[str, Any] = field(default_factory=dict)
    restore_states: dict[str, Any] = field(default_factory=dict)

    def needs(self) -> list[str]:
        """Versions that must be loaded for the change to stand (they take traffic)."""
        if self.after is None:
            return []
        return traffic_versions(self.after, self.production_after)

    def restore_stages(self) -> dict[str, Stage]:
        """Stage changes that undo this plan's promotion (empty when it promoted nothing).

        The promoted version goes back to archived when it was the rollback target (so it
        stays the target), else to staging: a version in stage none cannot be moved back to
        none from production, and archiving it would make a version that failed to load the
        rollback target.
        """
        promoted = self.production_after
        if promoted is None or promoted == self.production_before:
            return {}
        back = Stage.ARCHIVED if promoted == self.rollback_target_before else Stage.STAGING
        changes = {promoted: back}
        if self.production_before is not None:
            changes[self.production_before] = Stage.PRODUCTION
        return changes


def refuse_during_experiment(
    model: str, states: Mapping[str, Any], owner: str | None = None
) -> None:
    """409 naming the experiment while one runs for ``model`` (it owns the traffic split);
    ``owner``: the experiment making the change (its own stop) is let through."""
    experiment = running_id(states.get(current_key(model)))
    if owner is not None and experiment != owner:  # stopped meanwhile (by another writer)
        raise Conflict(f"experiment {owner} of {model!r} is no longer running")
    if experiment is not None and experiment != owner:
        raise Refused(
            f"experiment {experiment} is running for {model!r} and owns its traffic split; "
            f"stop it first (DELETE /admin/models/{model}/experiment)",
            {"experiment": experiment},
        )


def plan_split(
    ms: ModelState,
    after: Deployment,
    action: str,
    reason: str,
    not_loaded: NotLoaded,
    **extra: Any,
) -> Plan:
    """A traffic change made by a controller (an experiment's start or end), checked like
    an operator's; ``extra``: ``states`` / ``restore_states`` to write with it."""
    check_deployment(ms, after)
    check_challenger(after, not_loaded)
    return _plan(ms, action, reason, after, **extra)


def resolve(ms: ModelState, ref: str) -> ModelVersion:
    """A version of the model by number (``1.2.0``, ``v1.2.0``) or alias; NotFound else."""
    if not isinstance(ref, str) or not ref.strip():
        raise InputError("version must be a non-empty string")
    ref = ref.strip()
    name = semver.normalise(ref) if semver.is_version(ref) else ref
    found = ms.version(name) or next((v for v in ms.versions if ref in v.aliases), None)
    if found is None:
        raise NotFound(f"model {ms.name!r} has no version or alias {ref!r}")
    return found


def _named(deployment: Deployment) -> list[tuple[str, str]]:
    named = [("route", r.version) for r in deployment.routes]
    named += [("shadow", s.version) for s in deployment.shadows]
    if deployment.challenger is not None:
        named.append(("challenger", deployment.challenger))
    return named


def check_deployment(ms: ModelState, deployment: Deployment) -> None:
    """Unknown version -> 404, archived -> 409, anything else invalid -> 400."""
    stages = ms.stages()
    for role, version in _named(deployment):
        if not isinstance(version, str) or version not in stages:
            raise NotFound(f"model {ms.name!r} has no version {version!r} (named as {role})")
        if stages[version] == Stage.ARCHIVED:
            raise Conflict(
                f"{role} version {version} of {ms.name!r} is archived; "
                f"move it to staging before it takes traffic"
            )
    validate_deployment(deployment, stages)


def check_challenger(deployment: Deployment, not_loaded: NotLoaded) -> None:
    """The challenger must be loaded already, or be routed / shadowed by the same change
    (then it is loaded and verified with the routes before the change stands)."""
    challenger = deployment.challenger
    if challenger is None or not_loaded(challenger) is None:
        return
    if challenger in traffic_versions(dataclasses.replace(deployment, challenger=None), None):
        return
    raise Conflict(
        f"challenger {challenger} of {deployment.model!r} is not loaded; route or shadow "
        f"some traffic to it in the same change, or move it to staging first"
    )


def plan_traffic(ms: ModelState, payload: Any, reason: str, not_loaded: NotLoaded) -> Plan | None:
    """A traffic replacement (PUT /admin/models/{name}/traffic); None when it changes nothing."""
    after = deployment_from_json(ms.name, payload)
    check_deployment(ms, after)
    check_challenger(after, not_loaded)
    if after.to_dict() == ms.deployment.to_dict():
        return None
    return _plan(ms, "traffic", reason, after)


def _plan(
    ms: ModelState,
    action: str,
    reason: str,
    after: Deployment | None,
    **extra: Any,
) -> Plan:
    return Plan(
        model=ms.name,
        action=action,
        reason=reason,
        before=ms.deployment,
        after=after,
        production_before=ms.production,
        production_after=extra.pop("production_after", ms.production),
        rollback_target_before=ms.rollback_target,
        **extra,
    )


def promotion_deployment(before: Deployment, target: str, previous: str | None) -> Deployment:
    """All traffic to ``target``; shadows / challenger naming it or the outgoing production
    are dropped (a route cannot be a shadow; an archived version cannot take traffic)."""
    dropped = {target, previous}
    return dataclasses.replace(
        before,
        routes=(Route(target, 100.0),),
        shadows=tuple(s for s in before.shadows if s.version not in dropped),
        challenger=None if before.challenger in dropped else before.challenger,
    )


def check_loaded(ms: ModelState, version: str, not_loaded: NotLoaded, role: str) -> None:
    """A version becomes production only once it is loaded and warm where the change is
    made, so the promotion is a pointer swap (and never needs undoing)."""
    why = not_loaded(version)
    if why is not None:
        raise Refused(
            f"{role} {version} of {ms.name!r} is not loaded ({why}); a version must be "
            f"loaded before it becomes production: move it to staging first",
            {"failures": {version: why}},
        )


def _promotion(
    ms: ModelState, target: str, action: str, reason: str, gate: dict[str, Any] | None = None
) -> Plan:
    after = promotion_deployment(ms.deployment, target, ms.production)
    changes = {} if target == ms.production else {target: Stage.PRODUCTION}
    return _plan(
        ms, action, reason, after, stage_changes=changes, production_after=target, gate=gate
    )


def plan_rollback(ms: ModelState, reason: str, not_loaded: NotLoaded) -> Plan:
    """Production back to the version that most recently left it, all traffic with it."""
    target = ms.rollback_target
    if target is None:
        raise Conflict(f"model {ms.name!r} has no previous production version to roll back to")
    check_loaded(ms, target, not_loaded, "the rollback target")
    why = reason or f"rollback from {ms.production or 'no production'} to {target}"
    return _promotion(ms, target, "rollback", why)


def gate_decision(
    ms: ModelState, candidate: ModelVersion, force: bool, reason: str
) -> tuple[bool, dict[str, Any] | None]:
    """(overridden, gate report or None when the gate does not apply); raises Refused."""
    production = ms.version(ms.production) if ms.production else None
    if production is None or production.version == candidate.version or not production.evaluation:
        return False, None
    result = check_promotion(candidate.evaluation, production.evaluation)
    report = {"applied": True, "production": production.version, **result.to_dict()}
    if result.passed:
        return False, report
    if not force:
        raise Refused(
            f"the promotion gate refused {candidate.version} of {ms.name!r}: "
            f"{'; '.join(result.reasons)} (force with a reason to override)",
            {"gate": report},
        )
    if not reason:
        raise InputError("overriding the promotion gate (force) needs a reason")
    return True, report


def plan_switch(
    ms: ModelState,
    ref: str,
    reason: str,
    force: bool,
    not_loaded: NotLoaded,
    *,
    action: str = "switch",
) -> Plan | None:
    """Blue-green: ``ref`` becomes production and takes 100 % in one transaction; the
    outgoing production is archived as the rollback target, so it stays loaded (warm) and a
    rollback or a switch back is a pointer swap. None when nothing would change."""
    candidate = resolve(ms, ref)
    target = candidate.version
    if candidate.stage == Stage.PRODUCTION:
        after = promotion_deployment(ms.deployment, target, None)
        if after.to_dict() == ms.deployment.to_dict():
            return None
        return _plan(ms, action, reason or f"all traffic to {target}", after)
    check_loaded(ms, target, not_loaded, "version")
    overridden, gate = gate_decision(ms, candidate, force, reason)
    why = reason or f"{action} to {target}"
    if overridden:
        assert gate is not None
        why = f"{reason}; forced past the promotion gate: {'; '.join(gate['reasons'])}"
        action = "gate_override"
    return _promotion(ms, target, action, why, gate)


def plan_stage(
    ms: ModelState, ref: str, stage: Any, reason: str, force: bool, not_loaded: NotLoaded
) -> Plan:
    """POST .../versions/{v}/stage: production is a promotion (gated, moves traffic);
    staging / archived are plain transitions checked by the registry (409 when refused)."""
    if not isinstance(stage, str) or stage.strip().lower() not in {s.value for s in ADMIN_STAGES}:
        names = "|".join(s.value for s in ADMIN_STAGES)
        raise InputError(f"stage must be one of {names}, got {stage!r}")
    target = Stage(stage.strip().lower())
    candidate = resolve(ms, ref)
    if candidate.stage == target:
        raise Conflict(f"version {candidate.version} of {ms.name!r} is already {target.value}")
    if target == Stage.PRODUCTION:
        plan = plan_switch(ms, candidate.version, reason, force, not_loaded, action="promote")
        assert plan is not None  # the candidate is not production, so something changes
        return plan
    return _plan(ms, "stage", reason, None, stage_target=(candidate.version, target))
