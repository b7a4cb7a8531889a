"""benchmarks/drift_delay.py: the simulation flags real shifts and nothing else."""

from __future__ import annotations

from benchmarks.drift_delay import reference, shown, time_to_flag
from gateway.monitoring import psi_numba


def test_a_time_window_flags_a_shift_sooner_than_the_count_window_at_10_rps() -> None:
    psi_numba.warmup()
    ref = reference()
    common = {"rate": 10, "shift": 1.0, "seed": 0, "interval": 10.0, "calm": 100.0}
    count, count_false = time_to_flag(ref, max_age_s=0.0, horizon=900.0, **common)
    bounded, bounded_false = time_to_flag(ref, max_age_s=300.0, horizon=900.0, **common)
    assert count is not None and bounded is not None
    assert 0 < bounded < count and count_false == bounded_false == 0
    # the count window needs about half its 10,000 rows shifted: ~500 s at 10 rows/s
    assert 300 < count < 700


def test_no_shift_is_never_flagged_and_is_shown_as_such() -> None:
    ref = reference()
    delay, false = time_to_flag(
        ref, rate=100, shift=0.0, max_age_s=60.0, seed=1, interval=10.0, horizon=300.0, calm=100.0
    )
    assert delay is None and false == 0
    assert shown([None, None, 5.0], 300.0) == "not within 300 s (1/3 seeds)"
    assert shown([10.0, 20.0, None], 300.0) == "20 s (10-20, 1 not flagged)"
