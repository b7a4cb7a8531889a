"""Every bad request gives one InputError with a stable reason and a message naming the problem;
random and truncated bodies give InputError and nothing else."""

from __future__ import annotations

import json
import random
import struct
import tracemalloc

import numpy as np
import orjson
import pytest
import tritonclient.http as th

from gateway.dataplane.codecs.oip import decode_infer_request
from gateway.dataplane.codecs.predict import decode_predict_request
from gateway.dataplane.signature import ModelSignature
from gateway.errors import InputError

Client = th.InferenceServerClient


def numeric_sig(allow_missing: bool = False, max_rows: int = 8) -> ModelSignature:
    feats = ["age", "income", "score"]
    schema = {
        "task": "classification",
        "features": [{"name": f, "kind": "numerical"} for f in feats],
        "inputs": [{"name": "input", "datatype": "FP32", "shape": [-1, 3], "features": feats}],
        "outputs": [
            {"name": "label", "datatype": "INT64", "shape": [-1]},
            {"name": "probabilities", "datatype": "FP32", "shape": [-1, 2]},
        ],
        "label_output": "label",
        "probability_output": "probabilities",
        "classes": [0, 1],
        "allow_missing": allow_missing,
    }
    return ModelSignature.from_schema(schema, max_rows=max_rows)


def mixed_sig() -> ModelSignature:
    cols = [("tenure", "FP32"), ("plan", "BYTES")]
    schema = {
        "task": "classification",
        "features": [
            {"name": n, "kind": "categorical" if t == "BYTES" else "numerical"} for n, t in cols
        ],
        "inputs": [{"name": n, "datatype": t, "shape": [-1, 1], "features": [n]} for n, t in cols],
        "outputs": [{"name": "label", "datatype": "BYTES", "shape": [-1]}],
        "label_output": "label",
        "classes": ["a", "b"],
    }
    return ModelSignature.from_schema(schema, max_rows=8)


def int_sig() -> ModelSignature:
    schema = {
        "task": "regression",
        "features": [{"name": "a"}, {"name": "b"}],
        "inputs": [{"name": "x", "datatype": "INT64", "shape": [-1, 2], "features": ["a", "b"]}],
        "outputs": [{"name": "y", "datatype": "FP32", "shape": [-1, 1]}],
    }
    return ModelSignature.from_schema(schema, max_rows=8)


SIG = numeric_sig()
MIXED = mixed_sig()
INTSIG = int_sig()


def one(data, shape=(1, 3), datatype="FP32", name="input", **extra) -> bytes:
    tensor = {"name": name, "shape": list(shape), "datatype": datatype, "data": data}
    return dumps({"inputs": [tensor], **extra})


def mixed(tenure, plan, shape=(1, 1)) -> bytes:
    return orjson.dumps(
        {
            "inputs": [
                {"name": "tenure", "shape": list(shape), "datatype": "FP32", "data": tenure},
                {"name": "plan", "shape": list(shape), "datatype": "BYTES", "data": plan},
            ]
        }
    )


def dumps(doc) -> bytes:
    """stdlib json: unlike orjson it writes integers beyond 64 bits."""
    return json.dumps(doc).encode()


def binary(header: dict, *chunks: bytes) -> tuple[bytes, int]:
    head = dumps(header)
    return head + b"".join(chunks), len(head)


def bin_input(size: int, shape=(1, 3), datatype="FP32", name="input") -> dict:
    return {
        "name": name,
        "shape": list(shape),
        "datatype": datatype,
        "parameters": {"binary_data_size": size},
    }


F32x3 = np.array([1, 2, 3], dtype="<f4").tobytes()

