"""MLServer's own virtual environment, so its dependencies never mix with modelgate's.

The environment is built once and reused while its marker file lists the same pinned
packages (``benchmarks/venvs.py``). scikit-learn, numpy, joblib and onnxruntime are pinned
to the versions of the running interpreter, so MLServer loads the very joblib and ONNX files
the harness builds here and runs the same onnxruntime and HTTP parser as the other servers.
"""

from __future__ import annotations

import sys
from importlib import metadata
from pathlib import Path

from benchmarks.models import WORK_DIR
from benchmarks.procs import ServerError
from benchmarks.venvs import build, is_current

DEFAULT_VENV = WORK_DIR / "mlserver-venv"
# uvloop 0.23 kills MLServer 1.7.1's inference workers ("There is no current event loop")
FIXED_PINS = ("mlserver==1.7.1", "mlserver-sklearn==1.7.1", "uvloop==0.21.0")
# taken from our environment so both sides load the same files with the same code; httptools
# too: MLServer requires plain uvicorn, which falls back to the slower h11 parser without it,
# while every other server measured here parses HTTP with httptools
MATCHED = ("scikit-learn", "numpy", "joblib", "onnxruntime", "httptools")


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


def mlserver_executable(path: Path) -> Path:
    return path / "bin" / "mlserver"


def ensure_mlserver_venv(path: Path = DEFAULT_VENV) -> Path:
    """Create (or reuse) MLServer's virtual environment and return its folder.

    Raises MLServerVenvError with pip's last lines when the install fails; a failed
    install leaves no marker, so the next call starts again from scratch.
    """
    if sys.version_info >= (3, 13):
        raise MLServerVenvError("MLServer 1.7.1 supports Python < 3.13 only")
    pins = pinned_requirements()
    if not is_current(path, pins, mlserver_executable(path)):
        build(path, pins, MLServerVenvError)
    return path


if __name__ == "__main__":
    print(ensure_mlserver_venv())
