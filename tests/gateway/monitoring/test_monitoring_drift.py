from __future__ import annotations

import json

import numpy as np
import pytest

from gateway.monitoring import stats
from gateway.monitoring.drift import compute_drift
from gateway.monitoring.reference import Reference
from gateway.monitoring.window import PredictionWindow, encode_column

FEATURES = 30
SHIFTED = (4, 13, 25)  # normal features (index % 3 == 1), shifted by half a standard deviation


class Population:
    """30 features of three shapes (log-normal, normal, uniform) with their own scales."""

    def __init__(self, seed: int) -> None:
        rng = np.random.default_rng(seed)
        self.loc = rng.uniform(-5, 5, FEATURES)
        self.scale = rng.uniform(0.5, 3.0, FEATURES)

    def sample(self, rng: np.random.Generator, n: int, shift: float = 0.0) -> np.ndarray:
        z = rng.normal(size=(n, FEATURES))
        shape = np.arange(FEATURES) % 3
        x = np.where(shape == 0, np.exp(z * 0.5), z)
        x = np.where(shape == 2, rng.uniform(-1.7, 1.7, (n, FEATURES)), x)
        x = self.loc + self.scale * x
        for j in SHIFTED:
            x[:, j] += shift * self.scale[j]  # normal features: scale is the standard deviation
        return x


@pytest.fixture(scope="module")
def population() -> Population:
    return Population(seed=42)


def _reference(population: Population, make_reference) -> Reference:
    rows = population.sample(np.random.default_rng(1), 10_000)
    return Reference.from_dict(make_reference(rows))


def _stream(window: PredictionWindow, rows: np.ndarray, batch: int = 50) -> None:
    for start in range(0, rows.shape[0], batch):
        chunk = rows[start : start + batch]
        window.record(chunk, None, np.zeros(chunk.shape[0]), None, 0.001)


@pytest.mark.slow
def test_stationary_stream_is_not_flagged(population: Population, make_reference) -> None:
    ref = _reference(population, make_reference)
    window = PredictionWindow(ref, capacity=1000)
    rng = np.random.default_rng(2)
    quiet = ks_noisy = 0
    for _ in range(100):
        _stream(window, population.sample(rng, 1000))
        report = compute_drift(window.snapshot(), ref)
        assert report.n_samples == 1000 and report.drift_score is not None
        quiet += not report.drifted_features
        ks_noisy += any(f.significant for f in report.features)
    assert quiet >= 95
    # p-values alone would cry wolf: ~1 - 0.95**30 = 79 % of stationary windows have a
    # "significant" KS test somewhere; that is why they are never decisive
    assert ks_noisy >= 50


def test_half_sd_shift_in_three_features_is_flagged_within_one_window(
    population: Population, make_reference
) -> None:
    ref = _reference(population, make_reference)
    window = PredictionWindow(ref, capacity=1000)
    rng = np.random.default_rng(3)
    _stream(window, population.sample(rng, 1000))
    assert compute_drift(window.snapshot(), ref).drifted_features == ()
    _stream(window, population.sample(rng, 1000, shift=0.5))  # one window of shifted rows
    report = compute_drift(window.snapshot(), ref)
    names = tuple(f"x{j}" for j in SHIFTED)
    assert report.drifted_features == names
    assert report.drift_score == pytest.approx(3 / 30)
    for feature in report.features:
        if feature.name in names:
            assert feature.psi >= 0.2 and feature.pvalue < 1e-10 and feature.test == "ks"


@pytest.mark.slow
def test_detection_rate_of_a_half_sd_shift(population: Population, make_reference) -> None:
    # half a standard deviation is right at the threshold (binned population PSI 0.238);
    # with 1,000-row windows the sampling noise (sd ~0.03) lets ~6 % of shifted features
    # slip under 0.2, so a window names exactly the three in ~83 % of cases
    ref = _reference(population, make_reference)
    window = PredictionWindow(ref, capacity=1000)
    rng = np.random.default_rng(4)
    names = tuple(f"x{j}" for j in SHIFTED)
    exact = flagged = 0
    for _ in range(40):
        _stream(window, population.sample(rng, 1000, shift=0.5), batch=1000)
        drifted = compute_drift(window.snapshot(), ref).drifted_features
        exact += drifted == names
        flagged += sum(name in drifted for name in names)
        assert set(drifted) <= set(names)
    assert exact >= 28 and flagged >= 105  # of 40 windows / of 120 shifted features


