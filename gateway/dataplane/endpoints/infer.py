"""The hot path over ASGI: ``POST /v2/models/{name}[/versions/{v}]/infer`` and
``POST /predict/{name}[/versions/{v}]``.

A raw ASGI class (Starlette treats a class instance endpoint as an ASGI app). Per request:
one pass over the raw headers, read the body (413 before reading when Content-Length is
too big), then the ``Exchange`` steps: admit (route, decode), await the version's batcher,
answer (record, mirror, encode) or refuse. ``modelgate serve`` answers most requests on
these URLs without ASGI (``http.fastpath``), through the same ``Exchange``; this endpoint
serves every other way in (in-process clients, pipelined or chunked requests,
``Expect: 100-continue``, a root path) and every request with a content coding: a
``Content-Encoding: gzip|deflate`` body is decoded before admission (its decoded size
counts against the body limit) and a client sending ``Accept-Encoding: gzip`` gets a
compressed reply from ``compression.MIN_COMPRESS`` bytes on (see ``compression``).
"""

from __future__ import annotations

from gateway.dataplane.codecs.compression import decoded, encoded, request_coding, response_coding
from gateway.dataplane.exchange import Exchange, InferenceRoute
from gateway.dataplane.http.asgi import (
    ACCEPT_ENCODING,
    CONTENT_ENCODING,
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
        found = scan_headers(scope["headers"])
        exchange = Exchange(self, found, scope["path_params"])
        reply_coding = response_coding(found[ACCEPT_ENCODING])
        try:
            body_coding = request_coding(found[CONTENT_ENCODING])
            body = await read_body(receive, self.max_body, found[CONTENT_LENGTH])
            if body_coding is not None:
                body = await decoded(body, body_coding, self.max_body)
            batcher = exchange.admit(body).batcher
            request = exchange.request
            outputs = await batcher.infer(request.feeds, request.n_rows)
            reply = exchange.answer(outputs)
        except ClientGone:
            return
        except Exception as exc:
            reply = exchange.refuse(exc)
        if reply_coding is not None:
            reply = await encoded(*reply, reply_coding)
        await respond(send, *reply)
