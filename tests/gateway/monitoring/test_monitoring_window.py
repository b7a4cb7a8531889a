from __future__ import annotations

import numpy as np
import pytest

from gateway.monitoring import stats
from gateway.monitoring.window import PredictionWindow, categorical_codes, encode_column


@pytest.fixture
def reference(make_reference) -> dict:
    rng = np.random.default_rng(0)
    return make_reference(
        rng.normal(size=(2000, 2)),
        names=["a", "b"],
        categorical={"plan": (["basic", "pro"], [0.7, 0.3])},
        prediction={"kind": "classes", "classes": [0, 1], "proportions": [0.5, 0.5]},
    )


def _rows(start: int, n: int) -> tuple[np.ndarray, ...]:
    ids = np.arange(start, start + n, dtype=np.float64)
    numeric = np.column_stack((ids, -ids))
    codes = (ids % 3).astype(np.int32).reshape(-1, 1)
    return numeric, codes, ids, ids / 1000.0


def test_wraparound_keeps_exactly_the_last_n_rows_in_order(reference, clock) -> None:
    window = PredictionWindow(reference, capacity=50, clock=clock)
    total = 0
    for n in [1, 7, 13, 29, 2, 50, 3, 1, 44, 23]:  # 173 rows, wraps several times
        numeric, codes, preds, conf = _rows(total, n)
        clock.now = float(total)
        window.record(numeric, codes, preds, conf, latency_s=n / 1000.0)
        total += n
        snap = window.snapshot()
        kept = np.arange(max(0, total - 50), total, dtype=np.float64)
        assert snap.size == len(window) == kept.size
        assert snap.predictions.tolist() == kept.tolist()
        assert snap.numeric[:, 0].tolist() == kept.tolist()
        assert snap.numeric[:, 1].tolist() == (-kept).tolist()
        assert snap.categorical[:, 0].tolist() == (kept % 3).astype(int).tolist()
        assert snap.confidence.tolist() == (kept / 1000.0).tolist()
        assert snap.recorded_total == total
        for j, feature in enumerate(window.reference.numerical):
            counts, _ = stats.bin_counts(feature.edges, kept if j == 0 else -kept)
            assert snap.counts[j].tolist() == counts.tolist()
        assert snap.missing.tolist() == [0, 0]
    assert snap.times[0] <= snap.times[-1] and snap.time_span_s == snap.times[-1] - snap.times[0]


def test_a_batch_larger_than_the_window_keeps_its_tail(reference) -> None:
    window = PredictionWindow(reference, capacity=10)
    window.record(*_rows(0, 3)[:2], np.zeros(3), None, 0.001)
    numeric, codes, preds, conf = _rows(100, 25)
    window.record(numeric, codes, preds, conf, 0.002)
    snap = window.snapshot()
    assert snap.predictions.tolist() == list(range(115, 125))
    assert snap.counts.sum(axis=1).tolist() == [10, 10]
    assert np.all(snap.latency_s == 0.002)


def test_snapshot_is_a_copy_taken_with_the_clock(reference, clock) -> None:
    window = PredictionWindow(reference, capacity=8, clock=clock)
    clock.now = 5.0
    window.record(*_rows(0, 2)[:2], np.zeros(2), None, 0.01)
    clock.now = 9.5
    window.record(*_rows(2, 2)[:2], np.ones(2), None, 0.01)
    snap = window.snapshot()
    assert snap.times.tolist() == [5.0, 5.0, 9.5, 9.5] and snap.time_span_s == 4.5
    assert snap.taken_at == 9.5 and snap.capacity == 8
    assert np.isnan(snap.confidence).all()  # a regressor records no confidence
    window.record(*_rows(4, 4)[:2], np.full(4, 7.0), None, 0.01)
    assert snap.predictions.tolist() == [0, 0, 1, 1]  # unchanged by later records


def test_nan_inputs_are_counted_missing_and_leave_again(reference) -> None:
    window = PredictionWindow(reference, capacity=4)
    window.record(np.array([[np.nan, 1.0], [np.nan, np.nan]]), np.zeros((2, 1), np.int32),
                  np.zeros(2), None, 0.0)  # fmt: skip
    assert window.snapshot().missing.tolist() == [2, 1]
    window.record(np.ones((4, 2)), np.zeros((4, 1), np.int32), np.zeros(4), None, 0.0)
    snap = window.snapshot()
    assert snap.missing.tolist() == [0, 0] and snap.counts.sum() == 8


def test_empty_window_snapshot(reference) -> None:
    snap = PredictionWindow(reference, capacity=5).snapshot()
    assert snap.size == 0 and snap.time_span_s == 0.0
    assert snap.numeric.shape == (0, 2) and snap.missing.tolist() == [0, 0]


def test_bad_calls_raise_and_leave_the_counts_consistent(reference) -> None:
    window = PredictionWindow(reference, capacity=6)
    window.record(np.zeros((2, 2)), np.zeros((2, 1), np.int32), np.zeros(2), None, 0.0)
    with pytest.raises(ValueError, match="shape"):
        window.record(np.zeros((3, 2)), np.zeros((2, 1), np.int32), np.zeros(2), None, 0.0)
    with pytest.raises(ValueError, match="categorical"):
        window.record(np.zeros((2, 2)), None, np.zeros(2), None, 0.0)
    with pytest.raises(ValueError, match="numerical"):
        window.record(None, np.zeros((2, 1), np.int32), np.zeros(2), None, 0.0)
    window.record(np.ones((5, 2)), np.zeros((5, 1), np.int32), np.ones(5), None, 0.0)
    snap = window.snapshot()
    # the failed calls advanced nothing: the oldest row is the second of the first call
    assert snap.size == 6 and snap.predictions.tolist() == [0.0] + [1.0] * 5
    for j, feature in enumerate(window.reference.numerical):
        counts, _ = stats.bin_counts(feature.edges, snap.numeric[:, j])
        assert snap.counts[j].tolist() == counts.tolist()


