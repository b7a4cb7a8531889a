"""MLServer's own virtual environment, so its dependencies never mix with modelgate's.

The environment is built once with ``python -m venv`` and pip, and reused while its marker
file lists the same pinned packages. scikit-learn, numpy, joblib and onnxruntime are pinned
to the versions of the running interpreter, so MLServer loads the very joblib and ONNX files
the harness builds here and runs the same onnxruntime and HTTP parser as the other servers.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

from benchmarks.models import WORK_DIR
from benchmarks.procs import ServerError

DEFAULT_VENV = WORK_DIR / "mlserver-venv"
MARKER_NAME = "modelgate-pins.json"
# uvloop 0.23 kills MLServer 1.7.1's inference workers ("There is no current event loop")
FIXED_PINS = ("mlserver==1.7.1", "mlserver-sklearn==1.7.1", "uvloop==0.21.0")
# taken from our environment so both sides load the same files with the same code; httptools
# too: MLServer requires plain uvicorn, which falls back to the slower h11 parser without it,
# while every other server measured here parses HTTP with httptools
MATCHED = ("scikit-learn", "numpy", "joblib", "onnxruntime", "httptools")
INSTALL_TIMEOUT_S = 1800.0


class MLServerVenvError(ServerError):
    """MLServer's virtual environment could not be created or installed.

    A ServerError, so the harness records it as that scenario's failure and goes on.
    """


def pinned_requirements() -> list[str]:
    """Every requirement installed into the environment, with exact versions."""
    pins = list(FIXED_PINS)
    for name in MATCHED:
        try:
            pins.append(f"{name}=={metadata.version(name)}")
        except metadata.PackageNotFoundError as exc:
            raise MLServerVenvError(
                f"{name} is not installed here; install the benchmark extra first "
                "(pip install -e .[bench])"
            ) from exc
    return pins


def venv_python(path: Path) -> Path:
    return path / "bin" / "python"


def mlserver_executable(path: Path) -> Path:
    return path / "bin" / "mlserver"


def _marker(pins: list[str]) -> dict[str, object]:
    return {"python": sys.version.split()[0], "requirements": pins}


def _is_current(path: Path, pins: list[str]) -> bool:
    marker = path / MARKER_NAME
    if not marker.is_file() or not mlserver_executable(path).exists():
        return False
    try:
        return json.loads(marker.read_text()) == _marker(pins)
    except ValueError:
        return False


def _run(cmd: list[str], what: str) -> None:
    try:
        done = subprocess.run(
            cmd, capture_output=True, text=True, timeout=INSTALL_TIMEOUT_S, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise MLServerVenvError(f"{what} did not finish in {INSTALL_TIMEOUT_S:.0f} s") from exc
    if done.returncode != 0:
        tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-15:])
        raise MLServerVenvError(f"{what} failed (exit {done.returncode}):\n{tail}")


def ensure_mlserver_venv(path: Path = DEFAULT_VENV) -> Path:
    """Create (or reuse) MLServer's virtual environment and return its folder.

    Raises MLServerVenvError with pip's last lines when the install fails; a failed
    install leaves no marker, so the next call starts again from scratch.
    """
    if sys.version_info >= (3, 13):
        raise MLServerVenvError("MLServer 1.7.1 supports Python < 3.13 only")
    pins = pinned_requirements()
    if _is_current(path, pins):
        return path
    if path.exists():
        shutil.rmtree(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _run([sys.executable, "-m", "venv", str(path)], f"`python -m venv {path}`")
    python = str(venv_python(path))
    _run([python, "-m", "pip", "install", "-q", "--upgrade", "pip"], "upgrading pip")
    _run([python, "-m", "pip", "install", "-q", *pins], f"`pip install {' '.join(pins)}`")
    (path / MARKER_NAME).write_text(json.dumps(_marker(pins), indent=1))
    return path


if __name__ == "__main__":
    print(ensure_mlserver_venv())
