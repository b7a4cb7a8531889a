"""Faults inside onnxruntime, served by the real app in-process (ASGI).

* a poisoned request shares a batch with good ones: the merged ORT call raises, the batcher
  retries the batch request by request, so only the poisoned caller gets a 500 JSON error;
  the others get exactly the answers they get alone; the error is counted for that version;
* a shadow version that fails every request: the primary answers are unchanged (all 200,
  same predictions as without the shadow), the shadow's failures are counted.

The failing models are real ONNX graphs built with ``onnx.helper``: a logistic layer plus a
``Gather`` whose index comes from the last feature, so ORT raises "indices element out of
data bounds" for chosen inputs and answers normally (adding 0) for the others. The warm-up
and batchability checks of the loader feed zeros, which are always in bounds.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from registry.models import Deployment, NewVersion, Shadow, Stage
from registry.sqlite.store import open_registry
from tests.support.asgi_app import running_gateway

TOKEN = "faults-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
POISON = 1000.0


def gather_model(scale: float, table_size: int) -> bytes:
    """clf-shaped classifier (input [N,4] -> label [N], probabilities [N,2]) that raises
    inside ORT when ``int(|x[:, 3]| * scale)`` (or ``int(x[:, 3])`` when scale is 0) is not a
    valid index into a ``table_size`` table."""
    weights = helper.make_tensor("W", TensorProto.FLOAT, [4, 2], [1, -1, 0.5, -0.5, 0, 0, 0, 0])
    table = helper.make_tensor("T", TensorProto.FLOAT, [table_size], [0.0] * table_size)
    nodes = [
        helper.make_node("Constant", [], ["starts"], value_ints=[3]),
        helper.make_node("Constant", [], ["ends"], value_ints=[4]),
        helper.make_node("Constant", [], ["axes"], value_ints=[1]),
        helper.make_node("Slice", ["input", "starts", "ends", "axes"], ["col"]),
    ]
    if scale:
        nodes += [
            helper.make_node("Abs", ["col"], ["abs"]),
            helper.make_node("Constant", [], ["scale"], value_float=scale),
            helper.make_node("Mul", ["abs", "scale"], ["scaled"]),
            helper.make_node("Cast", ["scaled"], ["idx"], to=TensorProto.INT64),
        ]
    else:
        nodes.append(helper.make_node("Cast", ["col"], ["idx"], to=TensorProto.INT64))
    nodes += [
        helper.make_node("Gather", ["T", "idx"], ["bias"], axis=0),
        helper.make_node("MatMul", ["input", "W"], ["logits"]),
        helper.make_node("Add", ["logits", "bias"], ["shifted"]),
        helper.make_node("Softmax", ["shifted"], ["probabilities"], axis=1),
        helper.make_node("ArgMax", ["probabilities"], ["label"], axis=1, keepdims=0),
    ]
    graph = helper.make_graph(
        nodes,
        "gather_fault",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [None, 4])],
        [
            helper.make_tensor_value_info("label", TensorProto.INT64, [None]),
            helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, [None, 2]),
        ],
        initializer=[weights, table],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model.SerializeToString()


async def register(home: Path, name: str, version: str, data: bytes, stage: Stage | None) -> None:
    """Store the artifact and register it with clf 1.0.0's schema and reference."""
    registry = await open_registry(home)
    try:
        base = await registry.get_version("clf", "1.0.0")
        sha, size = registry.artifacts.put(data)
        new = NewVersion(sha, size, base.schema, reference=base.reference, created_by="faults")
        await registry.register_version(name, new, version=version, actor="faults")
        if stage is not None:
            await registry.set_stage(name, version, stage)
    finally:
        await registry.close()


@pytest.fixture
async def poison_home(zoo_home: Path) -> Path:
    await register(zoo_home, "poison", "1.0.0", gather_model(0.0, 2), Stage.PRODUCTION)
    await register(zoo_home, "clf", "9.0.0", gather_model(1000.0, 1), None)
    return zoo_home


@pytest.fixture
async def http(poison_home: Path) -> AsyncIterator[httpx.AsyncClient]:
    async with running_gateway(
        poison_home,
        TOKEN,
        poll_interval_ms=20,
        inference_mode="inline",
        max_batch_delay_ms=50.0,
        max_batch_size=64,
    ) as served:
        served.http.app_state = served.state  # type: ignore[attr-defined]
        yield served.http


def metric(text: str, name: str, **labels: str) -> float:
    """Sum of the samples of ``name`` whose labels include ``labels``."""
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name + "{"):
            continue
        head, value = line.rsplit(" ", 1)
        if all(f'{k}="{v}"' in head for k, v in labels.items()):
            total += float(value)
    return total


ROWS = np.random.default_rng(7).uniform(-1.0, 1.0, size=(12, 4)).round(3)


