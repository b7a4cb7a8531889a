"""onnxmltools' XGBoost / LightGBM converters, wrapped for skl2onnx pipelines.

Imported only once the ``frameworks`` extra is known to be installed (it imports
onnxmltools). Two things the bare converters get wrong inside a scikit-learn pipeline:

* An XGBoost model fitted on a DataFrame names its split features after the columns, and
  onnxmltools only reads ``f<index>``: the converter is handed an unnamed copy.
* Fed double tensors (a pipeline converted in float64), both converters declare double
  outputs but emit float32 tree ensembles, a graph onnxruntime refuses. The input is cast
  to float32 first, which is exactly what XGBoost does with its input (its DMatrix holds
  float32 and its split thresholds are float32), and the outputs are declared float32.
  LightGBM compares in float64; onnxmltools gives it float32 thresholds either way.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from onnx import TensorProto
from onnxmltools.convert.lightgbm.operator_converters.LightGbm import convert_lightgbm
from onnxmltools.convert.xgboost.operator_converters.XGBoost import convert_xgboost
from skl2onnx.common.data_types import DoubleTensorType, FloatTensorType
from skl2onnx.common.shape_calculator import (
    calculate_linear_classifier_output_shapes,
    calculate_linear_regressor_output_shapes,
)

Converter = Callable[[Any, Any, Any], None]
ShapeCalculator = Callable[[Any], None]


def _unnamed_xgboost(model: Any) -> Any:
    if not model.get_booster().feature_names:
        return model
    unnamed = copy.deepcopy(model)
    unnamed.get_booster().feature_names = None
    return unnamed


def float32_trees(convert: Converter, *, unname: bool) -> Converter:
    """``convert`` run on a float32 input and, for XGBoost (``unname``), an unnamed model."""

    def converter(scope: Any, operator: Any, container: Any) -> None:
        model = _unnamed_xgboost(operator.raw_operator) if unname else operator.raw_operator
        # a shallow copy of the operator: same outputs, the model and input swapped
        proxy = operator.new_raw_operator(model, operator.type)
        source = operator.inputs[0]
        if not isinstance(source.type, FloatTensorType):
            cast = scope.declare_local_variable(
                f"{source.onnx_name}_float32", FloatTensorType(source.type.shape)
            )
            container.add_node(
                "Cast",
                source.full_name,
                cast.full_name,
                to=TensorProto.FLOAT,
                name=scope.get_unique_operator_name("CastTreeInput"),
            )
            proxy.inputs = [cast]
        convert(scope, proxy, container)

    return converter


def float32_outputs(calculate: ShapeCalculator) -> ShapeCalculator:
    """skl2onnx's shape calculator, with the float32 outputs the tree ensembles produce."""

    def calculator(operator: Any) -> None:
        calculate(operator)
        for output in operator.outputs:
            if isinstance(output.type, DoubleTensorType):
                output.type = FloatTensorType(output.type.shape)

    return calculator


def converter_for(library: str) -> Converter:
    if library == "xgboost":
        return float32_trees(convert_xgboost, unname=True)
    return float32_trees(convert_lightgbm, unname=False)


def shape_calculator_for(is_classifier: bool) -> ShapeCalculator:
    if is_classifier:
        return float32_outputs(calculate_linear_classifier_output_shapes)
    return float32_outputs(calculate_linear_regressor_output_shapes)
