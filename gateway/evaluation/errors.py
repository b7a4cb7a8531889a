"""The one exception of the lifecycle package (a ValueError: bad input data or model)."""

from __future__ import annotations


class EvaluationError(ValueError):
    """The evaluation cannot run on this data / model; the message is one line for the user."""
