"""uvicorn's HTTP protocol with the inference requests answered without ASGI.

Measured on the 2-core benchmark machine with wrk at 64 connections: a bare asyncio
protocol with httptools answers ~70,000 req/s, uvicorn with a do-nothing ASGI app ~12,000
(``benchmarks/servers/null_protocol.py``, ``null_asgi.py``). Per request uvicorn builds a
scope, a request/response cycle object with an ``asyncio.Event``, a task running the app,
and two ``send`` messages whose headers it re-validates; that is ~70 µs of one core, more
than modelgate's own work on a small model.

So ``modelgate serve`` runs this subclass of uvicorn's httptools protocol. A request takes
the fast path when it is a plain ``POST`` to an inference URL (``HotPaths``) with a
``Content-Length`` within the body limit, and its connection is not still answering an
earlier request. Its body is collected by the parser callbacks, then the same ``Exchange``
as the ASGI endpoint admits it and submits it to its version's batcher with the request's
``FastCycle`` as the waiter, and the reply is written from the waiter's ``set_result`` (or
``set_exception``) in one write: no task, no await.

Everything else goes through uvicorn and Starlette unchanged: other URLs and methods,
chunked bodies, ``Expect: 100-continue``, a request body with a ``Content-Encoding``, a
root path, a concurrency limit, the access log, an app wrapped in middleware other than
uvicorn's proxy-headers one (so that middleware sees every request), and any request
pipelined behind one still in flight. A client sending ``Accept-Encoding`` (most HTTP
libraries do by default) stays on the fast path: its reply is compressed from
``compression.MIN_COMPRESS`` bytes on, as the ASGI endpoint does.

For uvicorn's own bookkeeping a ``FastCycle`` stands in as the connection's current
cycle (``response_complete``, ``disconnected``, ``keep_alive``), so its pipelining and
graceful shutdown (``keep_alive`` turned off, the connection closed after the reply) work
unchanged. The keep-alive timeout keeps uvicorn's rule with one timer per connection
instead of one per response.

All of this leans on uvicorn internals, listed and checked at start-up in
``uvicorn_contract``: ``http_protocol()`` picks this class only when they all match (and
``MODELGATE_FASTPATH`` is on), else uvicorn's own protocol with one log line saying why.
A connection whose server or app does not qualify runs uvicorn's code unchanged.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol
from weakref import WeakKeyDictionary

from uvicorn.config import Config
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware
from uvicorn.protocols.http.httptools_impl import STATUS_LINE

from gateway.dataplane.codecs.compression import encode_reply, response_coding
from gateway.dataplane.exchange import Exchange, InferenceRoute, Reply
from gateway.dataplane.http.asgi import (
    ACCEPT_ENCODING,
    CONTENT_ENCODING,
    CONTENT_LENGTH,
    scan_headers,
)
from gateway.dataplane.http.coalescing import CoalescingHttpToolsProtocol
from gateway.dataplane.http.uvicorn_contract import (
    TESTED_SERIES,
    contract_problems,
    uvicorn_version,
)
from gateway.dataplane.runner import Outputs

logger = logging.getLogger("modelgate.fastpath")

_CLOSE = b"connection: close\r\n"
# uvicorn's name for its own httptools protocol (``--http httptools``)
PLAIN_PROTOCOL = "httptools"


class HotPaths(Protocol):
    """``gateway.routes.HotPaths``: a raw request target's endpoint and path parameters."""

    def match_url(self, url: bytes) -> tuple[Any, dict[str, str]] | None: ...


class _NoEvent:
    """uvicorn sets its cycle's ``message_event`` on disconnect; nothing waits on ours."""

    __slots__ = ()

    def set(self) -> None:
        return None


class FastCycle(Exchange):
    """One fast-path request: its ``Exchange``, the batcher's waiter and, for uvicorn, the
    connection's cycle (one object per request)."""

    __slots__ = ("protocol", "keep_alive", "response_complete", "disconnected", "chunks")

    message_event = _NoEvent()

    def __init__(
        self,
        protocol: GatewayHttpProtocol,
        route_def: InferenceRoute,
        found: list[bytes | None],
        params: dict[str, str],
        keep_alive: bool,
    ) -> None:
        super().__init__(route_def, found, params)
        self.protocol = protocol
        self.keep_alive = keep_alive
        self.response_complete = False
        self.disconnected = False
        self.chunks: list[bytes] = []

    # the batcher's Waiter interface
    def done(self) -> bool:
        return self.response_complete or self.disconnected

    def set_result(self, outputs: Outputs) -> None:
        try:
            reply = self.answer(outputs)
        except Exception as exc:
            reply = self.refuse(exc)
        self.protocol.send_fast_reply(self, reply)

    def set_exception(self, exception: BaseException) -> None:
        self.protocol.send_fast_reply(self, self.refuse(exception))