OIP_CASES = [
    # (id, body, header_length, sig, reason, message fragment)
    ("not-json", b"{inputs: nope", None, SIG, "malformed_json", "not valid JSON"),
    ("empty-body", b"", None, SIG, "malformed_json", "not valid JSON"),
    ("json-array", b"[1, 2]", None, SIG, "malformed_json", "must be a JSON object"),
    ("bad-utf8", b'{"id": "\xff"}', None, SIG, "malformed_json", "not valid JSON"),
    ("no-inputs", b'{"id": "x"}', None, SIG, "missing_input", "no 'inputs'"),
    ("inputs-empty", b'{"inputs": []}', None, SIG, "missing_input", "no 'inputs'"),
    ("input-not-object", b'{"inputs": [3]}', None, SIG, "malformed_request", "string 'name'"),
    ("input-no-name", b'{"inputs": [{"shape": [1, 3]}]}', None, SIG, "malformed_request", "name"),
    ("id-number", one([1, 2, 3], id=5), None, SIG, "bad_id", "'id' must be a string"),
    ("id-null", one([1, 2, 3], id=None), None, SIG, "bad_id", "'id' must be a string, got None"),
    # the protocol's schema: parameters are objects, outputs a list of distinct names
    *[
        (
            f"parameters-{kind}",
            one([1, 2, 3], parameters=value),
            None,
            SIG,
            "malformed_request",
            "request: 'parameters' must be an object",
        )
        for kind, value in (("number", 5), ("list", [1]), ("null", None), ("string", "x"))
    ],
    (
        "input-parameters-number",
        dumps(
            {
                "inputs": [
                    {
                        "name": "input",
                        "shape": [1, 3],
                        "datatype": "FP32",
                        "data": [1, 2, 3],
                        "parameters": 3,
                    }
                ]
            }
        ),
        None,
        SIG,
        "malformed_request",
        "input 'input': 'parameters' must be an object, got 3",
    ),
    ("outputs-null", one([1, 2, 3], outputs=None), None, SIG, "malformed_request", "'outputs'"),
    (
        "outputs-object",
        one([1, 2, 3], outputs={"name": "label"}),
        None,
        SIG,
        "malformed_request",
        "'outputs' must be a list",
    ),
    (
        "output-parameters-list",
        one([1, 2, 3], outputs=[{"name": "label", "parameters": [1]}]),
        None,
        SIG,
        "malformed_request",
        "output 'label': 'parameters' must be an object",
    ),
    (
        "duplicate-output",
        one([1, 2, 3], outputs=[{"name": "label"}, {"name": "probabilities"}, {"name": "label"}]),
        None,
        SIG,
        "duplicate_output",
        "output 'label' is requested twice",
    ),
    (
        "binary-data-string",
        one([1, 2, 3], outputs=[{"name": "label", "parameters": {"binary_data": "yes"}}]),
        None,
        SIG,
        "malformed_request",
        "'binary_data' must be a boolean",
    ),
    (
        "binary-data-output-number",
        one([1, 2, 3], parameters={"binary_data_output": 1}),
        None,
        SIG,
        "malformed_request",
        "'binary_data_output' must be a boolean",
    ),
    *[
        (
            f"classification-{kind}",
            one([1, 2, 3], outputs=[{"name": "label", "parameters": {"classification": value}}]),
            None,
            SIG,
            "malformed_request",
            "'classification' must be a non-negative integer",
        )
        for kind, value in (("negative", -1), ("float", 1.5), ("bool", True), ("text", "2"))
    ],
    (
        "classification-of-bytes",
        orjson.dumps(
            {
                **orjson.loads(mixed([1.0], ["a"])),
                "outputs": [{"name": "label", "parameters": {"classification": 1}}],
            }
        ),
        None,
        MIXED,
        "bad_classification",
        "not available for a BYTES output",
    ),
    (
        "no-data",
        orjson.dumps({"inputs": [{"name": "input", "shape": [1, 3], "datatype": "FP32"}]}),
        None,
        SIG,
        "malformed_request",
        "no 'data'",
    ),
    (
        "shape-missing",
        orjson.dumps({"inputs": [{"name": "input", "datatype": "FP32", "data": [1]}]}),
        None,
        SIG,
        "bad_shape",
        "shape must be a list of integers",
    ),
    ("shape-floats", one([1, 2, 3], shape=(1.0, 3.0)), None, SIG, "bad_shape", "list of integers"),
    ("shape-bools", one([1, 2, 3], shape=(True, 3)), None, SIG, "bad_shape", "list of integers"),
    ("shape-negative", one([1, 2, 3], shape=(-1, 3)), None, SIG, "bad_shape", "negative"),
    ("shape-width", one([1, 2, 3, 4], shape=(1, 4)), None, SIG, "bad_shape", "[-1, 3]"),
    ("shape-rank3", one([1, 2, 3], shape=(1, 1, 3)), None, SIG, "bad_shape", "[-1, 3]"),
    ("shape-scalar", one([1, 2, 3], shape=()), None, SIG, "bad_shape", "does not match"),
    ("shape-huge", one([1, 2, 3], shape=(2**62, 3)), None, SIG, "too_many_rows", "limit of 8"),
    (
        "shape-beyond-64-bits",
        one([1, 2, 3], shape=(10**30, 3)),
        None,
        SIG,
        "bad_shape",
        "list of integers",
    ),
    ("too-many-rows", one([[1, 2, 3]] * 9, shape=(9, 3)), None, SIG, "too_many_rows", "9 rows"),
    ("empty-batch", one([], shape=(0, 3)), None, SIG, "empty_batch", "0 rows"),
    (
        "count-mismatch",
        one([1, 2, 3, 4, 5, 6], shape=(1, 3)),
        None,
        SIG,
        "bad_shape",
        "got 6 values, expected 3",
    ),
    (
        "ragged",
        one([[1, 2], [3, 4, 5]], shape=(2, 3)),
        None,
        SIG,
        "bad_shape",
        "got 5 values, expected 6",
    ),
    (
        "string-value",
        one([1, "abc", 3]),
        None,
        SIG,
        "non_numeric",
        "row 0, feature 'income': expected a number, got 'abc'",
    ),
    (
        "text-after-numeric-string",
        one(["2.5", 1, "n/a"]),
        None,
        SIG,
        "non_numeric",
        "row 0, feature 'score': expected a number, got 'n/a'",
    ),
    ("dict-value", one([1, 2, {"a": 1}]), None, SIG, "non_numeric", "feature 'score'"),
    (
        "null-value",
        one([[1, 2, 3], [4, None, 6]], shape=(2, 3)),
        None,
        SIG,
        "non_finite",
        "row 1, feature 'income': missing value",
    ),
    (
        "float-in-int64",
        one([1, 2.5], datatype="INT64", shape=(1, 2)),
        None,
        INTSIG,
        "bad_dtype",
        "row 0, feature 'b': expected INT64 values, got 2.5",
    ),
    (
        "bool-in-int64",
        one([True, 1], datatype="INT64", shape=(1, 2)),
        None,
        INTSIG,
        "bad_dtype",
        "feature 'a': expected INT64 values, got True",
    ),
    (
        "string-in-int64",
        one([1, "2"], datatype="INT64", shape=(1, 2)),
        None,
        INTSIG,
        "non_numeric",
        "feature 'b': expected a number, got '2'",
    ),
    (
        "null-in-int64",
        one([None, 2], datatype="INT64", shape=(1, 2)),
        None,
        INTSIG,
        "non_finite",
        "feature 'a': missing value (null) in INT64 input",
    ),
    (
        "int64-overflow",
        one([1, 2**63], datatype="UINT64", shape=(1, 2)),
        None,
        INTSIG,
        "out_of_range",
        "feature 'b': 9223372036854775808 does not fit INT64",
    ),
    ("datatype-unknown", one([1, 2, 3], datatype="FLOAT"), None, SIG, "bad_dtype", "'FLOAT'"),
    (
        "datatype-missing",
        orjson.dumps({"inputs": [{"name": "input", "shape": [1, 3], "data": [1, 2, 3]}]}),
        None,
        SIG,
        "bad_dtype",
        "unsupported datatype None",
    ),
    (
        "bytes-into-fp32",
        one(["a", "b", "c"], datatype="BYTES"),
        None,
        SIG,
        "bad_dtype",
        "BYTES cannot feed model input 'input' (FP32)",
    ),
    ("fp32-overflow", one([1, 1e39, 3]), None, SIG, "out_of_range", "1e+39 does not fit FP32"),
    (
        "two-inputs-for-one",
        orjson.dumps(
            {
                "inputs": [
                    {"name": "input", "shape": [1, 3], "datatype": "FP32", "data": [1, 2, 3]},
                    {"name": "extra", "shape": [1, 3], "datatype": "FP32", "data": [1, 2, 3]},
                ]
            }
        ),
        None,
        SIG,
        "unknown_input",
        "unknown input 'extra'",
    ),
    (
        "duplicate-input",
        orjson.dumps(
            {
                "inputs": [
                    {"name": "input", "shape": [1, 3], "datatype": "FP32", "data": [1, 2, 3]},
                    {"name": "input", "shape": [1, 3], "datatype": "FP32", "data": [1, 2, 3]},
                ]
            }
        ),
        None,
        SIG,
        "duplicate_input",
        "given twice",
    ),
    (
        "unknown-output",
        one([1, 2, 3], outputs=[{"name": "logits"}]),
        None,
        SIG,
        "unknown_output",
        "unknown output 'logits'; model outputs are 'label', 'probabilities'",
    ),
    (
        "outputs-not-list",
        one([1, 2, 3], outputs={"name": "label"}),
        None,
        SIG,
        "malformed_request",
        "'outputs' must be a list",
    ),
    (
        "output-no-name",
        one([1, 2, 3], outputs=[{"parameters": {}}]),
        None,
        SIG,
        "malformed_request",
        "requested output",
    ),
    (
        "mixed-number-for-string",
        mixed([1.0], [7]),
        None,
        MIXED,
        "bad_dtype",
        "input 'plan', row 0, feature 'plan': expected a string, got 7",
    ),
    (
        "mixed-rows-differ",
        mixed([1.0, 2.0], ["a"], shape=(2, 1)),
        None,
        MIXED,
        "bad_shape",
        "got 1 strings, expected 2",
    ),
    (
        "mixed-missing",
        orjson.dumps(
            {"inputs": [{"name": "tenure", "shape": [1, 1], "datatype": "FP32", "data": [1.0]}]}
        ),
        None,
        MIXED,
        "missing_input",
        "missing inputs 'plan'",
    ),
    (
        "mixed-row-count",
        orjson.dumps(
            {
                "inputs": [
                    {"name": "tenure", "shape": [1, 1], "datatype": "FP32", "data": [1.0]},
                    {"name": "plan", "shape": [2, 1], "datatype": "BYTES", "data": ["a", "b"]},
                ]
            }
        ),
        None,
        MIXED,
        "bad_shape",
        "input 'plan' has 2 rows, the other inputs 1",
    ),
    # binary framing
    (
        "header-longer-than-body",
        *binary({"inputs": [bin_input(12)]}, F32x3)[:1],
        10**6,
        SIG,
        "bad_framing",
        "does not fit",
    ),
    ("header-zero", b"{}", 0, SIG, "bad_framing", "does not fit"),
    (
        "header-cuts-json",
        *binary({"inputs": [bin_input(12)]}, F32x3)[:1],
        20,
        SIG,
        "malformed_json",
        "JSON header is not valid JSON",
    ),
    (
        "binary-size-too-big",
        *binary({"inputs": [bin_input(16)]}, F32x3),
        SIG,
        "bad_framing",
        "runs past the body",
    ),
    (
        "binary-size-negative",
        *binary({"inputs": [bin_input(-4)]}, F32x3),
        SIG,
        "bad_framing",
        "non-negative integer",
    ),
    (
        "binary-size-string",
        *binary({"inputs": [bin_input("12")]}, F32x3),
        SIG,
        "bad_framing",
        "non-negative integer",
    ),
    (
        "binary-trailing",
        *binary({"inputs": [bin_input(12)]}, F32x3, b"junk"),
        SIG,
        "bad_framing",
        "4 bytes after the JSON header",
    ),
    (
        "binary-size-vs-shape",
        *binary({"inputs": [bin_input(8)]}, F32x3[:8]),
        SIG,
        "bad_shape",
        "binary data is 8 bytes",
    ),
    (
        "binary-without-header-length",
        orjson.dumps({"inputs": [bin_input(12)]}) + F32x3,
        None,
        SIG,
        "malformed_json",
        "not valid JSON",
    ),
    (
        "binary-size-no-header-length",
        orjson.dumps({"inputs": [bin_input(12)]}),
        None,
        SIG,
        "bad_framing",
        "no Inference-Header-Content-Length",
    ),
    (
        "binary-nan",
        *binary({"inputs": [bin_input(12)]}, np.array([1, np.nan, 3], "<f4").tobytes()),
        SIG,
        "non_finite",
        "feature 'income': missing value",
    ),
    (
        "binary-bool-byte",
        *binary({"inputs": [bin_input(3, datatype="BOOL")]}, b"\x01\x02\x00"),
        SIG,
        "bad_dtype",
        "feature 'income': BOOL byte is not 0 or 1",
    ),
    (
        "bytes-truncated-length",
        *binary(
            {
                "inputs": [
                    {"name": "tenure", "shape": [1, 1], "datatype": "FP32", "data": [1.0]},
                    bin_input(2, shape=(1, 1), datatype="BYTES", name="plan"),
                ]
            },
            b"\x02\x00",
        ),
        MIXED,
        "bad_framing",
        "ends inside element",
    ),
    (
        "bytes-overlong-element",
        *binary(
            {
                "inputs": [
                    {"name": "tenure", "shape": [1, 1], "datatype": "FP32", "data": [1.0]},
                    bin_input(6, shape=(1, 1), datatype="BYTES", name="plan"),
                ]
            },
            b"\xff\x00\x00\x00ab",
        ),
        MIXED,
        "bad_framing",
        "declares 255 bytes",
    ),
    (
        "bytes-extra",
        *binary(
            {
                "inputs": [
                    {"name": "tenure", "shape": [1, 1], "datatype": "FP32", "data": [1.0]},
                    bin_input(7, shape=(1, 1), datatype="BYTES", name="plan"),
                ]
            },
            b"\x02\x00\x00\x00abc",
        ),
        MIXED,
        "bad_framing",
        "1 bytes of BYTES data left",
    ),
    (
        "bytes-not-utf8",
        *binary(
            {
                "inputs": [
                    {"name": "tenure", "shape": [1, 1], "datatype": "FP32", "data": [1.0]},
                    bin_input(6, shape=(1, 1), datatype="BYTES", name="plan"),
                ]
            },
            b"\x02\x00\x00\x00\xff\xfe",
        ),
        MIXED,
        "bad_dtype",
        "not valid UTF-8",
    ),
]


