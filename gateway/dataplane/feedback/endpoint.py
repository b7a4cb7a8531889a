"""``POST /v2/models/{name}/feedback``: labels for predictions served earlier.

Body: ``{"id": "<request id>", "label": <label>}`` or a list of them (at most
``MAX_ITEMS``). The id is the ``id`` of the inference response (the client's own id, else
the ``X-Request-Id`` the gateway generated). A request of several rows takes a list of as
many labels. Labels are matched to the class labels of the version that answered (an int
or a string, ``1`` and ``"1"`` alike), or taken as numbers for a regressor.

Answer (200)::

    {"accepted": 2, "labelled_rows": 2, "unknown": ["r-9"], "expired": 1,
     "duplicate": [], "invalid": [{"id": "r-3", "error": "..."}]}

Ids the store does not know (never served, or evicted) and expired ones are counted, not
refused, so one stale id never loses the rest of the batch; a body that is not such JSON is
a 400 and nothing is recorded. No admin token: label feedback comes from the same clients
(or their pipelines) as the predictions. Errors are data-plane style ``{"error": ...}``.
A ``Content-Encoding: gzip|deflate`` body is decoded first, like an inference request's.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import orjson

from gateway.dataplane.codecs.compression import decoded, request_coding
from gateway.dataplane.feedback.store import (
    DUPLICATE,
    EXPIRED,
    UNKNOWN,
    FeedbackStore,
    ModelFeedback,
)
from gateway.dataplane.http.asgi import (
    CONTENT_ENCODING,
    CONTENT_LENGTH,
    ClientGone,
    Receive,
    Scope,
    Send,
    error_body,
    read_body,
    request_id_of,
    respond_json,
    scan_headers,
)
from gateway.dataplane.snapshot import SnapshotHolder
from gateway.errors import GatewayError, InputError, ModelNotFound, ModelNotReady

MAX_ITEMS = 10_000


class FeedbackUnavailable(ModelNotReady):
    reason = "monitoring_off"


def parse_items(body: bytes) -> list[tuple[str, Any]]:
    """(id, label) pairs of a feedback body; InputError (400) for anything malformed."""
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InputError(f"invalid JSON: {exc}", reason="bad_json") from None
    items = payload if isinstance(payload, list) else [payload]
    if not items:
        raise InputError('no feedback: expected {"id": ..., "label": ...} or a list of them')
    if len(items) > MAX_ITEMS:
        raise InputError(f"at most {MAX_ITEMS} feedback items per request, got {len(items)}")
    out = []
    for n, item in enumerate(items):
        where = f"feedback item {n}" if isinstance(payload, list) else "feedback"
        if not isinstance(item, dict):
            raise InputError(f"{where} must be an object with 'id' and 'label'")
        request_id, label = item.get("id"), item.get("label")
        if isinstance(request_id, int) and not isinstance(request_id, bool):
            request_id = str(request_id)
        if not isinstance(request_id, str) or not request_id:
            raise InputError(f"{where}: 'id' must be the request id (a string)")
        if label is None:
            raise InputError(f"{where}: 'label' is missing")
        out.append((request_id, label))
    return out


def apply_feedback(
    tables: ModelFeedback | None, items: list[tuple[str, Any]], now: float
) -> dict[str, Any]:
    """Label every known, unexpired, not yet labelled request; report the others."""
    accepted = rows = expired = 0
    unknown: list[str] = []
    duplicate: list[str] = []
    invalid: list[dict[str, str]] = []
    for request_id, label in items:
        if tables is None:
            unknown.append(request_id)
            continue
        status, slots = tables.find(request_id, now)
        if status == UNKNOWN:
            unknown.append(request_id)
            continue
        if status == EXPIRED:
            expired += 1
            continue
        if status == DUPLICATE:
            duplicate.append(request_id)
            continue
        tag, preds, pred_time = tables.entry(slots)
        problem, values = _encode(tables, tag, label, len(slots))
        if problem is not None:
            invalid.append({"id": request_id, "error": problem})
            continue
        tables.label(slots, tag, preds, pred_time, values, now)
        accepted += 1
        rows += len(slots)
    return {
        "accepted": accepted,
        "labelled_rows": rows,
        "unknown": unknown,
        "expired": expired,
        "duplicate": duplicate,
        "invalid": invalid,
    }


def _encode(tables: ModelFeedback, tag: int, label: Any, n_rows: int) -> tuple[str | None, Any]:
    labels = tables.versions.get(tag)
    if labels is None:
        return "the version that answered this request is not known to this server", None
    given = label if isinstance(label, list) else [label]
    if len(given) != n_rows:
        return f"the request had {n_rows} rows: 'label' must be a list of {n_rows} labels", None
    values = [labels.encode(v) for v in given]
    for raw, value in zip(given, values, strict=True):
        if value is None:
            what = "a class" if labels.classification else "a finite number"
            return f"label {raw!r} is not {what} of version {labels.version}", None
    return None, np.asarray(values, dtype=np.float64)


class FeedbackEndpoint:
    """Raw ASGI endpoint; ``before_lookup`` makes this worker's latest requests findable
    (monitoring stores predictions in bulk)."""

    __slots__ = ("holder", "store", "max_body", "before_lookup")

    def __init__(
        self,
        holder: SnapshotHolder,
        store: FeedbackStore | None,
        max_body: int,
        before_lookup: Callable[[], None] | None = None,
    ) -> None:
        self.holder = holder
        self.store = store
        self.max_body = max_body
        self.before_lookup = before_lookup

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        found = scan_headers(scope["headers"])
        request_id = request_id_of(found)
        try:
            coding = request_coding(found[CONTENT_ENCODING])
            body = await read_body(receive, self.max_body, found[CONTENT_LENGTH])
            if coding is not None:
                body = await decoded(body, coding, self.max_body)
            name = scope["path_params"]["name"]
            if name not in self.holder.current.models:
                raise ModelNotFound(f"unknown model '{name}'")
            if self.store is None:
                raise FeedbackUnavailable(
                    "label feedback needs monitoring (MODELGATE_MONITORING=on)"
                )
            items = parse_items(body)
            if self.before_lookup is not None:
                self.before_lookup()
            result = apply_feedback(self.store.get(name), items, self.store.clock())
            status, payload = 200, orjson.dumps(result)
        except ClientGone:
            return
        except GatewayError as exc:
            status, payload = exc.status, error_body(str(exc))
        await respond_json(send, status, payload, request_id)
