from __future__ import annotations

import math

import pytest

from registry.deployment import deployment_from_json, validate_deployment
from registry.errors import InvalidDeployment
from registry.models import Deployment, Route, Shadow, Stage

STAGES = {
    "1.0.0": Stage.PRODUCTION,
    "1.1.0": Stage.STAGING,
    "1.2.0": Stage.NONE,
    "0.9.0": Stage.ARCHIVED,
}


def dep(**fields: object) -> Deployment:
    return Deployment("churn", **fields)  # type: ignore[arg-type]


def test_valid_deployments() -> None:
    validate_deployment(dep(), STAGES)  # empty routes: 100 % to production
    validate_deployment(
        dep(
            routes=(Route("1.0.0", 95), Route("1.1.0", 5.0)),
            shadows=(Shadow("1.2.0", 0.25),),
            challenger="1.1.0",
            sticky=True,
        ),
        STAGES,
    )
    validate_deployment(dep(routes=(Route("1.0.0", 100 / 3), Route("1.1.0", 200 / 3))), STAGES)
    validate_deployment(dep(routes=(Route("1.0.0", 100), Route("1.1.0", 0))), STAGES)


@pytest.mark.parametrize(
    ("deployment", "message"),
    [
        (dep(routes=(Route("9.9.9", 100),)), "route version 9.9.9 is not a version"),
        (dep(routes=(Route("0.9.0", 100),)), "route version 0.9.0 is archived"),
        (dep(routes=(Route("1.0.0", 60), Route("1.1.0", 30))), "must sum to 100, got 90"),
        (dep(routes=(Route("1.0.0", 100.001),)), "must sum to 100"),
        (dep(routes=(Route("1.0.0", math.nan),)), "finite number >= 0"),
        (dep(routes=(Route("1.0.0", math.inf),)), "finite number >= 0"),
        (dep(routes=(Route("1.0.0", 110), Route("1.1.0", -10))), "finite number >= 0"),
        (dep(routes=(Route("1.0.0", True),)), "finite number >= 0"),  # type: ignore[arg-type]
        (dep(routes=(Route("1.0.0", "100"),)), "finite number >= 0"),  # type: ignore[arg-type]
        (dep(routes=(Route("1.0.0", 0),)), "at least one route must have a weight > 0"),
        (dep(routes=(Route("1.0.0", 50), Route("1.0.0", 50))), "appears twice in routes"),
        (
            dep(routes=(Route("1.0.0", 100),), shadows=(Shadow("1.0.0", 1.0),)),
            "both a route and a shadow",
        ),
        (dep(shadows=(Shadow("1.1.0", 1.5),)), "sample must be a fraction in [0, 1]"),
        (dep(shadows=(Shadow("1.1.0", -0.1),)), "sample must be a fraction"),
        (dep(shadows=(Shadow("1.1.0", math.nan),)), "sample must be a fraction"),
        (dep(shadows=(Shadow("1.1.0", 1), Shadow("1.1.0", 1))), "appears twice in shadow"),
        (dep(shadows=(Shadow("0.9.0", 1.0),)), "shadow version 0.9.0 is archived"),
        (dep(shadows=(Shadow("7.0.0", 1.0),)), "shadow version 7.0.0 is not a version"),
        (dep(challenger="7.0.0"), "challenger version 7.0.0 is not a version"),
        (dep(challenger="0.9.0"), "challenger version 0.9.0 is archived"),
        (dep(sticky="yes"), "sticky must be true or false"),
    ],
)
def test_every_rule_is_enforced(deployment: Deployment, message: str) -> None:
    with pytest.raises(InvalidDeployment) as info:
        validate_deployment(deployment, STAGES)
    assert message in str(info.value)


def test_empty_routes_need_a_production_version() -> None:
    stages = {"1.0.0": Stage.STAGING}
    with pytest.raises(InvalidDeployment, match="has no production version"):
        validate_deployment(dep(), stages)
    validate_deployment(dep(routes=(Route("1.0.0", 100),)), stages)


