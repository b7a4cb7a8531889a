"""benchmarks/drift_quality: modelgate's side of the harness on a small configuration.

The peers (Evidently, NannyML) need their own virtual environment and minutes of CPU, so
they are left out here; the table must then say so instead of inventing their columns.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from benchmarks.drift_quality.__main__ import run, write_readme
from benchmarks.drift_quality.streams import RATES, Config, delay_case, draw
from benchmarks.drift_quality.table import METHODS, section

pytestmark = pytest.mark.slow

TINY = Config(
    reference_rows=3000, stationary_windows=40, shifted_windows=4, delay_seeds=1, settle_cycles=2
)


@pytest.fixture(scope="module")
def result() -> dict:
    return run(TINY, quick=True, with_peers=False)


def test_a_1_sd_shift_is_flagged_and_stationary_windows_rarely_are(result: dict) -> None:
    univariate = result["summary"]["modelgate_univariate"]["rates"]
    multivariate = result["summary"]["modelgate_multivariate"]["rates"]
    assert univariate["shift_1"] == {"windows": 4, "alarm_rate": 1.0, "target_rate": 1.0}
    assert univariate["category_mix"]["target_rate"] == 1.0
    assert univariate["stationary"]["windows"] == 40
    assert univariate["stationary"]["alarm_rate"] <= 0.05
    assert univariate["stationary"]["feature_alarm_rate"] <= 0.005
    assert multivariate["stationary"]["alarm_rate"] <= 0.1
    # the relation of n00 and n01 reverses, no marginal moves: only the PCA error sees it
    assert multivariate["correlation_flip"]["alarm_rate"] == 1.0
    assert univariate["correlation_flip"]["alarm_rate"] <= 0.25


def test_every_window_and_delay_case_has_a_verdict_per_method(result: dict) -> None:
    windows = result["windows"]
    assert len(windows["scenario"]) == 40 + 6 * 4
    for method in ("modelgate_univariate", "modelgate_multivariate"):
        assert len(windows[method]) == len(windows["scenario"])
        assert all(v["cpu_s"] > 0 for v in windows[method])
        delays = result["summary"][method]["delays_s"]
        assert len(delays) == len(result["delay_cases"]) == 2 * len(RATES)
    for delay, case in zip(
        result["summary"]["modelgate_univariate"]["delays_s"], result["delay_cases"], strict=True
    ):
        if case["shift"] == 1.0:  # flagged before the window is even fully shifted
            assert delay is not None and 0 < delay <= case["horizon_s"]
    assert result["peers"] == {"error": "skipped (modelgate side only)"}


def test_the_section_shows_the_peers_as_not_run(result: dict, tmp_path: Path) -> None:
    text = section(result)
    for _, title, _ in METHODS:
        assert title in text
    assert "Peers not run: skipped (modelgate side only)" in text
    readme = tmp_path / "README.md"
    readme.write_text("before\n<!-- drift_quality:start -->\nold\n<!-- drift_quality:end -->\n")
    write_readme(result, readme)
    written = readme.read_text()
    assert "old" not in written and "| stationary: false alarms (40) |" in written


def test_a_delay_case_shifts_exactly_the_rows_from_the_shift_on() -> None:
    case = delay_case(TINY, seed=0, shift=1.0, rate=10)
    first = case.cycles_s[0]
    numeric, _ = case.window(first, TINY.window_rows)
    assert numeric.shape == (TINY.window_rows, 26)
    times = case.start_s + np.arange(case.numeric.shape[0]) // case.rate
    baseline, _ = draw(np.random.default_rng(0), 20_000)
    shifted = case.numeric[times >= case.shift_at_s, 2]
    before = case.numeric[times < case.shift_at_s, 2]
    assert abs(shifted.mean() - 1.0) < 0.25 and abs(before.mean()) < 0.25
    assert abs(baseline[:, 2].std() - 1.0) < 0.03  # n02 has sd 1: shifts are in sd
