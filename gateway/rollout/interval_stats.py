"""What one model version did over a canary-analysis interval, and a ring-buffer adapter.

``VariantIntervalStats`` is the input of ``gateway.rollout.checks``'s checks; a stats
source (``gateway.rollout.controller.VariantStatsSource``) builds one per version and
interval. ``stats_from_window`` computes the parts a ``PredictionWindow`` snapshot holds.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from gateway.monitoring.window import WindowSnapshot


@dataclass(frozen=True, slots=True)
class VariantIntervalStats:
    """What one version did over an analysis interval (the stats source fills it)."""

    requests: int = 0  # answered requests, errors included
    errors: int = 0
    p99_latency_ms: float | None = None
    low_confidence_rate: float | None = None  # None for a regressor
    confidence_count: int = 0  # rows behind low_confidence_rate (0: unknown)
    class_counts: Mapping[str, int] = field(default_factory=dict)  # predicted class -> rows
    live_accuracy: float | None = None  # over the labelled rows
    labelled: int = 0
    max_feature_psi: float | None = None  # None: no numerical reference / window too small
    shadow_agreement: float | None = None  # vs the champion on mirrored rows
    shadow_compared: int = 0

    @property
    def error_rate(self) -> float:
        return self.errors / self.requests if self.requests > 0 else math.nan

    @property
    def confidence_rows(self) -> int:
        """Rows behind the low-confidence rate; the answered requests when unknown."""
        return self.confidence_count or max(self.requests - self.errors, 0)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["class_counts"] = {str(k): int(v) for k, v in self.class_counts.items()}
        return out

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> VariantIntervalStats:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known})


def stats_from_window(
    snapshot: WindowSnapshot,
    since_wall: float,
    *,
    requests: int,
    errors: int,
    classes: Sequence[Any] | None,
    low_confidence: float = 0.6,
    live_accuracy: float | None = None,
    labelled: int = 0,
    max_feature_psi: float | None = None,
) -> VariantIntervalStats:
    """Adapter for a stats source: the rows of a ring-buffer snapshot recorded since
    ``since_wall`` (``time.time()`` seconds) plus the counts the caller measured itself.

    ``classes`` labels the predicted class indices (None for a regressor).
    """
    since_mono = snapshot.taken_at - (snapshot.taken_at_wall - since_wall)
    keep = snapshot.times >= since_mono
    latency = snapshot.latency_s[keep]
    p99 = float(np.percentile(latency, 99) * 1000.0) if latency.size else None
    counts: dict[str, int] = {}
    low_rate = None
    conf_rows = 0
    if classes is not None:
        codes = snapshot.predictions[keep]
        codes = codes[~np.isnan(codes)].astype(np.int64)
        found = np.bincount(codes, minlength=len(classes)) if codes.size else np.zeros(0)
        counts = {str(classes[i]): int(n) for i, n in enumerate(found) if i < len(classes)}
        conf = snapshot.confidence[keep]
        conf = conf[~np.isnan(conf)]
        low_rate = float(np.mean(conf < low_confidence)) if conf.size else None
        conf_rows = int(conf.size)
    return VariantIntervalStats(
        requests=requests,
        errors=errors,
        p99_latency_ms=p99,
        low_confidence_rate=low_rate,
        confidence_count=conf_rows,
        class_counts=counts,
        live_accuracy=live_accuracy,
        labelled=labelled,
        max_feature_psi=max_feature_psi,
    )