@pytest.mark.parametrize(
    ("body", "header_length", "sig", "reason", "fragment"),
    [case[1:] for case in OIP_CASES],
    ids=[case[0] for case in OIP_CASES],
)
def test_bad_infer_requests(body, header_length, sig, reason: str, fragment: str) -> None:
    with pytest.raises(InputError) as err:
        decode_infer_request(body, header_length, sig)
    assert err.value.reason == reason
    assert fragment in str(err.value)
    assert "\n" not in str(err.value)
    assert err.value.status == 400


def test_a_long_string_among_numbers_allocates_no_huge_array() -> None:
    # a dtype-less np.array would build a 1803-value x 20k-char unicode array here (144 MB)
    sig = numeric_sig(max_rows=1000)
    rows = [[1.0, 2.0, 3.0]] * 600 + [[1.0, 2.0, "x" * 20_000]]
    tracemalloc.start()
    try:
        with pytest.raises(InputError, match="row 600, feature 'score': expected a number") as err:
            decode_infer_request(one(rows, shape=(601, 3)), None, sig)
        with pytest.raises(InputError, match="row 600, feature 'score'"):
            decode_predict_request(dumps({"instances": rows}), sig)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert err.value.reason == "non_numeric"
    assert peak < 20_000_000


def test_inf_in_json_is_impossible_and_huge_numbers_overflow_cleanly() -> None:
    with pytest.raises(InputError) as err:
        decode_infer_request(
            b'{"inputs":[{"name":"input","shape":[1,3],"data":[1e400,1,2]}]}', None, SIG
        )
    assert err.value.reason == "malformed_json"


