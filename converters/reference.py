"""Reference distributions (docs/contracts.md#reference-distributions) captured at registration.

Binning follows docs/contracts.md, "Statistics semantics": inner edges are the quantiles at
1/bins .. (bins-1)/bins, deduplicated; a value lands in ``np.searchsorted(edges, x,
side="right")``, so the outer bins are open and out-of-range values are still counted.
Numerical values are rounded through float32 first when the graph takes float32 (an exact
graph takes float64): that is what the served model receives, so a value sitting exactly on
an edge falls in the same bin online and here.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.isotonic import IsotonicRegression

BINS = 10
MAX_SAMPLE = 5000
MAX_CATEGORIES = 100
OTHER = "__other__"
# multivariate drift (docs/contracts.md, "Statistics semantics"): PCA keeps the fewest
# components explaining at least this share of the standardised variance (NannyML's 0.65)
VARIANCE_SHARE = 0.65
CHUNK_ROWS = 500  # reference chunk size for the error spread (smaller samples: n // 10)
MIN_FIT_ROWS = 100  # fewer sample rows: no multivariate model, no calibration
BOOTSTRAP_DRAWS = 200
ERROR_FOLDS = 10  # the stored error spread comes from rows held out of the fit


def quantile_edges(values: np.ndarray, bins: int = BINS) -> np.ndarray:
    """Strictly increasing inner cut points (at most bins-1) of the non-NaN values."""
    values = np.asarray(values, dtype=np.float64)
    values = values[~np.isnan(values)]
    if values.size == 0 or bins < 2:
        return np.empty(0, dtype=np.float64)
    return np.unique(np.quantile(values, np.arange(1, bins) / bins))


def bin_proportions(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Share of non-NaN values per bin (len(edges)+1 bins, outer bins open)."""
    values = np.asarray(values, dtype=np.float64)
    values = values[~np.isnan(values)]
    counts = np.bincount(
        np.searchsorted(edges, values, side="right"), minlength=len(edges) + 1
    ).astype(np.float64)
    if values.size == 0:
        counts[-1] = 1.0  # no data: one full open bin keeps "sums to 1" true
        return counts
    return counts / values.size


def _sample(values: np.ndarray, max_sample: int, rng: np.random.Generator) -> list[float]:
    if values.size > max_sample:
        values = values[np.sort(rng.choice(values.size, size=max_sample, replace=False))]
    return values.tolist()


def numerical_reference(
    values: np.ndarray,
    *,
    bins: int = BINS,
    max_sample: int = MAX_SAMPLE,
    seed: int = 0,
    served: type = np.float32,
) -> dict[str, Any]:
    """``served``: the float type the graph receives (float64 for an exact graph)."""
    raw = np.asarray(values, dtype=np.float64)
    values = raw.astype(served).astype(np.float64)
    present = values[~np.isnan(values)]
    edges = quantile_edges(present, bins)
    return {
        "edges": edges.tolist(),
        "proportions": bin_proportions(present, edges).tolist(),
        "sample": _sample(present, max_sample, np.random.default_rng(seed)),
        "missing": float(1.0 - present.size / raw.size) if raw.size else 0.0,
    }


def categorical_reference(
    column: pd.Series, *, max_categories: int = MAX_CATEGORIES
) -> dict[str, Any]:
    """Category frequencies, most frequent first; the tail beyond ``max_categories`` is
    lumped into ``__other__``."""
    present = column[column.notna()].astype(str)
    counts = present.value_counts()
    counts = counts.sort_index(kind="stable").sort_values(ascending=False, kind="stable")
    if len(counts) > max_categories:
        head = counts.iloc[: max_categories - 1]
        counts = pd.concat([head, pd.Series({OTHER: counts.iloc[max_categories - 1 :].sum()})])
    total = float(counts.sum())
    return {
        "categories": [str(c) for c in counts.index],
        "frequencies": [float(c) / total for c in counts.to_numpy()] if total else [],
        "missing": float(1.0 - len(present) / len(column)) if len(column) else 0.0,
    }


