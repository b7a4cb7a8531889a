"""`modelgate serve` on a real uvicorn (loopback, free port): standard OIP clients, the demo,
the token file, several workers converging on a change."""

from __future__ import annotations

import asyncio
import re
import shlex
import socket
from collections.abc import Iterator

import httpx
import numpy as np
import onnxruntime as ort
import orjson
import pytest
import tritonclient.http as triton

from registry.models import Stage
from registry.sqlite.store import open_registry
from tests.support.gateway_process import GatewayProcess, running_server
from tests.support.polling import wait_until
from tests.support.registry_copy import private_copy

pytestmark = pytest.mark.slow  # real `modelgate serve` processes

ROWS = np.array([[0.5, -1.0, 0.25, 2.0], [-0.3, 0.8, -1.5, 0.1], [1.2, 0.4, 0.0, -0.7]], np.float32)


@pytest.fixture(scope="module")
def server(zoo_template, tmp_path_factory) -> Iterator[GatewayProcess]:
    root = tmp_path_factory.mktemp("serve")
    with running_server(private_copy(zoo_template, root), root / "server.log") as running:
        yield running


@pytest.fixture(scope="module")
def expected(zoo_template) -> dict[str, dict[str, np.ndarray]]:
    """Direct onnxruntime outputs of clf 1.0.0 and 1.1.0 on ROWS."""

    async def read() -> dict[str, bytes]:
        registry = await open_registry(zoo_template)
        try:
            return {v: await registry.read_artifact("clf", v) for v in ("1.0.0", "1.1.0")}
        finally:
            await registry.close()

    out = {}
    for version, data in asyncio.run(read()).items():
        session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
        names = [o.name for o in session.get_outputs()]
        out[version] = dict(zip(names, session.run(None, {"input": ROWS}), strict=True))
    return out


@pytest.fixture
def client(server) -> Iterator[triton.InferenceServerClient]:
    tc = triton.InferenceServerClient(url=f"127.0.0.1:{server.port}")
    yield tc
    tc.close()


def test_triton_client_health_and_metadata(client):
    assert client.is_server_live() and client.is_server_ready()
    metadata = client.get_server_metadata()
    assert "binary_tensor_data" in metadata["extensions"]
    assert client.is_model_ready("clf") and client.is_model_ready("clf", "1.1.0")
    model = client.get_model_metadata("clf")
    assert model["inputs"][0]["shape"] == [-1, 4]
    index = client.get_model_repository_index(headers={"Authorization": "Bearer tok"})
    assert {"name": "clf", "version": "1.0.0", "state": "READY", "reason": ""} in index


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
@pytest.mark.parametrize("version", ["", "1.1.0"], ids=["routed", "pinned"])
def test_triton_client_infer_round_trip(client, expected, binary, version):
    tensor = triton.InferInput("input", list(ROWS.shape), "FP32")
    tensor.set_data_from_numpy(ROWS, binary_data=binary)
    outputs = [
        triton.InferRequestedOutput("label", binary_data=binary),
        triton.InferRequestedOutput("probabilities", binary_data=binary),
    ]
    result = client.infer(
        "clf", [tensor], model_version=version, outputs=outputs, request_id="triton-1"
    )
    want = expected[version or "1.0.0"]
    np.testing.assert_array_equal(result.as_numpy("label"), want["label"])
    np.testing.assert_allclose(result.as_numpy("probabilities"), want["probabilities"], rtol=1e-6)
    response = result.get_response()
    assert response["id"] == "triton-1"
    assert response["model_version"] == (version or "1.0.0")


def test_triton_client_errors_are_raised_with_the_message(client):
    tensor = triton.InferInput("input", [1, 3], "FP32")
    tensor.set_data_from_numpy(np.zeros((1, 3), np.float32))
    with pytest.raises(triton.InferenceServerException) as info:
        client.infer("clf", [tensor])
    assert info.value.status() == "400" and "3" in info.value.message()
    with pytest.raises(triton.InferenceServerException) as info:
        client.infer("nope", [tensor])
    assert info.value.status() == "404"


def test_plain_http_headers_and_errors(server):
    response = httpx.post(f"{server.url}/predict/clf", json={"instances": ROWS.tolist()})
    assert response.status_code == 200
    assert response.headers["x-model-version"] == "1.0.0" and response.headers["x-request-id"]
    too_big = httpx.post(
        f"{server.url}/predict/clf",
        content=b" " * (9 * 1024 * 1024),
        headers={"content-type": "application/json"},
    )
    assert too_big.status_code == 413 and too_big.json()["error"]
    assert "Traceback" not in server.log.read_text()


