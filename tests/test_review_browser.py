"""The review page in a real browser: Debian's Chromium, headless, driven by Selenium.

Nothing is downloaded at test time: the browser and its driver are Debian's
packages (``chromium``, ``chromium-driver``; tools/test-tools.sh installs them
for ``make test``), given to Selenium by path, with ``SE_OFFLINE`` set so
Selenium Manager never goes looking; hls.js is the copy vendored in
server/review/static. The recordings are a scenario run's (a pre-event
without sound, a trigger, two markers), served by the laptop's page
(``bodycam review``) and, for the login, by the evidence store's.

Every wait polls a condition in the page with a deadline; none sleeps.
Screenshots of the list and the player are saved to a directory this
module prints (``-s`` shows it); docs/review/*.png are a pair of them.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from selenium import webdriver
from selenium.common.exceptions import (
    JavascriptException,
    StaleElementReferenceException,
    WebDriverException,
)
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from server.app import create_app
from server.datadir import open_server
from server.review.auth import set_admin
from server.review.serve import review_app
from server.review.storage_catalog import StorageCatalog
from sim.runner import RunResult
from tests.review_support import PASSWORD, served, store_holding
from tests.server_support import record_three, recordings_of

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
DEADLINE = 30.0
SCENARIO = "marker_while_recording"

pytestmark = pytest.mark.xdist_group("ci_scenarios")


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[webdriver.Chrome]:
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    if missing:
        pytest.fail(
            f"{', '.join(missing)} missing: install Debian's chromium and chromium-driver "
            "(`make test` does, through tools/test-tools.sh)"
        )
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    profile = tmp_path_factory.mktemp("chromium-profile")
    for arg in (
        "--headless=new",
        "--no-sandbox",  # we run as root in CI
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--mute-audio",
        "--autoplay-policy=no-user-gesture-required",
        "--window-size=1400,1050",
        f"--user-data-dir={profile}",
    ):
        options.add_argument(arg)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SE_OFFLINE", "true")  # Selenium Manager must never download anything
        driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    where = tmp_path_factory.mktemp("review-screenshots")
    print(f"\nreview page screenshots: {where}")
    return where


@pytest.fixture(scope="module")
def run(ci_run: Callable[[str], RunResult]) -> RunResult:
    return ci_run(SCENARIO)


@pytest.fixture(scope="module")
def laptop(run: RunResult) -> Iterator[str]:
    catalog = StorageCatalog(run.storage)
    try:
        with served(review_app(catalog)) as url:
            yield f"{url}/review/"
    finally:
        catalog.close()


def wait(driver: webdriver.Chrome, condition: Callable[[webdriver.Chrome], Any], what: str) -> Any:
    try:
        return WebDriverWait(
            driver,
            DEADLINE,
            poll_frequency=0.1,
            # The list reloads itself when the check lands: an element or a script may go.
            ignored_exceptions=(StaleElementReferenceException, JavascriptException),
        ).until(condition)
    except WebDriverException as exc:
        errors = driver.execute_script("return window.review ? window.review.errors : null")
        raise AssertionError(f"{what} within {DEADLINE} s (player errors: {errors})") from exc


def rows(driver: webdriver.Chrome) -> list[tuple[str, str]]:
    """(id, verdict) of each row, read in one step (the page may reload itself meanwhile)."""
    found = driver.execute_script(
        "return Array.from(document.querySelectorAll('tr.recording'))"
        ".map(function (r) { return [r.dataset.id, r.dataset.state]; })"
    )
    return [(i, state) for i, state in found]


def recording_ids(run: RunResult) -> list[str]:
    return sorted(p.parent.name for p in run.storage.glob("*/manifest.json"))


def test_the_list_shows_the_recordings_of_a_scenario_run_verified(
    browser: webdriver.Chrome, laptop: str, run: RunResult, shots: Path
) -> None:
    browser.get(laptop)
    want = recording_ids(run)
    assert [i for i, _ in rows(browser)] == want
    # The page reloads itself when the background check lands.
    wait(browser, lambda d: rows(d) == [(i, "verified") for i in want], "every row verified")
    assert "intact" in browser.find_element(By.ID, "checks").text
    browser.save_screenshot(str(shots / "list.png"))


def test_the_player_plays_and_a_marker_click_seeks_to_it(
    browser: webdriver.Chrome, laptop: str, run: RunResult, shots: Path
) -> None:
    rid = recording_ids(run)[0]
    manifest = json.loads((run.storage / rid / "manifest.json").read_text())
    browser.get(f"{laptop}r/{rid}/")
    assert browser.execute_script("return Hls.isSupported()"), "no Media Source Extensions"
    browser.find_element(By.ID, "play").click()
    start = browser.execute_script("return window.review.deviceTime()")
    wait(
        browser,
        lambda d: d.execute_script("return document.getElementById('video').currentTime") > 1.5,
        "the video's currentTime advancing past 1.5 s",
    )
    moved = browser.execute_script("return window.review.deviceTime()")
    assert moved > start + 1.0
    # The second marker is past the trigger: in the part with sound, so the click also
    # moves the player from the silent pre-event's playlist to the next one.
    marker_time = manifest["markers"][1]["time"]
    assert marker_time > manifest["audio"]["first_time"]  # past the silent pre-event
    element = browser.find_element(By.ID, "tl-marker-1")
    assert float(element.get_attribute("data-time")) == marker_time
    element.click()
    wait(
        browser,
        lambda d: abs(d.execute_script("return window.review.deviceTime()") - marker_time) < 0.5,
        f"the player at the marker ({marker_time} s)",
    )
    assert browser.execute_script("return window.review.part") == 1
    wait(
        browser,
        lambda d: d.execute_script("return window.review.deviceTime()") > marker_time + 0.5,
        "playing on after the seek",
    )
    fatal = [e for e in browser.execute_script("return window.review.errors") if "fatal" in e]
    assert fatal == []
    assert "with sound" in browser.find_element(By.ID, "part-info").text
    browser.save_screenshot(str(shots / "player.png"))


def test_a_tampered_recording_shows_as_failed_with_its_reason(
    browser: webdriver.Chrome, run: RunResult, tmp_path: Path
) -> None:
    card = tmp_path / "card"
    shutil.copytree(run.storage, card)
    rid = recording_ids(run)[0]
    segment = card / rid / "segment-0001.ts"
    data = bytearray(segment.read_bytes())
    data[len(data) // 3] ^= 0x40
    segment.write_bytes(bytes(data))
    catalog = StorageCatalog(card)
    try:
        with served(review_app(catalog)) as url:
            browser.get(f"{url}/review/")
            wait(browser, lambda d: rows(d) == [(rid, "failed")], "the tampered row failed")
            row = browser.find_element(By.CSS_SELECTOR, f'tr[data-id="{rid}"]')
            reason = row.find_element(By.CSS_SELECTOR, "td.verdict").text
            assert "failed" in reason and "segment-0001.ts" in reason and "sha256" in reason
    finally:
        catalog.close()


def test_the_store_shows_nothing_without_a_login(browser: webdriver.Chrome, tmp_path: Path) -> None:
    storage = record_three(tmp_path / "camera")
    data = tmp_path / "data"
    data.mkdir()
    store_holding(data, storage, recordings_of(storage))
    server = open_server(data, serve=True)
    try:
        set_admin(server.meta, "alice", PASSWORD, actor="test")
        with served(create_app(server)) as url:
            browser.delete_all_cookies()
            browser.get(f"{url}/review/")
            wait(browser, lambda d: "/review/login" in d.current_url, "the login page")
            assert browser.find_elements(By.CSS_SELECTOR, "tr.recording") == []
            browser.find_element(By.ID, "user").send_keys("alice")
            browser.find_element(By.ID, "password").send_keys("a wrong password")
            browser.find_element(By.ID, "login-submit").click()
            wait(browser, lambda d: d.find_elements(By.ID, "login-error"), "the refusal")
            browser.find_element(By.ID, "user").clear()
            browser.find_element(By.ID, "user").send_keys("alice")
            browser.find_element(By.ID, "password").send_keys(PASSWORD)
            browser.find_element(By.ID, "login-submit").click()
            want = [(r.name, "verified") for r in recordings_of(storage)]
            wait(browser, lambda d: rows(d) == want, "the store's recordings after the login")
            assert browser.execute_script("return document.cookie") == ""  # HttpOnly
    finally:
        server.close()


def test_screenshots_were_saved(shots: Path) -> None:
    """The pair the README shows comes from a run like this one (docs/review/)."""
    saved = sorted(p.name for p in shots.iterdir())
    assert {"list.png", "player.png"} <= set(saved), saved
    assert all((shots / n).stat().st_size > 10_000 for n in ("list.png", "player.png"))
    if os.environ.get("BODYCAM_REVIEW_SCREENSHOTS"):
        target = Path(os.environ["BODYCAM_REVIEW_SCREENSHOTS"])
        target.mkdir(parents=True, exist_ok=True)
        for name in ("list.png", "player.png"):
            shutil.copy(shots / name, target / name)