async def test_a_poisoned_request_fails_alone_inside_a_shared_batch(http):
    alone = []
    for row in ROWS:
        response = await http.post("/predict/poison", json={"instances": [row.tolist()]})
        assert response.status_code == 200, response.text
        alone.append(response.json())
    batcher = http.app_state.holder.current.models["poison"].primary.batcher
    batches_before = batcher.batches
    poisoned = ROWS[5].copy()
    poisoned[3] = POISON
    bodies = [{"instances": [row.tolist()]} for row in ROWS]
    bodies[5] = {"instances": [poisoned.tolist()]}
    responses = await asyncio.gather(*(http.post("/predict/poison", json=b) for b in bodies))

    # what the clients saw: the poisoned caller a 500 JSON error, everyone else their answer
    statuses = [r.status_code for r in responses]
    assert statuses == [200] * 5 + [500] + [200] * 6
    error = responses[5].json()
    assert error == {"error": "model poison:1.0.0 failed to run this input"}
    assert responses[5].headers["x-model-version"] == "1.0.0"
    for i, response in enumerate(responses):
        if i != 5:
            got = response.json()
            assert got["predictions"] == alone[i]["predictions"]
            assert got["probabilities"] == alone[i]["probabilities"]
    # they did share one merged batch (which failed and was retried request by request)
    assert batcher.batches - batches_before < len(bodies)
    assert batcher.in_flight == 0

    # nothing lost: the version keeps serving, the error is counted for that version only
    after = await http.post("/predict/poison", json={"instances": [ROWS[0].tolist()]})
    assert after.status_code == 200 and after.json()["predictions"] == alone[0]["predictions"]
    text = (await http.get("/metrics")).text
    common = {"model": "poison", "version": "1.0.0"}
    assert metric(text, "modelgate_requests_total", code="500", **common) == 1
    assert metric(text, "modelgate_requests_total", code="200", **common) == 2 * len(ROWS)
    assert metric(text, "modelgate_requests_total", model="clf", code="500") == 0


async def test_a_poisoned_row_inside_one_request_fails_that_request_only(http):
    rows = ROWS[:4].copy()
    rows[2, 3] = -POISON
    bad, good = await asyncio.gather(
        http.post("/predict/poison", json={"instances": rows.tolist()}),
        http.post("/v2/models/poison/infer", json=oip(ROWS[:3])),
    )
    assert bad.status_code == 500 and "failed to run this input" in bad.json()["error"]
    assert good.status_code == 200 and good.json()["outputs"][0]["shape"] == [3]


def oip(rows: np.ndarray) -> dict:
    return {
        "inputs": [
            {
                "name": "input",
                "datatype": "FP32",
                "shape": list(rows.shape),
                "data": rows.ravel().tolist(),
            }
        ]
    }


async def test_a_shadow_failing_every_request_leaves_the_primary_untouched(http, poison_home):
    baseline = []
    for row in ROWS:
        response = await http.post("/predict/clf", json={"instances": [row.tolist()]})
        baseline.append(response.json()["predictions"])
    registry = await open_registry(poison_home)
    try:
        deployment = Deployment(model="clf", shadows=(Shadow("9.0.0", 1.0),))
        await registry.set_deployment(deployment, actor="faults")
    finally:
        await registry.close()
    state = http.app_state
    await state.publisher.refresh()
    assert [t.variant.version for t in state.holder.current.models["clf"].shadows] == ["9.0.0"]

    responses = await asyncio.gather(
        *(http.post("/predict/clf", json={"instances": [row.tolist()]}) for row in ROWS)
    )
    assert [r.status_code for r in responses] == [200] * len(ROWS)
    assert [r.headers["x-model-version"] for r in responses] == ["1.0.0"] * len(ROWS)
    assert [r.json()["predictions"] for r in responses] == baseline
    await asyncio.wait_for(state.mirror.join(), 10)

    report = (await http.get("/admin/models/clf/shadow", headers=AUTH)).json()
    (shadow,) = report["shadows"]
    assert shadow["version"] == "9.0.0" and shadow["active"] is True
    assert shadow["errors"] == len(ROWS) and shadow["requests"] == 0
    assert shadow["compared"] == 0 and report["primary"] == "1.0.0"
    text = (await http.get("/metrics")).text
    primary = {"model": "clf", "version": "1.0.0"}
    assert metric(text, "modelgate_requests_total", code="200", **primary) == 2 * len(ROWS)
    # no client saw an error; the shadow's failed copies are counted as its own, route "shadow"
    shadow_failed = {"version": "9.0.0", "route": "shadow", "code": "500"}
    assert metric(text, "modelgate_requests_total", **shadow_failed) == len(ROWS)
    assert metric(text, "modelgate_requests_total", code="500") == len(ROWS)
    assert metric(text, "modelgate_requests_total", version="9.0.0") == len(ROWS)
