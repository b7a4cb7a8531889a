"""skl2onnx converters for double graphs where skl2onnx's own lose precision or do not run.

SimpleImputer: skl2onnx emits the ai.onnx.ml ``Imputer`` operator, which holds float32
fill values and which onnxruntime implements for float inputs only. On double inputs this
one writes ``Where(IsNaN(x), statistics_, x)`` in double, which is what
``SimpleImputer.transform`` computes. Handed to skl2onnx per call
(``custom_conversion_functions``), never registered globally.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from onnx import TensorProto
from skl2onnx.common.data_types import DoubleTensorType
from skl2onnx.operator_converters.common import concatenate_variables
from skl2onnx.operator_converters.imputer_op import convert_sklearn_imputer
from sklearn.impute import SimpleImputer

from converters.errors import ConversionError


def convert_simple_imputer(scope: Any, operator: Any, container: Any) -> None:
    """A SimpleImputer on double inputs in double; anything else as skl2onnx does it."""
    if not isinstance(operator.inputs[0].type, DoubleTensorType):
        convert_sklearn_imputer(scope, operator, container)
        return
    imputer = operator.raw_operator
    statistics = np.asarray(imputer.statistics_, dtype=np.float64)
    missing = imputer.missing_values
    if not (isinstance(missing, float) and np.isnan(missing)):
        # no exact graph then: convert keeps the float32 one and reports its parity
        raise ConversionError(f"no double graph for SimpleImputer(missing_values={missing!r})")
    if getattr(imputer, "add_indicator", False) or np.isnan(statistics).any():
        raise ConversionError(
            "no double graph for a SimpleImputer with an indicator or an empty feature"
        )
    features = concatenate_variables(scope, operator.inputs, container)
    fill = scope.get_unique_variable_name("fill_values")
    container.add_initializer(fill, TensorProto.DOUBLE, [statistics.size], statistics.tolist())
    is_missing = scope.get_unique_variable_name("is_missing")
    container.add_node(
        "IsNaN", [features], [is_missing], name=scope.get_unique_operator_name("IsNaN")
    )
    container.add_node(
        "Where",
        [is_missing, fill, features],
        [operator.outputs[0].full_name],
        name=scope.get_unique_operator_name("Where"),
    )


DOUBLE_CONVERTERS: dict[type, Any] = {SimpleImputer: convert_simple_imputer}
