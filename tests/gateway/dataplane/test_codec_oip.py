"""OIP V2 codec against bodies built and parsed by the reference client (tritonclient.http)."""

from __future__ import annotations

import dataclasses

import numpy as np
import orjson
import pytest
import tritonclient.http as th

from gateway.dataplane.codecs.oip import decode_infer_request, encode_infer_response
from gateway.dataplane.signature import ModelSignature
from gateway.errors import InputError

Client = th.InferenceServerClient


def numeric_sig(n: int = 4, allow_missing: bool = False, max_rows: int = 64) -> ModelSignature:
    feats = [f"f{i}" for i in range(n)]
    schema = {
        "task": "classification",
        "features": [{"name": f, "dtype": "float32", "kind": "numerical"} for f in feats],
        "inputs": [{"name": "input", "datatype": "FP32", "shape": [-1, n], "features": feats}],
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
    cols = [("tenure", "FP32"), ("plan", "BYTES"), ("charges", "FP32")]
    schema = {
        "task": "classification",
        "features": [
            {"name": n, "kind": "categorical" if t == "BYTES" else "numerical"} for n, t in cols
        ],
        "inputs": [{"name": n, "datatype": t, "shape": [-1, 1], "features": [n]} for n, t in cols],
        "outputs": [
            {"name": "output_label", "datatype": "BYTES", "shape": [-1]},
            {"name": "output_probability", "datatype": "FP32", "shape": [-1, 2]},
        ],
        "label_output": "output_label",
        "probability_output": "output_probability",
        "classes": ["no", "yes"],
    }
    return ModelSignature.from_schema(schema, max_rows=64)


def int_sig(datatype: str = "INT64") -> ModelSignature:
    schema = {
        "task": "regression",
        "features": [{"name": "a"}, {"name": "b"}],
        "inputs": [{"name": "x", "datatype": datatype, "shape": [-1, 2], "features": ["a", "b"]}],
        "outputs": [{"name": "variable", "datatype": "FP32", "shape": [-1, 1]}],
        "value_output": "variable",
    }
    return ModelSignature.from_schema(schema, max_rows=64)


def triton_body(arrays: dict[str, np.ndarray], binary: bool, **kwargs) -> tuple[bytes, int | None]:
    inputs = []
    for name, arr in arrays.items():
        datatype = "BYTES" if arr.dtype == object else th.np_to_triton_dtype(arr.dtype)
        tensor = th.InferInput(name, list(arr.shape), datatype)
        tensor.set_data_from_numpy(arr, binary_data=binary)
        inputs.append(tensor)
    return Client.generate_request_body(inputs, **kwargs)


def classifier_outputs(n: int) -> dict[str, np.ndarray]:
    proba = np.linspace(0, 1, 2 * n, dtype=np.float32).reshape(n, 2)
    return {"label": np.argmax(proba, axis=1).astype(np.int64), "probabilities": proba}


X = np.array([[0.5, -1.25, 3.0, 1e-3], [2.0, 0.0, -7.5, 1e6]])


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
@pytest.mark.parametrize(
    "dtype", [np.float32, np.float64, np.int32, np.int64, np.bool_], ids=lambda d: d.__name__
)
def test_tritonclient_numeric_inputs_become_float32_feeds(dtype, binary: bool) -> None:
    sig = numeric_sig()
    data = (X > 0.1) if dtype is np.bool_ else X.astype(dtype)
    body, header_length = triton_body({"input": data}, binary, request_id="req-7")
    assert (header_length is not None) == binary
    req = decode_infer_request(body, header_length, sig)
    assert req.id == "req-7" and req.n_rows == 2
    feed = req.feeds["input"]
    assert list(req.feeds) == ["input"]
    assert feed.dtype == np.float32 and feed.shape == (2, 4) and feed.flags.c_contiguous
    np.testing.assert_array_equal(feed, data.astype(np.float32))
    # tritonclient asks for every output as binary when it names none
    assert req.outputs is None and req.binary_outputs == {"label", "probabilities"}


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
def test_tritonclient_multi_input_with_string_categoricals(binary: bool) -> None:
    sig = mixed_sig()
    arrays = {
        "tenure": np.array([[1.5], [24.0], [3.0]], dtype=np.float32),
        "plan": np.array([["basic"], ["pro"], ["zürich ✓"]], dtype=object),
        "charges": np.array([[10.0], [99.5], [0.0]], dtype=np.float32),
    }
    body, header_length = triton_body(arrays, binary)
    req = decode_infer_request(body, header_length, sig)
    assert req.id is None and req.n_rows == 3
    assert list(req.feeds) == ["tenure", "plan", "charges"]
    assert req.feeds["plan"].dtype == object and req.feeds["plan"].shape == (3, 1)
    assert req.feeds["plan"].ravel().tolist() == ["basic", "pro", "zürich ✓"]
    assert all(type(v) is str for v in req.feeds["plan"].ravel())
    np.testing.assert_array_equal(req.feeds["charges"], arrays["charges"])


def test_inputs_in_any_order_bind_by_name() -> None:
    sig = mixed_sig()
    arrays = {
        "charges": np.array([[1.0]], dtype=np.float32),
        "plan": np.array([["pro"]], dtype=object),
        "tenure": np.array([[2.0]], dtype=np.float32),
    }
    body, header_length = triton_body(arrays, True)
    req = decode_infer_request(body, header_length, sig)
    assert req.feeds["tenure"].tolist() == [[2.0]] and req.feeds["charges"].tolist() == [[1.0]]


@pytest.mark.parametrize("binary_out", [True, False], ids=["binary", "json"])
def test_response_parses_in_tritonclient(binary_out: bool) -> None:
    sig = numeric_sig()
    tensor = th.InferInput("input", [2, 4], "FP32").set_data_from_numpy(X.astype(np.float32))
    requested = [th.InferRequestedOutput(n, binary_data=binary_out) for n in sig.output_order]
    body, header_length = Client.generate_request_body(
        [tensor], outputs=requested, request_id="abc"
    )
    req = decode_infer_request(body, header_length, sig)
    assert req.outputs == ("label", "probabilities")
    outs = classifier_outputs(2)
    resp, resp_header_length = encode_infer_response("churn", "1.1.0", req.id, outs, sig, req)
    assert (resp_header_length is not None) == binary_out
    result = Client.parse_response_body(resp, header_length=resp_header_length)
    np.testing.assert_array_equal(result.as_numpy("label"), outs["label"])
    np.testing.assert_array_equal(result.as_numpy("probabilities"), outs["probabilities"])
    assert result.as_numpy("probabilities").dtype == np.float32
    meta = result.get_response()
    assert (meta["model_name"], meta["model_version"], meta["id"]) == ("churn", "1.1.0", "abc")


def test_string_labels_come_back_as_bytes_both_ways() -> None:
    sig = mixed_sig()
    outs = {
        "output_label": np.array(["yes", "no", "ünïcode"], dtype=object),
        "output_probability": np.array([[0.1, 0.9], [0.8, 0.2], [0.5, 0.5]], dtype=np.float32),
    }
    arrays = {
        "tenure": np.zeros((3, 1), np.float32),
        "plan": np.array([["a"], ["b"], ["c"]], dtype=object),
        "charges": np.zeros((3, 1), np.float32),
    }
    for binary in (True, False):
        requested = [th.InferRequestedOutput("output_label", binary_data=binary)]
        inputs = []
        for name, arr in arrays.items():
            datatype = "BYTES" if arr.dtype == object else "FP32"
            inputs.append(th.InferInput(name, [3, 1], datatype).set_data_from_numpy(arr))
        body, header_length = Client.generate_request_body(inputs, outputs=requested)
        req = decode_infer_request(body, header_length, sig)
        resp, resp_header_length = encode_infer_response("m", "1", None, outs, sig, req)
        result = Client.parse_response_body(resp, header_length=resp_header_length)
        entry = result.get_output("output_label")
        assert entry["datatype"] == "BYTES" and entry["shape"] == [3]
        got = [v.decode() if isinstance(v, bytes) else v for v in result.as_numpy("output_label")]
        assert got == ["yes", "no", "ünïcode"]
        assert result.get_output("output_probability") is None  # only what was requested
        assert "id" not in result.get_response()


def test_binary_data_output_applies_unless_an_output_overrides_it() -> None:
    sig = numeric_sig()
    doc = {
        "inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP32", "data": [1, 2, 3, 4]}],
        "outputs": [
            {"name": "probabilities"},
            {"name": "label", "parameters": {"binary_data": False}},
        ],
        "parameters": {"binary_data_output": True},
    }
    req = decode_infer_request(orjson.dumps(doc), None, sig)
    assert req.outputs == ("probabilities", "label")
    assert req.binary_outputs == {"probabilities"}
    resp, header_length = encode_infer_response("m", "1", None, classifier_outputs(1), sig, req)
    head = orjson.loads(resp[:header_length])
    assert [o["name"] for o in head["outputs"]] == ["probabilities", "label"]
    assert head["outputs"][0]["parameters"] == {"binary_data_size": 8}
    assert head["outputs"][1]["data"] == [1]


