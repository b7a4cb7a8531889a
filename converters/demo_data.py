"""A seeded, churn-style table for the demo: numbers, string categoricals, a noisy label."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

LABEL = "churned"
NUMERICAL = [
    "tenure_months",
    "monthly_charges",
    "total_charges",
    "support_calls",
    "num_products",
    "days_since_last_login",
    "avg_session_minutes",
    "late_payments",
]
CATEGORICAL = ["plan", "region", "payment_method"]
FEATURES = NUMERICAL + CATEGORICAL
SEED = 42

_PLANS = (["basic", "standard", "premium"], [0.5, 0.35, 0.15])
_REGIONS = (["north", "south", "east", "west"], [0.3, 0.25, 0.25, 0.2])
_PAYMENTS = (["card", "bank_transfer", "paypal", "invoice"], [0.4, 0.25, 0.2, 0.15])


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def churn_frame(rows: int = 6000, *, seed: int = SEED, drift: bool = False) -> pd.DataFrame:
    """``rows`` customers with a ``churned`` label drawn from a logistic model with noise.

    ``drift=True`` shifts the population (pricier plans, more support calls, more invoice
    payers) the way a real market change would, for drift-monitoring demos.
    """
    rng = np.random.default_rng(seed)
    plan_p = [0.3, 0.35, 0.35] if drift else _PLANS[1]
    pay_p = [0.25, 0.2, 0.15, 0.4] if drift else _PAYMENTS[1]
    plan = rng.choice(_PLANS[0], size=rows, p=plan_p)
    region = rng.choice(_REGIONS[0], size=rows, p=_REGIONS[1])
    payment = rng.choice(_PAYMENTS[0], size=rows, p=pay_p)
    tenure = np.clip(rng.gamma(2.0, 14.0, rows), 1, 72).round()
    base_price = np.select([plan == "basic", plan == "standard"], [35.0, 65.0], 95.0)
    monthly = np.clip(base_price + rng.normal(12.0 if drift else 0.0, 9.0, rows), 15, 150).round(2)
    total = (tenure * monthly * rng.uniform(0.92, 1.02, rows)).round(2)
    support = rng.poisson(2.6 if drift else 1.4, rows).astype(float)
    products = rng.integers(1, 6, rows).astype(float)
    login_gap = rng.exponential(9.0, rows).round(1)
    session = np.clip(rng.normal(24.0, 9.0, rows), 1, None).round(1)
    late = rng.poisson(0.5, rows).astype(float)
    logit = (
        -0.9
        - 0.045 * tenure
        + 0.018 * (monthly - 60)
        + 0.38 * support
        - 0.25 * products
        + 0.05 * login_gap
        - 0.03 * session
        + 0.45 * late
        + np.select([plan == "basic", plan == "premium"], [0.35, -0.4], 0.0)
        + np.select([payment == "invoice", payment == "card"], [0.55, -0.2], 0.0)
        # an interaction a linear model misses: new customers who keep calling support leave
        + 4.0 * ((tenure < 12) & (support >= 3))
        # and customers who stopped logging in on a pricey plan
        + 3.0 * ((login_gap > 14) & (monthly > 70))
        # and both very short and very long sessions (frustration, or scraping) are risky
        + 2.0 * (np.abs(session - 24.0) > 13.0)
        + 1.5 * ((payment == "invoice") & (region == "south"))
        + rng.normal(0.0, 0.3, rows)
    )
    churned = (rng.random(rows) < _sigmoid(logit)).astype(np.int64)
    # a few customers never logged a session: the pipelines impute them
    session[rng.random(rows) < 0.02] = np.nan
    return pd.DataFrame(
        {
            "tenure_months": tenure,
            "monthly_charges": monthly,
            "total_charges": total,
            "support_calls": support,
            "num_products": products,
            "days_since_last_login": login_gap,
            "avg_session_minutes": session,
            "late_payments": late,
            "plan": plan,
            "region": region,
            "payment_method": payment,
            LABEL: churned,
        }
    )


def demo_splits(rows: int = 6000, *, seed: int = SEED) -> dict[str, pd.DataFrame]:
    """Deterministic train / validation / test split (4:1:1)."""
    frame = churn_frame(rows, seed=seed)
    order = np.random.default_rng(seed + 1).permutation(len(frame))
    n_val = n_test = len(frame) // 6
    n_train = len(frame) - n_val - n_test
    cut = [order[:n_train], order[n_train : n_train + n_val], order[n_train + n_val :]]
    names = ("train", "validation", "test")
    return {
        name: frame.iloc[idx].reset_index(drop=True) for name, idx in zip(names, cut, strict=True)
    }


def write_demo_dataset(path: str | Path, *, drift: bool = False, rows: int = 1000) -> Path:
    """Write labelled demo rows as CSV: the registered versions' holdout (test) split, or,
    with ``drift=True``, ``rows`` rows from a shifted population."""
    path = Path(path)
    frame = churn_frame(rows, seed=SEED + 7, drift=True) if drift else demo_splits()["test"]
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False)
    return path
