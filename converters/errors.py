"""Converter exceptions; every message is one line meant for the user (never a traceback).

ConversionError          the estimator cannot be registered as it is
 +-- DataError           sample file unreadable, unknown format, missing label column
 +-- EstimatorError      estimator file unreadable, not scikit-learn, not fitted
 +-- ParityError         ONNX does not reproduce scikit-learn (``.parity`` holds the numbers)
 +-- ExtraMissing        an XGBoost / LightGBM model without the ``frameworks`` extra
"""

from __future__ import annotations

from typing import Any


class ConversionError(Exception):
    """Base of every converter failure."""


class DataError(ConversionError):
    pass


class EstimatorError(ConversionError):
    pass


class ParityError(ConversionError):
    def __init__(self, message: str, parity: dict[str, Any]) -> None:
        super().__init__(message)
        self.parity = parity


class ExtraMissing(ConversionError):
    pass
