"""Tree ensembles: scikit-learn's split rule per estimator, and an ONNX tree node that keeps it.

scikit-learn sends a row left when ``x <= threshold`` (NaN: where ``missing_go_to_left`` says),
with a float64 threshold, but the precision of ``x`` depends on the estimator:

* DecisionTree, ExtraTree, RandomForest, ExtraTrees, GradientBoosting: ``x`` is cast to
  float32 first (``float32(x) <= threshold``);
* HistGradientBoosting: ``x`` stays float64 (``x <= threshold``).

skl2onnx writes every tree node with float32 thresholds (and float32 leaf values), which
moves rows lying on or next to a threshold to the other branch once the preprocessing in
front of the trees runs in float32. ``make_exact`` rewrites the node of the converted tree
model so that each split is decided as scikit-learn decides it: on float32 inputs, the
largest float32 not above each threshold for the CART family (``a <= t`` and ``a <= w``
agree for every float32 ``a``), on double inputs, double thresholds and leaf values
(``*_as_tensor``, ai.onnx.ml 3) for HistGradientBoosting. converters.exact_graph feeds it.

``Forest`` holds the scikit-learn trees in the order skl2onnx numbers them (its tree ids),
``splits_of`` reads a converted node back aligned with them, and ``walk_divergence`` finds
where two evaluations of the same tree part ways (the parity report's explanation).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import onnx
from onnx import helper, numpy_helper
from sklearn.base import BaseEstimator
from sklearn.ensemble import (
    ExtraTreesClassifier,
    ExtraTreesRegressor,
    GradientBoostingClassifier,
    GradientBoostingRegressor,
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.tree import BaseDecisionTree

from converters.errors import ConversionError
from converters.estimator import final_step

ML_DOMAIN = "ai.onnx.ml"
TREE_OPS = ("TreeEnsembleClassifier", "TreeEnsembleRegressor")
# *_as_tensor (double) attributes of the tree operators exist since ai.onnx.ml 3
EXACT_ML_OPSET = 3

_FOREST_TYPES = (
    RandomForestClassifier,
    RandomForestRegressor,
    ExtraTreesClassifier,
    ExtraTreesRegressor,
)
_BOOSTING_TYPES = (GradientBoostingClassifier, GradientBoostingRegressor)
_HIST_TYPES = (HistGradientBoostingClassifier, HistGradientBoostingRegressor)


@dataclass(frozen=True, slots=True)
class Tree:
    """One scikit-learn tree as flat per-node arrays (node ids as scikit-learn numbers them)."""

    feature: np.ndarray  # int64; meaningless at leaves
    threshold: np.ndarray  # float64; meaningless at leaves
    left: np.ndarray  # int64 child index, -1 at leaves
    right: np.ndarray  # int64 child index, -1 at leaves
    missing_left: np.ndarray  # bool: NaN goes left
    value: np.ndarray | None  # float64 leaf values (HistGradientBoosting only)

    @property
    def is_leaf(self) -> np.ndarray:
        return self.left < 0


@dataclass(frozen=True, slots=True)
class Forest:
    trees: tuple[Tree, ...]  # in skl2onnx's tree-id order
    float32_inputs: bool  # scikit-learn compares float32(x), not x
    base_values: np.ndarray | None  # float64 baseline (HistGradientBoosting)

    @property
    def rule(self) -> str:
        return "float32(x) <= threshold" if self.float32_inputs else "x <= threshold"


@dataclass(frozen=True, slots=True)
class NodeSplits:
    """A converted tree node's splits, aligned with a Forest (per tree, per scikit-learn node)."""

    threshold: tuple[np.ndarray, ...]  # float64 view of what the node compares against
    missing_left: tuple[np.ndarray, ...]
    input_name: str  # the tensor the node reads


def _cart_tree(tree: Any) -> Tree:
    left = np.asarray(tree.children_left, dtype=np.int64)
    missing = getattr(tree, "missing_go_to_left", None)
    return Tree(
        feature=np.asarray(tree.feature, dtype=np.int64),
        threshold=np.asarray(tree.threshold, dtype=np.float64),
        left=left,
        right=np.asarray(tree.children_right, dtype=np.int64),
        missing_left=(
            np.zeros(left.shape, dtype=bool) if missing is None else np.asarray(missing, dtype=bool)
        ),
        value=None,
    )


