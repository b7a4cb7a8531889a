"""The JSON of an experiment (``GET /admin/models/{name}/experiment``, the CLI, the console).

The stored record without its internal folded test states; ``results`` is the last look:
assignments per variant with the sample-ratio check, and per metric the variants' n, mean
and interval, the always-valid difference, the fixed-horizon test once the planned size is
reached, the metric's decision; ``verdict`` and ``promotion`` once it stopped.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

INTERNAL = frozenset({"states", "last_look", "sticky_before"})


def experiment_view(record: Mapping[str, Any]) -> dict[str, Any]:
    view = {k: v for k, v in record.items() if k not in INTERNAL}
    view["results"] = record.get("last_look")
    return view