class GatewayHttpProtocol(CoalescingHttpToolsProtocol):
    """``CoalescingHttpToolsProtocol`` plus the fast path for inference requests."""

    # None: this connection runs uvicorn's code unchanged (``fast_path_of``)
    _hot: HotPaths | None = None
    _in_flight: FastCycle | None = None
    _idle_since: float | None = None

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        self._hot = fast_path_of(self.config)
        self._in_flight = None
        self._idle_since = None

    def connection_lost(self, exc: Exception | None) -> None:
        if self._hot is not None:
            in_flight = self._in_flight
            if in_flight is not None:
                in_flight.disconnected = True
                self._in_flight = None
            timer = self.timeout_keep_alive_task
            if timer is not None:
                timer.cancel()
                self.timeout_keep_alive_task = None
        super().connection_lost(exc)

    # keep-alive: uvicorn arms a timer after every response and cancels it on the next
    # request's data (a timer handle made and destroyed per request). Here the timer stays
    # armed and re-checks how long the connection has been idle when it fires; the rule is
    # unchanged: closed after ``timeout_keep_alive`` seconds without data after a response.
    def _unset_keepalive_if_required(self) -> None:
        if self._hot is None:
            super()._unset_keepalive_if_required()
        else:
            self._idle_since = None

    def on_response_complete(self) -> None:
        if self._hot is None:
            super().on_response_complete()
            return
        self.server_state.total_requests += 1
        if self.transport.is_closing():
            return
        self.flow.resume_reading()
        if self.pipeline:
            cycle, app = self.pipeline.pop()
            self._start_asgi_task(cycle, app)
            return
        self._idle_since = self.loop.time()
        if self.timeout_keep_alive_task is None:
            self.timeout_keep_alive_task = self.loop.call_later(
                self.timeout_keep_alive, self._keep_alive_check
            )

    def _keep_alive_check(self) -> None:
        self.timeout_keep_alive_task = None
        idle_since = self._idle_since
        if idle_since is None:
            return  # answering a request: its response re-arms the timer
        remaining = idle_since + self.timeout_keep_alive - self.loop.time()
        if remaining <= 0:
            self.timeout_keep_alive_handler()
        else:
            self.timeout_keep_alive_task = self.loop.call_later(remaining, self._keep_alive_check)

    # parser callbacks
    def on_message_begin(self) -> None:
        # uvicorn builds the request's ASGI scope here; a fast-path request needs none, so
        # it is built in on_headers_complete for the requests that go through ASGI
        if self._hot is None:
            super().on_message_begin()
            return
        self.url = b""
        self.expect_100_continue = False
        self.headers = []

    def on_headers_complete(self) -> None:
        hot = self._hot
        if hot is None:
            super().on_headers_complete()
            return
        # a reply written inside feed_data has marked the connection idle already
        self._idle_since = None
        if not self._start_fast(hot):
            self._begin_asgi()
            super().on_headers_complete()

    def _begin_asgi(self) -> None:
        """uvicorn's ``on_message_begin``, run late: the scope around what was parsed."""
        url, headers, expect = self.url, self.headers, self.expect_100_continue
        super().on_message_begin()
        self.url, self.expect_100_continue = url, expect
        self.headers = self.scope["headers"] = headers

    # ``self.cycle`` is typed as uvicorn's cycle; read as ``object`` it can be narrowed
    def on_body(self, body: bytes) -> None:
        cycle: object = self.cycle
        if type(cycle) is FastCycle:
            cycle.chunks.append(body)
        else:
            super().on_body(body)

    def on_message_complete(self) -> None:
        cycle: object = self.cycle
        if type(cycle) is not FastCycle:
            super().on_message_complete()
            return
        body = b"".join(cycle.chunks)
        cycle.chunks = []
        self._in_flight = cycle
        try:
            batcher = cycle.admit(body).batcher
            request = cycle.request
            batcher.submit(request.feeds, request.n_rows, cycle)
        except Exception as exc:
            cycle.set_exception(exc)

    # the fast path
    def _start_fast(self, hot: HotPaths) -> bool:
        """Take the request just parsed up to its headers, if it qualifies."""
        parser = self.parser
        if parser.get_method() != b"POST" or self.expect_100_continue:
            return False
        current = self.cycle
        if current is not None and not current.response_complete:
            return False  # pipelined behind a request in flight: uvicorn queues it
        matched = hot.match_url(self.url)
        if matched is None:
            return False
        endpoint, params = matched
        found = scan_headers(self.headers)
        length = found[CONTENT_LENGTH]
        if length is None or not length.isdigit() or int(length) > endpoint.max_body:
            return False  # chunked, or too large: the ASGI endpoint answers (413 early)
        if found[CONTENT_ENCODING] is not None:
            return False  # a coded body: the ASGI endpoint decodes it (off the loop when large)
        if parser.should_upgrade():
            return False
        keep_alive = parser.get_http_version() != "1.0" and parser.should_keep_alive()
        # a stand-in for uvicorn's cycle (the attributes it reads), not a subclass of it
        self.cycle = FastCycle(  # type: ignore[assignment]
            self, endpoint, found, params, keep_alive
        )
        return True

    def send_fast_reply(self, cycle: FastCycle, reply: Reply) -> None:
        """Write ``reply`` as one HTTP response, then let uvicorn start what comes next."""
        if cycle.response_complete:
            return
        cycle.response_complete = True
        if self._in_flight is cycle:
            self._in_flight = None
        if cycle.disconnected or self.transport.is_closing():
            return
        status, payload, headers = reply
        accept = cycle.found[ACCEPT_ENCODING]
        if accept is not None:
            # most HTTP client libraries send Accept-Encoding by default: answer them here,
            # compressed from MIN_COMPRESS bytes on, as the ASGI endpoint does
            coding = response_coding(accept)
            if coding is not None:
                payload, headers = encode_reply(payload, list(headers), coding)
        parts = [STATUS_LINE[status], _default_headers(self.server_state.default_headers)]
        for name, value in headers:
            parts += (name, b": ", value, b"\r\n")
        parts.append(b"content-length: %d\r\n" % len(payload))
        if not cycle.keep_alive:
            parts.append(_CLOSE)
        parts += (b"\r\n", payload)
        self.transport.write(b"".join(parts))
        if not cycle.keep_alive:
            self.transport.close()
        self.on_response_complete()


