"""Semantic versions for models: ``MAJOR.MINOR.PATCH`` and nothing else.

Decisions:

* A leading ``v`` or ``V`` (training tools write ``v1.1.0``; docs/lifecycle.md) is accepted and
  normalised away: the registry stores and returns ``1.1.0`` only, so ``v1.1.0`` and
  ``1.1.0`` can never name two different versions.
* No leading zeros (``1.01.0`` is refused, as in semver.org), no pre-release or build
  suffixes (``1.0.0-rc1``, ``1.0.0+abc``): a model version is promoted through stages,
  not through suffixes.
* Each part is at most 9 digits so that it fits SQLite integers and ordering columns.
* Ordering is numeric: ``1.10.0 > 1.9.0``.
* Meaning: a version whose input schema or output classes differ from the version it
  follows (``predecessor``) must raise MAJOR (``registry.schema_diff`` lists the
  differences; ``converters.publish`` enforces the rule). ``auto`` picks the part itself:
  major after a schema change, minor otherwise.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import NamedTuple

from registry.errors import InvalidVersion

BUMP_PARTS = ("major", "minor", "patch")
AUTO = "auto"
BUMP_CHOICES = (*BUMP_PARTS, AUTO)

_VERSION_RE = re.compile(r"(0|[1-9][0-9]{0,8})\.(0|[1-9][0-9]{0,8})\.(0|[1-9][0-9]{0,8})")
_SUFFIX_RE = re.compile(r"[0-9.]+[-+].*")


class SemVer(NamedTuple):
    """A parsed version; tuple ordering is semantic-version ordering."""

    major: int
    minor: int
    patch: int

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}.{self.patch}"


def parse(text: str) -> SemVer:
    """Parse ``MAJOR.MINOR.PATCH`` (optionally prefixed by ``v``); raise InvalidVersion."""
    if not isinstance(text, str):
        raise InvalidVersion(f"version must be a string like 1.2.0, got {type(text).__name__}")
    raw = text.strip()
    body = raw[1:] if raw[:1] in ("v", "V") else raw
    match = _VERSION_RE.fullmatch(body)
    if match is None:
        raise InvalidVersion(_explain(text, body))
    return SemVer(int(match[1]), int(match[2]), int(match[3]))


def _explain(text: str, body: str) -> str:
    prefix = f"invalid version {text!r}: "
    if _SUFFIX_RE.fullmatch(body):
        return prefix + "pre-release and build suffixes are not supported; use MAJOR.MINOR.PATCH"
    parts = body.split(".")
    if len(parts) == 3 and all(p.isdigit() for p in parts):
        if any(len(p) > 1 and p.startswith("0") for p in parts):
            return prefix + "leading zeros are not allowed"
        return prefix + "each part must have at most 9 digits"
    return prefix + "expected MAJOR.MINOR.PATCH with non-negative integers, e.g. 1.2.0"


def normalise(text: str) -> str:
    """The canonical string of a version (``v1.02.0`` is refused, ``v1.2.0`` -> ``1.2.0``)."""
    return str(parse(text))


def is_version(text: str) -> bool:
    """True when ``text`` parses as a version (used to tell versions from aliases)."""
    try:
        parse(text)
    except InvalidVersion:
        return False
    return True


def check_part(part: str) -> str:
    if part not in BUMP_PARTS:
        raise InvalidVersion(f"invalid bump {part!r}: expected one of {', '.join(BUMP_PARTS)}")
    return part


def bump(version: str | SemVer, part: str) -> str:
    """``bump("1.2.3", "minor") == "1.3.0"``; lower parts reset to zero."""
    current = version if isinstance(version, SemVer) else parse(version)
    check_part(part)
    if part == "major":
        result = SemVer(current.major + 1, 0, 0)
    elif part == "minor":
        result = SemVer(current.major, current.minor + 1, 0)
    else:
        result = SemVer(current.major, current.minor, current.patch + 1)
    # re-parse so an overflowing part (10 digits) is refused like any other bad version
    return normalise(str(result))


def sort_key(text: str) -> SemVer:
    return parse(text)


def next_version(existing: Iterable[str], part: str) -> str:
    """``part`` bumped over the highest of ``existing``; 1.0.0 when there is none."""
    check_part(part)
    versions = [parse(v) for v in existing]
    return "1.0.0" if not versions else bump(max(versions), part)


def predecessor(existing: Iterable[str], version: str) -> str | None:
    """The highest of ``existing`` below ``version`` (the version it follows), else None."""
    target = parse(version)
    below = [v for v in (parse(e) for e in existing) if v < target]
    return str(max(below)) if below else None


def part_between(previous: str, version: str) -> str:
    """Which part ``version`` raises over ``previous`` (``1.2.3 -> 1.3.0`` is "minor")."""
    old, new = parse(previous), parse(version)
    if new <= old:
        raise InvalidVersion(f"version {new} does not follow {old}")
    if new.major != old.major:
        return "major"
    return "minor" if new.minor != old.minor else "patch"
