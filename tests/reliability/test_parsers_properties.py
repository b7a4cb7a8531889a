"""Property-based tests of the data-plane parsers (hypothesis, in process).

For any input, a parser either returns feeds a model can take (right names, dtypes and
shapes, finite numbers) or raises ``InputError`` (a 4xx); never any other exception.
Inputs: OIP JSON tensors (structured and arbitrary JSON), binary framing
(``Inference-Header-Content-Length`` and ``binary_data_size`` of any value, bodies of any
bytes), ``/predict`` list rows and named rows (unicode feature names, NaN/inf spellings).
"""

from __future__ import annotations

import json
import math
import struct
from typing import Any

import numpy as np
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.dataplane.codecs.binary import parse_header_length, split_body
from gateway.dataplane.codecs.oip import decode_infer_request
from gateway.dataplane.codecs.predict import decode_predict_request
from gateway.dataplane.signature import ModelSignature
from gateway.errors import InputError

pytestmark = pytest.mark.slow  # hypothesis, hundreds of examples per property

MAX_ROWS = 64
FEATURES = ["a", "b", "c", "d"]
NUMERIC = ModelSignature.from_schema(
    {
        "task": "classification",
        "features": [{"name": f, "dtype": "float32", "kind": "numerical"} for f in FEATURES],
        "inputs": [{"name": "input", "datatype": "FP32", "shape": [-1, 4], "features": FEATURES}],
        "outputs": [{"name": "label", "datatype": "INT64", "shape": [-1]}],
        "label_output": "label",
        "probability_output": None,
        "value_output": None,
        "classes": [0, 1],
        "allow_missing": False,
    },
    max_rows=MAX_ROWS,
)
MIXED = ModelSignature.from_schema(
    {
        "task": "classification",
        "features": [
            {"name": "a", "dtype": "float32", "kind": "numerical"},
            {"name": "b", "dtype": "float32", "kind": "numerical"},
            {"name": "plan", "dtype": "string", "kind": "categorical"},
        ],
        "inputs": [
            {"name": "a", "datatype": "FP32", "shape": [-1, 1], "features": ["a"]},
            {"name": "b", "datatype": "FP32", "shape": [-1, 1], "features": ["b"]},
            {"name": "plan", "datatype": "BYTES", "shape": [-1, 1], "features": ["plan"]},
        ],
        "outputs": [{"name": "label", "datatype": "INT64", "shape": [-1]}],
        "label_output": "label",
        "probability_output": None,
        "value_output": None,
        "classes": [0, 1],
        "allow_missing": False,
    },
    max_rows=MAX_ROWS,
)
SIGNATURES = {"numeric": NUMERIC, "mixed": MIXED}
DATATYPES = ["BOOL", "UINT8", "INT8", "INT32", "INT64", "UINT64", "FP16", "FP32", "FP64", "BYTES"]


def encode(doc: Any) -> bytes:
    """What a client sends: stdlib JSON (integers of any size)."""
    return json.dumps(doc).encode()


PROPERTY = settings(
    max_examples=300, deadline=None, database=None, suppress_health_check=list(HealthCheck)
)

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(["NaN", "nan", "inf", "-Infinity", "1e400", "0x10", "", " 1 ", "pro"]),
    st.text(max_size=8),
)
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=6), st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=30,
)
dims = st.one_of(
    st.integers(min_value=-3, max_value=8),
    st.sampled_from([2**31, 2**40, 2**62, 2**63, 2**64, 2**100]),
)
shapes = st.one_of(st.lists(dims, max_size=4), json_values)
data = st.one_of(
    st.lists(scalars, max_size=40),
    st.lists(st.lists(scalars, max_size=6), max_size=10),
    json_values,
)


def tensor(names: st.SearchStrategy[str]) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {"name": names, "shape": shapes, "datatype": st.sampled_from(DATATYPES) | st.text()},
        optional={"data": data, "parameters": st.dictionaries(st.text(max_size=5), json_values)},
    )


