"""The hot path over ASGI: ``POST /v2/models/{name}[/versions/{v}]/infer`` and
``POST /predict/{name}[/versions/{v}]``.

A raw ASGI class (Starlette treats a class instance endpoint as an ASGI app). Per request:
one pass over the raw headers, read the body (413 before reading when Content-Length is
too big), then the ``Exchange`` steps: admit (route, decode), await the version's batcher,
answer (record, mirror, encode) or refuse. ``modelgate serve`` answers most requests on
these URLs without ASGI (``http_fastpath``), through the same ``Exchange``; this endpoint
serves every other way in (in-process clients, pipelined or chunked requests,
``Expect: 100-continue``, a root path).
"""

from __future__ import annotations

from gateway.dataplane.exchange import Exchange, InferenceRoute
from gateway.dataplane.http.asgi import (
    CONTENT_LENGTH,
    ClientGone,
    Receive,
    Scope,
    Send,
    read_body,
    respond,
    scan_headers,
)


class InferenceEndpoint(InferenceRoute):
    """One inference route as an ASGI app (see ``InferenceRoute`` for its settings)."""

    __slots__ = ()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        exchange = Exchange(self, scan_headers(scope["headers"]), scope["path_params"])
        try:
            body = await read_body(receive, self.max_body, exchange.found[CONTENT_LENGTH])
            batcher = exchange.admit(body).batcher
            request = exchange.request
            outputs = await batcher.infer(request.feeds, request.n_rows)
            reply = exchange.answer(outputs)
        except ClientGone:
            return
        except Exception as exc:
            reply = exchange.refuse(exc)
        await respond(send, *reply)
