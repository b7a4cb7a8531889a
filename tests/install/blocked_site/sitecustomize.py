"""Makes the optional packages unimportable, as on a machine with only the core dependencies.

Put this folder first on PYTHONPATH: Python imports ``sitecustomize`` at start-up, before any
project code, and this one puts a finder in front of ``sys.meta_path`` that answers every
top-level name in ``MODELGATE_BLOCKED_IMPORTS`` (comma-separated; the default list below
when unset) with ``ModuleNotFoundError``, exactly what a missing package raises.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from importlib.machinery import ModuleSpec
from types import ModuleType

# the extras' packages (convert, test, bench), and those of the planned extras
# (frameworks: xgboost, lightgbm, onnxmltools; mlflow): blocking one that is not installed
# costs nothing, and catches a module-level import of it the day it is
OPTIONAL = (
    "sklearn,skl2onnx,onnx,pandas,scipy,matplotlib,httpx,pyarrow,joblib,"
    "xgboost,lightgbm,onnxmltools,mlflow"
)
BLOCKED = frozenset(
    name.strip()
    for name in os.environ.get("MODELGATE_BLOCKED_IMPORTS", OPTIONAL).split(",")
    if name.strip()
)


class OptionalBlocker:
    """A meta-path finder that refuses the blocked top-level packages."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        if fullname.partition(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {fullname!r} (blocked)", name=fullname)
        return None


sys.meta_path.insert(0, OptionalBlocker())