names = st.sampled_from(["input", "a", "b", "plan", "X"]) | st.text(max_size=5)
requests = st.fixed_dictionaries(
    {"inputs": st.lists(tensor(names), max_size=4) | json_values},
    optional={
        "id": json_values,
        "parameters": st.dictionaries(st.text(max_size=5), json_values),
        "outputs": json_values,
    },
)


def check_feeds(feeds: dict[str, np.ndarray], n_rows: int, sig: ModelSignature) -> None:
    assert 1 <= n_rows <= MAX_ROWS
    assert set(feeds) == {spec.name for spec in sig.inputs}
    for spec in sig.inputs:
        feed = feeds[spec.name]
        assert feed.shape == (n_rows, spec.width)
        assert feed.dtype == spec.dtype
        if feed.dtype.kind == "f":
            assert np.isfinite(feed).all()


@pytest.mark.parametrize("kind", SIGNATURES)
@PROPERTY
@given(doc=requests)
def test_json_tensors_decode_or_refuse(kind: str, doc: dict[str, Any]) -> None:
    sig = SIGNATURES[kind]
    body = encode(doc)
    try:
        request = decode_infer_request(body, None, sig)
    except InputError as exc:
        assert str(exc) and exc.status == 400
        return
    check_feeds(request.feeds, request.n_rows, sig)


@PROPERTY
@given(doc=json_values)
def test_arbitrary_json_bodies_decode_or_refuse(doc: Any) -> None:
    for sig in SIGNATURES.values():
        try:
            decode_infer_request(encode(doc), None, sig)
        except InputError:
            pass
        try:
            decode_predict_request(encode(doc), sig)
        except InputError:
            pass


@PROPERTY
@given(raw=st.binary(max_size=24) | st.text(max_size=24).map(str.encode))
def test_header_length_header_parses_or_refuses(raw: bytes) -> None:
    try:
        value = parse_header_length(raw)
    except InputError as exc:
        assert exc.reason == "bad_framing"
        return
    assert value is not None and 0 <= value < 10**18


@PROPERTY
@given(
    sizes=st.lists(
        st.one_of(
            st.integers(min_value=-(2**70), max_value=2**70),
            st.integers(min_value=0, max_value=64),
            st.sampled_from([2**31 - 1, 2**32, 2**63 - 1, 2**63, 2**64, -1, 1.5, "16", True]),
            st.none(),
        ),
        min_size=1,
        max_size=3,
    ),
    tail=st.binary(max_size=96),
    shift=st.integers(min_value=-4, max_value=4),
    rows=st.integers(min_value=-1, max_value=4),
)
def test_binary_framing_decodes_or_refuses(
    sizes: list[Any], tail: bytes, shift: int, rows: int
) -> None:
    inputs = []
    for k, size in enumerate(sizes):
        entry: dict[str, Any] = {"name": ["a", "b", "plan"][k], "shape": [rows, 1]}
        entry["datatype"] = "BYTES" if k == 2 else "FP32"
        entry["parameters"] = {"binary_data_size": size}
        inputs.append(entry)
    header = encode({"inputs": inputs})
    body = header + tail
    for sig in SIGNATURES.values():
        for length in (len(header), len(header) + shift, None):
            try:
                request = decode_infer_request(body, length, sig)
            except InputError:
                continue
            check_feeds(request.feeds, request.n_rows, sig)


def test_binary_data_size_edge_cases_are_each_refused_with_a_reason() -> None:
    good = struct.pack("<4f", 0.5, -1.0, 0.25, 2.0)
    cases = {-1: "bad_framing", 2**64: "bad_framing", 17: "bad_framing", 15: "bad_shape"}
    cases |= {0: "bad_shape", 8: "bad_shape", 2**63 - 1: "bad_framing"}
    for size, reason in cases.items():
        header = encode(
            {
                "inputs": [
                    {
                        "name": "input",
                        "shape": [1, 4],
                        "datatype": "FP32",
                        "parameters": {"binary_data_size": size},
                    }
                ]
            }
        )
        with pytest.raises(InputError) as refused:
            decode_infer_request(header + good, len(header), NUMERIC)
        assert refused.value.reason == reason, size
    # header length larger than the body, zero, negative, overflowing
    header = encode({"inputs": []})
    for length in (len(header) + 10, 0, -5, 2**80):
        with pytest.raises(InputError):
            split_body(header, length)


