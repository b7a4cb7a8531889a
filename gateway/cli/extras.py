"""Optional extras: a verb that needs one says which, in one line (exit 2), never a traceback."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from contextlib import contextmanager

from gateway.cli.output import CLIError

CONVERT = "convert"
BENCH = "bench"

# top-level modules the verbs needing an extra import (``converters`` imports all of
# the convert ones at once; pyarrow is only read for parquet files, by pandas)
EXTRA_MODULES: dict[str, tuple[str, ...]] = {
    CONVERT: ("sklearn", "skl2onnx", "onnx", "pandas", "joblib"),
    BENCH: ("sklearn", "skl2onnx", "onnx", "pandas", "joblib", "httpx", "matplotlib"),
}


def missing_extra(what: str, extra: str, detail: str) -> CLIError:
    """The one-line error of ``what`` (e.g. ``modelgate convert``) without ``extra``."""
    return CLIError(
        f"{what} needs the '{extra}' extra ({detail}): pip install 'modelgate[{extra}]' "
        f"(in a source checkout: pip install -e '.[{extra}]')"
    )


@contextmanager
def needs_extra(extra: str, what: str) -> Iterator[None]:
    """Turn an ImportError raised in the block (lazy imports) into ``missing_extra``."""
    try:
        yield
    except ImportError as exc:
        raise missing_extra(what, extra, " ".join(str(exc).split())) from None


def importable(module: str) -> bool:
    """Whether the top-level ``module`` can be found, without importing it."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def require_extra(extra: str, what: str) -> None:
    """``missing_extra`` naming every module of ``extra`` that is not installed."""
    missing = [module for module in EXTRA_MODULES[extra] if not importable(module)]
    if missing:
        raise missing_extra(what, extra, f"not installed: {', '.join(missing)}")