def _hist_tree(predictor: Any) -> Tree | None:
    nodes = predictor.nodes
    if np.any(nodes["is_categorical"]):
        return None  # bitset splits: no threshold to make exact
    leaf = nodes["is_leaf"].astype(bool)
    return Tree(
        feature=nodes["feature_idx"].astype(np.int64),
        threshold=nodes["num_threshold"].astype(np.float64),
        left=np.where(leaf, -1, nodes["left"].astype(np.int64)),
        right=np.where(leaf, -1, nodes["right"].astype(np.int64)),
        missing_left=nodes["missing_go_to_left"].astype(bool),
        value=nodes["value"].astype(np.float64),
    )


def forest_of(estimator: BaseEstimator) -> Forest | None:
    """The final step's trees, or None when it is not a supported tree model."""
    final = final_step(estimator)[1]
    if isinstance(final, _HIST_TYPES):
        hist = [_hist_tree(p) for per_iteration in final._predictors for p in per_iteration]
        if any(t is None for t in hist):
            return None
        baseline = np.asarray(final._baseline_prediction, dtype=np.float64).ravel()
        return Forest(tuple(t for t in hist if t is not None), False, baseline)
    if isinstance(final, _BOOSTING_TYPES):
        stages = np.asarray(final.estimators_).ravel()  # (stage, class) row-major = skl2onnx ids
        return Forest(tuple(_cart_tree(e.tree_) for e in stages), True, None)
    if isinstance(final, _FOREST_TYPES):
        return Forest(tuple(_cart_tree(e.tree_) for e in final.estimators_), True, None)
    if isinstance(final, BaseDecisionTree):
        return Forest((_cart_tree(final.tree_),), True, None)
    return None


def largest_float32_at_most(threshold: np.ndarray) -> np.ndarray:
    """For each float64 t, the largest float32 w with w <= t (so a <= t iff a <= w for
    every float32 a)."""
    t = np.asarray(threshold, dtype=np.float64)
    with np.errstate(over="ignore"):
        w = t.astype(np.float32)
    above = w.astype(np.float64) > t
    w[above] = np.nextafter(w[above], np.float32(-np.inf))
    return w


def tree_node(model: onnx.ModelProto) -> onnx.NodeProto:
    found = [n for n in model.graph.node if n.domain == ML_DOMAIN and n.op_type in TREE_OPS]
    if len(found) != 1:
        raise ConversionError(f"expected one tree-ensemble node in the graph, found {len(found)}")
    return found[0]


def _attrs(node: onnx.NodeProto) -> dict[str, onnx.AttributeProto]:
    return {a.name: a for a in node.attribute}


def _floats(attrs: dict[str, onnx.AttributeProto], name: str) -> np.ndarray:
    tensor = attrs.get(f"{name}_as_tensor")
    if tensor is not None:
        return numpy_helper.to_array(tensor.t).astype(np.float64).ravel()
    attr = attrs.get(name)
    return np.asarray(attr.floats if attr is not None else [], dtype=np.float64)


def _offsets(forest: Forest) -> np.ndarray:
    """Where each tree starts when the forest's nodes are laid end to end."""
    return np.concatenate([[0], np.cumsum([len(t.left) for t in forest.trees])]).astype(np.int64)


def _flat(forest: Forest, field: str) -> np.ndarray:
    return np.concatenate([getattr(t, field) for t in forest.trees])


def _index(forest: Forest, trees: np.ndarray, nodes: np.ndarray) -> np.ndarray:
    """Flat node positions of (tree id, node id) pairs; ConversionError when out of range."""
    offsets = _offsets(forest)
    sizes = np.diff(offsets)
    if trees.size and (
        trees.min() < 0
        or trees.max() >= sizes.size
        or nodes.min() < 0
        or np.any(nodes >= sizes[np.clip(trees, 0, max(sizes.size - 1, 0))])
    ):
        raise ConversionError("the converted tree node does not match the estimator's trees")
    return offsets[trees] + nodes


