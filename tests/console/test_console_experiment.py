"""The console's A/B experiment section and its start / stop actions: the data, fragment and
forms through the real app, and in a real headless Chromium against ``modelgate serve
--workers 2`` (the leader's looks and an operator's stop appear without a reload; an
experiment started and stopped in the page, a refused start shown in words)."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from html.parser import HTMLParser
from typing import Any

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
    assert "<dd>1.0.0 50 %, 1.1.0 50 %</dd>" in html  # whole percents keep their zeros


class _Controls(HTMLParser):
    """The attributes of every element with an id, and the options of every select."""

    def __init__(self) -> None:
        super().__init__()
        self.by_id: dict[str, dict[str, str | None]] = {}
        self.options: dict[str, list[str]] = {}
        self._select: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if "id" in found:
            self.by_id[str(found["id"])] = {"tag": tag, **found}
        if tag == "select":
            self._select = str(found["id"])
            self.options[self._select] = []
        elif tag == "option" and self._select is not None:
            self.options[self._select].append(str(found["value"]))

    def handle_endtag(self, tag: str) -> None:
        if tag == "select":
            self._select = None


async def test_the_model_page_has_the_start_and_stop_forms_with_defaults(gw) -> None:
    page = (await gw.get("/console/models/clf")).text
    assert 'data-action="experiment-start"' in page and 'data-action="experiment-stop"' in page
    controls = _Controls()
    controls.feed(page)
    field = controls.by_id
    assert "required" in field["experiment-start-variants"]
    assert field["experiment-start-metrics"]["value"] == "conversion:binary"
    assert "required" not in field["experiment-start-baselines"]
    assert field["experiment-start-mde"]["value"] == "0.05"
    assert controls.options["experiment-start-mde-kind"] == ["relative", "absolute"]
    assert field["experiment-start-alpha"]["value"] == "0.05"
    assert field["experiment-start-power"]["value"] == "0.8"
    promote = field["experiment-start-promote"]
    assert promote["type"] == "checkbox" and "checked" not in promote
    for action in ("experiment-start", "experiment-stop"):
        assert "required" in field[f"{action}-reason"]  # the audit reason, as everywhere
    stop_form = page.split('data-action="experiment-stop"', 1)[1].split("</form>", 1)[0]
    assert '<button type="submit" class="danger">Stop experiment</button>' in stop_form


async def test_the_bodies_the_page_sends_start_and_stop_an_experiment(gw) -> None:
    # exactly what console.js builds from the form's defaults, and the fields it reads back
    headers = {**AUTH, "x-actor": "console"}
    body = {
        "variants": {"1.0.0": 50, "1.1.0": 50},
        "metrics": [{"name": "conversion", "kind": "binary", "baseline": 0.1}],
        "mde": 0.05,
        "mde_kind": "relative",
        "promote_winner": False,
        "reason": "new features",
        "alpha": 0.05,
        "power": 0.8,
    }
    started = await gw.post("/admin/models/clf/experiment", json=body, headers=headers)
    assert started.status_code == 200, started.text
    view = started.json()
    assert view["control"] == "1.0.0" and view["plan"]["n_per_variant"] > 0
    assert [r["weight"] for r in view["traffic"]["routes"]] == [50.0, 50.0]
    assert view["started_by"] == "admin-api:console"
    stopped = await gw.request(
        "DELETE", "/admin/models/clf/experiment", json={"reason": "enough"}, headers=headers
    )
    assert stopped.status_code == 200, stopped.text
    view = stopped.json()
    assert view["verdict"]["outcome"] == "stopped_by_operator" and view["promotion"] is None
    assert view["traffic"]["routes"] == [{"version": "1.0.0", "weight": 100.0}]


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


@contextmanager
def chromium(tmp_path) -> Iterator[tuple[Any, Any]]:
    """The browser test module's headless Chromium (its own setup) and that module."""
    browser_tests = pytest.importorskip("tests.console.test_console_browser")
    if browser_tests.CHROMIUM is None or browser_tests.DRIVER is None:
        pytest.skip("Debian's chromium and chromium-driver are not installed")
    session = browser_tests.browser.__wrapped__(tmp_path)
    driver = next(session)
    try:
        yield driver, browser_tests
    finally:
        session.close()  # quits the browser


@pytest.mark.slow
def test_the_section_follows_the_leaders_looks_and_a_stop(server, tmp_path, zoo_home) -> None:
    started = httpx.post(
        f"{server.url}/admin/models/clf/experiment", json=START, headers=server.auth, timeout=30
    )
    assert started.status_code == 200, started.text
    experiment = started.json()["id"]
    _outcomes(zoo_home, experiment)
    with chromium(tmp_path) as (driver, browser_tests):
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


