from __future__ import annotations

import itertools

import pytest

from registry.errors import InvalidTransition
from registry.models import Stage
from registry.stages import check_transition, is_allowed, parse_stage

ALLOWED = {
    (Stage.NONE, Stage.STAGING),
    (Stage.NONE, Stage.PRODUCTION),
    (Stage.NONE, Stage.ARCHIVED),
    (Stage.STAGING, Stage.PRODUCTION),
    (Stage.STAGING, Stage.ARCHIVED),
    (Stage.STAGING, Stage.NONE),
    (Stage.PRODUCTION, Stage.ARCHIVED),
    (Stage.PRODUCTION, Stage.STAGING),
    (Stage.ARCHIVED, Stage.STAGING),
    (Stage.ARCHIVED, Stage.PRODUCTION),
}


@pytest.mark.parametrize(("current", "target"), list(itertools.product(Stage, Stage)))
def test_transition_table(current: Stage, target: Stage) -> None:
    expected = (current, target) in ALLOWED
    assert is_allowed(current, target) is expected
    if expected:
        check_transition(current, target)
    else:
        with pytest.raises(InvalidTransition):
            check_transition(current, target)


def test_same_stage_message() -> None:
    with pytest.raises(InvalidTransition, match="already in production"):
        check_transition(Stage.PRODUCTION, Stage.PRODUCTION)


def test_refusal_lists_the_allowed_targets() -> None:
    with pytest.raises(InvalidTransition, match="allowed from archived: production, staging"):
        check_transition(Stage.ARCHIVED, Stage.NONE, label="version 1.0.0")


def test_parse_stage() -> None:
    assert parse_stage("Production") is Stage.PRODUCTION
    assert parse_stage(Stage.NONE) is Stage.NONE
    with pytest.raises(InvalidTransition, match="unknown stage 'prod'"):
        parse_stage("prod")
