"""The console's A/B experiment section: its data and fragment through the real app, and in
a real headless Chromium against ``modelgate serve --workers 2`` (the leader's looks and an
operator's stop appear without a reload)."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from gateway.app import create_app
from gateway.console.render import experiment_html
from gateway.settings import Settings
from registry.outcomes import OutcomeRow
from registry.sqlite.store import open_registry
from tests.support.gateway_process import GatewayProcess

TOKEN = "console-test-token"
AUTH = {"authorization": f"Bearer {TOKEN}"}
START = {
    "variants": {"1.0.0": 50, "1.1.0": 50},
    "metrics": [{"name": "conversion", "kind": "binary", "baseline": 0.1}],
    "mde": 0.5,
}


@pytest.fixture
async def gw(zoo_home) -> AsyncIterator[httpx.AsyncClient]:
    config = Settings.from_environ(os.environ, home=str(zoo_home), admin_token=TOKEN)
    app = create_app(config)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gw") as http:
            yield http


def _outcomes(home, experiment: str) -> None:
    async def write() -> None:
        registry = await open_registry(home)
        try:
            rows = [
                OutcomeRow(f"id:{v}-{i}", "conversion", experiment, v, float(i % 10 == 0))
                for v in ("1.0.0", "1.1.0")
                for i in range(150)
            ]
            await registry.add_outcomes("clf", rows)
            await registry.add_assignments(experiment, {"1.0.0": 150, "1.1.0": 150})
        finally:
            await registry.close()

    asyncio.run(write())


async def test_model_data_carries_the_experiment_and_its_section(gw) -> None:
    page = (await gw.get("/console/models/clf")).text
    assert 'id="experiment"' in page and "A/B experiment" in page
    empty = (await gw.get("/console/api/models/clf", headers=AUTH)).json()
    assert empty["data"]["experiment"] is None
    assert "No experiment has run" in empty["html"]["experiment"]
    started = await gw.post("/admin/models/clf/experiment", json=START, headers=AUTH)
    assert started.status_code == 200, started.text
    answer = (await gw.get("/console/api/models/clf", headers=AUTH)).json()
    experiment = answer["data"]["experiment"]
    assert experiment["id"] == started.json()["id"] and experiment["status"] == "running"
    fragment = answer["html"]["experiment"]
    assert f"<dd>{experiment['id']}</dd>" in fragment and "No look yet." in fragment


def test_the_fragment_shows_numbers_and_escapes() -> None:
    detail = {
        "experiment": {
            "id": "<b>x</b>",
            "status": "stopped",
            "variants": {"1.0.0": 50.0, "1.1.0": 50.0},
            "control": "1.0.0",
            "plan": {"n_per_variant": 1234, "duration_days": 2.5},
            "started_at": 1.7e9,
            "started_by": "ops",
            "looks": 3,
            "verdict": {"outcome": "winner", "reason": "1.1.0 wins", "winner": "1.1.0"},
            "promotion": {"status": "refused"},
            "results": {
                "assignments": {"1.0.0": 1300, "1.1.0": 1290},
                "srm": {"p_value": 0.84},
                "metrics": {
                    "conversion": {
                        "variants": {
                            "1.0.0": {"n": 1300, "mean": 0.1, "lower": 0.08, "upper": 0.12},
                            "1.1.0": {"n": 1290, "mean": 0.2, "lower": 0.18, "upper": 0.22},
                        },
                        "difference": {"estimate": 0.1, "p_value": 0.0001},
                        "outcome": "winner",
                    }
                },
            },
        }
    }
    html = experiment_html(detail)
    assert "<b>x</b>" not in html and "&lt;b&gt;x&lt;/b&gt;" in html
    assert "1234 rows per variant, about 2.500 days" in html
    assert "0.2000" in html and "0.180 … 0.220" in html and "winner: 1.1.0 wins" in html
    assert "refused" in html and "sample-ratio p = 0.840" in html


# --- the real browser ---------------------------------------------------------------
@pytest.fixture
def server(zoo_home, tmp_path) -> Iterator[GatewayProcess]:
    gateway = GatewayProcess(
        zoo_home,
        tmp_path / "serve.log",
        args=["--workers", "2"],
        env={
            "MODELGATE_POLL_INTERVAL_MS": "100",
            "MODELGATE_EXPERIMENT_INTERVAL_S": "0.5",
            "MODELGATE_CONSOLE_PUBLIC": None,
        },
        token=TOKEN,
    )
    try:
        yield gateway.wait_ready()
    finally:
        gateway.stop()


@pytest.mark.slow
def test_the_section_follows_the_leaders_looks_and_a_stop(server, tmp_path, zoo_home) -> None:
    browser_tests = pytest.importorskip("tests.console.test_console_browser")
    if browser_tests.CHROMIUM is None or browser_tests.DRIVER is None:
        pytest.skip("Debian's chromium and chromium-driver are not installed")
    started = httpx.post(
        f"{server.url}/admin/models/clf/experiment", json=START, headers=server.auth, timeout=30
    )
    assert started.status_code == 200, started.text
    experiment = started.json()["id"]
    _outcomes(zoo_home, experiment)
    session = browser_tests.browser.__wrapped__(tmp_path)  # the browser test's own setup
    driver = next(session)
    try:
        driver.get(f"{server.url}/console/models/clf")
        browser_tests.enter_token(driver, TOKEN)
        region = "experiment"
        browser_tests.wait_for(
            driver, lambda d: experiment in browser_tests.text_of(d, region), "no experiment"
        )
        browser_tests.wait_for(
            driver,
            lambda d: "150" in browser_tests.text_of(d, region),
            "the leader's look never showed its per-variant numbers",
        )
        stopped = httpx.request(
            "DELETE",
            f"{server.url}/admin/models/clf/experiment",
            json={"reason": "seen enough"},
            headers=server.auth,
            timeout=30,
        )
        assert stopped.status_code == 200, stopped.text
        browser_tests.wait_for(
            driver,
            lambda d: "stopped_by_operator" in browser_tests.text_of(d, region),
            "the stop did not appear without a reload",
        )
        assert "seen enough" in browser_tests.text_of(driver, region)
        deadline = time.monotonic() + browser_tests.WAIT_S
        while (
            "stopped"
            not in httpx.get(
                f"{server.url}/console/api/models/clf", headers=server.auth, timeout=30
            ).text
        ):
            assert time.monotonic() < deadline
            time.sleep(0.2)
        assert browser_tests.severe_entries(driver) == []
    finally:
        session.close()  # quits the browser
