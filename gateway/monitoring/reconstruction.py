"""Multivariate drift: PCA reconstruction error of a window against the stored model.

Registration (``converters.reference.reconstruction_model``) fits, on half of the sample,
a standardisation and the PCA components that explain 65 % of its variance, and stores
the per-row reconstruction error's mean and standard deviation on the other half (rows the
fit never saw: in-sample errors are optimistic). A change in how the features
relate to each other (a correlation that flips while every marginal stays put) moves rows
off the fitted subspace and raises their error, which no per-feature statistic can see.

The rule (docs/contracts.md, "Statistics semantics"): the window's mean error over its
``n`` rows is flagged when it falls outside

    error_mean ± SIGMAS * error_std * sqrt(1/n + 1/n_reference)

i.e. NannyML's "reference mean ± k standard deviations", with the standard deviation of a
mean over ``n`` independent rows, widened by the uncertainty of the reference mean itself
(``n_reference``: the held-out rows). k is 4, not NannyML's 3. The score (window error
minus ``error_mean``, over the rule's standard deviation) is close to a standard normal
across registrations, so 3 would flag 0.27 % of stationary windows and 4 flags 0.006 %;
and every window of a version is compared with the same reference mean, so an unlucky
registration sample alarms on cycle after cycle rather than once. Measured on generated
stationary streams (``stationary_scores`` in
``tests/gateway/monitoring/test_monitoring_multivariate.py``, registrations seeded
100-124 and 100-109): at 3, 1 alarm in 1,000 windows of 1,000 rows and 5 in 500 windows of
10,000 rows, all 5 from one registration; at 4, none; a correlation moving from 0.8 to 0.6
still scores 5.5 at 1,000 rows. Below ``min_samples`` rows there is no verdict.

Encoding matches registration: numerical values as received (NaN -> the reference mean),
categorical codes -> the category's reference frequency (a value never seen ->
``__other__``'s frequency, else 0).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from gateway.monitoring.reference import OTHER_CATEGORY, Reference
from gateway.monitoring.window import WindowSnapshot

SIGMAS = 4.0  # see the module docstring


@dataclass(frozen=True, slots=True)
class MultivariateDrift:
    n: int
    error: float | None  # mean reconstruction error of the window's rows
    lower: float | None
    upper: float | None
    drifted: bool | None
    reason: str | None
    components: int
    reference_error: float

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__slots__}


@dataclass(frozen=True, slots=True)
class ReconstructionModel:
    numerical: tuple[str, ...]
    categorical: tuple[str, ...]
    frequency_tables: tuple[np.ndarray, ...]  # per categorical column: frequency per code
    mean: np.ndarray  # [f]
    scale: np.ndarray  # [f]
    components: np.ndarray  # [k, f], orthonormal rows
    n_reference: int
    error_mean: float
    error_std: float

    @classmethod
    def from_reference(
        cls, data: Mapping[str, Any] | None, reference: Reference
    ) -> ReconstructionModel | None:
        """The stored model (``reference["multivariate"]``), None when absent (versions
        registered before it existed); ValueError when malformed."""
        spec = (data or {}).get("multivariate")
        if not spec:
            return None
        numerical = tuple(spec.get("numerical") or ())
        stored = dict(spec.get("categorical") or {})
        by_name = {c.name: c for c in reference.categorical}
        tables = []
        for name, freqs in stored.items():
            if name not in by_name:
                raise ValueError(f"multivariate model: no categorical reference for {name!r}")
            categories = by_name[name].categories
            table = np.zeros(len(categories) + 1)
            for code, category in enumerate(categories):
                table[code] = float(freqs.get(category, freqs.get(str(category), 0.0)))
            # the code of a value the reference never saw (see reference.other_code)
            table[len(categories)] = float(freqs.get(OTHER_CATEGORY, 0.0))
            tables.append(table)
        f = len(numerical) + len(stored)
        mean = np.asarray(spec.get("mean"), dtype=np.float64)
        scale = np.asarray(spec.get("scale"), dtype=np.float64)
        components = np.asarray(spec.get("components"), dtype=np.float64)
        if (
            mean.shape != (f,)
            or scale.shape != (f,)
            or components.ndim != 2
            or components.shape[1] != f
            or not np.all(scale > 0)
        ):
            raise ValueError("multivariate model: mean, scale and components do not fit")
        return cls(
            numerical=numerical,
            categorical=tuple(stored),
            frequency_tables=tuple(tables),
            mean=mean,
            scale=scale,
            components=components,
            n_reference=int(spec["n_rows"]),
            error_mean=float(spec["error_mean"]),
            error_std=float(spec["error_std"]),
        )

    def encode(self, numeric: np.ndarray, codes: np.ndarray) -> np.ndarray:
        """Standardised rows [n, f] from numeric values [n, f_num] and codes [n, f_cat]."""
        columns = [numeric.astype(np.float64, copy=True)] if self.numerical else []
        for j, table in enumerate(self.frequency_tables):
            columns.append(table[np.clip(codes[:, j], 0, table.size - 1)][:, None])
        x = np.hstack(columns) if columns else np.empty((numeric.shape[0], 0))
        x = np.where(np.isnan(x), self.mean, x)
        return (x - self.mean) / self.scale

    def row_errors(self, numeric: np.ndarray, codes: np.ndarray) -> np.ndarray:
        """Euclidean distance of every row to its reconstruction (standardised space)."""
        z = self.encode(numeric, codes)
        kept = z @ self.components.T
        return np.sqrt(np.clip((z * z).sum(axis=1) - (kept * kept).sum(axis=1), 0.0, None))

    def bounds(self, n: int) -> tuple[float, float]:
        half = SIGMAS * self.error_std * math.sqrt(1.0 / n + 1.0 / self.n_reference)
        return self.error_mean - half, self.error_mean + half

    def check(self, snap: WindowSnapshot, *, min_samples: int) -> MultivariateDrift:
        """The window's mean error and verdict (see the module docstring)."""
        numeric = _columns(snap.numeric, snap.numeric_features, self.numerical)
        codes = _columns(snap.categorical, snap.categorical_features, self.categorical)
        n = snap.size
        components = int(self.components.shape[0])

        def result(
            error: float | None, bounds: tuple[float, float] | None, reason: str | None
        ) -> MultivariateDrift:
            lower, upper = bounds if bounds is not None else (None, None)
            drifted = None if bounds is None else not bounds[0] <= (error or 0.0) <= bounds[1]
            return MultivariateDrift(
                n, error, lower, upper, drifted, reason, components, self.error_mean
            )

        if numeric is None or codes is None:
            return result(None, None, "window lacks model features")
        error = float(self.row_errors(numeric, codes).mean()) if n else None
        if n < min_samples or error is None:
            return result(error, None, "insufficient samples")
        return result(error, self.bounds(n), None)


def _columns(
    matrix: np.ndarray, available: tuple[str, ...], wanted: tuple[str, ...]
) -> np.ndarray | None:
    if wanted == available:
        return matrix
    if any(name not in available for name in wanted):
        return None
    return matrix[:, [available.index(name) for name in wanted]]
