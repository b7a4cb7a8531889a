"""Content codings: request bodies decoded within the limit, replies compressed when worth it."""

from __future__ import annotations

import gzip
import tracemalloc
import zlib

import pytest

from gateway.dataplane.codecs.compression import (
    MIN_COMPRESS,
    decompress,
    encode_reply,
    request_coding,
    response_coding,
)
from gateway.errors import InputError, PayloadTooLarge, UnsupportedEncoding

BODY = b'{"inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP32", "data": [1,2,3,4]}]}'


def raw_deflate(data: bytes) -> bytes:
    deflater = zlib.compressobj(6, zlib.DEFLATED, -15)
    return deflater.compress(data) + deflater.flush()


@pytest.mark.parametrize(
    ("header", "coding"),
    [
        (None, None),
        (b"", None),
        (b"identity", None),
        (b"gzip", "gzip"),
        (b" GZIP ", "gzip"),
        (b"x-gzip", "gzip"),
        (b"deflate", "deflate"),
    ],
)
def test_request_codings(header, coding) -> None:
    assert request_coding(header) == coding


@pytest.mark.parametrize("header", [b"br", b"zstd", b"gzip, gzip", b"compress", b"\xff\xfe"])
def test_other_request_codings_are_415(header) -> None:
    with pytest.raises(UnsupportedEncoding, match="use gzip or deflate") as err:
        request_coding(header)
    assert err.value.status == 415 and err.value.reason == "unsupported_encoding"


@pytest.mark.parametrize(
    ("coding", "encode"),
    [
        ("gzip", gzip.compress),
        ("deflate", zlib.compress),  # what tritonclient sends (the zlib format, RFC 9110)
        ("deflate", raw_deflate),  # what some other clients send under the same name
    ],
    ids=["gzip", "zlib", "raw-deflate"],
)
def test_round_trip_of_every_accepted_form(coding, encode) -> None:
    assert decompress(encode(BODY), coding, len(BODY)) == BODY


def test_concatenated_gzip_members_decode_to_the_concatenation() -> None:
    assert decompress(gzip.compress(b"ab") + gzip.compress(b"cd"), "gzip", 4) == b"abcd"
    with pytest.raises(PayloadTooLarge):  # the limit is over all members together
        decompress(gzip.compress(b"ab") + gzip.compress(b"cde"), "gzip", 4)


def test_a_compression_bomb_stops_at_the_limit_without_inflating() -> None:
    bomb = gzip.compress(b"\0" * (200 * 1024 * 1024))  # 200 MiB of zeros in ~200 KB
    assert len(bomb) < 300_000
    tracemalloc.start()
    try:
        with pytest.raises(PayloadTooLarge, match="decompressed request body exceeds"):
            decompress(bomb, "gzip", 1024 * 1024)
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 * 1024 * 1024  # about the 1 MiB limit, never the 200 MiB


def test_exactly_the_limit_is_accepted() -> None:
    data = b"x" * 5000
    assert decompress(gzip.compress(data), "gzip", 5000) == data
    with pytest.raises(PayloadTooLarge):
        decompress(gzip.compress(data), "gzip", 4999)


@pytest.mark.parametrize(
    ("body", "coding", "fragment"),
    [
        (BODY, "gzip", "not valid gzip data"),
        (BODY, "deflate", "not valid deflate data"),
        (gzip.compress(BODY)[:-12], "gzip", "truncated"),
        (zlib.compress(BODY)[:-3], "deflate", "truncated"),
        (zlib.compress(BODY) + b"junk", "deflate", "4 bytes follow the end"),
        (gzip.compress(BODY) + b"junk", "gzip", "not valid gzip data"),
        (b"", "gzip", "truncated"),
    ],
)
def test_corrupt_bodies_are_400(body, coding, fragment) -> None:
    with pytest.raises(InputError, match=fragment) as err:
        decompress(body, coding, 1 << 20)
    assert err.value.status == 400 and err.value.reason == "bad_encoding"


@pytest.mark.parametrize(
    ("header", "coding"),
    [
        (None, None),
        (b"", None),
        (b"identity", None),
        (b"gzip", "gzip"),
        (b"deflate", "deflate"),
        (b"gzip, deflate", "gzip"),
        (b"deflate, gzip;q=0.5", "gzip"),
        (b"gzip;q=0, deflate", "deflate"),
        (b"gzip; q=0.000", None),
        (b"br, zstd", None),
        (b"*", "gzip"),
        (b"gzip;q=bad", None),
    ],
)
def test_accept_encoding(header, coding) -> None:
    assert response_coding(header) == coding


def test_replies_are_compressed_from_the_threshold_with_vary_either_way() -> None:
    small = b"x" * (MIN_COMPRESS - 1)
    payload, headers = encode_reply(small, [(b"x-request-id", b"r")], "gzip")
    assert payload == small
    assert headers == [(b"x-request-id", b"r"), (b"vary", b"accept-encoding")]
    large = b'{"data": [' + b"0.125, " * 400 + b"1]}"
    payload, headers = encode_reply(large, [], "gzip")
    assert gzip.decompress(payload) == large and len(payload) < len(large) // 4
    assert (b"content-encoding", b"gzip") in headers and (b"vary", b"accept-encoding") in headers
    payload, headers = encode_reply(large, [], "deflate")
    assert zlib.decompress(payload) == large and (b"content-encoding", b"deflate") in headers
