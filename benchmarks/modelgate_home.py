"""Build a modelgate home (registry + artifacts) holding a benchmark model, via the Python API.

Versions come from the same model family (variant 0 -> 1.0.0, variant 1 -> 1.1.0); the
first version is promoted to production, the others go to staging and, when a split is
asked for, the deployment is set to it. modelgate's own modules are imported lazily so
the baselines run without them.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Sequence
from pathlib import Path

from benchmarks.models import build_model, dataset, feature_names

REQUIRED_MODULES = ("registry.sqlite.store", "converters.publish", "gateway.cli.main")


def modelgate_missing() -> str | None:
    """Why modelgate cannot be benchmarked yet (a missing module), or None when it can."""
    import importlib

    for module in REQUIRED_MODULES:
        try:
            importlib.import_module(module)
        except ImportError as exc:
            return f"modelgate is not available ({module}: {exc})"
    return None


def build_home(
    home: Path,
    model: str,
    routes: Sequence[tuple[str, float]],
    shadow: Sequence[tuple[str, float]] = (),
) -> Path:
    """Create ``home`` from scratch and register ``model`` with the given traffic split
    and shadow mirrors (each shadow version is one more variant of the model family)."""
    if home.exists():
        shutil.rmtree(home)
    home.mkdir(parents=True)
    asyncio.run(_populate(home, model, tuple(routes), tuple(shadow)))
    return home


async def _populate(
    home: Path,
    model: str,
    routes: tuple[tuple[str, float], ...],
    shadow: tuple[tuple[str, float], ...],
) -> None:
    import pandas as pd

    from converters.publish import publish
    from registry.home import resolve_home
    from registry.models import Deployment, Route, Shadow, Stage
    from registry.sqlite.store import open_registry

    routed = [version for version, _ in routes] or ["1.0.0"]
    versions = routed + [version for version, _ in shadow]
    x_train, _, _ = dataset()
    sample = pd.DataFrame(x_train[:1000], columns=feature_names())
    registry = await open_registry(resolve_home(home))
    try:
        for variant, version in enumerate(versions):
            estimator = build_model(model, variant).load_estimator()
            await publish(registry, model, estimator, sample, version=version)
        await registry.set_stage(model, versions[0], Stage.PRODUCTION)
        for version in versions[1:]:
            # a canary is a staging version taking a share of the traffic
            await registry.set_stage(model, version, Stage.STAGING)
        if len(routes) > 1 or shadow:
            split = tuple(Route(version, weight) for version, weight in routes)
            mirrors = tuple(Shadow(version, sample) for version, sample in shadow)
            await registry.set_deployment(Deployment(model=model, routes=split, shadows=mirrors))
    finally:
        await registry.close()