def _positions(node: onnx.NodeProto, forest: Forest) -> np.ndarray:
    """The flat forest position of every entry of the node's ``nodes_*`` lists, checked
    against the forest: same trees, same nodes, same split features."""
    attrs = _attrs(node)
    tree_ids = np.asarray(attrs["nodes_treeids"].ints, dtype=np.int64)
    node_ids = np.asarray(attrs["nodes_nodeids"].ints, dtype=np.int64)
    features = np.asarray(attrs["nodes_featureids"].ints, dtype=np.int64)
    branch = np.asarray([m != b"LEAF" for m in attrs["nodes_modes"].strings], dtype=bool)
    offsets = _offsets(forest)
    if tree_ids.size != offsets[-1]:
        raise ConversionError("the converted tree node does not match the estimator's trees")
    index = _index(forest, tree_ids, node_ids)
    if not np.all(np.bincount(index, minlength=int(offsets[-1])) == 1):
        raise ConversionError(
            f"tree {_first(index, offsets)} of the converted node has other nodes"
        )
    wrong = branch != ~(_flat(forest, "left") < 0)[index]
    if wrong.any():
        raise ConversionError(
            f"tree {tree_ids[wrong.argmax()]} of the converted node splits other nodes"
        )
    wrong = branch & (features != _flat(forest, "feature")[index])
    if wrong.any():
        raise ConversionError(
            f"tree {tree_ids[wrong.argmax()]} of the converted node splits other features"
        )
    return index


def _first(index: np.ndarray, offsets: np.ndarray) -> int:
    """The first tree whose nodes are not each listed once."""
    counts = np.bincount(index, minlength=int(offsets[-1]))
    bad = int(np.argmax(counts != 1))
    return int(np.searchsorted(offsets, bad, side="right") - 1)


def splits_of(model: onnx.ModelProto, forest: Forest) -> NodeSplits:
    """What the converted node compares, per tree and scikit-learn node id."""
    node = tree_node(model)
    index = _positions(node, forest)
    attrs = _attrs(node)
    values = _floats(attrs, "nodes_values")
    tracks = attrs.get("nodes_missing_value_tracks_true")
    missing = np.asarray(tracks.ints if tracks else np.zeros(len(values)), dtype=bool)
    total = int(_offsets(forest)[-1])
    threshold = np.zeros(total, dtype=np.float64)
    threshold[index] = values
    left = np.zeros(total, dtype=bool)
    left[index] = missing
    cuts = _offsets(forest)[1:-1]
    return NodeSplits(tuple(np.split(threshold, cuts)), tuple(np.split(left, cuts)), node.input[0])


def _replace(node: onnx.NodeProto, drop: set[str], add: list[onnx.AttributeProto]) -> None:
    kept = [a for a in node.attribute if a.name not in drop]
    del node.attribute[:]
    node.attribute.extend(kept + add)


def _exact_leaves(
    node: onnx.NodeProto, forest: Forest, drop: set[str], add: list[onnx.AttributeProto]
) -> None:
    """Double leaf values (and baseline) straight from scikit-learn's trees."""
    attrs = _attrs(node)
    prefix = "class" if node.op_type == "TreeEnsembleClassifier" else "target"
    trees = np.asarray(attrs[f"{prefix}_treeids"].ints, dtype=np.int64)
    nodes = np.asarray(attrs[f"{prefix}_nodeids"].ints, dtype=np.int64)
    exact = _flat(forest, "value")[_index(forest, trees, nodes)].astype(np.float64)
    stored = _floats(attrs, f"{prefix}_weights")
    if stored.shape != exact.shape or not np.allclose(stored, exact, rtol=1e-5, atol=1e-6):
        raise ConversionError("the converted tree node holds other leaf values")
    drop |= {f"{prefix}_weights", f"{prefix}_weights_as_tensor"}
    add.append(helper.make_attribute(f"{prefix}_weights_as_tensor", numpy_helper.from_array(exact)))
    if forest.base_values is not None and "base_values" in attrs:
        stored_base = _floats(attrs, "base_values")
        if stored_base.shape != forest.base_values.shape:
            raise ConversionError("the converted tree node holds another baseline")
        drop |= {"base_values", "base_values_as_tensor"}
        add.append(
            helper.make_attribute(
                "base_values_as_tensor", numpy_helper.from_array(forest.base_values)
            )
        )