def test_plain_json_request_gets_a_plain_json_response() -> None:
    sig = numeric_sig()
    doc = {"inputs": [{"name": "input", "shape": [2, 4], "datatype": "FP32", "data": X.tolist()}]}
    req = decode_infer_request(orjson.dumps(doc), None, sig)
    assert req.outputs is None and req.binary_outputs == frozenset()
    resp, header_length = encode_infer_response("m", "2.0.0", None, classifier_outputs(2), sig, req)
    assert header_length is None
    assert orjson.loads(resp) == {
        "model_name": "m",
        "model_version": "2.0.0",
        "outputs": [
            {"name": "label", "datatype": "INT64", "shape": [2], "data": [1, 1]},
            {
                "name": "probabilities",
                "datatype": "FP32",
                "shape": [2, 2],
                "data": [0.0, pytest.approx(1 / 3), pytest.approx(2 / 3), 1.0],
            },
        ],
    }


@pytest.mark.parametrize(
    ("shape", "data"),
    [
        ([2, 4], X.tolist()),  # nested
        ([2, 4], X.ravel().tolist()),  # flat
        ([2, 4], [X[:, :2].tolist(), X[:, 2:].tolist()]),  # any nesting of the right size
    ],
    ids=["nested", "flat", "odd-nesting"],
)
def test_nested_and_flat_data(shape, data) -> None:
    doc = {"inputs": [{"name": "input", "shape": shape, "datatype": "FP64", "data": data}]}
    req = decode_infer_request(orjson.dumps(doc), None, numeric_sig())
    flat = np.array(data, dtype=np.float32).ravel()
    np.testing.assert_array_equal(req.feeds["input"].ravel(), flat)


