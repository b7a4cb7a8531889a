"""(b) The server a user would write: the same route calling ``session.run`` inline.

It decodes the Open Inference Protocol body, runs the ONNX model on the event loop
thread (fine for a fast model on one worker: no thread hop), and answers the label and
the probabilities as JSON. Tuned as a careful user would: one intra-op thread (the ORT
default thread pool fights the event loop for the cores), orjson with native numpy output.
"""

from __future__ import annotations

import os

import numpy as np
import onnxruntime as ort
import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route


def _session(path: str) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])


SESSION = _session(os.environ["BENCH_MODEL_PATH"])
INPUT_NAME = SESSION.get_inputs()[0].name
OUTPUT_NAMES = [output.name for output in SESSION.get_outputs()]
DUMP_OPTIONS = orjson.OPT_SERIALIZE_NUMPY
JSON = "application/json"


async def infer(request: Request) -> Response:
    try:
        tensor = orjson.loads(await request.body())["inputs"][0]
        features = np.asarray(tensor["data"], dtype=np.float32).reshape(tensor["shape"])
    except (orjson.JSONDecodeError, KeyError, IndexError, TypeError, ValueError) as exc:
        return Response(orjson.dumps({"error": f"bad request: {exc}"}), 400, media_type=JSON)
    label, probabilities = SESSION.run(OUTPUT_NAMES, {INPUT_NAME: features})
    body = orjson.dumps({"label": label, "probabilities": probabilities}, option=DUMP_OPTIONS)
    return Response(body, media_type=JSON)


async def ready(request: Request) -> Response:
    return Response(status_code=200)


app = Starlette(
    routes=[
        Route("/v2/models/{name}/infer", infer, methods=["POST"]),
        Route("/v2/health/ready", ready, methods=["GET"]),
    ]
)
