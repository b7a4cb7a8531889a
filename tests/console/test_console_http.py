"""The console's pages, files and data through the real app (no browser): auth, CSP,
public mode, escaping, and the data matching the admin API."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import httpx
import pytest

from gateway.app import create_app
from gateway.console.pages import CSP
from gateway.console.render import overview_html, traffic_html
from gateway.settings import Settings

TOKEN = "console-test-token"
AUTH = {"authorization": f"Bearer {TOKEN}"}


async def _client(home, **settings) -> AsyncIterator[httpx.AsyncClient]:
    config = Settings.from_environ(os.environ, home=str(home), admin_token=TOKEN, **settings)
    app = create_app(config)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gw") as http:
            yield http


@pytest.fixture
async def gw(zoo_home) -> AsyncIterator[httpx.AsyncClient]:
    async for http in _client(zoo_home, poll_interval_ms=20):
        yield http


@pytest.fixture
async def public_gw(zoo_home) -> AsyncIterator[httpx.AsyncClient]:
    async for http in _client(zoo_home, console_public=True):
        yield http


async def test_pages_are_shells_with_a_strict_csp(gw) -> None:
    for path in ("/console", "/console/models/clf"):
        page = await gw.get(path)
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        assert page.headers["content-security-policy"] == CSP
        assert "script-src 'self';" in CSP and "unsafe-inline" not in CSP
        text = page.text
        # no inline script or style, no data without the token, the one script is ours
        assert "<script>" not in text and "<style" not in text and " style=" not in text
        assert '<script src="/console/static/console.js" defer></script>' in text
        assert "onclick" not in text and "javascript:" not in text
        assert 'data-public="off"' in text
    model = (await gw.get("/console/models/clf")).text
    for action in ("rollback", "promote", "traffic", "shadow-add", "shadow-remove"):
        assert f'data-action="{action}"' in model
    assert 'data-action="rollout-start"' in model and 'data-action="rollout-cancel"' in model
    assert 'data-action="experiment-start"' in model and 'data-action="experiment-stop"' in model


async def test_an_unknown_model_page_is_a_404_that_echoes_no_markup(gw) -> None:
    page = await gw.get("/console/models/%3Cimg%20src%3Dx%20onerror%3Dalert(1)%3E")
    assert page.status_code == 404
    assert page.headers["content-type"] == "application/json"
    assert "img" in page.json()["error"]


async def test_static_files_ship_in_the_package(gw) -> None:
    script = await gw.get("/console/static/console.js")
    assert script.status_code == 200
    assert script.headers["content-type"].startswith("text/javascript")
    assert "sessionStorage" in script.text and "Authorization" in script.text
    assert "document.cookie" not in script.text
    css = await gw.get("/console/static/console.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    icon = await gw.get("/console/static/favicon.svg")
    assert icon.status_code == 200 and icon.headers["content-type"] == "image/svg+xml"
    missing = await gw.get("/console/static/secrets.txt")
    assert missing.status_code == 404 and missing.json() == {"error": "no such console file"}
    assert (await gw.get("/console/static/..%2Fpages.py")).status_code == 404


async def test_data_needs_the_token(gw) -> None:
    for path in ("/console/api/overview", "/console/api/models/clf"):
        anonymous = await gw.get(path)
        assert anonymous.status_code == 401
        assert anonymous.json() == {"error": "missing or invalid admin bearer token"}
        wrong = await gw.get(path, headers={"authorization": "Bearer nope"})
        assert wrong.status_code == 401
        # the token travels only as a header: a query parameter is not accepted
        assert (await gw.get(path, params={"token": TOKEN})).status_code == 401
        ok = await gw.get(path, headers=AUTH)
        assert ok.status_code == 200, ok.text
        assert ok.headers["cache-control"] == "no-store"


async def test_overview_data_matches_the_admin_api(gw) -> None:
    answer = (await gw.get("/console/api/overview", headers=AUTH)).json()
    admin = (await gw.get("/admin/models", headers=AUTH)).json()
    assert [m["name"] for m in answer["data"]["models"]] == [m["name"] for m in admin["models"]]
    clf = next(m for m in answer["data"]["models"] if m["name"] == "clf")
    assert clf["production_version"] == "1.0.0"
    assert clf["traffic"] == [{"version": "1.0.0", "weight": 100.0}]
    assert clf["rollout"] is None
    assert "healthy" in clf["health"] and isinstance(clf["health"]["reasons"], list)
    html = answer["html"]["models"]
    for m in admin["models"]:
        assert f'href="/console/models/{m["name"]}"' in html
    assert 'aria-label="traffic: 1.0.0 100 %"' in html


async def test_model_data_follows_a_traffic_change_and_names_its_audit_row(gw) -> None:
    change = {
        "routes": [{"version": "1.0.0", "weight": 70}, {"version": "1.1.0", "weight": 30}],
        "reason": "console test <b>split</b>",
    }
    put = await gw.put("/admin/models/clf/traffic", json=change, headers=AUTH)
    assert put.status_code == 200, put.text
    answer = (await gw.get("/console/api/models/clf", headers=AUTH)).json()
    data, fragments = answer["data"], answer["html"]
    assert data["traffic_split"] == [
        {"version": "1.0.0", "weight": 70.0},
        {"version": "1.1.0", "weight": 30.0},
    ]
    assert set(fragments) == {
        "versions", "traffic", "health", "drift", "confidence", "shadow", "rollout",
        "experiment", "audit",
    }  # fmt: skip
    assert 'aria-label="traffic: 1.0.0 70 %, 1.1.0 30 %"' in fragments["traffic"]
    assert data["audit"][0]["action"] == "traffic"
    # the reason is shown escaped, never as markup
    assert "console test &lt;b&gt;split&lt;/b&gt;" in fragments["audit"]
    assert "<b>split</b>" not in fragments["audit"]
    assert data["psi_thresholds"] == {"watch": 0.1, "drift": 0.2}


async def test_model_data_reports_drift_confidence_and_a_rollout(gw) -> None:
    rows = {"instances": [[0.5, -1.0, 0.25, 2.0]] * 50}
    for _ in range(6):
        assert (await gw.post("/predict/clf", json=rows)).status_code == 200
    started = await gw.post(
        "/admin/models/clf/rollout",
        json={"candidate": "1.1.0", "steps": [10, 100], "interval_s": 60},
        headers=AUTH,
    )
    assert started.status_code == 201, started.text
    answer = (await gw.get("/console/api/models/clf", headers=AUTH)).json()
    data, fragments = answer["data"], answer["html"]
    primary = next(v for v in data["drift"]["versions"] if v["primary"])
    assert primary["n_samples"] == 300
    assert len(primary["features"]) == 4
    assert fragments["drift"].count('<svg class="psi"') == len(primary["features"])
    hist = next(h for h in data["confidence"] if h["version"] == "1.0.0")
    assert hist["n"] == 300
    assert len(hist["reference"]) == len(hist["observed"]) == len(hist["edges"]) + 1
    assert abs(sum(x for x in hist["observed"] if x is not None) - 1.0) < 1e-9
    rollout = data["rollout"]
    assert rollout["running"] and rollout["candidate"] == "1.1.0"
    assert (rollout["step"], rollout["steps"], rollout["canary_weight"]) == (1, 2, 10.0)
    assert "<dt>step</dt><dd>1 of 2 (10 % → 100 %)</dd>" in fragments["rollout"]
    overview = (await gw.get("/console/api/overview", headers=AUTH)).json()
    clf = next(m for m in overview["data"]["models"] if m["name"] == "clf")
    assert clf["rollout"]["running"] and "step 1 of 2" in overview["html"]["models"]


async def test_unknown_model_data_is_a_404(gw) -> None:
    answer = await gw.get("/console/api/models/ghost", headers=AUTH)
    assert answer.status_code == 404
    assert "ghost" in answer.json()["error"]


async def test_public_mode_serves_data_without_the_token_but_not_actions(public_gw) -> None:
    page = await public_gw.get("/console")
    assert 'data-public="on"' in page.text
    assert (await public_gw.get("/console/api/overview")).status_code == 200
    assert (await public_gw.get("/console/api/models/clf")).status_code == 200
    assert (await public_gw.get("/console/api/models/ghost")).status_code == 404
    refused = await public_gw.post("/admin/models/clf/rollback", json={"reason": "x"})
    assert refused.status_code == 401
    assert (await public_gw.get("/admin/models")).status_code == 401


def test_fragments_escape_names_and_versions() -> None:
    data = {
        "models": [
            {
                "name": "<script>x</script>",
                "production_version": '"><b>',
                "traffic": [{"version": "<i>v</i>", "weight": 100.0}],
                "health": {"healthy": False, "reasons": ["<u>bad</u>"], "labelled": 0},
                "rollout": None,
            }
        ]
    }
    html = overview_html(data)
    assert "<script>" not in html and "<i>v</i>" not in html and "<u>" not in html
    assert "&lt;script&gt;x&lt;/script&gt;" in html and "&lt;u&gt;bad&lt;/u&gt;" in html
    assert 'href="/console/models/%3Cscript%3Ex%3C%2Fscript%3E"' in html
    detail = {
        "model": {
            "traffic": {"shadow": [{"version": "<s>", "sample": 0.5}], "challenger": None},
            "serving": {"primary": "<p>"},
            "production_version": "1",
            "rollback_target": None,
        },
        "traffic_split": [],
        "worker": {"pid": 1, "generation": 2},
    }
    rendered = traffic_html(detail)
    assert "<s>" not in rendered and "&lt;s&gt; (50 % sampled)" in rendered
