"""The peers' own virtual environment (Evidently and NannyML), built once and reused.

As for MLServer (``benchmarks/mlserver/venv.py``): ``python -m venv`` plus pip into
``benchmarks/.work/drift-quality-venv`` (git-ignored), reused while its marker file lists
the same pins, so neither library nor their dependencies ever enter modelgate's environment.
pandas is held below 3: evidently 0.7.23 imports ``pandas.core.dtypes.common
.infer_dtype_from_object``, which pandas 3 removed (pip would otherwise pick pandas 3).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from benchmarks.models import WORK_DIR

DEFAULT_VENV = WORK_DIR / "drift-quality-venv"
MARKER_NAME = "modelgate-pins.json"
PINS = ("evidently==0.7.23", "nannyml==0.13.1", "pandas==2.3.3")
INSTALL_TIMEOUT_S = 1800.0


class PeerVenvError(RuntimeError):
    """The peers' environment could not be built; the message ends with pip's last line."""


def venv_python(path: Path = DEFAULT_VENV) -> Path:
    return path / "bin" / "python"


def _marker() -> dict[str, object]:
    return {"python": sys.version.split()[0], "requirements": list(PINS)}


def _is_current(path: Path) -> bool:
    marker = path / MARKER_NAME
    if not marker.is_file() or not venv_python(path).exists():
        return False
    try:
        return bool(json.loads(marker.read_text()) == _marker())
    except ValueError:
        return False


def _run(cmd: list[str], what: str) -> None:
    try:
        done = subprocess.run(
            cmd, capture_output=True, text=True, timeout=INSTALL_TIMEOUT_S, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise PeerVenvError(f"{what} did not finish in {INSTALL_TIMEOUT_S:.0f} s") from exc
    if done.returncode != 0:
        lines = [
            line
            for line in (done.stderr or done.stdout).strip().splitlines()
            if not line.startswith("WARNING:")
        ]
        raise PeerVenvError(f"{what} failed (exit {done.returncode}): {' | '.join(lines[-3:])}")


def ensure_peer_venv(path: Path = DEFAULT_VENV) -> Path:
    """Create (or reuse) the environment and return its python; a failed install leaves
    no marker, so the next call starts again from scratch."""
    if _is_current(path):
        return venv_python(path)
    if path.exists():
        shutil.rmtree(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _run([sys.executable, "-m", "venv", str(path)], f"`python -m venv {path}`")
    python = str(venv_python(path))
    _run([python, "-m", "pip", "install", "-q", "--upgrade", "pip"], "upgrading pip")
    _run([python, "-m", "pip", "install", "-q", *PINS], f"`pip install {' '.join(PINS)}`")
    (path / MARKER_NAME).write_text(json.dumps(_marker(), indent=1))
    return venv_python(path)


if __name__ == "__main__":
    print(ensure_peer_venv())
