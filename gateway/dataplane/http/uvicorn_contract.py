"""The uvicorn internals the HTTP fast path relies on, checked once at start-up.

``http.fastpath.GatewayHttpProtocol`` subclasses uvicorn's private httptools protocol:
it replaces some of its methods, calls others and reads its per-connection state. None
of that is uvicorn's public API, so ``CONTRACT`` lists every piece declaratively and
``contract_problems()`` checks them against the installed uvicorn: a name that is gone,
a method that no longer takes the arguments passed to it, an attribute no longer set
where it was, a method no longer calling what an override of ours depends on, or a method
we replace (or whose caller may meet our stand-in cycle) now doing something ours does
not know about. Any problem turns the fast path off (``http.fastpath.http_protocol``):
every request then goes through uvicorn's own protocol and the ASGI app.

The checks read names in the bytecode (``co_names``, ``STORE_ATTR``) of uvicorn's
functions: a few milliseconds, once per process. ``docs/fastpath.md`` says how to
re-check an upgrade.
"""

from __future__ import annotations

import dis
import importlib
import inspect
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from types import CodeType
from typing import Any

# the uvicorn releases this contract was checked against (pyproject.toml pins the same)
TESTED_SERIES = ">=0.45,<0.56"

HTTPTOOLS = "uvicorn.protocols.http.httptools_impl"
PROTOCOL = f"{HTTPTOOLS}:HttpToolsProtocol"
CYCLE = f"{HTTPTOOLS}:RequestResponseCycle"

Resolve = Callable[[str], Any]


class Missing(LookupError):
    """A target of the contract cannot be found."""


def import_target(target: str) -> Any:
    """``"package.module:Class.attr"`` -> the object; ``Missing`` naming what is absent."""
    module_name, _, qualname = target.partition(":")
    try:
        found: Any = importlib.import_module(module_name)
    except ImportError:
        raise Missing(f"{module_name} is missing") from None
    for part in qualname.split(".") if qualname else ():
        try:
            found = inspect.getattr_static(found, part)
        except AttributeError:
            raise Missing(f"{short(target)} is missing") from None
    return found


def short(target: str) -> str:
    """A target named from its module's last part: ``"pkg.mod:Cls.x"`` -> ``"mod.Cls.x"``."""
    module_name, _, qualname = target.partition(":")
    return f"{module_name.rpartition('.')[2]}.{qualname}" if qualname else module_name


def _last(target: str) -> str:
    return target.rpartition(":")[2].rpartition(".")[2]


def _code(obj: Any, target: str) -> CodeType:
    function = obj.__func__ if isinstance(obj, (staticmethod, classmethod)) else obj
    code = getattr(function, "__code__", None)
    if code is None:
        raise Missing(f"{short(target)} is no longer a Python function")
    return code


def _codes(code: CodeType) -> Iterator[CodeType]:
    """``code`` and the code of the functions and comprehensions nested in it."""
    yield code
    for const in code.co_consts:
        if isinstance(const, CodeType):
            yield from _codes(const)


def _names(code: CodeType) -> set[str]:
    return {name for inner in _codes(code) for name in inner.co_names}


def _stored_attributes(code: CodeType) -> set[str]:
    return {
        ins.argval
        for inner in _codes(code)
        for ins in dis.get_instructions(inner)
        if ins.opname == "STORE_ATTR"
    }


@dataclass(frozen=True, slots=True)
class Exists:
    """A module-level name, class or method that must be there."""

    target: str
    why: str

    def problem(self, resolve: Resolve) -> str | None:
        resolve(self.target)
        return None

    def covers(self) -> set[str]:
        return {_last(self.target)}


@dataclass(frozen=True, slots=True)
class Accepts:
    """A method called (or overridden and called through ``super()``) with these arguments."""

    target: str
    args: tuple[str, ...]
    why: str

    def problem(self, resolve: Resolve) -> str | None:
        function = resolve(self.target)
        try:
            signature = inspect.signature(function)
        except (TypeError, ValueError):
            return f"{short(self.target)} has no readable signature"
        try:
            signature.bind(None, *self.args)  # None stands for self
        except TypeError:
            return f"{short(self.target)}{signature} no longer accepts ({', '.join(self.args)})"
        return None

    def covers(self) -> set[str]:
        return {_last(self.target)}