def test_json_numbers_of_any_numeric_form_feed_a_float_input() -> None:
    # the declared datatype is not enforced value by value for float inputs: ints, bools and
    # numeric strings are read as numbers (what numpy does)
    doc = {
        "inputs": [
            {"name": "input", "shape": [1, 4], "datatype": "INT64", "data": [1, True, "2.5", 1.5]}
        ]
    }
    req = decode_infer_request(orjson.dumps(doc), None, numeric_sig())
    assert req.feeds["input"].tolist() == [[1.0, 1.0, 2.5, 1.5]]


def test_one_dimensional_shapes() -> None:
    one_row = {
        "inputs": [{"name": "input", "shape": [4], "datatype": "FP32", "data": [1, 2, 3, 4]}]
    }
    req = decode_infer_request(orjson.dumps(one_row), None, numeric_sig())
    assert req.n_rows == 1 and req.feeds["input"].shape == (1, 4)
    column = {"inputs": [{"name": "input", "shape": [3], "datatype": "FP32", "data": [1, 2, 3]}]}
    req = decode_infer_request(orjson.dumps(column), None, numeric_sig(1))
    assert req.n_rows == 3 and req.feeds["input"].shape == (3, 1)


def test_single_input_model_accepts_any_input_name() -> None:
    body, header_length = triton_body({"input_0": X.astype(np.float32)}, True)
    req = decode_infer_request(body, header_length, numeric_sig())
    assert list(req.feeds) == ["input"]


