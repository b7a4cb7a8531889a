from __future__ import annotations

import numpy as np
import pytest

from gateway.monitoring.reference import Reference, other_code


def test_parses_the_documented_layout(make_reference) -> None:
    stored = make_reference(
        np.random.default_rng(0).normal(size=(300, 2)),
        names=["tenure", "spend"],
        categorical={"plan": (["basic", "pro"], [0.7, 0.3])},
        prediction={"kind": "classes", "classes": [0, 1], "proportions": [0.8, 0.2]},
    )
    stored["confidence"] = None  # what converters store for a regressor
    ref = Reference.from_dict(stored)
    assert ref.numeric_names == ("tenure", "spend") and ref.categorical_names == ("plan",)
    assert ref.n_rows == 300 and ref.prediction_kind == "classes"
    assert ref.edges.shape == (2, 9) and ref.expected.shape == (2, 10)
    assert np.all(np.diff(ref.numerical[0].sample) >= 0)  # kept sorted for KS
    assert ref.confidence_edges is None and ref.categorical[0].other_code == 2


def test_empty_reference_is_valid() -> None:
    ref = Reference.from_dict({})
    assert ref.numerical == () and ref.prediction_kind is None and ref.edges.shape == (0, 0)


@pytest.mark.parametrize(
    ("stored", "message"),
    [
        ({"numerical": {"x": {"edges": [1.0, 1.0], "proportions": [0.5, 0.0, 0.5]}}}, "'x'"),
        ({"numerical": {"x": {"edges": [1.0, float("nan")], "proportions": [1, 0, 0]}}}, "'x'"),
        ({"numerical": {"x": {"edges": [1.0], "proportions": [1.0]}}}, "needs 2 proportions"),
        ({"numerical": {"x": {"edges": [1.0], "proportions": [0.7, 0.7]}}}, "sum to 1"),
        ({"categorical": {"c": {"categories": ["a", "a"], "frequencies": [0.5, 0.5]}}}, "repeat"),
        ({"prediction": {"kind": "scores"}}, "must be .classes. or .values."),
        ({"prediction": {"kind": "values", "edges": [0.0], "proportions": [1.0]}}, "prediction"),
    ],
)
def test_malformed_references_name_the_problem(stored: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Reference.from_dict(stored)


def test_other_code_prefers_the_lumped_tail() -> None:
    assert other_code(("a", "b")) == 2
    assert other_code(("a", "__other__", "b")) == 1
