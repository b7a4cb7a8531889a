"""The feedback body: items carrying a label, outcomes, or both (pure; InputError is a 400).

An item is ``{"id": ..., "label": ...}``, ``{"id": ..., "outcomes": {...}}``, both in one
object, or ``{"routing_key": ..., "outcomes": {...}}`` for outcomes that belong to a user
rather than a request (a label always needs the request id). The body is one item or a
list of at most ``MAX_ITEMS``. Only the shape is checked here: the outcome values are
validated per metric later (``feedback.outcomes``), so one bad value never loses the batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from gateway.errors import InputError

MAX_ITEMS = 10_000
MAX_OUTCOMES = 64  # metrics in one item
MAX_KEY_CHARS = 1024  # a routing key's length


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()  # an item without a label


@dataclass(frozen=True, slots=True)
class FeedbackItem:
    request_id: str | None  # None: outcomes by routing key
    routing_key: str | None
    label: Any  # MISSING when the item carries none
    outcomes: dict[str, Any]  # metric -> value as sent (empty: none)

    @property
    def unit(self) -> str:
        """What the answer calls this item: its request id, else its routing key."""
        return self.request_id if self.request_id is not None else str(self.routing_key)


def _request_id(value: Any, where: str) -> str | None:
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value:
        raise InputError(f"{where}: 'id' must be the request id (a string)")
    return value


def _routing_key(value: Any, where: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value or len(value) > MAX_KEY_CHARS:
        raise InputError(
            f"{where}: 'routing_key' must be a non-empty string of at most {MAX_KEY_CHARS} "
            "characters (the X-Routing-Key the requests carried)"
        )
    return value


def _item(item: Any, where: str) -> FeedbackItem:
    if not isinstance(item, dict):
        raise InputError(f"{where} must be an object with 'id' and 'label' or 'outcomes'")
    request_id = _request_id(item.get("id"), where)
    routing_key = _routing_key(item.get("routing_key"), where)
    label = item["label"] if item.get("label") is not None else MISSING
    outcomes = item.get("outcomes")
    if outcomes is not None and not isinstance(outcomes, dict):
        raise InputError(f"{where}: 'outcomes' must be an object of metric name -> number")
    outcomes = outcomes or {}
    if len(outcomes) > MAX_OUTCOMES:
        raise InputError(f"{where}: at most {MAX_OUTCOMES} outcomes per item")
    if request_id is not None and routing_key is not None:
        raise InputError(f"{where}: give 'id' or 'routing_key', not both")
    if request_id is None:
        if routing_key is None or label is not MISSING:
            raise InputError(f"{where}: 'id' must be the request id (a string)")
        if not outcomes:
            raise InputError(f"{where}: 'outcomes' is missing (a routing key carries outcomes)")
    elif label is MISSING and not outcomes:
        raise InputError(f"{where}: 'label' is missing (give 'label', 'outcomes' or both)")
    return FeedbackItem(request_id, routing_key, label, outcomes)


def parse_feedback(body: bytes) -> list[FeedbackItem]:
    """Every item of a feedback body; InputError (400) for anything malformed."""
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InputError(f"invalid JSON: {exc}", reason="bad_json") from None
    items = payload if isinstance(payload, list) else [payload]
    if not items:
        raise InputError('no feedback: expected {"id": ..., "label": ...} or a list of them')
    if len(items) > MAX_ITEMS:
        raise InputError(f"at most {MAX_ITEMS} feedback items per request, got {len(items)}")
    many = isinstance(payload, list)
    return [
        _item(item, f"feedback item {n}" if many else "feedback") for n, item in enumerate(items)
    ]
