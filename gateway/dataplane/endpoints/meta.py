"""Health, server metadata and model metadata/readiness endpoints (Open Inference Protocol).

Raw ASGI classes like the infer path; every answer comes from the current snapshot, whose
metadata bodies were encoded when it was built. Health and readiness answer with the
protocol's JSON bodies (``{"live": true}``, ``{"ready": ...}``, ``{"name": ..., "ready":
...}``) and say the same with their status code (200, else 503), for probes that read only
that. With a network registry the readiness body also says whether the database answers
and what this node serves (``"registry"``, ``"serving"``, ``"reason"``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from importlib import metadata as importlib_metadata
from typing import Any

import orjson

from gateway.dataplane.http.asgi import (
    Receive,
    Scope,
    Send,
    error_body,
    request_id_of,
    respond_json,
    scan_headers,
)
from gateway.dataplane.routing import pinned
from gateway.dataplane.snapshot import SnapshotHolder
from gateway.errors import GatewayError, ModelNotFound, ModelNotReady, NotDeployed

SERVER_NAME = "modelgate"
EXTENSIONS = ("binary_tensor_data", "classification", "model_repository", "statistics")
LIVE_BODY = b'{"live":true}'
READY_BODIES = {True: b'{"ready":true}', False: b'{"ready":false}'}


def server_version() -> str:
    try:
        return importlib_metadata.version("modelgate")
    except importlib_metadata.PackageNotFoundError:
        return "0.0.0"


class LiveEndpoint:
    """``GET /v2/health/live``: the process answers."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await respond_json(send, 200, LIVE_BODY, request_id_of(scan_headers(scope["headers"])))


class ReadyEndpoint:
    """``GET /v2/health/ready``: 200 when every served model has a loaded primary;
    ``detail`` adds fields to the body (a network registry's state)."""

    __slots__ = ("holder", "detail")

    def __init__(
        self, holder: SnapshotHolder, detail: Callable[[], Mapping[str, Any]] | None = None
    ) -> None:
        self.holder = holder
        self.detail = detail

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        ready = self.holder.current.ready
        request_id = request_id_of(scan_headers(scope["headers"]))
        body = READY_BODIES[ready]
        if self.detail is not None:
            body = orjson.dumps({"ready": ready, **self.detail()})
        await respond_json(send, 200 if ready else 503, body, request_id)


class ServerMetadataEndpoint:
    """``GET /v2``: name, version and extensions."""

    __slots__ = ("body",)

    def __init__(self) -> None:
        self.body = orjson.dumps(
            {"name": SERVER_NAME, "version": server_version(), "extensions": list(EXTENSIONS)}
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await respond_json(send, 200, self.body, request_id_of(scan_headers(scope["headers"])))


class ModelMetadataEndpoint:
    """``GET /v2/models/{name}[/versions/{v}]`` and their ``/ready`` twins.

    Metadata of an unpinned model describes its primary (production) version. Readiness
    answers ``{"name": model, "ready": bool}``: 200 loaded, 503 known but not loaded (a
    version nothing deploys included: it is not ready, whatever makes it so).
    """

    __slots__ = ("holder", "readiness")

    def __init__(self, holder: SnapshotHolder, *, readiness: bool = False) -> None:
        self.holder = holder
        self.readiness = readiness

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        found = scan_headers(scope["headers"])
        request_id = request_id_of(found)
        params = scope["path_params"]
        name = params["name"]
        version = params.get("version")
        try:
            route = self.holder.current.models.get(name)
            if route is None:
                raise ModelNotFound(f"unknown model '{name}'")
            if version is not None:
                variant = pinned(route, version)
                body = variant.metadata_body
            else:
                primary = route.primary
                if primary is None:
                    raise ModelNotReady(f"model '{name}' has no loaded production version")
                variant = primary
                body = route.metadata_body
        except GatewayError as exc:
            if self.readiness and isinstance(exc, ModelNotReady | NotDeployed):
                await respond_json(send, 503, _readiness(name, False), request_id)
            else:
                await respond_json(send, exc.status, error_body(str(exc)), request_id)
            return
        if self.readiness:
            body = _readiness(name, True)
        await respond_json(send, 200, body, request_id, variant.version_header)


def _readiness(name: str, ready: bool) -> bytes:
    return orjson.dumps({"name": name, "ready": ready})
