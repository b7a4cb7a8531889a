"""serving_view: the one-round-trip snapshot the publisher and the admin API read."""

from __future__ import annotations

from dataclasses import replace

import pytest

from registry.errors import NotFound, RegistryError, StaleRead
from registry.models import Route, Stage
from registry.sqlite.store import SqliteRegistry


async def test_the_view_matches_the_per_call_reads(registry: SqliteRegistry, new_version):
    for version in ("1.0.0", "1.1.0", "2.0.0"):
        reference = {"features": {"a": {"edges": [0.0, 1.0], "fractions": [1.0]}}}
        await registry.register_version(
            "churn", new_version(version.encode(), reference=reference), version=version
        )
    await registry.register_version("other", new_version(b"o"), version="0.1.0")
    await registry.set_stage("churn", "1.0.0", Stage.PRODUCTION)
    await registry.set_stage("churn", "1.1.0", Stage.PRODUCTION)  # 1.0.0: rollback target
    await registry.set_stage("churn", "2.0.0", Stage.STAGING)
    await registry.set_alias("churn", "champion", "1.1.0")

    view = await registry.serving_view()

    assert view.generation == await registry.generation()
    assert [m.model for m in view.models] == await registry.list_models()
    churn = view.models[0]
    assert list(churn.versions) == await registry.list_versions("churn")
    assert churn.deployment == await registry.get_deployment("churn")
    assert churn.previous == await registry.previous_production("churn")
    assert churn.previous is not None and churn.previous.version == "1.0.0"
    assert churn.versions[1].aliases == ("champion",)
    assert churn.versions[0].reference["features"]["a"]["fractions"] == [1.0]
    assert view.states == {}


async def test_one_model_and_unknown_models(registry: SqliteRegistry, new_version):
    await registry.register_version("churn", new_version(), version="1.0.0")
    await registry.register_version("other", new_version(b"o"), version="1.0.0")
    one = await registry.serving_view("other")
    assert [m.model.name for m in one.models] == ["other"]
    assert one.models[0].previous is None
    with pytest.raises(NotFound, match="unknown model 'nope'"):
        await registry.serving_view("nope")


async def test_state_values_are_selected_by_a_literal_prefix(registry: SqliteRegistry):
    await registry.put_state("repository.unloaded.churn", True)
    await registry.put_state("repository.unloaded.a_b", {"x": 1})
    await registry.put_state("repository.unloadedX", True)  # a longer key, not under the prefix
    await registry.put_state("rollout.churn", {"step": 2})
    # GLOB metacharacters in the prefix are matched literally
    await registry.put_state("weird*[?].key", 7)

    view = await registry.serving_view(state_prefix="repository.unloaded.")
    assert view.states == {"repository.unloaded.churn": True, "repository.unloaded.a_b": {"x": 1}}
    weird = await registry.serving_view(state_prefix="weird*[?]")
    assert weird.states == {"weird*[?].key": 7}
    assert (await registry.serving_view(state_prefix="weird*[?]x")).states == {}


async def test_the_view_sees_each_committed_change(registry: SqliteRegistry, new_version):
    await registry.register_version("churn", new_version(), version="1.0.0")
    before = await registry.serving_view("churn")
    await registry.set_stage("churn", "1.0.0", Stage.PRODUCTION)
    after = await registry.serving_view("churn")
    assert after.generation > before.generation
    assert before.models[0].model.production_version is None
    assert after.models[0].model.production_version == "1.0.0"


async def test_a_closed_registry_refuses_views(home, new_version):
    from registry.sqlite.store import open_registry

    store = await open_registry(home)
    await store.close()
    await store.close()  # idempotent
    with pytest.raises(RegistryError, match="closed"):
        await store.serving_view()


@pytest.mark.sqlite_only
async def test_generation_follows_commits_from_another_connection(home, registry, new_version):
    from registry.sqlite.store import open_registry

    other = await open_registry(home)
    try:
        first = await registry.generation()
        assert await registry.generation() == first  # unchanged files: the cached value
        await other.register_version("churn", new_version(), version="1.0.0")
        # another process's commit changes the database files: read again at once
        assert await registry.generation() == await other.generation() > first
        await registry.set_stage("churn", "1.0.0", Stage.PRODUCTION)
        assert await other.generation() == await registry.generation() > first + 1
    finally:
        await other.close()


async def test_several_prefixes_select_the_union(registry: SqliteRegistry):
    await registry.put_state("repository.unloaded.churn", True)
    await registry.put_state("rollout:churn", {"step": 2})
    await registry.put_state("other", 1)

    view = await registry.serving_view(state_prefix=("repository.unloaded.", "rollout:"))

    assert view.states == {"repository.unloaded.churn": True, "rollout:churn": {"step": 2}}


