"""Run ONNX bytes with onnxruntime on a DataFrame laid out by the input schema (thin)."""

from __future__ import annotations

from typing import Any

import numpy as np
import onnxruntime
import pandas as pd


def _strings(column: pd.Series) -> np.ndarray:
    # ONNX string tensors cannot hold None/NaN: a missing category becomes ""
    values = column.astype(object).where(column.notna(), "")
    return np.asarray([str(v) for v in values], dtype=object)


# numeric input datatype -> what the gateway feeds onnxruntime for it
_NUMBERS = {"FP32": np.float32, "FP64": np.float64}


def feeds(schema: dict[str, Any], frame: pd.DataFrame) -> dict[str, np.ndarray]:
    """The ONNX input tensors for ``frame`` as served: numbers in the input's float type
    (float32, or float64 for an exact graph), object arrays of str."""
    result = {}
    for spec in schema["inputs"]:
        cols = spec["features"]
        if spec["datatype"] == "BYTES":
            result[spec["name"]] = _strings(frame[cols[0]]).reshape(-1, 1)
        else:
            block = frame[cols].to_numpy(dtype=np.float64, na_value=np.nan)
            dtype = _NUMBERS[spec["datatype"]]
            result[spec["name"]] = np.ascontiguousarray(block, dtype=dtype)
    return result


def session(onnx_bytes: bytes) -> onnxruntime.InferenceSession:
    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3
    options.intra_op_num_threads = 1  # offline use; a thread pool only fights other work
    return onnxruntime.InferenceSession(
        onnx_bytes, sess_options=options, providers=["CPUExecutionProvider"]
    )


def run(
    onnx_bytes: bytes | onnxruntime.InferenceSession, schema: dict[str, Any], frame: pd.DataFrame
) -> dict[str, np.ndarray]:
    """Every graph output by name."""
    sess = session(onnx_bytes) if isinstance(onnx_bytes, bytes) else onnx_bytes
    names = [o.name for o in sess.get_outputs()]
    return dict(zip(names, sess.run(names, feeds(schema, frame)), strict=True))
