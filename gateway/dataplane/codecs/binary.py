"""Framing of the OIP binary tensor data extension (Triton / KServe), both directions.

A request or response body is a JSON header optionally followed by raw tensor bytes; the
header's size travels in the ``Inference-Header-Content-Length`` HTTP header. Tensors are
little-endian, row-major, no padding; BOOL is one byte (0/1); BYTES elements are a 4-byte
little-endian length followed by the bytes. Each binary input says its size in
``parameters.binary_data_size`` and the chunks follow in the order of the inputs in the
JSON; responses do the same for outputs.

* ``parse_header_length(raw)``: the HTTP header value -> int (None when absent).
* ``split_body(body, header_length)`` -> (JSON header view, ``BinaryReader`` or None).
* ``BinaryReader.take(size, where)`` hands out consecutive chunks; ``finish()`` refuses
  trailing bytes.
* ``encode_tensor(array)`` -> the bytes of one output tensor (a view, for numbers).

Every framing problem raises ``InputError(reason="bad_framing")``.
"""

from __future__ import annotations

import struct
from typing import Any

import numpy as np

from gateway.dataplane.codecs.values import short
from gateway.errors import InputError

_U32 = struct.Struct("<I")


def parse_header_length(raw: bytes | str | None) -> int | None:
    """``Inference-Header-Content-Length`` value -> a byte count (None when absent)."""
    if raw is None:
        return None
    text = raw.decode("latin-1") if isinstance(raw, bytes | bytearray) else raw
    text = text.strip()
    if not (text.isascii() and text.isdigit()) or len(text) > 18:
        raise InputError(
            f"Inference-Header-Content-Length must be a byte count, got {text[:20]!r}",
            reason="bad_framing",
        )
    return int(text)


class BinaryReader:
    """Consecutive binary chunks after the JSON header."""

    __slots__ = ("_buf", "_off")

    def __init__(self, buf: memoryview) -> None:
        self._buf = buf
        self._off = 0

    def take(self, size: Any, where: str) -> memoryview:
        if type(size) is not int or size < 0:
            raise InputError(
                f"{where}: binary_data_size must be a non-negative integer, got {short(size)}",
                reason="bad_framing",
            )
        start, end = self._off, self._off + size
        if end > len(self._buf):
            raise InputError(
                f"{where}: binary_data_size {size} runs past the body "
                f"({len(self._buf) - start} bytes of binary data left)",
                reason="bad_framing",
            )
        self._off = end
        return self._buf[start:end]

    def finish(self) -> None:
        extra = len(self._buf) - self._off
        if extra:
            raise InputError(
                f"{extra} bytes after the JSON header are not claimed by any input's "
                "binary_data_size",
                reason="bad_framing",
            )


def split_body(
    body: bytes, header_length: int | None
) -> tuple[bytes | memoryview, BinaryReader | None]:
    """The JSON header and a reader over the binary part (None without binary data)."""
    if header_length is None:
        return body, None
    view = memoryview(body)
    if type(header_length) is not int or not 0 < header_length <= len(body):
        raise InputError(
            f"Inference-Header-Content-Length {short(header_length)} does not fit a "
            f"{len(body)}-byte body",
            reason="bad_framing",
        )
    return view[:header_length], BinaryReader(view[header_length:])


def encode_tensor(arr: np.ndarray) -> bytes | memoryview:
    """One output tensor as binary data (row-major, little-endian / length-prefixed).

    A numeric tensor comes back as a byte view on the array (no copy when it is already
    contiguous and little-endian): the response's one ``b"".join`` is its only copy."""
    if arr.dtype.kind in "OUS":
        parts: list[bytes] = []
        for value in arr.ravel().tolist():
            data = value if isinstance(value, bytes) else str(value).encode("utf-8")
            parts.append(_U32.pack(len(data)))
            parts.append(data)
        return b"".join(parts)
    flat = np.ascontiguousarray(arr, dtype=arr.dtype.newbyteorder("<")).reshape(-1)
    return flat.view(np.uint8).data
