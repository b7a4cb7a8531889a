from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest

from gateway.monitoring import stats
from gateway.monitoring.psi_numba import PSI_EPS, count_rows, psi_from_counts
from gateway.monitoring.reference import Reference
from gateway.monitoring.window import PredictionWindow


def _reference_values(rng: np.random.Generator, rows: int, features: int) -> np.ndarray:
    reference = rng.normal(
        rng.uniform(-3, 3, features), rng.uniform(0.5, 4, features), (rows, features)
    )
    # a few discrete features: their deduplicated edges are shorter than the others'
    reference[:, :: max(1, features // 3)] = np.round(reference[:, :: max(1, features // 3)])
    return reference


def _messy(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    """Normal values plus out-of-range values, infinities and NaN."""
    x = rng.normal(0.5, 3.0, shape)
    pick = rng.random(shape)
    x[pick < 0.05] = 1e6
    x[(pick >= 0.05) & (pick < 0.08)] = -1e6
    x[(pick >= 0.08) & (pick < 0.09)] = np.inf
    x[(pick >= 0.09) & (pick < 0.10)] = -np.inf
    x[(pick >= 0.10) & (pick < 0.15)] = np.nan
    return x


@pytest.mark.parametrize(
    ("rows", "features", "window"), [(20, 1, 1), (300, 3, 7), (10_000, 30, 1000), (2000, 5, 4000)]
)
def test_kernel_counts_and_psi_equal_the_numpy_reference(
    rows: int, features: int, window: int, make_reference
) -> None:
    rng = np.random.default_rng(rows + features)
    reference = _reference_values(rng, rows, features)
    ref = Reference.from_dict(make_reference(reference))
    actual = _messy(rng, (window, features))
    if features >= 3:  # padding is exercised: some features have fewer edges than others
        assert len({feature.edges.size for feature in ref.numerical}) > 1
    counts = np.zeros((features, ref.edges.shape[1] + 2), dtype=np.int64)
    count_rows(actual, ref.edges, counts, 1)
    psi = psi_from_counts(counts, ref.expected, PSI_EPS)
    for j, feature in enumerate(ref.numerical):
        expected_counts, missing = stats.bin_counts(feature.edges, actual[:, j])
        width = feature.edges.size + 1
        assert counts[j, :width].tolist() == expected_counts.tolist()
        assert not counts[j, width:-1].any()
        assert counts[j, -1] == missing
        by_numpy = stats.psi(feature.proportions, stats.proportions(feature.edges, actual[:, j]))
        assert psi[j] == pytest.approx(by_numpy, abs=1e-9)
        # and the plain recomputation from the raw reference values
        assert psi[j] == pytest.approx(stats.psi_reference(reference[:, j], actual[:, j]), abs=1e-9)


def test_leaving_rows_are_taken_back_out(make_reference) -> None:
    rng = np.random.default_rng(1)
    ref = Reference.from_dict(make_reference(rng.normal(size=(1000, 4))))
    counts = np.zeros((4, ref.edges.shape[1] + 2), dtype=np.int64)
    first, second = _messy(rng, (50, 4)), _messy(rng, (30, 4))
    count_rows(first, ref.edges, counts, 1)
    count_rows(second, ref.edges, counts, 1)
    count_rows(first, ref.edges, counts, -1)
    only_second = np.zeros_like(counts)
    count_rows(second, ref.edges, only_second, 1)
    assert np.array_equal(counts, only_second)


def test_feature_without_values_has_nan_psi(make_reference) -> None:
    ref = Reference.from_dict(make_reference(np.random.default_rng(2).normal(size=(500, 2))))
    counts = np.zeros((2, ref.edges.shape[1] + 2), dtype=np.int64)
    count_rows(np.array([[np.nan, 0.1]]), ref.edges, counts, 1)
    psi = psi_from_counts(counts, ref.expected, PSI_EPS)
    assert np.isnan(psi[0]) and np.isfinite(psi[1])


def test_ring_wraparound_keeps_psi_equal_to_numpy(make_reference) -> None:
    rng = np.random.default_rng(9)
    reference = rng.normal(size=(5000, 6))
    window = PredictionWindow(make_reference(reference), capacity=97)
    recorded = 0
    while recorded < 1500:
        n = int(rng.integers(1, 40))
        rows = _messy(rng, (n, 6)).astype(rng.choice([np.float32, np.float64]))
        window.record(rows, None, np.zeros(n), None, 0.001)
        recorded += n
        snap = window.snapshot()
        live = window.feature_psi()
        for j, feature in enumerate(window.reference.numerical):
            column = snap.numeric[:, j]
            counts, missing = stats.bin_counts(feature.edges, column)
            assert snap.counts[j, : counts.size].tolist() == counts.tolist()
            assert snap.missing[j] == missing
            numpy_psi = stats.psi(feature.proportions, stats.proportions(feature.edges, column))
            assert live[j] == pytest.approx(numpy_psi, abs=1e-9, nan_ok=True)


@pytest.mark.slow
def test_warmup_leaves_nothing_to_compile_on_the_request_path() -> None:
    # a fresh interpreter, so that no other test has compiled anything for us
    script = textwrap.dedent(
        """
        import numpy as np
        from gateway.monitoring import psi_numba
        from gateway.monitoring.window import PredictionWindow

        psi_numba.warmup()
        before = psi_numba.compiled_signatures()
        ref = {"numerical": {f"x{j}": {"edges": [-1.0, 0.0, 1.0],
                                       "proportions": [0.2, 0.3, 0.3, 0.2]} for j in range(4)}}
        window = PredictionWindow(ref, capacity=16)
        p = np.zeros(3)
        base = np.arange(24, dtype=np.float64).reshape(3, 8)
        body = b"\\0" + base[:, :4].astype("<f4").tobytes()
        inputs = [
            base[:, :4].copy(),                      # float64 C
            base[:, :4].astype(np.float32),          # float32 C
            np.asfortranarray(base[:, :4]),          # Fortran order
            base[:, ::2],                            # strided
            base[:, :4].astype(np.int64),            # another dtype: converted
            base[:, :4].astype(">f8"),               # byte-swapped: converted
            np.frombuffer(body, dtype=np.float32, offset=1).reshape(3, 4),  # unaligned
            np.frombuffer(base[:, :4].tobytes(), dtype=np.float64).reshape(3, 4),  # read-only
        ]
        for rows in inputs * 3:
            window.record(rows, None, p, None, 0.001)
        window.feature_psi()
        print(before, psi_numba.compiled_signatures())
        """
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    before, after = out.stdout.split()
    assert int(before) > 0 and before == after
