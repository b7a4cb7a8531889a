"""The drift window bounded by time (``snapshot(max_age_s)``, MODELGATE_DRIFT_WINDOW_S)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from gateway.monitoring import stats
from gateway.monitoring.drift import compute_drift
from gateway.monitoring.reference import Reference
from gateway.monitoring.reports import window_info
from gateway.monitoring.window import PredictionWindow
from gateway.settings import Settings, SettingsError


@pytest.fixture
def reference(make_reference) -> Reference:
    rng = np.random.default_rng(0)
    return Reference.from_dict(
        make_reference(
            rng.normal(size=(5000, 2)),
            names=["a", "b"],
            categorical={"plan": (["basic", "pro"], [0.7, 0.3])},
            prediction={"kind": "classes", "classes": [0, 1], "proportions": [0.5, 0.5]},
        )
    )


def _record_second(window: PredictionWindow, clock, second: int, rows: int) -> None:
    """``rows`` rows stamped ``second``; every value of the row block is ``second``."""
    clock.now = float(second)
    values = np.full((rows, 2), float(second))
    values[:, 1] = -values[:, 1]
    codes = np.full((rows, 1), second % 3, dtype=np.int32)
    window.record(values, codes, np.full(rows, second % 2, dtype=np.float64), None, 0.001)


def test_rows_older_than_the_bound_are_left_out_and_recounted(reference, clock) -> None:
    window = PredictionWindow(reference, capacity=500, clock=clock)
    for second in range(100):  # 300 rows over 100 s: the count window holds them all
        _record_second(window, clock, second, 3)
    clock.now = 99.0
    whole = window.snapshot()
    assert whole.size == 300 and whole.max_age_s == 0.0
    bounded = window.snapshot(max_age_s=30.0)
    # kept: time >= 99 - 30, i.e. seconds 69..99 (the row exactly on the bound stays)
    kept = np.repeat(np.arange(69, 100, dtype=np.float64), 3)
    assert bounded.size == kept.size == 93
    assert bounded.max_age_s == 30.0
    assert bounded.times[0] == 69.0 and bounded.time_span_s == 30.0
    assert bounded.numeric[:, 0].tolist() == kept.tolist()
    assert bounded.categorical[:, 0].tolist() == (kept % 3).astype(int).tolist()
    assert bounded.predictions.tolist() == (kept % 2).tolist()
    assert bounded.recorded_total == 300 and bounded.capacity == 500
    for j, feature in enumerate(reference.numerical):
        counts, _ = stats.bin_counts(feature.edges, kept if j == 0 else -kept)
        assert bounded.counts[j].tolist() == counts.tolist()
    assert bounded.missing.tolist() == [0, 0]
    # the drift report judges exactly these rows, and says which window it used
    report = compute_drift(bounded, reference)
    assert report.n_samples == 93 and report.max_age_s == 30.0
    assert report.features[0].n == 93 and report.prediction is not None
    assert report.prediction.n == 93
    info = window_info(bounded)
    assert info["size"] == 93 and info["max_age_s"] == 30.0 and info["time_span_s"] == 30.0
    assert window_info(whole)["max_age_s"] is None
    assert compute_drift(whole, reference).max_age_s is None


def test_the_count_bound_still_applies_inside_the_time_bound(reference, clock) -> None:
    window = PredictionWindow(reference, capacity=50, clock=clock)
    for second in range(100):
        _record_second(window, clock, second, 3)
    bounded = window.snapshot(max_age_s=60.0)  # 183 rows are that young; 50 are kept
    assert bounded.size == 50
    assert bounded.numeric[:, 0].tolist() == window.snapshot().numeric[:, 0].tolist()
    assert bounded.counts.tolist() == window.snapshot().counts.tolist()


def test_missing_values_are_recounted_within_the_bound(reference, clock) -> None:
    window = PredictionWindow(reference, capacity=100, clock=clock)
    codes = np.zeros((1, 1), dtype=np.int32)
    for second, value in enumerate([np.nan, np.nan, 1.0, np.nan, 2.0]):
        clock.now = float(second)
        window.record(np.array([[value, 0.0]]), codes, np.zeros(1), None, 0.001)
    snap = window.snapshot(max_age_s=2.0)  # seconds 2, 3, 4
    assert snap.size == 3 and snap.missing.tolist() == [1, 0]
    assert snap.counts.sum(axis=1).tolist() == [2, 3]
    assert window.snapshot().missing.tolist() == [3, 0]


def test_an_idle_window_empties_as_its_rows_age(reference, clock) -> None:
    window = PredictionWindow(reference, capacity=100, clock=clock)
    _record_second(window, clock, 10, 40)
    clock.now = 500.0
    snap = window.snapshot(max_age_s=60.0)
    assert snap.size == 0 and snap.time_span_s == 0.0
    assert snap.counts.sum() == 0 and snap.missing.tolist() == [0, 0]
    report = compute_drift(snap, reference)
    assert report.drifted is None and report.reason == "insufficient samples"
    assert window.snapshot().size == 40  # the count window still holds them


def test_a_negative_bound_is_refused(reference, clock) -> None:
    window = PredictionWindow(reference, capacity=10, clock=clock)
    with pytest.raises(ValueError, match="max_age_s"):
        window.snapshot(max_age_s=-1.0)


def _first_flag(window: PredictionWindow, clock, max_age_s: float, shift: float) -> float | None:
    """Seconds from the shift to the first drift cycle (every 10 s) that flags feature a."""
    rng = np.random.default_rng(7)
    rate, stationary, horizon = 10, 1000, 1200  # 10 requests/s; the ring fills in 1,000 s
    for second in range(stationary + horizon):
        clock.now = float(second)
        moved = shift if second >= stationary else 0.0
        values = rng.normal(size=(rate, 2))
        values[:, 0] += moved
        codes = np.zeros((rate, 1), dtype=np.int32)
        window.record(values, codes, np.zeros(rate), None, 0.001)
        if second >= stationary and second % 10 == 9:
            report = compute_drift(window.snapshot(max_age_s), window.reference)
            if "a" in report.drifted_features:
                return second + 1 - stationary
    return None


def test_a_time_bound_flags_a_shift_sooner_at_low_traffic(reference, clock) -> None:
    delays = {}
    for bound in (0.0, 300.0):  # same seeded stream, same clock readings
        window = PredictionWindow(reference, capacity=10_000, clock=clock)
        delays[bound] = _first_flag(window, clock, bound, shift=1.0)
    assert delays[300.0] is not None and delays[0.0] is not None
    # 300 s of rows is 3,000: a 1 sd shift reaches PSI 0.2 when ~half the window moved,
    # i.e. in ~150 s; the 10,000-row count window needs ~500 s of shifted rows for that
    assert delays[300.0] < 300
    assert delays[300.0] * 2 < delays[0.0]


def test_the_setting_is_read_and_validated() -> None:
    home = {"MODELGATE_HOME": "/data"}
    assert Settings.from_environ(home).drift_window_s == 0.0
    assert Settings.from_environ({**home, "MODELGATE_DRIFT_WINDOW_S": "300"}).drift_window_s == 300
    with pytest.raises(SettingsError, match="MODELGATE_DRIFT_WINDOW_S must be >= 0"):
        Settings.from_environ({**home, "MODELGATE_DRIFT_WINDOW_S": "-5"})
    with pytest.raises(SettingsError, match="MODELGATE_DRIFT_WINDOW_S"):
        Settings.from_environ({**home, "MODELGATE_DRIFT_WINDOW_S": "five minutes"})
    assert (
        Settings(home=Path("/data"), drift_window_s=60.0).to_environ()["MODELGATE_DRIFT_WINDOW_S"]
        == "60.0"
    )
