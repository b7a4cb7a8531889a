"""Simple JSON codec of ``POST /predict/{name}``, for people who do not speak tensors.

``decode_predict_request(body, sig) -> PredictRequest(feeds, n_rows, id)``
    Body ``{"instances": [...], "id": "optional string"}`` where every instance is either
    a list of values in the schema's feature order, or an object ``{"feature": value}``
    keyed by the schema's feature names (all instances use the same form). Numerical
    features take JSON numbers (``true``/``false`` count as 1/0, numeric strings are parsed;
    ``null`` is a missing value, accepted only when the model imputes); categorical string
    features take strings.
    Features of the schema that no ONNX input uses are accepted and dropped. The feeds are
    the same as the OIP codec's.

``encode_predict_response(model, version, request_id, outputs, sig) -> bytes``
    ``{"predictions": [...], "probabilities": [[...]], "model": name,
    "model_version": "1.1.0", "id": "..."}``. Classifiers: ``predictions`` are the class
    labels (ints or strings), ``probabilities`` one row per instance in ``classes`` order.
    Regressors: ``predictions`` are floats and there is no ``probabilities`` key. ``id`` is
    present when ``request_id`` is not None.

Errors are ``InputError`` with reason malformed_json, malformed_request, bad_id,
empty_batch, too_many_rows, wrong_feature_count, missing_feature, unknown_feature,
bad_shape, bad_dtype, non_numeric, non_finite or out_of_range.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson

from gateway.dataplane.codecs.oip import check_rows, load_json_object
from gateway.dataplane.codecs.values import NUMPY_REFUSED, cast_numbers, from_values, short
from gateway.dataplane.signature import ModelSignature
from gateway.errors import InputError

_WHERE = "instances"


@dataclass(slots=True)
class PredictRequest:
    feeds: dict[str, np.ndarray]
    n_rows: int
    id: str | None


def _listing(names: list[str]) -> str:
    shown = ", ".join(short(n) for n in names[:8])
    return shown + (f" (+{len(names) - 8} more)" if len(names) > 8 else "")


def _bad_dict_row(r: int, row: Any, sig: ModelSignature) -> InputError:
    if type(row) is not dict:
        return InputError(
            f"instance {r} is not an object like instance 0; use one form for all instances",
            reason="malformed_request",
        )
    missing = [f for f in sig.features if f not in row]
    unknown = [str(k) for k in row if k not in sig.feature_pos]
    parts = []
    if missing:
        parts.append(f"missing features {_listing(missing)}")
    if unknown:
        parts.append(f"unknown features {_listing(unknown)}")
    reason = "missing_feature" if missing else "unknown_feature"
    return InputError(f"instance {r}: {'; '.join(parts)}", reason=reason)


def _dict_rows(instances: list[Any], sig: ModelSignature) -> list[tuple]:
    getter, n_features = sig.row_getter, len(sig.features)
    rows = []
    try:
        for row in instances:
            if type(row) is not dict or len(row) != n_features:
                break
            rows.append(getter(row))
    except KeyError:
        pass
    if len(rows) == len(instances):
        return rows
    r = len(rows)
    raise _bad_dict_row(r, instances[r], sig)


def _check_table(rows: list[Any], sig: ModelSignature) -> None:
    """Refuse rows that are not lists of ``len(features)`` single values."""
    n_features = len(sig.features)
    for r, row in enumerate(rows):
        if type(row) not in (list, tuple):
            raise InputError(
                f"instance {r} is not a list like instance 0; use one form for all instances",
                reason="malformed_request",
            )
        if len(row) != n_features:
            raise InputError(
                f"instance {r} has {len(row)} values, the model takes {n_features} features "
                f"({_listing(list(sig.features))})",
                reason="wrong_feature_count",
            )
        for c, value in enumerate(row):
            if type(value) is list:
                raise InputError(
                    f"instance {r}, feature '{sig.features[c]}': expected a single value, "
                    f"got {short(value)}",
                    reason="bad_shape",
                )


def decode_predict_request(body: bytes, sig: ModelSignature) -> PredictRequest:
    doc = load_json_object(body, "request body")
    request_id = doc.get("id")
    if request_id is not None and type(request_id) is not str:
        raise InputError(f"'id' must be a string, got {short(request_id)}", reason="bad_id")
    instances = doc.get("instances")
    if type(instances) is not list:
        raise InputError(
            "request body needs an 'instances' list of rows", reason="malformed_request"
        )
    n_rows = len(instances)
    check_rows(n_rows, sig.max_rows, _WHERE)
    first = instances[0]
    if type(first) is dict:
        rows: list[Any] = _dict_rows(instances, sig)
    elif type(first) is list:
        rows = instances
    else:
        raise InputError(
            "each instance must be a list of values in feature order or an object of "
            f"feature: value, got {short(first)}",
            reason="malformed_request",
        )
    allow = sig.allow_missing
    if sig.single_numeric:
        spec = sig.inputs[0]
        try:
            arr = np.array(rows, dtype=np.float64)
        except NUMPY_REFUSED:
            arr = None
        if arr is not None and arr.ndim == 2 and arr.shape[1] == spec.width:
            feed = cast_numbers(arr, spec, allow, _WHERE)
        else:  # name the bad row, or else the bad value
            _check_table(rows, sig)
            feed = from_values([v for row in rows for v in row], spec, n_rows, allow, _WHERE)
        return PredictRequest({spec.name: feed}, n_rows, request_id)
    try:
        table = np.array(rows, dtype=object)
    except NUMPY_REFUSED:
        table = None
    if table is None or table.ndim != 2 or table.shape[1] != len(sig.features):
        _check_table(rows, sig)
        raise InputError("instances do not form a table of rows", reason="bad_shape")
    feeds = {
        spec.name: from_values(table[:, spec.columns].ravel().tolist(), spec, n_rows, allow, _WHERE)
        for spec in sig.inputs
    }
    return PredictRequest(feeds, n_rows, request_id)


def _plain(arr: np.ndarray) -> Any:
    """An output as something orjson writes: numeric arrays as is, strings as a list."""
    if arr.dtype.kind in "OUS":
        return [v.decode("utf-8", "replace") if isinstance(v, bytes) else v for v in arr.tolist()]
    return arr


def encode_predict_response(
    model: str,
    version: str,
    request_id: str | None,
    outputs: dict[str, np.ndarray],
    sig: ModelSignature,
) -> bytes:
    doc: dict[str, Any] = {"predictions": _plain(outputs[sig.prediction_output].ravel())}
    if sig.probability_output is not None:
        proba = outputs.get(sig.probability_output)
        if proba is not None:
            doc["probabilities"] = _plain(np.ascontiguousarray(proba))
    doc["model"] = model
    doc["model_version"] = version
    if request_id is not None:
        doc["id"] = request_id
    return orjson.dumps(doc, option=orjson.OPT_SERIALIZE_NUMPY)
