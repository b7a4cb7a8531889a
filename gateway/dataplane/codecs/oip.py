"""Open Inference Protocol V2 infer request/response codec (JSON and binary tensors).

``decode_infer_request(body, header_length, sig) -> InferRequest``
    ``body`` is the raw POST body, ``header_length`` the parsed
    ``Inference-Header-Content-Length`` (see ``codecs.binary.parse_header_length``) or None.
    The result holds ``id`` (echo it), ``feeds`` (exactly the ONNX input names, model dtypes,
    shape ``[n_rows, width]``), ``n_rows``, ``outputs`` (requested names in request order,
    or None for all) and ``binary_outputs`` (names to return as binary data: an output's
    ``parameters.binary_data`` wins, else the request's ``parameters.binary_data_output``).

    Accepted: ``data`` nested or flat (only the value count must equal the product of
    ``shape``); ``shape`` ``[n, width]``, or ``[n]`` for width-1 inputs, or ``[width]`` for
    one row; request datatypes BOOL, (U)INT8..64, FP16/32/64 and BYTES, cast to the model's
    when representable (rules in ``codecs.values``: a float input reads any JSON number, bool
    or numeric string whatever the declared datatype; integer inputs are strict); binary
    tensors; a request ``id`` (string); unknown parameters are ignored. ``n_rows`` must be
    1..``sig.max_rows`` and every input must have the same number of rows.

    The protocol's schema is enforced where the one-pass decoder does not look (rare fields
    only): ``id`` a string, ``parameters`` an object wherever present (request, inputs,
    outputs), ``outputs`` a list of objects with distinct string names, ``binary_data`` and
    ``binary_data_output`` booleans, ``classification`` a non-negative integer.

    Triton's classification extension: an output requested with ``parameters.classification``
    = k > 0 (tritonclient's ``InferRequestedOutput(class_count=k)``) is answered as a BYTES
    tensor ``[n_rows, min(k, values per row)]`` of ``"<value>:<index>[:<label>]"`` strings,
    highest values first (ties: lower index first), values printed as C's ``%f`` (floats)
    or ``%d`` (integers) like Triton's ``std::to_string``; labels are the schema's classes
    for the probability output. BOOL and BYTES outputs cannot be classified (400).

    Input names: a model with ONE input takes a request with one input under any name
    (clients often default to "input_0" or "X"; the tensor's meaning is fixed by the
    schema). A model with several inputs (one per column) needs each one by its name;
    unknown, duplicate or missing names are refused.

``encode_infer_response(model, version, request_id, outputs, sig, requested)``
    -> ``(body, header_length)``; ``header_length`` is None for an all-JSON body, else the
    value of the ``Inference-Header-Content-Length`` response header. Datatypes follow the
    arrays (string labels are BYTES), ``data`` is flat row-major.

Every problem with the request raises ``gateway.errors.InputError`` whose ``reason`` is one
of: malformed_json, malformed_request, bad_framing, bad_id, unknown_input, duplicate_input,
missing_input, bad_shape, bad_dtype, non_numeric, non_finite, out_of_range, empty_batch,
too_many_rows, unknown_output.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from itertools import chain
from typing import Any

import numpy as np
import orjson

from gateway.dataplane.codecs.binary import BinaryReader, encode_tensor, split_body
from gateway.dataplane.codecs.values import (
    NUMPY_REFUSED,
    cast_numbers,
    check_compatible,
    from_buffer,
    from_json,
    short,
)
from gateway.dataplane.signature import OIP_OF_DTYPE, InputSpec, ModelSignature
from gateway.errors import InputError

_NO_BINARY: frozenset[str] = frozenset()
_DUMPS_OPTS = orjson.OPT_SERIALIZE_NUMPY
_ABSENT: Any = object()
# model output datatypes whose values can be ranked (Triton refuses BOOL and BYTES too)
_RANKABLE = frozenset(("INT32", "INT64", "FP32", "FP64"))


@dataclass(slots=True)
class InferRequest:
    id: str | None
    feeds: dict[str, np.ndarray]
    n_rows: int
    outputs: tuple[str, ...] | None
    binary_outputs: frozenset[str]
    # output name -> number of top classes asked for (the classification extension)
    classify: dict[str, int] | None = None


def _names(items: Any) -> str:
    names = [short(x) for x in items]
    return ", ".join(names[:8]) + (f" (+{len(names) - 8} more)" if len(names) > 8 else "")


def load_json_object(data: bytes | memoryview, what: str) -> dict[str, Any]:
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise InputError(f"{what} is not valid JSON: {exc}", reason="malformed_json") from None
    if type(doc) is not dict:
        raise InputError(f"{what} must be a JSON object", reason="malformed_json")
    return doc


def _parameters(owner: dict[str, Any], where: str) -> dict[str, Any] | None:
    """``owner["parameters"]``: None when absent, else it must be a JSON object."""
    params = owner.get("parameters", _ABSENT)
    if params is _ABSENT:
        return None
    if type(params) is not dict:
        raise InputError(
            f"{where}: 'parameters' must be an object, got {short(params)}",
            reason="malformed_request",
        )
    return params


def _flag(params: dict[str, Any] | None, key: str, where: str) -> bool | None:
    """A boolean parameter (None when absent)."""
    value = None if params is None else params.get(key)
    if value is not None and type(value) is not bool:
        raise InputError(
            f"{where}: parameter '{key}' must be a boolean, got {short(value)}",
            reason="malformed_request",
        )
    return value


def check_rows(n_rows: int, max_rows: int, where: str) -> None:
    if n_rows < 1:
        raise InputError(f"{where}: empty batch (0 rows)", reason="empty_batch")
    if n_rows > max_rows:
        raise InputError(
            f"{where}: {n_rows} rows is more than the limit of {max_rows} per request",
            reason="too_many_rows",
        )


def _rows(shape: Any, spec: InputSpec, where: str) -> int:
    """Number of rows a request ``shape`` means for ``spec``."""
    if type(shape) is list and len(shape) == 2 and type(shape[0]) is type(shape[1]) is int:
        if shape[1] == spec.width and shape[0] >= 0:
            return shape[0]
    if type(shape) is not list or not all(type(d) is int for d in shape):
        raise InputError(
            f"{where}: shape must be a list of integers, got {short(shape)}", reason="bad_shape"
        )
    if any(d < 0 for d in shape):
        raise InputError(f"{where}: shape {shape} has a negative dimension", reason="bad_shape")
    if len(shape) == 1 and spec.width == 1:
        return shape[0]
    if len(shape) == 1 and shape[0] == spec.width:
        return 1
    raise InputError(
        f"{where}: shape {short(shape)} does not match model input '{spec.name}' "
        f"[-1, {spec.width}]",
        reason="bad_shape",
    )


def _match_inputs(raw_inputs: Any, sig: ModelSignature) -> list[tuple[InputSpec, dict]]:
    if type(raw_inputs) is not list or not raw_inputs:
        raise InputError("request has no 'inputs' list", reason="missing_input")
    for raw in raw_inputs:
        if type(raw) is not dict or type(raw.get("name")) is not str:
            raise InputError(
                f"every input must be an object with a string 'name', got {short(raw)}",
                reason="malformed_request",
            )
    if len(sig.inputs) == 1 and len(raw_inputs) == 1:
        return [(sig.inputs[0], raw_inputs[0])]
    pairs: list[tuple[InputSpec, dict]] = []
    seen: set[str] = set()
    for raw in raw_inputs:
        name = raw["name"]
        spec = sig.input_index.get(name)
        if spec is None:
            raise InputError(
                f"unknown input {short(name)}; model inputs are {_names(sig.input_index)}",
                reason="unknown_input",
            )
        if name in seen:
            raise InputError(f"input {short(name)} is given twice", reason="duplicate_input")
        seen.add(name)
        pairs.append((spec, raw))
    missing = [s.name for s in sig.inputs if s.name not in seen]
    if missing:
        raise InputError(f"missing inputs {_names(missing)}", reason="missing_input")
    return pairs


def _decode_input(
    spec: InputSpec,
    raw: dict,
    reader: BinaryReader | None,
    n_rows: int,
    sig: ModelSignature,
    where: str,
) -> np.ndarray:
    datatype = check_compatible(raw.get("datatype"), spec, where)
    params = _parameters(raw, where)
    size = None if params is None else params.get("binary_data_size")
    if size is not None:
        if reader is None:
            raise InputError(
                f"{where}: binary_data_size given but the request has no "
                "Inference-Header-Content-Length",
                reason="bad_framing",
            )
        chunk = reader.take(size, where)
        return from_buffer(chunk, datatype, spec, n_rows, sig.allow_missing, where)
    data = raw.get("data")
    if data is None:
        raise InputError(f"{where}: no 'data' and no binary_data_size", reason="malformed_request")
    return from_json(data, datatype, spec, n_rows, sig.allow_missing, where)


def _classification(
    name: str, count: Any, datatype: str, classify: dict[str, int] | None
) -> dict[str, int] | None:
    """``classify`` plus output ``name``'s classification count (0: the raw tensor)."""
    if type(count) is not int or count < 0:
        raise InputError(
            f"output '{name}': 'classification' must be a non-negative integer, got {short(count)}",
            reason="malformed_request",
        )
    if count and datatype not in _RANKABLE:
        raise InputError(
            f"output '{name}': classification is not available for a {datatype} output",
            reason="bad_classification",
        )
    if count:
        classify = classify or {}
        classify[name] = count
    return classify


