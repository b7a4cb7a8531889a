"""The console in a real headless Chromium (Selenium) against a real ``modelgate serve``
with two workers: the overview, live refresh, a refused token, a rollback pressed in the
page and served by every worker, a phone-sized window, and a clean browser log.

Needs Debian's ``chromium`` and ``chromium-driver`` (scripts/test.sh installs them as
root) and the ``selenium`` package; skipped with the reason otherwise.
``MODELGATE_CONSOLE_SCREENSHOTS=<folder>`` also saves the screenshots there (docs/).
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.gateway_process import GatewayProcess

webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed")
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None or DRIVER is None,
    reason="Debian's chromium and chromium-driver are not installed (scripts/test.sh "
    "installs them when it runs as root)",
)

TOKEN = "console-browser-token"
WAIT_S = 30  # the page refreshes every 5 s; a worker's watcher follows within 0.1 s


@pytest.fixture
def server(zoo_home, tmp_path) -> Iterator[GatewayProcess]:
    gateway = GatewayProcess(
        zoo_home,
        tmp_path / "serve.log",
        args=["--workers", "2"],
        env={"MODELGATE_POLL_INTERVAL_MS": "100", "MODELGATE_CONSOLE_PUBLIC": None},
        token=TOKEN,
    )
    try:
        yield gateway.wait_ready()
    finally:
        gateway.stop()


@pytest.fixture
def browser(tmp_path) -> Iterator[webdriver.Chrome]:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
        "--window-size=1366,900",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = webdriver.ChromeService(executable_path=DRIVER, log_output=str(tmp_path / "cd.log"))
    driver = webdriver.Chrome(options=options, service=service)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


def wait_for(driver, condition, message: str):
    return WebDriverWait(driver, WAIT_S, poll_frequency=0.2).until(condition, message)


def text_of(driver, element_id: str) -> str:
    return driver.find_element(By.ID, element_id).text


def enter_token(driver, token: str) -> None:
    field = wait_for(
        driver,
        lambda d: (
            d.find_element(By.ID, "token-input")
            if d.find_element(By.ID, "token-input").is_displayed()
            else None
        ),
        "the token form is not shown",
    )
    field.send_keys(token + Keys.ENTER)


def severe_entries(driver) -> list[dict]:
    return [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]


def screenshot(driver, tmp_path: Path, name: str) -> None:
    driver.save_screenshot(str(tmp_path / name))
    folder = os.environ.get("MODELGATE_CONSOLE_SCREENSHOTS")
    if folder:
        shutil.copy(tmp_path / name, Path(folder) / name)


def test_overview_lists_models_and_follows_an_api_change_without_reload(
    server, browser, tmp_path
) -> None:
    browser.get(f"{server.url}/console")
    enter_token(browser, TOKEN)
    wait_for(browser, lambda d: "clf" in text_of(d, "models"), "the overview lists no model")
    overview = text_of(browser, "models")
    for name in ("clf", "reg", "mixed"):
        assert (
            browser.find_element(By.LINK_TEXT, name)
            .get_attribute("href")
            .endswith(f"/console/models/{name}")
        )
    assert "1.0.0" in overview
    # the token stays in this tab's session storage, never in a cookie or the URL
    assert browser.execute_script("return sessionStorage.getItem('modelgate.adminToken')") == TOKEN
    assert browser.get_cookies() == []
    assert TOKEN not in browser.current_url
    browser.execute_script("window.__notReloaded = true")
    change = {"routes": [{"version": "1.0.0", "weight": 70}, {"version": "1.1.0", "weight": 30}]}
    put = httpx.put(f"{server.url}/admin/models/clf/traffic", json=change, headers=server.auth)
    assert put.status_code == 200, put.text
    wait_for(
        browser,
        lambda d: d.find_elements(
            By.CSS_SELECTOR, 'svg[aria-label="traffic: 1.0.0 70 %, 1.1.0 30 %"]'
        ),
        "the traffic change did not appear",
    )
    assert browser.execute_script("return window.__notReloaded === true")
    screenshot(browser, tmp_path, "console-overview.png")
    # a phone: nothing wider than the screen
    browser.set_window_size(390, 844)
    time.sleep(0.3)
    assert browser.execute_script(
        "return document.documentElement.scrollWidth <= window.innerWidth + 1"
    )
    assert severe_entries(browser) == []


def test_a_wrong_token_shows_an_error_and_is_not_kept(server, browser) -> None:
    browser.get(f"{server.url}/console")
    enter_token(browser, "not-the-token")
    wait_for(browser, lambda d: "refused" in text_of(d, "token-error"), "no token error shown")
    assert "401" in text_of(browser, "token-error")
    assert browser.execute_script("return sessionStorage.getItem('modelgate.adminToken')") is None
    assert "clf" not in text_of(browser, "models")
    # the right token afterwards loads the data
    enter_token(browser, TOKEN)
    wait_for(browser, lambda d: "clf" in text_of(d, "models"), "the overview lists no model")


def _served_versions(server: GatewayProcess, n: int = 40) -> set[str]:
    seen = set()
    for _ in range(n):
        reply = server.fresh("POST", "/predict/clf", json={"instances": [[0.5, -1.0, 0.25, 2.0]]})
        assert reply.status_code == 200, reply.text
        seen.add(reply.headers["x-model-version"])
    return seen


def test_rollback_pressed_in_the_page_is_audited_and_served_by_every_worker(
    server, browser, tmp_path
) -> None:
    # production 1.1.0 with 1.0.0 as the rollback target, made through the API
    switched = httpx.post(
        f"{server.url}/admin/models/clf/switch",
        json={"version": "1.1.0", "reason": "set up the rollback"},
        headers=server.auth,
        timeout=30,
    )
    assert switched.status_code == 200, switched.text
    deadline = time.monotonic() + WAIT_S
    while _served_versions(server) != {"1.1.0"}:
        assert time.monotonic() < deadline, "the workers never served the switch"
        time.sleep(0.2)
    for _ in range(4):  # some predictions, so health and drift have a window to show
        server.fresh("POST", "/predict/clf", json={"instances": [[0.5, -1.0, 0.25, 2.0]] * 64})

    browser.get(f"{server.url}/console/models/clf")
    enter_token(browser, TOKEN)
    wait_for(browser, lambda d: "1.1.0" in text_of(d, "versions"), "the versions did not load")
    wait_for(browser, lambda d: "features" in text_of(d, "drift"), "the drift did not load")
    browser.set_window_size(1366, 3200)  # the page with every action form
    screenshot(browser, tmp_path, "console-model.png")

    # keyboard only: the reason field, then Enter submits the rollback form
    reason = browser.find_element(By.ID, "rollback-reason")
    reason.send_keys("canary looked wrong at 3 am" + Keys.ENTER)
    wait_for(
        browser,
        lambda d: "Rolled back" in text_of(d, "action-result"),
        "no rollback result shown",
    )
    assert "production is 1.0.0" in text_of(browser, "action-result")

    model = httpx.get(f"{server.url}/admin/models/clf", headers=server.auth).json()
    assert model["production_version"] == "1.0.0"
    audit = httpx.get(
        f"{server.url}/admin/audit",
        params={"model": "clf", "action": "rollback", "limit": 1},
        headers=server.auth,
    ).json()
    assert audit["entries"][0]["reason"] == "canary looked wrong at 3 am"
    assert audit["entries"][0]["actor"] == "admin-api:console"
    wait_for(
        browser,
        lambda d: "canary looked wrong at 3 am" in text_of(d, "audit"),
        "the audit row did not appear in the page",
    )
    # every worker serves the rolled-back production (fresh connections spread over them)
    deadline = time.monotonic() + WAIT_S
    while _served_versions(server) != {"1.0.0"}:
        assert time.monotonic() < deadline, "a worker still serves 1.1.0"
        time.sleep(0.2)
    assert severe_entries(browser) == []


def test_a_refused_promotion_is_shown_in_words(server, browser) -> None:
    browser.get(f"{server.url}/console/models/clf")
    enter_token(browser, TOKEN)
    wait_for(browser, lambda d: "2.0.0" in text_of(d, "versions"), "the versions did not load")
    browser.find_element(By.ID, "promote-version").send_keys("2.0.0")
    browser.find_element(By.ID, "promote-reason").send_keys("try the new one" + Keys.ENTER)
    wait_for(
        browser,
        lambda d: "Refused (409)" in text_of(d, "action-result"),
        "no refusal shown",
    )
    production = httpx.get(f"{server.url}/admin/models/clf", headers=server.auth).json()
    assert production["production_version"] == "1.0.0"
