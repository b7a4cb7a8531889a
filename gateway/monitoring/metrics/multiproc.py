"""Multiprocess mode (``modelgate serve --workers N``): the shared metrics directory.

prometheus_client decides how metric values are stored when it is first imported: with
``PROMETHEUS_MULTIPROC_DIR`` set, every value lives in a per-process mmap file
``<kind>_<pid>.db`` in that directory and ``MultiProcessCollector`` sums them at scrape
time. The serve command must therefore, in the parent, before spawning any worker:

    path = prepare_multiprocess_dir(some_dir)      # created, emptied of old *.db files
    env["PROMETHEUS_MULTIPROC_DIR"] = str(path)     # inherited by the spawned workers

Counter and histogram files of a dead worker stay (its counts remain part of the totals);
``mark_process_dead(pid)`` deletes its ``live*`` gauge files so its gauges stop counting.
uvicorn gives no hook when it replaces a worker, so each worker also sweeps the files of
pids that no longer exist (``sweep_dead_processes``), at start and then periodically.
"""

from __future__ import annotations

import glob
import os
import re
from collections.abc import Mapping
from pathlib import Path

from prometheus_client import multiprocess, values

ENV_VAR = "PROMETHEUS_MULTIPROC_DIR"
_LIVE_GAUGE_FILE = re.compile(r"^gauge_live[a-z]+_(\d+)\.db$")


def multiprocess_dir(environ: Mapping[str, str] | None = None) -> str | None:
    """The multiprocess directory from ``PROMETHEUS_MULTIPROC_DIR``, or None."""
    env = os.environ if environ is None else environ
    return env.get(ENV_VAR) or None


def prepare_multiprocess_dir(path: str | os.PathLike[str]) -> Path:
    """Create ``path`` (parents too) or delete the ``*.db`` files a previous run left there.

    Only prometheus_client's own ``*.db`` files are removed; anything else is left alone.
    Raises ``ValueError`` when ``path`` exists and is not a directory.
    """
    directory = Path(path)
    if directory.exists() and not directory.is_dir():
        raise ValueError(f"metrics directory {directory} exists and is not a directory")
    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.glob("*.db"):
        stale.unlink(missing_ok=True)
    return directory


def check_value_class(path: str | None) -> None:
    """Refuse a process whose prometheus_client storage mode does not match ``path``.

    Importing prometheus_client before ``PROMETHEUS_MULTIPROC_DIR`` is set (or the reverse)
    would silently keep each worker's metrics to itself, or write files nobody reads.
    """
    mmaped = bool(getattr(values.ValueClass, "_multiprocess", False))
    if path is not None and not mmaped:
        raise RuntimeError(
            f"{ENV_VAR} is set but prometheus_client was imported before it was: set it "
            "before the worker process imports anything"
        )
    if path is None and mmaped:
        raise RuntimeError(
            f"prometheus_client runs in multiprocess mode but {ENV_VAR} is not set any more"
        )
    if path is not None and not os.path.isdir(path):
        raise RuntimeError(f"{ENV_VAR}={path} is not a directory (prepare_multiprocess_dir)")


def mark_process_dead(pid: int, path: str | os.PathLike[str] | None = None) -> None:
    """A worker exited: drop its ``live*`` gauge files (call from the process supervisor)."""
    directory = os.fspath(path) if path is not None else multiprocess_dir()
    if directory is None:
        raise ValueError(f"no multiprocess directory: pass path or set {ENV_VAR}")
    multiprocess.mark_process_dead(pid, directory)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def sweep_dead_processes(path: str | os.PathLike[str]) -> list[int]:
    """``mark_process_dead`` for every pid with ``live*`` gauge files that no longer runs."""
    directory = os.fspath(path)
    dead: set[int] = set()
    for name in glob.glob(os.path.join(glob.escape(directory), "gauge_live*.db")):
        match = _LIVE_GAUGE_FILE.match(os.path.basename(name))
        if match and not _alive(int(match.group(1))):
            dead.add(int(match.group(1)))
    for pid in sorted(dead):
        multiprocess.mark_process_dead(pid, directory)
    return sorted(dead)
