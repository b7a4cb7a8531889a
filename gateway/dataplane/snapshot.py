"""The immutable routing snapshot the data plane reads, and the loaded variants it points to.

The control plane builds a complete ``Snapshot`` (every model's routes, thresholds and
pre-encoded bodies) and publishes it with one assignment to ``SnapshotHolder.current``.
A request reads ``holder.current`` once and works with that object to the end, so a swap
never shows it a half-updated state and needs no lock.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Protocol

from gateway.dataplane.batcher import Batcher
from gateway.dataplane.runner import Feeds, OnnxRunner, Outputs

if TYPE_CHECKING:
    from gateway.dataplane.shadow import ShadowTarget
    from gateway.dataplane.signature import ModelSignature

logger = logging.getLogger("modelgate.snapshot")


class Recorder(Protocol):
    """Per-version monitoring bound on ``Variant.recorder`` at load time (control plane).

    The inference endpoints call ``record`` after every successful inference and
    ``record_error`` for every failed request routed to the version; the shadow mirror
    calls ``record_shadow`` for every mirrored copy the version ran. All run on the event
    loop, so they must only append to preallocated buffers and bump counters. ``rule`` is
    the routing rule that chose the version (``routing.RULE_*``), ``status`` the HTTP
    status answered, ``reason`` the error's ``GatewayError.reason``.
    """

    def record(
        self,
        rule: int,
        request_id: str,
        feeds: Feeds,
        outputs: Outputs,
        n_rows: int,
        elapsed_ns: int,
    ) -> None: ...

    def record_error(self, rule: int, status: int, reason: str, elapsed_ns: int) -> None: ...

    def inference_totals(self) -> tuple[int, int]:
        """(onnxruntime calls, their total nanoseconds) recorded so far (statistics
        extension; off the request path)."""
        ...

    def record_shadow(self, status: int) -> None: ...

    def flush(self) -> None:
        """Move what was recorded into metrics, windows and feedback (bulk work on the loop;
        the shadow mirror calls it after each of its batches, so no flush grows large)."""
        ...


class Variant:
    """One loaded model version: what a request needs once it has been routed to it.

    Identity fields are fixed at load; ``requests`` and ``errors`` are plain counters the
    endpoints bump, with the total nanoseconds of each (``success_ns``, ``fail_ns``) and the
    ``perf_counter_ns`` arrival of the latest request (``last_request_ns``, 0 before any),
    which the statistics extension reports; ``recorder`` is where monitoring binds its
    per-version recorder (ring buffers, metric children) at load time, so recording needs no
    lookup per request.
    """

    __slots__ = (
        "model",
        "version",
        "version_header",
        "sha256",
        "signature",
        "runner",
        "batcher",
        "schema",
        "reference",
        "metadata_body",
        "requests",
        "errors",
        "success_ns",
        "fail_ns",
        "last_request_ns",
        "recorder",
    )

    def __init__(
        self,
        *,
        model: str,
        version: str,
        sha256: str,
        signature: ModelSignature,
        runner: OnnxRunner,
        batcher: Batcher,
        schema: Mapping[str, Any],
        reference: Mapping[str, Any],
        metadata_body: bytes,
        recorder: Recorder | None = None,
    ) -> None:
        self.model = model
        self.version = version
        self.version_header = version.encode("latin-1", "replace")
        self.sha256 = sha256
        self.signature = signature
        self.runner = runner
        self.batcher = batcher
        self.schema = schema
        self.reference = reference
        self.metadata_body = metadata_body
        self.requests = 0
        self.errors = 0
        self.success_ns = 0
        self.fail_ns = 0
        self.last_request_ns = 0
        self.recorder: Recorder | None = recorder

    def __repr__(self) -> str:
        return f"Variant({self.model}:{self.version}, {self.batcher.mode})"


@dataclass(frozen=True, slots=True, eq=False)
class ModelRoute:
    """Routing state of one model, precomputed for the hot path."""

    name: str
    # loaded versions only; registered-but-unloaded ones are in known_versions
    variants: Mapping[str, Variant]
    known_versions: frozenset[str]
    aliases: Mapping[str, str]
    # the default version: production (else the first route); None = not ready
    primary: Variant | None
    # weighted routes and their cumulative thresholds over routing.BUCKETS
    routes: tuple[Variant, ...]
    thresholds: tuple[int, ...]
    weights: tuple[float, ...]
    challenger: Variant | None
    sticky: bool
    # salt + model, pre-encoded: the sticky hash input is this prefix + the key
    sticky_prefix: bytes
    shadows: tuple[ShadowTarget, ...]
    # GET /v2/models/{name} (the primary's signature), pre-encoded
    metadata_body: bytes
    # False for a model with no production version and no routes (nothing to serve yet):
    # it answers 503 but does not make the whole gateway unready
    served: bool = True
    # registered versions nothing deploys (not production, rollback target, staging, routed,
    # shadowed or challenger): never loaded, so pinning one is a 409 that says how to deploy
    idle_versions: frozenset[str] = frozenset()

    @property
    def ready(self) -> bool:
        return self.primary is not None


@dataclass(frozen=True, slots=True, eq=False)
class Snapshot:
    models: Mapping[str, ModelRoute] = field(default_factory=lambda: MappingProxyType({}))
    generation: int = -1
    # set by the publisher once the first snapshot from the registry is in place
    loaded: bool = False

    @property
    def ready(self) -> bool:
        """Every served model has a loaded primary (readiness probe)."""
        return self.loaded and all(r.ready for r in self.models.values() if r.served)

    def variants(self) -> list[Variant]:
        """Every distinct variant this snapshot references (routes, shadows, pins)."""
        seen: dict[int, Variant] = {}
        for route in self.models.values():
            for variant in route.variants.values():
                seen[id(variant)] = variant
        return list(seen.values())


Listener = Callable[[Snapshot], None]


class SnapshotHolder:
    """The one mutable cell: the control plane assigns ``current``, requests read it.

    ``listeners`` are called (on the loop) with every snapshot assigned to ``current``,
    e.g. to update the traffic-weight gauges on each publish. Reading ``current`` stays a
    plain slot read; only the assignment goes through ``__setattr__``.
    """

    __slots__ = ("current", "listeners")
    current: Snapshot
    listeners: list[Listener]

    def __init__(self, snapshot: Snapshot | None = None) -> None:
        object.__setattr__(self, "listeners", [])
        self.current = snapshot if snapshot is not None else Snapshot()

    def __setattr__(self, name: str, value: Any) -> None:
        object.__setattr__(self, name, value)
        if name == "current":
            for listener in self.listeners:
                try:
                    listener(value)
                except Exception:  # a listener must never break a publish
                    logger.exception("snapshot listener %r failed", listener)
