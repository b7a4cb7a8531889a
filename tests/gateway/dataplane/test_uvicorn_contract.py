"""The uvicorn internals the HTTP fast path relies on (``uvicorn_contract``).

One test per internal against the installed uvicorn, so an upgrade that removes or changes
one fails with its name; a check that the contract lists every uvicorn name the fast-path
code touches (and that docs/fastpath.md names them all); and the check run against
protocol classes with a method removed or changed, as a refactored uvicorn would have.
"""

from __future__ import annotations

import asyncio
import dis
import inspect
import re
import tomllib
from pathlib import Path
from types import CodeType
from typing import Any

import pytest
from uvicorn.config import Config
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware
from uvicorn.protocols.http.flow_control import FlowControl
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle
from uvicorn.server import ServerState

from gateway.dataplane.http import coalescing as transport
from gateway.dataplane.http import fastpath as http_fastpath
from gateway.dataplane.http.uvicorn_contract import (
    CONTRACT,
    PROTOCOL,
    TESTED_SERIES,
    Exists,
    Missing,
    Requirement,
    StatusLines,
    check,
    contract_problems,
    import_target,
    short,
)

ROOT = Path(__file__).parents[3]
DOC = ROOT / "docs" / "fastpath.md"


def _label(requirement: Requirement) -> str:
    return f"{type(requirement).__name__}:{short(requirement.target)}"


@pytest.mark.parametrize("requirement", CONTRACT, ids=_label)
def test_the_installed_uvicorn_provides(requirement):
    assert check((requirement,)) == [], requirement.why


def test_the_installed_uvicorn_passes_the_start_up_check():
    assert contract_problems() == ()


def test_pyproject_pins_the_series_the_contract_was_checked_with():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert f"uvicorn{TESTED_SERIES}" in project["dependencies"]


def _codes(code: CodeType) -> list[CodeType]:
    nested = [c for const in code.co_consts if isinstance(const, CodeType) for c in _codes(const)]
    return [code, *nested]


def _names_used(*owners: Any) -> set[str]:
    names: set[str] = set()
    for owner in owners:
        for value in vars(owner).values():
            function = getattr(value, "__code__", None)
            if function is not None:
                names |= {n for code in _codes(function) for n in code.co_names}
    return names


def _surface(cls: type) -> set[str]:
    """Every name a uvicorn class offers: its attributes and the ones its methods assign."""
    stored = set()
    for klass in cls.__mro__:
        for value in vars(klass).values():
            code = getattr(value, "__code__", None)
            if code is not None:
                stored |= {
                    ins.argval
                    for c in _codes(code)
                    for ins in dis.get_instructions(c)
                    if ins.opname == "STORE_ATTR"
                }
    return (set(dir(cls)) | stored) - set(dir(object)) - set(dir(asyncio.BaseProtocol))


def test_the_contract_lists_every_uvicorn_name_the_fast_path_touches():
    """A new use of a uvicorn internal in the fast path must be added to the contract."""
    fast_path_functions = [
        http_fastpath.http_protocol,
        http_fastpath.fast_path_of,
        http_fastpath._server_decision,
        http_fastpath.hot_paths_of,
        http_fastpath._default_headers,
    ]
    used = _names_used(
        http_fastpath.GatewayHttpProtocol,
        http_fastpath.FastCycle,
        transport.CoalescingHttpToolsProtocol,
    )
    for function in fast_path_functions:
        used |= {n for code in _codes(function.__code__) for n in code.co_names}
    uvicorn_names = set().union(
        *(
            _surface(cls)
            for cls in (
                HttpToolsProtocol,
                RequestResponseCycle,
                ServerState,
                Config,
                FlowControl,
                ProxyHeadersMiddleware,
            )
        )
    )
    covered = set().union(*(requirement.covers() for requirement in CONTRACT))
    # names of our own that uvicorn's classes happen to have too: http_fastpath's logger
    ours = {"logger"}
    missing = sorted((used & uvicorn_names) - covered - ours)
    assert missing == [], f"uvicorn names used by the fast path but not in CONTRACT: {missing}"


def test_the_document_names_every_internal():
    text = DOC.read_text()
    named = set().union(*(requirement.covers() for requirement in CONTRACT)) - {"__init__"}
    absent = sorted(n for n in named if not re.search(rf"[`.]{re.escape(n)}\b", text))
    assert absent == [], f"docs/fastpath.md does not name {absent}"


def _protocol_like(**changes: Any) -> type:
    """A copy of uvicorn's protocol class with some methods removed (None) or replaced."""
    namespace = {k: v for k, v in vars(HttpToolsProtocol).items() if k not in ("__dict__",)}
    for name, value in changes.items():
        if value is None:
            namespace.pop(name)
        else:
            namespace[name] = value
    return type("HttpToolsProtocol", (asyncio.Protocol,), namespace)


def _resolving(fake: type):
    def resolve(target: str) -> Any:
        if target == PROTOCOL or target.startswith(PROTOCOL + "."):
            found: Any = fake
            for part in target[len(PROTOCOL) + 1 :].split(".") if target != PROTOCOL else ():
                try:
                    found = inspect.getattr_static(found, part)
                except AttributeError:
                    raise Missing(f"{short(target)} is missing") from None
            return found
        return import_target(target)

    return resolve


def test_a_removed_method_is_named():
    problems = check(resolve=_resolving(_protocol_like(_start_asgi_task=None)))
    assert "httptools_impl.HttpToolsProtocol._start_asgi_task is missing" in problems


def test_a_method_that_no_longer_calls_what_an_override_counts_on_is_named():
    original = HttpToolsProtocol.data_received

    def data_received(self, data: bytes) -> None:  # as if uvicorn had moved the call
        original(self, data)

    problems = check(resolve=_resolving(_protocol_like(data_received=data_received)))
    assert problems == [
        "httptools_impl.HttpToolsProtocol.data_received no longer uses "
        "_unset_keepalive_if_required, parser, feed_data"
    ]


def test_a_replaced_method_doing_more_is_named():
    def shutdown(self) -> None:  # uvicorn 0.44: a field FastCycle does not have
        if self.cycle is None or self.cycle.response_complete:
            self.transport.close()
        else:
            self.cycle.shutting_down = True
            self.cycle.keep_alive = False

    problems = check(resolve=_resolving(_protocol_like(shutdown=shutdown)))
    assert problems == ["httptools_impl.HttpToolsProtocol.shutdown now also uses shutting_down"]


def test_a_changed_signature_is_named():
    def _start_asgi_task(self, cycle, app, context):
        raise AssertionError("never called")

    problems = check(resolve=_resolving(_protocol_like(_start_asgi_task=_start_asgi_task)))
    assert len(problems) == 1
    assert problems[0].startswith(
        "httptools_impl.HttpToolsProtocol._start_asgi_task(self, cycle, app, context)"
    )
    assert problems[0].endswith("no longer accepts (cycle, app)")


def test_a_missing_module_or_name_is_named_not_raised():
    problems = check(
        (
            Exists("uvicorn.protocols.http.no_such_impl:HttpToolsProtocol", "gone module"),
            StatusLines("uvicorn.protocols.http.h11_impl:NO_SUCH_NAME", "gone name"),
        )
    )
    assert problems == [
        "uvicorn.protocols.http.no_such_impl is missing",
        "h11_impl.NO_SUCH_NAME is missing",
    ]
