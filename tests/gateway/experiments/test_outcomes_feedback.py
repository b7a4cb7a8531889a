"""Outcomes through POST /v2/models/{name}/feedback of the real app on a real SQLite
registry: joined to the variant that served, by id or routing key, idempotent, late and
unknown ones counted, invalid values reported per item, aggregates equal to numpy."""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import numpy as np
import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from gateway.monitoring.metrics.prometheus import MetricsRegistry
from registry.home import HomePaths
from registry.sqlite.store import open_registry
from tests.support.asgi_app import InProcessApp, running_gateway
from tests.support.experiments import predict, start_experiment

FEEDBACK = "/v2/models/clf/feedback"


@pytest.fixture
async def served(zoo_home) -> AsyncIterator[InProcessApp]:
    metrics = MetricsRegistry(multiprocess_dir=None)
    async with running_gateway(zoo_home, "tok", metrics=metrics) as app:
        app.metrics = metrics  # type: ignore[attr-defined]
        yield app


def _moments(values: list[float]) -> tuple[int, float, float]:
    arr = np.asarray(values, dtype=np.float64)
    return len(arr), float(arr.sum()), float(arr @ arr)


def _assert_moments(found: tuple[int, float, float], values: list[float]) -> None:
    n, total, total_sq = _moments(values)
    assert found[0] == n
    assert found[1] == pytest.approx(total, rel=1e-12, abs=1e-9)
    assert found[2] == pytest.approx(total_sq, rel=1e-12, abs=1e-9)


