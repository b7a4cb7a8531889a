"""The HTTP fast path: uvicorn's protocol (``GatewayHttpProtocol``) on a real loopback socket
in front of the real app, driven with raw HTTP/1.1 bytes.

Each test checks which path answered (the connection's cycle is a ``FastCycle`` only on
the fast path), that its answers equal a direct onnxruntime call, and that HTTP framing
(keep-alive, pipelining, HTTP/1.0, chunked bodies, 100-continue, disconnects, graceful
shutdown) behaves as uvicorn's own path does.
"""

from __future__ import annotations

import asyncio
import gzip
import zlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

import numpy as np
import orjson
import pytest
import uvicorn
from uvicorn.server import ServerState

from gateway.app import create_app
from gateway.dataplane.http.fastpath import FastCycle, GatewayHttpProtocol
from gateway.settings import Settings
from tests.gateway.test_app_endpoints import direct, oip

ROWS = np.array([[0.5, -1.0, 0.25, 2.0], [-0.3, 0.8, -1.5, 0.1], [1.2, 0.4, 0.0, -0.7]], np.float32)
DATE = (b"date", b"Fri, 27 Nov 2026 00:00:00 GMT")


@dataclass
class Gateway:
    port: int
    protocols: list[GatewayHttpProtocol]
    state: ServerState

    async def connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        return await asyncio.open_connection("127.0.0.1", self.port)


async def serve(home, keep_alive_s: float = 5.0, **overrides) -> AsyncIterator[Gateway]:
    settings = Settings.from_environ({}, home=str(home), admin_token="secret", max_rows=50)
    app = create_app(settings.with_overrides(max_body_bytes=64 * 1024, **overrides))
    config = uvicorn.Config(
        app,
        http=GatewayHttpProtocol,
        lifespan="off",
        access_log=False,
        log_config=None,
        timeout_keep_alive=keep_alive_s,
    )
    config.load()
    state = ServerState()
    state.default_headers = [DATE, *config.encoded_headers]
    protocols: list[GatewayHttpProtocol] = []

    def make() -> GatewayHttpProtocol:
        protocol = GatewayHttpProtocol(config=config, server_state=state, app_state={})
        protocols.append(protocol)
        return protocol

    async with app.router.lifespan_context(app):
        server = await asyncio.get_running_loop().create_server(make, "127.0.0.1", 0)
        try:
            yield Gateway(server.sockets[0].getsockname()[1], protocols, state)
        finally:
            server.close()
            for protocol in protocols:
                protocol.transport.close()
            await server.wait_closed()


@pytest.fixture
async def gateway(zoo_home) -> AsyncIterator[Gateway]:
    async for running in serve(zoo_home):
        yield running


@pytest.fixture
async def expected(zoo_home) -> dict[str, dict[str, np.ndarray]]:
    return {v: await direct(zoo_home, "clf", v, {"input": ROWS}) for v in ("1.0.0", "1.1.0")}


