"""GET /metrics after known traffic through the real app: names, labels and values.

Each test gets its own ``MetricsRegistry`` (single process), so counts start at zero.
Expected class counts and confidences come from onnxruntime run directly on the stored
artifacts.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from prometheus_client.parser import text_string_to_metric_families

from gateway.monitoring.metrics.prometheus import MetricsRegistry
from registry.models import Deployment, Route, Shadow
from registry.sqlite.store import open_registry
from tests.support.asgi_app import InProcessApp, running_gateway

TOKEN = "metrics-token"
ROWS = np.array(
    [[0.5, -1.0, 0.25, 2.0], [3.0, 2.0, 0.0, 0.0], [-2.5, -1.0, 1.0, 0.5], [0.1, 0.1, -0.2, 0.3]],
    np.float32,
)


class Gateway:
    def __init__(self, served: InProcessApp, home: Path) -> None:
        self.app, self.http, self.home = served.app, served.http, home
        self.state, self.change = served.state, served.change

    async def metrics(self) -> dict[tuple[str, frozenset], float]:
        response = await self.http.get("/metrics")
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/plain")
        out = {}
        for family in text_string_to_metric_families(response.text):
            for sample in family.samples:
                out[(sample.name, frozenset(sample.labels.items()))] = sample.value
        return out


@pytest.fixture
async def gateway(zoo_home) -> AsyncIterator[Gateway]:
    metrics = MetricsRegistry(multiprocess_dir=None)
    async with running_gateway(zoo_home, TOKEN, metrics=metrics) as served:
        yield Gateway(served, zoo_home)


def value(samples, name: str, **labels) -> float | None:
    return samples.get((name, frozenset(labels.items())))


def matching(samples, name: str, **labels) -> dict[frozenset, float]:
    want = set(labels.items())
    return {key: v for (n, key), v in samples.items() if n == name and want <= set(key)}


async def direct(home: Path, version: str, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(labels, top probabilities) of clf ``version`` on ``rows``, straight from ORT."""
    registry = await open_registry(home)
    try:
        data = await registry.read_artifact("clf", version)
    finally:
        await registry.close()
    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    labels, probs = session.run(["label", "probabilities"], {"input": rows})
    return labels.reshape(-1), probs.max(axis=1)


def oip(rows: np.ndarray) -> dict:
    tensor = {"name": "input", "shape": list(rows.shape), "datatype": "FP32"}
    return {"inputs": [{**tensor, "data": rows.ravel().tolist()}]}


async def test_known_traffic_gives_exact_series(gateway):
    http = gateway.http
    for row in ROWS:  # routed by weight to production 1.0.0, one row each
        assert (await http.post("/predict/clf", json={"instances": [row.tolist()]})).is_success
    for _ in range(3):  # pinned by the URL, 2 rows each
        pinned = await http.post("/v2/models/clf/versions/1.1.0/infer", json=oip(ROWS[:2]))
        assert pinned.status_code == 200
    by_header = await http.post(
        "/predict/clf", json={"instances": ROWS.tolist()}, headers={"x-model-version": "1.1.0"}
    )
    assert by_header.headers["x-model-version"] == "1.1.0"
    bad = await http.post("/predict/clf", json={"instances": [[1.0, 2.0]]})
    assert bad.status_code == 400
    assert (
        await http.post("/predict/no-such-model", json={"instances": [[1.0]]})
    ).status_code == 404
    unknown_version = await http.post("/v2/models/clf/versions/9.9.9/infer", json=oip(ROWS))
    assert unknown_version.status_code == 404

    m = await gateway.metrics()
    requests = "modelgate_requests_total"
    assert value(m, requests, model="clf", version="1.0.0", route="weighted", code="200") == 4
    assert value(m, requests, model="clf", version="1.0.0", route="weighted", code="400") == 1
    assert value(m, requests, model="clf", version="1.1.0", route="url", code="200") == 3
    assert value(m, requests, model="clf", version="1.1.0", route="header", code="200") == 1
    assert value(m, requests, model="clf", version="1.1.0", route="weighted", code="200") == 0
    # input errors: the routed one by the codec's reason, the unknown version of a known
    # model too; a model name nobody registered never becomes a label
    errors = matching(m, "modelgate_input_errors_total", model="clf")
    assert sum(errors.values()) == 2
    assert value(m, "modelgate_input_errors_total", model="clf", reason="unknown_version") == 1
    assert not any("no-such-model" in dict(key).values() for (_n, key) in m)
    # every request that reached a version is timed, errors included
    duration = "modelgate_request_duration_seconds_count"
    assert value(m, duration, model="clf", version="1.0.0") == 5
    assert value(m, duration, model="clf", version="1.1.0") == 4

    for version, rows in (("1.0.0", ROWS), ("1.1.0", np.concatenate([ROWS[:2]] * 3 + [ROWS]))):
        labels, top = await direct(gateway.home, version, rows)
        for cls in (0, 1):
            expected = int(np.count_nonzero(labels == cls))
            got = value(
                m,
                "modelgate_predictions_total",
                model="clf",
                version=version,
                **{"class": str(cls)},
            )
            assert got == expected, (version, cls)
        conf = "modelgate_prediction_confidence"
        assert value(m, f"{conf}_count", model="clf", version=version) == len(rows)
        assert value(m, f"{conf}_sum", model="clf", version=version) == pytest.approx(
            float(top.sum()), rel=1e-5
        )
        low = int(np.count_nonzero(top < 0.6))
        assert value(m, "modelgate_low_confidence_total", model="clf", version=version) == low
        # one ORT call per request here (sequential requests, inline batching)
        batches = value(m, "modelgate_batch_size_count", model="clf", version=version)
        assert value(m, "modelgate_batch_size_sum", model="clf", version=version) == len(rows)
        assert batches == value(
            m, "modelgate_inference_duration_seconds_count", model="clf", version=version
        )
        assert batches >= 1
    assert value(m, "modelgate_model_loaded", model="clf", version="1.0.0") == 1
    assert value(m, "modelgate_model_loaded", model="clf", version="1.1.0") == 1
    assert value(m, "modelgate_traffic_weight", model="clf", version="1.0.0") == 100
    assert value(m, "modelgate_traffic_weight", model="clf", version="1.1.0") == 0