def _samples(app: InProcessApp, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    text = generate_latest(app.metrics.registry).decode()
    return {
        tuple(sorted(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == name
    }


async def test_outcomes_by_id_join_the_serving_variant_and_equal_numpy(served) -> None:
    await served.change(start_experiment)
    rng = np.random.default_rng(3)
    sent: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    items = []
    for i in range(60):
        version = await predict(served.http, f"r-{i}", version=("1.0.0", "1.1.0")[i % 2])
        revenue, conversion = round(float(rng.gamma(2.0, 6.0)), 2), int(rng.random() < 0.3)
        sent[version]["revenue"].append(revenue)
        sent[version]["conversion"].append(conversion)
        items.append({"id": f"r-{i}", "outcomes": {"revenue": revenue, "conversion": conversion}})
    answer = await served.http.post(FEEDBACK, json=items)
    assert answer.status_code == 200, answer.text
    assert answer.json()["outcomes"] == {
        "accepted": 120,
        "duplicate": 0,
        "unknown": [],
        "expired": 0,
        "invalid": [],
    }
    # the label fields are there, untouched
    assert answer.json()["accepted"] == 0 and answer.json()["labelled_rows"] == 0
    found = await served.state.registry.outcome_moments("exp-1", "clf")
    assert set(found) == {"revenue", "conversion"}
    for version in ("1.0.0", "1.1.0"):
        for metric in ("revenue", "conversion"):
            _assert_moments(found[metric][version], sent[version][metric])
    accepted = _samples(served, "modelgate_experiment_outcomes_total")
    key = (("metric", "revenue"), ("model", "clf"), ("version", "1.1.0"))
    assert accepted[key] == 30


async def test_an_outcome_counts_once_and_a_label_still_follows(served) -> None:
    await served.change(start_experiment)
    version = await predict(served.http, "r-1", version="1.1.0")
    await predict(served.http, "r-2", version="1.0.0")
    first = await served.http.post(FEEDBACK, json={"id": "r-1", "outcomes": {"revenue": 5.0}})
    assert first.json()["outcomes"]["accepted"] == 1
    again = [
        {"id": "r-1", "outcomes": {"revenue": 7.0}},  # already recorded
        {"id": "r-2", "outcomes": {"revenue": 1.0}},
        {"id": "r-2", "outcomes": {"revenue": 2.0}},  # the same (id, metric) in one body
    ]
    second = (await served.http.post(FEEDBACK, json=again)).json()["outcomes"]
    assert (second["accepted"], second["duplicate"]) == (1, 2)
    found = await served.state.registry.outcome_moments("exp-1", "clf")
    assert found["revenue"] == {version: (1, 5.0, 25.0), "1.0.0": (1, 1.0, 1.0)}
    # the outcome lookup did not mark the request: its label is accepted, with an outcome
    both = await served.http.post(
        FEEDBACK, json={"id": "r-1", "label": 1, "outcomes": {"conversion": 1}}
    )
    assert both.json()["accepted"] == 1 and both.json()["outcomes"]["accepted"] == 1
    dropped = _samples(served, "modelgate_outcomes_dropped_total")
    assert dropped[(("model", "clf"), ("reason", "duplicate"))] == 2


async def test_outcomes_by_routing_key_go_to_the_sticky_variant(served) -> None:
    await served.change(start_experiment)
    sent: dict[str, list[float]] = defaultdict(list)
    items = []
    for i in range(40):
        key = f"user-{i}"
        version = await predict(served.http, f"k-{i}", key=key)
        value = float(i % 7)
        sent[version].append(value)
        items.append({"routing_key": key, "outcomes": {"revenue": value}})
    assert len(sent) == 2  # both variants served some keys
    answer = (await served.http.post(FEEDBACK, json=items)).json()
    assert answer["outcomes"]["accepted"] == 40
    assert answer["accepted"] == 0 and answer["unknown"] == []
    found = await served.state.registry.outcome_moments("exp-1", "clf")
    for version, values in sent.items():
        _assert_moments(found["revenue"][version], values)
    # a user's outcome counts once per experiment
    again = (await served.http.post(FEEDBACK, json=items[:3])).json()["outcomes"]
    assert (again["accepted"], again["duplicate"]) == (0, 3)


async def test_unknown_expired_and_invalid_outcomes_are_reported_per_item(served) -> None:
    await served.change(start_experiment)
    for i in range(3):
        await predict(served.http, f"v-{i}", version="1.0.0")
    items = [
        {"id": "v-0", "outcomes": {"conversion": 2, "revenue": 3.5}},  # binary 2: invalid
        {"id": "v-1", "outcomes": {"revenue": "NaN"}},
        {"id": "v-1", "outcomes": {"clicks": 4}},  # not a metric of the experiment
        {"id": "v-2", "outcomes": {"p95_latency_ms": 12.0}},  # the gateway measures it
        {"id": "never-served", "outcomes": {"conversion": 1, "revenue": 1.0}},
    ]
    answer = await served.http.post(FEEDBACK, json=items)
    assert answer.status_code == 200, answer.text
    outcomes = answer.json()["outcomes"]
    assert outcomes["accepted"] == 1  # v-0's revenue
    assert outcomes["unknown"] == ["never-served"]
    invalid = {(e["id"], e["metric"]): e["error"] for e in outcomes["invalid"]}
    assert set(invalid) == {
        ("v-0", "conversion"),
        ("v-1", "revenue"),
        ("v-1", "clicks"),
        ("v-2", "p95_latency_ms"),
    }
    assert "0 or 1" in invalid[("v-0", "conversion")]
    assert "not a finite number" in invalid[("v-1", "revenue")]
    assert "not a metric of experiment exp-1" in invalid[("v-1", "clicks")]
    assert "measured by the gateway" in invalid[("v-2", "p95_latency_ms")]
    found = await served.state.registry.outcome_moments("exp-1", "clf")
    assert found == {"revenue": {"1.0.0": (1, 3.5, 12.25)}}

    # a week and a second later the same requests' outcomes are late
    store = served.state.feedback
    window = served.state.settings.outcome_window_s
    store.clock = lambda: time.time() + window + 1
    late = await served.http.post(FEEDBACK, json={"id": "v-2", "outcomes": {"revenue": 1}})
    assert late.json()["outcomes"]["expired"] == 1 and late.json()["outcomes"]["accepted"] == 0
    dropped = _samples(served, "modelgate_outcomes_dropped_total")
    assert dropped[(("model", "clf"), ("reason", "invalid"))] == 4
    assert dropped[(("model", "clf"), ("reason", "unknown"))] == 2
    assert dropped[(("model", "clf"), ("reason", "expired"))] == 1


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b'[{"id": "m-0", "outcomes": {"revenue": 1}}, {"id": "m-0"}]', "'label' is missing"),
        (b'{"id": "m-0", "outcomes": [1, 2]}', "'outcomes' must be an object"),
        (b'{"routing_key": "u", "label": 1}', "'id' must be the request id"),
        (b'{"routing_key": ""}', "'routing_key' must be a non-empty string"),
        (b'{"id": "m-0", "routing_key": "u", "outcomes": {"revenue": 1}}', "not both"),
        (b'{"routing_key": "u"}', "'outcomes' is missing"),
    ],
)
async def test_a_malformed_body_is_400_and_records_nothing(served, body, fragment) -> None:
    await served.change(start_experiment)
    await predict(served.http, "m-0", version="1.0.0")
    response = await served.http.post(FEEDBACK, content=body)
    assert response.status_code == 400 and fragment in response.json()["error"]
    assert await served.state.registry.outcome_moments("exp-1", "clf") == {}


