"""Hostile inputs through the real app (ASGI) and a real uvicorn server (slow bodies).

Each class: deeply nested JSON, huge shapes with little data, shapes that disagree with the
data, NaN in every position (binary), unicode feature names, 10 KB header values, slow
bodies. Every answer is a 4xx ``{"error": ...}`` (or a 200 where the input is valid), never
a 5xx, and the app still predicts correctly afterwards.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator

import httpx
import numpy as np
import orjson
import pytest

from tests.support.asgi_app import running_gateway
from tests.support.gateway_process import GatewayProcess, running_server
from tests.support.registry_copy import private_copy

ROW = [0.5, -1.0, 0.25, 2.0]
GOOD = {"inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP32", "data": ROW}]}


@pytest.fixture
async def hostile_client(zoo_home) -> AsyncIterator[httpx.AsyncClient]:
    async with running_gateway(zoo_home, "secret") as served:
        yield served.http


def refused(answer: httpx.Response, *statuses: int) -> str:
    assert answer.status_code in (statuses or (400,)), (answer.status_code, answer.text[:200])
    body = answer.json()
    assert list(body) == ["error"] and isinstance(body["error"], str)
    return body["error"]


async def still_correct(http: httpx.AsyncClient) -> None:
    answer = await http.post("/v2/models/clf/infer", json=GOOD)
    assert answer.status_code == 200
    reference = await http.post("/predict/clf", json={"instances": [ROW]})
    assert answer.json()["outputs"][0]["data"] == reference.json()["predictions"]


async def test_deeply_nested_json(hostile_client) -> None:
    for depth in (1_000, 100_000):
        nested = b"[" * depth + b"]" * depth
        data_nested = b'{"inputs":[{"name":"input","shape":[1,4],"datatype":"FP32","data":'
        for body in (nested, data_nested + nested + b"}]}", b'{"instances":' + nested + b"}"):
            for path in ("/v2/models/clf/infer", "/predict/clf", "/v2/models/clf/feedback"):
                refused(await hostile_client.post(path, content=body))
    await still_correct(hostile_client)


async def test_huge_shapes_with_little_data(hostile_client) -> None:
    for shape in ([2**40, 2**40], [2**62, 4], [2**64, 4], [4, 2**63], [10**30], [2**31, 4]):
        doc = {"inputs": [{"name": "input", "shape": shape, "datatype": "FP32", "data": ROW}]}
        refused(await hostile_client.post("/v2/models/clf/infer", json=None, content=_dumps(doc)))
        header = _dumps(
            {
                "inputs": [
                    {
                        "name": "input",
                        "shape": shape,
                        "datatype": "FP32",
                        "parameters": {"binary_data_size": 16},
                    }
                ]
            }
        )
        binary = header + np.array(ROW, np.float32).tobytes()
        refused(
            await hostile_client.post(
                "/v2/models/clf/infer",
                content=binary,
                headers={"inference-header-content-length": str(len(header))},
            )
        )
    await still_correct(hostile_client)


async def test_shapes_that_disagree_with_the_data(hostile_client) -> None:
    for rows in range(0, 5):
        for count in range(0, 18):
            if rows >= 1 and count == rows * 4:
                continue
            doc = {
                "inputs": [
                    {"name": "input", "shape": [rows, 4], "datatype": "FP32", "data": [0.5] * count}
                ]
            }
            refused(await hostile_client.post("/v2/models/clf/infer", json=doc))
    await still_correct(hostile_client)


async def test_negative_and_overflowing_binary_data_size(hostile_client) -> None:
    chunk = np.array(ROW, np.float32).tobytes()
    for size in (-1, -(2**63), 2**63, 2**64 + 16, 10**40, 0, 15, 17, 1.5, "16", None, True):
        header = _dumps(
            {
                "inputs": [
                    {
                        "name": "input",
                        "shape": [1, 4],
                        "datatype": "FP32",
                        "parameters": {"binary_data_size": size},
                    }
                ]
            }
        )
        for length in (str(len(header)), "-1", "0", str(2**64), "1e3", str(len(header) + 999)):
            answer = await hostile_client.post(
                "/v2/models/clf/infer",
                content=header + chunk,
                headers={"inference-header-content-length": length},
            )
            refused(answer)
    await still_correct(hostile_client)


async def test_nan_in_every_position_binary_and_named(hostile_client) -> None:
    for position in range(8):
        values = np.array([ROW, ROW], np.float32)
        values.ravel()[position] = np.nan
        header = _dumps(
            {
                "inputs": [
                    {
                        "name": "input",
                        "shape": [2, 4],
                        "datatype": "FP32",
                        "parameters": {"binary_data_size": 32},
                    }
                ]
            }
        )
        answer = await hostile_client.post(
            "/v2/models/clf/infer",
            content=header + values.tobytes(),
            headers={"inference-header-content-length": str(len(header))},
        )
        assert "NaN" in refused(answer) or "finite" in refused(answer)
        named = [dict(zip("abcd", row, strict=True)) for row in values.tolist()]
        # orjson writes NaN as null: a missing value the model does not impute
        refused(
            await hostile_client.post("/predict/clf", content=orjson.dumps({"instances": named}))
        )
    await still_correct(hostile_client)


async def test_unicode_feature_names(hostile_client) -> None:
    for key in ("plän", "计划", "🙂", "\u202e", "a\u0000", "\ud7ff", "x" * 5000):
        row = {"a": 0.1, "b": 0.2, key: "pro"}
        message = refused(await hostile_client.post("/predict/mixed", json={"instances": [row]}))
        assert "plan" in message  # the missing feature is named
    await still_correct(hostile_client)


async def test_ten_kilobyte_header_values(hostile_client) -> None:
    big = "k" * 10_240
    ok = await hostile_client.post(
        "/v2/models/clf/infer", json=GOOD, headers={"x-routing-key": big}
    )
    assert ok.status_code == 200
    ok = await hostile_client.post("/v2/models/clf/infer", json=GOOD, headers={"x-request-id": big})
    # too long to echo: the answer carries a request id of its own
    assert ok.status_code == 200 and 0 < len(ok.headers["x-request-id"]) <= 256
    version = await hostile_client.post(
        "/v2/models/clf/infer", json=GOOD, headers={"x-model-version": big}
    )
    assert len(refused(version, 404)) < 1000
    long_name = await hostile_client.post(f"/v2/models/{big}/infer", json=GOOD)
    assert len(refused(long_name, 404)) < 1000
    challenger = await hostile_client.post(
        "/v2/models/clf/infer", json=GOOD, headers={"x-use-challenger": big}
    )
    assert challenger.status_code == 200
    admin = await hostile_client.get("/admin/models", headers={"authorization": "Bearer " + big})
    refused(admin, 401)
    await still_correct(hostile_client)


def _dumps(doc) -> bytes:
    import json

    return json.dumps(doc).encode()


@pytest.fixture(scope="module")
def slow_server(tmp_path_factory, zoo_template) -> Iterator[GatewayProcess]:
    root = tmp_path_factory.mktemp("slow")
    home = private_copy(zoo_template, root)
    with running_server(home, root / "server.log", ["--workers", "1"], token="slow") as server:
        yield server


def _dribble(port: int, body: bytes, pieces: int, pause_s: float, out: dict) -> None:
    """POST ``body`` in ``pieces`` separate sends with pauses; store the raw answer."""
    head = (
        f"POST /v2/models/clf/infer HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(head)
        step = max(1, len(body) // pieces)
        for start in range(0, len(body), step):
            sock.sendall(body[start : start + step])
            time.sleep(pause_s)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    out["answer"] = answer


@pytest.mark.slow
def test_slow_bodies_are_served_and_do_not_block_other_clients(slow_server) -> None:
    body = orjson.dumps(GOOD)
    out: dict = {}
    slow = threading.Thread(target=_dribble, args=(slow_server.port, body, 25, 0.08, out))
    slow.start()
    served = []
    while slow.is_alive():  # other clients are answered meanwhile, on the same worker
        served.append(slow_server.fresh("POST", "/v2/models/clf/infer", json=GOOD).status_code)
    slow.join()
    assert served and set(served) == {200}
    head, _, payload = out["answer"].partition(b"\r\n\r\n")
    status_line = head.split(b"\r\n", 1)[0]
    assert status_line in (b"HTTP/1.1 200 OK", b"HTTP/1.1 408 Request Timeout"), status_line
    if status_line.endswith(b"200 OK"):
        direct = slow_server.fresh("POST", "/v2/models/clf/infer", json=GOOD).json()
        assert orjson.loads(payload)["outputs"] == direct["outputs"]


@pytest.mark.slow
def test_abandoned_and_slow_header_clients_leave_the_server_healthy(slow_server) -> None:
    # a body shorter than its Content-Length, then the client goes away
    with socket.create_connection(("127.0.0.1", slow_server.port), timeout=10) as sock:
        sock.sendall(
            b'POST /predict/clf HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{"instan'
        )
    # headers dribbled one byte at a time
    with socket.create_connection(("127.0.0.1", slow_server.port), timeout=10) as sock:
        for byte in b"GET /v2/health/ready HTTP/1.1\r\nHost: x\r\n":
            sock.send(bytes([byte]))
            time.sleep(0.005)
        sock.sendall(b"Connection: close\r\n\r\n")
        assert sock.recv(4096).startswith(b"HTTP/1.1 200")
    assert slow_server.fresh("POST", "/predict/clf", json={"instances": [ROW]}).status_code == 200
    time.sleep(0.2)
    assert "Traceback" not in slow_server.log.read_text()
