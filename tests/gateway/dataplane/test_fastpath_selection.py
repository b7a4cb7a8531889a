"""Which HTTP protocol serves, on real uvicorn servers over loopback: the fast path by
default, uvicorn's own protocol with ``MODELGATE_FASTPATH=off`` or when the installed
uvicorn differs from the contract (one warning line), and ASGI for an app wrapped in
middleware that is not uvicorn's, so that middleware sees every request."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import numpy as np
import orjson
import pytest
import uvicorn
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import Request
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from gateway.app import create_app
from gateway.cli.serve_command import uvicorn_options
from gateway.dataplane.http.fastpath import FastCycle, GatewayHttpProtocol
from gateway.settings import Settings, SettingsError
from tests.gateway.dataplane.test_http_fastpath import (
    ROWS,
    assert_outputs,
    decoded,
    infer_body,
    post,
    read_response,
)
from tests.gateway.test_app_endpoints import direct
from tests.support.gateway_process import GatewayProcess

FASTPATH_LOGGER = "modelgate.fastpath"


@pytest.fixture
async def expected(zoo_home) -> dict[str, dict[str, np.ndarray]]:
    return {v: await direct(zoo_home, "clf", v, {"input": ROWS}) for v in ("1.0.0", "1.1.0")}


def settings_for(home, **environ: str) -> Settings:
    return Settings.from_environ({"MODELGATE_ADMIN_TOKEN": "secret", **environ}, home=str(home))


@asynccontextmanager
async def uvicorn_server(app: Any, options: dict[str, Any]) -> AsyncIterator[tuple[Any, int]]:
    """uvicorn's own ``Server`` with ``modelgate serve``'s options, on a free loopback port."""
    config = uvicorn.Config(app, **{**options, "port": 0, "log_config": None})
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    for _ in range(600):
        if server.started or task.done():
            break
        await asyncio.sleep(0.05)
    if task.done():
        task.result()
    assert server.started
    try:
        yield server, server.servers[0].sockets[0].getsockname()[1]
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 30)


def fastpath_lines(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == FASTPATH_LOGGER]


@pytest.mark.parametrize(
    ("value", "wanted"), [("on", True), ("OFF", False), ("off", False), ("1", True)]
)
def test_the_fastpath_setting_is_a_switch(tmp_path, value, wanted):
    settings = settings_for(tmp_path, MODELGATE_FASTPATH=value)
    assert settings.fastpath is wanted
    assert settings.to_environ()["MODELGATE_FASTPATH"] == ("on" if wanted else "off")
    assert settings_for(tmp_path).fastpath is True  # the default
    with pytest.raises(SettingsError, match="MODELGATE_FASTPATH"):
        settings_for(tmp_path, MODELGATE_FASTPATH="sometimes")


@pytest.mark.parametrize(
    ("switch", "protocol_class", "on_fast_path"),
    [("on", GatewayHttpProtocol, True), ("off", HttpToolsProtocol, False)],
)
async def test_the_switch_picks_the_protocol_serve_runs(
    zoo_home, expected, caplog, switch, protocol_class, on_fast_path
):
    caplog.set_level(logging.INFO, FASTPATH_LOGGER)
    settings = settings_for(zoo_home, MODELGATE_FASTPATH=switch)
    options = uvicorn_options(settings)
    async with uvicorn_server(create_app(settings), options) as (server, port):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        for version in ("1.0.0", "1.1.0"):
            writer.write(post(f"/v2/models/clf/versions/{version}/infer", infer_body()))
            status, headers, body = await read_response(reader)
            assert (status, headers["x-model-version"]) == (200, version)
            assert_outputs(body, expected[version])
        (protocol,) = server.server_state.connections
        assert type(protocol) is protocol_class
        assert (type(protocol.cycle) is FastCycle) is on_fast_path
        writer.close()
    lines = [r.getMessage() for r in fastpath_lines(caplog)]
    if on_fast_path:
        assert lines == []
    else:
        assert len(lines) == 1 and "MODELGATE_FASTPATH=off" in lines[0]


class Counting:
    """An embedder's plain ASGI middleware: records the path of every HTTP request."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.paths: list[str] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            self.paths.append(scope["path"])
        await self.app(scope, receive, send)


async def tag(request: Request, call_next: Any) -> Any:
    response = await call_next(request)
    response.headers["x-tagged"] = request.url.path
    return response