def _requested_outputs(
    doc: dict[str, Any], binary_all: bool, sig: ModelSignature
) -> tuple[tuple[str, ...] | None, frozenset[str], dict[str, int] | None]:
    """(requested names or None for all, names answered in binary, classification counts)."""
    raw_outputs = doc.get("outputs", _ABSENT)
    if raw_outputs is _ABSENT or raw_outputs == []:
        return None, (sig.output_names if binary_all else _NO_BINARY), None
    if type(raw_outputs) is not list:
        raise InputError(
            f"'outputs' must be a list, got {short(raw_outputs)}", reason="malformed_request"
        )
    names: dict[str, None] = {}
    binary: set[str] = set()
    classify: dict[str, int] | None = None
    for raw in raw_outputs:
        name = raw.get("name") if type(raw) is dict else None
        if type(name) is not str:
            raise InputError(
                f"every requested output needs a string 'name', got {short(raw)}",
                reason="malformed_request",
            )
        spec = sig.output_index.get(name)
        if spec is None:
            raise InputError(
                f"unknown output {short(name)}; model outputs are {_names(sig.output_order)}",
                reason="unknown_output",
            )
        if name in names:
            raise InputError(f"output {short(name)} is requested twice", reason="duplicate_output")
        names[name] = None
        params = raw.get("parameters", _ABSENT)
        if params is _ABSENT:
            flag = count = None
        elif type(params) is dict:
            flag, count = params.get("binary_data"), params.get("classification")
        else:
            _parameters(raw, f"output '{name}'")  # raises, naming the field
        if flag is True or (flag is None and binary_all):
            binary.add(name)
        elif flag is not None and flag is not False:
            _flag(params, "binary_data", f"output '{name}'")  # raises
        if count is not None:
            classify = _classification(name, count, spec.datatype, classify)
    return tuple(names), frozenset(binary), classify


