"""The peers' side, run by the peers' own python: Evidently and NannyML on the shared streams.

    <peer venv>/bin/python benchmarks/drift_quality/peers.py STREAMS.npz OUT.json [WORKERS]

Standalone on purpose (numpy, pandas, evidently, nannyml; nothing from modelgate): it reads
the reference, the judged windows and the delay windows that ``benchmarks.drift_quality``
wrote, and writes, per method and window, the alarm, the flagged columns and the CPU time.

Every library is used with its defaults, fitted once on the 5,000-row reference:

- Evidently ``Report([DataDriftPreset()])`` (0.7 API: ``Dataset.from_pandas`` with a
  ``DataDefinition`` naming the numerical and categorical columns). With more than 1,000
  reference rows its defaults are the normed Wasserstein distance (numerical, drift at
  >= 0.1) and the Jensen-Shannon distance (categorical, >= 0.1); the dataset drifts when at
  least half the columns do (``drift_share`` 0.5). One report per window gives both.
- NannyML ``UnivariateDriftCalculator`` (defaults: ``jensen_shannon`` for continuous and
  categorical columns, alert above the mean + 3 sd of the reference chunks' values) and
  ``DataReconstructionDriftCalculator`` (PCA keeping 65 % of the variance, alert outside
  the mean +- 3 sd of the reference chunks' errors), both with ``chunk_size`` = the window
  size, so the reference gives them 10 chunks to set thresholds from; each window is one
  chunk passed to ``calculate``.

CPU time is ``time.process_time()`` around the library call (for Evidently including the
``Dataset.from_pandas`` of the window), after one warm-up call, one BLAS thread per process.
The windows are independent, so ``WORKERS`` forked processes share them (wall time only).
"""

from __future__ import annotations

import json
import multiprocessing
import os
import sys
import time
import warnings
from collections.abc import Callable
from importlib import metadata
from typing import Any

os.environ.setdefault("NML_DISABLE_USAGE_LOGGING", "1")  # no analytics calls home
os.environ.setdefault("DO_NOT_TRACK", "1")  # Evidently's telemetry
for _threads in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_threads, "1")  # one thread per check: the workers are the parallelism

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

EVIDENTLY_ANY = "evidently_any_column"
EVIDENTLY_DATASET = "evidently_dataset"
NANNYML_UNIVARIATE = "nannyml_univariate"
NANNYML_MULTIVARIATE = "nannyml_reconstruction"


def frames(data: Any, meta: dict[str, Any], prefix: str) -> list[pd.DataFrame]:
    numeric, codes = data[f"{prefix}_numeric"], data[f"{prefix}_codes"]
    return [frame(numeric[i], codes[i], meta) for i in range(numeric.shape[0])]


def frame(numeric: np.ndarray, codes: np.ndarray, meta: dict[str, Any]) -> pd.DataFrame:
    out = pd.DataFrame(numeric, columns=meta["numeric"])
    for j, name in enumerate(meta["categorical"]):
        out[name] = np.asarray(meta["categories"][name], dtype=object)[codes[:, j]]
    return out


class Evidently:
    def __init__(self, reference: pd.DataFrame, meta: dict[str, Any]) -> None:
        from evidently import DataDefinition, Dataset

        self.definition = DataDefinition(
            numerical_columns=list(meta["numeric"]), categorical_columns=list(meta["categorical"])
        )
        self.dataset = Dataset
        self.reference = Dataset.from_pandas(reference, data_definition=self.definition)

    def check(self, current: pd.DataFrame) -> tuple[dict[str, Any], dict[str, Any], float]:
        from evidently import Report
        from evidently.presets import DataDriftPreset

        start = time.process_time()
        data = self.dataset.from_pandas(current, data_definition=self.definition)
        result = Report([DataDriftPreset()]).run(current_data=data, reference_data=self.reference)
        cpu = time.process_time() - start
        flagged, count, share = [], None, None
        for metric in result.dict()["metrics"]:
            config, value = metric["config"], metric["value"]
            if config["type"].endswith("DriftedColumnsCount"):
                count, share = int(value["count"]), float(value["share"])
            elif config["type"].endswith("ValueDrift"):
                # distances (the defaults here) drift at >= threshold, p-values below it
                distance = "distance" in config["method"].lower()
                hit = value >= config["threshold"] if distance else value < config["threshold"]
                if hit:
                    flagged.append(config["column"])
        assert count == len(flagged), f"Evidently counted {count}, the columns say {flagged}"
        assert share is not None
        dataset = share >= 0.5  # DataDriftPreset's drift_share default
        return (
            {"alarm": bool(flagged), "flagged": flagged, "cpu_s": cpu},
            {"alarm": dataset, "share": share, "cpu_s": cpu},
            cpu,
        )


