"""The status page in a real headless Chromium, as a user goes through it.

Debian's ``chromium`` and ``chromedriver`` (no browser download), driven by Selenium;
the page served by uvicorn in a thread on a free local port, over a state store filled
by real syncs.  The run saves a screenshot of the status view in build/screenshots/, or
in the folder named by $DOSSIERSYNC_SCREENSHOTS (docs/screenshots to refresh the one the
documentation shows; the default keeps the committed picture untouched).
"""

from __future__ import annotations

import csv
import io
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.select import Select
from selenium.webdriver.support.wait import WebDriverWait

from dossiersync.config import load
from dossiersync.state.store import StateStore
from dossiersync.web import WebServer, serve_in_thread

from support.workspace import Workspace

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
TOKEN = "browser-token-0123456789abcdef-0123456789"
ROOT = Path(__file__).resolve().parent.parent
SCREENSHOTS = Path(os.environ.get("DOSSIERSYNC_SCREENSHOTS") or ROOT / "build" / "screenshots")

pytestmark = pytest.mark.skipif(
    not (CHROMIUM.exists() and CHROMEDRIVER.exists()),
    reason="needs the Debian packages chromium and chromium-driver (make setup installs them)",
)


@pytest.fixture
def page(workspace: Workspace) -> Iterator[WebServer]:
    """Three synced dossiers (one client of nord is invalid), served on a free port."""
    workspace.add_dossier("nord", clients=12, seed=1)
    workspace.add_dossier("sud", clients=8, seed=2)
    workspace.add_dossier("ouest", clients=6, seed=3)
    workspace.extra_config = f'[web]\ntoken = "{TOKEN}"\nlanguage = "auto"\n'
    workspace.write_config()
    workspace.sage_execute(
        "nord", "UPDATE F_COMPTET SET CT_EMail = 'pas-une-adresse' WHERE CT_Num = 'CL00006'"
    )
    workspace.activate_all()
    workspace.sync(expect=1)
    config = load(workspace.config_path)
    with serve_in_thread(config, StateStore(config.state_url), port=0) as server:
        yield server


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[WebDriver]:
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1100,840",
        "--lang=en-US",
        f"--user-data-dir={tmp_path / 'profile'}",
    ):
        options.add_argument(flag)
    options.add_experimental_option("prefs", {"intl.accept_languages": "en-US,en"})
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def wait_for(driver: WebDriver, condition: str, timeout: float = 15) -> None:
    """Wait until the current address contains ``condition``."""
    WebDriverWait(driver, timeout).until(lambda d: condition in d.current_url)


def text_of(driver: WebDriver, css: str) -> str:
    return str(driver.find_element(By.CSS_SELECTOR, css).text)


def test_a_user_follows_the_dossier_group_on_the_page(
    page: WebServer, browser: WebDriver, workspace: Workspace, tmp_path: Path
) -> None:
    # open the printed address with the token: logged in, the token gone from the address
    browser.get(f"{page.url}?token={TOKEN}")
    assert "Sync status" in browser.title
    assert "token" not in browser.current_url
    options = [
        o.get_attribute("value") for o in browser.find_elements(By.CSS_SELECTOR, "#dossier option")
    ]
    assert options == ["all", "nord", "ouest", "sud"]

    # choose a dossier: only its state, with the counts the CLI gives
    Select(browser.find_element(By.ID, "dossier")).select_by_value("nord")
    wait_for(browser, "dossier=nord")
    sections = browser.find_elements(By.CSS_SELECTOR, "section.dossier")
    assert [s.get_attribute("data-dossier") for s in sections] == ["nord"]
    (entity,) = workspace.cli_json("status", "--dossier", "nord")[0]["entities"]
    for label, count in entity["records"].items():
        cell = f'table.records tr[data-entity="clients"] td[data-label="{label}"]'
        assert text_of(browser, cell) == str(count), label
    assert entity["records"]["synced"] == 11
    outcomes = browser.find_elements(By.CSS_SELECTOR, "table.runs tr[data-direction]")
    assert {r.get_attribute("data-outcome") for r in outcomes} == {"partial", "succeeded"}
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    assert browser.save_screenshot(str(SCREENSHOTS / "status.png"))

    # set-up: untick a dossier, confirm, and it is inactive
    browser.find_element(By.LINK_TEXT, "Set-up").click()
    wait_for(browser, "/setup")
    checkbox = browser.find_element(By.ID, "active-ouest")
    assert checkbox.is_selected()
    checkbox.click()
    browser.find_element(By.ID, "save").click()
    WebDriverWait(browser, 15).until(lambda d: d.find_elements(By.ID, "confirm-yes"))
    assert "stays in Sales Management" in text_of(browser, "p.warning")
    assert {d["id"]: d["state"] for d in workspace.cli_json("dossiers", "list")}["ouest"] == (
        "active"
    )
    browser.find_element(By.ID, "confirm-yes").click()
    wait_for(browser, "notice=")
    assert "Deactivated: ouest" in text_of(browser, "p.notice")
    states = {d["id"]: d["state"] for d in workspace.cli_json("dossiers", "list")}
    assert states == {"nord": "active", "ouest": "inactive", "sud": "active"}
    assert not browser.find_element(By.ID, "active-ouest").is_selected()

    # open an incident: the invalid client, with its key and message
    browser.get(f"{page.url}incidents?dossier=nord")
    rows = browser.find_elements(By.CSS_SELECTOR, "table.incidents tbody tr")
    assert len(rows) == 1
    rows[0].find_element(By.TAG_NAME, "a").click()
    wait_for(browser, "/incidents/")
    assert text_of(browser, "[data-record-key]") == "CL00006"
    # the field and its rule in words, not the validator's regular expression
    assert "e-mail address is not valid: 'pas-une-adresse'" in text_of(browser, "#incident-message")
    assert browser.find_element(By.ID, "retry").is_enabled()

    # export the journal: the CSV the browser downloads has the CLI's runs
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    browser.execute_cdp_cmd(
        "Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)}
    )
    browser.get(f"{page.url}journal?dossier=nord")
    browser.find_element(By.ID, "export-csv").click()
    exported = downloads / "journal-nord.csv"
    deadline = time.monotonic() + 15
    while not exported.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    rows = list(csv.DictReader(io.StringIO(exported.read_text(encoding="utf-8-sig"))))
    journal = workspace.cli_json("journal", "--dossier", "nord")
    assert [int(r["run_id"]) for r in rows] == [r["run_id"] for r in journal]
    assert [r["outcome"] for r in rows] == [r["outcome"] for r in journal]
    shutil.rmtree(downloads)


