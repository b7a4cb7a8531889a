"""A model version's input/output signature, compiled once at load time for the codecs.

``ModelSignature.from_schema(schema, max_rows=...)`` turns the stored schema
(docs/contracts.md "Input schema") into a frozen object holding everything the per-request
codecs need, so that nothing is looked up or derived per request:

* ``inputs``: one ``InputSpec`` per ONNX graph input (name, OIP datatype, numpy dtype fed to
  onnxruntime, per-row ``width``, its ``features``, the positions of those features in the
  schema feature order), ``input_index`` by name.
* ``outputs``: one ``OutputSpec`` per ONNX output, ``output_index`` by name,
  ``output_order`` (names) and ``output_names`` (frozenset);
  ``prediction_output`` (label for classifiers, value for regressors) and
  ``probability_output`` for the ``/predict`` response.
* ``features`` (schema order), ``feature_pos``, ``row_getter`` (dict row -> tuple in feature
  order), ``classes``, ``task``, ``allow_missing``, ``max_rows``.
* ``single_numeric``: exactly one numeric input whose columns are all the features in schema
  order: the fast path of both codecs.

Helpers for the other parts of the data plane:

* ``metadata(name, versions, platform)``: the OIP model-metadata response body.
* ``empty_feeds(n_rows)``: zeros / empty strings (buffers); ``dummy_feeds(n_rows, reference)``:
  valid rows for warm-up; string inputs take categories from the version's reference
  distributions when given (an unknown category can make a OneHotEncoder graph fail).
* ``numeric_matrix(feeds)`` -> ``(n, n_numeric) float64`` over the numerical features and
  ``categorical_columns(feeds)`` -> one 1-D array per categorical feature, both in schema
  feature order, for the drift windows.

A malformed schema raises ``SchemaError`` (a ``ValueError``): that is a server-side problem
found at load time, never a client error.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

# Datatypes a model input or output may declare (docs/contracts.md), with the numpy dtype
# handed to / received from onnxruntime.
MODEL_DTYPES: dict[str, np.dtype] = {
    "FP32": np.dtype(np.float32),
    "FP64": np.dtype(np.float64),
    "INT32": np.dtype(np.int32),
    "INT64": np.dtype(np.int64),
    "BOOL": np.dtype(np.bool_),
    "BYTES": np.dtype(object),
}

# numpy dtype -> OIP datatype, for encoding whatever onnxruntime returned.
OIP_OF_DTYPE: dict[np.dtype, str] = {
    np.dtype(np.bool_): "BOOL",
    np.dtype(np.uint8): "UINT8",
    np.dtype(np.uint16): "UINT16",
    np.dtype(np.uint32): "UINT32",
    np.dtype(np.uint64): "UINT64",
    np.dtype(np.int8): "INT8",
    np.dtype(np.int16): "INT16",
    np.dtype(np.int32): "INT32",
    np.dtype(np.int64): "INT64",
    np.dtype(np.float16): "FP16",
    np.dtype(np.float32): "FP32",
    np.dtype(np.float64): "FP64",
    np.dtype(object): "BYTES",
}


class SchemaError(ValueError):
    """The stored schema cannot be served (raised at load time)."""


@dataclass(frozen=True, slots=True, eq=False)
class InputSpec:
    name: str
    datatype: str  # OIP datatype of the ONNX input
    dtype: np.dtype  # what onnxruntime is fed
    width: int  # values per row
    features: tuple[str, ...]
    columns: tuple[int, ...]  # positions of ``features`` in the schema feature order
    is_string: bool
    where: str  # error-message prefix when the request names the input as the model does

    def feature(self, col: int) -> str:
        return self.features[col]


@dataclass(frozen=True, slots=True, eq=False)
class OutputSpec:
    name: str
    datatype: str
    dtype: np.dtype
    shape: tuple[int, ...]


def _require(cond: bool, message: str) -> None:
    if not cond:
        raise SchemaError(f"invalid model schema: {message}")


def _nonempty_list(value: Any, message: str) -> list[Any]:
    _require(isinstance(value, list) and bool(value), message)
    return value


def _parse_input(raw: Any, feature_pos: dict[str, int]) -> InputSpec:
    _require(isinstance(raw, dict), f"input {raw!r} is not an object")
    name, datatype = raw.get("name"), raw.get("datatype")
    _require(isinstance(name, str) and bool(name), f"input without a name: {raw!r}")
    _require(
        isinstance(datatype, str) and datatype in MODEL_DTYPES,
        f"input {name!r} has unsupported datatype {datatype!r}",
    )
    shape = raw.get("shape") or [-1, 1]
    _require(
        isinstance(shape, list) and 1 <= len(shape) <= 2 and all(type(d) is int for d in shape),
        f"input {name!r} has shape {shape!r}, expected [-1, width]",
    )
    features = tuple(raw.get("features") or ())
    _require(bool(features), f"input {name!r} lists no features")
    width = shape[1] if len(shape) == 2 and shape[1] > 0 else len(features)
    _require(
        len(features) == width,
        f"input {name!r} has width {width} but lists {len(features)} features",
    )
    unknown = [f for f in features if f not in feature_pos]
    _require(not unknown, f"input {name!r} lists unknown features {unknown}")
    return InputSpec(
        name=name,
        datatype=datatype,
        dtype=MODEL_DTYPES[datatype],
        width=width,
        features=features,
        columns=tuple(feature_pos[f] for f in features),
        is_string=datatype == "BYTES",
        where=f"input {name!r}",
    )


def _parse_output(raw: Any) -> OutputSpec:
    _require(isinstance(raw, dict) and isinstance(raw.get("name"), str), f"bad output {raw!r}")
    datatype = raw.get("datatype")
    _require(
        isinstance(datatype, str) and datatype in MODEL_DTYPES,
        f"output {raw['name']!r} has datatype {datatype!r}",
    )
    shape = raw.get("shape") or [-1]
    _require(isinstance(shape, list), f"output {raw['name']!r} has shape {shape!r}")
    return OutputSpec(raw["name"], datatype, MODEL_DTYPES[datatype], tuple(shape))


def _row_getter(features: tuple[str, ...]) -> Callable[[dict], tuple]:
    if len(features) == 1:
        only = features[0]
        return lambda row: (row[only],)
    return operator.itemgetter(*features)


@dataclass(frozen=True, slots=True, eq=False)
class ModelSignature:
    task: str
    features: tuple[str, ...]
    feature_kinds: tuple[str, ...]
    feature_pos: dict[str, int]
    inputs: tuple[InputSpec, ...]
    input_index: dict[str, InputSpec]
    outputs: tuple[OutputSpec, ...]
    output_index: dict[str, OutputSpec]
    output_order: tuple[str, ...]
    output_names: frozenset[str]
    prediction_output: str
    probability_output: str | None
    classes: tuple[Any, ...]
    allow_missing: bool
    max_rows: int
    single_numeric: bool
    row_getter: Callable[[dict], tuple]
    numeric_features: tuple[str, ...]
    categorical_features: tuple[str, ...]
    # (input name, column) of every numerical / categorical feature, schema order
    numeric_locs: tuple[tuple[str, int], ...]
    categorical_locs: tuple[tuple[str, int], ...]

    @classmethod
    def from_schema(cls, schema: Mapping[str, Any], *, max_rows: int) -> ModelSignature:
        _require(isinstance(schema, Mapping), "schema is not an object")
        _require(type(max_rows) is int and max_rows >= 1, f"max_rows={max_rows!r}")
        task = schema.get("task")
        if task not in ("classification", "regression"):
            raise SchemaError(f"invalid model schema: unknown task {task!r}")
        raw_features = schema.get("features") or []
        _require(isinstance(raw_features, list), "features is not a list")
        names = tuple(
            f["name"]
            for f in raw_features
            if isinstance(f, dict) and isinstance(f.get("name"), str)
        )
        _require(bool(names) and len(names) == len(raw_features), "every feature needs a name")
        _require(len(set(names)) == len(names), "feature names are not unique")
        kinds = tuple(str(f.get("kind", "numerical")) for f in raw_features)
        feature_pos = {n: i for i, n in enumerate(names)}

        raw_inputs = _nonempty_list(schema.get("inputs"), "no inputs")
        inputs = tuple(_parse_input(raw, feature_pos) for raw in raw_inputs)
        _require(len({i.name for i in inputs}) == len(inputs), "input names are not unique")
        raw_outputs = _nonempty_list(schema.get("outputs"), "no outputs")
        outputs = tuple(_parse_output(raw) for raw in raw_outputs)
        output_index = {o.name: o for o in outputs}

        prediction = schema.get("label_output") or schema.get("value_output") or outputs[0].name
        probability = schema.get("probability_output")
        _require(prediction in output_index, f"prediction output {prediction!r} is not an output")
        _require(
            probability is None or probability in output_index,
            f"probability output {probability!r} is not an output",
        )

        locs: dict[str, tuple[str, int]] = {}
        for spec in inputs:
            for col, feat in enumerate(spec.features):
                locs[feat] = (spec.name, col)
        numeric = tuple(n for n, k in zip(names, kinds, strict=True) if k != "categorical")
        categorical = tuple(n for n, k in zip(names, kinds, strict=True) if k == "categorical")
        single = inputs[0]
        single_numeric = (
            len(inputs) == 1
            and not single.is_string
            and single.features == names
            and single.datatype in ("FP32", "FP64")
        )
        return cls(
            task=task,
            features=names,
            feature_kinds=kinds,
            feature_pos=feature_pos,
            inputs=inputs,
            input_index={i.name: i for i in inputs},
            outputs=outputs,
            output_index=output_index,
            output_order=tuple(o.name for o in outputs),
            output_names=frozenset(output_index),
            prediction_output=prediction,
            probability_output=probability,
            classes=tuple(schema.get("classes") or ()),
            allow_missing=bool(schema.get("allow_missing", False)),
            max_rows=max_rows,
            single_numeric=single_numeric,
            row_getter=_row_getter(names),
            numeric_features=tuple(f for f in numeric if f in locs),
            categorical_features=tuple(f for f in categorical if f in locs),
            numeric_locs=tuple(locs[f] for f in numeric if f in locs),
            categorical_locs=tuple(locs[f] for f in categorical if f in locs),
        )

    def metadata(
        self, name: str, versions: Sequence[str], platform: str = "onnxruntime_onnx"
    ) -> dict[str, Any]:
        """OIP ``GET /v2/models/{name}[/versions/{v}]`` body; -1 is the batch dimension."""
        return {
            "name": name,
            "versions": list(versions),
            "platform": platform,
            "inputs": [
                {"name": i.name, "datatype": i.datatype, "shape": [-1, i.width]}
                for i in self.inputs
            ],
            "outputs": [
                {"name": o.name, "datatype": o.datatype, "shape": [-1, *o.shape[1:]]}
                for o in self.outputs
            ],
        }

    def empty_feeds(self, n_rows: int) -> dict[str, np.ndarray]:
        """Zero / empty-string feeds of ``n_rows`` rows (buffers, shape probes)."""
        return {
            i.name: np.full((n_rows, i.width), "", dtype=object)
            if i.is_string
            else np.zeros((n_rows, i.width), dtype=i.dtype)
            for i in self.inputs
        }

    def dummy_feeds(
        self, n_rows: int = 1, reference: Mapping[str, Any] | None = None
    ) -> dict[str, np.ndarray]:
        """Valid warm-up feeds: zeros for numbers, known categories for strings.

        ``reference`` is the version's reference distributions (docs/contracts.md); string
        features take their reference categories in turn (else "" is used).
        """
        cats = (reference or {}).get("categorical") or {}
        feeds = self.empty_feeds(n_rows)
        for spec in self.inputs:
            if not spec.is_string:
                continue
            for col, feat in enumerate(spec.features):
                known = (cats.get(feat) or {}).get("categories") or [""]
                feeds[spec.name][:, col] = [str(known[r % len(known)]) for r in range(n_rows)]
        return feeds

    def numeric_matrix(self, feeds: Mapping[str, np.ndarray]) -> np.ndarray:
        """``(n, len(numeric_features))`` float64 matrix of the numerical features."""
        if self.single_numeric and len(self.numeric_features) == len(self.features):
            return feeds[self.inputs[0].name].astype(np.float64)
        if not self.numeric_locs:
            n = len(next(iter(feeds.values()))) if feeds else 0
            return np.empty((n, 0), dtype=np.float64)
        columns = [feeds[name][:, col] for name, col in self.numeric_locs]
        return np.column_stack(columns).astype(np.float64, copy=False)

    def categorical_columns(self, feeds: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        """One 1-D array per categorical feature (str objects for BYTES inputs)."""
        return [feeds[name][:, col] for name, col in self.categorical_locs]
