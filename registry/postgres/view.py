"""``serving_view`` on PostgreSQL: every model's state read in one REPEATABLE READ snapshot.

The same ``RegistryView`` the SQLite backend builds (``registry/sqlite/view.py``), read
through the shared ``Txn`` interface; three statements per model plus one per prefix.
"""

from __future__ import annotations

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
from registry.sqlite.txn import Txn


async def _read_model(
    txn: Txn, model: Model, parsed: ParsedVersions, heads: list[Any]
) -> ModelView:
    aliases: dict[str, list[str]] = {}
    for row in await txn.all(
        "SELECT version, alias FROM aliases WHERE model = ? ORDER BY alias", (model.name,)
    ):
        aliases.setdefault(row["version"], []).append(row["alias"])
    rows = await txn.all(HEAD_SQL, (model.name,))
    if parsed.missing(rows):
        parsed.add(await txn.all(BODY_SQL, (model.name,)))
    heads.extend(rows)
    versions = tuple(parsed.version(row, tuple(aliases.get(row["version"], ()))) for row in rows)
    deployment = await txn.one("SELECT * FROM deployments WHERE model = ?", (model.name,))
    if deployment is None:
        raise RegistryError(f"registry is inconsistent: model {model.name!r} has no deployment")
    previous_row = await txn.one(PREVIOUS_PRODUCTION_SQL, (model.name,))
    previous = None
    if previous_row is not None:
        previous = next(v for v in versions if v.version == previous_row["version"])
    return ModelView(model, versions, deployment_from_row(deployment), previous)


async def read_view(
    txn: Txn,
    model: str | None,
    state_prefix: str | tuple[str, ...] | None,
    parsed: ParsedVersions,
) -> RegistryView:
    """Inside one read transaction; ``state_prefix`` is one key prefix or several."""
    row = await txn.one("SELECT value FROM meta WHERE key = 'generation'")
    generation = int(row[0]) if row else 0
    if model is None:
        rows = await txn.all(f"{MODEL_SQL} ORDER BY m.name")
    else:
        rows = await txn.all(f"{MODEL_SQL} WHERE m.name = ?", (model,))
        if not rows:
            raise NotFound(f"unknown model {model!r}")
    heads: list[Any] = []
    models = tuple([await _read_model(txn, model_from_row(r), parsed, heads) for r in rows])
    if model is None:
        parsed.retain(heads)
    states: dict[str, Any] = {}
    prefixes = (state_prefix,) if isinstance(state_prefix, str) else state_prefix or ()
    for prefix in prefixes:
        # starts_with, not LIKE: '_' and '%' are ordinary characters in keys
        for key, value in await txn.all(
            "SELECT key, value_json FROM state WHERE starts_with(key, ?)", (prefix,)
        ):
            states[key] = from_json(value)
    return RegistryView(generation, models, states)
