"""The hot path: ``POST /v2/models/{name}[/versions/{v}]/infer`` and ``POST /predict/{name}``.

Raw ASGI classes (Starlette treats a class instance endpoint as an ASGI app). Per request:
one pass over the raw headers, read the body (413 before reading when Content-Length is
too big), one read of the routing snapshot, choose the version, decode against that
version's signature, await its batcher, mirror to shadows, encode, send. The body is read
before the version is chosen so that nothing awaits between choosing a variant and
submitting to its batcher: a variant unpublished by a swap has then already seen every
request that will ever use it, which is what lets the control plane drain it.

Monitoring: the chosen version's ``recorder`` (bound at load) gets every answer with the
routing rule that chose the version; a 4xx for a known model refused before a version was
chosen goes to ``input_errors(model, reason)``. A model name nobody registered is never
passed on (it would become a metric label a client typed).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from time import perf_counter_ns
from typing import Any

from gateway.dataplane.asgi import (
    CONTENT_LENGTH,
    H_HEADER_LENGTH,
    H_MODEL_VERSION,
    H_REQUEST_ID,
    HEADER_LENGTH,
    INTERNAL_ERROR_BODY,
    JSON_TYPE,
    MODEL_VERSION,
    OCTET_TYPE,
    REQUEST_ID,
    ROUTING_KEY,
    TRUE_VALUES,
    USE_CHALLENGER,
    ClientGone,
    Receive,
    Scope,
    Send,
    client_request_id,
    error_body,
    new_request_id,
    read_body,
    respond,
    scan_headers,
)
from gateway.dataplane.codec_binary import parse_header_length
from gateway.dataplane.codec_oip import decode_infer_request, encode_infer_response
from gateway.dataplane.codec_predict import decode_predict_request, encode_predict_response
from gateway.dataplane.routing import RULE_WEIGHTED, choose
from gateway.dataplane.shadow import ShadowMirror
from gateway.dataplane.snapshot import SnapshotHolder, Variant
from gateway.errors import GatewayError, ModelNotFound

InputErrors = Callable[[str, str], None]

logger = logging.getLogger("modelgate.dataplane")


class InferenceEndpoint:
    """One inference route; ``protocol`` is ``"oip"`` (V2 infer, JSON or binary tensors,
    routed or pinned by the URL) or ``"predict"`` (simple JSON instances)."""

    __slots__ = ("holder", "mirror", "max_body", "oip", "input_errors")

    def __init__(
        self,
        holder: SnapshotHolder,
        mirror: ShadowMirror,
        max_body: int,
        protocol: str = "oip",
        input_errors: InputErrors | None = None,
    ) -> None:
        if protocol not in ("oip", "predict"):
            raise ValueError(f"unknown protocol {protocol!r}")
        self.holder = holder
        self.mirror = mirror
        self.max_body = max_body
        self.oip = protocol == "oip"
        self.input_errors = input_errors

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = perf_counter_ns()
        found = scan_headers(scope["headers"])
        request_id = client_request_id(found[REQUEST_ID])
        variant: Variant | None = None
        rule = RULE_WEIGHTED
        try:
            body = await read_body(receive, self.max_body, found[CONTENT_LENGTH])
            params = scope["path_params"]
            name = params["name"]
            route = self.holder.current.models.get(name)
            if route is None:
                raise ModelNotFound(f"unknown model '{name[:100]}'")
            challenger = found[USE_CHALLENGER]
            variant, rule = choose(
                route,
                params.get("version"),
                found[MODEL_VERSION],
                challenger is not None and challenger in TRUE_VALUES,
                found[ROUTING_KEY],
            )
            signature = variant.signature
            if self.oip:
                header_length = parse_header_length(found[HEADER_LENGTH])
                request: Any = decode_infer_request(body, header_length, signature)
            else:
                request = decode_predict_request(body, signature)
            body_id = request.id
            if request_id is None:
                # an id from the body is echoed under the same rule as the header's
                given = body_id.encode("utf-8", "replace") if body_id else None
                request_id = client_request_id(given) or new_request_id().encode()
            if body_id is None:
                body_id = request_id.decode("latin-1")
            outputs = await variant.batcher.infer(request.feeds, request.n_rows)
            recorder = variant.recorder
            if recorder is not None:
                recorder.record(
                    rule,
                    body_id,
                    request.feeds,
                    outputs,
                    request.n_rows,
                    perf_counter_ns() - started,
                )
            if route.shadows:
                self.mirror.mirror(route, request.feeds, request.n_rows, variant, outputs)
            if self.oip:
                payload, binary_length = encode_infer_response(
                    name, variant.version, body_id, outputs, signature, request
                )
            else:
                payload = encode_predict_response(
                    name, variant.version, body_id, outputs, signature
                )
                binary_length = None
            variant.requests += 1
            status = 200
            if binary_length is None:
                headers = [JSON_TYPE]
            else:
                headers = [OCTET_TYPE, (H_HEADER_LENGTH, str(binary_length).encode())]
        except ClientGone:
            return
        except GatewayError as exc:
            status = exc.status
            payload = error_body(str(exc))
            headers = [JSON_TYPE]
            if variant is not None:
                variant.errors += 1
                if variant.recorder is not None:
                    variant.recorder.record_error(
                        rule, status, exc.reason, perf_counter_ns() - started
                    )
            elif status < 500 and self.input_errors is not None:
                self._unrouted_error(scope, exc)
        except Exception:
            logger.exception("unexpected error serving %s", scope.get("path"))
            status = 500
            payload = INTERNAL_ERROR_BODY
            headers = [JSON_TYPE]
            if variant is not None:
                variant.errors += 1
                if variant.recorder is not None:
                    variant.recorder.record_error(
                        rule, 500, "internal", perf_counter_ns() - started
                    )
        if variant is not None:
            headers.append((H_MODEL_VERSION, variant.version_header))
        headers.append((H_REQUEST_ID, request_id or new_request_id().encode()))
        await respond(send, status, payload, headers)

    def _unrouted_error(self, scope: Scope, exc: GatewayError) -> None:
        """A 4xx before a version was chosen: counted only for a model that exists."""
        name = scope["path_params"].get("name")
        if name is None or name not in self.holder.current.models:
            return
        reason = exc.reason
        if isinstance(exc, ModelNotFound):  # the model exists: the version did not
            reason = "unknown_version"
        self.input_errors(name, reason)  # type: ignore[misc]
