from __future__ import annotations

import asyncio
import math

import pytest

from registry.errors import (
    ArtifactError,
    InvalidTransition,
    InvalidVersion,
    NotFound,
    RegistryError,
    VersionExists,
)
from registry.models import Deployment, NewVersion, Route, Shadow, Stage


async def test_bump_sequence_and_numeric_order(registry, new_version) -> None:
    nv = new_version()
    versions = [
        (await registry.register_version("churn", nv, bump=part)).version
        for part in ("minor", "patch", "minor", "major")
    ]
    assert versions == ["1.0.0", "1.0.1", "1.1.0", "2.0.0"]
    await registry.register_version("churn", nv, version="1.10.0")
    assert (await registry.register_version("churn", nv, bump="patch")).version == "2.0.1"
    listed = [mv.version for mv in await registry.list_versions("churn")]
    assert listed == ["1.0.0", "1.0.1", "1.1.0", "1.10.0", "2.0.0", "2.0.1"]
    model = await registry.get_model("churn")
    assert (model.latest_version, model.production_version) == ("2.0.1", None)


async def test_register_round_trips_every_field(registry, new_version) -> None:
    nv = new_version(
        b"model-bytes",
        lineage={"model_type": "random_forest", "training": {"dataset_fingerprint": "ab" * 32}},
        reference={"n_rows": 10, "numerical": {"x": {"edges": [0.5], "proportions": [0.4, 0.6]}}},
        parity={"rows": 200, "max_abs_diff": 1.2e-7, "passed": True},
        description="first",
        tags={"team": "risk"},
    )
    mv = await registry.register_version("churn", nv, version="v1.2.0", actor="alice")
    assert mv.version == "1.2.0" and mv.stage == Stage.NONE
    assert mv.created_by == "alice"  # NewVersion.created_by empty -> the actor
    fetched = await registry.get_version("churn", "1.2.0")
    assert fetched == mv
    assert fetched.lineage["training"]["dataset_fingerprint"] == "ab" * 32
    assert fetched.reference["numerical"]["x"]["proportions"] == [0.4, 0.6]
    assert fetched.tags == {"team": "risk"} and fetched.evaluation is None
    assert await registry.read_artifact("churn", "v1.2.0") == b"model-bytes"
    assert (await registry.get_deployment("churn")).routes == ()
    assert len((await registry.get_deployment("churn")).sticky_salt) == 16


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "exactly one of version"),
        ({"version": "1.0.0", "bump": "patch"}, "exactly one of version"),
        ({"version": "1.0"}, "invalid version"),
        ({"bump": "micro"}, "invalid bump"),
    ],
)
async def test_register_argument_errors(registry, new_version, kwargs, message) -> None:
    with pytest.raises(InvalidVersion, match=message):
        await registry.register_version("churn", new_version(), **kwargs)
    assert await registry.list_models() == []
    assert await registry.generation() == 0


async def test_invalid_payloads_are_refused_before_any_write(registry, new_version) -> None:
    with pytest.raises(InvalidVersion, match="invalid model name 'a/b'"):
        await registry.register_version("a/b", new_version(), bump="patch")
    with pytest.raises(InvalidVersion, match="lineage cannot be stored as JSON"):
        await registry.register_version("churn", new_version(lineage={"x": math.nan}), bump="patch")
    with pytest.raises(InvalidVersion, match="tags must map strings to strings"):
        await registry.register_version("churn", new_version(tags={"n": 1}), bump="patch")
    assert await registry.list_models() == [] and await registry.audit() == []


async def test_duplicate_version_refused_and_registry_unchanged(
    registry, new_version, state_of
) -> None:
    await registry.register_version("churn", new_version(), version="1.0.0")
    before = await state_of("churn")
    with pytest.raises(VersionExists, match="already has version 1.0.0"):
        await registry.register_version("churn", new_version(b"other"), version="v1.0.0")
    assert await state_of("churn") == before


async def test_missing_or_damaged_artifact_is_refused(registry, new_version) -> None:
    nv = new_version(b"abc")
    ghost = NewVersion(artifact_sha256="0" * 64, artifact_size=3, schema={})
    with pytest.raises(ArtifactError, match="missing"):
        await registry.register_version("churn", ghost, bump="patch")
    wrong_size = NewVersion(artifact_sha256=nv.artifact_sha256, artifact_size=4, schema={})
    with pytest.raises(ArtifactError, match="tampered or truncated"):
        await registry.register_version("churn", wrong_size, bump="patch")
    bad = NewVersion(artifact_sha256="../../etc/passwd", artifact_size=3, schema={})
    with pytest.raises(ArtifactError, match="invalid artifact digest"):
        await registry.register_version("churn", bad, bump="patch")
    path = registry.artifacts.path(nv.artifact_sha256)
    path.chmod(0o644)
    path.write_bytes(b"abd")
    with pytest.raises(ArtifactError, match="tampered or truncated"):
        await registry.register_version("churn", nv, bump="patch")
    assert await registry.list_models() == [] and await registry.generation() == 0


