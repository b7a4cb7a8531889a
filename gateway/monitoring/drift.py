"""Drift report of a window snapshot against a version's reference distributions.

Decisions rest on effect size only: a feature is ``drifted`` when its PSI reaches
``psi_threshold`` (0.2, "significant" in docs/contracts.md, "Statistics semantics"). KS
and chi-squared p-values are reported beside it (with ``significant = p < alpha``) but
never decide: on windows of thousands of rows they flag differences too small to matter,
and among 30 stationary features at alpha 0.05 about 1.5 are "significant" in every
window by chance.

No verdict (``drifted = None``, reason "insufficient samples") below ``min_samples`` values
(default 200): with 10 decile bins the PSI of a stationary sample of size n is about
chi2(9) / n, so at n = 200 its mean is ~0.05 and the 0.2 threshold sits ~7 standard
deviations above it (false alarms well below 1e-3 per feature); at n = 100 it is only
~2.6 sd away (~1 % per feature, one window in four among 30 features).

``drift_score`` is the share of drifted features among the features that got a verdict
(None when none did); it feeds the health check's "drift score > 0.3". Prediction drift
is PSI over predicted classes (or binned predicted values for regressors) and is reported
separately: it does not enter the score.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from gateway.monitoring.psi_numba import psi_from_counts
from gateway.monitoring.reference import Reference
from gateway.monitoring.stats import PSI_EPS, chi2_test, ks_2samp, proportions, psi
from gateway.monitoring.window import WindowSnapshot

DEFAULT_MIN_SAMPLES = 200
INSUFFICIENT = "insufficient samples"

Verdict = Callable[[int, float | None], tuple[bool | None, str | None]]


@dataclass(frozen=True, slots=True)
class FeatureDrift:
    name: str
    kind: str  # "numerical" or "categorical"
    n: int  # values compared (missing ones excluded)
    missing: int
    psi: float | None
    drifted: bool | None
    reason: str | None
    test: str  # "ks" or "chi2"
    statistic: float | None
    pvalue: float | None
    significant: bool | None  # pvalue < alpha: reported, never decisive
    dof: int | None = None  # chi2 only

    def to_dict(self) -> dict[str, Any]:
        return _clean(asdict(self))


@dataclass(frozen=True, slots=True)
class PredictionDrift:
    kind: str  # "classes" or "values"
    n: int
    psi: float | None
    drifted: bool | None
    reason: str | None
    expected: list[float]
    observed: list[float]

    def to_dict(self) -> dict[str, Any]:
        return _clean(asdict(self))


@dataclass(frozen=True, slots=True)
class DriftReport:
    n_samples: int
    window_capacity: int
    recorded_total: int
    time_span_s: float
    max_age_s: float | None  # the window's time bound in seconds, None: count window only
    psi_threshold: float
    min_samples: int
    alpha: float
    drifted: bool | None  # a feature or the predictions drifted
    reason: str | None
    drift_score: float | None
    drifted_features: tuple[str, ...]
    features: tuple[FeatureDrift, ...]
    prediction: PredictionDrift | None
    confidence_psi: float | None

    def to_dict(self) -> dict[str, Any]:
        out = {k: getattr(self, k) for k in self.__slots__ if k not in ("features", "prediction")}
        out["drifted_features"] = list(self.drifted_features)
        out["features"] = [f.to_dict() for f in self.features]
        out["prediction"] = None if self.prediction is None else self.prediction.to_dict()
        return _clean(out)


def compute_drift(
    window_snapshot: WindowSnapshot,
    reference: Reference | Mapping[str, Any],
    *,
    psi_threshold: float = 0.2,
    min_samples: int = DEFAULT_MIN_SAMPLES,
    alpha: float = 0.05,
) -> DriftReport:
    """Drift of a window against the reference; pass the parsed ``Reference`` (e.g. the
    window's own ``.reference``) to avoid re-parsing the stored dict on every call."""
    if min_samples < 1 or not psi_threshold > 0 or not 0 < alpha < 1:
        raise ValueError("need min_samples >= 1, psi_threshold > 0 and 0 < alpha < 1")
    ref = reference if isinstance(reference, Reference) else Reference.from_dict(reference)
    snap = window_snapshot

    def verdict(n: int, value: float | None) -> tuple[bool | None, str | None]:
        if n < min_samples or value is None:
            return None, INSUFFICIENT
        return value >= psi_threshold, None

    features = [*_numerical(snap, ref, verdict, alpha), *_categorical(snap, ref, verdict, alpha)]
    judged = [f for f in features if f.drifted is not None]
    drifted = tuple(f.name for f in judged if f.drifted)
    score = len(drifted) / len(judged) if judged else None
    prediction = _prediction(snap, ref, verdict)
    flags = [f.drifted for f in judged] + ([prediction.drifted] if prediction else [])
    known = [flag for flag in flags if flag is not None]
    return DriftReport(
        n_samples=snap.size,
        window_capacity=snap.capacity,
        recorded_total=snap.recorded_total,
        time_span_s=snap.time_span_s,
        max_age_s=snap.max_age_s or None,
        psi_threshold=psi_threshold,
        min_samples=min_samples,
        alpha=alpha,
        drifted=any(known) if known else None,
        reason=None if known else INSUFFICIENT,
        drift_score=score,
        drifted_features=drifted,
        features=tuple(features),
        prediction=prediction,
        confidence_psi=_confidence_psi(snap, ref),
    )


def _numerical(
    snap: WindowSnapshot, ref: Reference, verdict: Verdict, alpha: float
) -> list[FeatureDrift]:
    if not snap.numeric_features:
        return []
    by_name = {f.name: i for i, f in enumerate(ref.numerical)}
    idx = [by_name[name] for name in _known(snap.numeric_features, by_name)]
    values = psi_from_counts(snap.counts, ref.expected[idx], PSI_EPS)
    out = []
    for j, name in enumerate(snap.numeric_features):
        sample = ref.numerical[idx[j]].sample
        column = snap.numeric[:, j]
        column = column[~np.isnan(column)]
        stat = pvalue = None
        if sample.size and column.size:
            stat, pvalue = ks_2samp(sample, column)
        value = None if math.isnan(values[j]) else float(values[j])
        drifted, reason = verdict(column.size, value)
        out.append(
            FeatureDrift(
                name=name,
                kind="numerical",
                n=int(column.size),
                missing=int(snap.missing[j]),
                psi=value,
                drifted=drifted,
                reason=reason,
                test="ks",
                statistic=stat,
                pvalue=pvalue,
                significant=None if pvalue is None else pvalue < alpha,
            )
        )
    return out


def _categorical(
    snap: WindowSnapshot, ref: Reference, verdict: Verdict, alpha: float
) -> list[FeatureDrift]:
    by_name = {f.name: f for f in ref.categorical}
    out = []
    for j, name in enumerate(_known(snap.categorical_features, by_name)):
        spec = by_name[name]
        other = len(spec.categories)
        codes = np.clip(snap.categorical[:, j], 0, other)
        observed = np.bincount(codes, minlength=other + 1)
        expected = np.append(spec.frequencies, 0.0)
        n = int(observed.sum())
        value = stat = pvalue = dof = None
        if n:
            value = psi(expected, observed / n)
            stat, pvalue, dof = chi2_test(expected, observed)
        drifted, reason = verdict(n, value)
        out.append(
            FeatureDrift(
                name=name,
                kind="categorical",
                n=n,
                missing=0,
                psi=value,
                drifted=drifted,
                reason=reason,
                test="chi2",
                statistic=stat,
                pvalue=pvalue,
                significant=None if pvalue is None else pvalue < alpha,
                dof=dof,
            )
        )
    return out


def prediction_counts(
    snap: WindowSnapshot, ref: Reference
) -> tuple[np.ndarray, np.ndarray, int] | None:
    """(reference proportions, window counts, n) of the window's predictions in the
    reference's buckets: classes (an unknown class counts in a last "other" bucket) or
    value bins; None when the reference has no prediction distribution."""
    preds = snap.predictions[~np.isnan(snap.predictions)]
    if ref.prediction_kind == "classes":
        other = len(ref.prediction_classes)
        codes = preds.astype(np.int64)
        codes[(codes < 0) | (codes > other)] = other
        observed = np.bincount(codes, minlength=other + 1)
        expected = np.append(ref.prediction_proportions, 0.0)
    elif ref.prediction_kind == "values":
        edges = ref.prediction_edges
        observed = np.bincount(np.searchsorted(edges, preds, "right"), minlength=edges.size + 1)
        expected = ref.prediction_proportions
    else:
        return None
    return expected, observed, int(preds.size)


def _prediction(snap: WindowSnapshot, ref: Reference, verdict: Verdict) -> PredictionDrift | None:
    kind, counts = ref.prediction_kind, prediction_counts(snap, ref)
    if kind is None or counts is None:
        return None
    expected, observed, n = counts
    shares = observed / n if n else np.zeros(observed.size)
    value = psi(expected, shares) if n else None
    drifted, reason = verdict(n, value)
    return PredictionDrift(kind, n, value, drifted, reason, expected.tolist(), shares.tolist())


def _confidence_psi(snap: WindowSnapshot, ref: Reference) -> float | None:
    if ref.confidence_edges is None or ref.confidence_proportions is None:
        return None
    shares = proportions(ref.confidence_edges, snap.confidence)
    if np.isnan(shares).any():
        return None
    return psi(ref.confidence_proportions, shares)


def _known(names: tuple[str, ...], reference: dict[str, Any]) -> tuple[str, ...]:
    unknown = [name for name in names if name not in reference]
    if unknown:
        raise ValueError(f"the reference has no feature(s) {', '.join(unknown)}")
    return names


def _clean(value: Any) -> Any:
    """JSON-safe: NaN/inf -> None, numpy scalars -> Python numbers, tuples -> lists."""
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
