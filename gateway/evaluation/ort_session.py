"""Create an onnxruntime session the way the gateway runs them (one intra-op thread)."""

from __future__ import annotations

import onnxruntime as ort

from gateway.evaluation.errors import EvaluationError


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:300]


def make_session(model_bytes: bytes, threads: int = 1) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    try:
        return ort.InferenceSession(model_bytes, options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own pybind exception types
        raise EvaluationError(f"onnxruntime cannot load the artifact: {first_line(exc)}") from None