_PLAIN_DATATYPES = frozenset(("FP32", "FP64"))
# struct codes of the float model dtypes: packing a flat list of JSON numbers converts each
# exactly as numpy's float64-then-cast does, and refuses what is not a number or overflows
_PACK_CODE = {np.dtype(np.float32): "f", np.dtype(np.float64): "d"}
_packers: dict[tuple[str, int], struct.Struct] = {}


def _pack_numbers(code: str, values: list[Any]) -> bytes | None:
    """``values`` as native floats of struct ``code``; None if one is not a number (a string,
    a null, a list) or does not fit the type."""
    key = (code, len(values))
    packer = _packers.get(key)
    if packer is None:
        packer = struct.Struct(f"={len(values)}{code}")
        if len(_packers) < 1024:
            _packers[key] = packer
    try:
        return packer.pack(*values)
    except (struct.error, OverflowError, TypeError):
        return None


def _decode_plain(doc: dict[str, Any], sig: ModelSignature) -> InferRequest | None:
    """The common request in one pass: one float input as a JSON ``data`` list with shape
    ``[n, width]``, an optional string ``id`` and nothing else. None for anything else: the
    general decoder then handles it, every error included (the checks here only decide
    which decoder runs). Values for a float model input are packed with struct; any other
    model dtype goes through the same ``cast_numbers`` as the general decoder."""
    request_id = doc.get("id")
    if len(doc) != (1 if request_id is None else 2):
        return None  # parameters, outputs or unknown keys: the general decoder
    if request_id is not None and type(request_id) is not str:
        return None
    inputs = doc.get("inputs")
    if type(inputs) is not list or len(inputs) != 1:
        return None
    raw = inputs[0]
    if type(raw) is not dict or len(raw) != 4 or raw.get("datatype") not in _PLAIN_DATATYPES:
        return None
    name, shape, data = raw.get("name"), raw.get("shape"), raw.get("data")
    spec = sig.inputs[0]
    if type(name) is not str or type(shape) is not list or type(data) is not list:
        return None
    if len(shape) != 2 or type(shape[0]) is not int or type(shape[1]) is not int:
        return None
    n_rows = shape[0]
    if shape[1] != spec.width or not 1 <= n_rows <= sig.max_rows:
        return None
    code = _PACK_CODE.get(spec.dtype)
    width = spec.width
    if code is not None and width > 1 and len(data) == n_rows:
        # nested rows ([[...], ...]: what most hand-written clients send): packed through
        # one chain when every row is a list of ``width`` values (1,000 x 30: ~1.2 ms
        # against ~2.4 ms for np.array and the cast); anything else, the path below
        if all(type(row) is list and len(row) == width for row in data):
            data = list(chain.from_iterable(data))
    if code is not None and len(data) == n_rows * width:
        # orjson never yields NaN or inf, so a flat list that packs needs no value check:
        # ~1 µs against ~5 for numpy's conversion and range check (timeit, 30 features)
        packed = _pack_numbers(code, data)
        if packed is None:
            return None  # the general decoder says which value is wrong
        feed = np.ndarray((n_rows, spec.width), spec.dtype, packed)  # read-only view
        return InferRequest(request_id, {spec.name: feed}, n_rows, None, _NO_BINARY)
    try:
        arr = np.array(data, dtype=np.float64)
    except NUMPY_REFUSED:
        return None
    if arr.size != n_rows * spec.width:
        return None
    where = spec.where if name == spec.name else f"input {short(name)}"
    feed = cast_numbers(arr.reshape(n_rows, spec.width), spec, sig.allow_missing, where)
    return InferRequest(request_id, {spec.name: feed}, n_rows, None, _NO_BINARY)


