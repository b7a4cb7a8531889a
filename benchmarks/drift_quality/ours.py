"""modelgate's side: the drift cycle's own functions, in process, on the shared streams.

The reference is what registration stores (``converters.reference.build_reference``: decile
edges, category frequencies, the PCA reconstruction model). Rows go through the real
``PredictionWindow`` (a ring of ``window_rows``, i.e. ``MODELGATE_RING_CAPACITY``), and each
check is what the drift cycle runs per version (``gateway/monitoring/reports.py``): a
``snapshot()``, then ``compute_drift`` (univariate: a feature drifts at PSI >= 0.2 on >= 200
values) and ``ReconstructionModel.check`` (multivariate: the mean reconstruction error
outside reference mean +- 3 sd of a window mean). CPU time (``time.process_time``) covers
snapshot + ``compute_drift`` for the univariate check and ``check`` alone for the
multivariate one (it reuses the snapshot); recording the rows is the request path's cost
and is not counted.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pandas as pd

from benchmarks.drift_delay import SimClock
from benchmarks.drift_quality.streams import (
    CATEGORICAL,
    CATEGORIES,
    NUMERIC,
    Config,
    DelayCase,
    Windows,
)
from converters.reference import build_reference
from gateway.monitoring import psi_numba
from gateway.monitoring.drift import DEFAULT_MIN_SAMPLES, compute_drift
from gateway.monitoring.reconstruction import ReconstructionModel
from gateway.monitoring.window import PredictionWindow, WindowSnapshot

PSI_THRESHOLD = 0.2  # MODELGATE_DRIFT_PSI_THRESHOLD's default
UNIVARIATE = "modelgate_univariate"
MULTIVARIATE = "modelgate_multivariate"


def registered_reference(numeric: np.ndarray, codes: np.ndarray) -> dict[str, Any]:
    """The reference a registration of these rows stores (a regressor's, predictions 0)."""
    frame = pd.DataFrame(numeric, columns=list(NUMERIC))
    for j, name in enumerate(CATEGORICAL):
        frame[name] = np.asarray(CATEGORIES[name], dtype=object)[codes[:, j]]
    schema = {
        "task": "regression",
        "features": [{"name": n, "kind": "numerical", "dtype": "float64"} for n in NUMERIC]
        + [{"name": n, "kind": "categorical"} for n in CATEGORICAL],
        "value_output": "value",
    }
    return build_reference(schema, frame, {"value": np.zeros(len(frame))})


class Monitor:
    """One version's window and stored models, as the gateway binds them."""

    def __init__(self, reference: dict[str, Any], window_rows: int, clock: SimClock | None = None):
        self.window = PredictionWindow(
            reference, capacity=window_rows, clock=clock or time.monotonic
        )
        model = ReconstructionModel.from_reference(reference, self.window.reference)
        assert model is not None, "the reference stores no multivariate model"
        self.model = model
        # stream code -> the window's code (reference order: most frequent first)
        self.recode = [
            np.array([mapping[v] for v in CATEGORIES[name]], dtype=np.int32)
            for name, (mapping, _) in zip(CATEGORICAL, self.window.category_encoders, strict=True)
        ]

    def record(self, numeric: np.ndarray, codes: np.ndarray) -> None:
        window_codes = np.column_stack([r[codes[:, j]] for j, r in enumerate(self.recode)])
        n = numeric.shape[0]
        self.window.record(numeric, window_codes, np.zeros(n), None, 0.001)

    def univariate(self) -> tuple[WindowSnapshot, list[str], float]:
        start = time.process_time()
        snap = self.window.snapshot()
        report = compute_drift(
            snap,
            self.window.reference,
            psi_threshold=PSI_THRESHOLD,
            min_samples=DEFAULT_MIN_SAMPLES,
        )
        return snap, list(report.drifted_features), time.process_time() - start

    def multivariate(self, snap: WindowSnapshot) -> tuple[bool, float]:
        start = time.process_time()
        result = self.model.check(snap, min_samples=DEFAULT_MIN_SAMPLES)
        return bool(result.drifted), time.process_time() - start


def judge_windows(reference: dict[str, Any], windows: Windows) -> dict[str, list[dict[str, Any]]]:
    """Per method, per window: the features flagged (univariate), the alarm, the CPU."""
    psi_numba.warmup()
    rows = windows.numeric.shape[1]
    monitor = Monitor(reference, rows)
    monitor.record(windows.numeric[0], windows.codes[0])  # warm the code paths once
    monitor.multivariate(monitor.univariate()[0])
    out: dict[str, list[dict[str, Any]]] = {UNIVARIATE: [], MULTIVARIATE: []}
    for numeric, codes in zip(windows.numeric, windows.codes, strict=True):
        monitor.record(numeric, codes)  # the ring holds exactly this window now
        snap, flagged, cpu = monitor.univariate()
        out[UNIVARIATE].append({"alarm": bool(flagged), "flagged": flagged, "cpu_s": cpu})
        drifted, cpu = monitor.multivariate(snap)
        out[MULTIVARIATE].append({"alarm": drifted, "cpu_s": cpu})
    return out


def delays(reference: dict[str, Any], cases: list[DelayCase], config: Config) -> dict[str, list]:
    """Per method, per case: seconds from the shift to the first flagging cycle (or None).

    drift_delay's method: one ``record`` per simulated second of ``rate`` rows, a drift
    cycle every ``interval_s`` at the end of a second; the window judged at a cycle is the
    ring, so exactly ``DelayCase.window`` (checked), which is what the peers are given.
    """
    out: dict[str, list[float | None]] = {UNIVARIATE: [], MULTIVARIATE: []}
    for case in cases:
        clock = SimClock()
        monitor = Monitor(reference, config.window_rows, clock)
        found: dict[str, float | None] = {UNIVARIATE: None, MULTIVARIATE: None}
        second = case.start_s
        for cycle in case.cycles_s:
            while second < cycle:
                clock.now = float(second)
                lo = (second - case.start_s) * case.rate
                monitor.record(case.numeric[lo : lo + case.rate], case.codes[lo : lo + case.rate])
                second += 1
            clock.now = cycle
            snap, flagged, _ = monitor.univariate()
            expected, _ = case.window(cycle, config.window_rows)
            assert np.array_equal(snap.numeric, expected), "the ring is not the shared window"
            if flagged and found[UNIVARIATE] is None:
                found[UNIVARIATE] = cycle - case.shift_at_s
            if found[MULTIVARIATE] is None and monitor.multivariate(snap)[0]:
                found[MULTIVARIATE] = cycle - case.shift_at_s
            if all(v is not None for v in found.values()):
                break
        for method, delay in found.items():
            out[method].append(delay)
    return out
