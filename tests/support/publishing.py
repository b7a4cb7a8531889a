"""A logistic regression fitted on a labelled frame, published and made the production version."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import pandas as pd

from registry.models import Stage
from registry.sqlite.store import open_registry


async def publish_logistic(root: Path, name: str, frame: pd.DataFrame, features: list[str]) -> Any:
    """Fit on ``frame[features]`` against ``frame["y"]``, publish ``name`` 1.0.0 with ``frame``
    as its labelled reference into the registry at ``root``, promote it; returns the model."""
    from sklearn.linear_model import LogisticRegression

    from converters import publish

    registry = await open_registry(root)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = LogisticRegression().fit(frame[features], frame["y"])
            await publish(registry, name, model, frame, "y", version="1.0.0")
        await registry.set_stage(name, "1.0.0", Stage.PRODUCTION)
    finally:
        await registry.close()
    return model
