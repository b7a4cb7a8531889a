"""Pure stage rules: which transitions are allowed. No I/O.

    none       -> staging | production | archived
    staging    -> production | archived | none
    production -> archived | staging
    archived   -> staging | production

Side effects of a transition (archiving the previous production version, moving traffic)
belong to the store, which applies them in the same transaction.
"""

from __future__ import annotations

from collections.abc import Mapping

from registry.errors import InvalidTransition
from registry.models import Stage

TRANSITIONS: Mapping[Stage, frozenset[Stage]] = {
    Stage.NONE: frozenset({Stage.STAGING, Stage.PRODUCTION, Stage.ARCHIVED}),
    Stage.STAGING: frozenset({Stage.PRODUCTION, Stage.ARCHIVED, Stage.NONE}),
    Stage.PRODUCTION: frozenset({Stage.ARCHIVED, Stage.STAGING}),
    Stage.ARCHIVED: frozenset({Stage.STAGING, Stage.PRODUCTION}),
}


def parse_stage(value: str | Stage) -> Stage:
    """``"Production"`` -> Stage.PRODUCTION; an unknown name raises InvalidTransition."""
    if isinstance(value, Stage):
        return value
    if isinstance(value, str):
        try:
            return Stage(value.strip().lower())
        except ValueError:
            pass
    names = ", ".join(s.value for s in Stage)
    raise InvalidTransition(f"unknown stage {value!r}: expected one of {names}")


def is_allowed(current: Stage, target: Stage) -> bool:
    return target in TRANSITIONS[current]


def check_transition(current: Stage, target: Stage, *, label: str = "version") -> None:
    """Raise InvalidTransition unless ``current -> target`` is in the table."""
    if current == target:
        raise InvalidTransition(f"{label} is already in {target.value}")
    if not is_allowed(current, target):
        allowed = ", ".join(sorted(s.value for s in TRANSITIONS[current]))
        raise InvalidTransition(
            f"{label} cannot move from {current.value} to {target.value} "
            f"(allowed from {current.value}: {allowed})"
        )
