"""End to end in headless Chromium against the live pipeline: charts have points, z-score moves, alerts reach the gateway.

A screenshot of every page goes to test-artifacts/screenshots/ (and to DASHBOARD_SCREENSHOTS_DIR when
set: ``make screenshots`` points it at docs/screenshots/).
"""

from __future__ import annotations

import os
import shutil
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from services.dashboard import ids
from tests.dashboard.conftest import ARTIFACTS
from tests.dashboard.stack import TOKEN

pytestmark = [pytest.mark.browser, pytest.mark.slow]

PAGES = {"live": "/?timeframe=1s", "methods": "/methods?timeframe=1s", "universe": "/universe?timeframe=1s",
         "alerts": "/alerts", "backtest": "/backtest?timeframe=1s", "data": "/data?timeframe=1s", "system": "/system"}  # fmt: skip
TRACE_LENGTH = """
const g = document.querySelector('#' + arguments[0] + ' .js-plotly-plot');
if (!g || !g.data || !g.data[arguments[1]] || !g.data[arguments[1]].x) { return -1; }
const x = g.data[arguments[1]].x;
return [x.length, String(x[x.length - 1])];
"""


def wait_for(check: Callable[[], object], timeout: float, what: str,
             shown: Callable[[], object] | None = None) -> object:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.25)
    seen = f"; the page shows: {shown()!r}" if shown else ""
    raise AssertionError(f"timed out after {timeout} s waiting for {what} (last: {last!r}){seen}")


def text_of(driver, element_id: str) -> str:
    """The element's text, or "" while the page has not rendered it yet."""
    found = driver.find_elements("id", element_id)
    return found[0].text if found else ""


def replace_text(element, text: str) -> None:
    """Select-all + type: ``clear()`` does not reach React's state of a Dash input."""
    from selenium.webdriver.common.keys import Keys

    element.send_keys(Keys.CONTROL, "a")
    element.send_keys(Keys.DELETE)
    element.send_keys(text)


def trace(driver, graph_id: str, index: int) -> tuple[int, str]:
    found = driver.execute_script(TRACE_LENGTH, graph_id, index)
    return (0, "") if found == -1 else (int(found[0]), found[1])


def open_live(driver, stack) -> None:
    driver.get(stack.dashboard_url + "/?timeframe=1s")  # 1 s bars: warm within a minute of history
    try:
        wait_for(lambda: trace(driver, ids.LIVE_SPREAD_GRAPH, 1)[0] > 20, 60, "z-score points on the live page")
    except AssertionError as exc:  # say what the page showed instead
        body = driver.find_element("tag name", "body").text[:1500]
        logs = [e["message"][:300] for e in driver.get_log("browser")][-10:]
        raise AssertionError(f"{exc}\npage text:\n{body}\nconsole:\n" + "\n".join(logs)) from None


def test_live_page_draws_every_chart_with_points(browser, stack):
    open_live(browser, stack)
    for graph, index in ((ids.LIVE_SPREAD_GRAPH, 0), (ids.LIVE_SPREAD_GRAPH, 1), (ids.LIVE_HEDGE_GRAPH, 0),
                         (ids.LIVE_HEDGE_GRAPH, 1), (ids.LIVE_PRICE_GRAPH, 0), (ids.LIVE_PRICE_GRAPH, 2)):
        assert trace(browser, graph, index)[0] > 20, f"{graph} trace {index} has too few points"
    cards = browser.find_element("id", ids.LIVE_CARDS).text
    for label in ("Z-SCORE", "SIGNAL", "ADF P-VALUE", "HALF-LIFE", "LAST BAR"):
        assert label in cards.upper()
    assert "STATIONARY" in cards.upper()  # the ADF card says which side of 5 % it is on
    # the test feed is the simulator's: the banner must say so on every page
    wait_for(lambda: "SIMULATED FEED" in text_of(browser, ids.GATEWAY_STATUS), 15, "the simulated-feed banner")


