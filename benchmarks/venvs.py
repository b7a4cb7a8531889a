"""A peer server's or library's own virtual environment, built once and reused.

``python -m venv`` plus pip into a folder under ``benchmarks/.work`` (git-ignored), reused
while its marker file lists the same Python and pins, so a baseline's dependencies never
enter modelgate's environment. A failed install leaves no marker, so the next call starts
again from scratch. Used by MLServer's (``benchmarks/mlserver/venv.py``) and the drift
peers' (``benchmarks/drift_quality/venv.py``) environments.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

MARKER_NAME = "modelgate-pins.json"
INSTALL_TIMEOUT_S = 1800.0


def venv_python(path: Path) -> Path:
    return path / "bin" / "python"


def _marker(pins: Sequence[str]) -> dict[str, object]:
    return {"python": sys.version.split()[0], "requirements": list(pins)}


def is_current(path: Path, pins: Sequence[str], executable: Path) -> bool:
    """Whether ``path`` holds a finished environment with exactly these pins."""
    marker = path / MARKER_NAME
    if not marker.is_file() or not executable.exists():
        return False
    try:
        return bool(json.loads(marker.read_text()) == _marker(pins))
    except ValueError:
        return False


def build(path: Path, pins: Sequence[str], error: type[Exception]) -> None:
    """Create the environment at ``path`` from scratch and install ``pins``; raises
    ``error`` with pip's last lines (warnings left out) when a step fails."""
    if path.exists():
        shutil.rmtree(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _run([sys.executable, "-m", "venv", str(path)], f"`python -m venv {path}`", error)
    python = str(venv_python(path))
    _run([python, "-m", "pip", "install", "-q", "--upgrade", "pip"], "upgrading pip", error)
    _run([python, "-m", "pip", "install", "-q", *pins], f"`pip install {' '.join(pins)}`", error)
    (path / MARKER_NAME).write_text(json.dumps(_marker(pins), indent=1))


def _run(cmd: list[str], what: str, error: type[Exception]) -> None:
    try:
        done = subprocess.run(
            cmd, capture_output=True, text=True, timeout=INSTALL_TIMEOUT_S, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise error(f"{what} did not finish in {INSTALL_TIMEOUT_S:.0f} s") from exc
    if done.returncode != 0:
        lines = [
            line
            for line in (done.stderr or done.stdout).strip().splitlines()
            if not line.startswith("WARNING:")
        ]
        raise error(f"{what} failed (exit {done.returncode}): {' | '.join(lines[-3:])}")
