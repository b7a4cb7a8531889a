from __future__ import annotations

import pytest

from registry import semver
from registry.errors import InvalidVersion


@pytest.mark.parametrize(
    ("text", "expected"),
    [("0.0.0", (0, 0, 0)), ("1.2.3", (1, 2, 3)), ("v1.10.0", (1, 10, 0)), ("V2.0.1", (2, 0, 1))],
)
def test_parse_accepts_and_normalises_leading_v(text: str, expected: tuple[int, int, int]) -> None:
    assert semver.parse(text) == expected
    assert semver.normalise(text) == "{}.{}.{}".format(*expected)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("1.2", "expected MAJOR.MINOR.PATCH"),
        ("1.2.3.4", "expected MAJOR.MINOR.PATCH"),
        ("", "expected MAJOR.MINOR.PATCH"),
        ("a.b.c", "expected MAJOR.MINOR.PATCH"),
        ("-1.0.0", "expected MAJOR.MINOR.PATCH"),
        ("vv1.0.0", "expected MAJOR.MINOR.PATCH"),
        ("01.0.0", "leading zeros"),
        ("1.00.0", "leading zeros"),
        ("1.0.0-rc1", "pre-release"),
        ("1.0.0+build5", "pre-release"),
        ("1234567890.0.0", "at most 9 digits"),
        ("1 .0.0", "expected MAJOR.MINOR.PATCH"),
    ],
)
def test_invalid_versions_say_why(text: str, fragment: str) -> None:
    with pytest.raises(InvalidVersion, match="invalid version") as info:
        semver.parse(text)
    assert fragment in str(info.value)


def test_non_string_is_refused() -> None:
    with pytest.raises(InvalidVersion, match="must be a string"):
        semver.parse(100)  # type: ignore[arg-type]


def test_ordering_is_numeric() -> None:
    texts = ["1.10.0", "1.9.0", "1.9.10", "1.9.2", "0.99.99", "10.0.0", "2.0.0"]
    ordered = sorted(texts, key=semver.sort_key)
    assert ordered == ["0.99.99", "1.9.0", "1.9.2", "1.9.10", "1.10.0", "2.0.0", "10.0.0"]
    assert semver.parse("1.10.0") > semver.parse("1.9.0")


@pytest.mark.parametrize(
    ("version", "part", "expected"),
    [
        ("1.2.3", "major", "2.0.0"),
        ("1.2.3", "minor", "1.3.0"),
        ("1.2.3", "patch", "1.2.4"),
        ("v0.9.9", "minor", "0.10.0"),
    ],
)
def test_bump(version: str, part: str, expected: str) -> None:
    assert semver.bump(version, part) == expected


def test_bump_refuses_unknown_part_and_overflow() -> None:
    with pytest.raises(InvalidVersion, match="invalid bump 'micro'"):
        semver.bump("1.0.0", "micro")
    with pytest.raises(InvalidVersion, match="at most 9 digits"):
        semver.bump("999999999.0.0", "major")


def test_is_version() -> None:
    assert semver.is_version("v1.0.0")
    assert not semver.is_version("champion")


def test_next_version() -> None:
    assert semver.next_version([], "minor") == "1.0.0"
    assert semver.next_version(["1.9.0", "1.10.0", "0.5.0"], "minor") == "1.11.0"
    assert semver.next_version(["1.2.3"], "major") == "2.0.0"
    with pytest.raises(InvalidVersion, match="invalid bump 'auto'"):
        semver.next_version(["1.0.0"], "auto")


def test_predecessor_is_the_highest_version_below() -> None:
    existing = ["1.0.0", "1.2.0", "2.0.0", "1.10.0"]
    assert semver.predecessor(existing, "1.3.0") == "1.2.0"
    assert semver.predecessor(existing, "1.11.0") == "1.10.0"
    assert semver.predecessor(existing, "3.0.0") == "2.0.0"
    assert semver.predecessor(existing, "0.9.0") is None
    assert semver.predecessor([], "1.0.0") is None


@pytest.mark.parametrize(
    ("previous", "version", "part"),
    [
        ("1.2.3", "2.0.0", "major"),
        ("1.2.3", "1.3.0", "minor"),
        ("1.2.3", "1.2.4", "patch"),
        ("1.2.3", "1.2.9", "patch"),
        ("0.9.0", "1.0.0", "major"),
    ],
)
def test_part_between(previous: str, version: str, part: str) -> None:
    assert semver.part_between(previous, version) == part


def test_part_between_needs_a_later_version() -> None:
    with pytest.raises(InvalidVersion, match="does not follow"):
        semver.part_between("1.2.0", "1.2.0")