def http_protocol(fastpath: bool) -> type[GatewayHttpProtocol] | str:
    """uvicorn's ``http`` setting: ``GatewayHttpProtocol`` when ``fastpath`` is on and the
    installed uvicorn provides everything it relies on, else uvicorn's own protocol (with
    one log line saying why)."""
    if not fastpath:
        logger.info("HTTP fast path off (MODELGATE_FASTPATH=off): %s", _PLAIN)
        return PLAIN_PROTOCOL
    problems = contract_problems()
    if problems:
        logger.warning("HTTP fast path off: %s; %s", _mismatch(problems), _PLAIN)
        return PLAIN_PROTOCOL
    return GatewayHttpProtocol


_PLAIN = "every request goes through uvicorn's own protocol and the ASGI app"


def _mismatch(problems: tuple[str, ...]) -> str:
    return (
        f"uvicorn {uvicorn_version()} lacks what it relies on (checked with "
        f"uvicorn{TESTED_SERIES}): {'; '.join(problems)}"
    )


# per server (uvicorn config): its HotPaths, or None when its connections run uvicorn's code
_decided: WeakKeyDictionary[Config, HotPaths | None] = WeakKeyDictionary()


def fast_path_of(config: Config) -> HotPaths | None:
    """The ``HotPaths`` of the server's app when its requests may take the fast path, else
    None; decided once per server, with one log line saying why not."""
    try:
        return _decided[config]
    except KeyError:
        pass
    problems = contract_problems()
    reason: str | None
    if problems:
        hot, reason, level = None, _mismatch(problems), logging.WARNING
    else:
        hot, reason = _server_decision(config)
        level = logging.INFO
    if reason is not None:
        logger.log(level, "HTTP fast path off: %s; every request goes through ASGI", reason)
    _decided[config] = hot
    return hot


def _server_decision(config: Config) -> tuple[HotPaths | None, str | None]:
    # the fast path writes no access log and keeps no concurrency count
    if config.root_path:
        return None, f"a root path is set ({config.root_path})"
    if config.limit_concurrency is not None:
        return None, "a concurrency limit is set"
    if config.access_log:
        return None, "the access log is on"
    return hot_paths_of(config.loaded_app)


def hot_paths_of(app: Any) -> tuple[HotPaths | None, str | None]:
    """The ``HotPaths`` of modelgate's app under uvicorn's proxy-headers wrapper; or None and
    why not: any other wrapper must see every request, so they all go through it."""
    inner = app
    while type(inner) is ProxyHeadersMiddleware:
        inner = inner.app
    hot = getattr(inner, "hot", None)
    if hot is None:
        name = f"{type(inner).__module__}.{type(inner).__qualname__}"
        return None, f"the app given to uvicorn is {name}, not modelgate's own app"
    gateway = getattr(getattr(inner, "state", None), "gateway", None)
    if not getattr(getattr(gateway, "settings", None), "fastpath", True):
        return None, "MODELGATE_FASTPATH=off"
    return hot, None


_default_cache: tuple[list[tuple[bytes, bytes]] | None, bytes] = (None, b"")


def _default_headers(headers: list[tuple[bytes, bytes]]) -> bytes:
    """uvicorn's default headers (server, date) as bytes; uvicorn replaces the list when the
    date changes, so the encoding is redone about once a second."""
    global _default_cache
    source, encoded = _default_cache
    if source is not headers:
        encoded = b"".join(name + b": " + value + b"\r\n" for name, value in headers)
        _default_cache = (headers, encoded)
    return encoded