def test_numerical_psi_is_the_numpy_psi_of_the_window(make_reference) -> None:
    rng = np.random.default_rng(5)
    reference_rows = rng.normal(size=(4000, 3))
    ref = Reference.from_dict(make_reference(reference_rows))
    window = PredictionWindow(ref, capacity=500)
    rows = rng.normal(0.2, 1.3, (700, 3))
    rows[::17, 1] = np.nan
    _stream(window, rows, batch=33)
    snap = window.snapshot()
    report = compute_drift(snap, ref)
    for j, feature in enumerate(report.features):
        column = snap.numeric[:, j]
        assert feature.psi == pytest.approx(
            stats.psi_reference(reference_rows[:, j], column), abs=1e-9
        )
        assert feature.missing == np.isnan(column).sum() and feature.n == (~np.isnan(column)).sum()
        ks = stats.ks_2samp(ref.numerical[j].sample, column)
        assert (feature.statistic, feature.pvalue) == ks


def test_categorical_shift_is_caught_by_psi_and_chi2(make_reference) -> None:
    categories = ["basic", "pro", "team"]
    ref = Reference.from_dict(make_reference(categorical={"plan": (categories, [0.5, 0.3, 0.2])}))
    rng = np.random.default_rng(6)
    window = PredictionWindow(ref, capacity=1000)

    def feed(p: list[float]) -> None:
        codes = rng.choice(4, size=(1000, 1), p=p).astype(np.int32)
        window.record(None, codes, np.zeros(1000), None, 0.001)

    feed([0.5, 0.3, 0.2, 0.0])
    steady = compute_drift(window.snapshot(), ref).features[0]
    assert steady.drifted is False and steady.psi < 0.05 and steady.test == "chi2"
    feed([0.3, 0.3, 0.4, 0.0])
    shifted = compute_drift(window.snapshot(), ref).features[0]
    assert shifted.drifted is True and shifted.psi >= 0.2
    assert shifted.pvalue < 1e-12 and shifted.significant and shifted.dof == 2
    # a value the reference never saw lands in "other" (code 3): chi-squared explodes
    feed([0.49, 0.3, 0.19, 0.02])
    unseen = compute_drift(window.snapshot(), ref).features[0]
    assert unseen.dof == 3 and unseen.pvalue < 1e-12 and unseen.statistic > 1000


def test_prediction_drift_over_classes(make_reference) -> None:
    prediction = {"kind": "classes", "classes": ["no", "yes"], "proportions": [0.8, 0.2]}
    ref = Reference.from_dict(make_reference(prediction=prediction))
    rng = np.random.default_rng(7)
    window = PredictionWindow(ref, capacity=1000)
    window.record(None, None, (rng.random(1000) < 0.2).astype(float), rng.random(1000), 0.001)
    steady = compute_drift(window.snapshot(), ref).prediction
    assert steady.kind == "classes" and steady.drifted is False and steady.psi < 0.02
    window.record(None, None, (rng.random(1000) < 0.5).astype(float), rng.random(1000), 0.001)
    shifted = compute_drift(window.snapshot(), ref)
    assert shifted.prediction.drifted is True and shifted.prediction.psi > 0.3
    assert shifted.drifted is True and shifted.drift_score is None  # no feature was judged
    assert shifted.prediction.observed == pytest.approx([0.5, 0.5, 0.0], abs=0.05)


def test_prediction_drift_over_regression_values(make_reference) -> None:
    rng = np.random.default_rng(8)
    values = rng.gamma(2.0, 10.0, 5000)
    edges = stats.quantile_edges(values)
    prediction = {
        "kind": "values",
        "edges": edges.tolist(),
        "proportions": stats.proportions(edges, values).tolist(),
    }
    ref = Reference.from_dict(make_reference(prediction=prediction))
    window = PredictionWindow(ref, capacity=2000)
    window.record(None, None, rng.gamma(2.0, 10.0, 2000), None, 0.001)
    assert compute_drift(window.snapshot(), ref).prediction.drifted is False
    window.record(None, None, rng.gamma(2.0, 14.0, 2000), None, 0.001)
    report = compute_drift(window.snapshot(), ref).prediction
    assert report.kind == "values" and report.drifted is True