def test_construction_errors(reference) -> None:
    with pytest.raises(ValueError, match="capacity"):
        PredictionWindow(reference, capacity=0)
    with pytest.raises(ValueError, match="no numerical reference for feature"):
        PredictionWindow(reference, numeric_features=["a", "zzz"])
    with pytest.raises(ValueError, match="repeat"):
        PredictionWindow(reference, categorical_features=["plan", "plan"])


def test_feature_subset_and_order_follow_the_caller(reference) -> None:
    window = PredictionWindow(
        reference, capacity=4, numeric_features=["b"], categorical_features=[]
    )
    window.record(np.array([[10.0]]), None, np.zeros(1), None, 0.0)
    snap = window.snapshot()
    assert snap.numeric_features == ("b",) and snap.categorical.shape == (1, 0)
    assert snap.counts[0, -1] == 1  # 10.0 is above every edge of "b": the open last bin


def test_window_without_any_reference_still_records_health_data() -> None:
    window = PredictionWindow(None, capacity=3)
    window.record(None, None, np.array([1.0, 2.0]), np.array([0.9, 0.4]), 0.02)
    snap = window.snapshot()
    assert snap.predictions.tolist() == [1.0, 2.0] and window.feature_psi().size == 0


def test_categorical_codes_reserve_other_for_unknown_values() -> None:
    mapping = categorical_codes(["basic", "pro", 3])
    other = 3
    assert mapping["basic"] == 0 and mapping["pro"] == 1 and mapping[3] == 2 and mapping["3"] == 2
    codes = encode_column(mapping, other, ["pro", "enterprise", 3, "basic"], 4)
    assert codes.dtype == np.int32 and codes.tolist() == [1, 3, 2, 0]


def test_unknown_values_join_the_references_lumped_tail_when_it_has_one(make_reference) -> None:
    stored = make_reference(
        categorical={
            "plan": (["basic", "pro"], [0.7, 0.3]),
            "city": (["paris", "rome", "__other__"], [0.5, 0.3, 0.2]),
        }
    )
    window = PredictionWindow(stored, capacity=4)
    (plan_map, plan_other), (city_map, city_other) = window.category_encoders
    assert plan_other == 2 and city_other == 2
    assert encode_column(city_map, city_other, ["rome", "oslo"], 2).tolist() == [1, 2]
    assert encode_column(plan_map, plan_other, ["pro", "gold"], 2).tolist() == [1, 2]


def test_a_bad_wrapping_call_stores_nothing(reference) -> None:
    window = PredictionWindow(reference, capacity=5)
    numeric, codes, preds, _ = _rows(0, 4)
    window.record(numeric, codes, preds, None, 0.0)
    before = window.snapshot()
    numeric, codes, preds, _ = _rows(4, 3)  # would wrap: 1 row at the end, 2 at the front
    with pytest.raises(ValueError, match="numeric rows must number 3"):
        window.record(numeric[:2], codes, preds, None, 0.0)
    after = window.snapshot()
    assert after.predictions.tolist() == before.predictions.tolist()
    assert np.array_equal(after.counts, before.counts) and after.recorded_total == 4


def test_probability_vectors_follow_their_rows_through_wraps_and_time_bounds(
    reference, clock
) -> None:
    window = PredictionWindow(reference, capacity=50, clock=clock, probability_columns=3)
    assert window.snapshot().probabilities is not None
    total = 0
    for n in [7, 29, 13, 50, 44, 2]:  # wraps, and a batch as large as the window
        numeric, codes, preds, conf = _rows(total, n)
        vectors = np.column_stack((preds, preds + 0.25, preds + 0.5)).astype(np.float32)
        clock.now = float(total)
        window.record(numeric, codes, preds, conf, 0.001, vectors if n != 13 else None)
        total += n
        snap = window.snapshot()
        assert snap.probabilities is not None and snap.probabilities.dtype == np.float32
        assert snap.probabilities.shape == (snap.size, 3)
        recorded = ~np.isnan(snap.probabilities[:, 0])
        assert snap.probabilities[recorded, 0].tolist() == snap.predictions[recorded].tolist()
        # the 13 rows recorded without vectors are NaN rows, not another batch's vectors
        missing = snap.predictions[~recorded]
        assert set(missing.tolist()) <= set(range(36, 49))
    clock.now = float(total)
    bounded = window.snapshot(max_age_s=float(total - 100))  # the rows of the last batches
    assert bounded.probabilities is not None
    assert bounded.probabilities[:, 0].tolist() == bounded.predictions.tolist()
    with pytest.raises(ValueError, match="probabilities must have shape"):
        window.record(*_rows(0, 2), 0.001, np.zeros((2, 4), dtype=np.float32))
    assert window.snapshot().recorded_total == total  # the bad call stored nothing
    plain = PredictionWindow(reference, capacity=5)
    plain.record(*_rows(0, 2), 0.001, np.zeros((2, 3), dtype=np.float32))  # not kept
    assert plain.snapshot().probabilities is None
    with pytest.raises(ValueError, match="probability_columns"):
        PredictionWindow(reference, capacity=5, probability_columns=-1)
