"""Print a pip constraints file pinning dependencies to the lower bounds pyproject.toml states.

    python3 scripts/min_constraints.py [--pyproject FILE] [--extra NAME ...]
                                       [--floor NAME==VERSION ...] > constraints.txt

Each requirement of ``[project].dependencies`` (and of the named extras) with a lower bound
becomes ``name==bound``: ``>=X`` and ``~=X`` give X, ``==X`` stays, an upper bound beside
it (``>=0.30,<0.40``) is dropped (the pin satisfies it), and an environment marker is kept.
A requirement without a lower bound cannot be pinned: it is reported on stderr and the
exit status is 1, so that every dependency keeps a tested lowest version.

``--floor`` raises one pin to at least VERSION (the larger of the two is used) and says so
on stderr when it does: for a bound known to be too low whose fix lands separately. Once
pyproject.toml's own bound reaches the floor, the floor changes nothing.
Standard library only (tomllib): it runs before anything is installed.
"""

from __future__ import annotations

import argparse
import re
import sys
import tomllib
from collections.abc import Iterable
from pathlib import Path

# PEP 508 as used in pyproject.toml: name, optional [extras], specifiers, optional ; marker
REQUIREMENT = re.compile(
    r"^\s*(?P<name>[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)\s*"
    r"(?:\[(?P<extras>[^\]]*)\])?\s*"
    r"(?P<specs>[^;]*?)\s*"
    r"(?:;\s*(?P<marker>.+?))?\s*$"
)
SPECIFIER = re.compile(r"^\s*(?P<op>~=|==|>=|<=|!=|<|>|===)\s*(?P<version>[^\s,]+)\s*$")
LOWER = ("==", "===", ">=", "~=")


class ConstraintError(ValueError):
    """A requirement that cannot be pinned to a lowest version."""


def lower_bound(requirement: str) -> tuple[str, str, str | None]:
    """(name, lowest version, marker) of one requirement string."""
    match = REQUIREMENT.match(requirement)
    if match is None:
        raise ConstraintError(f"cannot parse the requirement {requirement!r}")
    specs = [s for s in match["specs"].split(",") if s.strip()]
    bounds: dict[str, str] = {}
    for spec in specs:
        parsed = SPECIFIER.match(spec)
        if parsed is None:
            raise ConstraintError(f"{requirement!r}: cannot parse the specifier {spec.strip()!r}")
        bounds.setdefault(parsed["op"], parsed["version"])
    for op in LOWER:
        if op in bounds:
            return match["name"], bounds[op].removesuffix(".*"), match["marker"]
    raise ConstraintError(f"{requirement!r} has no lower bound (>=, ~= or ==)")


def is_self_reference(requirement: str, project: str) -> bool:
    match = REQUIREMENT.match(requirement)
    return match is not None and normalize(match["name"]) == normalize(project)


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def release(version: str) -> tuple[int, ...]:
    """The numeric release segment of a version, for ordering (``1.26rc1`` -> (1, 26))."""
    parts = []
    for part in version.split("."):
        digits = re.match(r"\d+", part)
        if digits is None:
            break
        parts.append(int(digits.group()))
        if digits.end() != len(part):
            break
    return tuple(parts)


def parse_floor(text: str) -> tuple[str, str]:
    name, sep, version = text.partition("==")
    if not sep or not name.strip() or not release(version.strip()):
        raise argparse.ArgumentTypeError(f"expected NAME==VERSION, got {text!r}")
    return normalize(name.strip()), version.strip()


def constraint_lines(
    pyproject: dict, extras: Iterable[str] = (), floors: dict[str, str] | None = None
) -> list[str]:
    """One ``name==version[; marker]`` line per dependency of the core and ``extras``."""
    floors = floors or {}
    project = pyproject["project"]
    optional = project.get("optional-dependencies", {})
    requirements = list(project.get("dependencies", []))
    for extra in extras:
        if extra not in optional:
            raise ConstraintError(f"no extra named {extra!r} in [project.optional-dependencies]")
        requirements += [r for r in optional[extra] if not is_self_reference(r, project["name"])]
    lines: dict[str, str] = {}
    for requirement in requirements:
        name, version, marker = lower_bound(requirement)
        floor = floors.get(normalize(name))
        if floor is not None and release(floor) > release(version):
            print(
                f"min_constraints: {name}: floor {floor} above the bound {version}", file=sys.stderr
            )
            version = floor
        line = f"{name}=={version}" + (f"; {marker}" if marker else "")
        lines.setdefault(normalize(name), line)
    return list(lines.values())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = Path(__file__).resolve().parents[1] / "pyproject.toml"
    parser.add_argument("--pyproject", type=Path, default=default)
    parser.add_argument("--extra", action="append", default=[], help="also pin this extra")
    parser.add_argument(
        "--floor",
        type=parse_floor,
        action="append",
        default=[],
        metavar="NAME==VERSION",
        help="pin NAME to at least VERSION",
    )
    args = parser.parse_args(argv)
    try:
        pyproject = tomllib.loads(args.pyproject.read_text(encoding="utf-8"))
        lines = constraint_lines(pyproject, args.extra, dict(args.floor))
    except (OSError, tomllib.TOMLDecodeError, KeyError, ConstraintError) as exc:
        print(f"min_constraints: error: {exc}", file=sys.stderr)
        return 1
    print(f"# lowest versions allowed by {args.pyproject.name} (scripts/min_constraints.py)")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
