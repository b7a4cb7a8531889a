"""The promotion gate of ``modelgate stage N V production`` (same rule as the admin API).

The gate applies when the current production version has a stored evaluation (``modelgate
evaluate``): the candidate must then have one on the same dataset and pass
``gateway.evaluation.gates.check_promotion``. With no production evaluation there is nothing
to compare against and the promotion goes ahead (a fresh model).

A refusal is a ``CLIError`` naming every reason. ``--force --reason TEXT`` overrides it:
the promotion is then written as ONE registry transaction whose audit action is
``gate_override`` (reason: the operator's text and the gate's reasons), beside the usual
stage rows, so an override can never happen without its audit entry.
"""

from __future__ import annotations

from typing import Any

from gateway.changes.plan import promotion_deployment
from gateway.cli.output import CLIError
from gateway.evaluation.gates import GateResult, GateTolerances, check_promotion
from registry.base import RegistryStore
from registry.models import ModelVersion, Stage

GATE_OVERRIDE = "gate_override"


def parse_tolerances(pairs: list[tuple[str, float]]) -> GateTolerances:
    try:
        return GateTolerances.from_dict(dict(pairs))
    except ValueError as exc:
        raise CLIError(str(exc)) from None


async def gate_for(
    registry: RegistryStore,
    candidate: ModelVersion,
    production: str | None,
    tolerances: GateTolerances,
) -> tuple[GateResult, str] | None:
    """(gate result, production version), or None when the gate does not apply."""
    if production is None or production == candidate.version:
        return None
    current = await registry.get_version(candidate.model, production)
    if not current.evaluation:
        return None
    return check_promotion(candidate.evaluation, current.evaluation, tolerances), production


def refusal(candidate: ModelVersion, production: str, result: GateResult) -> CLIError:
    return CLIError(
        f"the promotion gate refused {candidate.model} {candidate.version} (production "
        f"{production}): {'; '.join(result.reasons)}; override with --force --reason TEXT"
    )


async def forced_promotion(
    registry: RegistryStore,
    candidate: ModelVersion,
    production: str,
    result: GateResult,
    reason: str,
    actor: str,
) -> ModelVersion:
    before = await registry.get_deployment(candidate.model)
    why = f"{reason}; forced past the promotion gate: {'; '.join(result.reasons)}"
    await registry.set_deployment(
        promotion_deployment(before, candidate.version, production),
        actor=actor,
        action=GATE_OVERRIDE,
        reason=why,
        stage_changes={candidate.version: Stage.PRODUCTION},
    )
    return await registry.get_version(candidate.model, candidate.version)


def gate_summary(result: GateResult, production: str, forced: bool) -> dict[str, Any]:
    return {"production": production, "forced": forced, **result.to_dict()}