@pytest.mark.parametrize("kind", ["asgi", "starlette"])
async def test_middleware_around_the_app_sees_every_inference_request(
    zoo_home, expected, caplog, kind
):
    caplog.set_level(logging.INFO, FASTPATH_LOGGER)
    settings = settings_for(zoo_home)
    gateway = create_app(settings)
    counting = Counting(gateway)
    app = counting if kind == "asgi" else BaseHTTPMiddleware(counting, dispatch=tag)
    paths = ["/v2/models/clf/infer", "/v2/models/clf/versions/1.1.0/infer", "/predict/clf"]
    async with uvicorn_server(app, uvicorn_options(settings)) as (server, port):
        for _ in range(2):  # two connections, one decision
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            for path in paths:
                instances = {"instances": ROWS.tolist()}
                body = infer_body() if "infer" in path else orjson.dumps(instances)
                writer.write(post(path, body))
                status, headers, answer = await read_response(reader)
                assert status == 200
                if kind == "starlette":
                    assert headers["x-tagged"] == path
                if path.endswith("1.1.0/infer"):
                    assert_outputs(answer, expected["1.1.0"])
                elif path.startswith("/v2"):
                    assert_outputs(answer, expected["1.0.0"])
                else:
                    labels = expected["1.0.0"]["label"].tolist()
                    assert orjson.loads(answer)["predictions"] == labels
            protocol = next(iter(server.server_state.connections))
            assert type(protocol) is GatewayHttpProtocol and type(protocol.cycle) is not FastCycle
            writer.close()
            await writer.wait_closed()
    assert counting.paths == paths * 2
    lines = [r.getMessage() for r in fastpath_lines(caplog)]
    assert len(lines) == 1
    wrapper = "Counting" if kind == "asgi" else "BaseHTTPMiddleware"
    assert f"{wrapper}, not modelgate's own app" in lines[0]


# loaded by the server's interpreter at start (sitecustomize): uvicorn's data_received no
# longer calls _unset_keepalive_if_required itself, as a refactored uvicorn might; uvicorn's
# own protocol still works, the fast path's keep-alive override would no longer run
SIMULATED_UVICORN_CHANGE = """
from uvicorn.protocols.http import httptools_impl

_original = httptools_impl.HttpToolsProtocol.data_received


def data_received(self, data):
    _original(self, data)


httptools_impl.HttpToolsProtocol.data_received = data_received
"""


async def test_a_uvicorn_that_differs_is_served_plainly_with_one_warning(
    zoo_home, tmp_path, expected
):
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(SIMULATED_UVICORN_CHANGE)
    pythonpath = os.pathsep.join([str(site), *filter(None, [os.environ.get("PYTHONPATH")])])
    log = tmp_path / "server.log"
    server = GatewayProcess(zoo_home, log, env={"PYTHONPATH": pythonpath})
    try:
        await asyncio.to_thread(server.wait_ready)
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        # one at a time, then pipelined (plain uvicorn queues them)
        writer.write(post("/v2/models/clf/infer", infer_body(id="one")))
        status, headers, body = await read_response(reader)
        assert (status, headers["x-request-id"]) == (200, "one")
        assert_outputs(body, expected["1.0.0"])
        writer.write(
            post("/v2/models/clf/versions/1.1.0/infer", infer_body(id="two"))
            + b"GET /v2/health/live HTTP/1.1\r\nHost: gw\r\nX-Request-Id: three\r\n\r\n"
            + post("/v2/models/clf/infer", infer_body(id="four"), "Accept-Encoding: gzip")
        )
        answers = [await read_response(reader) for _ in range(3)]
        assert [h["x-request-id"] for _, h, _ in answers] == ["two", "three", "four"]
        assert [s for s, _, _ in answers] == [200, 200, 200]
        assert_outputs(answers[0][2], expected["1.1.0"])
        assert_outputs(decoded(answers[2][1], answers[2][2]), expected["1.0.0"])
        writer.close()
    finally:
        server.stop()
    lines = [line for line in log.read_text().splitlines() if "fast path" in line]
    assert len(lines) == 1, log.read_text()
    assert lines[0].startswith("WARNING")
    assert "data_received no longer uses _unset_keepalive_if_required" in lines[0]
    assert "uvicorn's own protocol" in lines[0]
