"""numba kernels: per-feature bin counts kept incrementally, and PSI from those counts.

Layout shared by every kernel (built once per version by ``reference.Reference``), for
``f`` numerical features whose widest reference has ``E`` inner edges:

* ``edges``    float64 [f, E]      row ``j``: feature ``j``'s inner edges, then NaN padding;
* ``counts``   int64   [f, E + 2]  columns ``0..E`` are the bins (bin ``b`` holds
  ``edges[b-1] <= x < edges[b]``, first and last open: ``searchsorted`` right), column
  ``E + 1`` counts NaN values, which go in no bin;
* ``expected`` float64 [f, E + 1]  reference proportions, zero padding.

A bin of a feature with fewer edges than ``E`` is never reached (no value is ``>=`` NaN),
and a padding bin empty on both sides adds exactly 0 to the PSI sum, so no kernel needs
per-feature lengths. The arithmetic is ``gateway.monitoring.stats``'s (equal to 1e-9 in
the tests). ``warmup()`` compiles every kernel for every argument type the window can pass,
so no request pays the JIT; ``cache=True`` keeps the machine code across restarts.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from gateway.monitoring.stats import PSI_EPS

# input row dtypes that ``ring_update`` is compiled for; the window converts anything else
ROW_DTYPES: frozenset[np.dtype[np.floating]] = frozenset(
    (np.dtype(np.float32), np.dtype(np.float64))
)


@njit(cache=True, inline="always")
def _bin(edges: np.ndarray, j: int, value: float) -> int:
    # np.searchsorted(edges[j], value, "right") over the non-NaN prefix; NaN -> missing column
    width = edges.shape[1]
    if np.isnan(value):
        return width + 1
    b = 0
    for e in range(width):
        b += value >= edges[j, e]
    return b


@njit(cache=True)
def ring_update(
    ring: np.ndarray, rows: np.ndarray, start: int, edges: np.ndarray, counts: np.ndarray
) -> None:
    """Store ``rows`` at ``ring[start:start + len(rows)]`` and move the counts.

    Every replaced row leaves the counts first. Slots never written hold NaN and are
    counted as missing, so the caller starts with ``counts[:, -1] = len(ring)``.
    """
    for r in range(rows.shape[0]):
        slot = start + r
        for j in range(rows.shape[1]):
            counts[j, _bin(edges, j, ring[slot, j])] -= 1
            ring[slot, j] = rows[r, j]
            counts[j, _bin(edges, j, ring[slot, j])] += 1


@njit(cache=True)
def count_rows(rows: np.ndarray, edges: np.ndarray, counts: np.ndarray, sign: int) -> None:
    """Add ``sign`` (+1 entering, -1 leaving) to the bin of every value of ``rows``."""
    for r in range(rows.shape[0]):
        for j in range(rows.shape[1]):
            counts[j, _bin(edges, j, np.float64(rows[r, j]))] += sign


@njit(cache=True)
def psi_from_counts(counts: np.ndarray, expected: np.ndarray, eps: float) -> np.ndarray:
    """PSI of every feature from its bin counts; NaN for a feature with no counted value."""
    n_features, n_bins = expected.shape
    out = np.empty(n_features, dtype=np.float64)
    for j in range(n_features):
        total = 0
        for b in range(n_bins):
            total += counts[j, b]
        if total == 0:
            out[j] = np.nan
            continue
        acc = 0.0
        for b in range(n_bins):
            actual = counts[j, b] / total
            if actual == 0.0:
                actual = eps
            base = expected[j, b]
            if base == 0.0:
                base = eps
            acc += (actual - base) * np.log(actual / base)
        out[j] = acc
    return out


def warmup() -> None:
    """Compile every kernel for the argument types serving passes (call at startup).

    Rows may arrive as float32 or float64, in C, Fortran or strided layout, writable or
    read-only (``np.frombuffer`` on a request body): to numba each is its own type.
    """
    ring = np.full((4, 2), np.nan)
    edges = np.array([[0.0, np.nan], [1.0, 2.0]])
    counts = np.zeros((2, 4), dtype=np.int64)
    counts[:, -1] = ring.shape[0]
    for dtype in sorted(ROW_DTYPES, key=str):
        c_order = np.arange(4, dtype=dtype).reshape(2, 2)
        strided = np.arange(8, dtype=dtype).reshape(2, 4)[:, ::2]
        for rows in (c_order, np.asfortranarray(c_order), strided):
            for writeable in (True, False):
                view = rows.view()
                view.flags.writeable = writeable
                ring_update(ring, view, 0, edges, counts)
    count_rows(ring, edges, counts, 1)  # benchmarks and tests only: float64 C
    psi_from_counts(counts, np.zeros((2, 3)), PSI_EPS)


def compiled_signatures() -> int:
    """How many specialisations exist (a test proves serving adds none after warmup)."""
    return sum(len(kernel.signatures) for kernel in (ring_update, count_rows, psi_from_counts))
