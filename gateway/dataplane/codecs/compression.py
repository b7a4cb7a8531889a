"""HTTP content codings of the data plane: compressed request bodies in, gzip replies out.

* ``request_coding(value)``: a ``Content-Encoding`` header -> ``"gzip"``, ``"deflate"`` or
  None (absent or ``identity``); anything else is ``UnsupportedEncoding`` (415).
* ``decompress(body, coding, limit)``: the decoded body, inflated incrementally with a
  ``max_length`` so that a small compression bomb stops at ``limit + 1`` bytes of output
  (413) instead of filling memory; a corrupt or truncated stream is a 400.
* ``response_coding(value)``: an ``Accept-Encoding`` header -> the coding to answer with
  (gzip preferred, then deflate) or None.
* ``encode_reply(payload, headers, coding)``: the payload compressed when it is at least
  ``MIN_COMPRESS`` bytes, with ``Content-Encoding``; ``Vary: Accept-Encoding`` either way.
* ``decoded`` / ``encoded``: the same for an endpoint, large bodies in a worker thread.

``deflate`` is the zlib format (RFC 9110), as tritonclient sends it; a raw deflate stream,
which some clients send under the same name, is accepted too.
"""

from __future__ import annotations

import asyncio
import zlib

from gateway.errors import InputError, PayloadTooLarge, UnsupportedEncoding

# Below ~1 KiB a reply and its headers fit one TCP segment (MSS ~1,460 bytes), so a
# smaller body saves no packet, while setting up a gzip stream costs ~7 µs (measured: a
# 221-byte inference reply took 7.4 µs to compress to 178 bytes), as much as decoding
# the request.
MIN_COMPRESS = 1024
# zlib level 1: 2.5-6x faster than the default level 6 on inference replies (6.5 KB of
# float JSON: 94 against 234 µs) for output ~7 % larger.
LEVEL = 1

# bodies from this size on are (de)compressed in a worker thread (zlib releases the GIL):
# ~2 ms of the loop at level 1, long enough to delay every request behind it
OFFLOAD_BYTES = 128 * 1024

_GZIP_BITS = 31  # zlib wbits: gzip header and trailer
_ZLIB_BITS = 15  # zlib header (the "deflate" content coding)
_RAW_BITS = -15  # no header at all

H_CONTENT_ENCODING = b"content-encoding"
VARY = (b"vary", b"accept-encoding")
_CODED = {"gzip": (H_CONTENT_ENCODING, b"gzip"), "deflate": (H_CONTENT_ENCODING, b"deflate")}
_REQUEST_CODINGS = {"gzip": "gzip", "x-gzip": "gzip", "deflate": "deflate"}


def request_coding(value: bytes | None) -> str | None:
    """The coding of a request body from its ``Content-Encoding`` header."""
    if value is None:
        return None
    text = value.decode("latin-1").strip().lower()
    if text in ("", "identity"):
        return None
    coding = _REQUEST_CODINGS.get(text)
    if coding is None:
        raise UnsupportedEncoding(
            f"Content-Encoding {text[:40]!r} is not supported; use gzip or deflate"
        )
    return coding


def decompress(body: bytes, coding: str, limit: int) -> bytes:
    """``body`` decoded; PayloadTooLarge past ``limit`` decoded bytes, InputError if corrupt."""
    if coding == "deflate":
        bits = _ZLIB_BITS if _looks_like_zlib(body) else _RAW_BITS
        out, rest = _inflate(body, bits, limit, coding)
        if rest:
            raise InputError(
                f"{len(rest)} bytes follow the end of the deflate stream", reason="bad_encoding"
            )
        return out
    out, rest = _inflate(body, _GZIP_BITS, limit, coding)
    parts = [out]
    size = len(out)
    while rest:  # concatenated gzip members decode to the concatenation (RFC 1952)
        more, rest = _inflate(rest, _GZIP_BITS, limit - size, coding)
        parts.append(more)
        size += len(more)
    return out if len(parts) == 1 else b"".join(parts)


def _looks_like_zlib(body: bytes) -> bool:
    """A zlib header: deflate method, and the two header bytes a multiple of 31."""
    return len(body) >= 2 and body[0] & 0x0F == 8 and (body[0] << 8 | body[1]) % 31 == 0


def _inflate(data: bytes, bits: int, limit: int, coding: str) -> tuple[bytes, bytes]:
    """One stream: (decoded bytes, bytes after the stream's end)."""
    inflater = zlib.decompressobj(bits)
    try:
        out = inflater.decompress(data, limit + 1)
    except zlib.error as exc:
        message = f"request body is not valid {coding} data: {exc}"
        raise InputError(message, reason="bad_encoding") from None
    if len(out) > limit or inflater.unconsumed_tail:
        raise PayloadTooLarge(f"decompressed request body exceeds the {limit}-byte limit")
    if not inflater.eof:
        raise InputError(f"{coding} request body is truncated", reason="bad_encoding")
    return out, inflater.unused_data


def response_coding(value: bytes | None) -> str | None:
    """The coding to answer with for an ``Accept-Encoding`` header (None: identity)."""
    if not value:
        return None
    accepted: set[str] = set()
    for item in value.decode("latin-1").lower().split(","):
        name, _, params = item.partition(";")
        name = name.strip()
        if name in ("gzip", "deflate", "*") and _q_positive(params):
            accepted.add(name)
    if "gzip" in accepted or "*" in accepted:
        return "gzip"
    return "deflate" if "deflate" in accepted else None


def _q_positive(params: str) -> bool:
    for param in params.split(";"):
        key, _, number = param.strip().partition("=")
        if key.strip() == "q":
            try:
                return float(number) > 0
            except ValueError:
                return False
    return True


def compress(payload: bytes, coding: str) -> bytes:
    bits = _GZIP_BITS if coding == "gzip" else _ZLIB_BITS
    deflater = zlib.compressobj(LEVEL, zlib.DEFLATED, bits)
    return deflater.compress(payload) + deflater.flush()


def encode_reply(
    payload: bytes, headers: list[tuple[bytes, bytes]], coding: str
) -> tuple[bytes, list[tuple[bytes, bytes]]]:
    """A reply for a client that accepts ``coding``: compressed from ``MIN_COMPRESS`` bytes."""
    headers.append(VARY)
    if len(payload) < MIN_COMPRESS:
        return payload, headers
    headers.append(_CODED[coding])
    return compress(payload, coding), headers


async def decoded(body: bytes, coding: str, limit: int) -> bytes:
    """``decompress`` on the loop, or in a worker thread for a large body."""
    if len(body) < OFFLOAD_BYTES:
        return decompress(body, coding, limit)
    return await asyncio.to_thread(decompress, body, coding, limit)


async def encoded(
    status: int, payload: bytes, headers: list[tuple[bytes, bytes]], coding: str
) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
    """``encode_reply`` of a whole reply, in a worker thread for a large payload."""
    if len(payload) < OFFLOAD_BYTES:
        payload, headers = encode_reply(payload, headers, coding)
    else:
        payload, headers = await asyncio.to_thread(encode_reply, payload, headers, coding)
    return status, payload, headers