def post(path: str, body: bytes, *headers: str, version: str = "1.1") -> bytes:
    lines = [f"POST {path} HTTP/{version}", "Host: gw", f"Content-Length: {len(body)}", *headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def infer_body(rows: np.ndarray = ROWS, **extra) -> bytes:
    return orjson.dumps(oip(rows, **extra))


async def read_response(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    status_line, *lines = head.decode("latin-1").split("\r\n")[:-2]
    headers = {}
    for line in lines:
        name, _, value = line.partition(":")
        assert name.lower() not in headers, f"duplicate header {name}"
        headers[name.lower()] = value.strip()
    body = await reader.readexactly(int(headers["content-length"]))
    return int(status_line.split()[1]), headers, body


def assert_outputs(body: bytes, want: dict[str, np.ndarray]) -> None:
    outputs = {o["name"]: o for o in orjson.loads(body)["outputs"]}
    assert outputs["label"]["data"] == want["label"].ravel().tolist()
    np.testing.assert_allclose(
        np.array(outputs["probabilities"]["data"]), want["probabilities"].ravel(), rtol=1e-6
    )


def fast(gateway: Gateway) -> bool:
    """Whether the newest connection's last request took the fast path."""
    return type(gateway.protocols[-1].cycle) is FastCycle


async def test_keep_alive_connection_answers_each_request_on_the_fast_path(gateway, expected):
    reader, writer = await gateway.connect()
    for i in range(20):
        writer.write(post("/v2/models/clf/infer", infer_body(id=f"r{i}")))
        status, headers, body = await read_response(reader)
        assert status == 200 and fast(gateway)
        assert headers["content-type"] == "application/json"
        assert headers["x-model-version"] == "1.0.0" and headers["x-request-id"] == f"r{i}"
        assert headers["date"] == DATE[1].decode() and headers["server"] == "uvicorn"
        assert "connection" not in headers
        assert orjson.loads(body)["id"] == f"r{i}"
        assert_outputs(body, expected["1.0.0"])
    writer.close()


async def test_pinned_headers_and_predict_route_take_the_fast_path(gateway, expected):
    reader, writer = await gateway.connect()
    writer.write(post("/v2/models/clf/versions/1.1.0/infer", infer_body()))
    status, headers, body = await read_response(reader)
    assert (status, headers["x-model-version"]) == (200, "1.1.0") and fast(gateway)
    assert_outputs(body, expected["1.1.0"])
    writer.write(post("/v2/models/clf/infer", infer_body(), "X-Model-Version: 1.1.0"))
    status, headers, body = await read_response(reader)
    assert (status, headers["x-model-version"]) == (200, "1.1.0") and fast(gateway)
    instances = orjson.dumps({"instances": ROWS.tolist()})
    writer.write(post("/predict/clf", instances, "X-Request-Id: mine"))
    status, headers, body = await read_response(reader)
    assert (status, headers["x-request-id"]) == (200, "mine") and fast(gateway)
    assert orjson.loads(body)["predictions"] == expected["1.0.0"]["label"].tolist()
    writer.close()


async def test_pipelined_requests_are_answered_in_order(gateway, expected):
    reader, writer = await gateway.connect()
    writer.write(
        post("/v2/models/clf/infer", infer_body(id="first"))
        + b"GET /v2/health/ready HTTP/1.1\r\nHost: gw\r\nX-Request-Id: second\r\n\r\n"
        + post("/v2/models/clf/versions/1.1.0/infer", infer_body(id="third"))
        + post("/v2/models/nope/infer", infer_body(), "X-Request-Id: fourth")
    )
    answers = [await read_response(reader) for _ in range(4)]
    assert [h["x-request-id"] for _, h, _ in answers] == ["first", "second", "third", "fourth"]
    assert [status for status, _, _ in answers] == [200, 200, 200, 404]
    assert_outputs(answers[0][2], expected["1.0.0"])
    assert_outputs(answers[2][2], expected["1.1.0"])
    assert "unknown model" in orjson.loads(answers[3][2])["error"]
    writer.close()


async def test_http_1_0_and_connection_close_end_the_connection(gateway, expected):
    for request in (
        post("/v2/models/clf/infer", infer_body(), version="1.0"),
        post("/v2/models/clf/infer", infer_body(), "Connection: close"),
    ):
        reader, writer = await gateway.connect()
        writer.write(request)
        status, headers, body = await read_response(reader)
        assert (status, headers["connection"]) == (200, "close") and fast(gateway)
        assert_outputs(body, expected["1.0.0"])
        assert await asyncio.wait_for(reader.read(), 10) == b""  # closed by the server
        writer.close()


async def test_chunked_expect_continue_and_split_bodies_are_all_served(gateway, expected):
    body = infer_body()
    reader, writer = await gateway.connect()
    # chunked: no Content-Length, so uvicorn's own path answers
    head = b"POST /v2/models/clf/infer HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\n\r\n"
    half = len(body) // 2
    chunks = [body[:half], body[half:]]
    writer.write(head + b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in chunks) + b"0\r\n\r\n")
    status, _, answer = await read_response(reader)
    assert status == 200 and not fast(gateway)
    assert_outputs(answer, expected["1.0.0"])
    # Expect: 100-continue: the interim answer first, then the body, then the reply
    writer.write(
        post("/v2/models/clf/infer", b"", "Expect: 100-continue").replace(
            b"Content-Length: 0", f"Content-Length: {len(body)}".encode()
        )
    )
    assert (
        await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        == b"HTTP/1.1 100 Continue\r\n\r\n"
    )
    writer.write(body)
    status, _, answer = await read_response(reader)
    assert status == 200 and not fast(gateway)
    assert_outputs(answer, expected["1.0.0"])
    # a body that arrives in pieces, each its own TCP write, on the fast path
    request = post("/v2/models/clf/infer", body)
    for start in range(0, len(request), 37):
        writer.write(request[start : start + 37])
        await writer.drain()
        await asyncio.sleep(0.002)
    status, _, answer = await read_response(reader)
    assert status == 200 and fast(gateway)
    assert_outputs(answer, expected["1.0.0"])
    writer.close()


async def test_bad_requests_get_json_errors_and_keep_the_connection(gateway, expected):
    reader, writer = await gateway.connect()
    cases = [
        (post("/v2/models/clf/infer", b"{not json"), 400, "not valid JSON", True),
        (post("/v2/models/clf/infer", infer_body(ROWS[:, :3])), 400, "input", True),
        (post("/v2/models/nope/infer", infer_body()), 404, "unknown model", True),
        (post("/v2/models/clf/versions/9.9.9/infer", infer_body()), 404, "9.9.9", True),
        (post("/predict/clf", b'{"instances": []}'), 400, "empty", True),
        # declared too large: the ASGI endpoint refuses it before reading the body
        (post("/v2/models/clf/infer", b"x" * (64 * 1024 + 1)), 413, "exceeds", False),
    ]
    for request, want_status, words, on_fast_path in cases:
        writer.write(request)
        status, headers, body = await read_response(reader)
        assert status == want_status, body
        assert fast(gateway) is on_fast_path
        assert headers["content-type"] == "application/json" and headers["x-request-id"]
        assert words in orjson.loads(body)["error"]
    writer.write(post("/v2/models/clf/infer", infer_body()))
    status, _, body = await read_response(reader)
    assert status == 200 and fast(gateway)
    assert_outputs(body, expected["1.0.0"])
    writer.close()


def decoded(headers: dict[str, str], body: bytes) -> bytes:
    """The body whatever encoding the ASGI endpoint chose for the client's Accept-Encoding."""
    encoding = headers.get("content-encoding", "identity")
    if encoding == "gzip":
        return gzip.decompress(body)
    if encoding == "deflate":
        return zlib.decompress(body)
    return body


@pytest.mark.parametrize(
    ("header", "coding"),
    [
        ("Accept-Encoding: gzip, deflate", "gzip"),
        ("Accept-Encoding: br;q=1.0, GZIP;q=0.5", "gzip"),
        ("Accept-Encoding: deflate", "deflate"),
        ("Accept-Encoding: gzip;q=0", None),
        ("Accept-Encoding: identity", None),
        ("Accept-Encoding: br", None),
    ],
)
async def test_a_client_accepting_compression_is_answered_on_the_fast_path(
    gateway, zoo_home, expected, header, coding
):
    """Most HTTP client libraries send Accept-Encoding by default, so the fast path answers
    them itself: a small reply as it is (with Vary), a large one compressed."""
    many = np.repeat(ROWS, 16, axis=0)  # 48 rows (max_rows is 50): a reply over 1 KiB
    want = await direct(zoo_home, "clf", "1.0.0", {"input": many})
    reader, writer = await gateway.connect()
    for rows, outputs, large in ((ROWS, expected["1.0.0"], False), (many, want, True)):
        writer.write(post("/v2/models/clf/infer", infer_body(rows), header))
        status, headers, body = await read_response(reader)
        assert status == 200 and fast(gateway)
        assert headers.get("vary") == ("accept-encoding" if coding else None)
        assert headers.get("content-encoding") == (coding if large else None)
        assert int(headers["content-length"]) == len(body)
        assert_outputs(decoded(headers, body), outputs)
    writer.close()


@pytest.mark.parametrize("encoding", ["gzip", "identity"])
async def test_a_request_with_a_content_encoding_is_handed_to_the_asgi_endpoint(gateway, encoding):
    body = infer_body()
    if encoding == "gzip":
        body = gzip.compress(body)
    reader, writer = await gateway.connect()
    writer.write(post("/v2/models/clf/infer", body, f"Content-Encoding: {encoding}"))
    status, headers, _ = await read_response(reader)
    # what the endpoint answers is its own business; never a crash, and never the fast path
    assert status < 500 and not fast(gateway)
    assert headers["content-type"] == "application/json" and headers["x-request-id"]
    writer.write(post("/v2/models/clf/infer", infer_body()))  # the connection carries on
    status, _, _ = await read_response(reader)
    assert status == 200 and fast(gateway)
    writer.close()


@pytest.fixture
async def held(zoo_home) -> AsyncIterator[Gateway]:
    """Batching with a 300 ms delay: a lone request waits in its batcher that long."""
    async for running in serve(zoo_home, max_batch_delay_ms=300.0):
        yield running


def clf_batcher(app_protocol: GatewayHttpProtocol):
    route = app_protocol._hot.infer.holder.current.models["clf"]
    return route.primary.batcher


async def test_a_client_gone_mid_batch_strands_nobody(held, expected):
    gone_reader, gone = await held.connect()
    gone.write(post("/v2/models/clf/infer", infer_body(id="gone")))
    await gone.drain()
    await asyncio.sleep(0.05)
    batcher = clf_batcher(held.protocols[0])
    assert batcher.in_flight == 1
    rows_before = batcher.batched_rows
    stays_reader, stays = await held.connect()
    stays.write(post("/v2/models/clf/infer", infer_body(id="stays")))
    await stays.drain()
    await asyncio.sleep(0.05)
    gone.close()  # both requests wait in the same pending batch: one client leaves
    status, headers, body = await read_response(stays_reader)
    assert (status, headers["x-request-id"]) == (200, "stays")
    assert_outputs(body, expected["1.0.0"])
    # the gone client's rows were dropped before the batch ran; nothing is left in flight
    assert batcher.batched_rows - rows_before == len(ROWS)
    assert batcher.in_flight == 0
    stays.close()


async def test_requests_pipelined_behind_a_fast_request_are_queued_then_started(held, expected):
    """uvicorn queues them; when the fast reply is written the fast path starts the next one
    with uvicorn's ``_start_asgi_task`` (absent before uvicorn 0.45: AttributeError)."""
    reader, writer = await held.connect()
    writer.write(
        post("/v2/models/clf/infer", infer_body(id="a"))
        + b"GET /v2/health/live HTTP/1.1\r\nHost: gw\r\nX-Request-Id: b\r\n\r\n"
        + post("/v2/models/clf/versions/1.1.0/infer", infer_body(id="c"))
        + post("/predict/clf", orjson.dumps({"instances": ROWS.tolist()}), "X-Request-Id: d")
    )
    await writer.drain()
    await asyncio.sleep(0.1)
    protocol = held.protocols[-1]
    assert type(protocol._in_flight) is FastCycle  # the first, waiting in its batch
    assert len(protocol.pipeline) == 3  # the others, queued by uvicorn
    answers = [await read_response(reader) for _ in range(4)]
    assert [h["x-request-id"] for _, h, _ in answers] == ["a", "b", "c", "d"]
    assert [status for status, _, _ in answers] == [200] * 4
    assert_outputs(answers[0][2], expected["1.0.0"])
    assert_outputs(answers[2][2], expected["1.1.0"])
    assert orjson.loads(answers[3][2])["predictions"] == expected["1.0.0"]["label"].tolist()
    assert not protocol.pipeline
    writer.close()


async def test_graceful_shutdown_answers_the_request_in_flight_then_closes(held, expected):
    reader, writer = await held.connect()
    writer.write(post("/v2/models/clf/infer", infer_body(id="late")))
    await writer.drain()
    await asyncio.sleep(0.05)
    protocol = held.protocols[-1]
    assert type(protocol.cycle) is FastCycle and not protocol.cycle.response_complete
    protocol.shutdown()  # what uvicorn calls on every connection at shutdown
    status, headers, body = await read_response(reader)
    assert (status, headers["x-request-id"], headers["connection"]) == (200, "late", "close")
    assert_outputs(body, expected["1.0.0"])
    assert await asyncio.wait_for(reader.read(), 10) == b""
    writer.close()


async def test_keep_alive_timeout_closes_only_idle_connections(zoo_home):
    async for gateway in serve(zoo_home, keep_alive_s=0.4):
        busy_reader, busy = await gateway.connect()
        idle_reader, idle = await gateway.connect()
        idle.write(post("/v2/models/clf/infer", infer_body()))
        assert (await read_response(idle_reader))[0] == 200
        started = asyncio.get_running_loop().time()
        for _ in range(8):  # a request every 0.15 s: never idle for 0.4 s
            busy.write(post("/v2/models/clf/infer", infer_body()))
            assert (await read_response(busy_reader))[0] == 200
            await asyncio.sleep(0.15)
        # the idle connection was closed ~0.4 s after its answer; the busy one is still open
        assert await asyncio.wait_for(idle_reader.read(), 1) == b""
        assert asyncio.get_running_loop().time() - started > 1.0
        busy.write(post("/v2/models/clf/infer", infer_body()))
        assert (await read_response(busy_reader))[0] == 200
        assert await asyncio.wait_for(busy_reader.read(), 2) == b""  # then idle: closed too
        busy.close()
        idle.close()
