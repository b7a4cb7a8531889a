"""What serving needs from the registry, read in one consistent snapshot and one thread hop.

The store's aiosqlite connection costs a thread round trip per statement (and two per
fetching statement). A publisher refresh or an admin change reads a dozen statements per
model; on a gateway saturated with requests every round trip waits its turn on the event
loop, so a rollback took seconds under load. ``read_view`` is the whole read as one
synchronous function, run on ``registry.sqlite.direct``'s connection and thread: one round trip,
one WAL read snapshot (readers never block writers, or other readers). Versions' immutable
stored JSON comes parsed from the store's ``ParsedVersions`` (``registry/parsed_versions.py``).
"""

from __future__ import annotations

import sqlite3
from typing import Any

from registry.errors import NotFound, RegistryError
from registry.models import Model, ModelView, RegistryView
from registry.parsed_versions import BODY_SQL, HEAD_SQL, ParsedVersions
from registry.rows import (
    MODEL_SQL,
    PREVIOUS_PRODUCTION_SQL,
    deployment_from_row,
    from_json,
    model_from_row,
)


def _read_model(
    conn: sqlite3.Connection, model: Model, parsed: ParsedVersions, heads: list[sqlite3.Row]
) -> ModelView:
    aliases: dict[str, list[str]] = {}
    for row in conn.execute(
        "SELECT version, alias FROM aliases WHERE model = ? ORDER BY alias", (model.name,)
    ):
        aliases.setdefault(row["version"], []).append(row["alias"])
    rows = conn.execute(HEAD_SQL, (model.name,)).fetchall()
    if parsed.missing(rows):
        parsed.add(conn.execute(BODY_SQL, (model.name,)))
    heads.extend(rows)
    versions = tuple(parsed.version(row, tuple(aliases.get(row["version"], ()))) for row in rows)
    deployment = conn.execute("SELECT * FROM deployments WHERE model = ?", (model.name,)).fetchone()
    if deployment is None:
        raise RegistryError(f"registry is inconsistent: model {model.name!r} has no deployment")
    previous_row = conn.execute(PREVIOUS_PRODUCTION_SQL, (model.name,)).fetchone()
    previous = None
    if previous_row is not None:
        previous = next(v for v in versions if v.version == previous_row["version"])
    return ModelView(model, versions, deployment_from_row(deployment), previous)


def read_view(
    conn: sqlite3.Connection,
    model: str | None,
    state_prefix: str | tuple[str, ...] | None,
    parsed: ParsedVersions,
) -> RegistryView:
    """Run inside one read transaction (``registry.sqlite.direct.read_snapshot``); ``state_prefix``
    is one key prefix or several."""
    row = conn.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()
    generation = int(row[0]) if row else 0
    if model is None:
        rows = conn.execute(f"{MODEL_SQL} ORDER BY m.name").fetchall()
    else:
        rows = conn.execute(f"{MODEL_SQL} WHERE m.name = ?", (model,)).fetchall()
        if not rows:
            raise NotFound(f"unknown model {model!r}")
    heads: list[sqlite3.Row] = []
    models = tuple(_read_model(conn, model_from_row(r), parsed, heads) for r in rows)
    if model is None:
        parsed.retain(heads)
    states: dict[str, Any] = {}
    prefixes = (state_prefix,) if isinstance(state_prefix, str) else state_prefix or ()
    for prefix in prefixes:
        # GLOB, not LIKE: '_' and '%' are ordinary characters in keys
        pattern = prefix.replace("[", "[[]").replace("*", "[*]").replace("?", "[?]")
        for key, value in conn.execute(
            "SELECT key, value_json FROM state WHERE key GLOB ?", (pattern + "*",)
        ):
            states[key] = from_json(value)
    return RegistryView(generation, models, states)
