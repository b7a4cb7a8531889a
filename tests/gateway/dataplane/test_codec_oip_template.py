"""The pre-encoded OIP answer gives exactly ``encode_infer_response``'s bytes, or declines."""

from __future__ import annotations

import numpy as np
import orjson
import pytest

from gateway.dataplane.codecs import oip_template
from gateway.dataplane.codecs.oip import InferRequest, encode_infer_response
from gateway.dataplane.codecs.oip_template import ReplyTemplate
from gateway.dataplane.signature import ModelSignature


def sig_with(outputs: list[tuple[str, str, list[int]]]) -> ModelSignature:
    schema = {
        "task": "regression",
        "features": [{"name": "f0", "dtype": "float32", "kind": "numerical"}],
        "inputs": [{"name": "input", "datatype": "FP32", "shape": [-1, 1], "features": ["f0"]}],
        "outputs": [{"name": n, "datatype": d, "shape": s} for n, d, s in outputs],
        "prediction_output": outputs[0][0],
    }
    return ModelSignature.from_schema(schema, max_rows=64)


def general(model: str, version: str, rid: str | None, outputs: dict, sig: ModelSignature) -> bytes:
    request = InferRequest(rid, {}, 1, None, frozenset())
    body, binary_length = encode_infer_response(model, version, rid, outputs, sig, request)
    assert binary_length is None
    return body


CLASSIFIER = [("label", "INT64", [-1]), ("probabilities", "FP32", [-1, 2])]

CASES = [
    (
        "classifier, one row",
        CLASSIFIER,
        {
            "label": np.array([1], dtype=np.int64),
            "probabilities": np.array([[0.25, 0.75]], dtype=np.float32),
        },
    ),
    (
        "classifier, three rows",
        CLASSIFIER,
        {
            "label": np.array([1, 0, 1], dtype=np.int64),
            "probabilities": np.array([[0.1, 0.9], [0.6, 0.4], [1 / 3, 2 / 3]], np.float32),
        },
    ),
    (
        "regressor float64 column",
        [("variable", "FP64", [-1, 1])],
        {"variable": np.array([[1e-300], [-2.5]], dtype=np.float64)},
    ),
    (
        # both encoders follow the arrays' dtypes, whatever the schema declares
        "int32, uint8 and bool outputs",
        [("a", "INT32", [-1]), ("b", "INT64", [-1]), ("c", "INT64", [-1])],
        {
            "a": np.array([-7, 2**31 - 1], dtype=np.int32),
            "b": np.array([0, 255], dtype=np.uint8),
            "c": np.array([True, False]),
        },
    ),
    (
        "a non-contiguous slice, as a merged batch hands back",
        CLASSIFIER,
        {
            "label": np.arange(6, dtype=np.int64)[1:2],
            "probabilities": np.asfortranarray(np.arange(12, dtype=np.float32).reshape(6, 2))[2:3],
        },
    ),
]


@pytest.mark.parametrize("rid", [None, "plain-1", 'quote " back \\ slash ü \n'])
@pytest.mark.parametrize(("what", "spec", "outputs"), CASES, ids=[c[0] for c in CASES])
def test_template_bytes_equal_the_general_encoder(what, spec, outputs, rid):
    sig = sig_with(spec)
    template = ReplyTemplate('m "x"', "1.0.0-β", sig.output_order)
    expected = general('m "x"', "1.0.0-β", rid, outputs, sig)
    assert template.encode(rid, outputs) == expected
    # a second answer of the same shape comes from the kept prefixes: still the same bytes
    assert template.encode(rid, outputs) == expected
    assert orjson.loads(expected)["outputs"][0]["name"] == spec[0][0]


def test_string_outputs_are_left_to_the_general_encoder():
    sig = sig_with([("label", "BYTES", [-1]), ("probabilities", "FP32", [-1, 2])])
    outputs = {
        "label": np.array(["yes"], dtype=object),
        "probabilities": np.array([[0.5, 0.5]], dtype=np.float32),
    }
    assert ReplyTemplate("m", "1", sig.output_order).encode("r", outputs) is None


def test_past_the_prefix_limit_answers_stay_exact(monkeypatch):
    monkeypatch.setattr(oip_template, "MAX_PREFIXES", 2)
    sig = sig_with(CLASSIFIER)
    template = ReplyTemplate("m", "1", sig.output_order)
    for rows in (1, 2, 3, 4):
        outputs = {
            "label": np.arange(rows, dtype=np.int64),
            "probabilities": np.full((rows, 2), 0.5, dtype=np.float32),
        }
        assert template.encode("r", outputs) == general("m", "1", "r", outputs, sig)
    assert len(template._prefixes) == 2