async def test_regressor_counts_rows_without_confidence(gateway):
    response = await gateway.http.post("/predict/reg", json={"instances": ROWS.tolist()})
    assert response.status_code == 200
    m = await gateway.metrics()
    assert (
        value(m, "modelgate_predictions_total", model="reg", version="1.0.0", **{"class": ""}) == 4
    )
    assert value(m, "modelgate_prediction_confidence_count", model="reg", version="1.0.0") == 0
    assert value(m, "modelgate_low_confidence_total", model="reg", version="1.0.0") == 0


async def test_weights_follow_each_publish_and_unloads_remove_series(gateway):
    split = Deployment(model="clf", routes=(Route("1.0.0", 90.0), Route("1.1.0", 10.0)))
    await gateway.change(lambda r: r.set_deployment(split))
    m = await gateway.metrics()
    assert value(m, "modelgate_traffic_weight", model="clf", version="1.0.0") == 90
    assert value(m, "modelgate_traffic_weight", model="clf", version="1.1.0") == 10
    # 2.0.0 becomes the challenger: loaded, weight 0; X-Use-Challenger is the "challenger" rule
    challenger = Deployment(
        model="clf", routes=(Route("1.0.0", 100.0),), challenger="2.0.0", sticky=True
    )
    await gateway.change(lambda r: r.set_deployment(challenger))
    row = {"instances": [ROWS[0].tolist()]}
    used = await gateway.http.post("/predict/clf", json=row, headers={"x-use-challenger": "true"})
    assert used.headers["x-model-version"] == "2.0.0"
    keyed = await gateway.http.post("/predict/clf", json=row, headers={"x-routing-key": "user-7"})
    assert keyed.headers["x-model-version"] == "1.0.0"
    m = await gateway.metrics()
    assert value(m, "modelgate_model_loaded", model="clf", version="2.0.0") == 1
    assert value(m, "modelgate_traffic_weight", model="clf", version="2.0.0") == 0
    assert value(m, "modelgate_traffic_weight", model="clf", version="1.1.0") == 0
    requests = "modelgate_requests_total"
    assert value(m, requests, model="clf", version="2.0.0", route="challenger", code="200") == 1
    assert value(m, requests, model="clf", version="1.0.0", route="sticky", code="200") == 1
    # nothing needs 2.0.0 any more: its series leave with it
    await gateway.change(lambda r: r.set_deployment(Deployment(model="clf")))
    await gateway.state.publisher.settled()
    m = await gateway.metrics()
    assert not matching(m, "modelgate_model_loaded", version="2.0.0")
    assert not matching(m, requests, version="2.0.0")


