"""Version rows' never-changing stored JSON, parsed once and kept across serving-view reads.

Every admin change and publisher refresh reads the whole serving view. A version's schema,
lineage, reference distributions, parity report, tags, description and author are written
once at registration and never updated (only ``stage``, ``stage_changed_at``,
``evaluation_json`` and the ``left_production_*`` columns are), yet the reference documents
run to hundreds of kilobytes: with 200 versions, parsing them again on every read took
more than a second of GIL time per admin change. A view read therefore selects only a
version's mutable columns and its identity, and takes the parsed immutable part from here;
a model with a version not seen before has its full rows read and parsed once.

The key is (model, version, artifact digest, created_at): versions are never deleted or
rewritten, and a registry replaced underneath (a restored backup) that reuses a version
number still differs in registration time or artifact. The parsed dicts are shared between
views, like everything else in a view: readers must not mutate them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from registry.models import ModelVersion
from registry.rows import VersionBody, version_body, version_from_parts

# what a view read selects for every version: identity plus every column that can change
HEAD_SQL = (
    "SELECT model, version, artifact_sha256, created_at, stage, stage_changed_at,"
    " evaluation_json FROM versions WHERE model = ? ORDER BY major, minor, patch"
)
# read (and parsed) only for a model with a version the cache has not seen
BODY_SQL = (
    "SELECT model, version, artifact_sha256, created_at, artifact_size, schema_json,"
    " lineage_json, reference_json, parity_json, tags_json, description, created_by"
    " FROM versions WHERE model = ?"
)

Key = tuple[str, str, str, str]
# a row of either backend, read by column name (sqlite3.Row or the PostgreSQL Txn's rows)
Row = Any


@dataclass(frozen=True, slots=True)
class CacheInfo:
    parsed: int  # bodies parsed since the cache was made (each a full JSON decode)
    built: int  # versions built from cached bodies
    size: int


def _key(row: Row) -> Key:
    return (row["model"], row["version"], row["artifact_sha256"], row["created_at"])


class ParsedVersions:
    """Parsed immutable version bodies of one registry, keyed by version identity."""

    def __init__(self) -> None:
        self._bodies: dict[Key, VersionBody] = {}
        self._parsed = 0
        self._built = 0

    def info(self) -> CacheInfo:
        return CacheInfo(self._parsed, self._built, len(self._bodies))

    def missing(self, heads: Iterable[Row]) -> bool:
        """Whether any of these head rows (``HEAD_SQL``) has no cached body."""
        return any(_key(row) not in self._bodies for row in heads)

    def add(self, bodies: Iterable[Row]) -> None:
        """Parse and keep the ``BODY_SQL`` rows not cached yet."""
        for row in bodies:
            key = _key(row)
            if key in self._bodies:
                continue
            self._bodies[key] = version_body(row)
            self._parsed += 1

    def version(self, head: Row, aliases: tuple[str, ...]) -> ModelVersion:
        """The version of a head row, its body from the cache (``add`` it first)."""
        body = self._bodies[_key(head)]
        self._built += 1
        return version_from_parts(head, body, aliases)

    def from_row(self, row: Row, aliases: tuple[str, ...]) -> ModelVersion:
        """The version of a full ``versions`` row (``SELECT *``), its body parsed only if
        not cached yet."""
        self.add((row,))
        return self.version(row, aliases)

    def retain(self, heads: Iterable[Row]) -> None:
        """Forget every body but these versions' (after a read of the whole registry)."""
        keep = {_key(row) for row in heads}
        for key in [key for key in self._bodies if key not in keep]:
            del self._bodies[key]
