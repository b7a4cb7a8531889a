"""Choosing a new version's number so that it means something (pure: no registry access).

The rule: a version whose input schema or output classes differ from the version it
follows (the highest registered version below it) must raise MAJOR. ``auto`` picks major
after a schema change and minor otherwise. An explicit minor/patch over a change is
refused with ``BreakingChange`` unless forced with a reason; the reason, the part and the
differences then go into the registration's audit entry.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from registry import semver
from registry.errors import BreakingChange, InvalidVersion, VersionExists
from registry.schema_diff import schema_changes


@dataclass(frozen=True, slots=True)
class VersionChoice:
    version: str
    previous: str | None = None  # the version this one follows, None for the first
    part: str | None = None  # the part raised over ``previous``
    changes: list[str] = field(default_factory=list)  # schema differences from ``previous``
    forced: bool = False  # minor/patch over a schema change, overridden with a reason
    auto: bool = False  # the part was picked by ``auto``

    def audit_reason(self, reason: str = "") -> str:
        """The audit entry's reason: the operator's text, then why this part was chosen."""
        parts = [reason.strip()] if reason.strip() else []
        if self.changes:
            listing = "; ".join(self.changes)
            if self.forced:
                parts.append(
                    f"forced {self.part} version over schema changes from {self.previous}: "
                    f"{listing}"
                )
            else:
                parts.append(f"major version: schema changes from {self.previous}: {listing}")
        return " | ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        """The lineage record (``lineage["version_change"]``)."""
        return {
            "previous": self.previous,
            "part": self.part,
            "schema_changes": list(self.changes),
            "auto": self.auto,
            "forced": self.forced,
        }


def choose_version(
    model: str,
    existing: Mapping[str, Mapping[str, Any]],
    schema: Mapping[str, Any],
    *,
    version: str | None = None,
    bump: str | None = None,
    force: bool = False,
    reason: str = "",
) -> VersionChoice:
    """``existing`` maps each registered version to its schema; exactly one of ``version``
    and ``bump`` ("major" | "minor" | "patch" | "auto") is given."""
    if (version is None) == (bump is None):
        raise InvalidVersion("give exactly one of a version or a bump part")
    auto = bump == semver.AUTO
    if version is not None:
        chosen = semver.normalise(version)
        if chosen in existing:
            raise VersionExists(f"model {model!r} already has version {chosen}")
    else:
        # with auto the part is settled below; minor gives the same predecessor
        chosen = semver.next_version(existing, "minor" if auto else str(bump))
    previous = semver.predecessor(existing, chosen)
    if previous is None:
        return VersionChoice(chosen, auto=auto)
    changes = schema_changes(existing[previous], schema)
    if auto:
        part = "major" if changes else "minor"
        return VersionChoice(semver.bump(previous, part), previous, part, changes, auto=True)
    part = semver.part_between(previous, chosen)
    if not changes or part == "major":
        return VersionChoice(chosen, previous, part, changes)
    listing = "; ".join(changes)
    if not force:
        raise BreakingChange(
            f"model {model!r} {chosen} is a {part} version after {previous} but the schema "
            f"changed: {listing}; a schema change needs a new major version (--bump auto or "
            "--bump major), or --force --reason TEXT",
            changes,
        )
    if not reason.strip():
        raise BreakingChange(
            f"forcing {part} version {chosen} over schema changes from {previous} needs "
            f"--reason TEXT ({listing})",
            changes,
        )
    return VersionChoice(chosen, previous, part, changes, forced=True)