def test_a_finished_sync_now_shows_its_outcome_without_a_reload_by_hand(
    page: WebServer, browser: WebDriver, workspace: Workspace
) -> None:
    # a second client of nord becomes invalid
    workspace.sage_execute(
        "nord",
        "UPDATE F_COMPTET SET CT_EMail = 'encore-invalide', "
        "cbModification = strftime('%Y-%m-%d %H:%M:%f','now') WHERE CT_Num = 'CL00002'",
    )
    browser.get(f"{page.url}?token={TOKEN}")
    Select(browser.find_element(By.ID, "dossier")).select_by_value("nord")
    wait_for(browser, "dossier=nord")
    assert not browser.find_elements(By.CSS_SELECTOR, "[data-job]")
    browser.find_element(By.CSS_SELECTOR, 'form[action="/dossiers/nord/sync"] button').click()
    wait_for(browser, "notice=")
    assert "Sync of nord started" in text_of(browser, "p.notice")

    # the page follows the sync by itself until it shows the outcome
    WebDriverWait(browser, 60).until(
        lambda d: d.find_elements(By.CSS_SELECTOR, "[data-job-outcome]")
    )
    line = browser.find_element(By.CSS_SELECTOR, "[data-job-outcome]")
    assert line.get_attribute("data-job-outcome") == "partial"
    # the new invalid client, and the one of the first sync, read again by its key
    assert line.get_attribute("data-not-synced") == "2"
    assert "2 record(s) not synced: see the incidents" in line.text
    line.find_element(By.LINK_TEXT, "see the incidents").click()
    wait_for(browser, "/incidents")
    keys = {e.text for e in browser.find_elements(By.CSS_SELECTOR, "table.incidents td")}
    assert {"CL00002", "CL00006"} <= keys


def test_each_dossier_shows_its_health_as_pictures(
    page: WebServer, browser: WebDriver, workspace: Workspace
) -> None:
    browser.get(f"{page.url}?token={TOKEN}")
    for dossier_id in ("nord", "ouest", "sud"):
        for chart in ("runs", "records"):
            css = f'figure[data-chart="{chart}"][data-dossier="{dossier_id}"] svg'
            svg = browser.find_element(By.CSS_SELECTOR, css)
            assert svg.is_displayed()
            assert svg.size["width"] > 100 and svg.size["height"] > 40, (css, svg.size)
            drawn = [r.size for r in svg.find_elements(By.CSS_SELECTOR, "rect:not(.bar-empty)")]
            assert drawn and all(s["width"] > 0 and s["height"] > 0 for s in drawn), css
            assert svg.get_attribute("aria-label"), css

    # nord's sync today: one partial run (the invalid client), drawn in its colour
    journal = workspace.cli_json("journal", "--dossier", "nord")
    today = journal[0]["started_at"][:10]
    day = browser.find_element(
        By.CSS_SELECTOR, f'figure[data-chart="runs"][data-dossier="nord"] g[data-day="{today}"]'
    )
    assert day.get_attribute("data-partial") == "1"
    assert day.get_attribute("data-runs") == str(len(journal))
    partial = day.find_element(By.CSS_SELECTOR, "rect.bar-partial")
    assert partial.size["height"] > 0
    assert partial.value_of_css_property("fill") != day.find_element(
        By.CSS_SELECTOR, "rect.bar-succeeded"
    ).value_of_css_property("fill")
