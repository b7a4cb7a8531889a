"""Two workers on one registry, as ``--workers 2`` runs them: an admin change on one must
judge "loaded" on what the other just committed, not on its own last registry poll.

The poll interval is an hour here, so only the admin path itself can catch a worker up.
"""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack

import httpx

from registry.sqlite.store import open_registry
from tests.support.admin_gateway import ADMIN_AUTH, ADMIN_TOKEN, ROW
from tests.support.asgi_app import running_gateway


async def _worker(stack: AsyncExitStack, home) -> httpx.AsyncClient:
    served = await stack.enter_async_context(
        running_gateway(home, ADMIN_TOKEN, headers=ADMIN_AUTH, poll_interval_ms=3_600_000)
    )
    return served.http


async def test_a_switch_on_one_worker_sees_a_version_staged_on_the_other(zoo_home) -> None:
    async with AsyncExitStack() as stack:
        first = await _worker(stack, zoo_home)
        second = await _worker(stack, zoo_home)
        staged = await first.post(
            "/admin/models/clf/versions/2.0.0/stage", json={"stage": "staging"}
        )
        assert staged.status_code == 200, staged.text

        switched = await second.post(
            "/admin/models/clf/switch", json={"version": "2.0.0", "force": True, "reason": "t"}
        )

        assert switched.status_code == 200, switched.text
        assert switched.json()["production"] == "2.0.0"
        served = await second.post("/predict/clf", json=ROW)
        assert served.status_code == 200, served.text
        assert served.headers["x-model-version"] == "2.0.0"


async def test_a_load_on_one_worker_lets_the_other_switch_at_once(zoo_home) -> None:
    async with AsyncExitStack() as stack:
        first = await _worker(stack, zoo_home)
        unloaded = await first.post("/v2/repository/models/clf/unload")
        assert unloaded.status_code == 200, unloaded.text
        second = await _worker(stack, zoo_home)  # starts knowing clf is unloaded

        loaded = await first.post("/v2/repository/models/clf/load")
        assert loaded.status_code == 200, loaded.text
        switched = await second.post(
            "/admin/models/clf/switch", json={"version": "1.1.0", "force": True, "reason": "t"}
        )

        assert switched.status_code == 200, switched.text
        served = await second.post("/predict/clf", json=ROW)
        assert served.headers["x-model-version"] == "1.1.0"


async def test_changes_succeed_while_another_process_keeps_committing(zoo_home) -> None:
    """A change is planned on the served view and committed only at that generation; a
    commit from elsewhere in between makes it plan again, never fail or act on old state."""
    async with AsyncExitStack() as stack:
        worker = await _worker(stack, zoo_home)
        other = await open_registry(zoo_home)
        stack.push_async_callback(other.close)
        stop = asyncio.Event()

        committed = [0]

        async def keep_committing() -> int:
            while not stop.is_set():
                await other.set_alias("clf", "moving", ("1.0.0", "1.1.0")[committed[0] % 2])
                committed[0] += 1
                await asyncio.sleep(0.002)
            return committed[0]

        async def another_commit() -> None:
            """Wait for the other process's next commit (changes are faster than its loop)."""
            target = committed[0] + 1
            while committed[0] < target:
                await asyncio.sleep(0.001)

        writer = asyncio.create_task(keep_committing())
        first = await worker.post(
            "/admin/models/clf/switch", json={"version": "1.1.0", "force": True, "reason": "t"}
        )
        assert first.status_code == 200, first.text
        expected = ["1.1.0"]
        for _ in range(8):
            await another_commit()
            rolled = await worker.post("/admin/models/clf/rollback", json={"reason": "race"})
            assert rolled.status_code == 200, rolled.text
            expected.append("1.0.0" if expected[-1] == "1.1.0" else "1.1.0")
            assert rolled.json()["production"] == expected[-1]
        await another_commit()
        stop.set()
        writes = await writer

        assert writes > 8
        assert (await other.get_model("clf")).production_version == expected[-1]
        audit = [e.action for e in reversed(await other.audit(limit=10_000))]
        changes = [a for a in audit if a in ("switch", "rollback")]
        assert changes[-9:] == ["switch"] + ["rollback"] * 8
        served = await worker.post("/predict/clf", json=ROW)
        assert served.headers["x-model-version"] == expected[-1]