def _float_outputs_up(model: onnx.ModelProto, node: onnx.NodeProto) -> None:
    """The tree operators return float scores whatever their input; skl2onnx declares them
    double in a double graph (directly or through an Identity), which onnxruntime refuses:
    cast those outputs up."""
    declared = {
        v.name: v.type.tensor_type.elem_type for v in [*model.graph.output, *model.graph.value_info]
    }
    identities = {n.input[0]: n.output[0] for n in model.graph.node if n.op_type == "Identity"}

    def wants_double(name: str) -> bool:
        while name not in declared and name in identities:
            name = identities[name]
        return declared.get(name) == onnx.TensorProto.DOUBLE

    scores = node.output[1:] if node.op_type == "TreeEnsembleClassifier" else node.output[:1]
    for k, name in enumerate(node.output):
        if name not in scores or not wants_double(name):
            continue
        node.output[k] = f"{name}_float32"
        double = onnx.TensorProto.DOUBLE
        up = helper.make_node("Cast", [node.output[k]], [name], to=double, name=name)
        model.graph.node.insert(list(model.graph.node).index(node) + 1, up)


def make_exact(model: onnx.ModelProto, forest: Forest) -> None:
    """Rewrite the tree node of a graph converted from the tree model alone, in place, so
    that its splits are scikit-learn's.

    The node must read float32 values for the CART family (then the largest float32 not
    above each threshold decides as scikit-learn's float64 threshold does) and double values
    for HistGradientBoosting (double thresholds and leaf values). ConversionError when the
    node does not match the forest.
    """
    node = tree_node(model)
    index = _positions(node, forest)
    thresholds = _flat(forest, "threshold")[index].astype(np.float64)
    missing = _flat(forest, "missing_left")[index].astype(np.int64)
    drop = {"nodes_values", "nodes_values_as_tensor", "nodes_missing_value_tracks_true"}
    add = [helper.make_attribute("nodes_missing_value_tracks_true", missing.tolist())]
    if forest.float32_inputs:
        below = largest_float32_at_most(thresholds).astype(np.float64)
        add.append(helper.make_attribute("nodes_values", below.tolist()))
    else:
        add.append(
            helper.make_attribute("nodes_values_as_tensor", numpy_helper.from_array(thresholds))
        )
        _exact_leaves(node, forest, drop, add)
    _replace(node, drop, add)
    _float_outputs_up(model, node)
    for imp in model.opset_import:
        if imp.domain == ML_DOMAIN and imp.version < EXACT_ML_OPSET:
            imp.version = EXACT_ML_OPSET


def _goes_left(values: np.ndarray, threshold: np.ndarray, missing_left: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        return np.where(np.isnan(values), missing_left, values <= threshold)


def walk_divergence(
    tree: Tree,
    x_a: np.ndarray,
    split_a: tuple[np.ndarray, np.ndarray],
    x_b: np.ndarray,
    split_b: tuple[np.ndarray, np.ndarray],
) -> np.ndarray:
    """Per row, the node where evaluation a (its inputs, thresholds, NaN rule) and
    evaluation b first go different ways, or -1 when both reach the same leaf."""
    rows = x_a.shape[0]
    node = np.zeros(rows, dtype=np.int64)
    out = np.full(rows, -1, dtype=np.int64)
    active = np.nonzero(~tree.is_leaf[node])[0]
    while active.size:
        current = node[active]
        feature = tree.feature[current]
        left_a = _goes_left(x_a[active, feature], split_a[0][current], split_a[1][current])
        left_b = _goes_left(x_b[active, feature], split_b[0][current], split_b[1][current])
        parted = left_a != left_b
        out[active[parted]] = current[parted]
        nxt = np.where(left_a, tree.left[current], tree.right[current])
        node[active] = nxt
        keep = ~parted & ~tree.is_leaf[nxt]
        active = active[keep]
    return out