async def test_not_found_errors(registry, new_version) -> None:
    await registry.register_version("churn", new_version(), version="1.0.0")
    cases = [
        (registry.get_model("nope"), "unknown model 'nope'"),
        (registry.list_versions("nope"), "unknown model 'nope'"),
        (registry.get_version("nope", "1.0.0"), "unknown model 'nope'"),
        (registry.get_version("churn", "9.9.9"), "has no version 9.9.9"),
        (registry.get_version("churn", "champion"), "no version or alias 'champion'"),
        (registry.get_deployment("nope"), "unknown model 'nope'"),
        (registry.previous_production("nope"), "unknown model 'nope'"),
        (registry.set_stage("churn", "2.0.0", Stage.STAGING), "has no version 2.0.0"),
        (registry.set_alias("churn", "champion", "2.0.0"), "has no version 2.0.0"),
        (registry.delete_alias("churn", "champion"), "has no alias 'champion'"),
        (registry.save_evaluation("churn", "2.0.0", {}), "has no version 2.0.0"),
        (registry.read_artifact("churn", "2.0.0"), "has no version 2.0.0"),
    ]
    for call, message in cases:
        with pytest.raises(NotFound, match=message):
            await call


async def test_aliases(registry, new_version) -> None:
    nv = new_version()
    for version in ("1.0.0", "1.1.0"):
        await registry.register_version("churn", nv, version=version)
    await registry.set_alias("churn", "champion", "1.0.0", actor="a")
    await registry.set_alias("churn", "backup", "champion", actor="a")  # alias of an alias
    assert (await registry.get_version("churn", "champion")).aliases == ("backup", "champion")
    generation = await registry.generation()
    await registry.set_alias("churn", "champion", "1.0.0")  # no change: no audit, no bump
    assert await registry.generation() == generation
    await registry.set_alias("churn", "champion", "1.1.0", actor="b")
    assert (await registry.get_version("churn", "champion")).version == "1.1.0"
    moved = (await registry.audit(action="alias", limit=1))[0]
    assert (moved.before, moved.after) == (
        {"alias": "champion", "version": "1.0.0"},
        {"alias": "champion", "version": "1.1.0"},
    )
    await registry.delete_alias("churn", "champion")
    with pytest.raises(NotFound):
        await registry.get_version("churn", "champion")
    for bad in ("1.0.0", "has space", "", "9lives", "a.b"):
        with pytest.raises(InvalidVersion, match="invalid alias"):
            await registry.set_alias("churn", bad, "1.0.0")
    await registry.set_alias("churn", "v2", "1.1.0")  # no dots: never mistaken for a version
    assert (await registry.get_version("churn", "v2")).version == "1.1.0"


async def test_promotion_archives_previous_and_moves_traffic(registry, new_version) -> None:
    nv = new_version()
    for version in ("1.0.0", "1.1.0", "1.2.0"):
        await registry.register_version("churn", nv, version=version)
    await registry.set_stage("churn", "1.0.0", Stage.PRODUCTION)
    assert (await registry.get_deployment("churn")).routes == (Route("1.0.0", 100.0),)
    await registry.set_stage("churn", "1.1.0", Stage.STAGING)
    await registry.set_deployment(
        Deployment(
            "churn",
            routes=(Route("1.0.0", 90), Route("1.1.0", 10)),
            shadows=(Shadow("1.2.0", 0.5),),
            challenger="1.1.0",
            sticky=True,
        ),
        actor="ops",
    )
    promoted = await registry.set_stage("churn", "1.1.0", "production", reason="canary ok")
    assert promoted.stage == Stage.PRODUCTION
    old = await registry.get_version("churn", "1.0.0")
    assert old.stage == Stage.ARCHIVED and old.stage_changed_at == promoted.stage_changed_at
    deployment = await registry.get_deployment("churn")
    assert deployment.routes == (Route("1.1.0", 100.0),)
    assert deployment.shadows == (Shadow("1.2.0", 0.5),)
    assert deployment.challenger is None and deployment.sticky is True
    assert (await registry.previous_production("churn")).version == "1.0.0"
    assert (await registry.get_model("churn")).production_version == "1.1.0"
    actions = [(e.action, e.version, e.reason) for e in await registry.audit(limit=3)]
    assert actions == [
        ("traffic", "1.1.0", "1.1.0 promoted to production"),
        ("stage", "1.1.0", "canary ok"),
        ("stage", "1.0.0", "superseded by 1.1.0: canary ok"),
    ]


