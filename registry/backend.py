"""Choose the registry backend from a URL: SQLite in the home folder (default) or PostgreSQL.

``open_store(home, url)``: no URL (or ``sqlite:``) opens the embedded SQLite file in
``home``; a ``postgresql://`` URL opens the PostgreSQL store, which still keeps its verified
artifact cache in ``home``. The PostgreSQL driver is imported only then, so the embedded
default needs nothing beyond the core dependencies.
"""

from __future__ import annotations

import os
from pathlib import Path

from registry.errors import RegistryError
from registry.home import HomePaths
from registry.sqlite.store import SqliteRegistry, open_registry

POSTGRES_SCHEMES = ("postgresql://", "postgres://")


def is_postgres_url(url: str | None) -> bool:
    return bool(url) and str(url).startswith(POSTGRES_SCHEMES)


def is_known_registry_url(url: str) -> bool:
    return url in ("sqlite", "sqlite:") or is_postgres_url(url)


def redact(url: str) -> str:
    """The URL without its password, for logs and messages."""
    head, sep, tail = url.partition("@")
    if not sep or ":" not in head.split("//", 1)[-1]:
        return url
    scheme, _, userinfo = head.partition("//")
    return f"{scheme}//{userinfo.split(':', 1)[0]}:***@{tail}"


def check_registry_url(url: str | None) -> str | None:
    """``url`` if it names a backend this build knows; RegistryError (one line) if not."""
    if not url or url in ("sqlite", "sqlite:") or is_postgres_url(url):
        return url or None
    scheme = url.split(":", 1)[0] if ":" in url else url
    raise RegistryError(
        f"unsupported registry URL scheme {scheme!r}: use postgresql://user@host:port/db, "
        "or leave it unset for the SQLite file in the home folder"
    )


async def open_store(
    home: HomePaths | str | os.PathLike[str], url: str | None = None, *, connect: bool = True
) -> SqliteRegistry:
    """The registry ``url`` names (default: SQLite in ``home``), migrated on first use.
    ``connect=False`` (PostgreSQL only): open without waiting for the database server."""
    url = check_registry_url(url)
    if url is None or not is_postgres_url(url):
        return await open_registry(home)
    try:
        from registry.postgres.store import open_postgres
    except ImportError as exc:
        raise RegistryError(
            f"a postgresql:// registry needs the PostgreSQL driver: pip install "
            f"'modelgate[postgres]' ({exc})"
        ) from exc
    if not isinstance(home, HomePaths):
        home = HomePaths(Path(home).expanduser().resolve())
    return await open_postgres(url, home, connect=connect)
