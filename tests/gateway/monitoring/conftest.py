"""Shared builders: reference dicts in the docs/contracts.md layout, and a manual clock."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pytest

from gateway.monitoring import psi_numba
from gateway.monitoring.stats import proportions, quantile_edges


def build_reference(
    numeric: np.ndarray | None = None,
    *,
    names: Sequence[str] | None = None,
    categorical: dict[str, tuple[list[Any], list[float]]] | None = None,
    prediction: dict[str, Any] | None = None,
    bins: int = 10,
    sample_size: int = 5000,
    seed: int = 0,
) -> dict[str, Any]:
    """What registration stores: quantile edges, proportions, a seeded subsample."""
    rng = np.random.default_rng(seed)
    out: dict[str, Any] = {"n_rows": 0, "numerical": {}, "categorical": {}}
    if numeric is not None:
        out["n_rows"] = int(numeric.shape[0])
        names = names or [f"x{j}" for j in range(numeric.shape[1])]
        for j, name in enumerate(names):
            column = numeric[:, j]
            edges = quantile_edges(column, bins)
            keep = rng.choice(column.size, size=min(sample_size, column.size), replace=False)
            out["numerical"][name] = {
                "edges": edges.tolist(),
                "proportions": proportions(edges, column).tolist(),
                "sample": column[np.sort(keep)].tolist(),
            }
    for name, (categories, freqs) in (categorical or {}).items():
        out["categorical"][name] = {"categories": categories, "frequencies": freqs}
    if prediction is not None:
        out["prediction"] = prediction
    return out


class ManualClock:
    def __init__(self, start: float = 100.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="session", autouse=True)
def _compiled_kernels() -> None:
    psi_numba.warmup()


@pytest.fixture
def make_reference() -> Callable[..., dict[str, Any]]:
    return build_reference


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()
