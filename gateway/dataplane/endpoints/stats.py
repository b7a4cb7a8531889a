"""Triton's statistics extension: ``GET /v2/models[/{name}[/versions/{version}]]/stats``.

``{"model_stats": [...]}``, one entry per loaded version of this worker process, from
counters the serving path keeps anyway (nothing is measured for this endpoint):

* ``inference_count`` / ``execution_count``: rows run and onnxruntime calls of the
  version's batcher (a batch of merged requests is one execution; shadow copies count,
  since the version ran them);
* ``inference_stats.success`` / ``fail``: requests answered by the version, and the sum
  of their durations (admission to reply, the span of
  ``modelgate_request_duration_seconds``);
* ``inference_stats.compute_infer``: onnxruntime calls and their total time, from
  monitoring (zero with ``MODELGATE_MONITORING=off``). Its count is of executions, not
  requests: merged requests share one call;
* ``queue``, ``compute_input``, ``compute_output`` and ``cache_hit`` are not measured
  apart (they are inside ``success``; there is no response cache): count and ns 0;
* ``last_inference``: milliseconds since the epoch of the latest request (0 before any);
* ``batch_stats``: empty (no per-batch-size timings are kept).

Counters start when a version is loaded in a worker: a reload, or another worker of a
``--workers N`` server, starts from zero. ``/v2/models/stats`` shadows a model named
``stats`` exactly as in Triton (its metadata stays reachable at ``/versions/{v}``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from time import perf_counter_ns
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
from gateway.dataplane.snapshot import Snapshot, SnapshotHolder, Variant
from gateway.errors import GatewayError, ModelNotFound

_ZERO = {"count": 0, "ns": 0}


def _version_key(version: str) -> tuple[Any, ...]:
    """Semver-ish order: numeric parts as numbers (1.10.0 after 1.9.0)."""
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in version.split("."))


def _sorted(variants: Iterable[Variant]) -> list[Variant]:
    return sorted(variants, key=lambda v: _version_key(v.version))


def variant_stats(variant: Variant, wall_ns: int, now_ns: int) -> dict[str, Any]:
    """One ``$model_stat`` object; ``wall_ns``/``now_ns`` are the same instant as
    ``time.time_ns()`` and ``perf_counter_ns()``."""
    recorder = variant.recorder
    calls, call_ns = recorder.inference_totals() if recorder is not None else (0, 0)
    last = variant.last_request_ns
    batcher = variant.batcher
    return {
        "name": variant.model,
        "version": variant.version,
        "last_inference": (wall_ns - (now_ns - last)) // 1_000_000 if last else 0,
        "inference_count": batcher.batched_rows,
        "execution_count": batcher.batches,
        "inference_stats": {
            "success": {"count": variant.requests, "ns": variant.success_ns},
            "fail": {"count": variant.errors, "ns": variant.fail_ns},
            "queue": _ZERO,
            "compute_input": _ZERO,
            "compute_infer": {"count": calls, "ns": call_ns},
            "compute_output": _ZERO,
            "cache_hit": _ZERO,
        },
        "batch_stats": [],
    }


def select(snapshot: Snapshot, name: str | None, version: str | None) -> list[Variant]:
    """The loaded versions a stats URL names: all, one model's, or one (404/409/503 as for
    a pinned request)."""
    models = snapshot.models
    if name is None:
        return [v for n in sorted(models) for v in _sorted(models[n].variants.values())]
    route = models.get(name)
    if route is None:
        raise ModelNotFound(f"unknown model '{name[:100]}'")
    if version is None:
        return _sorted(route.variants.values())
    return [pinned(route, version)]


class StatsEndpoint:
    """``GET /v2/models/stats``, ``/v2/models/{name}/stats`` and
    ``/v2/models/{name}/versions/{version}/stats``."""

    __slots__ = ("holder", "wall", "clock")

    def __init__(
        self,
        holder: SnapshotHolder,
        wall: Callable[[], int] = time.time_ns,
        clock: Callable[[], int] = perf_counter_ns,
    ) -> None:
        self.holder = holder
        self.wall = wall
        self.clock = clock

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request_id = request_id_of(scan_headers(scope["headers"]))
        params = scope.get("path_params") or {}
        try:
            variants = select(self.holder.current, params.get("name"), params.get("version"))
        except GatewayError as exc:
            await respond_json(send, exc.status, error_body(str(exc)), request_id)
            return
        wall, now = self.wall(), self.clock()
        stats = [variant_stats(v, wall, now) for v in variants]
        await respond_json(send, 200, orjson.dumps({"model_stats": stats}), request_id)