def test_zscore_updates_within_seconds_without_reload(browser, stack):
    open_live(browser, stack)
    browser.execute_script("window.__marker = 'same page';")  # gone if the page reloads
    n0, last0 = trace(browser, ids.LIVE_SPREAD_GRAPH, 1)
    wait_for(lambda: trace(browser, ids.LIVE_SPREAD_GRAPH, 1)[1] != last0, 10, "a new z-score point")
    n1, _ = trace(browser, ids.LIVE_SPREAD_GRAPH, 1)
    assert n1 > n0
    assert browser.execute_script("return window.__marker;") == "same page"
    # the price figure grows too: new 1 s candles are appended
    c0 = trace(browser, ids.LIVE_PRICE_GRAPH, 0)[0]
    wait_for(lambda: trace(browser, ids.LIVE_PRICE_GRAPH, 0)[0] > c0, 10, "a new candle")
    # no callback failed on the way (a bad Patch shows up as a 500 on _dash-update-component)
    failures = [e["message"] for e in browser.get_log("browser") if e["level"] == "SEVERE"
                and "_dash-update-component" in e["message"]]
    assert not failures, failures


def test_alert_rule_created_in_the_ui_appears_in_the_gateway(browser, stack):
    browser.get(stack.dashboard_url + "/alerts")
    name = f"ui rule {uuid.uuid4().hex[:6]}"
    wait_for(lambda: browser.find_elements("id", ids.ALERT_NAME), 20, "the alert form")
    browser.find_element("id", ids.ALERT_NAME).send_keys(name)
    replace_text(browser.find_element("id", ids.ALERT_CONDITION), "|z| > 2.5 and corr > 0.5")
    browser.find_element("id", ids.ALERT_SAVE).click()
    wait_for(lambda: "created" in browser.find_element("id", ids.ALERT_FORM_MESSAGE).text, 15,
             "the saved message", lambda: browser.find_element("id", ids.ALERT_FORM_MESSAGE).text)
    rules = httpx.get(f"{stack.gateway_url}/api/v1/alerts/rules", timeout=5).json()["data"]
    mine = [r for r in rules if r["name"] == name]
    assert len(mine) == 1 and mine[0]["kind"] == "condition" and mine[0]["enabled"]
    assert "2.5" in mine[0]["expression"]
    wait_for(lambda: name in browser.find_element("id", ids.ALERT_RULES_TABLE).text, 15, "the rule in the table")


def _gateway_rule(stack, name: str) -> dict | None:
    rules = httpx.get(f"{stack.gateway_url}/api/v1/alerts/rules", timeout=5).json()["data"]
    return next((r for r in rules if r["name"] == name), None)


def _select_rule_row(browser, name: str) -> None:
    def radio():
        for row in browser.find_elements("css selector", f"#{ids.ALERT_RULES_TABLE} tr"):
            if name in row.text:
                return row.find_elements("css selector", "input[type=radio]")
        return None

    wait_for(radio, 15, f"the row of {name}")[0].click()


def test_rule_edit_disable_and_delete_through_the_ui(browser, stack):
    name = f"edit me {uuid.uuid4().hex[:6]}"
    created = httpx.post(f"{stack.gateway_url}/api/v1/alerts/rules", headers={"X-API-Token": TOKEN}, timeout=5,
                         json={"name": name, "timeframe": "1m", "condition": "|z| > 3"}).json()
    browser.get(stack.dashboard_url + "/alerts")
    _select_rule_row(browser, name)
    browser.find_element("id", ids.ALERT_EDIT).click()
    wait_for(lambda: browser.find_element("id", ids.ALERT_NAME).get_attribute("value") == name, 10, "the form filled")
    replace_text(browser.find_element("id", ids.ALERT_COOLDOWN), "120")
    browser.find_element("id", ids.ALERT_SAVE).click()
    wait_for(lambda: "updated" in text_of(browser, ids.ALERT_FORM_MESSAGE), 15, "the update message",
             lambda: text_of(browser, ids.ALERT_FORM_MESSAGE))
    edited = _gateway_rule(stack, name)
    assert edited["id"] == created["id"] and edited["cooldown_s"] == 120 and edited["enabled"]

    _select_rule_row(browser, name)
    browser.find_element("id", ids.ALERT_TOGGLE).click()
    wait_for(lambda: "disabled" in text_of(browser, ids.ALERT_FORM_MESSAGE), 15, "the disabled message")
    assert _gateway_rule(stack, name)["enabled"] is False

    _select_rule_row(browser, name)
    browser.find_element("id", ids.ALERT_DELETE).click()
    wait_for(lambda: "deleted" in text_of(browser, ids.ALERT_FORM_MESSAGE), 15, "the deleted message")
    assert _gateway_rule(stack, name) is None
    wait_for(lambda: name not in text_of(browser, ids.ALERT_RULES_TABLE), 15, "the row to go")


