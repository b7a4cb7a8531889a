"""The peers' own virtual environment (Evidently and NannyML), built once and reused.

As for MLServer (``benchmarks/mlserver/venv.py``): ``python -m venv`` plus pip into
``benchmarks/.work/drift-quality-venv`` (git-ignored), reused while its marker file lists
the same pins, so neither library nor their dependencies ever enter modelgate's environment.
pandas is held below 3: evidently 0.7.23 imports ``pandas.core.dtypes.common
.infer_dtype_from_object``, which pandas 3 removed (pip would otherwise pick pandas 3).
"""

from __future__ import annotations

from pathlib import Path

from benchmarks.models import WORK_DIR
from benchmarks.venvs import build, is_current, venv_python

DEFAULT_VENV = WORK_DIR / "drift-quality-venv"
PINS = ("evidently==0.7.23", "nannyml==0.13.1", "pandas==2.3.3")


class PeerVenvError(RuntimeError):
    """The peers' environment could not be built; the message ends with pip's last line."""


def ensure_peer_venv(path: Path = DEFAULT_VENV) -> Path:
    """Create (or reuse) the environment and return its python."""
    python = venv_python(path)
    if not is_current(path, PINS, python):
        build(path, PINS, PeerVenvError)
    return python


if __name__ == "__main__":
    print(ensure_peer_venv())
