"""scikit-learn -> ONNX with a parity proof, reference distributions and lineage.

Needs the ``convert`` extra (scikit-learn, skl2onnx, onnx, pandas). The gateway never
imports this package at module level; only ``publish`` and ``demo`` touch the registry.
"""

from __future__ import annotations

from converters.build import Prepared, prepare
from converters.config_hash import TrainingConfig
from converters.data import dataset_fingerprint, load_sample, read_table, split_label
from converters.demo import register_demo
from converters.demo_data import write_demo_dataset
from converters.errors import (
    ConversionError,
    DataError,
    EstimatorError,
    ExtraMissing,
    ParityError,
)
from converters.estimator import load_estimator
from converters.lineage import git_commit_of, load_metadata
from converters.publish import publish
from converters.runner import run
from converters.sklearn_onnx import ML_OPSET, TARGET_OPSET, Conversion, convert
from registry.errors import BreakingChange

__all__ = [
    "ML_OPSET",
    "TARGET_OPSET",
    "BreakingChange",
    "Conversion",
    "ConversionError",
    "DataError",
    "EstimatorError",
    "ExtraMissing",
    "ParityError",
    "Prepared",
    "TrainingConfig",
    "convert",
    "dataset_fingerprint",
    "git_commit_of",
    "load_estimator",
    "load_metadata",
    "load_sample",
    "prepare",
    "publish",
    "read_table",
    "register_demo",
    "run",
    "split_label",
    "write_demo_dataset",
]
