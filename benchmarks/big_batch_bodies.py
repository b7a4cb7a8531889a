"""Request bodies of the big-batch benchmark and the parsing of its binary replies.

Binary bodies follow the OIP binary tensor extension (docs/protocol.md); ``write_bodies``
frames them for ``wrk_binary.lua``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import orjson

from benchmarks.models import request_rows

ROWS = 1000  # rows per request
ARRAYS = 4  # distinct 1,000-row bodies the clients rotate through
NUMPY_DTYPES = {"FP32": "<f4", "INT64": "<i8", "FP64": "<f8", "INT32": "<i4"}


def request_arrays() -> list[np.ndarray]:
    """The rows clients send: ``ARRAYS`` seeded draws of 1,000 held-out rows, float32."""
    return [np.ascontiguousarray(request_rows(ROWS, seed), np.float32) for seed in range(ARRAYS)]


def binary_body(rows: np.ndarray, align: int = 8) -> tuple[bytes, int]:
    """(body, JSON header length): rows as one FP32 binary input, outputs asked in binary.
    The header is padded with spaces to a multiple of ``align`` bytes, so the tensor is
    aligned and the gateway decodes it without a copy (``align=1``: no padding)."""
    header = orjson.dumps(
        {
            "inputs": [
                {
                    "name": "input",
                    "shape": list(rows.shape),
                    "datatype": "FP32",
                    "parameters": {"binary_data_size": rows.nbytes},
                }
            ],
            "parameters": {"binary_data_output": True},
        }
    )
    header += b" " * (-len(header) % align)
    return header + rows.astype("<f4").tobytes(), len(header)


def json_body(rows: np.ndarray) -> bytes:
    """The same rows as plain OIP JSON (flat data, as tritonclient sends it)."""
    doc = {"inputs": [{"name": "input", "shape": list(rows.shape), "datatype": "FP32"}]}
    doc["inputs"][0]["data"] = rows.ravel()
    return orjson.dumps(doc, option=orjson.OPT_SERIALIZE_NUMPY)


def write_bodies(path: Path, bodies: list[tuple[bytes, int]]) -> Path:
    """The file wrk_binary.lua reads: ``"<header length> <body length>\\n" + body`` each."""
    with path.open("wb") as out:
        for body, header_length in bodies:
            out.write(b"%d %d\n" % (header_length, len(body)))
            out.write(body)
    return path


def parse_binary_reply(data: bytes, header_length: int) -> dict[str, np.ndarray]:
    """Outputs of a binary OIP response (numeric tensors only)."""
    doc = orjson.loads(data[:header_length])
    outputs, offset = {}, header_length
    for out in doc["outputs"]:
        size = out["parameters"]["binary_data_size"]
        dtype = NUMPY_DTYPES[out["datatype"]]
        chunk = np.frombuffer(
            data, dtype=dtype, count=size // np.dtype(dtype).itemsize, offset=offset
        )
        outputs[out["name"]] = chunk.reshape(out["shape"])
        offset += size
    if offset != len(data):
        raise ValueError(f"{len(data) - offset} bytes after the last output")
    return outputs