def test_invalid_rule_shows_the_gateways_validation_message(browser, stack):
    browser.get(stack.dashboard_url + "/alerts")
    wait_for(lambda: browser.find_elements("id", ids.ALERT_NAME), 20, "the alert form")
    browser.find_element("id", ids.ALERT_NAME).send_keys("broken rule")
    replace_text(browser.find_element("id", ids.ALERT_CONDITION), "|z| >> 2")
    browser.find_element("id", ids.ALERT_SAVE).click()
    text = wait_for(lambda: browser.find_element("id", ids.ALERT_FORM_MESSAGE).text, 15, "a validation message")
    assert "refused" in text and "condition" in text
    rules = httpx.get(f"{stack.gateway_url}/api/v1/alerts/rules", timeout=5).json()["data"]
    assert not [r for r in rules if r["name"] == "broken rule"]


def test_csv_upload_shows_the_gateways_per_line_report(browser, stack, tmp_path):
    csv = tmp_path / "trades.csv"
    csv.write_text("timestamp,price,qty\n2024-08-09T00:00:00Z,100.5,0.2\n2024-08-09T00:00:01Z,not-a-price,0.1\n"
                   "2024-08-09T00:00:02Z,100.7,0.3\n")
    browser.get(stack.dashboard_url + "/data")
    wait_for(lambda: browser.find_elements("css selector", f"#{ids.DATA_UPLOAD} input[type=file]"), 20, "the upload")
    replace_text(browser.find_element("id", ids.DATA_UPLOAD_SYMBOL), "TESTUSDT")
    browser.find_element("css selector", f"#{ids.DATA_UPLOAD} input[type=file]").send_keys(str(csv))
    report = wait_for(lambda: "ACCEPTED" in text_of(browser, ids.DATA_UPLOAD_REPORT).upper()
                      and text_of(browser, ids.DATA_UPLOAD_REPORT), 30, "the upload report",
                      lambda: text_of(browser, ids.DATA_UPLOAD_REPORT))
    lines = report.split("\n")
    assert lines[lines.index("ACCEPTED") + 1] == "2" and lines[lines.index("REJECTED") + 1] == "1"
    assert "upload.TESTUSDT" in report and "3" in report  # the bad line is named with its number
    instruments = httpx.get(f"{stack.gateway_url}/api/v1/instruments", timeout=5).json()["data"]
    assert "upload.TESTUSDT" in [i["id"] for i in instruments]


def test_system_page_makes_a_simulated_feed_unmistakable(browser, stack):
    browser.get(stack.dashboard_url + "/system")
    feeds = wait_for(lambda: "SIMULATED" in text_of(browser, ids.SYSTEM_FEEDS) and text_of(browser, ids.SYSTEM_FEEDS), 20, "feed cards")
    assert "SIMULATED" in feeds and "NOT A MARKET" in feeds
    card = browser.find_element("css selector", ".card-simulated")
    assert "dashed" in card.value_of_css_property("border-top-style")
    workers = wait_for(lambda: "analytics" in text_of(browser, ids.SYSTEM_WORKERS) and text_of(browser, ids.SYSTEM_WORKERS), 20, "worker heartbeats")
    assert "analytics" in workers
    wait_for(lambda: stack.pair.id in text_of(browser, ids.SYSTEM_LEASES), 20, "the pair's owner",
             lambda: text_of(browser, ids.SYSTEM_LEASES))