async def test_shadow_agreement_and_dropped_copies(zoo_home):
    metrics = MetricsRegistry(multiprocess_dir=None)
    async with running_gateway(zoo_home, TOKEN, metrics=metrics, shadow_queue=1) as served:
        gateway, http = Gateway(served, zoo_home), served.http
        mirrored = Deployment(model="clf", shadows=(Shadow("1.1.0", 1.0),))
        await gateway.change(lambda r: r.set_deployment(mirrored))
        body = {"instances": ROWS.tolist()}
        answers = await asyncio.gather(*(http.post("/predict/clf", json=body) for _ in range(40)))
        assert all(a.status_code == 200 for a in answers)
        await gateway.state.mirror.join()
        (stats,) = gateway.state.mirror.stats_of("clf")
        gateway.state.monitoring.tasks.tick()
        m = await gateway.metrics()
    agreement = value(m, "modelgate_shadow_agreement_ratio", model="clf", version="1.1.0")
    assert agreement == pytest.approx(stats.agreement)
    assert 0.0 <= agreement <= 1.0 and stats.label_rows > 0
    # one queue slot for 40 concurrent requests: copies were dropped, and counted
    assert stats.dropped > 0
    assert value(m, "modelgate_shadow_dropped_total", model="clf", version="1.1.0") == stats.dropped
    # every copy the shadow ran is a request of route "shadow" on its version, none of the
    # primary's (whose 40 requests are all weighted)
    shadow = {"model": "clf", "version": "1.1.0", "route": "shadow", "code": "200"}
    assert stats.requests > 0 and stats.requests + stats.dropped == 40
    assert value(m, "modelgate_requests_total", **shadow) == stats.requests
    primary = {"model": "clf", "version": "1.0.0", "route": "weighted", "code": "200"}
    assert value(m, "modelgate_requests_total", **primary) == 40
    assert not matching(m, "modelgate_requests_total", version="1.0.0", route="shadow")


async def test_monitoring_off_binds_nothing(zoo_home):
    registry = MetricsRegistry(multiprocess_dir=None)
    off = {"MODELGATE_MONITORING": "off"}
    async with running_gateway(zoo_home, TOKEN, metrics=registry, environ=off) as served:
        http, app = served.http, served.app
        assert (await http.post("/predict/clf", json={"instances": ROWS.tolist()})).is_success
        variant = app.state.gateway.holder.current.models["clf"].primary
        assert variant.recorder is None
        assert app.state.gateway.monitoring is None and app.state.gateway.feedback is None
        assert (await http.get("/metrics")).status_code == 200
        assert registry.variants() == []


@pytest.mark.parametrize("mode", ["inline", "thread"])
async def test_merged_batches_are_recorded_once_per_onnxruntime_call(zoo_home, mode):
    metrics = MetricsRegistry(multiprocess_dir=None)
    async with running_gateway(zoo_home, TOKEN, metrics=metrics, inference_mode=mode) as served:
        gateway, http = Gateway(served, zoo_home), served.http
        body = {"instances": ROWS[:2].tolist()}
        answers = await asyncio.gather(*(http.post("/predict/clf", json=body) for _ in range(20)))
        assert all(a.status_code == 200 for a in answers)
        variant = gateway.state.holder.current.models["clf"].primary
        assert variant.batcher.mode == mode
        m = await gateway.metrics()
        drift = await http.get(
            "/admin/models/clf/drift", headers={"authorization": f"Bearer {TOKEN}"}
        )
    calls = value(m, "modelgate_batch_size_count", model="clf", version="1.0.0")
    assert calls == variant.batcher.batches and 1 <= calls <= 20
    assert value(m, "modelgate_batch_size_sum", model="clf", version="1.0.0") == 40
    classes = matching(m, "modelgate_predictions_total", model="clf", version="1.0.0")
    assert sum(classes.values()) == 40
    assert (
        value(
            m,
            "modelgate_requests_total",
            model="clf",
            version="1.0.0",
            route="weighted",
            code="200",
        )
        == 20
    )
    window = drift.json()["versions"][0]["window"]
    assert window["size"] == 40 and window["recorded_total"] == 40


async def test_the_tick_lets_requests_in_between_its_flushes(gateway, monkeypatch):
    """The 1 s tick flushes ``FLUSHES_PER_TURN`` recorders per loop turn, then lets the loop
    run: with many models one tick of every version must not hold the loop in one go."""
    import gateway.monitoring.timers as timers

    tasks = gateway.state.monitoring.tasks
    await tasks.stop()  # no periodic tick of its own in between (the lifespan stops it again)
    clf = [r for r in gateway.state.monitoring.recorders() if r.model == "clf"]
    assert len(clf) >= 2
    for recorder in clf:
        url = f"/v2/models/clf/versions/{recorder.version}/infer"
        assert (await gateway.http.post(url, json=oip(ROWS[:1]))).status_code == 200
    before = [r.requests for r in clf]
    monkeypatch.setattr(timers, "FLUSHES_PER_TURN", 1)
    seen: list[list[int]] = []

    async def watch() -> None:
        while not tick.done():
            seen.append([r.requests for r in clf])
            await asyncio.sleep(0)

    tick = asyncio.create_task(tasks._tick_async())
    await asyncio.gather(tick, watch())
    after = [r.requests for r in clf]
    assert [a - b for a, b in zip(after, before, strict=True)] == [1] * len(clf)
    # the watcher ran while the tick had flushed some clf versions and not yet others
    assert any(before != state != after for state in seen), seen