def build_reference(
    schema: dict[str, Any],
    frame: pd.DataFrame,
    outputs: dict[str, np.ndarray],
    *,
    bins: int = BINS,
    max_sample: int = MAX_SAMPLE,
    seed: int = 0,
    labels: pd.Series | np.ndarray | None = None,
) -> dict[str, Any]:
    """Baselines from the sample's feature columns and the ONNX outputs on those rows;
    ``labels`` (the sample's label column) adds the confidence calibration of a classifier."""
    numerical: dict[str, Any] = {}
    categorical: dict[str, Any] = {}
    for index, feature in enumerate(schema["features"]):
        name = feature["name"]
        if feature["kind"] == "numerical":
            values = frame[name].to_numpy(dtype=np.float64, na_value=np.nan)
            numerical[name] = numerical_reference(
                values,
                bins=bins,
                max_sample=max_sample,
                seed=seed + index,
                served=np.float64 if feature.get("dtype") == "float64" else np.float32,
            )
        else:
            categorical[name] = categorical_reference(frame[name])
    reference: dict[str, Any] = {
        "n_rows": len(frame),
        "bins": bins,
        "numerical": numerical,
        "categorical": categorical,
    }
    if schema["task"] == "classification":
        classes = schema["classes"]
        raw_labels = np.asarray(outputs[schema["label_output"]]).ravel().tolist()
        predicted = [v.decode() if isinstance(v, bytes) else v for v in raw_labels]
        counts = pd.Series(predicted).value_counts()
        reference["prediction"] = {
            "kind": "classes",
            "classes": classes,
            "proportions": [float(counts.get(c, 0)) / len(predicted) for c in classes],
        }
        top = np.asarray(outputs[schema["probability_output"]], dtype=np.float64).max(axis=1)
        edges = quantile_edges(top, bins)
        reference["confidence"] = {
            "edges": edges.tolist(),
            "proportions": bin_proportions(top, edges).tolist(),
            "mean": float(top.mean()),
        }
        if labels is not None:
            probabilities = np.asarray(outputs[schema["probability_output"]], dtype=np.float64)
            reference["calibration"] = calibration_model(
                probabilities, class_indices(labels, classes), seed=seed
            )
    else:
        values = np.asarray(outputs[schema["value_output"]], dtype=np.float64).ravel()
        edges = quantile_edges(values, bins)
        reference["prediction"] = {
            "kind": "values",
            "edges": edges.tolist(),
            "proportions": bin_proportions(values, edges).tolist(),
            "sample": _sample(values[~np.isnan(values)], max_sample, np.random.default_rng(seed)),
        }
        reference["confidence"] = None
    reference["multivariate"] = reconstruction_model(frame, numerical, categorical)
    return reference


def _frequency_columns(frame: pd.DataFrame, categorical: dict[str, Any]) -> list[np.ndarray]:
    """Each categorical column as its reference frequency (the serving encoding: a value
    the reference lumped or never saw takes ``__other__``'s frequency, else 0)."""
    out = []
    for name, spec in categorical.items():
        table = dict(zip(spec["categories"], spec["frequencies"], strict=True))
        other = table.get(OTHER, 0.0)
        column = frame[name]
        text = column.astype(str).where(column.notna(), None)
        out.append(np.array([table.get(v, other) for v in text], dtype=np.float64))
    return out


