"""Third-party Open Inference Protocol clients, unchanged, against a real ``modelgate serve``
on loopback: tritonclient (HTTP) and the kserve SDK's ``InferenceRESTClient``. Health and
readiness, metadata, JSON and binary inference, compressed requests and replies, the
classification and statistics extensions, and a pinned version nothing deploys."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import onnxruntime as ort
import pytest
import tritonclient.http as triton
from tritonclient.utils import InferenceServerException

from registry.sqlite.store import open_registry
from tests.support.gateway_process import GatewayProcess

ROWS = np.array([[0.5, -1.0, 0.25, 2.0], [-0.3, 0.8, -1.5, 0.1], [1.2, 0.4, 0.0, -0.7]], np.float32)
MANY = np.repeat(ROWS, 30, axis=0)  # 90 rows: replies well past the compression threshold

# A query string takes a request off the HTTP fast path to the ASGI endpoint; without one, the
# fast path hands requests that carry a content coding to the ASGI endpoint by itself. Both
# routes are exercised.
VIA_ASGI = {"via": "asgi"}


@pytest.fixture(scope="module")
def server(zoo_template, tmp_path_factory) -> Iterator[GatewayProcess]:
    root = tmp_path_factory.mktemp("oip-clients")
    home = Path(shutil.copytree(zoo_template, root / "home"))
    running = GatewayProcess(home, root / "server.log")
    try:
        yield running.wait_ready()
    finally:
        running.stop()


@pytest.fixture(scope="module")
def expected(zoo_template) -> dict[str, np.ndarray]:
    """clf 1.0.0 (production) run directly by onnxruntime on MANY."""

    async def read() -> bytes:
        registry = await open_registry(zoo_template)
        try:
            return await registry.read_artifact("clf", "1.0.0")
        finally:
            await registry.close()

    session = ort.InferenceSession(asyncio.run(read()), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(None, {"input": MANY}), strict=True))


@pytest.fixture
def client(server) -> Iterator[triton.InferenceServerClient]:
    tc = triton.InferenceServerClient(url=f"127.0.0.1:{server.port}")
    yield tc
    tc.close()


def triton_inputs(rows: np.ndarray, binary: bool) -> list[triton.InferInput]:
    tensor = triton.InferInput("input", list(rows.shape), "FP32")
    tensor.set_data_from_numpy(rows, binary_data=binary)
    return [tensor]


def check_outputs(result: Any, expected: dict[str, np.ndarray], n: int) -> None:
    assert result.as_numpy("label").tolist() == expected["label"][:n].tolist()
    np.testing.assert_allclose(
        result.as_numpy("probabilities"), expected["probabilities"][:n], 1e-6
    )


# --- tritonclient ------------------------------------------------------------------------


def test_health_bodies_and_server_metadata(server, client) -> None:
    assert client.is_server_live() and client.is_server_ready()
    assert client.is_model_ready("clf") and client.is_model_ready("clf", "1.1.0")
    assert not client.is_model_ready("clf", "2.0.0")  # registered, deployed by nothing
    extensions = set(client.get_server_metadata()["extensions"])
    assert {"binary_tensor_data", "classification", "model_repository", "statistics"} <= extensions
    for path, status, body in (
        ("/v2/health/live", 200, {"live": True}),
        ("/v2/health/ready", 200, {"ready": True}),
        ("/v2/models/clf/ready", 200, {"name": "clf", "ready": True}),
        ("/v2/models/clf/versions/2.0.0/ready", 503, {"name": "clf", "ready": False}),
    ):
        answer = server.fresh("GET", path)
        assert (answer.status_code, answer.json()) == (status, body), path
    slash = server.fresh("GET", "/v2/", follow_redirects=False)
    assert slash.status_code == 200 and slash.json() == client.get_server_metadata()


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
def test_inference_json_and_binary(client, expected, binary) -> None:
    outputs = [
        triton.InferRequestedOutput(n, binary_data=binary) for n in ("label", "probabilities")
    ]
    result = client.infer("clf", triton_inputs(MANY, binary), outputs=outputs, request_id="t-1")
    assert result.get_response()["id"] == "t-1"
    check_outputs(result, expected, len(MANY))


@pytest.mark.parametrize("query", [VIA_ASGI, None], ids=["asgi", "fast-path"])
@pytest.mark.parametrize("request_coding", ["gzip", "deflate"])
@pytest.mark.parametrize("response_coding", ["gzip", "deflate", None])
def test_compressed_requests_and_replies(
    server, client, expected, query, request_coding, response_coding
) -> None:
    result = client.infer(
        "clf",
        triton_inputs(MANY, True),
        outputs=[triton.InferRequestedOutput(n) for n in ("label", "probabilities")],
        query_params=query,
        request_compression_algorithm=request_coding,
        response_compression_algorithm=response_coding,
    )
    check_outputs(result, expected, len(MANY))


def test_replies_really_are_compressed(server, expected) -> None:
    """The wire: a gzip reply with its headers (raw bytes, no client decoding them)."""
    body = b'{"inputs": [{"name": "input", "shape": [90, 4], "datatype": "FP32", "data": %s}]}'
    body %= str(MANY.ravel().tolist()).encode()
    with httpx.Client(base_url=server.url, timeout=10) as http:
        request = http.build_request(
            "POST",
            "/v2/models/clf/infer",
            params=VIA_ASGI,
            content=body,
            headers={"Accept-Encoding": "gzip", "Content-Type": "application/json"},
        )
        response = http.send(request, stream=True)
        raw = b"".join(response.iter_raw())
        response.close()
    assert response.status_code == 200
    assert response.headers["content-encoding"] == "gzip"
    assert response.headers["vary"] == "accept-encoding"
    assert raw[:2] == b"\x1f\x8b" and int(response.headers["content-length"]) == len(raw)


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
def test_classification(client, expected, binary) -> None:
    outputs = [triton.InferRequestedOutput("probabilities", binary_data=binary, class_count=2)]
    result = client.infer("clf", triton_inputs(MANY, binary), outputs=outputs)
    top = result.as_numpy("probabilities")
    assert top.shape == (len(MANY), 2)
    for row, probs in zip(top, expected["probabilities"], strict=True):
        texts = [v.decode() if isinstance(v, bytes) else v for v in row]
        order = np.argsort(-probs, kind="stable")
        assert texts == [f"{probs[i]:f}:{i}:{i}" for i in order]  # classes are 0 and 1


def test_statistics(client) -> None:
    def success(version: str) -> int:
        stats = client.get_inference_statistics("clf", version)["model_stats"]
        assert [s["version"] for s in stats] == [version]
        return stats[0]["inference_stats"]["success"]["count"]

    before = success("1.1.0")
    for _ in range(3):
        client.infer("clf", triton_inputs(ROWS, True), model_version="1.1.0")
    assert success("1.1.0") == before + 3
    model = client.get_inference_statistics("clf")["model_stats"]
    assert [s["version"] for s in model] == ["1.0.0", "1.1.0"]
    every = client.get_inference_statistics()["model_stats"]
    assert {(s["name"], s["version"]) for s in every} >= {("clf", "1.0.0"), ("reg", "1.0.0")}
    stat = model[1]
    assert stat["inference_count"] >= 9 and stat["last_inference"] > 0
    with pytest.raises(InferenceServerException, match="unknown model 'nope'"):
        client.get_inference_statistics("nope")


def test_a_version_nothing_deploys_is_a_conflict_not_a_retry(client) -> None:
    with pytest.raises(InferenceServerException) as err:
        client.infer("clf", triton_inputs(ROWS, True), model_version="2.0.0")
    assert err.value.status() == "409"
    assert "modelgate stage clf 2.0.0 staging" in err.value.message()


# --- kserve SDK --------------------------------------------------------------------------


@pytest.fixture
def kserve() -> Any:
    return pytest.importorskip("kserve", reason="the kserve SDK (scripts/test.sh installs it)")


async def test_kserve_rest_client(server, expected, kserve) -> None:
    from kserve.protocol.infer_type import RequestedOutput

    config = kserve.RESTConfig(protocol="v2", retries=0, timeout=30)
    async with kserve.InferenceRESTClient(config) as rest:
        assert await rest.is_server_live(server.url) is True
        assert await rest.is_server_ready(server.url) is True
        assert await rest.is_model_ready(server.url, "clf") is True
        for binary in (False, True):
            tensor = kserve.InferInput("input", list(MANY.shape), "FP32")
            tensor.set_data_from_numpy(MANY, binary_data=binary)
            outputs = [
                RequestedOutput(n, parameters={"binary_data": binary})
                for n in ("label", "probabilities")
            ]
            request = kserve.InferRequest(
                "clf", [tensor], request_id=f"k-{binary}", request_outputs=outputs
            )
            response = await rest.infer(server.url, request, model_name="clf")
            assert response.id == f"k-{binary}" and response.model_name == "clf"
            by_name = {o.name: o.as_numpy() for o in response.outputs}
            assert by_name["label"].tolist() == expected["label"].tolist()
            np.testing.assert_allclose(by_name["probabilities"], expected["probabilities"], 1e-6)
