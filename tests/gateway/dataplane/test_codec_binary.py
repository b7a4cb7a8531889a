from __future__ import annotations

import numpy as np
import pytest
from tritonclient.utils import deserialize_bytes_tensor, serialize_byte_tensor

from gateway.dataplane.codecs.binary import (
    BinaryReader,
    encode_tensor,
    parse_header_length,
    split_body,
)
from gateway.errors import InputError


@pytest.mark.parametrize(("raw", "expected"), [(None, None), (b"123", 123), ("  7 ", 7), (b"0", 0)])
def test_parse_header_length(raw, expected) -> None:
    assert parse_header_length(raw) == expected


@pytest.mark.parametrize("raw", [b"", b"-5", b"12a", b"1e3", b"9" * 30, "٣", b"\xff"])
def test_parse_header_length_refuses_non_counts(raw) -> None:
    with pytest.raises(InputError) as err:
        parse_header_length(raw)
    assert err.value.reason == "bad_framing"


def test_split_body() -> None:
    header, reader = split_body(b'{"a":1}', None)
    assert bytes(header) == b'{"a":1}' and reader is None
    header, reader = split_body(b'{"a":1}xyz', 7)
    assert bytes(header) == b'{"a":1}'
    assert bytes(reader.take(2, "t")) == b"xy"
    with pytest.raises(InputError, match="1 bytes after the JSON header"):
        reader.finish()
    assert bytes(reader.take(1, "t")) == b"z"
    reader.finish()
    for bad in (0, 11, -1):
        with pytest.raises(InputError) as err:
            split_body(b'{"a":1}xyz', bad)
        assert err.value.reason == "bad_framing"


def test_reader_refuses_overruns_and_bad_sizes() -> None:
    reader = BinaryReader(memoryview(b"abcd"))
    for size in (5, -1, 1.5, "2", True):
        with pytest.raises(InputError) as err:
            reader.take(size, "input 'x'")
        assert err.value.reason == "bad_framing" and "input 'x'" in str(err.value)
    assert bytes(reader.take(4, "x")) == b"abcd" and bytes(reader.take(0, "x")) == b""


@pytest.mark.parametrize(
    "arr",
    [
        np.array([[0.5, -2.0]], dtype=np.float32),
        np.array([1, -(2**40)], dtype=np.int64),
        np.array([True, False, True]),
        np.arange(6, dtype=np.float64).reshape(2, 3)[:, ::2],  # not contiguous
    ],
    ids=["fp32", "int64", "bool", "strided"],
)
def test_encode_numeric_tensor_is_little_endian_row_major(arr: np.ndarray) -> None:
    raw = encode_tensor(arr)
    back = np.frombuffer(raw, dtype=arr.dtype.newbyteorder("<")).reshape(arr.shape)
    np.testing.assert_array_equal(back, arr)


def test_encode_bytes_tensor_matches_tritonclient() -> None:
    arr = np.array(["yes", "", "ünïcode", b"raw"], dtype=object)
    raw = encode_tensor(arr)
    assert raw == serialize_byte_tensor(arr).item()
    assert deserialize_bytes_tensor(raw).tolist() == [b"yes", b"", "ünïcode".encode(), b"raw"]


def test_a_contiguous_numeric_tensor_is_encoded_as_a_view_without_a_copy() -> None:
    arr = np.linspace(0, 1, 2000, dtype=np.float32).reshape(1000, 2)
    raw = encode_tensor(arr)
    assert isinstance(raw, memoryview) and len(raw) == arr.nbytes
    assert np.shares_memory(np.frombuffer(raw, dtype=np.uint8), arr)
    assert bytes(raw) == arr.tobytes()
    assert b"head" + raw == b"head" + arr.tobytes()  # joins like bytes


@pytest.mark.parametrize("dtype", [np.float32, np.int64, np.bool_])
def test_an_empty_tensor_encodes_to_no_bytes(dtype) -> None:
    assert bytes(encode_tensor(np.zeros((0, 2), dtype=dtype))) == b""


def test_a_big_endian_tensor_is_encoded_little_endian() -> None:
    arr = np.arange(4, dtype=">i8")
    raw = encode_tensor(arr)
    assert bytes(raw) == np.arange(4, dtype="<i8").tobytes()
