"""Pre-encoded request bodies: the same bytes go to every server in a scenario."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import orjson


def oip_body(row: np.ndarray, input_name: str = "input") -> bytes:
    """One Open Inference Protocol V2 request for a single row of FP32 features."""
    values = [round(float(v), 6) for v in row]
    tensor = {"name": input_name, "shape": [1, len(values)], "datatype": "FP32", "data": values}
    return orjson.dumps({"inputs": [tensor]})


def write_bodies(path: Path, rows: np.ndarray) -> list[bytes]:
    """Write one body per line (the format wrk_post.lua reads) and return them."""
    bodies = [oip_body(row) for row in rows]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\n".join(bodies) + b"\n")
    return bodies
