"""scikit-learn -> ONNX with skl2onnx: input layout, plain probability tensors, one-line errors."""

from __future__ import annotations

import functools
import warnings
from dataclasses import dataclass
from typing import Any

import onnx
import onnxruntime
import pandas as pd
import skl2onnx
from skl2onnx import convert_sklearn, get_model_alias
from skl2onnx.common.data_types import DoubleTensorType, FloatTensorType, StringTensorType
from sklearn.base import BaseEstimator, is_classifier
from sklearn.compose import ColumnTransformer
from sklearn.pipeline import FeatureUnion, Pipeline

from converters.double_ops import DOUBLE_CONVERTERS
from converters.errors import ConversionError
from converters.estimator import final_step, iter_steps
from converters.exact_graph import build as build_exact
from converters.frameworks import register_converters
from converters.schema import build_schema, infer_features, input_plan, needs_column_inputs
from converters.trees import forest_of

# Opset 17 / ai.onnx.ml 3 load in every onnxruntime the project supports (>= 1.18) and cover
# every converter we rely on; newer opsets buy nothing for these operators.
TARGET_OPSET = 17
ML_OPSET = 3

# The two graphs `convert` builds (docs/conversion.md): float32 inputs and arithmetic, or
# float64 inputs and preprocessing with tree splits decided as scikit-learn decides them.
GRAPH_FLOAT32 = "float32"
GRAPH_EXACT = "exact-double"
GRAPHS = (GRAPH_FLOAT32, GRAPH_EXACT)

_TENSOR_TYPES = {"BYTES": StringTensorType, "FP32": FloatTensorType, "FP64": DoubleTensorType}
_CONTAINERS = (Pipeline, ColumnTransformer, FeatureUnion)


@dataclass(frozen=True, slots=True)
class Conversion:
    onnx_bytes: bytes
    schema: dict[str, Any]
    onnx_info: dict[str, Any]  # lineage "onnx" section: opsets and tool versions
    graph: str = GRAPH_FLOAT32  # one of GRAPHS


def _reason(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return (text or type(exc).__name__)[:200]


def _blame(estimator: BaseEstimator, exc: BaseException) -> str:
    """Name the pipeline step a skl2onnx failure is about (leaf steps first)."""
    message = str(exc)
    steps = list(iter_steps(estimator))
    leaves = [s for s in steps if not isinstance(s[1], _CONTAINERS)]
    containers = [s for s in steps if isinstance(s[1], _CONTAINERS)]
    for path, step in leaves + containers:
        if type(step).__name__ in message:
            return f"cannot convert step '{path}' ({type(step).__name__}): {_reason(exc)}"
    path, step = final_step(estimator)
    return f"cannot convert step '{path}' ({type(step).__name__}): {_reason(exc)}"


def check_convertible(estimator: BaseEstimator) -> None:
    """ConversionError for a step skl2onnx has no converter for, or a classifier without
    probabilities (confidence monitoring and parity need them)."""
    for path, step in iter_steps(estimator):
        try:
            get_model_alias(type(step))
        except RuntimeError:
            raise ConversionError(
                f"cannot convert step '{path}' ({type(step).__name__}): skl2onnx has no "
                "converter for this estimator type"
            ) from None
    path, final = final_step(estimator)
    if is_classifier(estimator) and not hasattr(final, "predict_proba"):
        raise ConversionError(
            f"cannot convert step '{path}' ({type(final).__name__}): the classifier has no "
            "predict_proba (wrap it in CalibratedClassifierCV or enable probabilities)"
        )


def _initial_types(inputs: list[dict[str, Any]]) -> list[tuple[str, Any]]:
    types = []
    for spec in inputs:
        width = spec["shape"][1]
        types.append((spec["name"], _TENSOR_TYPES[spec["datatype"]]([None, width])))
    return types


def _opsets(model: onnx.ModelProto) -> tuple[int, int | None]:
    found = {imp.domain: imp.version for imp in model.opset_import}
    return found.get("", found.get("ai.onnx", TARGET_OPSET)), found.get("ai.onnx.ml")


def _skl2onnx(
    part: Any,
    initial_types: list[tuple[str, Any]],
    options: dict[Any, Any],
    *,
    blame: BaseEstimator,
) -> onnx.ModelProto:
    """skl2onnx on ``part`` (the estimator, or a piece of it); errors name the step of
    ``blame`` at fault."""
    try:
        with warnings.catch_warnings():
            # skl2onnx reads attributes scikit-learn has deprecated; that is not our user's problem
            warnings.simplefilter("ignore")
            return convert_sklearn(
                part,
                initial_types=initial_types,
                target_opset={"": TARGET_OPSET, "ai.onnx.ml": ML_OPSET},
                options=options,
                custom_conversion_functions=DOUBLE_CONVERTERS,
            )
    except Exception as exc:  # skl2onnx raises anything from RuntimeError to protobuf errors
        raise ConversionError(_blame(blame, exc)) from None


def convert(
    estimator: BaseEstimator, sample: pd.DataFrame, *, graph: str = GRAPH_FLOAT32
) -> Conversion:
    """Convert a fitted estimator; ``sample`` holds its feature columns in training order.

    ``graph``: GRAPH_FLOAT32 (float32 inputs, skl2onnx's graph) or GRAPH_EXACT (float64
    inputs and preprocessing; for tree models, splits decided by scikit-learn's rule, see
    converters.exact_graph).
    """
    if graph not in GRAPHS:
        raise ValueError(f"unknown graph {graph!r}")
    exact = graph == GRAPH_EXACT
    tool_versions = register_converters(estimator)  # XGBoost / LightGBM steps, lazily
    check_convertible(estimator)
    features = infer_features(sample, "float64" if exact else "float32")
    inputs = input_plan(features, needs_column_inputs(estimator, features))
    options: dict[Any, Any] = {}
    if is_classifier(estimator):
        options[id(final_step(estimator)[1])] = {"zipmap": False}

    convert_part = functools.partial(_skl2onnx, blame=estimator)
    forest = forest_of(estimator) if exact else None
    if forest is None:
        model = convert_part(estimator, _initial_types(inputs), options)
    else:
        model = build_exact(estimator, forest, _initial_types(inputs), options, convert_part)
    onnx_bytes = model.SerializeToString()
    try:
        onnxruntime.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
    except Exception as exc:
        raise ConversionError(
            f"onnxruntime cannot load the converted graph: {_reason(exc)}"
        ) from None
    schema = build_schema(estimator, features, inputs, model)
    opset, ml_opset = _opsets(model)
    info = {
        "opset": opset,
        "ml_opset": ml_opset,
        "onnx_version": onnx.__version__,
        "skl2onnx_version": skl2onnx.__version__,
        "onnxruntime_version": onnxruntime.__version__,
        **tool_versions,
    }
    return Conversion(onnx_bytes=onnx_bytes, schema=schema, onnx_info=info, graph=graph)