def test_multi_input_model_requires_names() -> None:
    sig = mixed_sig()
    arrays = {
        "tenure": np.zeros((1, 1), np.float32),
        "plan_typo": np.array([["a"]], dtype=object),
        "charges": np.zeros((1, 1), np.float32),
    }
    body, header_length = triton_body(arrays, True)
    with pytest.raises(InputError, match="unknown input 'plan_typo'.*'plan'") as err:
        decode_infer_request(body, header_length, sig)
    assert err.value.reason == "unknown_input"
    del arrays["plan_typo"]
    body, header_length = triton_body(arrays, True)
    with pytest.raises(InputError, match="missing inputs 'plan'") as err:
        decode_infer_request(body, header_length, sig)
    assert err.value.reason == "missing_input"


def test_unknown_parameters_are_ignored() -> None:
    tensor = th.InferInput("input", [2, 4], "FP32").set_data_from_numpy(X.astype(np.float32))
    body, header_length = Client.generate_request_body(
        [tensor],
        outputs=[th.InferRequestedOutput("label", class_count=2)],
        request_id="x",
        priority=3,
        timeout=1000,
        parameters={"tenant": "acme", "trace": {"deep": [1, 2]}},
    )
    req = decode_infer_request(body, header_length, numeric_sig())
    assert req.outputs == ("label",) and req.binary_outputs == {"label"}
    doc = {
        "parameters": {"content_type": "np", "headers": {"x": [1, None]}},
        "inputs": [
            {
                "name": "input",
                "shape": [1, 4],
                "datatype": "FP32",
                "data": [1, 2, 3, 4],
                "parameters": {"content_type": "np", "binary_data_size": None},
            },
        ],
    }
    assert decode_infer_request(orjson.dumps(doc), None, numeric_sig()).n_rows == 1


def test_missing_values_only_when_the_model_imputes() -> None:
    data = np.array([[1.0, np.nan, 2.0, 3.0]], dtype=np.float32)
    body, header_length = triton_body({"input": data}, True)
    req = decode_infer_request(body, header_length, numeric_sig(allow_missing=True))
    assert np.isnan(req.feeds["input"][0, 1])
    with pytest.raises(InputError, match="row 0, feature 'f1'.*missing value") as err:
        decode_infer_request(body, header_length, numeric_sig())
    assert err.value.reason == "non_finite"
    # JSON has no NaN: null is the missing value
    doc = {
        "inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP32", "data": [1, None, 2, 3]}]
    }
    req = decode_infer_request(orjson.dumps(doc), None, numeric_sig(allow_missing=True))
    assert np.isnan(req.feeds["input"][0, 1]) and req.feeds["input"].dtype == np.float32
    with pytest.raises(InputError, match="feature 'f1'.*missing") as err:
        decode_infer_request(orjson.dumps(doc), None, numeric_sig())
    assert err.value.reason == "non_finite"


@pytest.mark.parametrize("value", [np.inf, -np.inf])
@pytest.mark.parametrize("allow_missing", [True, False])
def test_infinity_is_always_refused(value: float, allow_missing: bool) -> None:
    data = np.array([[1.0, 2.0], [3.0, value]], dtype=np.float32)
    body, header_length = triton_body({"input": data}, True)
    with pytest.raises(InputError, match="row 1, feature 'f1': -?inf") as err:
        decode_infer_request(body, header_length, numeric_sig(2, allow_missing=allow_missing))
    assert err.value.reason == "non_finite"


def test_fp64_beyond_float32_range_is_refused() -> None:
    data = np.array([[1.0, 1e39]])
    body, header_length = triton_body({"input": data}, True)
    with pytest.raises(InputError, match="feature 'f1': 1e\\+39 does not fit FP32") as err:
        decode_infer_request(body, header_length, numeric_sig(2))
    assert err.value.reason == "out_of_range"
    doc = {"inputs": [{"name": "input", "shape": [1, 2], "datatype": "FP64", "data": [-1e300, 0]}]}
    with pytest.raises(InputError, match="feature 'f0'") as err:
        decode_infer_request(orjson.dumps(doc), None, numeric_sig(2))
    assert err.value.reason == "out_of_range"