def decode_infer_request(
    body: bytes, header_length: int | None, sig: ModelSignature
) -> InferRequest:
    header, reader = split_body(body, header_length)
    doc = load_json_object(header, "request body" if reader is None else "JSON header")
    if reader is None and sig.single_numeric:
        plain = _decode_plain(doc, sig)
        if plain is not None:
            return plain
    request_id = doc.get("id", _ABSENT)
    if request_id is _ABSENT:
        request_id = None
    elif type(request_id) is not str:
        raise InputError(f"request 'id' must be a string, got {short(request_id)}", reason="bad_id")
    binary_all = _flag(_parameters(doc, "request"), "binary_data_output", "request") is True

    n_rows = -1
    feeds: dict[str, np.ndarray] = {}
    for spec, raw in _match_inputs(doc.get("inputs"), sig):
        name = raw["name"]
        where = spec.where if name == spec.name else f"input {short(name)}"
        rows = _rows(raw.get("shape"), spec, where)
        if n_rows < 0:
            check_rows(rows, sig.max_rows, where)
            n_rows = rows
        elif rows != n_rows:
            raise InputError(
                f"{where} has {rows} rows, the other inputs {n_rows}", reason="bad_shape"
            )
        feeds[spec.name] = _decode_input(spec, raw, reader, n_rows, sig, where)
    if reader is not None:
        reader.finish()
    outputs, binary, classify = _requested_outputs(doc, binary_all, sig)
    return InferRequest(request_id, feeds, n_rows, outputs, binary, classify)


def _json_default(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError


def top_classes(arr: np.ndarray, n_rows: int, count: int, labels: Any) -> np.ndarray:
    """The classification extension: each row's ``count`` highest values as BYTES strings
    ``"<value>:<index>[:<label>]"``, shape ``[n_rows, min(count, values per row)]``."""
    values = arr.reshape(n_rows, -1)
    k = min(count, values.shape[1])
    # descending by value, ties by ascending index (a stable sort of the negated values);
    # NaN sorts last
    order = np.argsort(-values.astype(np.float64), axis=1, kind="stable")[:, :k]
    fmt = "%f:%d" if values.dtype.kind == "f" else "%d:%d"
    names = [str(label) for label in labels]
    out = np.empty((n_rows, k), dtype=object)
    for r, (row, picks) in enumerate(zip(values.tolist(), order.tolist(), strict=True)):
        for j, index in enumerate(picks):
            text = fmt % (row[index], index)
            out[r, j] = f"{text}:{names[index]}" if index < len(names) else text
    return out


def encode_infer_response(
    model: str,
    version: str,
    request_id: str | None,
    outputs: dict[str, np.ndarray],
    sig: ModelSignature,
    requested: InferRequest,
) -> tuple[bytes, int | None]:
    names = requested.outputs if requested.outputs is not None else sig.output_order
    binary = requested.binary_outputs
    classify = requested.classify
    entries: list[dict[str, Any]] = []
    chunks: list[bytes | memoryview] = []
    for name in names:
        arr = outputs[name]
        if classify is not None and name in classify:
            labels = sig.classes if name == sig.probability_output else ()
            arr = top_classes(arr, requested.n_rows, classify[name], labels)
        kind = arr.dtype.kind
        datatype = "BYTES" if kind in "OUS" else OIP_OF_DTYPE[arr.dtype]
        entry: dict[str, Any] = {"name": name, "datatype": datatype, "shape": list(arr.shape)}
        if name in binary:
            chunk = encode_tensor(arr)
            entry["parameters"] = {"binary_data_size": len(chunk)}
            chunks.append(chunk)
        elif kind in "OUS":
            entry["data"] = arr.ravel().tolist()
        else:
            entry["data"] = arr.ravel()
        entries.append(entry)
    doc: dict[str, Any] = {"model_name": model, "model_version": version}
    if request_id is not None:
        doc["id"] = request_id
    doc["outputs"] = entries
    head = orjson.dumps(doc, default=_json_default, option=_DUMPS_OPTS)
    if not chunks:
        return head, None
    chunks.insert(0, head)
    return b"".join(chunks), len(head)  # the one copy of the output tensors