def test_serve_demo_comes_up_and_answers_the_printed_curl(tmp_path):
    server = GatewayProcess(tmp_path / "home", tmp_path / "server.log", ["--demo"])
    try:
        server.wait_ready(timeout_s=300)
        log = server.log.read_text()
        assert f"modelgate serving on {server.url}" in log
        assert "admin token: from MODELGATE_ADMIN_TOKEN" in log
        curl = next(line.strip() for line in log.splitlines() if line.strip().startswith("curl"))
        argv = shlex.split(curl)
        url = argv[argv.index("-X") + 2]
        body = argv[argv.index("-d") + 1]
        assert re.fullmatch(rf"{server.url}/predict/churn", url)
        response = httpx.post(url, content=body, headers={"content-type": "application/json"})
        assert response.status_code == 200, response.text
        answer = response.json()
        assert answer["model"] == "churn" and answer["model_version"] == "1.0.0"
        assert len(answer["predictions"]) == 1 and len(answer["probabilities"][0]) >= 2
        assert response.headers["x-model-version"] == "1.0.0"
        # the staging version is reachable by a pinned request
        pinned = httpx.post(f"{server.url}/predict/churn/versions/1.1.0", content=body)
        assert pinned.status_code == 200 and pinned.json()["model_version"] == "1.1.0"
    finally:
        server.stop()


def test_serve_without_the_env_token_writes_the_token_file(zoo_template, tmp_path):
    home = private_copy(zoo_template, tmp_path)
    server = GatewayProcess(home, tmp_path / "server.log", env={"MODELGATE_ADMIN_TOKEN": ""})
    try:
        server.wait_ready()
        token_file = home / "admin-token"
        assert f"admin token: {token_file}" in server.log.read_text()
        token = token_file.read_text().strip()
        url = f"{server.url}/admin/models/clf/shadow"
        assert httpx.get(url).status_code == 401
        assert httpx.get(url, headers={"Authorization": f"Bearer {token}"}).status_code == 200
    finally:
        server.stop()


def test_two_workers_converge_on_a_promotion(zoo_template, tmp_path):
    home = private_copy(zoo_template, tmp_path)
    server = GatewayProcess(
        home, tmp_path / "server.log", ["--workers", "2"], env={"MODELGATE_POLL_INTERVAL_MS": "50"}
    )
    row = orjson.dumps({"instances": [[0.1, 0.2, 0.3, 0.4]]})
    try:
        server.wait_ready()
        with httpx.Client(base_url=server.url) as http:
            assert {
                http.post("/predict/clf", content=row).headers["x-model-version"] for _ in range(20)
            } == {"1.0.0"}

            async def promote() -> None:
                registry = await open_registry(home)
                try:
                    await registry.set_stage("clf", "1.1.0", Stage.PRODUCTION)
                finally:
                    await registry.close()

            asyncio.run(promote())

            def versions() -> set[str]:
                return {
                    # fresh connections spread the requests over both workers
                    httpx.post(f"{server.url}/predict/clf", content=row).headers["x-model-version"]
                    for _ in range(20)
                }

            served = wait_until(versions, 30, 0.1, done=lambda seen: seen == {"1.1.0"})
            assert served == {"1.1.0"}
    finally:
        server.stop()


def test_head_and_expect_continue_through_the_coalescing_protocol(server):
    head = httpx.head(f"{server.url}/v2/health/live")
    assert head.status_code == 200
    body = b'{"instances": [[0.1, 0.2, 0.3, 0.4]]}'
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(
            b"POST /predict/clf HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Expect: 100-continue\r\nContent-Length: %d\r\n\r\n" % len(body)
        )
        interim = sock.recv(1024)
        assert interim.startswith(b"HTTP/1.1 100 Continue\r\n\r\n")
        sock.sendall(body)
        response = interim[len(b"HTTP/1.1 100 Continue\r\n\r\n") :]
        while b"\r\n\r\n" not in response or not response.endswith(b"}"):
            chunk = sock.recv(4096)
            assert chunk, response
            response += chunk
    assert response.startswith(b"HTTP/1.1 200 OK")
    assert b'"predictions"' in response