def test_int32_range() -> None:
    schema = {
        "task": "regression",
        "features": [{"name": "a"}],
        "inputs": [{"name": "x", "datatype": "INT32", "shape": [-1, 1], "features": ["a"]}],
        "outputs": [{"name": "y", "datatype": "FP32", "shape": [-1, 1]}],
    }
    sig = ModelSignature.from_schema(schema, max_rows=4)
    for value, reason in (
        (2**31, "out_of_range"),
        (-(2**31) - 1, "out_of_range"),
        (2**64 + 5, "bad_dtype"),
    ):  # beyond 64 bits JSON ints parse as floats
        tensor = {"name": "x", "shape": [1, 1], "datatype": "INT64", "data": [value]}
        with pytest.raises(InputError) as err:
            decode_infer_request(dumps({"inputs": [tensor]}), None, sig)
        assert err.value.reason == reason and "feature 'a'" in str(err.value)


# ---- fuzz-ish robustness: only InputError may come out ----------------------------------


def decode_any(body: bytes, header_length: int | None, sig: ModelSignature) -> None:
    try:
        decode_infer_request(body, header_length, sig)
    except InputError as exc:
        assert exc.reason and "\n" not in str(exc)


def valid_bodies() -> list[tuple[bytes, int | None, ModelSignature]]:
    x = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], dtype=np.float32)
    out = []
    for as_binary in (True, False):
        tensor = th.InferInput("input", [2, 3], "FP32").set_data_from_numpy(
            x, binary_data=as_binary
        )
        out.append((*Client.generate_request_body([tensor], request_id="r"), SIG))
        tenure = th.InferInput("tenure", [2, 1], "FP32").set_data_from_numpy(
            x[:, :1].copy(), as_binary
        )
        plan = th.InferInput("plan", [2, 1], "BYTES").set_data_from_numpy(
            np.array([["a"], ["bb"]], dtype=object), as_binary
        )
        out.append((*Client.generate_request_body([tenure, plan]), MIXED))
    return out


