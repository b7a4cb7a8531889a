"""1,000-row requests in the binary tensor extension, through the real ASGI app and through a
real ``modelgate serve`` on loopback (the HTTP fast path): exact round trips against
onnxruntime in process with modelgate's session options, mixed binary and JSON outputs,
and binary bodies whose declared sizes do not match."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import onnxruntime as ort
import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from gateway.dataplane.runner import session_options
from gateway.monitoring.metrics.prometheus import MetricsRegistry
from registry.sqlite.store import open_registry
from tests.support.asgi_app import running_gateway
from tests.support.gateway_process import running_server

N_ROWS = 1000
ROWS = np.random.default_rng(22).normal(size=(N_ROWS, 4)).astype(np.float32)
DTYPES = {"FP32": "<f4", "INT64": "<i8"}


async def in_process(home: Path, version: str, rows: np.ndarray) -> dict[str, np.ndarray]:
    """The served artifact run by onnxruntime here, with the session options modelgate uses."""
    registry = await open_registry(home)
    try:
        data = await registry.read_artifact("clf", version)
    finally:
        await registry.close()
    session = ort.InferenceSession(data, session_options(1), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(names, {"input": rows}), strict=True))


def binary_request(
    rows: np.ndarray, *, aligned: bool = True, **doc: Any
) -> tuple[bytes, dict[str, str]]:
    """A binary-extension request; ``aligned``: the JSON header is padded with spaces so the
    tensor starts at a multiple of 8 bytes (decoded as a view), else 1 byte past one (one
    copy)."""
    size = doc.pop("size", rows.nbytes)
    header = orjson.dumps(
        {
            "inputs": [
                {
                    "name": "input",
                    "shape": doc.pop("shape", list(rows.shape)),
                    "datatype": "FP32",
                    "parameters": {"binary_data_size": size},
                }
            ],
            **doc,
        }
    )
    header += b" " * (-len(header) % 8 + (0 if aligned else 1))
    headers = {
        "Inference-Header-Content-Length": str(len(header)),
        "Content-Type": "application/octet-stream",
    }
    return header + rows.tobytes(), headers


def parse_reply(response: httpx.Response) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """(JSON outputs by name, binary outputs by name) of a binary-extension response."""
    length = int(response.headers["inference-header-content-length"])
    body = response.content
    doc = orjson.loads(body[:length])
    entries, arrays, offset = {}, {}, length
    for out in doc["outputs"]:
        entries[out["name"]] = out
        size = out.get("parameters", {}).get("binary_data_size")
        if size is not None:
            chunk = np.frombuffer(body[offset : offset + size], dtype=DTYPES[out["datatype"]])
            arrays[out["name"]] = chunk.reshape(out["shape"])
            offset += size
    assert offset == len(body)
    return entries, arrays


def assert_bitwise(got: np.ndarray, want: np.ndarray) -> None:
    assert got.dtype == want.dtype and got.shape == want.shape
    assert got.tobytes() == np.ascontiguousarray(want).tobytes()


@pytest.mark.parametrize("aligned", [True, False], ids=["view", "copy"])
@pytest.mark.parametrize("version", ["1.0.0", "1.1.0"], ids=["logreg", "forest"])
async def test_a_1000_row_binary_request_round_trips_exactly(zoo_home, version, aligned):
    body, headers = binary_request(ROWS, aligned=aligned, parameters={"binary_data_output": True})
    async with running_gateway(zoo_home, "secret") as gw:
        response = await gw.http.post(
            f"/v2/models/clf/versions/{version}/infer", content=body, headers=headers
        )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/octet-stream"
    entries, arrays = parse_reply(response)
    assert set(arrays) == {"label", "probabilities"}
    assert entries["probabilities"]["shape"] == [N_ROWS, 2]
    expected = await in_process(zoo_home, version, ROWS)
    assert_bitwise(arrays["probabilities"], expected["probabilities"])
    assert_bitwise(arrays["label"], expected["label"])


async def test_mixed_binary_and_json_outputs_of_a_1000_row_request(zoo_home) -> None:
    outputs = [
        {"name": "label", "parameters": {"binary_data": False}},
        {"name": "probabilities", "parameters": {"binary_data": True}},
    ]
    body, headers = binary_request(ROWS, outputs=outputs)
    async with running_gateway(zoo_home, "secret") as gw:
        response = await gw.http.post("/v2/models/clf/infer", content=body, headers=headers)
    assert response.status_code == 200, response.text
    entries, arrays = parse_reply(response)
    assert list(entries) == ["label", "probabilities"] and list(arrays) == ["probabilities"]
    expected = await in_process(zoo_home, "1.0.0", ROWS)
    assert entries["label"]["data"] == expected["label"].tolist()
    assert "parameters" not in entries["label"]
    assert_bitwise(arrays["probabilities"], expected["probabilities"])


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"size": ROWS.nbytes + 4}, "runs past the body"),  # declares more than was sent
        # one row fewer declared (shape and size agree): the last row's bytes are left over
        ({"size": ROWS.nbytes - 16, "shape": [N_ROWS - 1, 4]}, "not claimed by any input"),
        ({"shape": [N_ROWS - 1, 4]}, "binary data is"),  # size and shape disagree
        ({"size": -1}, "non-negative integer"),
    ],
    ids=["size-beyond-body", "trailing-bytes", "shape-mismatch", "negative-size"],
)
async def test_declared_sizes_that_do_not_match_the_body_are_400(zoo_home, change, reason):
    body, headers = binary_request(ROWS, **change)
    async with running_gateway(zoo_home, "secret") as gw:
        response = await gw.http.post("/v2/models/clf/infer", content=body, headers=headers)
        # and a header length beyond the body
        headers["Inference-Header-Content-Length"] = str(len(body) + 1)
        beyond = await gw.http.post("/v2/models/clf/infer", content=body, headers=headers)
    assert response.status_code == 400 and reason in response.json()["error"]
    assert beyond.status_code == 400 and "does not fit" in beyond.json()["error"]


@pytest.mark.slow  # starts modelgate serve
def test_the_http_fast_path_round_trips_a_1000_row_binary_request(zoo_template, tmp_path):
    home = Path(shutil.copytree(zoo_template, tmp_path / "home"))
    body, headers = binary_request(ROWS, parameters={"binary_data_output": True})
    with running_server(home, tmp_path / "server.log") as server:
        # several in a row on one connection: bodies arrive in many parser callbacks
        with httpx.Client(base_url=server.url, timeout=30) as client:
            replies = [
                client.post("/v2/models/clf/versions/1.1.0/infer", content=body, headers=headers)
                for _ in range(3)
            ]
    expected = asyncio.run(in_process(home, "1.1.0", ROWS))
    for response in replies:
        assert response.status_code == 200, response.text
        _, arrays = parse_reply(response)
        assert_bitwise(arrays["probabilities"], expected["probabilities"])
        assert_bitwise(arrays["label"], expected["label"])


def sample(text: str, name: str, **labels: str) -> float:
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return s.value
    raise AssertionError(f"no sample {name} {labels}")


async def test_a_1000_row_request_is_monitored_row_by_row(zoo_home) -> None:
    """Monitoring joins the rows of large requests as arrays: one stored prediction per
    row for feedback, one confidence per row, beside a one-row request in the same flush."""
    metrics = MetricsRegistry(multiprocess_dir=None)
    async with running_gateway(zoo_home, "tok", metrics=metrics) as gw:
        single = await gw.http.post(
            "/predict/clf", json={"instances": [ROWS[0].tolist()]}, headers={"x-request-id": "one"}
        )
        body, headers = binary_request(ROWS, id="big", parameters={"binary_data_output": True})
        response = await gw.http.post("/v2/models/clf/infer", content=body, headers=headers)
        assert single.status_code == response.status_code == 200
        _, arrays = parse_reply(response)
        labels = arrays["label"].tolist()
        wrong = [1 - label for label in labels[:10]] + labels[10:]  # 10 rows mislabelled
        items = [
            {"id": "big", "label": wrong},
            {"id": "one", "label": single.json()["predictions"]},
        ]
        answer = await gw.http.post("/v2/models/clf/feedback", json=items)
        assert answer.status_code == 200, answer.text
        assert answer.json()["accepted"] == 2 and answer.json()["labelled_rows"] == N_ROWS + 1
        quality = gw.state.feedback.get("clf").quality("1.0.0")
        assert quality["labelled"] == N_ROWS + 1
        assert quality["accuracy"] == pytest.approx(1 - 10 / (N_ROWS + 1))
        text = (await gw.http.get("/metrics")).text
        recorder = gw.state.monitoring.recorder("clf", "1.0.0")
        assert recorder is not None and recorder.window is not None
        window = recorder.window.snapshot()
    # the drift window holds every row as sent (the big request's feed is a view on its body)
    assert window.recorded_total == N_ROWS + 1 and window.numeric_features == ("a", "b", "c", "d")
    np.testing.assert_array_equal(window.numeric[-N_ROWS:], ROWS.astype(np.float64))
    expected = await in_process(zoo_home, "1.0.0", np.concatenate([ROWS[:1], ROWS]))
    top = expected["probabilities"].max(axis=1).astype(np.float64)
    conf = "modelgate_prediction_confidence"
    assert sample(text, f"{conf}_count", model="clf", version="1.0.0") == N_ROWS + 1
    assert sample(text, f"{conf}_sum", model="clf", version="1.0.0") == pytest.approx(
        float(top.sum()), rel=1e-6
    )
    predicted = "modelgate_predictions_total"
    for cls in (0, 1):
        count = int(np.count_nonzero(expected["label"] == cls))
        assert sample(text, predicted, model="clf", version="1.0.0", **{"class": str(cls)}) == count
