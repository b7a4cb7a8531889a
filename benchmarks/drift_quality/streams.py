"""The seeded streams every method judges: a reference, judged windows, delay cases.

30 features: 26 numerical and 4 categorical. ``n00``/``n01`` are standard normal with
correlation 0.8 (the pair the correlation flip reverses); ``n02``..``n21`` are five blocks of
four unit-variance normals sharing a block factor (correlation 0.49 inside a block); ``n22``,
``n23`` lognormal, ``n24`` exponential, ``n25`` Poisson(4) counts (ties). Categorical: ``c0``
3 levels (60/30/10 %), ``c1`` 4, ``c2`` binary, ``c3`` 6 levels. Category values are codes
into ``CATEGORIES`` here; each side turns them into its own representation.

Scenarios change one thing each: ``shift_<k>`` adds ``k`` standard deviations (n02 has sd
1) to ``n02``; ``category_mix`` moves ``c0`` from 60/30/10 % to 40/30/30 % (the rare level
triples); ``correlation_flip`` makes the n00/n01 correlation -0.8 (every marginal unchanged).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

SEED = 23
NUMERIC = tuple(f"n{j:02d}" for j in range(26))
CATEGORICAL = ("c0", "c1", "c2", "c3")
CATEGORIES: dict[str, tuple[str, ...]] = {
    "c0": ("a", "b", "c"),
    "c1": ("a", "b", "c", "d"),
    "c2": ("yes", "no"),
    "c3": ("a", "b", "c", "d", "e", "f"),
}
PROBABILITIES: dict[str, tuple[float, ...]] = {
    "c0": (0.6, 0.3, 0.1),
    "c1": (0.4, 0.3, 0.2, 0.1),
    "c2": (0.7, 0.3),
    "c3": (0.3, 0.25, 0.15, 0.12, 0.1, 0.08),
}
MIXED_C0 = (0.4, 0.3, 0.3)
SHIFTED = "n02"  # the feature the mean-shift scenarios move
MIXED = "c0"  # the feature the category-mix scenario changes
CORRELATION = 0.8
SHIFTS = (0.1, 0.25, 0.5, 1.0)
DELAY_SHIFTS = (0.5, 1.0)
RATES = (10, 100, 1000)


def scenario_names() -> tuple[str, ...]:
    return (
        "stationary",
        *(f"shift_{k:g}" for k in SHIFTS),
        "category_mix",
        "correlation_flip",
    )


def draw(
    rng: np.random.Generator, n: int, scenario: str = "stationary"
) -> tuple[np.ndarray, np.ndarray]:
    """``n`` rows of the scenario: (numeric [n, 26] float64, codes [n, 4] int64)."""
    numeric = np.empty((n, len(NUMERIC)))
    corr = -CORRELATION if scenario == "correlation_flip" else CORRELATION
    z = rng.normal(size=(n, 2))
    numeric[:, 0] = z[:, 0]
    numeric[:, 1] = corr * z[:, 0] + math.sqrt(1 - corr * corr) * z[:, 1]
    loading = 0.7
    for block in range(5):
        factor = rng.normal(size=(n, 1))
        noise = rng.normal(size=(n, 4))
        first = 2 + 4 * block
        numeric[:, first : first + 4] = loading * factor + math.sqrt(1 - loading**2) * noise
    numeric[:, 22] = rng.lognormal(0.0, 0.5, size=n)
    numeric[:, 23] = rng.lognormal(1.0, 0.3, size=n)
    numeric[:, 24] = rng.exponential(1.0, size=n)
    numeric[:, 25] = rng.poisson(4.0, size=n)
    if scenario.startswith("shift_"):
        numeric[:, NUMERIC.index(SHIFTED)] += float(scenario.removeprefix("shift_"))
    codes = np.empty((n, len(CATEGORICAL)), dtype=np.int64)
    for j, name in enumerate(CATEGORICAL):
        p = MIXED_C0 if scenario == "category_mix" and name == MIXED else PROBABILITIES[name]
        codes[:, j] = rng.choice(len(p), size=n, p=p)
    return numeric, codes


@dataclass(frozen=True)
class Config:
    reference_rows: int = 5_000
    window_rows: int = 500
    stationary_windows: int = 200
    shifted_windows: int = 20  # per scenario other than stationary
    delay_seeds: int = 3
    interval_s: float = 10.0  # MODELGATE_DRIFT_INTERVAL_S
    settle_cycles: int = 3  # cycles judged after the window is fully shifted

    @classmethod
    def quick(cls) -> Config:
        return cls(stationary_windows=30, shifted_windows=5, delay_seeds=2)

    def windows_of(self, scenario: str) -> int:
        return self.stationary_windows if scenario == "stationary" else self.shifted_windows


@dataclass(frozen=True)
class Windows:
    """The judged windows, disjoint and fresh: ``numeric[i]``/``codes[i]`` of ``scenario[i]``."""

    numeric: np.ndarray  # [windows, rows, 26]
    codes: np.ndarray  # [windows, rows, 4]
    scenario: tuple[str, ...]


def reference(config: Config) -> tuple[np.ndarray, np.ndarray]:
    return draw(np.random.default_rng(SEED), config.reference_rows)


def windows(config: Config) -> Windows:
    rng = np.random.default_rng(SEED + 1)
    numeric, codes, names = [], [], []
    for scenario in scenario_names():
        for _ in range(config.windows_of(scenario)):
            x, c = draw(rng, config.window_rows, scenario)
            numeric.append(x)
            codes.append(c)
            names.append(scenario)
    return Windows(np.stack(numeric), np.stack(codes), tuple(names))


@dataclass(frozen=True)
class DelayCase:
    """One stream of ``rate`` rows per second (one row per request) from ``start_s``; the
    mean shift starts at ``shift_at_s`` (a random phase of the drift cycle, after the window
    holds only stationary rows); a drift cycle judges the last ``window_rows`` rows at each
    time of ``cycles_s`` (the cycles after the shift, up to ``settle_cycles`` cycles after
    the window holds only shifted rows)."""

    seed: int
    shift: float
    rate: int
    start_s: int
    shift_at_s: int
    cycles_s: tuple[float, ...]
    numeric: np.ndarray  # rows of seconds start_s .. last cycle, [n, 26]
    codes: np.ndarray

    def window(self, cycle_s: float, rows: int) -> tuple[np.ndarray, np.ndarray]:
        """The last ``rows`` rows recorded before ``cycle_s``."""
        stop = int(round((cycle_s - self.start_s) * self.rate))
        return self.numeric[stop - rows : stop], self.codes[stop - rows : stop]


def delay_case(config: Config, seed: int, shift: float, rate: int) -> DelayCase:
    rng = np.random.default_rng([SEED, seed, int(shift * 100), rate])
    fill_s = math.ceil(config.window_rows / rate)
    interval = config.interval_s
    shift_at = fill_s + int(rng.integers(0, int(interval)))
    first = math.floor(shift_at / interval + 1) * interval  # first cycle after the shift
    last = shift_at + fill_s + config.settle_cycles * interval
    cycles = tuple(float(t) for t in np.arange(first, last + 1e-9, interval))
    start = int(first) - fill_s  # whole seconds so that the first window is full
    seconds = int(cycles[-1]) - start
    numeric, codes = draw(rng, seconds * rate)
    shifted_rows = max(0, (shift_at - start) * rate)  # every row from shift_at on
    numeric[shifted_rows:, NUMERIC.index(SHIFTED)] += shift
    return DelayCase(seed, shift, rate, start, shift_at, cycles, numeric, codes)


def delay_cases(config: Config) -> list[DelayCase]:
    return [
        delay_case(config, seed, shift, rate)
        for shift in DELAY_SHIFTS
        for rate in RATES
        for seed in range(config.delay_seeds)
    ]