def test_float16_and_unsigned_binary_inputs() -> None:
    for arr in (X[:, :3].astype(np.float16), np.abs(X[:, :3]).astype(np.uint16)):
        body, header_length = triton_body({"input": arr}, True)
        req = decode_infer_request(body, header_length, numeric_sig(3))
        np.testing.assert_array_equal(req.feeds["input"], arr.astype(np.float32))


def test_integer_model_inputs() -> None:
    arr = np.array([[1, -2], [2**40, 7]], dtype=np.int64)
    for binary in (True, False):
        body, header_length = triton_body({"x": arr}, binary)
        req = decode_infer_request(body, header_length, int_sig())
        assert req.feeds["x"].dtype == np.int64 and req.feeds["x"].tolist() == arr.tolist()
    body, header_length = triton_body({"x": arr}, True)
    with pytest.raises(InputError, match="row 1, feature 'a': 1099511627776 does not fit INT32"):
        decode_infer_request(body, header_length, int_sig("INT32"))
    small = np.array([[1, 0]], dtype=np.bool_)
    body, header_length = triton_body({"x": small}, True)
    assert decode_infer_request(body, header_length, int_sig("INT32")).feeds["x"].tolist() == [
        [1, 0]
    ]
    body, header_length = triton_body({"x": arr.astype(np.float32)}, True)
    with pytest.raises(InputError, match="FP32 cannot feed model input 'x' \\(INT64\\)") as err:
        decode_infer_request(body, header_length, int_sig())
    assert err.value.reason == "bad_dtype"


def test_bool_model_input() -> None:
    arr = np.array([[True, False]])
    for binary in (True, False):
        body, header_length = triton_body({"x": arr}, binary)
        req = decode_infer_request(body, header_length, int_sig("BOOL"))
        assert req.feeds["x"].dtype == np.bool_ and req.feeds["x"].tolist() == [[True, False]]
    body, header_length = triton_body({"x": arr.astype(np.int64)}, True)
    with pytest.raises(InputError, match="cannot feed") as err:
        decode_infer_request(body, header_length, int_sig("BOOL"))
    assert err.value.reason == "bad_dtype"


def test_one_pass_feeds_are_float_arrays_of_the_request_values() -> None:
    doc = one_input([0.1, -2, True, 3.4028235e38] * 2, shape=(2, 4), id="a")
    req = decode_infer_request(orjson.dumps(doc), None, numeric_sig())
    feed = req.feeds["input"]
    assert feed.dtype == np.float32 and feed.shape == (2, 4) and feed.flags.c_contiguous
    expected = np.array([[0.1, -2, 1, 3.4028235e38]] * 2, dtype=np.float64).astype(np.float32)
    np.testing.assert_array_equal(feed, expected)
    assert (req.id, req.n_rows) == ("a", 2)


def test_feeds_are_detached_from_the_request_body() -> None:
    body, header_length = triton_body({"input": X.astype(np.float32)}, True)
    buf = bytearray(body)
    req = decode_infer_request(buf, header_length, numeric_sig())
    buf[header_length:] = b"\x00" * (len(buf) - header_length)
    np.testing.assert_array_equal(req.feeds["input"], X.astype(np.float32))
    assert req.feeds["input"].flags.writeable and req.feeds["input"].flags.aligned


def aligned_body(arr: np.ndarray, datatype: str = "FP32", pad: int = 0) -> tuple[bytes, int]:
    """A binary request whose tensor starts at a multiple of 8 bytes (plus ``pad``)."""
    input_ = {"name": "input", "shape": list(arr.shape), "datatype": datatype}
    input_["parameters"] = {"binary_data_size": arr.nbytes}
    header = orjson.dumps({"inputs": [input_]})
    header += b" " * (-len(header) % 8 + pad)
    return header + arr.tobytes(), len(header)


def body_memory(body: bytes) -> np.ndarray:
    return np.frombuffer(body, dtype=np.uint8)


def test_an_aligned_binary_tensor_is_decoded_without_a_copy() -> None:
    rows = X.astype(np.float32)
    body, header_length = aligned_body(rows)
    feed = decode_infer_request(body, header_length, numeric_sig()).feeds["input"]
    # a view on the body's own buffer: the tensor's bytes were never copied
    assert np.shares_memory(feed, body_memory(body))
    base = feed
    while isinstance(base, np.ndarray):
        base = base.base
    assert isinstance(base, memoryview) and base.obj is body
    assert feed.ctypes.data == body_memory(body).ctypes.data + header_length
    assert feed.dtype == np.float32 and feed.flags.c_contiguous and not feed.flags.writeable
    np.testing.assert_array_equal(feed, rows)