@pytest.mark.slow
def test_an_experiment_started_and_stopped_in_the_page(server, tmp_path) -> None:
    with chromium(tmp_path) as (driver, bt):
        from selenium.webdriver.common.by import By
        from selenium.webdriver.common.keys import Keys

        def field(ident: str):
            return driver.find_element(By.ID, ident)

        def result_shows(text: str, message: str) -> str:
            bt.wait_for(driver, lambda d: text in bt.text_of(d, "action-result"), message)
            return bt.text_of(driver, "action-result")

        def bar(label: str) -> None:
            selector = f'#traffic svg[aria-label="traffic: {label}"]'
            bt.wait_for(
                driver,
                lambda d: d.find_elements(By.CSS_SELECTOR, selector),
                f"the traffic section never showed {label}",
            )

        driver.get(f"{server.url}/console/models/clf")
        bt.enter_token(driver, TOKEN)
        bt.wait_for(
            driver,
            lambda d: "No experiment has run" in bt.text_of(d, "experiment"),
            "the experiment section did not load",
        )
        # the variants default to production against the staging version
        bt.wait_for(
            driver,
            lambda d: field("experiment-start-variants").get_attribute("value"),
            "the variants were not filled in",
        )
        assert field("experiment-start-variants").get_attribute("value") == "1.0.0=50, 1.1.0=50"
        field("experiment-start-baselines").send_keys("conversion=0.1")

        # bad input: the API's 400 in the result line, nothing started, no page error
        field("experiment-start-variants").clear()
        field("experiment-start-variants").send_keys("1.0.0=50, 1.1.0=40")
        field("experiment-start-reason").send_keys("new ranking features" + Keys.ENTER)
        result_shows(
            "Bad input (400): variants: the weights must sum to 100, got 90",
            "the refused weights were not shown",
        )
        assert field("action-result").get_attribute("class") == "result error"
        field("experiment-start-variants").clear()
        field("experiment-start-variants").send_keys("1.0.0=50, 1.1.0=50")
        field("experiment-start-metrics").clear()
        field("experiment-start-metrics").send_keys("conversion:binry" + Keys.ENTER)
        result_shows(
            "Bad input (400): metrics['conversion'].kind must be one of binary, continuous, "
            "guardrail, got 'binry'",
            "the unknown metric kind was not shown",
        )
        # text the script cannot split into a body is refused in the page, as for weights
        field("experiment-start-baselines").send_keys("=x" + Keys.ENTER)
        result_shows("write the baselines as name=rate", "the unreadable baseline passed")
        field("experiment-start-baselines").clear()
        field("experiment-start-baselines").send_keys("conversion=0.1")
        assert bt.text_of(driver, "load-error") == ""
        assert "No experiment has run" in bt.text_of(driver, "experiment")

        # the start, keyboard only: fix the kind, tick "promote the winner", Enter
        field("experiment-start-metrics").clear()
        field("experiment-start-metrics").send_keys("conversion:binary")
        field("experiment-start-promote").send_keys(Keys.SPACE)
        field("experiment-start-reason").send_keys(Keys.ENTER)
        started = result_shows("started", "no start result shown")
        assert "traffic 1.0.0 50 %, 1.1.0 50 % (control 1.0.0" in started
        bt.wait_for(
            driver,
            lambda d: "1.0.0 50 %, 1.1.0 50 %" in bt.text_of(d, "experiment"),
            "the experiment section never showed the variants",
        )
        section = bt.text_of(driver, "experiment")
        assert "running" in section and "No experiment has run" not in section
        bar("1.0.0 50 %, 1.1.0 50 %")
        record = httpx.get(
            f"{server.url}/admin/models/clf/experiment", headers=server.auth, timeout=30
        ).json()
        assert record["status"] == "running" and record["id"] in started
        assert record["promote_winner"] is True and record["reason"] == "new ranking features"
        assert record["started_by"] == "admin-api:console"
        assert record["variants"] == {"1.0.0": 50.0, "1.1.0": 50.0}

        # the stop: the verdict in the section, production's traffic back
        field("experiment-stop-reason").send_keys("seen enough" + Keys.ENTER)
        stopped = result_shows("stopped_by_operator", "no stop result shown")
        assert f"Experiment {record['id']} stopped" in stopped and "traffic 1.0.0 100 %" in stopped
        bt.wait_for(
            driver,
            lambda d: "stopped_by_operator" in bt.text_of(d, "experiment"),
            "the experiment section never showed the verdict",
        )
        assert "seen enough" in bt.text_of(driver, "experiment")
        bar("1.0.0 100 %")
        traffic = httpx.get(
            f"{server.url}/admin/models/clf/traffic", headers=server.auth, timeout=30
        ).json()
        assert traffic["routes"] == [{"version": "1.0.0", "weight": 100.0}]
        # a second stop is refused in words
        field("experiment-stop-reason").send_keys("again" + Keys.ENTER)
        result_shows("Refused (409)", "the refused second stop was not shown")
        assert "already stopped" in bt.text_of(driver, "action-result")
        # Chromium logs the refused responses themselves (two 400s, one 409); nothing else
        entries = bt.severe_entries(driver)
        refused = [e["message"] for e in entries if e.get("source") == "network"]
        assert len(refused) == 3 and all("/admin/models/clf/experiment" in m for m in refused)
        assert [e for e in entries if e.get("source") != "network"] == []
