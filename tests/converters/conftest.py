from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("sklearn")
pytest.importorskip("skl2onnx")

from threadpoolctl import threadpool_limits  # noqa: E402  (after the importorskip guards)


@pytest.fixture(autouse=True)
def _one_thread():
    # OpenMP / BLAS spin-waiting on a shared 2-core box makes small fits 20x slower
    with threadpool_limits(1):
        yield


def fit(estimator, X, y):
    """Fit without convergence / deprecation chatter (warnings are errors in this suite)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return estimator.fit(X, y)


def numeric_frame(rows: int = 600, n_features: int = 6, n_classes: int = 2, seed: int = 0):
    """(features DataFrame, integer labels) with a learnable signal and held-out-able rows."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(rows, n_features))
    X[:, 1] = X[:, 1] * 50 + 100  # a column on another scale
    score = X[:, 0] + 0.5 * X[:, 2] - 0.02 * (X[:, 1] - 100) + rng.normal(scale=0.5, size=rows)
    cuts = np.quantile(score, np.linspace(0, 1, n_classes + 1)[1:-1])
    y = np.searchsorted(cuts, score)
    return pd.DataFrame(X, columns=[f"x{i}" for i in range(n_features)]), y


def mixed_frame(rows: int = 600, seed: int = 0):
    """Numbers plus string categoricals (pandas string dtype), and a binary label."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "tenure": rng.integers(1, 72, rows).astype(float),
            "charges": rng.normal(60, 20, rows).round(2),
            "plan": pd.array(rng.choice(["basic", "pro", "team"], rows), dtype="str"),
            "region": pd.array(rng.choice(["eu", "us", "apac"], rows), dtype="str"),
        }
    )
    logit = -0.04 * frame.tenure + 0.03 * (frame.charges - 60) + (frame.plan == "basic") * 1.0
    y = (rng.random(rows) < 1 / (1 + np.exp(-logit))).astype(int).to_numpy()
    return frame, y


def churn_frame(rows: int = 3000, seed: int = 0):
    """The issue's table: three numeric columns holding repeated rounded values (so training
    rows sit exactly on split thresholds), two string columns, a binary label and a target."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "tenure": rng.integers(1, 72, rows).astype(float),
            "charges": rng.normal(60, 20, rows).round(2),
            "usage": rng.gamma(2.0, 30.0, rows).round(1),
            "plan": pd.array(rng.choice(["basic", "pro", "team"], rows), dtype="str"),
            "region": pd.array(rng.choice(["eu", "us", "apac"], rows), dtype="str"),
        }
    )
    logit = (
        -0.04 * frame.tenure
        + 0.03 * (frame.charges - 60)
        + 0.01 * (frame.usage - 60)
        + (frame.plan == "basic") * 1.0
    )
    y = (rng.random(rows) < 1 / (1 + np.exp(-logit))).astype(int).to_numpy()
    target = (
        0.5 * frame.tenure
        + 0.2 * frame.charges
        + 0.1 * frame.usage
        + (frame.plan == "basic") * 5.0
        + rng.normal(0, 1, rows)
    ).to_numpy()
    return frame, y, target


# helpers as fixtures: with --import-mode=importlib, test modules cannot import conftest
@pytest.fixture
def fit_quiet():
    return fit


@pytest.fixture
def numeric_data():
    return numeric_frame


@pytest.fixture
def mixed_data():
    return mixed_frame


@pytest.fixture(scope="session")
def churn_data():
    return churn_frame
