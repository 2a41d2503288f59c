"""The studio as a person uses it: `python app.py` in a subprocess, driven by headless Debian Chromium.

Filters drafts, swaps a pair with a reason, reloads the page and finds the override still there.
Screenshots go to test-artifacts/ (git-ignored); the README's, of the demo data, come from
scripts/take_screenshots.py.
"""

import os
from pathlib import Path

import pytest
from browser_helpers import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, STEP_TIMEOUT_MS, cell, require_browser, text_box
from helpers import free_port, served_app
from studio_fixtures import build_fixture_file, copy_fixture_store

REASON = "The rejected rationale states the rule before applying it"

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture
def app_url(tmp_path):
    require_browser()
    store_file = copy_fixture_store(build_fixture_file(tmp_path, "fixture.duckdb"), tmp_path / "studio.duckdb")
    port = free_port()
    env = {**os.environ, "ARTE_DB": str(store_file), "GRADIO_SERVER_PORT": str(port),
           "ARTE_RUNS_DIR": str(tmp_path / "runs"), "GRADIO_ANALYTICS_ENABLED": "False"}
    for name in ("ARTE_AUTH", "ARTE_READ_ONLY", "GRADIO_SERVER_NAME"):
        env.pop(name, None)
    with served_app(env, tmp_path / "app.log") as url:
        yield url


@pytest.fixture
def page(app_url):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        tab = context.new_page()
        tab.set_default_timeout(STEP_TIMEOUT_MS)
        tab.goto(app_url)
        yield tab
        browser.close()


def shoot(page, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    page.mouse.move(0, 0)  # no hover highlight on the last button clicked
    # Clicking a cell scrolls its table sideways; show tables from their first column.
    page.evaluate("document.querySelectorAll('[role=grid] *').forEach(e => { if (e.scrollLeft) e.scrollLeft = 0; })")
    path = ARTIFACTS / name
    page.screenshot(path=str(path), full_page=True)
    return path


def open_tab(page, name: str) -> None:
    page.get_by_role("tab", name=name).click()


def test_filter_drafts_override_a_pair_and_see_it_after_reload(page):
    from playwright.sync_api import expect

    expect(page.locator("#drafts-info")).to_contain_text("Drafts 1–24 of 24")
    text_box(page, "drafts-search").fill("O'Brien")
    text_box(page, "drafts-search").press("Enter")
    expect(page.locator("#drafts-info")).to_contain_text("Drafts 1–4 of 4")
    cell(page, "drafts-table", "eliminate_options").click()
    expect(page.locator("#drafts-detail-meta")).to_contain_text("eliminate_options")
    # the fixture's scores predate parse modes: a dash and how to rescore, never a 0
    expect(page.locator("#drafts-info")).to_contain_text("— : scored by an older version")
    expect(page.locator("#drafts-table")).to_contain_text("balanced accuracy")
    expect(page.locator("#drafts-items")).to_contain_text("parse mode")
    expect(cell(page, "drafts-items", "—")).to_be_visible()
    expect(text_box(page, "drafts-rationale-text")).to_have_value(
        "Using eliminate_options on question 3:" + " step" * 87 + " so the answer is <ans>False</ans>")
    shoot(page, "drafts.png")

    open_tab(page, "Pairs")
    cell(page, "pairs-table", "pr-0").click()
    expect(page.locator("#pairs-header")).to_contain_text("rationale pair")
    page.locator("#pairs-action").get_by_text("Swap: rejected is better").click()
    text_box(page, "pairs-why").fill(REASON)
    page.locator("#pairs-decide").click()
    expect(page.locator("#pairs-status")).to_contain_text("Recorded decision 1: swap on pr-0")
    expect(page.locator("#pairs-trail")).to_contain_text(REASON)
    expect(page.locator("#pairs-agreement")).to_contain_text("1 swapped")
    shoot(page, "pairs.png")

    page.reload()
    open_tab(page, "Pairs")
    expect(page.locator("#pairs-agreement")).to_contain_text("1 swapped")
    cell(page, "pairs-table", "pr-0").click()
    expect(page.locator("#pairs-header")).to_contain_text("decision in force: swap by anonymous")
    expect(page.locator("#pairs-trail")).to_contain_text(REASON)
    shoot(page, "pairs_after_reload.png")

    open_tab(page, "Analysis")
    expect(page.locator("#analysis-summary")).to_contain_text("24 scored drafts")
    expect(page.locator("#plot-length .js-plotly-plot")).to_be_visible()
    expect(page.locator("#plot-evaluation .js-plotly-plot")).to_be_visible()
    page.wait_for_timeout(1500)  # plotly finishes drawing after the element appears
    shoot(page, "analysis.png")

    open_tab(page, "Signals")
    expect(page.locator("#signals-summary")).to_contain_text("24 drafts with both signals")
    expect(page.locator("#plot-signals .js-plotly-plot")).to_be_visible()
    expect(page.locator("#signals-disagreements")).to_contain_text("rationale_id")
    page.wait_for_timeout(1500)
    shoot(page, "signals.png")

    open_tab(page, "Runs")  # pick the signal pairs are built from: the launched config says it
    page.locator("#runs-field-pairs\\.signal input").click()
    page.get_by_role("option", name="both", exact=True).click()
    page.locator("#runs-field-pairs\\.signal input").blur()
    page.get_by_text("Effective config (YAML)").click()
    editor = page.locator("#runs-config .cm-content")  # the editor draws only the lines in view
    editor.scroll_into_view_if_needed()
    editor.hover()
    for _ in range(4):
        page.mouse.wheel(0, 300)
        page.wait_for_timeout(100)
    expect(page.locator("#runs-config")).to_contain_text("signal: both")
    shoot(page, "runs.png")


def test_the_health_tab_shows_the_lines_and_the_drafts_tab_points_to_it(page):
    from playwright.sync_api import expect

    # Computed on page load after the tables' own listeners: give it the step timeout, not expect's 5 s.
    expect(page.locator("#drafts-health")).to_contain_text("1 bad (student above chance)", timeout=STEP_TIMEOUT_MS)
    open_tab(page, "Health")
    expect(page.locator("#health-summary")).to_contain_text("1 bad · 4 warn · 4 ok · 2 n/a", timeout=STEP_TIMEOUT_MS)
    expect(cell(page, "health-table", "student above chance")).to_be_visible()
    expect(cell(page, "health-table", "❌ bad")).to_be_visible()
    expect(page.locator("#health-table")).to_contain_text("not measured: scored by an older version; run `arte rescore`.")
    shoot(page, "health.png")
