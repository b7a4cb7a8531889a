"""Any JSON a client sends as an experiment body is either a valid spec with a plan or a 400
(``InputError``): never another exception, which the API would answer 500."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.errors import InputError
from gateway.experiments.planner import plan_metric
from gateway.experiments.spec import parse_spec

numbers = st.one_of(
    st.integers(-(10**6), 10**6),
    st.floats(allow_nan=False, allow_infinity=False, width=64),
    st.sampled_from([0, 1e-300, 1e300, -0.0, 0.5, 0.02, 100]),
)
scalars = st.one_of(st.none(), st.booleans(), numbers, st.text(max_size=8))
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=8,
)
metric = st.fixed_dictionaries(
    {"name": st.sampled_from(["conversion", "revenue", "p95_latency_ms", "", 3]),
     "kind": st.sampled_from(["binary", "continuous", "guardrail", "ratio", None])},
    optional={"baseline": numbers, "sd": numbers, "tolerance": numbers, "limit": numbers,
              "higher_is_better": scalars},
)  # fmt: skip
valid_variants = st.sampled_from(
    [{"1.0.0": 50, "1.1.0": 50}, {"1.0.0": 1e-9, "1.1.0": 100 - 1e-9}, {"a": 10, "b": 90}]
)
good_metric = st.fixed_dictionaries(
    {"name": st.sampled_from(["conversion", "revenue"]),
     "kind": st.sampled_from(["binary", "continuous"])},
    optional={"baseline": numbers, "sd": numbers},
)  # fmt: skip
bodies = st.fixed_dictionaries(
    {
        "variants": st.one_of(valid_variants, json_values),
        "metrics": st.one_of(
            st.lists(good_metric, min_size=1, max_size=2), st.lists(metric, max_size=3)
        ),
        "mde": st.one_of(numbers, st.sampled_from([0.02, 0.5, 1e-200, 5.0])),
    },
    optional={
        "alpha": st.one_of(st.sampled_from([0.05, 0.01, 0.5]), numbers),
        "power": st.one_of(st.sampled_from([0.8, 0.99, 0.001]), numbers),
        "mde_kind": st.sampled_from(["relative", "absolute", "other"]),
        "baseline_days": st.one_of(st.integers(-2, 400), scalars),
        "traffic_per_day": numbers,
        "promote_winner": scalars,
        "control": scalars,
    },
)


def _check(payload: Any) -> None:
    try:
        spec = parse_spec(payload)
    except InputError:
        return
    for metric_spec in spec.metrics:
        if metric_spec.primary:
            try:
                plan = plan_metric(spec, metric_spec, (0, 0.0, 0.0))
            except InputError:
                continue
            assert plan.n_per_variant >= 2


@settings(max_examples=400, deadline=None)
@given(bodies)
def test_structured_bodies_are_a_spec_or_a_400(payload: dict[str, Any]) -> None:
    _check(payload)


@settings(max_examples=200, deadline=None)
@given(json_values)
def test_any_json_is_a_spec_or_a_400(payload: Any) -> None:
    _check(payload)
