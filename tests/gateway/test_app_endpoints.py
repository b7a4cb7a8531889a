"""Every data-plane endpoint through the real ASGI app (lifespan driven, real registry)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import numpy as np
import onnxruntime as ort
import orjson
import pytest

from gateway.app import create_app
from gateway.settings import Settings
from registry.sqlite.store import open_registry
from tests.support.asgi_app import running, running_gateway

ROWS = np.array([[0.5, -1.0, 0.25, 2.0], [-0.3, 0.8, -1.5, 0.1], [1.2, 0.4, 0.0, -0.7]], np.float32)


@pytest.fixture
async def client(zoo_home) -> AsyncIterator[httpx.AsyncClient]:
    async with running_gateway(zoo_home, "secret", max_rows=50, max_body_bytes=64 * 1024) as gw:
        yield gw.http


async def direct(zoo_home, model, version, feeds):
    registry = await open_registry(zoo_home)
    try:
        data = await registry.read_artifact(model, version)
    finally:
        await registry.close()
    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(None, feeds), strict=True))


def oip(rows, **extra):
    body = {
        "inputs": [
            {
                "name": "input",
                "shape": list(np.shape(rows)),
                "datatype": "FP32",
                "data": np.asarray(rows).ravel().tolist(),
            }
        ]
    }
    body.update(extra)
    return body


async def test_health_and_server_metadata(client):
    live = await client.get("/v2/health/live")
    ready = await client.get("/v2/health/ready")
    assert (live.status_code, live.json()) == (200, {"live": True})
    assert (ready.status_code, ready.json()) == (200, {"ready": True})
    assert live.headers["content-type"] == "application/json"
    assert live.headers["x-request-id"]
    server = (await client.get("/v2")).json()
    assert server["name"] == "modelgate"
    assert set(server["extensions"]) == {
        "binary_tensor_data",
        "classification",
        "model_repository",
        "statistics",
    }
    # with a trailing slash: the same answer, not a redirect
    slash = await client.get("/v2/", follow_redirects=False)
    assert (slash.status_code, slash.json()) == (200, server)


async def test_model_metadata_and_readiness(client):
    meta = await client.get("/v2/models/clf")
    assert meta.status_code == 200 and meta.headers["x-model-version"] == "1.0.0"
    body = meta.json()
    assert body["name"] == "clf" and "1.0.0" in body["versions"]
    assert body["inputs"] == [{"name": "input", "datatype": "FP32", "shape": [-1, 4]}]
    assert {o["name"] for o in body["outputs"]} == {"label", "probabilities"}
    pinned = await client.get("/v2/models/clf/versions/1.1.0")
    assert pinned.status_code == 200 and pinned.json()["versions"] == ["1.1.0"]
    for path in ("/v2/models/clf/ready", "/v2/models/clf/versions/1.1.0/ready"):
        ready = await client.get(path)
        assert (ready.status_code, ready.json()) == (200, {"name": "clf", "ready": True})
    # registered but not deployed (not production, staging, routed, shadowed or challenger):
    # not ready, and pinning it is a conflict that says how to deploy it
    idle = await client.get("/v2/models/clf/versions/2.0.0/ready")
    assert (idle.status_code, idle.json()) == (503, {"name": "clf", "ready": False})
    not_deployed = await client.get("/v2/models/clf/versions/2.0.0")
    assert not_deployed.status_code == 409
    assert "modelgate stage clf 2.0.0 staging" in not_deployed.json()["error"]
    for path in ("/v2/models/nope", "/v2/models/nope/ready", "/v2/models/clf/versions/9.9.9"):
        missing = await client.get(path)
        assert missing.status_code == 404 and "error" in missing.json()


async def test_oip_json_infer_matches_onnxruntime_and_echoes_the_id(client, zoo_home):
    response = await client.post("/v2/models/clf/infer", json=oip(ROWS, id="req-7"))
    assert response.status_code == 200
    assert response.headers["x-model-version"] == "1.0.0"
    assert response.headers["x-request-id"] == "req-7"
    body = response.json()
    assert (
        body["id"] == "req-7" and body["model_name"] == "clf" and body["model_version"] == "1.0.0"
    )
    outputs = {o["name"]: o for o in body["outputs"]}
    expected = await direct(zoo_home, "clf", "1.0.0", {"input": ROWS})
    assert outputs["label"]["data"] == expected["label"].tolist()
    assert outputs["probabilities"]["shape"] == [3, 2]
    np.testing.assert_allclose(
        np.array(outputs["probabilities"]["data"]).reshape(3, 2),
        expected["probabilities"],
        rtol=1e-6,
    )


async def test_oip_binary_tensors_both_ways(client, zoo_home):
    header = orjson.dumps(
        {
            "inputs": [
                {
                    "name": "input",
                    "shape": [3, 4],
                    "datatype": "FP32",
                    "parameters": {"binary_data_size": ROWS.nbytes},
                }
            ],
            "outputs": [
                {"name": "probabilities", "parameters": {"binary_data": True}},
                {"name": "label", "parameters": {"binary_data": False}},
            ],
        }
    )
    response = await client.post(
        "/v2/models/clf/infer",
        content=header + ROWS.tobytes(),
        headers={
            "Inference-Header-Content-Length": str(len(header)),
            "content-type": "application/octet-stream",
        },
    )
    assert response.status_code == 200
    length = int(response.headers["inference-header-content-length"])
    doc = orjson.loads(response.content[:length])
    outputs = {o["name"]: o for o in doc["outputs"]}
    size = outputs["probabilities"]["parameters"]["binary_data_size"]
    proba = np.frombuffer(response.content[length : length + size], dtype="<f4").reshape(3, 2)
    expected = await direct(zoo_home, "clf", "1.0.0", {"input": ROWS})
    np.testing.assert_allclose(proba, expected["probabilities"], rtol=1e-6)
    assert outputs["label"]["data"] == expected["label"].tolist()


async def test_pinned_infer_url_wins(client):
    response = await client.post(
        "/v2/models/clf/versions/1.1.0/infer",
        json=oip(ROWS[:1]),
        headers={"X-Model-Version": "1.0.0"},
    )
    assert response.status_code == 200
    assert response.headers["x-model-version"] == "1.1.0"
    assert response.json()["model_version"] == "1.1.0"


async def test_predict_with_list_rows_and_named_rows(client, zoo_home):
    expected = await direct(zoo_home, "clf", "1.0.0", {"input": ROWS})
    listed = await client.post("/predict/clf", json={"instances": ROWS.tolist()})
    named = await client.post(
        "/predict/clf",
        json={"instances": [dict(zip("abcd", map(float, row), strict=True)) for row in ROWS]},
    )
    for response in (listed, named):
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["predictions"] == expected["label"].tolist()
        np.testing.assert_allclose(body["probabilities"], expected["probabilities"], rtol=1e-5)
        assert body["model"] == "clf" and body["model_version"] == "1.0.0"
        assert body["id"] == response.headers["x-request-id"]


async def test_predict_with_a_string_categorical(client, zoo_home):
    rows = [{"a": 0.3, "b": -0.2, "plan": "pro"}, {"a": -1.0, "b": 0.5, "plan": "basic"}]
    response = await client.post("/predict/mixed", json={"instances": rows, "id": "abc"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["id"] == "abc" and response.headers["x-request-id"] == "abc"
    assert len(body["predictions"]) == 2 and len(body["probabilities"][0]) == 2


async def test_predict_regressor(client, zoo_home):
    response = await client.post("/predict/reg", json={"instances": ROWS.tolist()})
    assert response.status_code == 200, response.text
    expected = await direct(zoo_home, "reg", "1.0.0", {"input": ROWS})
    predictions = np.asarray(response.json()["predictions"], dtype=np.float64).ravel()
    np.testing.assert_allclose(predictions, expected[next(iter(expected))].ravel(), rtol=1e-5)


async def test_request_ids_are_echoed_or_generated_uniquely(client):
    given = await client.post(
        "/predict/clf", json={"instances": [[0, 0, 0, 0]]}, headers={"X-Request-Id": "client-1"}
    )
    assert given.headers["x-request-id"] == "client-1" and given.json()["id"] == "client-1"
    generated = {
        (await client.post("/predict/clf", json={"instances": [[0, 0, 0, 0]]})).headers[
            "x-request-id"
        ]
        for _ in range(20)
    }
    assert len(generated) == 20
    unsafe = await client.post("/predict/clf", json={"instances": [[0, 0, 0, 0]], "id": "a\nb"})
    assert unsafe.status_code == 200 and "\n" not in unsafe.headers["x-request-id"]
    assert unsafe.json()["id"] == "a\nb"


BAD_BODIES = [
    ("wrong feature count", {"instances": [[1, 2, 3]]}),
    ("non-numeric", {"instances": [[1, "x", 3, 4]]}),
    ("NaN", {"instances": [[1, None, 3, 4]]}),
    ("empty batch", {"instances": []}),
    ("too many rows", {"instances": [[0, 0, 0, 0]] * 51}),
    ("not an object", [1, 2, 3]),
    ("missing instances", {"rows": [[0, 0, 0, 0]]}),
]


@pytest.mark.parametrize(("case", "body"), BAD_BODIES, ids=[c for c, _ in BAD_BODIES])
async def test_bad_predict_input_is_a_400_json_error(client, case, body):
    response = await client.post("/predict/clf", json=body)
    assert response.status_code == 400, response.text
    assert set(response.json()) == {"error"} and response.json()["error"]
    assert response.headers["x-model-version"] == "1.0.0"
    assert response.headers["x-request-id"]


BAD_OIP = [
    (
        "wrong dtype",
        oip(ROWS[:1])
        | {"inputs": [{"name": "input", "shape": [1, 4], "datatype": "BYTES", "data": ["a"] * 4}]},
    ),
    (
        "shape mismatch",
        {"inputs": [{"name": "input", "shape": [2, 4], "datatype": "FP32", "data": [0.0] * 4}]},
    ),
    (
        "infinity",
        {
            "inputs": [
                {"name": "input", "shape": [1, 4], "datatype": "FP64", "data": [1e309, 0, 0, 0]}
            ]
        },
    ),
    ("no inputs", {"inputs": []}),
    ("unknown output", oip(ROWS[:1], outputs=[{"name": "nope"}])),
]


@pytest.mark.parametrize(("case", "body"), BAD_OIP, ids=[c for c, _ in BAD_OIP])
async def test_bad_oip_input_is_a_400_json_error(client, case, body):
    response = await client.post("/v2/models/clf/infer", content=orjson.dumps(body))
    assert response.status_code == 400, response.text
    assert response.json()["error"]


async def test_infinity_in_json_text_is_refused(client):
    raw = b'{"inputs":[{"name":"input","shape":[1,4],"datatype":"FP32","data":[Infinity,0,0,0]}]}'
    response = await client.post("/v2/models/clf/infer", content=raw)
    assert response.status_code == 400 and response.json()["error"]


async def test_malformed_json_and_binary_framing_are_400(client):
    broken = await client.post("/v2/models/clf/infer", content=b'{"inputs": [')
    assert broken.status_code == 400 and broken.json()["error"]
    header = orjson.dumps(
        {
            "inputs": [
                {
                    "name": "input",
                    "shape": [1, 4],
                    "datatype": "FP32",
                    "parameters": {"binary_data_size": 16},
                }
            ]
        }
    )
    short = await client.post(
        "/v2/models/clf/infer",
        content=header + b"\x00" * 8,
        headers={"Inference-Header-Content-Length": str(len(header))},
    )
    assert short.status_code == 400 and short.json()["error"]
    beyond = await client.post(
        "/v2/models/clf/infer",
        content=header,
        headers={"Inference-Header-Content-Length": str(len(header) + 100)},
    )
    assert beyond.status_code == 400
    garbage = await client.post(
        "/v2/models/clf/infer",
        content=header,
        headers={"Inference-Header-Content-Length": "lots"},
    )
    assert garbage.status_code == 400


async def test_body_too_large_is_413(client):
    big = b'{"instances": [' + b"[0,0,0,0]," * 10_000 + b"[0,0,0,0]]}"
    declared = await client.post("/predict/clf", content=big)
    assert declared.status_code == 413 and declared.json()["error"]

    async def chunks():  # no Content-Length: refused while streaming
        for _ in range(100):
            yield b" " * 1024

    streamed = await client.post("/predict/clf", content=chunks())
    assert streamed.status_code == 413


async def test_unknown_model_or_version_is_404_and_undeployed_is_409(client):
    for path in ("/v2/models/nope/infer", "/predict/nope", "/v2/models/clf/versions/3.0.0/infer"):
        response = await client.post(path, json=oip(ROWS[:1]))
        assert response.status_code == 404 and response.json()["error"], path
    header = await client.post(
        "/predict/clf", json={"instances": [[0, 0, 0, 0]]}, headers={"X-Model-Version": "3.0.0"}
    )
    assert header.status_code == 404
    for path, send in (
        ("/v2/models/clf/versions/2.0.0/infer", {"json": oip(ROWS[:1])}),
        (
            "/predict/clf",
            {"json": {"instances": [[0, 0, 0, 0]]}, "headers": {"X-Model-Version": "2.0.0"}},
        ),
    ):
        idle = await client.post(path, **send)
        assert idle.status_code == 409, path
        message = idle.json()["error"]
        assert "registered but not deployed" in message
        assert "modelgate stage clf 2.0.0 staging" in message


async def test_unknown_paths_and_methods_answer_json(client):
    missing = await client.get("/nothing/here")
    assert missing.status_code == 404 and missing.json() == {"error": "Not Found"}
    wrong_method = await client.get("/v2/models/clf/infer")
    assert wrong_method.status_code == 405 and wrong_method.json()["error"]


def test_hot_path_matcher_agrees_with_the_route_table(zoo_home):
    app = create_app(Settings.from_environ({}, home=str(zoo_home), admin_token="secret"))
    hot = app.hot
    infer, predict = hot.infer, hot.predict
    assert hot.match("/v2/models/clf/infer") == (infer, {"name": "clf"})
    assert hot.match("/v2/models/clf/versions/1.0.0/infer") == (
        infer,
        {"name": "clf", "version": "1.0.0"},
    )
    assert hot.match("/predict/clf") == (predict, {"name": "clf"})
    assert hot.match("/predict/clf/versions/2") == (predict, {"name": "clf", "version": "2"})
    for other in (
        "/v2/models/infer",
        "/v2/models/clf/ready",
        "/v2/models/a/b/infer",
        "/predict/",
        "/predict/a/b",
        "/predict/a/versions/",
        "/v2/health/live",
    ):
        assert hot.match(other) is None, other


def test_raw_targets_match_like_paths_and_are_remembered_only_when_they_match(zoo_home):
    app = create_app(Settings.from_environ({}, home=str(zoo_home), admin_token="secret"))
    hot = app.hot
    first = hot.match_url(b"/v2/models/clf/versions/1.0.0/infer")
    assert first == (hot.infer, {"name": "clf", "version": "1.0.0"})
    assert hot.match_url(b"/v2/models/clf/versions/1.0.0/infer") is first  # remembered
    assert hot.match_url(b"/predict/clf") == (hot.predict, {"name": "clf"})
    # a query string, an escape or non-ASCII bytes are left to the ASGI path, which decodes
    for other in (b"/predict/clf?x=1", b"/predict/c%6Cf", "/predict/cl\u00e9".encode(), b"*"):
        assert hot.match_url(other) is None, other
    for n in range(hot.URL_CACHE_SIZE + 10):
        assert hot.match_url(b"/predict/m%d" % n) == (hot.predict, {"name": f"m{n}"})
    assert len(hot._by_url) == hot.URL_CACHE_SIZE  # bounded: junk targets cost no memory


async def test_requests_under_a_root_path_go_through_the_router(zoo_home):
    app = create_app(Settings.from_environ({}, home=str(zoo_home), admin_token="secret"))
    async with running(app, root_path="/gw") as gw:
        response = await gw.http.post("/gw/predict/clf", json={"instances": ROWS.tolist()})
        assert response.status_code == 200, response.text
        assert response.headers["x-model-version"] == "1.0.0"
