"""Copy an SQLite registry into an empty PostgreSQL registry, then prove the copy.

Everything is copied as stored, in one PostgreSQL write transaction: models, versions with
their blobs (hashed while uploaded), aliases, deployments, control-plane state, the audit
log with its ids, and the generation. Nothing is written to the source. ``verify_copy``
then reads both registries again and compares every row, and streams every blob back out
of PostgreSQL through the sha256 check.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from typing import Any

from registry.artifacts import ArtifactStore
from registry.errors import RegistryError
from registry.postgres import blobs
from registry.postgres.store import PostgresRegistry
from registry.sqlite.store import SqliteRegistry
from registry.sqlite.txn import Txn

# parents before children (foreign keys); each with the order its rows are compared in
TABLES: tuple[tuple[str, str], ...] = (
    ("models", "name"),
    ("versions", "model, major, minor, patch"),
    ("aliases", "model, alias"),
    ("deployments", "model"),
    ("state", "key"),
    ("audit", "id"),
    ("outcome_moments", "scope, model, version, metric"),
    ("outcome_keys", "model, unit, metric"),
    ("experiment_assignments", "experiment_id, version"),
)


@dataclass(frozen=True, slots=True)
class CopyReport:
    rows: dict[str, int]
    artifacts: int
    artifact_bytes: int
    generation: int


async def _dump(txn: Txn) -> tuple[dict[str, list[dict[str, Any]]], int]:
    tables: dict[str, list[dict[str, Any]]] = {}
    for table, order in TABLES:
        rows = await txn.all(f"SELECT * FROM {table} ORDER BY {order}")
        tables[table] = [{key: row[key] for key in row.keys()} for row in rows]
    row = await txn.one("SELECT value FROM meta WHERE key = 'generation'")
    return tables, int(row[0]) if row else 0


async def copy_registry(source: SqliteRegistry, target: PostgresRegistry) -> CopyReport:
    """Copy ``source`` into ``target`` (which must be empty) in one transaction."""
    async with source._read() as txn:
        tables, generation = await _dump(txn)
    artifacts = {v["artifact_sha256"]: v["artifact_size"] for v in tables["versions"]}
    async with target._write() as txn:
        present = await txn.one(
            "SELECT (SELECT count(*) FROM models) + (SELECT count(*) FROM audit)"
        )
        if present and int(present[0]):
            raise RegistryError(
                "the target registry is not empty; migrate into a new database only"
            )
        for sha, size in sorted(artifacts.items()):
            await blobs.upload(txn, source.artifacts, sha, size)
        for table, _order in TABLES:
            for row in tables[table]:
                columns = ", ".join(row)
                marks = ", ".join("?" for _ in row)
                await txn.run(
                    f"INSERT INTO {table} ({columns}) VALUES ({marks})", tuple(row.values())
                )
        await txn.run("UPDATE meta SET value = ? WHERE key = 'generation'", (generation,))
        txn._generation = generation  # listeners learn about the copied state
    return CopyReport(
        rows={table: len(rows) for table, rows in tables.items()},
        artifacts=len(artifacts),
        artifact_bytes=sum(artifacts.values()),
        generation=generation,
    )


async def verify_copy(source: SqliteRegistry, target: PostgresRegistry) -> list[str]:
    """Every difference between the two registries (empty: an exact copy)."""
    async with source._read() as txn:
        expected, expected_generation = await _dump(txn)
    async with target._read() as txn:
        found, found_generation = await _dump(txn)
    problems = []
    for table, _order in TABLES:
        if expected[table] != found[table]:
            problems.append(
                f"table {table}: {len(expected[table])} rows in the source, "
                f"{len(found[table])} in the copy, or their values differ"
            )
    if expected_generation != found_generation:
        problems.append(f"generation {expected_generation} != {found_generation}")
    artifacts = {v["artifact_sha256"]: v["artifact_size"] for v in expected["versions"]}
    with tempfile.TemporaryDirectory(prefix="modelgate-verify-") as scratch:
        store = ArtifactStore(scratch)
        for sha, size in sorted(artifacts.items()):
            try:
                await target.fetch_into(store, sha, size)
            except RegistryError as exc:
                problems.append(str(exc))
    return problems
