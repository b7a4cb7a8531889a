"""sqlite_direct: a whole transaction in one round trip on a plain sqlite3 connection."""

from __future__ import annotations

import asyncio

import pytest

from registry.errors import RegistryError
from registry.models import Deployment, Route, Stage
from registry.sqlite.direct import run_to_completion
from registry.sqlite.store import SqliteRegistry


async def test_a_direct_write_is_one_transaction_seen_by_the_other_connection(
    registry: SqliteRegistry, new_version
):
    for version in ("1.0.0", "1.1.0"):
        await registry.register_version("churn", new_version(version.encode()), version=version)
    await registry.set_stage("churn", "1.0.0", Stage.PRODUCTION)
    generation = await registry.generation()
    audit = len(await registry.audit(limit=1000))

    after = await registry.set_deployment(
        Deployment("churn", routes=(Route("1.0.0", 90.0), Route("1.1.0", 10.0))),
        actor="ops",
        stage_changes={"1.1.0": Stage.STAGING},
    )

    # read back through the aiosqlite connection: one generation, stage + traffic audited
    assert await registry.get_deployment("churn") == after
    assert (await registry.get_version("churn", "1.1.0")).stage == Stage.STAGING
    assert await registry.generation() == generation + 1
    entries = await registry.audit(limit=1000)
    assert len(entries) == audit + 2
    assert {e.action for e in entries[:2]} == {"stage", "traffic"}


async def test_a_refused_direct_write_leaves_nothing(
    registry: SqliteRegistry, new_version, state_of
):
    await registry.register_version("churn", new_version(), version="1.0.0")
    before = await state_of("churn")
    with pytest.raises(RegistryError):
        # 2.0.0 does not exist: refused after the stage change of 1.0.0 ran in the same txn
        await registry.set_deployment(
            Deployment("churn", routes=(Route("2.0.0", 100.0),)),
            stage_changes={"1.0.0": Stage.STAGING},
        )
    assert await state_of("churn") == before


def test_a_body_that_suspends_is_refused():
    async def suspends() -> None:
        await asyncio.sleep(0)

    with pytest.raises(RuntimeError, match="awaited something other than its Txn"):
        run_to_completion(suspends())


async def test_writes_after_close_are_refused(home, new_version):
    from registry.sqlite.store import open_registry

    store = await open_registry(home)
    await store.register_version("churn", new_version(), version="1.0.0")
    await store.close()
    with pytest.raises(RegistryError, match="closed"):
        await store.set_deployment(Deployment("churn", routes=(Route("1.0.0", 100.0),)))
