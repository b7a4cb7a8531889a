"""Multivariate drift: the registration fit (converters) against the serving check."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from converters.reference import build_reference
from gateway.monitoring.drift import compute_drift
from gateway.monitoring.reconstruction import SIGMAS, ReconstructionModel
from gateway.monitoring.window import PredictionWindow

NAMES = ["a", "b", "c"]
SCHEMA = {
    "task": "regression",
    "features": [{"name": n, "kind": "numerical"} for n in NAMES]
    + [{"name": "plan", "kind": "categorical"}],
    "value_output": "value",
}
PLANS = np.array(["basic", "pro", "team"])
PLAN_P = [0.6, 0.3, 0.1]


def rows(rng: np.random.Generator, n: int, corr: float) -> pd.DataFrame:
    """a, b standard normal with correlation ``corr``; c independent; plan independent."""
    cov = [[1.0, corr, 0.0], [corr, 1.0, 0.0], [0.0, 0.0, 1.0]]
    x = rng.multivariate_normal(np.zeros(3), cov, size=n)
    frame = pd.DataFrame(x, columns=NAMES)
    frame["plan"] = rng.choice(PLANS, size=n, p=PLAN_P)
    return frame


def register(frame: pd.DataFrame) -> dict:
    return build_reference(SCHEMA, frame, {"value": np.zeros(len(frame))})


def feed(window: PredictionWindow, frame: pd.DataFrame) -> None:
    mapping, other = window.category_encoders[0]
    codes = np.array([[mapping.get(v, other)] for v in frame["plan"]], dtype=np.int32)
    n = len(frame)
    window.record(frame[NAMES].to_numpy(), codes, np.zeros(n), None, 0.001)


def setup(seed: int, capacity: int) -> tuple[np.random.Generator, dict, PredictionWindow]:
    rng = np.random.default_rng(seed)
    reference = register(rows(rng, 5000, 0.8))
    return rng, reference, PredictionWindow(reference, capacity=capacity)


def test_registration_stores_a_model_that_serving_reproduces() -> None:
    rng = np.random.default_rng(7)
    frame = rows(rng, 3000, 0.8)
    reference = register(frame)
    spec = reference["multivariate"]
    # 0.8 correlation: eigenvalues 1.8, 1, 1, 0.2 of 4 columns -> 2 components reach 65 %
    assert spec["features"] == [*NAMES, "plan"]
    assert len(spec["components"]) == 2
    assert spec["explained_variance"] >= 0.65
    # the even rows fit the model, the odd rows (never seen by the fit) measure its error
    assert (spec["fit_rows"], spec["n_rows"]) == (1500, 1500)
    held_out = frame.iloc[1::2]
    window = PredictionWindow(reference, capacity=1500)
    feed(window, held_out)
    model = ReconstructionModel.from_reference(reference, window.reference)
    assert model is not None and model.n_reference == 1500
    snap = window.snapshot()
    errors = model.row_errors(snap.numeric, snap.categorical)
    # the serving encoding is the registration encoding: the same rows, the same errors
    assert abs(errors.mean() - spec["error_mean"]) < 1e-6
    assert abs(errors.std(ddof=1) - spec["error_std"]) < 1e-6
    # and the rows the fit saw have the lower (optimistic) error the split avoids storing
    fitted = PredictionWindow(reference, capacity=1500)
    feed(fitted, frame.iloc[0::2])
    seen = fitted.snapshot()
    assert model.row_errors(seen.numeric, seen.categorical).mean() < spec["error_mean"]


def test_a_stationary_stream_of_30_columns_raises_no_alarm_over_a_full_ring() -> None:
    """In-sample errors sit below new rows' errors (the PCA fits its rows' noise too): with
    30 columns (6 blocks of 5 sharing a factor, 10 components kept) the in-sample mean
    flagged 4 of these 10 stationary 10,000-row windows."""

    def rows(n: int) -> np.ndarray:
        factors = rng.normal(size=(n, 6, 1))
        return (0.7 * factors + np.sqrt(1 - 0.49) * rng.normal(size=(n, 6, 5))).reshape(n, 30)

    rng = np.random.default_rng(5)
    names = [f"x{j}" for j in range(30)]
    schema = {"task": "regression", "features": [{"name": n, "kind": "numerical"} for n in names],
              "value_output": "value"}  # fmt: skip
    reference = build_reference(
        schema, pd.DataFrame(rows(5000), columns=names), {"value": np.zeros(5000)}
    )
    window = PredictionWindow(reference, capacity=10_000)
    model = ReconstructionModel.from_reference(reference, window.reference)
    assert model is not None
    verdicts = []
    for _ in range(10):
        window.record(rows(10_000), None, np.zeros(10_000), None, 0.0)
        verdicts.append(model.check(window.snapshot(), min_samples=200).drifted)
    assert verdicts == [False] * 10


def test_correlation_flip_is_flagged_by_the_multivariate_check_only() -> None:
    rng, reference, window = setup(11, 2000)
    feed(window, rows(rng, 2000, -0.8))  # same marginals, the relation of a and b reversed
    snap = window.snapshot()
    univariate = compute_drift(snap, window.reference)
    assert univariate.drifted_features == ()
    assert all(f.drifted is False for f in univariate.features)
    assert all(f.significant is False for f in univariate.features)  # KS / chi2 too
    model = ReconstructionModel.from_reference(reference, window.reference)
    assert model is not None
    result = model.check(snap, min_samples=200)
    assert result.drifted is True
    assert result.upper is not None and result.error is not None
    assert result.error > result.upper


def stationary_scores(seed: int, windows: int, size: int) -> tuple[list[bool | None], np.ndarray]:
    """Verdicts and scores (window error minus reference mean, in standard deviations of
    the rule) of ``windows`` disjoint windows of ``size`` fresh rows from the reference law."""
    rng, reference, window = setup(seed, size)
    model = ReconstructionModel.from_reference(reference, window.reference)
    assert model is not None
    verdicts, scores = [], []
    for _ in range(windows):
        feed(window, rows(rng, size, 0.8))
        result = model.check(window.snapshot(), min_samples=200)
        assert result.error is not None and result.upper is not None
        verdicts.append(result.drifted)
        scores.append(
            (result.error - model.error_mean) / ((result.upper - model.error_mean) / SIGMAS)
        )
    return verdicts, np.array(scores)


def test_a_stationary_stream_raises_no_multivariate_alarm_in_100_windows() -> None:
    verdicts, scores = stationary_scores(23, 100, 1000)
    assert verdicts == [False] * 100, f"max |score| {np.abs(scores).max():.2f}"


@pytest.mark.slow
@pytest.mark.parametrize("size", [1000, 10_000], ids=["1k", "10k"])
def test_stationary_streams_raise_no_multivariate_alarm_in_500_windows(size: int) -> None:
    """5 registrations (seeds 100-104), 100 windows each (docs/operations.md, "What
    per-feature drift cannot see", states the false-alarm rate)."""
    verdicts: list[bool | None] = []
    scores = []
    for seed in range(100, 105):
        v, z = stationary_scores(seed, 100, size)
        verdicts += v
        scores.append(z)
    z = np.concatenate(scores)
    assert verdicts == [False] * 500, f"max |score| {np.abs(z).max():.2f}"
    # the scores look like the rule assumes: centred, unit spread (a biased reference mean,
    # as in-sample errors gave, shifts them all)
    assert abs(z.mean()) < 0.5 and 0.7 < z.std() < 1.3, (z.mean(), z.std())


def test_no_verdict_below_min_samples_and_none_for_old_versions() -> None:
    rng, reference, window = setup(3, 1000)
    feed(window, rows(rng, 150, 0.8))
    model = ReconstructionModel.from_reference(reference, window.reference)
    assert model is not None
    result = model.check(window.snapshot(), min_samples=200)
    assert (result.drifted, result.reason, result.lower) == (None, "insufficient samples", None)
    assert result.error is not None
    legacy = {k: v for k, v in reference.items() if k != "multivariate"}
    assert ReconstructionModel.from_reference(legacy, window.reference) is None


def test_fewer_than_two_columns_store_no_model() -> None:
    frame = pd.DataFrame({"a": np.random.default_rng(0).normal(size=500)})
    schema = {"task": "regression", "features": [{"name": "a", "kind": "numerical"}],
              "value_output": "value"}  # fmt: skip
    assert build_reference(schema, frame, {"value": np.zeros(500)})["multivariate"] is None