def test_screenshot_of_every_page(browser, stack):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    extra = os.environ.get("DASHBOARD_SCREENSHOTS_DIR")
    # an alert that fires on this pair, so the alerts page shows its feed and history filled in
    httpx.post(f"{stack.gateway_url}/api/v1/alerts/rules", headers={"X-API-Token": TOKEN}, timeout=5,
               json={"name": "wide spread", "pair": stack.pair.id, "timeframe": "1s", "condition": "|z| > 1.5"})
    for name, path in PAGES.items():
        browser.get(stack.dashboard_url + path)
        _settle(browser, name)
        target = ARTIFACTS / f"{name}.png"
        height = browser.execute_script("return document.documentElement.scrollHeight")
        browser.set_window_size(1600, min(max(1000, height + 120), 3000))  # the whole page, not the first screen
        time.sleep(0.5)
        assert browser.save_screenshot(str(target)), f"no screenshot of {name}"
        browser.set_window_size(1600, 1300)
        assert target.stat().st_size > 10_000
        if extra:
            Path(extra).mkdir(parents=True, exist_ok=True)
            shutil.copy(target, Path(extra) / target.name)


def _settle(browser, page: str) -> None:
    """Wait until the page shows data (or its not-available state), so the screenshot means something."""
    if page == "live":
        wait_for(lambda: trace(browser, ids.LIVE_SPREAD_GRAPH, 1)[0] > 20, 60, "live charts")
        time.sleep(2)
    elif page in ("methods", "universe", "backtest"):
        run = {"methods": ids.METHODS_RUN, "universe": ids.UNIVERSE_RUN, "backtest": ids.BT_RUN}[page]
        message = {"methods": ids.METHODS_MESSAGE, "universe": ids.UNIVERSE_MESSAGE, "backtest": ids.BT_MESSAGE}[page]
        time.sleep(1.5)  # pickers fill from the gateway
        browser.find_element("id", run).click()
        wait_for(lambda: browser.find_element("id", message).text or _has_plot(browser), 60, f"{page} result")
        time.sleep(1.5)
    else:
        time.sleep(3)


def _has_plot(browser) -> bool:
    return bool(browser.execute_script("return document.querySelectorAll('.js-plotly-plot .main-svg').length > 2"))


def test_gateway_outage_is_shown_and_the_page_recovers_by_itself(browser, stack):
    """Runs last: stops the gateway under an open live page, then starts it again on the same port."""
    open_live(browser, stack)
    stack.gateway.stop()
    try:
        wait_for(lambda: "unreachable" in text_of(browser, ids.GATEWAY_STATUS), 15, "the outage banner",
                 lambda: text_of(browser, ids.GATEWAY_STATUS))
        wait_for(lambda: "unreachable" in text_of(browser, ids.LIVE_MESSAGE), 15, "the live panel's notice")
        n_down = trace(browser, ids.LIVE_SPREAD_GRAPH, 1)[0]
        assert n_down > 20  # what was drawn stays on screen
        assert browser.execute_script("return 1 + 1") == 2  # the page still answers
    finally:
        stack.gateway.start()
    wait_for(lambda: "unreachable" not in text_of(browser, ids.GATEWAY_STATUS), 20, "the banner to clear",
             lambda: text_of(browser, ids.GATEWAY_STATUS))
    wait_for(lambda: trace(browser, ids.LIVE_SPREAD_GRAPH, 1)[0] > n_down, 20, "z-score points after recovery")
    wait_for(lambda: "unreachable" not in text_of(browser, ids.LIVE_MESSAGE), 10, "the live notice to clear")