@dataclass(frozen=True, slots=True)
class Sets:
    """Instance attributes a method must still assign (``self.name = ...``)."""

    target: str
    attributes: tuple[str, ...]
    why: str

    def problem(self, resolve: Resolve) -> str | None:
        stored = _stored_attributes(_code(resolve(self.target), self.target))
        gone = [name for name in self.attributes if name not in stored]
        if gone:
            return f"{short(self.target)} no longer sets {', '.join(gone)}"
        return None

    def covers(self) -> set[str]:
        return {_last(self.target), *self.attributes}


@dataclass(frozen=True, slots=True)
class Uses:
    """Names a method must still refer to: what one of our overrides counts on it doing."""

    target: str
    required: tuple[str, ...]
    why: str

    def problem(self, resolve: Resolve) -> str | None:
        names = _names(_code(resolve(self.target), self.target))
        gone = [name for name in self.required if name not in names]
        if gone:
            return f"{short(self.target)} no longer uses {', '.join(gone)}"
        return None

    def covers(self) -> set[str]:
        return {_last(self.target), *self.required}


@dataclass(frozen=True, slots=True)
class UsesOnly:
    """A method we replace, or that may meet a ``FastCycle``: every name it refers to must be
    one ours knows about (anything new is behaviour the fast path would miss)."""

    target: str
    known: frozenset[str]
    why: str

    def problem(self, resolve: Resolve) -> str | None:
        new = sorted(_names(_code(resolve(self.target), self.target)) - self.known)
        if new:
            return f"{short(self.target)} now also uses {', '.join(new)}"
        return None

    def covers(self) -> set[str]:
        return {_last(self.target)}


@dataclass(frozen=True, slots=True)
class StatusLines:
    """``STATUS_LINE``: the encoded status line of every status code."""

    target: str
    why: str

    def problem(self, resolve: Resolve) -> str | None:
        lines = resolve(self.target)
        get = getattr(lines, "get", None)
        if get is None or get(200) != b"HTTP/1.1 200 OK\r\n":
            return f"{short(self.target)} no longer maps 200 to b'HTTP/1.1 200 OK\\r\\n'"
        if not all(isinstance(get(code), bytes) for code in range(100, 600)):
            return f"{short(self.target)} no longer covers every status from 100 to 599"
        return None

    def covers(self) -> set[str]:
        return {_last(self.target)}


Requirement = Exists | Accepts | Sets | Uses | UsesOnly | StatusLines

# what uvicorn's on_message_begin may touch: the three per-request fields the fast path
# resets itself, and the ASGI scope, built later (``_begin_asgi``) for requests it declines
_MESSAGE_BEGIN = frozenset(
    {"url", "expect_100_continue", "headers", "scope", "asgi_version", "config", "server"}
    | {"client", "scheme", "root_path", "app_state", "copy"}
)
# what uvicorn's on_response_complete does; the fast path's replacement does the same
# with one keep-alive timer per connection
_RESPONSE_COMPLETE = frozenset(
    {"server_state", "total_requests", "transport", "is_closing", "flow", "resume_reading"}
    | {"_unset_keepalive_if_required", "pipeline", "pop", "_start_asgi_task"}
    | {"timeout_keep_alive_task", "loop", "call_later", "timeout_keep_alive"}
    | {"timeout_keep_alive_handler"}
)
# uvicorn's connection_lost and shutdown may meet a FastCycle as ``self.cycle``: they may
# use only the cycle fields it has (response_complete, disconnected, keep_alive,
# message_event)
_CONNECTION_LOST = frozenset(
    {"connections", "discard", "logger", "level", "TRACE_LOG_LEVEL", "client", "log"}
    | {"cycle", "response_complete", "disconnected", "message_event", "set", "flow"}
    | {"resume_writing", "transport", "close", "_unset_keepalive_if_required", "parser"}
)
_SHUTDOWN = frozenset({"cycle", "response_complete", "transport", "close", "keep_alive"})