async def test_previous_production_is_the_latest_to_leave(registry, new_version) -> None:
    nv = new_version()
    for version in ("1.0.0", "1.1.0", "1.2.0"):
        await registry.register_version("churn", nv, version=version)
        await registry.set_stage("churn", version, Stage.PRODUCTION)
    assert (await registry.previous_production("churn")).version == "1.1.0"
    # rollback: traffic and stages move in one transaction
    rolled = await registry.set_deployment(
        Deployment("churn", routes=(Route("1.1.0", 100),)),
        action="rollback",
        reason="p95 too high",
        stage_changes={"1.1.0": Stage.PRODUCTION},
    )
    assert rolled.routes == (Route("1.1.0", 100),)
    stages = {mv.version: mv.stage for mv in await registry.list_versions("churn")}
    assert stages == {"1.0.0": Stage.ARCHIVED, "1.1.0": Stage.PRODUCTION, "1.2.0": Stage.ARCHIVED}
    assert (await registry.previous_production("churn")).version == "1.2.0"
    assert (await registry.audit(limit=1))[0].action == "rollback"


async def test_previous_production_none_without_history(registry, new_version) -> None:
    await registry.register_version("churn", new_version(), version="1.0.0")
    await registry.set_stage("churn", "1.0.0", Stage.ARCHIVED)  # never in production
    assert await registry.previous_production("churn") is None


@pytest.mark.parametrize(
    ("deployment", "victim", "why"),
    [
        (Deployment("churn", routes=(Route("1.0.0", 50), Route("1.1.0", 50))), "1.1.0", "routes"),
        (Deployment("churn", shadows=(Shadow("1.1.0", 1.0),)), "1.1.0", "a shadow"),
        (Deployment("churn", challenger="1.1.0"), "1.1.0", "the challenger"),
        (Deployment("churn"), "1.0.0", "routes are empty"),
    ],
)
async def test_archiving_a_version_with_traffic_is_refused(
    registry, new_version, state_of, deployment, victim, why
) -> None:
    nv = new_version()
    await registry.register_version("churn", nv, version="1.0.0")
    await registry.register_version("churn", nv, version="1.1.0")
    await registry.set_stage("churn", "1.0.0", Stage.PRODUCTION)
    await registry.set_stage("churn", "1.1.0", Stage.STAGING)
    await registry.set_deployment(deployment)
    before = await state_of("churn")
    with pytest.raises(InvalidTransition, match=f"{why}.*change traffic first"):
        await registry.set_stage("churn", victim, Stage.ARCHIVED)
    assert await state_of("churn") == before


async def test_leaving_production_needs_explicit_routes(registry, new_version) -> None:
    nv = new_version()
    await registry.register_version("churn", nv, version="1.0.0")
    await registry.register_version("churn", nv, version="1.1.0")
    await registry.set_stage("churn", "1.0.0", Stage.PRODUCTION)
    await registry.set_deployment(Deployment("churn"))  # empty routes: implicit production
    with pytest.raises(InvalidTransition, match="routes are empty"):
        await registry.set_stage("churn", "1.0.0", Stage.STAGING)
    await registry.set_stage("churn", "1.1.0", Stage.STAGING)
    await registry.set_deployment(Deployment("churn", routes=(Route("1.1.0", 100),)))
    demoted = await registry.set_stage("churn", "1.0.0", Stage.STAGING)
    assert demoted.stage == Stage.STAGING
    # it left production for staging, not archived: not a rollback target
    assert await registry.previous_production("churn") is None
    with pytest.raises(InvalidTransition, match="already in staging"):
        await registry.set_stage("churn", "1.0.0", Stage.STAGING)


async def test_generation_bumps_on_mutations_only(registry, new_version) -> None:
    nv = new_version()

    async def reads() -> None:
        await registry.list_models()
        await registry.get_model("churn")
        await registry.list_versions("churn")
        await registry.get_version("churn", "1.0.0")
        await registry.previous_production("churn")
        await registry.get_deployment("churn")
        await registry.audit()
        await registry.get_state("k")
        await registry.read_artifact("churn", "1.0.0")

    mutations = [
        lambda: registry.register_version("churn", nv, version="1.0.0"),
        lambda: registry.register_version("churn", nv, bump="minor"),
        lambda: registry.set_stage("churn", "1.0.0", Stage.PRODUCTION),
        lambda: registry.set_alias("churn", "champion", "1.0.0"),
        lambda: registry.delete_alias("churn", "champion"),
        lambda: registry.save_evaluation("churn", "1.0.0", {"accuracy": 0.9}),
        lambda: registry.set_deployment(Deployment("churn", routes=(Route("1.0.0", 100),))),
        lambda: registry.append_audit("note", actor="t"),
        lambda: registry.put_state("k", {"step": 1}),
    ]
    assert await registry.generation() == 0
    for expected, mutate in enumerate(mutations, start=1):
        await mutate()
        generation = await registry.generation()
        # register on a new model writes two audit rows but is one change
        assert generation == expected
        await reads()
        assert await registry.generation() == generation
    await registry.put_state("k", {"step": 1})  # same value: nothing changes
    assert await registry.generation() == len(mutations)


