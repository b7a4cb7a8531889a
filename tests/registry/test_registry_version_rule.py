"""registry.version_rule: the number a new version gets, and when a schema change refuses it."""

from __future__ import annotations

from typing import Any

import pytest

from registry.errors import BreakingChange, InvalidVersion, VersionExists
from registry.version_rule import choose_version


def _schema(*columns: str, classes: list[int] | None = None) -> dict[str, Any]:
    names = list(columns)
    return {
        "task": "classification",
        "features": [{"name": n, "dtype": "float32", "kind": "numerical"} for n in names],
        "inputs": [{"name": "input", "datatype": "FP32", "shape": [-1, 2], "features": names}],
        "classes": classes or [0, 1],
    }


BASE = _schema("a", "b")
WIDER = _schema("a", "b", "x")


def test_the_first_version_has_no_predecessor() -> None:
    choice = choose_version("m", {}, BASE, bump="auto")
    assert (choice.version, choice.previous, choice.part, choice.changes) == (
        "1.0.0",
        None,
        None,
        [],
    )
    assert choose_version("m", {}, BASE, version="v0.3.0").version == "0.3.0"


@pytest.mark.parametrize(("bump", "expected"), [("minor", "1.3.0"), ("patch", "1.2.1")])
def test_same_schema_any_part(bump: str, expected: str) -> None:
    choice = choose_version("m", {"1.0.0": WIDER, "1.2.0": BASE}, BASE, bump=bump)
    assert (choice.version, choice.previous, choice.part) == (expected, "1.2.0", bump)
    assert choice.changes == [] and choice.audit_reason("") == ""


def test_auto_picks_minor_without_changes_and_major_with_them() -> None:
    same = choose_version("m", {"1.2.0": BASE}, BASE, bump="auto")
    assert (same.version, same.part, same.auto) == ("1.3.0", "minor", True)
    changed = choose_version("m", {"1.2.0": BASE}, WIDER, bump="auto")
    assert (changed.version, changed.part, changed.changes) == (
        "2.0.0",
        "major",
        ["added column x"],
    )
    assert changed.audit_reason("") == "major version: schema changes from 1.2.0: added column x"
    assert changed.to_dict() == {
        "previous": "1.2.0",
        "part": "major",
        "schema_changes": ["added column x"],
        "auto": True,
        "forced": False,
    }


@pytest.mark.parametrize(
    ("kwargs", "part"),
    [({"bump": "minor"}, "minor"), ({"bump": "patch"}, "patch"), ({"version": "1.2.7"}, "patch")],
)
def test_minor_or_patch_over_a_change_is_refused(kwargs: dict[str, str], part: str) -> None:
    with pytest.raises(BreakingChange) as info:
        choose_version("m", {"1.2.0": BASE}, WIDER, **kwargs)
    message = str(info.value)
    assert f"is a {part} version after 1.2.0" in message and "added column x" in message
    assert "--force --reason" in message and info.value.changes == ["added column x"]
    assert isinstance(info.value, InvalidVersion)


def test_an_explicit_major_over_a_change_is_fine() -> None:
    choice = choose_version("m", {"1.2.0": BASE}, WIDER, version="3.0.0")
    assert (choice.part, choice.forced, choice.changes) == ("major", False, ["added column x"])


def test_an_explicit_version_is_judged_against_the_version_it_follows() -> None:
    # a 1.x hotfix after 2.0.0 changed the schema: compared with 1.0.0, not with 2.0.0
    existing = {"1.0.0": BASE, "2.0.0": WIDER}
    assert choose_version("m", existing, BASE, version="1.0.1").changes == []
    with pytest.raises(BreakingChange, match="after 2.0.0 but the schema changed"):
        choose_version("m", existing, BASE, version="2.1.0")


def test_forcing_needs_a_reason_and_records_it() -> None:
    with pytest.raises(BreakingChange, match="needs --reason TEXT"):
        choose_version("m", {"1.0.0": BASE}, WIDER, bump="minor", force=True, reason="  ")
    choice = choose_version(
        "m", {"1.0.0": BASE}, WIDER, bump="minor", force=True, reason="clients ignore x"
    )
    assert (choice.version, choice.forced, choice.part) == ("1.1.0", True, "minor")
    assert choice.audit_reason("clients ignore x") == (
        "clients ignore x | forced minor version over schema changes from 1.0.0: added column x"
    )


def test_version_and_bump_errors() -> None:
    with pytest.raises(InvalidVersion, match="exactly one"):
        choose_version("m", {}, BASE)
    with pytest.raises(VersionExists, match="already has version 1.0.0"):
        choose_version("m", {"1.0.0": BASE}, BASE, version="v1.0.0")
    with pytest.raises(InvalidVersion, match="invalid bump"):
        choose_version("m", {"1.0.0": BASE}, BASE, bump="huge")
