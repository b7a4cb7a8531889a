"""Raw ASGI helpers for the data-plane endpoints: headers, body reading, responses.

No Request/Response objects on the hot path: header names are matched as pre-encoded
lowercase bytes in one pass over ``scope["headers"]``, response headers are lists of
byte pairs built from constants, and every body is bytes produced by orjson.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import orjson

from gateway.errors import InputError, PayloadTooLarge

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

# indexes into the list returned by scan_headers
(
    CONTENT_LENGTH,
    HEADER_LENGTH,
    MODEL_VERSION,
    USE_CHALLENGER,
    ROUTING_KEY,
    REQUEST_ID,
    CONTENT_ENCODING,
    ACCEPT_ENCODING,
) = range(8)
_WANTED = {
    b"content-length": CONTENT_LENGTH,
    b"inference-header-content-length": HEADER_LENGTH,
    b"x-model-version": MODEL_VERSION,
    b"x-use-challenger": USE_CHALLENGER,
    b"x-routing-key": ROUTING_KEY,
    b"x-request-id": REQUEST_ID,
    b"content-encoding": CONTENT_ENCODING,
    b"accept-encoding": ACCEPT_ENCODING,
}
_NONE: tuple[None, ...] = (None,) * len(_WANTED)

CONTENT_TYPE = b"content-type"
JSON_TYPE = (CONTENT_TYPE, b"application/json")
OCTET_TYPE = (CONTENT_TYPE, b"application/octet-stream")
H_CONTENT_LENGTH = b"content-length"
H_MODEL_VERSION = b"x-model-version"
H_REQUEST_ID = b"x-request-id"
H_HEADER_LENGTH = b"inference-header-content-length"
TRUE_VALUES = frozenset((b"true", b"True", b"TRUE", b"1", b"yes"))

INTERNAL_ERROR_BODY = b'{"error":"internal server error"}'

# cheap unique request ids: a per-process random prefix + a counter (no uuid per request)
_PREFIX = os.urandom(4).hex() + "-"
_COUNTER = itertools.count(1)


def new_request_id() -> str:
    return _PREFIX + str(next(_COUNTER))


class ClientGone(Exception):
    """The client disconnected before the body was read; nothing is sent."""


def scan_headers(raw: list[tuple[bytes, bytes]]) -> list[bytes | None]:
    """One pass over the raw headers; values at the module's index constants."""
    found: list[bytes | None] = list(_NONE)
    wanted = _WANTED.get
    for name, value in raw:
        index = wanted(name)
        if index is not None:
            found[index] = value
    return found


def parse_length(value: bytes | None, what: str) -> int | None:
    if value is None:
        return None
    try:
        length = int(value)
    except ValueError:
        raise InputError(f"{what} header is not an integer", reason="bad_header") from None
    if length < 0:
        raise InputError(f"{what} header is negative", reason="bad_header")
    return length


async def read_body(receive: Receive, limit: int, declared: bytes | None) -> bytes:
    """The whole request body, refusing more than ``limit`` bytes (413).

    A too-large Content-Length is refused before anything is read.
    """
    length = parse_length(declared, "Content-Length")
    if length is not None and length > limit:
        raise PayloadTooLarge(f"request body of {length} bytes exceeds the {limit}-byte limit")
    message = await receive()
    if message["type"] != "http.request":
        raise ClientGone()
    body: bytes = message.get("body", b"")
    if not message.get("more_body", False):
        if len(body) > limit:
            raise PayloadTooLarge(f"request body exceeds the {limit}-byte limit")
        return body
    chunks = bytearray(body)
    while True:
        message = await receive()
        if message["type"] != "http.request":
            raise ClientGone()
        chunks += message.get("body", b"")
        if len(chunks) > limit:
            raise PayloadTooLarge(f"request body exceeds the {limit}-byte limit")
        if not message.get("more_body", False):
            return bytes(chunks)


def error_body(message: str) -> bytes:
    return orjson.dumps({"error": message})


async def respond(send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    """Send a complete response; ``headers`` must not contain Content-Length."""
    headers.append((H_CONTENT_LENGTH, str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def respond_json(
    send: Send,
    status: int,
    body: bytes,
    request_id: bytes,
    version: bytes | None = None,
) -> None:
    headers = [JSON_TYPE, (H_REQUEST_ID, request_id)]
    if version is not None:
        headers.append((H_MODEL_VERSION, version))
    await respond(send, status, body, headers)


async def respond_status(
    send: Send, status: int, request_id: bytes, version: bytes | None = None
) -> None:
    """Status code only (health probes): an empty body."""
    headers = [(H_REQUEST_ID, request_id)]
    if version is not None:
        headers.append((H_MODEL_VERSION, version))
    await respond(send, status, b"", headers)


def client_request_id(value: bytes | None) -> bytes | None:
    """The client's X-Request-Id if it is safe to echo in a header and a log line (printable
    ASCII, at most 256 bytes; the HTTP parser already refuses control characters)."""
    if value and len(value) <= 256 and value.isascii() and value.decode().isprintable():
        return value
    return None


def request_id_of(found: list[bytes | None]) -> bytes:
    return client_request_id(found[REQUEST_ID]) or new_request_id().encode()