row_values = st.one_of(scalars, st.lists(scalars, max_size=2))
named_rows = st.dictionaries(
    st.sampled_from(["a", "b", "c", "d", "plan"]) | st.text(min_size=1, max_size=6),
    row_values,
    max_size=6,
)
list_rows = st.lists(row_values, max_size=6)


@pytest.mark.parametrize("kind", SIGNATURES)
@PROPERTY
@given(
    instances=st.lists(named_rows, min_size=1, max_size=5)
    | st.lists(list_rows, min_size=1, max_size=5)
    | st.lists(st.one_of(named_rows, list_rows, scalars), max_size=5),
    request_id=st.none() | json_values,
)
def test_predict_rows_decode_or_refuse(kind: str, instances: list[Any], request_id: Any) -> None:
    sig = SIGNATURES[kind]
    body = encode({"instances": instances, "id": request_id})
    try:
        request = decode_predict_request(body, sig)
    except InputError as exc:
        assert str(exc)
        return
    check_feeds(request.feeds, request.n_rows, sig)
    assert request.n_rows == len(instances)


@given(key=st.text(min_size=1, max_size=40).filter(lambda k: k not in FEATURES))
@PROPERTY
def test_unicode_feature_names_are_named_in_a_one_line_error(key: str) -> None:
    row = {"a": 1.0, "b": 2.0, "c": 3.0, key: 4.0}
    with pytest.raises(InputError) as refused:
        decode_predict_request(encode({"instances": [row]}), NUMERIC)
    assert refused.value.reason in ("missing_feature", "unknown_feature")
    message = str(refused.value)
    assert "\n" not in message and len(message) < 2000
    orjson.dumps({"error": message})  # encodable as the error body


@pytest.mark.parametrize("spelling", ["NaN", "nan", "inf", "-inf", "Infinity", "1e400"])
def test_non_finite_values_in_every_position_are_refused(spelling: str) -> None:
    base = [[0.5, -1.0, 0.25, 2.0], [-0.3, 0.8, -1.5, 0.1]]
    for position in range(8):
        flat: list[Any] = [v for row in base for v in row]
        flat[position] = spelling
        rows = [flat[:4], flat[4:]]
        oip = {"inputs": [{"name": "input", "shape": [2, 4], "datatype": "FP32", "data": flat}]}
        with pytest.raises(InputError) as refused:
            decode_infer_request(encode(oip), None, NUMERIC)
        assert refused.value.reason == "non_finite", (spelling, position)
        named = [dict(zip(FEATURES, row, strict=True)) for row in rows]
        for instances in (rows, named):
            with pytest.raises(InputError) as refused:
                decode_predict_request(encode({"instances": instances}), NUMERIC)
            assert refused.value.reason == "non_finite", (spelling, position)
    # binary FP32 / FP64 NaN and inf in every position
    for dtype, datatype in ((np.float32, "FP32"), (np.float64, "FP64")):
        for bad in (math.nan, math.inf, -math.inf):
            for position in range(8):
                values = np.array(base, dtype=dtype).ravel()
                values[position] = bad
                chunk = values.astype(values.dtype.newbyteorder("<")).tobytes()
                header = encode(
                    {
                        "inputs": [
                            {
                                "name": "input",
                                "shape": [2, 4],
                                "datatype": datatype,
                                "parameters": {"binary_data_size": len(chunk)},
                            }
                        ]
                    }
                )
                with pytest.raises(InputError) as refused:
                    decode_infer_request(header + chunk, len(header), NUMERIC)
                assert refused.value.reason == "non_finite"
