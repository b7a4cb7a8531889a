"""The shadow mirror inside the running app: copies reach the shadow version's monitoring
batch by batch, and the lifespan stops the shadow thread."""

from __future__ import annotations

import asyncio

import numpy as np

from registry.models import Deployment, Shadow
from tests.support.asgi_app import running_gateway

TOKEN = "s3cret-token"


async def test_shadow_rows_reach_the_shadow_window_with_each_batch(zoo_home):
    async with running_gateway(zoo_home, TOKEN, poll_interval_ms=20) as served:
        deployment = Deployment(model="clf", shadows=(Shadow("1.1.0", 1.0),))
        await served.change(lambda r: r.set_deployment(deployment))
        state = served.state
        shadow = state.holder.current.models["clf"].shadows[0].variant
        window = shadow.recorder.window
        assert len(window) == 0
        rows = np.random.default_rng(5).normal(size=(30, 4)).round(3).tolist()
        for row in rows:
            response = await served.http.post("/predict/clf", json={"instances": [row]})
            assert response.headers["x-model-version"] == "1.0.0"
        await asyncio.wait_for(state.mirror.join(), 10)
        # flushed by the mirror after each of its batches, not left for the monitoring
        # tick (which would record a second of shadow rows in one go on the loop)
        assert len(window) == 30
        stats = state.mirror.stats_of("clf")[0]
        assert (stats.mirrored, stats.requests, stats.dropped) == (30, 30, 0)
        assert shadow.batcher.batched_rows == 30
        thread = state.mirror._thread
        assert thread is not None and thread.alive
    assert state.mirror._thread is None and not thread.alive  # the lifespan stopped it