def test_every_truncation_of_valid_bodies() -> None:
    for body, header_length, sig in valid_bodies():
        for cut in range(len(body)):
            decode_any(body[:cut], header_length, sig)
            if header_length is not None:
                decode_any(body[:cut], min(cut, header_length) or None, sig)


def test_random_bytes_and_bit_flips() -> None:
    rng = random.Random(1234)
    bodies = valid_bodies()
    for _ in range(3000):
        body, header_length, sig = rng.choice(bodies)
        mutated = bytearray(body)
        for _ in range(rng.randint(1, 4)):
            mutated[rng.randrange(len(mutated))] = rng.randrange(256)
        decode_any(bytes(mutated), header_length, sig)
        noise = bytes(rng.randrange(256) for _ in range(rng.randint(0, 64)))
        decode_any(noise, rng.choice([None, 0, 1, len(noise), len(noise) + 1, -3]), sig)


DEEP = "__deep__"  # replaced by a 1000-deep nested list after encoding
JUNK = [
    DEEP,
    None,
    True,
    False,
    0,
    -1,
    2**63,
    2**64,
    -(2**70),
    1.5,
    -1e308,
    "",
    "x",
    "FP32",
    [],
    {},
    [[]],
    [None],
    ["a", 1],
    {"a": [1]},
    [[1, 2], [3]],
    [[[[1]]]],
    [1] * 50,
    1e39,
    "BYTES",
    "BOOL",
]