async def test_commit_and_view_writes_and_returns_the_view_as_committed(
    registry: SqliteRegistry, new_version
):
    for version in ("1.0.0", "1.1.0"):
        await registry.register_version("churn", new_version(version.encode()), version=version)
    await registry.set_stage("churn", "1.0.0", Stage.PRODUCTION)
    await registry.put_state("rollout:churn", {"step": 1})
    before = await registry.generation()
    deployment = replace(await registry.get_deployment("churn"), routes=(Route("1.1.0", 100.0),))
    change = registry.deployment_change(
        deployment,
        actor="tester",
        action="switch",
        reason="one trip",
        stage_changes={"1.1.0": Stage.PRODUCTION},
    )

    committed, view = await registry.commit_and_view(
        change, expect_generation=before, state_prefix="rollout:"
    )

    assert view.generation == before + 1 == await registry.generation()
    assert view == await registry.serving_view(state_prefix="rollout:")
    assert view.models[0].model.production_version == "1.1.0"
    assert view.models[0].previous is not None and view.models[0].previous.version == "1.0.0"
    assert committed == await registry.get_deployment("churn")
    assert view.states == {"rollout:churn": {"step": 1}}
    last = (await registry.audit(limit=1))[0]
    assert (last.action, last.actor, last.reason) == ("switch", "tester", "one trip")


async def test_a_change_planned_on_an_older_generation_is_refused_and_writes_nothing(
    registry: SqliteRegistry, new_version, state_of
):
    for version in ("1.0.0", "1.1.0"):
        await registry.register_version("churn", new_version(version.encode()), version=version)
    planned_at = await registry.generation()
    await registry.set_alias("churn", "champion", "1.0.0")  # someone else commits first
    untouched = await state_of("churn")

    with pytest.raises(StaleRead, match=f"planned at {planned_at}"):
        await registry.commit_and_view(
            registry.stage_change("churn", "1.1.0", Stage.STAGING),
            expect_generation=planned_at,
        )
    with pytest.raises(StaleRead):
        await registry.set_stage("churn", "1.1.0", Stage.STAGING, expect_generation=planned_at)
    with pytest.raises(StaleRead):
        await registry.set_deployment(
            await registry.get_deployment("churn"), expect_generation=planned_at
        )

    assert await state_of("churn") == untouched
    current = await registry.generation()
    staged = await registry.set_stage("churn", "1.1.0", Stage.STAGING, expect_generation=current)
    assert staged.stage == Stage.STAGING


async def test_each_versions_stored_json_is_parsed_once_across_views(
    registry: SqliteRegistry, new_version
):
    reference = {"features": {"a": {"edges": [0.0, 1.0], "fractions": [1.0]}}}
    for model in ("churn", "fraud"):
        for version in ("1.0.0", "1.1.0"):
            payload = f"{model}-{version}".encode()
            await registry.register_version(
                model, new_version(payload, reference=reference), version=version
            )
    start = registry.parsed_versions_info()
    for _ in range(3):
        view = await registry.serving_view()
        assert view.models[1].versions[1].reference == reference
    await registry.serving_view("fraud")
    info = registry.parsed_versions_info()
    assert info.parsed - start.parsed == 4
    assert info.built - start.built == 3 * 4 + 2
    assert info.size == 4

    # a version registered later is parsed on the next view, the others still are not
    await registry.register_version("fraud", new_version(b"fraud-2"), version="2.0.0")
    view = await registry.serving_view()
    assert [v.version for v in view.models[1].versions] == ["1.0.0", "1.1.0", "2.0.0"]
    assert registry.parsed_versions_info().parsed - start.parsed == 5


async def test_what_changes_after_registration_is_read_fresh(registry: SqliteRegistry, new_version):
    await registry.register_version("churn", new_version(b"a"), version="1.0.0")
    await registry.register_version("churn", new_version(b"b"), version="1.1.0")
    first = (await registry.serving_view()).models[0]
    assert [v.stage for v in first.versions] == [Stage.NONE, Stage.NONE]
    assert first.versions[0].evaluation is None

    await registry.set_stage("churn", "1.0.0", Stage.PRODUCTION)
    await registry.set_stage("churn", "1.1.0", Stage.PRODUCTION)
    await registry.set_alias("churn", "champion", "1.1.0")
    await registry.save_evaluation("churn", "1.0.0", {"auc": 0.91})
    await registry.set_deployment(
        replace(first.deployment, routes=(Route("1.1.0", 100.0),), sticky=True)
    )
    after = (await registry.serving_view()).models[0]
    old, new = after.versions
    assert (old.stage, new.stage) == (Stage.ARCHIVED, Stage.PRODUCTION)
    assert old.stage_changed_at >= first.versions[0].stage_changed_at
    assert new.aliases == ("champion",)
    assert old.evaluation == {"auc": 0.91}
    assert after.previous is not None and after.previous.version == "1.0.0"
    assert after.deployment.routes == (Route("1.1.0", 100.0),) and after.deployment.sticky
    assert after.versions == tuple(await registry.list_versions("churn"))
    assert registry.parsed_versions_info().parsed == 2


async def test_get_version_shares_the_parsed_bodies_and_reads_stage_fresh(
    registry: SqliteRegistry, new_version
):
    await registry.register_version("churn", new_version(b"a"), version="1.0.0")
    start = registry.parsed_versions_info().parsed
    first = await registry.get_version("churn", "1.0.0")
    await registry.set_stage("churn", "1.0.0", Stage.STAGING)
    await registry.save_evaluation("churn", "1.0.0", {"rmse": 0.5})
    await registry.set_alias("churn", "best", "1.0.0")
    again = await registry.get_version("churn", "best")
    view = await registry.serving_view("churn")
    assert first.stage == Stage.NONE and first.evaluation is None
    assert (again.stage, again.evaluation, again.aliases) == (
        Stage.STAGING,
        {"rmse": 0.5},
        ("best",),
    )
    assert again.schema is first.schema and view.models[0].versions[0] == again
    assert registry.parsed_versions_info().parsed - start == 1
