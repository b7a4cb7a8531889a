"""Where experiments live in the registry's control-plane state, and who owns a split.

``experiment/<model>`` holds the model's current experiment (running, or the last one);
``experiment-history/<model>/<id>`` keeps every experiment once started, so history
survives the next one. The serving view reads the ``experiment/`` prefix only.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

CURRENT_PREFIX = "experiment/"
HISTORY_PREFIX = "experiment-history/"
RUNNING = "running"
STOPPED = "stopped"


def current_key(model: str) -> str:
    return CURRENT_PREFIX + model


def history_key(model: str, experiment_id: str) -> str:
    return f"{HISTORY_PREFIX}{model}/{experiment_id}"


def running_id(raw: Any) -> str | None:
    """The id of a stored experiment that is running (None: none, or not running)."""
    if isinstance(raw, Mapping) and raw.get("status") == RUNNING:
        experiment_id = raw.get("id")
        return experiment_id if isinstance(experiment_id, str) else None
    return None
