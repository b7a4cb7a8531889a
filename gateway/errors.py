"""Gateway exceptions and the one table that maps failures to HTTP statuses.

    GatewayError                 (status, reason)
     +-- InputError              400  bad request body or tensors; ``reason`` labels
     |                                modelgate_input_errors_total{reason}
     +-- PayloadTooLarge         413
     +-- UnsupportedEncoding     415  a request Content-Encoding other than gzip/deflate
     +-- ModelNotFound           404  unknown model or version
     +-- ModelNotReady           503  known but not loaded (yet)
     +-- Unauthorized            401  admin endpoints without a valid bearer token
     +-- Conflict                409  control-plane change refused by current state
          +-- NotDeployed        409  a registered version nothing deploys, pinned

Registry errors get their status in ``gateway.admin.statuses.status_for`` (the control plane
maps them; neither the registry nor the data plane knows about the other).
The message of every error is one line meant for the client; no traceback is ever sent.
"""

from __future__ import annotations


class GatewayError(Exception):
    status = 500
    reason = "internal"

    def __init__(self, message: str, *, reason: str | None = None) -> None:
        super().__init__(message)
        if reason is not None:
            self.reason = reason


class InputError(GatewayError):
    status = 400
    reason = "invalid_input"


class PayloadTooLarge(GatewayError):
    status = 413
    reason = "body_too_large"


class UnsupportedEncoding(GatewayError):
    status = 415
    reason = "unsupported_encoding"


class ModelNotFound(GatewayError):
    status = 404
    reason = "unknown_model"


class ModelNotReady(GatewayError):
    status = 503
    reason = "not_ready"


class Unauthorized(GatewayError):
    status = 401
    reason = "unauthorized"


class Conflict(GatewayError):
    status = 409
    reason = "conflict"


class NotDeployed(Conflict):
    """A pinned version that is registered but not deployed (so not loaded): only an operator
    can make it servable, so retrying (what a 503 tells a client) cannot help."""

    reason = "not_deployed"