class NannyML:
    def __init__(self, reference: pd.DataFrame, meta: dict[str, Any], chunk: int) -> None:
        import nannyml as nml

        columns = [*meta["numeric"], *meta["categorical"]]
        self.univariate = nml.UnivariateDriftCalculator(
            column_names=columns, treat_as_categorical=list(meta["categorical"]), chunk_size=chunk
        ).fit(reference)
        self.reconstruction = nml.DataReconstructionDriftCalculator(
            column_names=columns, chunk_size=chunk
        ).fit(reference)
        self.columns = columns

    def check_univariate(self, current: pd.DataFrame) -> dict[str, Any]:
        start = time.process_time()
        result = self.univariate.calculate(current)
        cpu = time.process_time() - start
        row = result.filter(period="analysis").to_df().iloc[0]
        flagged = [
            column
            for column in self.columns
            for method in self.univariate.continuous_method_names
            + self.univariate.categorical_method_names
            if (column, method, "alert") in row.index and bool(row[(column, method, "alert")])
        ]
        return {"alarm": bool(flagged), "flagged": sorted(set(flagged)), "cpu_s": cpu}

    def check_reconstruction(self, current: pd.DataFrame) -> dict[str, Any]:
        start = time.process_time()
        result = self.reconstruction.calculate(current)
        cpu = time.process_time() - start
        row = result.filter(period="analysis").to_df().iloc[0]
        alarm = bool(row[("reconstruction_error", "alert")])
        error = float(row[("reconstruction_error", "value")])
        return {"alarm": alarm, "error": error, "cpu_s": cpu}


_STATE: dict[str, Any] = {}  # set before the workers fork; they inherit it


def _judge_window(i: int) -> tuple[int, dict[str, dict[str, Any]]]:
    evidently, nannyml, window = _STATE["evidently"], _STATE["nannyml"], _STATE["windows"][i]
    any_column, dataset, _ = evidently.check(window)  # one report, both verdicts
    return i, {
        EVIDENTLY_ANY: any_column,
        EVIDENTLY_DATASET: dataset,
        NANNYML_UNIVARIATE: nannyml.check_univariate(window),
        NANNYML_MULTIVARIATE: nannyml.check_reconstruction(window),
    }


def _delay_of(case: int) -> tuple[int, dict[str, float | None]]:
    """Each method judges the case's windows in cycle order and stops at its first alarm."""
    evidently, nannyml, meta = _STATE["evidently"], _STATE["nannyml"], _STATE["meta"]
    windows = _STATE["delay_windows"]
    reports: dict[int, tuple[dict[str, Any], dict[str, Any], float]] = {}

    def report(i: int) -> tuple[dict[str, Any], dict[str, Any], float]:
        if i not in reports:  # one Evidently report serves both of its verdicts
            reports[i] = evidently.check(windows[i])
        return reports[i]

    checks: dict[str, Callable[[int], dict[str, Any]]] = {
        EVIDENTLY_ANY: lambda i: report(i)[0],
        EVIDENTLY_DATASET: lambda i: report(i)[1],
        NANNYML_UNIVARIATE: lambda i: nannyml.check_univariate(windows[i]),
        NANNYML_MULTIVARIATE: lambda i: nannyml.check_reconstruction(windows[i]),
    }
    indices = [i for i, c in enumerate(meta["delay_case"]) if c == case]
    found: dict[str, float | None] = {}
    for name, check in checks.items():
        found[name] = next(
            (float(meta["delay_since_shift_s"][i]) for i in indices if check(i)["alarm"]), None
        )
    return case, found


def main(argv: list[str]) -> int:
    streams, out, workers = argv[0], argv[1], int(argv[2]) if len(argv) > 2 else 1
    warnings.filterwarnings("ignore")  # NannyML: "too few chunks" for a one-chunk window
    data = np.load(streams)
    meta = json.loads(str(data["meta"]))
    reference = frame(data["reference_numeric"], data["reference_codes"], meta)
    windows = frames(data, meta, "windows")
    evidently = Evidently(reference, meta)
    nannyml = NannyML(reference, meta, int(meta["window_rows"]))
    evidently.check(windows[0])  # warm-up, inherited by the workers
    nannyml.check_univariate(windows[0])
    nannyml.check_reconstruction(windows[0])
    _STATE.update(
        evidently=evidently,
        nannyml=nannyml,
        meta=meta,
        windows=windows,
        delay_windows=frames(data, meta, "delay"),
    )
    cases = int(meta["delay_cases"])
    with multiprocessing.get_context("fork").Pool(workers) as pool:
        delays_by_case = dict(pool.imap_unordered(_delay_of, range(cases)))
        judged = dict(pool.imap_unordered(_judge_window, range(len(windows))))
    methods = (EVIDENTLY_ANY, EVIDENTLY_DATASET, NANNYML_UNIVARIATE, NANNYML_MULTIVARIATE)
    results = {name: [judged[i][name] for i in range(len(windows))] for name in methods}
    delays = {name: [delays_by_case[c][name] for c in range(cases)] for name in methods}
    versions = {p: metadata.version(p) for p in ("evidently", "nannyml", "pandas", "numpy")}
    with open(out, "w") as fh:
        json.dump({"versions": versions, "windows": results, "delays": delays}, fh)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
