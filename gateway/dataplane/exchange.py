"""One inference request from its parsed headers to its reply, whatever carries it.

The ASGI endpoint (``endpoints.infer``) and the HTTP fast path (``http.fastpath``) both run a
request as ``admit(body)`` (route, decode, validate) -> the version's batcher ->
``answer(outputs)`` (record, mirror, encode) or ``refuse(exc)`` (the error reply). A reply
is ``(status, body, headers)``; headers never include Content-Length.

``admit`` reads the routing snapshot once and does not await, so nothing happens between
choosing a variant and submitting to its batcher: a variant unpublished by a swap has then
already seen every request that will ever use it, which is what lets the control plane
drain it.

Monitoring: the chosen version's ``recorder`` (bound at load) gets every answer with the
routing rule that chose the version, and the version's own counters (count, nanoseconds,
latest arrival: the statistics extension) are bumped; a 4xx for a known model refused
before a version was chosen goes to ``input_errors(model, reason)``. A model name nobody
registered is never passed on (it would become a metric label a client typed).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from time import perf_counter_ns
from typing import TYPE_CHECKING, Any

from gateway.dataplane.codecs.binary import parse_header_length
from gateway.dataplane.codecs.oip import decode_infer_request, encode_infer_response
from gateway.dataplane.codecs.oip_template import ReplyTemplate
from gateway.dataplane.codecs.predict import decode_predict_request, encode_predict_response
from gateway.dataplane.http.asgi import (
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
    client_request_id,
    error_body,
    new_request_id,
)
from gateway.dataplane.routing import RULE_WEIGHTED, choose
from gateway.dataplane.runner import Outputs
from gateway.errors import GatewayError, ModelNotFound

if TYPE_CHECKING:
    from gateway.dataplane.shadow import ShadowMirror
    from gateway.dataplane.snapshot import ModelRoute, SnapshotHolder, Variant

Headers = list[tuple[bytes, bytes]]
Reply = tuple[int, bytes, Headers]
InputErrors = Callable[[str, str], None]

logger = logging.getLogger("modelgate.dataplane")


class InferenceRoute:
    """What one inference URL needs to run requests: ``protocol`` is ``"oip"`` (V2 infer,
    JSON or binary tensors, routed or pinned by the URL) or ``"predict"`` (simple JSON)."""

    __slots__ = ("holder", "mirror", "max_body", "oip", "input_errors", "_templates")

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
        # model -> version -> the answer's pre-encoded parts (a few small bytes per version
        # ever served; a version loaded again with another signature gets a new one)
        self._templates: dict[str, dict[str, ReplyTemplate]] = {}

    def template(self, variant: Variant) -> ReplyTemplate:
        """The OIP answer template of ``variant`` (made on its first answer)."""
        names = variant.signature.output_order
        versions = self._templates.get(variant.model)
        if versions is None:
            versions = self._templates[variant.model] = {}
        template = versions.get(variant.version)
        if template is None or template.names is not names:
            template = versions[variant.version] = ReplyTemplate(
                variant.model, variant.version, names
            )
        return template


class Exchange:
    """The state of one request; ``found`` is ``asgi.scan_headers`` of its headers and
    ``params`` its path parameters (``name``, optional ``version``)."""

    __slots__ = (
        "route_def",
        "found",
        "params",
        "started",
        "request_id",
        "variant",
        "rule",
        "route",
        "request",
        "body_id",
    )

    def __init__(
        self, route_def: InferenceRoute, found: list[bytes | None], params: dict[str, str]
    ) -> None:
        self.route_def = route_def
        self.found = found
        self.params = params
        self.started = perf_counter_ns()
        self.request_id = client_request_id(found[REQUEST_ID])
        self.variant: Variant | None = None
        self.rule = RULE_WEIGHTED
        self.route: ModelRoute | None = None
        self.request: Any = None
        self.body_id = ""  # set by admit()

    def admit(self, body: bytes) -> Variant:
        """Route and decode: the chosen version (its decoded request, with ``feeds`` and
        ``n_rows``, is ``self.request``), or a GatewayError."""
        route_def, found = self.route_def, self.found
        name = self.params["name"]
        route = route_def.holder.current.models.get(name)
        if route is None:
            raise ModelNotFound(f"unknown model '{name[:100]}'")
        self.route = route
        challenger = found[USE_CHALLENGER]
        variant, self.rule = choose(
            route,
            self.params.get("version"),
            found[MODEL_VERSION],
            challenger is not None and challenger in TRUE_VALUES,
            found[ROUTING_KEY],
        )
        self.variant = variant
        if route_def.oip:
            header_length = parse_header_length(found[HEADER_LENGTH])
            request: Any = decode_infer_request(body, header_length, variant.signature)
        else:
            request = decode_predict_request(body, variant.signature)
        body_id = request.id
        if body_id is not None:
            if self.request_id is None:
                # an id from the body is echoed under the same rule as the header's
                given = body_id.encode("utf-8", "replace") if body_id else None
                self.request_id = client_request_id(given) or new_request_id().encode()
            self.body_id = body_id
        elif self.request_id is None:
            generated = new_request_id()  # ASCII: one string, its bytes for the header
            self.request_id = generated.encode()
            self.body_id = generated
        else:
            self.body_id = self.request_id.decode("latin-1")
        self.request = request
        return variant

    def answer(self, outputs: Outputs) -> Reply:
        """The reply to an admitted request that ran: recorded, mirrored, encoded."""
        variant, route = self.variant, self.route
        if variant is None or route is None:
            raise RuntimeError("answer() called before a successful admit()")
        request = self.request
        elapsed = perf_counter_ns() - self.started
        recorder = variant.recorder
        if recorder is not None:
            recorder.record(
                self.rule, self.body_id, request.feeds, outputs, request.n_rows, elapsed
            )
        if route.shadows:
            self.route_def.mirror.mirror(route, request.feeds, request.n_rows, variant, outputs)
        route_def, sig = self.route_def, variant.signature
        binary_length = None
        if not route_def.oip:
            payload = encode_predict_response(
                variant.model, variant.version, self.body_id, outputs, sig
            )
        else:
            encoded = None
            if request.outputs is None and not request.binary_outputs and request.classify is None:
                # every output as JSON: pre-encoded parts around the values (the same bytes)
                encoded = route_def.template(variant).encode(self.body_id, outputs)
            if encoded is None:
                payload, binary_length = encode_infer_response(
                    variant.model, variant.version, self.body_id, outputs, sig, request
                )
            else:
                payload = encoded
        variant.requests += 1
        variant.success_ns += elapsed
        variant.last_request_ns = self.started
        version_header = (H_MODEL_VERSION, variant.version_header)
        request_id = (H_REQUEST_ID, self.request_id or new_request_id().encode())
        if binary_length is None:
            return 200, payload, [JSON_TYPE, version_header, request_id]
        length = (H_HEADER_LENGTH, b"%d" % binary_length)
        return 200, payload, [OCTET_TYPE, length, version_header, request_id]

    def refuse(self, exc: BaseException) -> Reply:
        """The reply to a request that failed anywhere: a GatewayError says what was wrong,
        anything else is logged and answered with a bare 500."""
        variant = self.variant
        if isinstance(exc, GatewayError):
            status, reason, payload = exc.status, exc.reason, error_body(str(exc))
        else:
            logger.error("unexpected error serving model %s", self.params.get("name"), exc_info=exc)
            status, reason, payload = 500, "internal", INTERNAL_ERROR_BODY
        if variant is not None:
            elapsed = perf_counter_ns() - self.started
            variant.errors += 1
            variant.fail_ns += elapsed
            variant.last_request_ns = self.started
            if variant.recorder is not None:
                variant.recorder.record_error(self.rule, status, reason, elapsed)
        elif status < 500 and isinstance(exc, GatewayError):
            self._unrouted_error(exc)
        return self._reply(status, payload, [JSON_TYPE])

    def _reply(self, status: int, payload: bytes, headers: Headers) -> Reply:
        if self.variant is not None:
            headers.append((H_MODEL_VERSION, self.variant.version_header))
        headers.append((H_REQUEST_ID, self.request_id or new_request_id().encode()))
        return status, payload, headers

    def _unrouted_error(self, exc: GatewayError) -> None:
        """A 4xx before a version was chosen: counted only for a model that exists."""
        input_errors = self.route_def.input_errors
        name = self.params.get("name")
        if input_errors is None or name is None:
            return
        if name not in self.route_def.holder.current.models:
            return
        reason = exc.reason
        if isinstance(exc, ModelNotFound):  # the model exists: the version did not
            reason = "unknown_version"
        input_errors(name, reason)