def reconstruction_model(
    frame: pd.DataFrame,
    numerical: dict[str, Any],
    categorical: dict[str, Any],
    *,
    variance_share: float = VARIANCE_SHARE,
    chunk_rows: int = CHUNK_ROWS,
) -> dict[str, Any] | None:
    """PCA reconstruction model of the sample (docs/contracts.md, "Statistics semantics").

    Columns: numerical features rounded through float32 (NaN -> the column mean), then the
    categorical ones frequency-encoded; standardised with the sample's mean and standard
    deviation (a constant column gets scale 1). The kept components are the fewest whose
    explained variance reaches ``variance_share``. Stored with the per-row error mean and
    standard deviation and the spread of the mean error over chunks of ``chunk_rows``
    rows, all of held-out errors (``_held_out_errors``: ``ERROR_FOLDS``-fold). None when
    there are fewer than two columns or ``MIN_FIT_ROWS`` rows.
    """
    n = len(frame)
    names = [*numerical, *categorical]
    if len(names) < 2 or n < MIN_FIT_ROWS:
        return None
    numeric = [
        frame[name].to_numpy(dtype=np.float64, na_value=np.nan).astype(np.float32)
        for name in numerical
    ]
    x = np.column_stack([*numeric, *_frequency_columns(frame, categorical)]).astype(np.float64)
    mean = np.nanmean(x, axis=0)
    mean = np.where(np.isnan(mean), 0.0, mean)
    x = np.where(np.isnan(x), mean, x)
    scale = x.std(axis=0)
    scale = np.where(scale > 0, scale, 1.0)
    z = (x - mean) / scale
    _, singular, vt = np.linalg.svd(z, full_matrices=False)
    variance = singular**2
    ratio = np.cumsum(variance) / variance.sum() if variance.sum() > 0 else np.ones(1)
    # as scikit-learn's PCA(n_components=share): fewest components strictly above the share
    k = min(int(np.searchsorted(ratio, variance_share, side="right")) + 1, len(names))
    components = vt[:k]
    errors = _held_out_errors(z, k)
    rows = max(chunk_rows if n >= 10 * chunk_rows else n // 10, 1)
    chunk_means = errors[: (n // rows) * rows].reshape(-1, rows).mean(axis=1)
    return {
        "method": "pca_reconstruction",
        "features": names,
        "numerical": list(numerical),
        "categorical": {
            name: dict(zip(spec["categories"], spec["frequencies"], strict=True))
            for name, spec in categorical.items()
        },
        "mean": mean.tolist(),
        "scale": scale.tolist(),
        "components": components.tolist(),
        "variance_share": variance_share,
        "explained_variance": float(ratio[k - 1]),
        "n_rows": n,
        "error_mean": float(errors.mean()),
        "error_std": float(errors.std(ddof=1)),
        "chunks": {
            "rows": rows,
            "count": int(chunk_means.size),
            "mean": float(chunk_means.mean()),
            "std": float(chunk_means.std(ddof=1)) if chunk_means.size > 1 else 0.0,
        },
    }


def _row_errors(z: np.ndarray, components: np.ndarray) -> np.ndarray:
    return np.sqrt(np.clip((z * z).sum(axis=1) - ((z @ components.T) ** 2).sum(axis=1), 0, None))


def _held_out_errors(z: np.ndarray, k: int, folds: int = ERROR_FOLDS) -> np.ndarray:
    """Every row's error under the first ``k`` components fitted without its fold.

    The rows a PCA is fitted on sit closer to its subspace than new rows do (it also fits
    their noise): with 30 columns and 5,000 rows the in-sample mean error is ~1.5 standard
    deviations of a 500-row window's mean too low, which alone made a stationary
    10,000-row window alarm in most drift cycles. Errors of held-out rows (contiguous folds)
    carry no such bias.
    """
    n = z.shape[0]
    errors = np.empty(n)
    bounds = np.linspace(0, n, min(folds, n) + 1).astype(int)
    for lo, hi in zip(bounds[:-1], bounds[1:], strict=True):
        rest = np.concatenate((z[:lo], z[hi:]))
        _, _, vt = np.linalg.svd(rest, full_matrices=False)
        errors[lo:hi] = _row_errors(z[lo:hi], vt[:k])
    return errors


def class_indices(labels: pd.Series | np.ndarray, classes: list[Any]) -> np.ndarray:
    """Index of every label in ``classes`` (matched as given or by ``str``), -1 if absent."""
    lookup: dict[Any, int] = {}
    for i, c in enumerate(classes):
        lookup.setdefault(c, i)
        lookup.setdefault(str(c), i)
    values = labels.tolist() if isinstance(labels, pd.Series) else np.asarray(labels).tolist()
    return np.array([lookup.get(v, lookup.get(str(v), -1)) for v in values], dtype=np.int64)


def calibration_model(
    probabilities: np.ndarray,
    labels: np.ndarray,
    *,
    chunk_rows: int = CHUNK_ROWS,
    draws: int = BOOTSTRAP_DRAWS,
    seed: int = 0,
) -> dict[str, Any] | None:
    """Isotonic calibration of the classifier's scores on the labelled sample (CBPE).

    Binary: P(class 1 | probability of class 1). Multiclass: P(correct | top-class
    probability) (top-label calibration: the drift window keeps only the top probability).
    Stored as the isotonic step points (``x`` increasing, ``y`` in [0, 1]) that serving
    applies with ``np.interp``; plus the spread of the realized accuracy (and ROC AUC,
    binary) over ``draws`` seeded bootstrap chunks of ``chunk_rows`` rows, from which
    serving scales the interval to its window size. None without enough labelled rows.
    """
    known = labels >= 0
    probabilities, labels = probabilities[known], labels[known]
    n, n_classes = probabilities.shape if probabilities.ndim == 2 else (0, 0)
    if n < MIN_FIT_ROWS or n_classes < 2:
        return None
    predicted = probabilities.argmax(axis=1)
    correct = (predicted == labels).astype(np.float64)
    if n_classes == 2:
        kind, score, target = "binary", probabilities[:, 1], (labels == 1).astype(np.float64)
    else:
        kind, score, target = "top_label", probabilities.max(axis=1), correct
    iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(score, target)
    rows = min(chunk_rows, n)
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, n, size=(draws, rows))
    accuracy = correct[picks].mean(axis=1)
    out: dict[str, Any] = {
        "method": "isotonic",
        "kind": kind,
        "x": [float(v) for v in iso.X_thresholds_],
        "y": [float(v) for v in iso.y_thresholds_],
        "n_rows": int(n),
        "chunk_rows": int(rows),
        "accuracy_std": float(accuracy.std(ddof=1)),
        "roc_auc_std": None,
    }
    if kind == "binary":
        aucs = [_roc_auc(target[p], score[p]) for p in picks]
        finite = [a for a in aucs if a is not None]
        out["roc_auc_std"] = float(np.std(finite, ddof=1)) if len(finite) > 1 else None
    return out


def _roc_auc(y: np.ndarray, score: np.ndarray) -> float | None:
    """Realized ROC AUC (Mann-Whitney, ties counted half); None with one class only."""
    positives = int(y.sum())
    negatives = y.size - positives
    if positives == 0 or negatives == 0:
        return None
    ranks = pd.Series(score).rank(method="average").to_numpy()
    return float((ranks[y == 1].sum() - positives * (positives + 1) / 2) / (positives * negatives))