@pytest.mark.parametrize("case", ["unaligned", "fp64", "bytearray"])
def test_a_binary_tensor_is_copied_once_when_a_view_cannot_serve(case: str) -> None:
    rows = X.astype(np.float32)
    if case == "unaligned":  # the tensor starts 1 byte past a multiple of 4
        body, header_length = aligned_body(rows, pad=1)
    elif case == "fp64":  # not the model's dtype: cast
        body, header_length = aligned_body(rows.astype(np.float64), "FP64")
    else:  # a mutable body could change under the model
        raw, header_length = aligned_body(rows)
        body = bytearray(raw)
    feed = decode_infer_request(body, header_length, numeric_sig()).feeds["input"]
    assert not np.shares_memory(feed, np.frombuffer(body, dtype=np.uint8))
    assert feed.dtype == np.float32 and feed.flags.aligned and feed.flags.writeable
    np.testing.assert_array_equal(feed, rows)


@pytest.mark.parametrize("allow_missing", [True, False])
def test_a_zero_copy_tensor_is_still_checked_for_missing_and_infinite_values(allow_missing):
    rows = X.astype(np.float32)
    rows[1, 3] = np.nan
    body, header_length = aligned_body(rows)
    sig = numeric_sig(allow_missing=allow_missing)
    if allow_missing:
        feed = decode_infer_request(body, header_length, sig).feeds["input"]
        assert np.shares_memory(feed, body_memory(body)) and np.isnan(feed[1, 3])
    else:
        with pytest.raises(InputError, match="row 1, feature 'f3': missing") as err:
            decode_infer_request(body, header_length, sig)
        assert err.value.reason == "non_finite"
    rows[1, 3] = -np.inf
    body, header_length = aligned_body(rows)
    with pytest.raises(InputError, match="row 1, feature 'f3': -inf") as err:
        decode_infer_request(body, header_length, sig)
    assert err.value.reason == "non_finite"


def test_binary_outputs_are_joined_once_into_the_reply() -> None:
    sig = numeric_sig()
    body, header_length = aligned_body(X.astype(np.float32))
    req = dataclasses.replace(
        decode_infer_request(body, header_length, sig),
        binary_outputs=frozenset({"label", "probabilities"}),
    )
    outputs = classifier_outputs(len(X))
    payload, length = encode_infer_response("m", "1", None, outputs, sig, req)
    assert length is not None
    expected = outputs["label"].tobytes() + outputs["probabilities"].tobytes()
    assert payload[length:] == expected


def test_regressor_response_round_trip() -> None:
    sig = int_sig()
    doc = {
        "id": "r",
        "inputs": [{"name": "x", "shape": [2, 2], "datatype": "INT64", "data": [1, 2, 3, 4]}],
    }
    req = decode_infer_request(orjson.dumps(doc), None, sig)
    value = np.array([[0.25], [-1.5]], dtype=np.float32)
    resp, header_length = encode_infer_response("r", "3.0.0", req.id, {"variable": value}, sig, req)
    result = Client.parse_response_body(resp, header_length=header_length)
    np.testing.assert_array_equal(result.as_numpy("variable"), value)
    assert result.get_output("variable")["shape"] == [2, 1]


def test_bytes_objects_in_a_string_output_are_written_as_text() -> None:
    sig = mixed_sig()
    doc = {
        "inputs": [
            {"name": "tenure", "shape": [1, 1], "datatype": "FP32", "data": [1]},
            {"name": "plan", "shape": [1, 1], "datatype": "BYTES", "data": ["a"]},
            {"name": "charges", "shape": [1, 1], "datatype": "FP32", "data": [2]},
        ],
        "outputs": [{"name": "output_label"}],
    }
    req = decode_infer_request(orjson.dumps(doc), None, sig)
    outs = {"output_label": np.array([b"yes"], dtype=object)}
    resp, header_length = encode_infer_response("m", "1", None, outs, sig, req)
    assert header_length is None
    assert orjson.loads(resp)["outputs"][0]["data"] == ["yes"]


