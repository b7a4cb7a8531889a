"""``GET /admin/audit``: the registry's audit log, newest first.

Query parameters, all optional: ``model``, ``action`` (register, stage, traffic, rollback,
switch, promote, gate_override, restore, state, ...), ``actor``, ``since`` (ISO-8601 date or
time; naive means UTC) and ``limit`` (1..10000, default 100). Answer: ``{"entries": [{"id",
"at", "actor", "action", "model", "version", "before", "after", "reason"}], "count"}``.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import TYPE_CHECKING, Any

from starlette.requests import Request

from gateway.admin.http import registry_of
from gateway.errors import InputError
from registry.sqlite.store import MAX_AUDIT_LIMIT

if TYPE_CHECKING:
    from gateway.state import GatewayState

DEFAULT_LIMIT = 100
FILTERS = ("model", "action", "actor")
KNOWN = frozenset({*FILTERS, "since", "limit"})


def parse_limit(raw: str | None) -> int:
    if raw is None or raw == "":
        return DEFAULT_LIMIT
    try:
        limit = int(raw)
    except ValueError:
        raise InputError(f"limit must be an integer, got {raw!r}") from None
    if not 1 <= limit <= MAX_AUDIT_LIMIT:
        raise InputError(f"limit must be from 1 to {MAX_AUDIT_LIMIT}, got {limit}")
    return limit


def parse_since(raw: str | None) -> str | None:
    if raw is None or raw == "":
        return None
    try:
        datetime.fromisoformat(raw)
    except ValueError:
        raise InputError(f"since must be an ISO-8601 date or time, got {raw!r}") from None
    return raw


async def audit(request: Request, state: GatewayState) -> dict[str, Any]:
    query = request.query_params
    unknown = sorted(set(query.keys()) - KNOWN)
    if unknown:
        raise InputError(
            f"unknown query parameter {unknown[0]!r} (allowed: {', '.join(sorted(KNOWN))})"
        )
    filters = {key: query.get(key) or None for key in FILTERS}
    entries = await registry_of(state).audit(
        **filters, since=parse_since(query.get("since")), limit=parse_limit(query.get("limit"))
    )
    return {"entries": [dataclasses.asdict(e) for e in entries], "count": len(entries)}