async def test_without_an_experiment_outcomes_feed_the_production_baseline(served) -> None:
    values = [12.5, 3.0, 0.0, 7.25]
    for i in range(len(values)):
        assert await predict(served.http, f"b-{i}") == "1.0.0"  # production
    items = [{"id": f"b-{i}", "outcomes": {"revenue": v}} for i, v in enumerate(values)]
    items.append({"routing_key": "user-1", "outcomes": {"revenue": 1.0}})  # no experiment
    answer = (await served.http.post(FEEDBACK, json=items)).json()["outcomes"]
    assert answer["accepted"] == 4 and answer["unknown"] == ["user-1"]
    registry = served.state.registry
    day = datetime.now(UTC).strftime("%Y-%m-%d")
    found = await registry.outcome_moments(f"baseline:{day}", "clf")
    _assert_moments(found["revenue"]["1.0.0"], values)
    _assert_moments(await registry.baseline_moments("clf", "1.0.0", "revenue", 7), values)
    # a request served before the experiment started stays in the baseline
    await predict(served.http, "b-early")
    await served.change(start_experiment)
    late = await served.http.post(FEEDBACK, json={"id": "b-early", "outcomes": {"revenue": 2.0}})
    assert late.json()["outcomes"]["accepted"] == 1
    assert await registry.outcome_moments("exp-1", "clf") == {}
    _assert_moments(await registry.baseline_moments("clf", "1.0.0", "revenue", 1), [*values, 2.0])


async def test_a_failed_commit_is_503_and_records_nothing(served) -> None:
    await served.change(start_experiment)
    await predict(served.http, "f-0", version="1.0.0")
    state = served.state
    await state.running_experiments.refresh()
    registry = state.registry
    closed = await open_registry(HomePaths(state.settings.home))
    await closed.close()
    state.registry = closed  # what the sink sees when the database is gone
    try:
        body = {"id": "f-0", "label": 1, "outcomes": {"revenue": 4.0}}
        response = await served.http.post(FEEDBACK, json=body)
    finally:
        state.registry = registry
    assert response.status_code == 503 and "outcomes not recorded" in response.json()["error"]
    assert state.feedback.labelled_count("clf") == 0  # the label waited for the commit
    assert await registry.outcome_moments("exp-1", "clf") == {}
    retry = await served.http.post(FEEDBACK, json=body)
    assert retry.json()["accepted"] == 1 and retry.json()["outcomes"]["accepted"] == 1


async def test_assignments_count_routed_requests_per_variant(served) -> None:
    await served.change(start_experiment)
    upkeep = served.state.experiment_upkeep
    await upkeep.tick()  # this worker sees the experiment: counting starts now
    served_by: dict[str, int] = defaultdict(int)
    for i in range(30):
        served_by[await predict(served.http, f"a-{i}", key=f"user-{i}")] += 1
    for i in range(5):  # pinned requests are not assignments
        await predict(served.http, f"p-{i}", version="1.1.0")
    served.state.monitoring.flush()
    await upkeep.flush()
    await upkeep.flush()  # nothing new: adds nothing
    assert await served.state.registry.assignments("exp-1") == dict(served_by)
