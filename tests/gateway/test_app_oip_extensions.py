"""Open Inference Protocol details through the real ASGI app (lifespan, real registry and
onnxruntime): content codings, the classification and statistics extensions, schema
refusals by field."""

from __future__ import annotations

import gzip
import time
import zlib
from collections.abc import AsyncIterator

import httpx
import numpy as np
import onnxruntime as ort
import orjson
import pytest
import tritonclient.http as triton

from gateway.app import create_app
from gateway.settings import Settings
from registry.sqlite.store import open_registry

ROWS = np.array([[0.5, -1.0, 0.25, 2.0], [-0.3, 0.8, -1.5, 0.1], [1.2, 0.4, 0.0, -0.7]], np.float32)
MAX_BODY = 64 * 1024


@pytest.fixture
async def client(zoo_home) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings.from_environ({}, home=str(zoo_home), admin_token="secret", max_rows=500)
    app = create_app(settings.with_overrides(max_body_bytes=MAX_BODY))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        # identity unless a test asks: httpx would otherwise offer gzip on every request
        headers = {"Accept-Encoding": "identity"}
        async with httpx.AsyncClient(
            transport=transport, base_url="http://gw", headers=headers
        ) as http:
            yield http


@pytest.fixture
async def expected(zoo_home) -> dict[str, np.ndarray]:
    """clf 1.0.0 (production) run directly by onnxruntime on ROWS."""
    registry = await open_registry(zoo_home)
    try:
        data = await registry.read_artifact("clf", "1.0.0")
    finally:
        await registry.close()
    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(None, {"input": ROWS}), strict=True))


def oip(rows: np.ndarray, **extra) -> bytes:
    tensor = {"name": "input", "shape": list(rows.shape), "datatype": "FP32"}
    return orjson.dumps({"inputs": [{**tensor, "data": rows.ravel().tolist()}], **extra})


def probabilities(body: dict) -> np.ndarray:
    out = {o["name"]: o for o in body["outputs"]}["probabilities"]
    return np.array(out["data"], dtype=np.float32).reshape(out["shape"])


# --- content codings --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("coding", "encode"), [("gzip", gzip.compress), ("deflate", zlib.compress)]
)
async def test_compressed_request_bodies(client, expected, coding, encode) -> None:
    response = await client.post(
        "/v2/models/clf/infer",
        content=encode(oip(ROWS, id="z-1")),
        headers={"Content-Encoding": coding, "Content-Type": "application/json"},
    )
    assert response.status_code == 200, response.text
    assert response.json()["id"] == "z-1"
    np.testing.assert_allclose(probabilities(response.json()), expected["probabilities"], 1e-6)
    predict = await client.post(
        "/predict/clf",
        content=encode(orjson.dumps({"instances": ROWS.tolist()})),
        headers={"Content-Encoding": coding},
    )
    assert predict.status_code == 200
    assert predict.json()["predictions"] == expected["label"].tolist()