CONTRACT: tuple[Requirement, ...] = (
    StatusLines(f"{HTTPTOOLS}:STATUS_LINE", "fast-path replies start with uvicorn's lines"),
    Exists(PROTOCOL, "the base class of the fast path and of the one-write transport"),
    Exists(CYCLE, "FastCycle stands in for it as the connection's cycle"),
    Sets(
        f"{PROTOCOL}.__init__",
        ("config", "loop", "parser", "timeout_keep_alive_task", "timeout_keep_alive")
        + ("server_state", "pipeline", "cycle", "transport", "flow", "headers")
        + ("expect_100_continue", "scope"),
        "per-connection state the fast path reads and writes",
    ),
    Sets(f"{PROTOCOL}.connection_made", ("transport", "flow"), "set per connection"),
    Sets(
        f"{PROTOCOL}.on_message_begin",
        ("url", "expect_100_continue", "headers", "scope"),
        "the per-request state the fast path resets instead",
    ),
    UsesOnly(f"{PROTOCOL}.on_message_begin", _MESSAGE_BEGIN, "replaced on the fast path"),
    Accepts(f"{PROTOCOL}.connection_made", ("transport",), "extended (transport wrapped)"),
    Accepts(f"{PROTOCOL}.connection_lost", ("exc",), "extended"),
    UsesOnly(f"{PROTOCOL}.connection_lost", _CONNECTION_LOST, "may meet a FastCycle"),
    Accepts(f"{PROTOCOL}.shutdown", (), "graceful shutdown, unchanged"),
    UsesOnly(f"{PROTOCOL}.shutdown", _SHUTDOWN, "may meet a FastCycle"),
    Accepts(f"{PROTOCOL}._unset_keepalive_if_required", (), "overridden: 'data arrived'"),
    Uses(
        f"{PROTOCOL}.data_received",
        ("_unset_keepalive_if_required", "parser", "feed_data"),
        "the override above must run on every data arrival",
    ),
    Accepts(f"{PROTOCOL}.on_response_complete", (), "replaced"),
    UsesOnly(f"{PROTOCOL}.on_response_complete", _RESPONSE_COMPLETE, "replaced"),
    Accepts(f"{PROTOCOL}.on_headers_complete", (), "called for requests sent to ASGI"),
    Uses(
        f"{PROTOCOL}.on_headers_complete",
        ("url", "scope", "expect_100_continue", "cycle", "response_complete")
        + ("on_response_complete", "pipeline", "_start_asgi_task"),
        "it reads what _begin_asgi restores, queues behind a FastCycle, and its ASGI "
        "cycles call our on_response_complete",
    ),
    Accepts(f"{PROTOCOL}.on_body", ("body",), "called for requests sent to ASGI"),
    Accepts(f"{PROTOCOL}.on_message_complete", (), "called for requests sent to ASGI"),
    Accepts(f"{PROTOCOL}._start_asgi_task", ("cycle", "app"), "starts a pipelined request"),
    Accepts(f"{PROTOCOL}.timeout_keep_alive_handler", (), "closes an idle connection"),
    Sets(
        f"{CYCLE}.__init__",
        ("response_complete", "disconnected", "keep_alive", "message_event"),
        "the cycle fields FastCycle mirrors",
    ),
    Accepts("uvicorn.protocols.http.flow_control:FlowControl.resume_reading", (), "called"),
    Sets("uvicorn.server:ServerState.__init__", ("total_requests", "default_headers"), "read"),
    Sets(
        "uvicorn.server:Server.on_tick",
        ("default_headers",),
        "a new list when the date changes: the fast path caches their encoding per list",
    ),
    Sets(
        "uvicorn.config:Config.__init__",
        ("root_path", "limit_concurrency", "access_log"),
        "no fast path with a root path, a concurrency limit or an access log",
    ),
    Sets("uvicorn.config:Config.load", ("loaded_app",), "the app, unwrapped to find HotPaths"),
    Sets(
        "uvicorn.middleware.proxy_headers:ProxyHeadersMiddleware.__init__",
        ("app",),
        "uvicorn's own wrapper, looked through to find modelgate's app",
    ),
    Exists("httptools:HttpRequestParser.get_method", "parser (public httptools API)"),
    Exists("httptools:HttpRequestParser.get_http_version", "parser (public httptools API)"),
    Exists("httptools:HttpRequestParser.should_keep_alive", "parser (public httptools API)"),
    Exists("httptools:HttpRequestParser.should_upgrade", "parser (public httptools API)"),
)


def check(
    requirements: tuple[Requirement, ...] = CONTRACT, resolve: Resolve = import_target
) -> list[str]:
    """What in ``requirements`` the installed packages no longer provide (empty: all)."""
    problems: list[str] = []
    for requirement in requirements:
        try:
            problem = requirement.problem(resolve)
        except Missing as exc:
            problem = str(exc)
        if problem is not None and problem not in problems:
            problems.append(problem)
    return problems


@lru_cache(maxsize=1)
def contract_problems() -> tuple[str, ...]:
    """``check()`` of ``CONTRACT`` against the installed uvicorn, once per process."""
    return tuple(check())


def uvicorn_version() -> str:
    import uvicorn

    return str(getattr(uvicorn, "__version__", "?"))
