"""Which objects come from XGBoost or LightGBM, told by module name without importing them,
and the one-line error when the ``frameworks`` extra is missing."""

from __future__ import annotations

from typing import Any

from converters.errors import ExtraMissing

EXTRA = "frameworks"
LIBRARIES = ("xgboost", "lightgbm")


def library_of(obj: Any) -> str | None:
    """ "xgboost" / "lightgbm" when ``obj`` is an object of those libraries, else None."""
    root = (type(obj).__module__ or "").split(".", 1)[0]
    return root if root in LIBRARIES else None


def missing_extra(what: str, modules: list[str]) -> ExtraMissing:
    return ExtraMissing(
        f"{what} needs the '{EXTRA}' extra (not installed: {', '.join(modules)}): "
        f"pip install 'modelgate[{EXTRA}]'"
    )
