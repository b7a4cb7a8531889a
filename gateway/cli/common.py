"""Options and helpers shared by every CLI verb."""

from __future__ import annotations

import argparse
import getpass
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from registry.backend import check_registry_url, open_store
from registry.home import HomePaths, resolve_home
from registry.sqlite.store import SqliteRegistry


def common_options(parser: argparse.ArgumentParser, *, json_flag: bool = True) -> None:
    """Options every verb takes; call from each module's register()."""
    parser.add_argument("--home", help="registry folder (default: $MODELGATE_HOME or ./.modelgate)")
    parser.add_argument(
        "--registry",
        metavar="URL",
        help="registry database: postgresql://user@host:port/db, shared by several nodes "
        "(default: $MODELGATE_REGISTRY_URL, else the SQLite file in the home folder)",
    )
    if json_flag:
        parser.add_argument("--json", action="store_true", help="machine-readable output")


def home_of(args: argparse.Namespace) -> HomePaths:
    return resolve_home(getattr(args, "home", None))


def registry_url_of(args: argparse.Namespace) -> str | None:
    """``--registry`` wins, then ``MODELGATE_REGISTRY_URL``; None: SQLite in the home folder."""
    url = getattr(args, "registry", None) or os.environ.get("MODELGATE_REGISTRY_URL") or None
    return check_registry_url(url.strip() if url else None)


def actor() -> str:
    """Who is acting, for the audit log: $MODELGATE_ACTOR, else the OS user."""
    try:
        user = getpass.getuser()
    except Exception:  # no passwd entry in some containers
        user = "unknown"
    return os.environ.get("MODELGATE_ACTOR") or f"cli:{user}"


@asynccontextmanager
async def opened_registry(args: argparse.Namespace) -> AsyncIterator[SqliteRegistry]:
    registry = await open_store(home_of(args), registry_url_of(args))
    try:
        yield registry
    finally:
        await registry.close()


def named_number(text: str) -> tuple[str, float]:
    """argparse type of ``NAME=NUMBER`` options (gate tolerances, canary thresholds)."""
    name, sep, value = text.partition("=")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    try:
        return name.strip(), float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{name.strip()}: not a number: {value!r}") from None
