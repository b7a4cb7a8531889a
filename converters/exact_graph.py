"""The exact-double graph of a tree model: double preprocessing, then scikit-learn's splits.

The estimator is converted in two parts joined by a Cast:

* the steps before the trees, with double inputs: skl2onnx then computes the numeric
  preprocessing with scikit-learn's own operations in double (StandardScaler: subtract then
  divide; MinMaxScaler: multiply then add), so every value reaching the trees is the value
  scikit-learn hands them;
* the tree model alone, on inputs of the precision scikit-learn compares (float32 for the
  CART family, double for HistGradientBoosting), its node rewritten by
  ``trees.make_exact``.

Converting the CART trees on float32 inputs also keeps clear of skl2onnx's double-threshold
search, which costs a bisection per node and never ends on an infinite threshold (a split
that only separates missing values).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import onnx
from onnx import helper
from onnx.compose import add_prefix_graph
from skl2onnx.common.data_types import DoubleTensorType, FloatTensorType
from sklearn.base import BaseEstimator
from sklearn.pipeline import Pipeline

from converters.errors import ConversionError
from converters.trees import Forest, make_exact

# (estimator or transformer, skl2onnx initial types, skl2onnx options) -> ONNX model
ConvertPart = Callable[[Any, list[tuple[str, Any]], dict[Any, Any]], onnx.ModelProto]

_TREE_INPUT = "tree_input"


def split_final(estimator: BaseEstimator) -> tuple[Pipeline | None, BaseEstimator]:
    """(the fitted steps before the final model as one Pipeline, or None; the final model)."""
    steps: list[tuple[str, Any]] = []
    step: Any = estimator
    while isinstance(step, Pipeline):
        steps.extend(step.steps[:-1])
        step = step.steps[-1][1]
    steps = [(name, s) for name, s in steps if s is not None and s != "passthrough"]
    return (Pipeline(steps) if steps else None), step


def _opsets(*models: onnx.ModelProto) -> list[onnx.OperatorSetIdProto]:
    versions: dict[str, int] = {}
    for model in models:
        for imp in model.opset_import:
            versions[imp.domain] = max(versions.get(imp.domain, 0), imp.version)
    return [helper.make_opsetid(domain, version) for domain, version in sorted(versions.items())]


def build(
    estimator: BaseEstimator,
    forest: Forest,
    initial_types: list[tuple[str, Any]],
    options: dict[Any, Any],
    convert_part: ConvertPart,
) -> onnx.ModelProto:
    """The joined graph (inputs as ``initial_types``, outputs those of the tree model)."""
    head, final = split_final(estimator)
    width = getattr(final, "n_features_in_", None)
    if not isinstance(width, int):
        raise ConversionError("the tree model does not record its number of input features")
    precision = onnx.TensorProto.FLOAT if forest.float32_inputs else onnx.TensorProto.DOUBLE
    tensor = FloatTensorType if forest.float32_inputs else DoubleTensorType
    tail = convert_part(final, [(_TREE_INPUT, tensor([None, width]))], options)
    make_exact(tail, forest)
    tail_graph = add_prefix_graph(tail.graph, "tree_", rename_outputs=False)
    parts = [tail]
    if head is None:
        if len(initial_types) != 1:
            raise ConversionError("a tree model without preprocessing takes one input")
        name = initial_types[0][0]
        inputs = [helper.make_tensor_value_info(name, onnx.TensorProto.DOUBLE, [None, width])]
        head_nodes: list[onnx.NodeProto] = []
        head_inits: list[onnx.TensorProto] = []
        source = name
    else:
        head_model = convert_part(head, initial_types, {})
        if len(head_model.graph.output) != 1:
            raise ConversionError("the preprocessing steps do not produce one feature matrix")
        head_graph = add_prefix_graph(head_model.graph, "prep_", rename_inputs=False)
        inputs = list(head_graph.input)
        head_nodes, head_inits = list(head_graph.node), list(head_graph.initializer)
        source = head_graph.output[0].name
        parts.append(head_model)
    cast = helper.make_node(
        "Cast", [source], [tail_graph.input[0].name], to=precision, name="exact_tree_cast"
    )
    graph = helper.make_graph(
        [*head_nodes, cast, *tail_graph.node],
        "exact_double",
        inputs,
        list(tail_graph.output),
        initializer=[*head_inits, *tail_graph.initializer],
    )
    model = helper.make_model(graph, opset_imports=_opsets(*parts))
    model.ir_version = max(p.ir_version for p in parts)
    model.producer_name, model.producer_version = tail.producer_name, tail.producer_version
    return model
