"""Choosing the version that serves a request: pure functions over a ``ModelRoute``.

Precedence (docs/contracts.md, "Routing precedence"): version in the URL >
``X-Model-Version`` header > ``X-Use-Challenger: true`` (the configured challenger) >
sticky hash of ``X-Routing-Key`` over the weights (when the deployment is sticky) >
weighted random.

Weights are integer cumulative thresholds over ``BUCKETS`` = 10,000 buckets; a request's
bucket is either a stable hash (blake2b of salt + model + key; never Python's ``hash()``,
which is salted per process) or a uniform random draw.

``choose`` also returns which rule decided (``RULE_*``, the ``route`` label of
``modelgate_requests_total``); ``select`` is the same choice without it.
"""

from __future__ import annotations

import random
from bisect import bisect_right
from collections.abc import Callable, Sequence
from hashlib import blake2b

from gateway.dataplane.snapshot import ModelRoute, Variant
from gateway.errors import ModelNotFound, ModelNotReady, NotDeployed
from gateway.monitoring.metrics import families as _families

# the routing rule that chose a version: the metrics' ``route`` label index
RULE_URL = _families.ROUTE_URL
RULE_HEADER = _families.ROUTE_HEADER
RULE_CHALLENGER = _families.ROUTE_CHALLENGER
RULE_STICKY = _families.ROUTE_STICKY
RULE_WEIGHTED = _families.ROUTE_WEIGHTED

BUCKETS = 10_000


def thresholds_for(weights: Sequence[float]) -> tuple[int, ...]:
    """Cumulative integer thresholds over BUCKETS for percent weights (summing to ~100).

    Route ``i`` serves buckets ``[thresholds[i-1], thresholds[i])``; the last threshold is
    always BUCKETS so rounding never leaves a bucket unserved.
    """
    if not weights:
        return ()
    total = float(sum(weights))
    if total <= 0:
        raise ValueError("route weights must sum to a positive number")
    out: list[int] = []
    cumulative = 0.0
    for weight in weights:
        if weight < 0:
            raise ValueError("route weights must not be negative")
        cumulative += weight
        out.append(min(BUCKETS, round(cumulative / total * BUCKETS)))
    out[-1] = BUCKETS
    return tuple(out)


def sticky_prefix(salt: str, model: str) -> bytes:
    return f"{salt}\x00{model}\x00".encode()


def sticky_bucket(prefix: bytes, key: bytes) -> int:
    """Stable bucket in [0, BUCKETS) for a routing key (same on every worker and restart)."""
    digest = blake2b(prefix + key, digest_size=8).digest()
    return int.from_bytes(digest, "big") % BUCKETS


def by_bucket(route: ModelRoute, bucket: int) -> Variant:
    """The routed variant owning ``bucket`` (primary when the model has no routes)."""
    routes = route.routes
    if len(routes) == 1:
        return routes[0]
    if not routes:
        if route.primary is None:
            raise ModelNotReady(f"model '{route.name}' has no loaded version")
        return route.primary
    return routes[bisect_right(route.thresholds, bucket)]


def pinned(route: ModelRoute, version: str) -> Variant:
    """A named version (or alias): 404 when unknown, 409 when registered but not deployed,
    503 when deployed but not loaded (loading, failed, or the model unloaded)."""
    variant = route.variants.get(version)
    if variant is not None:
        return variant
    target = route.aliases.get(version)
    if target is not None:
        variant = route.variants.get(target)
        if variant is not None:
            return variant
    if version in route.known_versions or target is not None:
        resolved = version if target is None else target
        if resolved in route.idle_versions:
            raise NotDeployed(
                f"version '{resolved}' of model '{route.name}' is registered but not deployed "
                "(not production, staging, routed, shadowed or challenger); make it servable "
                f"with `modelgate stage {route.name} {resolved} staging` or route traffic to it "
                f"(`modelgate traffic {route.name} --route {resolved}=WEIGHT ...`)"
            )
        raise ModelNotReady(f"version '{version}' of model '{route.name}' is not loaded")
    # the version comes from the URL or a header of any length: echo a bounded part
    shown = version if len(version) <= 100 else version[:100] + "..."
    raise ModelNotFound(f"model '{route.name}' has no version '{shown}'")


def choose(
    route: ModelRoute,
    url_version: str | None,
    header_version: bytes | None,
    use_challenger: bool,
    routing_key: bytes | None,
    rand: Callable[[], float] = random.random,
) -> tuple[Variant, int]:
    """Apply the precedence rules: (variant, ``RULE_*`` that chose it).

    Raises ModelNotFound / NotDeployed / ModelNotReady. A single route is "sticky" when the request
    carried a key for a sticky deployment (the hash would pick it), else "weighted".
    """
    if url_version is not None:
        return pinned(route, url_version), RULE_URL
    if header_version is not None:
        return pinned(route, header_version.decode("latin-1")), RULE_HEADER
    if use_challenger and route.challenger is not None:
        return route.challenger, RULE_CHALLENGER
    routes = route.routes
    sticky_key = routing_key if route.sticky else None
    if len(routes) == 1:
        return routes[0], RULE_WEIGHTED if sticky_key is None else RULE_STICKY
    if sticky_key is not None:
        return by_bucket(route, sticky_bucket(route.sticky_prefix, sticky_key)), RULE_STICKY
    return by_bucket(route, int(rand() * BUCKETS)), RULE_WEIGHTED


def select(
    route: ModelRoute,
    url_version: str | None,
    header_version: bytes | None,
    use_challenger: bool,
    routing_key: bytes | None,
    rand: Callable[[], float] = random.random,
) -> Variant:
    """Apply the precedence rules; raises ModelNotFound / ModelNotReady."""
    return choose(route, url_version, header_version, use_challenger, routing_key, rand)[0]