def one_input(data, shape=(1, 4), datatype="FP32", name="input", **doc):
    tensor = {"name": name, "shape": list(shape), "datatype": datatype, "data": data}
    return {**doc, "inputs": [tensor]}


ROW = [1, 2, 3, 4]
PLAIN_CASES = {
    "plain": one_input(ROW + ROW, shape=(2, 4)),
    "nested, with id": one_input([[0.5, -1, 2e3, 0]], datatype="FP64", id="r1"),
    "other input name": one_input(ROW, name="X"),
    "numeric strings and bools": one_input(["1.5", True, 0, -2]),
    "null": one_input([1, None, 3, 4]),
    "out of float32 range": one_input([1, 1e39, 3, 4]),
    # the largest float32, a value that rounds down to it, the first that rounds up to inf
    "float32 range edge": one_input([3.4028234663852886e38, -3.4028235677973362e38, 1e-46, 7]),
    "just past the float32 range": one_input([0, 0, -3.4028235677973366e38, 0]),
    "integers beyond 2**24": one_input([16777217, -(2**53 + 1), 2**64 - 1, -(2**63)]),
    "nested list in flat data": one_input([1, [2], 3, 4]),
    "nested rows": one_input([ROW, [0.5, -1, 1e-3, 2]], shape=(2, 4)),
    "nested rows, a bad value": one_input([ROW, [0.5, "x", 1e-3, 2]], shape=(2, 4)),
    "nested rows, a null": one_input([ROW, [0.5, None, 1e-3, 2]], shape=(2, 4)),
    "nested rows, out of float32 range": one_input([ROW, [1e39, 0, 0, 0]], shape=(2, 4)),
    "nested rows, one deeper": one_input([ROW, [1, 2, 3, [4]]], shape=(2, 4)),
    "nested rows, uneven but the right count": one_input(
        [[1, 2, 3], [4, 5, 6, 7, 8]], shape=(2, 4)
    ),
    "nested rows, a row not a list": one_input([ROW, 5, 6, 7], shape=(2, 4)),
    "non-numeric": one_input([1, "x", 3, 4]),
    "ragged": one_input([ROW, [5]], shape=(2, 4)),
    "too few values": one_input(ROW, shape=(2, 4)),
    "empty batch": one_input([], shape=(0, 4)),
    "too many rows": one_input([0] * 260, shape=(65, 4)),
    "wrong width": one_input([1, 2, 3], shape=(1, 3)),
    "bool shape": one_input(ROW, shape=(True, 4)),
    "integer datatype": one_input(ROW, datatype="INT32"),
    "id not a string": one_input(ROW, id=7),
    "null id": one_input(ROW, id=None),
    "requested outputs": one_input(ROW, outputs=[{"name": "label"}]),
    "binary output asked": one_input(ROW, parameters={"binary_data_output": True}),
    "two inputs": {"inputs": one_input(ROW)["inputs"] * 2},
    "input parameters": {"inputs": [{**one_input(ROW)["inputs"][0], "parameters": {"x": 1}}]},
}


@pytest.mark.parametrize("allow_missing", [False, True], ids=["strict", "allow_missing"])
@pytest.mark.parametrize("case", list(PLAIN_CASES))
def test_the_one_pass_decoder_answers_exactly_as_the_general_one(case, allow_missing):
    """``decode_infer_request`` takes a one-pass route for the common request shape; the same
    body through the general decoder (signature without ``single_numeric``) must give the
    same request or the same error."""
    sig = numeric_sig(allow_missing=allow_missing)
    general = dataclasses.replace(sig, single_numeric=False)
    body = orjson.dumps(PLAIN_CASES[case])

    def outcome(signature):
        try:
            req = decode_infer_request(body, None, signature)
        except InputError as exc:
            return ("error", str(exc), exc.reason)
        feeds = {k: (v.dtype.str, v.shape, v.tobytes()) for k, v in req.feeds.items()}
        return (req.id, feeds, req.n_rows, req.outputs, req.binary_outputs)

    assert outcome(sig) == outcome(general)
