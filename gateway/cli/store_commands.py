"""``modelgate registry migrate|backup``: move the registry to PostgreSQL, and back it up.

``migrate --to postgresql://...`` copies the SQLite registry of ``--home`` into an empty
PostgreSQL database (``registry/postgres/copy.py``), then reads both again and compares
every row and every blob; any difference fails with exit status 2. ``backup`` writes a
consistent copy: for PostgreSQL it runs ``pg_dump --format=custom`` (restore with
``pg_restore --dbname URL FILE``; artifacts live in the database, so the dump is complete);
for SQLite it uses SQLite's online backup API and copies the artifact files beside it.
"""

from __future__ import annotations

import argparse
import glob
import shutil
import sqlite3
import subprocess
from pathlib import Path

from gateway.cli.common import common_options, home_of, registry_url_of
from gateway.cli.output import CLIError, print_json
from registry.backend import is_postgres_url, open_store, redact
from registry.sqlite.store import open_registry


def _pg_dump() -> str:
    found = shutil.which("pg_dump") or next(
        iter(sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_dump"), reverse=True)), None
    )
    if found is None:
        raise CLIError("pg_dump not found: install the PostgreSQL client tools (postgresql-client)")
    return found


async def cmd_migrate(args: argparse.Namespace) -> int:
    if not is_postgres_url(args.to):
        raise CLIError("--to must be a postgresql:// URL")
    home = home_of(args)
    if not home.database.is_file():
        raise CLIError(f"no SQLite registry at {home.database}")
    from registry.postgres.copy import copy_registry, verify_copy
    from registry.postgres.store import PostgresRegistry

    source = await open_registry(home)
    try:
        target = await open_store(home, args.to)
        assert isinstance(target, PostgresRegistry)
        try:
            report = await copy_registry(source, target)
            problems = await verify_copy(source, target)
        finally:
            await target.close()
    finally:
        await source.close()
    if problems:
        raise CLIError(f"the copy differs from the source: {'; '.join(problems)}")
    if args.json:
        print_json(
            {
                "to": redact(args.to),
                "rows": report.rows,
                "artifacts": report.artifacts,
                "artifact_bytes": report.artifact_bytes,
                "generation": report.generation,
                "verified": True,
            }
        )
    else:
        rows = ", ".join(f"{n} {t}" for t, n in report.rows.items())
        print(
            f"copied {rows}, {report.artifacts} artifact(s) ({report.artifact_bytes} bytes) "
            f"to {redact(args.to)}; verified: every row and blob matches"
        )
        print(f"serve from it with MODELGATE_REGISTRY_URL={redact(args.to)}")
    return 0


def cmd_backup(args: argparse.Namespace) -> int:
    out = Path(args.out).expanduser()
    if out.exists():
        raise CLIError(f"{out} exists; give a new path")
    url = registry_url_of(args)
    if url is not None and is_postgres_url(url):
        result = subprocess.run(
            [_pg_dump(), "--format=custom", "--no-owner", "--file", str(out), "--dbname", url],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            detail = (result.stderr.strip().splitlines() or ["failed"])[-1]
            raise CLIError(f"pg_dump failed: {detail.replace(url, redact(url))}")
        what = f"pg_dump of {redact(url)}; restore: pg_restore --dbname URL {out}"
    else:
        home = home_of(args)
        if not home.database.is_file():
            raise CLIError(f"no SQLite registry at {home.database}")
        out.mkdir(parents=True)
        with sqlite3.connect(home.database) as src, sqlite3.connect(out / "registry.db") as dst:
            src.backup(dst)  # a consistent snapshot while servers keep writing
        if home.artifacts.is_dir():
            shutil.copytree(home.artifacts, out / "artifacts")
        what = f"SQLite backup of {home.root}; restore: use {out} as MODELGATE_HOME"
    if args.json:
        print_json({"out": str(out), "backup": what})
    else:
        print(f"wrote {out} ({what})")
    return 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    group = subparsers.add_parser("registry", help="migrate the registry to PostgreSQL, back it up")
    verbs = group.add_subparsers(dest="registry_command", metavar="VERB", required=True)

    p = verbs.add_parser("migrate", help="copy the SQLite registry into PostgreSQL and verify it")
    p.add_argument("--to", required=True, metavar="URL", help="postgresql://user@host:port/db")
    common_options(p)
    p.set_defaults(handler=cmd_migrate)

    p = verbs.add_parser("backup", help="a consistent copy (pg_dump for PostgreSQL)")
    p.add_argument("--out", required=True, metavar="PATH", help="file (PostgreSQL) or folder")
    common_options(p)
    p.set_defaults(handler=cmd_backup)
