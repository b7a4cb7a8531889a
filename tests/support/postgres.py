"""A real PostgreSQL server on loopback for the tests, started from Debian's binaries.

``PostgresServer.start()`` runs ``initdb`` and ``pg_ctl start`` in a fresh temporary folder
(as the ``postgres`` user when the tests run as root: ``initdb`` refuses root), listening on
127.0.0.1 and a unix socket inside that folder only. ``new_database()`` hands each test its
own empty database. ``stop()``/``start_again()`` let the fault tests take the server away
and bring it back on the same port with the same data. ``find_binaries()`` says why the
server cannot run here, so tests skip with that reason.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

PG_VERSIONS = ("17", "16", "15")
SUPERUSER = "postgres"


def find_binaries() -> tuple[Path | None, str]:
    """The folder with ``initdb``/``pg_ctl``, or None and why not."""
    override = os.environ.get("MODELGATE_TEST_PG_BIN")
    candidates = [Path(override)] if override else []
    candidates += [Path(f"/usr/lib/postgresql/{v}/bin") for v in PG_VERSIONS]
    for folder in candidates:
        if (folder / "initdb").is_file() and (folder / "pg_ctl").is_file():
            if os.geteuid() == 0 and shutil.which("runuser") is None:
                return None, "running as root without runuser: cannot run initdb as postgres"
            return folder, ""
    return None, (
        "PostgreSQL server binaries not found (install Debian's 'postgresql' package; "
        "scripts/test.sh does when it runs as root)"
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PostgresServer:
    def __init__(self, binaries: Path) -> None:
        self.binaries = binaries
        self.root = Path(tempfile.mkdtemp(prefix="modelgate-pg-"))
        self.data = self.root / "data"
        self.port = _free_port()
        self._as_root = os.geteuid() == 0
        self._counter = 0

    def _run(self, *argv: str) -> subprocess.CompletedProcess[str]:
        prefix = ["runuser", "-u", SUPERUSER, "--"] if self._as_root else []
        return subprocess.run(
            [*prefix, *argv], capture_output=True, text=True, check=False, timeout=120
        )

    def _check(self, result: subprocess.CompletedProcess[str], what: str) -> None:
        if result.returncode != 0:
            raise RuntimeError(f"{what} failed: {result.stderr.strip() or result.stdout.strip()}")

    def start(self) -> None:
        if self._as_root:
            shutil.chown(self.root, SUPERUSER, SUPERUSER)
        result = self._run(
            str(self.binaries / "initdb"),
            "-D",
            str(self.data),
            "-U",
            SUPERUSER,
            "--auth=trust",
            "--no-sync",
            "-E",
            "UTF8",
        )
        self._check(result, "initdb")
        self.start_again()

    def start_again(self) -> None:
        # fsync off: test data is thrown away; the socket lives in our folder, not /run
        options = f"-F -p {self.port} -h 127.0.0.1 -k {self.root} -c max_connections=200"
        result = self._run(
            str(self.binaries / "pg_ctl"),
            "-D",
            str(self.data),
            "-o",
            options,
            "-l",
            str(self.root / "server.log"),
            "-w",
            "start",
        )
        self._check(result, "pg_ctl start")

    def stop(self, mode: str = "fast") -> None:
        result = self._run(str(self.binaries / "pg_ctl"), "-D", str(self.data), "-m", mode, "stop")
        self._check(result, "pg_ctl stop")

    def url(self, database: str = SUPERUSER) -> str:
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def new_database(self) -> str:
        """A fresh empty database; its URL."""
        import psycopg

        self._counter += 1
        name = f"t{os.getpid()}_{self._counter}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)


@contextlib.contextmanager
def running_postgres() -> Iterator[PostgresServer]:
    """A PostgreSQL server of its own on loopback (a test may stop and start it), removed
    afterwards; skips with the reason when it cannot run here."""
    if importlib.util.find_spec("psycopg") is None:
        # the install checks run the store tests on the core dependencies alone
        pytest.skip("psycopg is not installed (pip install 'modelgate[postgres]')")
    binaries, why = find_binaries()
    if binaries is None:
        pytest.skip(why)
    server = PostgresServer(binaries)
    try:
        server.start()
    except (OSError, RuntimeError, subprocess.TimeoutExpired) as exc:
        server.close()
        pytest.skip(f"cannot start PostgreSQL here: {exc}")
    try:
        yield server
    finally:
        server.close()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One PostgreSQL server for the whole session."""
    with running_postgres() as server:
        yield server


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> str:
    """A fresh, empty database on the session's server."""
    return postgres_server.new_database()