def test_from_json_parses_the_admin_payload() -> None:
    payload = {
        "routes": [{"version": "1.0.0", "weight": 95}, {"version": "v1.1.0", "weight": 5}],
        "shadow": [{"version": "1.2.0", "sample": 1.0}, {"version": "1.3.0"}],
        "challenger": "1.1.0",
        "sticky": True,
        "model": "churn",
        "updated_at": "ignored",
    }
    parsed = deployment_from_json("churn", payload)
    assert parsed == Deployment(
        "churn",
        routes=(Route("1.0.0", 95.0), Route("1.1.0", 5.0)),
        shadows=(Shadow("1.2.0", 1.0), Shadow("1.3.0", 1.0)),
        challenger="1.1.0",
        sticky=True,
    )
    # the GET layout (Deployment.to_dict) can be PUT back unchanged
    assert deployment_from_json("churn", parsed.to_dict()) == parsed
    assert deployment_from_json("churn", {"routes": []}) == Deployment("churn")


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ([], "must be a JSON object"),
        ({}, "missing 'routes'"),
        ({"routes": [], "shadows": []}, "unknown field 'shadows'"),
        ({"routes": {"version": "1.0.0"}}, "routes must be a list"),
        ({"routes": ["1.0.0"]}, "routes[0] must be an object"),
        ({"routes": [{"weight": 100}]}, "routes[0]: missing 'version'"),
        ({"routes": [{"version": "1.0.0"}]}, "routes[0]: missing 'weight'"),
        ({"routes": [{"version": 1, "weight": 100}]}, "version must be a non-empty string"),
        ({"routes": [{"version": "1.0.0", "weight": "100"}]}, "weight must be a finite number"),
        ({"routes": [{"version": "1.0.0", "weight": True}]}, "weight must be a finite number"),
        ({"routes": [{"version": "1.0.0", "weight": 10**400}]}, "weight must be a finite"),
        ({"routes": [{"version": "1.0.0", "weight": 100, "x": 1}]}, "unknown field 'x'"),
        ({"routes": [], "shadow": [{"sample": 1}]}, "shadow[0]: missing 'version'"),
        ({"routes": [], "shadow": [{"version": "1.0.0", "sample": None}]}, "sample must be"),
        ({"routes": [], "challenger": 5}, "challenger: version must be a non-empty string"),
        ({"routes": [], "sticky": "true"}, "sticky must be true or false"),
        ({"routes": [], "sticky_salt": 7}, "sticky_salt must be a string"),
    ],
)
def test_from_json_refuses_malformed_payloads(payload: object, message: str) -> None:
    with pytest.raises(InvalidDeployment) as info:
        deployment_from_json("churn", payload)
    assert message in str(info.value)


async def test_refused_deployment_leaves_state_and_audit_untouched(
    registry, new_version, state_of
) -> None:
    nv = new_version()
    for version in ("1.0.0", "1.1.0", "0.9.0"):
        await registry.register_version("churn", nv, version=version)
    await registry.set_stage("churn", "1.0.0", Stage.PRODUCTION)
    await registry.set_stage("churn", "0.9.0", Stage.ARCHIVED)
    before = await state_of("churn")
    refused = [
        Deployment("churn", routes=(Route("1.0.0", 90),)),
        Deployment("churn", routes=(Route("0.9.0", 100),)),
        Deployment("churn", shadows=(Shadow("1.1.0", 2.0),)),
        Deployment("churn", challenger="3.0.0"),
        Deployment("churn", routes=(Route("1.0.0", 50), Route("1.0.0", 50))),
    ]
    for deployment in refused:
        with pytest.raises(InvalidDeployment):
            await registry.set_deployment(deployment, actor="ops")
    # a refused deployment also rolls back the stage changes given with it
    with pytest.raises(InvalidDeployment, match="1.0.0 is archived"):
        await registry.set_deployment(
            Deployment("churn", routes=(Route("1.0.0", 100),)),
            stage_changes={"1.1.0": Stage.PRODUCTION},
        )
    assert await state_of("churn") == before
