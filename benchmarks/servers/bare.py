"""(a) The bare HTTP limit: a minimal Starlette route that parses the body and answers a constant.

Nothing but the HTTP stack and JSON parsing, so it bounds what any model server on this
stack can reach.
"""

from __future__ import annotations

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

CONSTANT = orjson.dumps({"label": [1], "probabilities": [[0.25, 0.75]]})


async def infer(request: Request) -> Response:
    try:
        orjson.loads(await request.body())
    except orjson.JSONDecodeError:
        return Response(b'{"error":"invalid JSON"}', 400, media_type="application/json")
    return Response(CONSTANT, media_type="application/json")


async def ready(request: Request) -> Response:
    return Response(status_code=200)


app = Starlette(
    routes=[
        Route("/v2/models/{name}/infer", infer, methods=["POST"]),
        Route("/v2/health/ready", ready, methods=["GET"]),
    ]
)