async def test_binary_tensors_compressed_both_ways(client, expected) -> None:
    wanted = [triton.InferRequestedOutput(n, binary_data=True) for n in ("label", "probabilities")]
    # a 64-row request: the reply's binary tensors pass the compression threshold
    big = np.repeat(ROWS, 22, axis=0)[:64]
    tensor = triton.InferInput("input", list(big.shape), "FP32")
    tensor.set_data_from_numpy(big, binary_data=True)
    body, header_length = triton.InferenceServerClient.generate_request_body(
        [tensor], outputs=wanted
    )
    response = await client.post(
        "/v2/models/clf/infer",
        content=gzip.compress(body),
        headers={
            "Content-Encoding": "gzip",
            "Accept-Encoding": "gzip",
            "Inference-Header-Content-Length": str(header_length),
        },
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-encoding"] == "gzip"
    assert response.headers["vary"] == "accept-encoding"
    assert response.num_bytes_downloaded < len(response.content)  # sent compressed
    result = triton.InferResult.from_response_body(
        response.content, header_length=int(response.headers["inference-header-content-length"])
    )
    label, probs = result.as_numpy("label"), result.as_numpy("probabilities")
    assert label.tolist() == np.repeat(expected["label"], 22)[:64].tolist()
    np.testing.assert_allclose(probs, np.repeat(expected["probabilities"], 22, axis=0)[:64], 1e-6)


async def test_replies_compressed_only_when_asked_and_large_enough(client) -> None:
    many = oip(np.repeat(ROWS, 20, axis=0), id="same")
    plain = await client.post("/v2/models/clf/infer", content=many)
    assert "content-encoding" not in plain.headers and "vary" not in plain.headers
    assert len(plain.content) >= 1024
    for coding, decode in (("gzip", gzip.decompress), ("deflate", zlib.decompress)):
        async with client.stream(
            "POST", "/v2/models/clf/infer", content=many, headers={"Accept-Encoding": coding}
        ) as streamed:
            assert streamed.headers["content-encoding"] == coding
            assert streamed.headers["vary"] == "accept-encoding"
            raw = b"".join([chunk async for chunk in streamed.aiter_raw()])
        assert orjson.loads(decode(raw)) == plain.json()
        assert len(raw) < len(plain.content) // 2
    small = await client.post(
        "/v2/models/clf/infer", content=oip(ROWS[:1]), headers={"Accept-Encoding": "gzip"}
    )
    assert small.status_code == 200 and len(small.content) < 1024
    assert "content-encoding" not in small.headers and small.headers["vary"] == "accept-encoding"
    # errors are replies too: a small one goes out as it is
    refused = await client.post(
        "/v2/models/clf/infer", content=b"{", headers={"Accept-Encoding": "gzip"}
    )
    assert refused.status_code == 400 and "content-encoding" not in refused.headers


async def test_coding_refusals(client) -> None:
    unknown = await client.post(
        "/v2/models/clf/infer", content=oip(ROWS), headers={"Content-Encoding": "br"}
    )
    assert unknown.status_code == 415
    assert unknown.json() == {
        "error": "Content-Encoding 'br' is not supported; use gzip or deflate"
    }
    corrupt = await client.post(
        "/v2/models/clf/infer", content=oip(ROWS), headers={"Content-Encoding": "gzip"}
    )
    assert corrupt.status_code == 400 and "not valid gzip data" in corrupt.json()["error"]
    # a small body that inflates past the body limit: 413, decoded no further
    bomb = gzip.compress(b" " * (50 * MAX_BODY))
    assert len(bomb) < MAX_BODY // 8
    too_big = await client.post(
        "/v2/models/clf/infer", content=bomb, headers={"Content-Encoding": "gzip"}
    )
    assert too_big.status_code == 413
    assert too_big.json() == {
        "error": f"decompressed request body exceeds the {MAX_BODY}-byte limit"
    }


async def test_compressed_feedback(client) -> None:
    served = await client.post("/v2/models/clf/infer", content=oip(ROWS[:1], id="fb-1"))
    assert served.status_code == 200
    label = served.json()["outputs"][0]["data"][0]
    feedback = await client.post(
        "/v2/models/clf/feedback",
        content=gzip.compress(orjson.dumps({"id": "fb-1", "label": label})),
        headers={"Content-Encoding": "gzip"},
    )
    assert feedback.status_code == 200, feedback.text
    assert feedback.json()["accepted"] == 1
    unknown = await client.post(
        "/v2/models/clf/feedback", content=b"{}", headers={"Content-Encoding": "compress"}
    )
    assert unknown.status_code == 415


# --- classification extension ------------------------------------------------------------


def triton_classes(values: np.ndarray, k: int, labels: list[str] | None) -> list[list[str]]:
    """What Triton answers: top-k by value, "%f:index[:label]" (std::to_string)."""
    out = []
    for row in values.reshape(values.shape[0], -1):
        order = sorted(range(row.size), key=lambda i: (-row[i], i))[:k]
        fmt = "%f" if row.dtype.kind == "f" else "%d"
        texts = [f"{fmt % row[i]}:{i}" + (f":{labels[i]}" if labels else "") for i in order]
        out.append(texts)
    return out


async def test_classification_in_json(client, expected) -> None:
    outputs = [
        {"name": "probabilities", "parameters": {"classification": 2}},
        {"name": "label", "parameters": {"classification": 5}},
    ]
    response = await client.post("/v2/models/clf/infer", content=oip(ROWS, outputs=outputs))
    assert response.status_code == 200, response.text
    out = {o["name"]: o for o in response.json()["outputs"]}
    probs = out["probabilities"]
    assert (probs["datatype"], probs["shape"]) == ("BYTES", [3, 2])
    wanted = triton_classes(expected["probabilities"], 2, ["0", "1"])
    assert np.array(probs["data"]).reshape(3, 2).tolist() == wanted
    assert probs["data"][0].count(":") == 2  # "0.XXXXXX:index:label"
    # the label output has one value per row: k is clamped to 1, no labels
    label = out["label"]
    assert (label["datatype"], label["shape"]) == ("BYTES", [3, 1])
    assert label["data"] == [f"{v}:0" for v in expected["label"].tolist()]


async def test_classification_in_binary_as_tritonclient_asks(client, expected) -> None:
    tensor = triton.InferInput("input", list(ROWS.shape), "FP32")
    tensor.set_data_from_numpy(ROWS, binary_data=True)
    wanted = [
        triton.InferRequestedOutput("probabilities", binary_data=True, class_count=1),
        triton.InferRequestedOutput("label", binary_data=False),
    ]
    body, header_length = triton.InferenceServerClient.generate_request_body(
        [tensor], outputs=wanted
    )
    response = await client.post(
        "/v2/models/clf/infer",
        content=body,
        headers={"Inference-Header-Content-Length": str(header_length)},
    )
    assert response.status_code == 200, response.text
    result = triton.InferResult.from_response_body(
        response.content, header_length=int(response.headers["inference-header-content-length"])
    )
    top = result.as_numpy("probabilities")
    assert top.shape == (3, 1)
    assert [[v.decode() for v in row] for row in top] == triton_classes(
        expected["probabilities"], 1, ["0", "1"]
    )
    assert result.as_numpy("label").tolist() == expected["label"].tolist()


# --- statistics extension ----------------------------------------------------------------


def stat_of(body: dict, version: str) -> dict:
    return next(s for s in body["model_stats"] if s["version"] == version)


async def test_statistics_count_what_was_served(client) -> None:
    before = (await client.get("/v2/models/clf/stats")).json()
    assert [s["version"] for s in before["model_stats"]] == ["1.0.0", "1.1.0"]
    fresh = stat_of(before, "1.1.0")
    assert fresh["last_inference"] == 0 and fresh["inference_stats"]["success"]["count"] == 0
    started_ms = time.time() * 1000
    for rows in (ROWS, ROWS[:1]):
        ok = await client.post("/v2/models/clf/versions/1.1.0/infer", content=oip(rows))
        assert ok.status_code == 200
    bad = await client.post("/v2/models/clf/versions/1.1.0/infer", content=oip(ROWS[:, :2]))
    assert bad.status_code == 400
    body = (await client.get("/v2/models/clf/versions/1.1.0/stats")).json()
    assert [s["version"] for s in body["model_stats"]] == ["1.1.0"]
    stat = body["model_stats"][0]
    assert stat["name"] == "clf"
    assert started_ms - 5 <= stat["last_inference"] <= time.time() * 1000 + 5
    assert stat["inference_count"] == 4  # rows run
    assert 1 <= stat["execution_count"] <= 2
    phases = stat["inference_stats"]
    assert phases["success"]["count"] == 2 and phases["success"]["ns"] > 0
    assert phases["fail"]["count"] == 1 and phases["fail"]["ns"] > 0
    assert phases["compute_infer"]["count"] == stat["execution_count"]
    assert 0 < phases["compute_infer"]["ns"] < phases["success"]["ns"]
    for unmeasured in ("queue", "compute_input", "compute_output", "cache_hit"):
        assert phases[unmeasured] == {"count": 0, "ns": 0}
    assert stat["batch_stats"] == []
    # every model: sorted by name, then version; the same numbers
    every = (await client.get("/v2/models/stats")).json()["model_stats"]
    assert [(s["name"], s["version"]) for s in every] == [
        ("clf", "1.0.0"),
        ("clf", "1.1.0"),
        ("mixed", "1.0.0"),
        ("reg", "1.0.0"),
    ]
    assert stat_of({"model_stats": every[:2]}, "1.1.0")["inference_stats"] == phases


async def test_statistics_refusals(client) -> None:
    unknown = await client.get("/v2/models/nope/stats")
    assert unknown.status_code == 404 and unknown.json() == {"error": "unknown model 'nope'"}
    missing = await client.get("/v2/models/clf/versions/9.9.9/stats")
    assert missing.status_code == 404
    idle = await client.get("/v2/models/clf/versions/2.0.0/stats")
    assert idle.status_code == 409 and "modelgate stage clf 2.0.0 staging" in idle.json()["error"]


# --- the protocol's schema, refused by field ------------------------------------------------


@pytest.mark.parametrize(
    ("extra", "fragment"),
    [
        ({"parameters": 3}, "request: 'parameters' must be an object"),
        ({"parameters": [1]}, "request: 'parameters' must be an object"),
        ({"outputs": None}, "'outputs' must be a list, got None"),
        ({"outputs": {"name": "label"}}, "'outputs' must be a list"),
        ({"id": None}, "request 'id' must be a string, got None"),
        ({"id": 7}, "request 'id' must be a string, got 7"),
        ({"outputs": [{"name": "label"}, {"name": "label"}]}, "output 'label' is requested twice"),
        (
            {"outputs": [{"name": "label", "parameters": "binary"}]},
            "output 'label': 'parameters' must be an object",
        ),
    ],
)
async def test_schema_violations_are_400_naming_the_field(client, extra, fragment) -> None:
    response = await client.post("/v2/models/clf/infer", content=oip(ROWS[:1], **extra))
    assert response.status_code == 400
    assert fragment in response.json()["error"]
