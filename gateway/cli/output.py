"""Terminal output for the CLI: tables for people, JSON for machines, one-line errors."""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Iterable, Sequence
from typing import Any, NoReturn

import orjson


class CLIError(Exception):
    """A failure the user caused or can fix: printed as one line, exit status 2."""


def utc_time(seconds: float) -> str:
    """A Unix time as the CLI prints it: ISO 8601 in UTC, to the second."""
    return dt.datetime.fromtimestamp(seconds, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def fail(message: str) -> NoReturn:
    raise CLIError(message)


def print_json(value: Any) -> None:
    sys.stdout.write(
        orjson.dumps(value, option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY).decode()
    )
    sys.stdout.write("\n")


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list | tuple):
        return ",".join(_cell(v) for v in value) or "-"
    return str(value)


def format_table(rows: Iterable[Sequence[Any]], headers: Sequence[str]) -> str:
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in cells:
        for i, c in enumerate(row):
            widths[i] = max(widths[i], len(c))
    lines = ["  ".join(h.upper().ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    for row in cells:
        lines.append("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    return "\n".join(lines)


def print_table(rows: Iterable[Sequence[Any]], headers: Sequence[str]) -> None:
    print(format_table(rows, headers))


def print_mapping(pairs: Iterable[tuple[str, Any]]) -> None:
    """Two-column key/value listing (for `show`-style output)."""
    pairs = list(pairs)
    width = max((len(k) for k, _ in pairs), default=0)
    for key, value in pairs:
        print(f"{key.ljust(width)}  {_cell(value)}")
