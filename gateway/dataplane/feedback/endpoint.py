"""``POST /v2/models/{name}/feedback``: labels and outcomes of predictions served earlier.

Body: one item or a list of them (at most ``MAX_ITEMS``), each with ``label``,
``outcomes`` or both (``feedback/items.py``)::

    {"id": "r-1", "label": 1}
    {"id": "r-1", "outcomes": {"conversion": 1, "revenue": 12.5}}
    {"id": "r-1", "label": 1, "outcomes": {"conversion": 1}}
    {"routing_key": "user-42", "outcomes": {"conversion": 1}}

The id is the ``id`` of the inference response (the client's own id, else the
``X-Request-Id`` the gateway generated). A request of several rows takes a list of as
many labels. Labels are matched to the class labels of the version that answered (an int
or a string, ``1`` and ``"1"`` alike), or taken as numbers for a regressor. Outcomes are
joined to the variant that served the id, or that the routing key is routed to, and
stored in the registry (``feedback/outcomes.py``, docs/experiments.md "Outcomes").

Answer (200); ``outcomes`` is there when the body carried any::

    {"accepted": 2, "labelled_rows": 2, "unknown": ["r-9"], "expired": 1,
     "duplicate": [], "invalid": [{"id": "r-3", "error": "..."}],
     "outcomes": {"accepted": 3, "duplicate": 1, "unknown": ["r-9"], "expired": 0,
                  "invalid": [{"id": "r-4", "metric": "conversion", "error": "..."}]}}

Ids the store does not know (never served, or evicted), expired ones and invalid values
are counted, not refused, so one stale id never loses the rest of the batch; a body that
is not such JSON is a 400 and nothing is recorded. Outcomes are committed in one registry
transaction before anything is answered or labelled: when it fails (database unreachable)
the answer is a 503 and nothing of the body is recorded. No admin token: feedback comes
from the same clients (or their pipelines) as the predictions. Errors are data-plane style
``{"error": ...}``. A ``Content-Encoding: gzip|deflate`` body is decoded first, like an
inference request's.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

import numpy as np
import orjson

from gateway.dataplane.codecs.compression import decoded, request_coding
from gateway.dataplane.feedback.items import MAX_ITEMS, MISSING, FeedbackItem, parse_feedback
from gateway.dataplane.feedback.outcomes import (
    EXPIRED_REASON,
    INVALID,
    OutcomeJoin,
    OutcomeSink,
    OutcomesUnavailable,
    RunningLookup,
)
from gateway.dataplane.feedback.outcomes import (
    UNKNOWN as UNKNOWN_REASON,
)
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
from gateway.errors import GatewayError, ModelNotFound, ModelNotReady

__all__ = ["MAX_ITEMS", "FeedbackEndpoint", "apply_feedback"]


class FeedbackUnavailable(ModelNotReady):
    reason = "monitoring_off"


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
    (monitoring stores predictions in bulk). Outcomes need ``sink`` (where they are
    stored) and ``running`` (the model's running experiment, or None); ``refresh`` brings
    ``running`` up to date with the published snapshot before a body with outcomes."""

    __slots__ = (
        "holder",
        "store",
        "max_body",
        "before_lookup",
        "sink",
        "running",
        "refresh",
        "window_s",
        "_baseline_names",
    )

    def __init__(
        self,
        holder: SnapshotHolder,
        store: FeedbackStore | None,
        max_body: int,
        before_lookup: Callable[[], None] | None = None,
        *,
        sink: OutcomeSink | None = None,
        running: RunningLookup | None = None,
        refresh: Callable[[], Awaitable[None]] | None = None,
        window_s: float = 7 * 86_400.0,
    ) -> None:
        self.holder = holder
        self.store = store
        self.max_body = max_body
        self.before_lookup = before_lookup
        self.sink = sink
        self.running = running
        self.refresh = refresh
        self.window_s = window_s
        self._baseline_names: dict[str, set[str]] = {}

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
            items = parse_feedback(body)
            result = await self._apply(name, items)
            status, payload = 200, orjson.dumps(result)
        except ClientGone:
            return
        except GatewayError as exc:
            status, payload = exc.status, error_body(str(exc))
        await respond_json(send, status, payload, request_id)

    async def _apply(self, name: str, items: list[FeedbackItem]) -> dict[str, Any]:
        labels = [(str(i.request_id), i.label) for i in items if i.label is not MISSING]
        with_outcomes = [i for i in items if i.outcomes]
        by_id = any(i.request_id is not None for i in with_outcomes)
        if self.store is None and (labels or by_id):
            raise FeedbackUnavailable("label feedback needs monitoring (MODELGATE_MONITORING=on)")
        if self.before_lookup is not None:
            self.before_lookup()
        tables = None if self.store is None else self.store.get(name)
        now = self.store.clock() if self.store is not None else time.time()
        outcomes = await self._outcomes(name, with_outcomes, tables, now) if with_outcomes else None
        result = apply_feedback(tables, labels, now)
        if outcomes is not None:
            result["outcomes"] = outcomes
        return result

    async def _outcomes(
        self, name: str, items: list[FeedbackItem], tables: ModelFeedback | None, now: float
    ) -> dict[str, Any]:
        """Join, then store in one transaction (before any label is applied)."""
        sink = self.sink
        if sink is None or self.running is None:
            raise OutcomesUnavailable("outcomes need the registry, which this server lacks")
        if self.refresh is not None:
            await self.refresh()
        join = OutcomeJoin(
            name,
            self.running(name),
            tables,
            self.holder.current.models.get(name),
            self.window_s,
            now,
            self._baseline_names.setdefault(name, set()),
        )
        for item in items:
            join.add(item)
        joined = join.result
        accepted = duplicate = 0
        if joined.outcomes:
            accepted, duplicate = await sink.record(name, joined.outcomes)
        for reason, n in (
            (UNKNOWN_REASON, joined.unknown_outcomes),
            (EXPIRED_REASON, joined.expired),
            (INVALID, len(joined.invalid)),
        ):
            if n:
                sink.dropped(name, reason, n)
        return joined.answer(accepted, duplicate)
