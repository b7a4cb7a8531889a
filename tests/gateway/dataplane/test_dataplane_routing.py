from __future__ import annotations

import random
from collections import Counter
from hashlib import blake2b
from types import MappingProxyType

import pytest

from gateway.dataplane.routing import (
    BUCKETS,
    by_bucket,
    pinned,
    select,
    sticky_bucket,
    sticky_prefix,
    thresholds_for,
)
from gateway.dataplane.snapshot import ModelRoute
from gateway.errors import ModelNotFound, ModelNotReady


@pytest.fixture
def variants(make_variant):
    return {v: make_variant("logistic", version=v) for v in ("1.0.0", "1.1.0", "2.0.0")}


def make_route(variants, weights, *, sticky=False, challenger=None, known=(), aliases=None):
    routes = tuple(variants[v] for v in weights)
    return ModelRoute(
        name="m",
        variants=MappingProxyType(dict(variants)),
        known_versions=frozenset(variants) | frozenset(known),
        aliases=MappingProxyType(aliases or {}),
        primary=variants["1.0.0"],
        routes=routes,
        thresholds=thresholds_for(list(weights.values())),
        weights=tuple(weights.values()),
        challenger=variants[challenger] if challenger else None,
        sticky=sticky,
        sticky_prefix=sticky_prefix("salt", "m"),
        shadows=(),
        metadata_body=b"{}",
    )


def test_thresholds_are_cumulative_integer_buckets():
    assert thresholds_for([90, 10]) == (9000, 10000)
    assert thresholds_for([33.33, 33.33, 33.34]) == (3333, 6666, 10000)
    assert thresholds_for([100]) == (10000,)
    assert thresholds_for([0, 100]) == (0, 10000)
    assert thresholds_for([]) == ()
    with pytest.raises(ValueError):
        thresholds_for([-5, 105])
    with pytest.raises(ValueError):
        thresholds_for([0, 0])


def test_a_zero_weight_route_never_gets_a_bucket(variants):
    route = make_route(variants, {"1.0.0": 0, "1.1.0": 100})
    assert {by_bucket(route, b).version for b in range(BUCKETS)} == {"1.1.0"}


def test_weighted_split_is_within_one_percent_over_100k_decisions(variants):
    route = make_route(variants, {"1.0.0": 90, "1.1.0": 10})
    rand = random.Random(1234).random
    counts = Counter(select(route, None, None, False, None, rand).version for _ in range(100_000))
    assert abs(counts["1.0.0"] / 100_000 - 0.90) < 0.01
    assert abs(counts["1.1.0"] / 100_000 - 0.10) < 0.01


def test_three_way_split(variants):
    route = make_route(variants, {"1.0.0": 50, "1.1.0": 30, "2.0.0": 20})
    rand = random.Random(7).random
    counts = Counter(select(route, None, None, False, None, rand).version for _ in range(100_000))
    for version, share in (("1.0.0", 0.5), ("1.1.0", 0.3), ("2.0.0", 0.2)):
        assert abs(counts[version] / 100_000 - share) < 0.01


def test_sticky_bucket_is_a_stable_blake2b_hash_not_python_hash():
    prefix = sticky_prefix("salt", "m")
    expected = int.from_bytes(blake2b(b"salt\x00m\x00user-42", digest_size=8).digest(), "big")
    assert sticky_bucket(prefix, b"user-42") == expected % BUCKETS
    # another salt (or model) reshuffles the keys
    keys = [f"k{i}".encode() for i in range(1000)]
    other = sticky_prefix("other", "m")
    moved = sum(sticky_bucket(prefix, k) != sticky_bucket(other, k) for k in keys)
    assert moved > 900


def test_sticky_keys_always_land_on_the_same_version_and_spread_by_weight(variants):
    route = make_route(variants, {"1.0.0": 70, "1.1.0": 30}, sticky=True)
    noise = random.Random(5).random  # must not matter for sticky requests
    first = {}
    for i in range(20_000):
        key = f"user-{i}".encode()
        first[key] = select(route, None, None, False, key, noise).version
    for key, version in list(first.items())[:5000]:
        for _ in range(3):
            assert select(route, None, None, False, key, noise).version == version
    share = Counter(first.values())["1.0.0"] / len(first)
    assert abs(share - 0.70) < 0.02


def test_routing_key_is_ignored_when_the_deployment_is_not_sticky(variants):
    route = make_route(variants, {"1.0.0": 50, "1.1.0": 50}, sticky=False)
    seen = {select(route, None, None, False, b"same-key").version for _ in range(200)}
    assert seen == {"1.0.0", "1.1.0"}


def test_precedence_url_then_header_then_challenger_then_sticky_then_weights(variants):
    route = make_route(variants, {"1.0.0": 50, "1.1.0": 50}, sticky=True, challenger="2.0.0")
    key = b"user-1"
    sticky_choice = select(route, None, None, False, key).version
    assert select(route, "1.1.0", b"2.0.0", True, key).version == "1.1.0"
    assert select(route, None, b"1.0.0", True, key).version == "1.0.0"
    assert select(route, None, None, True, key).version == "2.0.0"
    assert select(route, None, None, False, key).version == sticky_choice
    # no challenger configured: the flag falls through to normal routing
    plain = make_route(variants, {"1.1.0": 100})
    assert select(plain, None, None, True, None).version == "1.1.0"


def test_pinned_versions_unknown_not_loaded_and_aliases(variants):
    route = make_route(
        variants, {"1.0.0": 100}, known=("0.9.0",), aliases={"champion": "1.1.0", "old": "0.9.0"}
    )
    assert pinned(route, "2.0.0").version == "2.0.0"
    assert pinned(route, "champion").version == "1.1.0"
    with pytest.raises(ModelNotFound):
        pinned(route, "7.7.7")
    with pytest.raises(ModelNotReady):
        pinned(route, "0.9.0")
    with pytest.raises(ModelNotReady):
        pinned(route, "old")
    with pytest.raises(ModelNotFound):
        select(route, None, b"7.7.7", False, None)


def test_a_model_without_routes_serves_its_primary_or_is_not_ready(variants):
    route = make_route(variants, {})
    assert select(route, None, None, False, None).version == "1.0.0"
    empty = ModelRoute(
        name="m",
        variants=MappingProxyType({}),
        known_versions=frozenset({"1.0.0"}),
        aliases=MappingProxyType({}),
        primary=None,
        routes=(),
        thresholds=(),
        weights=(),
        challenger=None,
        sticky=False,
        sticky_prefix=b"",
        shadows=(),
        metadata_body=b"",
    )
    with pytest.raises(ModelNotReady):
        select(empty, None, None, False, None)
