"""uvicorn's httptools protocol with one socket write per response instead of two.

uvicorn writes a response's status line and headers when the app sends
``http.response.start`` and the body on ``http.response.body``: two ``write()`` calls,
which uvloop turns into two ``send`` syscalls and two TCP segments (``TCP_NODELAY``).
On small prediction responses that second syscall is a large share of the per-request
cost, so ``modelgate serve`` runs this protocol (through its subclass in
``http.fastpath``, which answers inference requests in one write of its own; this covers
every response that goes through ASGI; ``MODELGATE_FASTPATH=off`` runs uvicorn's own
protocol instead): its transport holds a complete
header block back until the body follows (in the same loop step on every endpoint here)
and writes both at once. Anything else — a response without a body write (HEAD), an
interim ``100 Continue`` — is flushed on the next loop tick, so nothing is ever held
longer than that.

The subclass touches only ``connection_made`` (wrapping the transport); everything else is
uvicorn's own code.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

_HEADER_START = b"HTTP/"
_HEADER_END = b"\r\n\r\n"


class CoalescingTransport:
    """Transport proxy: a header block waits for the next write (or the next tick)."""

    __slots__ = ("_transport", "_loop", "_held")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._held: bytes | None = None

    def write(self, data: bytes) -> None:
        held = self._held
        if held is not None:
            self._held = None
            self._transport.write(held + data)
        elif data.endswith(_HEADER_END) and data.startswith(_HEADER_START):
            self._held = data
            self._loop.call_soon(self._flush)
        else:
            self._transport.write(data)

    def _flush(self) -> None:
        held = self._held
        if held is not None:
            self._held = None
            if not self._transport.is_closing():
                self._transport.write(held)

    def close(self) -> None:
        self._flush()
        self._transport.close()

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def pause_reading(self) -> None:
        self._transport.pause_reading()

    def resume_reading(self) -> None:
        self._transport.resume_reading()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class CoalescingHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol writing through a ``CoalescingTransport``."""

    # uvicorn narrows asyncio's BaseTransport parameter to Transport (its own ignore), and
    # the proxy is duck-typed: subclassing Transport would shadow __getattr__'s delegation
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(CoalescingTransport(transport, self.loop))  # type: ignore[arg-type]