async def test_audit_filters(registry, new_version) -> None:
    nv = new_version()
    await registry.register_version("churn", nv, version="1.0.0", actor="alice")
    await registry.register_version("fraud", nv, version="1.0.0", actor="bob")
    await registry.set_stage("churn", "1.0.0", Stage.STAGING, actor="bob", reason="try")
    everything = await registry.audit()
    assert [e.id for e in everything] == sorted((e.id for e in everything), reverse=True)
    assert {e.model for e in await registry.audit(model="churn")} == {"churn"}
    assert [e.action for e in await registry.audit(action="register")] == ["register"] * 2
    assert {e.model for e in await registry.audit(actor="bob")} == {"fraud", "churn"}
    staged = await registry.audit(model="churn", action="stage", actor="bob")
    assert len(staged) == 1 and staged[0].reason == "try"
    assert staged[0].before == {"stage": "none"} and staged[0].after == {"stage": "staging"}
    assert len(await registry.audit(limit=2)) == 2
    assert await registry.audit(since="2999-01-01") == []
    assert len(await registry.audit(since="2000-01-01T00:00:00+02:00")) == len(everything)
    with pytest.raises(RegistryError, match="audit limit"):
        await registry.audit(limit=0)
    with pytest.raises(RegistryError, match="invalid since"):
        await registry.audit(since="yesterday")


async def test_state_and_evaluation(registry, new_version) -> None:
    assert await registry.get_state("rollout:churn") is None
    await registry.put_state("rollout:churn", {"step": 2, "weights": [90, 10]}, actor="ctl")
    assert await registry.get_state("rollout:churn") == {"step": 2, "weights": [90, 10]}
    entry = (await registry.audit(action="state"))[0]
    assert entry.after == {"key": "rollout:churn", "value": {"step": 2, "weights": [90, 10]}}
    with pytest.raises(RegistryError, match="cannot be stored as JSON"):
        await registry.put_state("bad", {"x": math.inf})
    await registry.register_version("churn", new_version(), version="1.0.0")
    await registry.set_alias("churn", "champion", "1.0.0")
    await registry.save_evaluation("churn", "champion", {"accuracy": 0.91, "groups": {}})
    assert (await registry.get_version("churn", "1.0.0")).evaluation["accuracy"] == 0.91


async def test_sticky_salt_kept_unless_given(registry, new_version) -> None:
    await registry.register_version("churn", new_version(), version="1.0.0")
    await registry.set_stage("churn", "1.0.0", Stage.PRODUCTION)
    salt = (await registry.get_deployment("churn")).sticky_salt
    kept = await registry.set_deployment(Deployment("churn", sticky=True))
    assert kept.sticky_salt == salt and kept.updated_at
    changed = await registry.set_deployment(Deployment("churn", sticky=True, sticky_salt="s2"))
    assert (await registry.get_deployment("churn")).sticky_salt == "s2" == changed.sticky_salt


async def test_concurrent_coroutines_get_distinct_versions(registry, new_version) -> None:
    nv = new_version()
    results = await asyncio.gather(
        *(registry.register_version("churn", nv, bump="patch") for _ in range(8))
    )
    assert sorted(mv.version for mv in results) == [f"1.0.{i}" for i in range(8)]


async def test_read_artifact_detects_tampering_after_registration(
    registry, new_version, backend_url
) -> None:
    nv = new_version(b"0123456789")
    await registry.register_version("churn", nv, version="1.0.0")
    path = registry.artifacts.path(nv.artifact_sha256)
    path.chmod(0o644)
    path.write_bytes(b"0123456780")
    if backend_url is None:
        with pytest.raises(ArtifactError, match=f"artifact {nv.artifact_sha256} is tampered"):
            await registry.read_artifact("churn", "1.0.0")
        return
    # PostgreSQL: the file is only this node's cache of the database copy; the damaged copy
    # is refused and replaced by the verified one
    assert await registry.read_artifact("churn", "1.0.0") == b"0123456789"
    assert path.read_bytes() == b"0123456789"