def mutate(value, rng: random.Random):
    """Replace a random node of a JSON document with junk."""
    if isinstance(value, dict) and value and rng.random() < 0.8:
        key = rng.choice(list(value))
        return {**value, key: mutate(value[key], rng)}
    if isinstance(value, list) and value and rng.random() < 0.8:
        i = rng.randrange(len(value))
        return [*value[:i], mutate(value[i], rng), *value[i + 1 :]]
    return rng.choice(JUNK)


def test_structural_junk_in_every_field() -> None:
    rng = random.Random(99)
    docs = [
        (
            orjson.loads(
                one(
                    [[1, 2, 3]],
                    outputs=[{"name": "label", "parameters": {"binary_data": True}}],
                    parameters={"binary_data_output": True},
                    id="q",
                )
            ),
            SIG,
        ),
        (orjson.loads(mixed([1.0, 2.0], ["a", "b"], shape=(2, 1))), MIXED),
    ]
    deep = b"[" * 1000 + b"{}" + b"]" * 1000
    for _ in range(4000):
        doc, sig = rng.choice(docs)
        raw = dumps(mutate(doc, rng)).replace(f'"{DEEP}"'.encode(), deep)
        decode_any(raw, None, sig)


def test_deeply_nested_json() -> None:
    for depth in (70, 500, 1023, 5000):
        nested = b"[" * depth + b"1" + b"]" * depth
        body = (
            b'{"inputs":[{"name":"input","shape":[1,3],"datatype":"FP32","data":' + nested + b"}]}"
        )
        decode_any(body, None, SIG)
        with pytest.raises(InputError):
            decode_predict_request(b'{"instances":' + nested + b"}", SIG)


def test_huge_declared_shapes_are_refused_before_allocation() -> None:
    for shape in ([2**62, 3], [8, 2**62], [2**62], [-(2**62), 3], [10**100, 3]):
        body, header_length = binary({"inputs": [bin_input(12, shape=shape)]}, F32x3)
        with pytest.raises(InputError) as err:
            decode_infer_request(body, header_length, SIG)
        assert err.value.reason in ("too_many_rows", "bad_shape")


def test_bytes_element_count_beyond_the_buffer() -> None:
    body, header_length = binary(
        {
            "inputs": [
                {"name": "tenure", "shape": [8, 1], "datatype": "FP32", "data": [1.0] * 8},
                bin_input(4, shape=(8, 1), datatype="BYTES", name="plan"),
            ]
        },
        struct.pack("<I", 0),
    )
    with pytest.raises(InputError) as err:
        decode_infer_request(body, header_length, MIXED)
    assert err.value.reason == "bad_framing" and "element 1 of 8" in str(err.value)
