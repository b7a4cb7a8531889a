"""The ``admin_gw`` fixture: the real app (lifespan, publisher, watcher) on a copy of the zoo
registry, with an admin client and an anonymous one (admin and rollout tests)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.support.admin_gateway import ADMIN_AUTH, ADMIN_TOKEN, AdminGateway
from tests.support.asgi_app import running_gateway


@pytest.fixture
async def admin_gw(zoo_home: Path) -> AsyncIterator[AdminGateway]:
    """clf 1.0.0 production, 1.1.0 staging, 2.0.0 registered (stage none); reg; mixed."""
    async with running_gateway(
        zoo_home, ADMIN_TOKEN, headers=ADMIN_AUTH, poll_interval_ms=20
    ) as served:
        async with served.client() as anon:
            yield AdminGateway(served, anon, zoo_home)
