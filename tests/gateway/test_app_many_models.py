"""A gateway with many models: a bounded number of inference threads, and start-up that
answers readiness per model while other models still load.

The models are real: clf's two ONNX artifacts from the zoo, registered under many model
names (each version gets its own onnxruntime session and batcher, as any version would),
with a 90/10 canary on each model.
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest

from gateway.app import create_app
from gateway.serving.loader import load_variant
from registry.models import Deployment, NewVersion, Route, Stage
from registry.sqlite.store import open_registry
from tests.support.asgi_app import gateway_settings, running, running_gateway
from tests.support.polling import wait_until_async

pytestmark = pytest.mark.slow  # loads a hundred onnxruntime sessions

TOKEN = "many-token"
ROW = {"instances": [[0.1, -0.2, 0.3, 0.4]]}


async def add_models(home: Path, names: list[str]) -> None:
    """Each name becomes a model with clf 1.0.0 (production, 90 %) and clf 1.1.0 (staging,
    10 %): the same bytes, schema and reference as clf's."""
    registry = await open_registry(home)
    try:
        bases = [await registry.get_version("clf", v) for v in ("1.0.0", "1.1.0")]
        for name in names:
            for base in bases:
                new = NewVersion(
                    base.artifact_sha256,
                    base.artifact_size,
                    base.schema,
                    reference=base.reference,
                    created_by="many",
                )
                await registry.register_version(name, new, version=base.version, actor="many")
            await registry.set_stage(name, "1.0.0", Stage.PRODUCTION)
            await registry.set_stage(name, "1.1.0", Stage.STAGING)
            routes = (Route("1.0.0", 90.0), Route("1.1.0", 10.0))
            await registry.set_deployment(Deployment(model=name, routes=routes))
    finally:
        await registry.close()


def ort_threads() -> list[str]:
    """The gateway's pool threads (not the process-wide default pool of earlier tests)."""
    return [t.name for t in threading.enumerate() if t.name.startswith("ort-pool")]


async def test_a_hundred_loaded_versions_share_a_bounded_number_of_threads(zoo_home: Path):
    names = [f"m{i:02d}" for i in range(50)]
    await add_models(zoo_home, names)
    before = threading.active_count()
    async with running_gateway(
        zoo_home, TOKEN, inference_mode="thread", inference_threads=2
    ) as served:
        snapshot = served.state.holder.current
        variants = [snapshot.models[n].variants[v] for n in names for v in ("1.0.0", "1.1.0")]
        assert len({id(v) for v in variants}) == 100
        assert {v.batcher.mode for v in variants} == {"thread"}
        # traffic to every loaded version, several requests at once on each
        pinned = [f"/v2/models/{n}/versions/{v}/infer" for n in names for v in ("1.0.0", "1.1.0")]
        body = {
            "inputs": [
                {"name": "input", "shape": [1, 4], "datatype": "FP32", "data": ROW["instances"][0]}
            ]
        }
        for _ in range(3):
            replies = await asyncio.gather(*(served.http.post(url, json=body) for url in pinned))
            assert [r.status_code for r in replies] == [200] * 100
            assert {r.headers["x-model-version"] for r in replies} == {"1.0.0", "1.1.0"}
        routed = await asyncio.gather(
            *(served.http.post(f"/predict/{n}", json=ROW) for n in names for _ in range(4))
        )
        assert {r.status_code for r in routed} == {200}
        assert all(v.batcher.batches > 0 for v in variants)
        # one pool for every version: its two threads, not one per version
        assert {id(v.batcher.pool) for v in variants} == {id(served.state.publisher.pool)}
        assert len(ort_threads()) == 2, ort_threads()
        assert threading.active_count() - before <= 10, [t.name for t in threading.enumerate()]
    assert ort_threads() == []  # the pool stops with the gateway


async def test_each_model_answers_ready_once_loaded_while_another_still_loads(zoo_home: Path):
    names = [f"m{i:02d}" for i in range(8)]
    await add_models(zoo_home, [*names, "slow"])
    gate = asyncio.Event()
    held: list[str] = []

    async def gated_load(registry, version, settings, pool=None):
        """The real loader; the slow model's versions wait for the test to open the gate."""
        if version.model == "slow":
            held.append(version.version)
            await gate.wait()
        return await load_variant(registry, version, settings, pool)

    settings = gateway_settings(zoo_home, TOKEN, load_concurrency=2)
    app = create_app(settings, listen_while_loading=True, load=gated_load)
    async with running(app) as served:
        http = served.http

        async def status(path: str) -> int:
            return (await http.get(path)).status_code

        async def all_others_ready() -> list[int]:
            return [await status(f"/v2/models/{n}/ready") for n in ("clf", *names)]

        # the server answers while loading: the others get ready, the slow one cannot
        await wait_until_async(
            all_others_ready, 120, 0.05, lambda codes: set(codes) == {200}, "others ready"
        )

        async def held_versions() -> list[str]:
            return sorted(held)

        # the last slot freed by another model may reach the slow one a moment later
        await wait_until_async(
            held_versions, 120, 0.05, lambda seen: seen == ["1.0.0", "1.1.0"], "slow held"
        )
        slow_ready = await http.get("/v2/models/slow/ready")
        assert slow_ready.status_code == 503 and slow_ready.json() == {
            "name": "slow",
            "ready": False,
        }
        assert await status("/v2/models/slow/versions/1.0.0/ready") == 503
        server = await http.get("/v2/health/ready")
        assert server.status_code == 503 and server.json()["ready"] is False
        assert await status("/v2/health/live") == 200
        # a ready model serves; the loading one is a 503 (not a 404: it is known)
        served_reply = await http.post("/predict/m03", json=ROW)
        assert served_reply.status_code == 200, served_reply.text
        loading_reply = await http.post("/predict/slow", json=ROW)
        assert loading_reply.status_code == 503, loading_reply.text
        assert (await http.post("/predict/nope", json=ROW)).status_code == 404

        gate.set()
        await wait_until_async(
            lambda: status("/v2/health/ready"), 120, 0.05, lambda code: code == 200, "ready"
        )
        assert await status("/v2/models/slow/ready") == 200
        assert (await http.post("/predict/slow", json=ROW)).status_code == 200
        # the background services started once the first publish was complete
        assert served.state.watcher is not None


async def test_before_any_model_has_loaded_a_known_model_is_503_not_404(zoo_home: Path):
    """A worker that listens at once (a replacement for a killed one) must not answer 404
    for the models it is still loading: clients would read "no such model"."""
    gate = asyncio.Event()
    started: list[str] = []

    async def gated_load(registry, version, settings, pool=None):
        started.append(version.model)
        await gate.wait()
        return await load_variant(registry, version, settings, pool)

    settings = gateway_settings(zoo_home, TOKEN)
    app = create_app(settings, listen_while_loading=True, load=gated_load)
    async with running(app) as served:
        http = served.http

        async def loads_started() -> list[str]:
            return started

        await wait_until_async(loads_started, 60, 0.02, bool, "a load started")
        assert served.state.holder.current.models  # every model known, none loaded
        reply = await http.post("/predict/clf", json=ROW)
        assert reply.status_code == 503, reply.text
        assert (await http.get("/v2/models/clf/ready")).status_code == 503
        assert (await http.post("/predict/nope", json=ROW)).status_code == 404
        gate.set()
        await wait_until_async(
            lambda: http.get("/v2/health/ready"), 120, 0.05, lambda r: r.status_code == 200, "ready"
        )
        assert (await http.post("/predict/clf", json=ROW)).status_code == 200