def test_no_verdict_below_the_minimum_sample_size(make_reference) -> None:
    rng = np.random.default_rng(9)
    ref = Reference.from_dict(
        make_reference(
            rng.normal(size=(3000, 2)),
            prediction={"kind": "classes", "classes": [0, 1], "proportions": [0.5, 0.5]},
        )
    )
    window = PredictionWindow(ref, capacity=1000)
    shifted = rng.normal(3.0, 1.0, (199, 2))
    window.record(shifted, None, np.zeros(199), None, 0.001)
    report = compute_drift(window.snapshot(), ref)
    assert report.drifted is None and report.reason == "insufficient samples"
    assert report.drift_score is None and report.drifted_features == ()
    for feature in report.features:
        assert feature.drifted is None and feature.reason == "insufficient samples"
        assert feature.psi > 1.0  # the statistics are still reported
    assert report.prediction.drifted is None
    window.record(shifted[:1], None, np.zeros(1), None, 0.001)  # the 200th row
    report = compute_drift(window.snapshot(), ref)
    assert report.drifted is True and report.drifted_features == ("x0", "x1")
    # a feature mostly missing gets no verdict while the others do
    rows = rng.normal(size=(1000, 2))
    rows[150:, 1] = np.nan
    window.record(rows, None, np.zeros(1000), None, 0.001)
    report = compute_drift(window.snapshot(), ref, min_samples=200)
    assert [f.drifted for f in report.features] == [False, None]
    assert report.drift_score == 0.0


def test_thresholds_are_parameters(make_reference) -> None:
    rng = np.random.default_rng(10)
    ref = Reference.from_dict(make_reference(rng.normal(size=(3000, 1))))
    window = PredictionWindow(ref, capacity=1000)
    window.record(rng.normal(0.35, 1.0, (1000, 1)), None, np.zeros(1000), None, 0.001)
    snap = window.snapshot()
    psi = compute_drift(snap, ref).features[0].psi
    assert 0.1 < psi < 0.2
    assert compute_drift(snap, ref).drifted_features == ()
    assert compute_drift(snap, ref, psi_threshold=0.1).drifted_features == ("x0",)
    assert compute_drift(snap, ref, min_samples=5000).drifted is None
    assert compute_drift(snap, ref, alpha=1e-300).features[0].significant is False
    for bad in ({"min_samples": 0}, {"psi_threshold": 0.0}, {"alpha": 1.0}):
        with pytest.raises(ValueError, match="min_samples"):
            compute_drift(snap, ref, **bad)


def test_report_is_json_ready_and_accepts_the_stored_dict(make_reference) -> None:
    rng = np.random.default_rng(11)
    stored = make_reference(
        rng.normal(size=(2000, 2)),
        categorical={"plan": (["a", "b"], [0.5, 0.5])},
        prediction={"kind": "classes", "classes": [0, 1], "proportions": [0.5, 0.5]},
    )
    stored["confidence"] = {"edges": [0.6, 0.8], "proportions": [0.2, 0.3, 0.5]}
    window = PredictionWindow(stored, capacity=300)
    rows = rng.normal(size=(300, 2))
    rows[:, 0] = np.nan  # a feature with no value at all: PSI null, no verdict
    codes = rng.integers(0, 2, (300, 1)).astype(np.int32)
    window.record(rows, codes, rng.integers(0, 2, 300).astype(float), rng.random(300), 0.001)
    report = compute_drift(window.snapshot(), stored)
    payload = report.to_dict()
    text = json.dumps(payload, allow_nan=False)
    assert json.loads(text)["features"][0]["psi"] is None
    assert payload["window_capacity"] == 300 and payload["n_samples"] == 300
    assert payload["confidence_psi"] is not None and payload["prediction"]["kind"] == "classes"
    assert set(payload) >= {"drift_score", "drifted_features", "time_span_s", "min_samples"}


def test_snapshot_and_reference_must_match(make_reference) -> None:
    rng = np.random.default_rng(12)
    window = PredictionWindow(make_reference(rng.normal(size=(100, 2)), names=["a", "b"]))
    other = make_reference(rng.normal(size=(100, 1)), names=["a"])
    with pytest.raises(ValueError, match="no feature"):
        compute_drift(window.snapshot(), other)


def test_values_in_the_lumped_tail_are_not_drift(make_reference) -> None:
    categories = ["paris", "rome", "__other__"]
    ref = Reference.from_dict(make_reference(categorical={"city": (categories, [0.5, 0.3, 0.2])}))
    window = PredictionWindow(ref, capacity=1000)
    mapping, other = window.category_encoders[0]
    rng = np.random.default_rng(13)
    cities = rng.choice(["paris", "rome", "oslo", "lima"], size=1000, p=[0.5, 0.3, 0.1, 0.1])
    codes = encode_column(mapping, other, cities, 1000).reshape(-1, 1)
    window.record(None, codes, np.zeros(1000), None, 0.001)
    feature = compute_drift(window.snapshot(), ref).features[0]
    assert feature.drifted is False and feature.psi < 0.02 and feature.dof == 2
