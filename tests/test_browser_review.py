"""Reviewing in the browser without breaking anything: errors stay in place, the reason never follows you
to another pair, your name survives a reload, a bulk decision is asked first and undone as one, and blind
review hides what would bias you. `python app.py` on a copy of the fixture store, in headless Chromium.
"""

import os

import pytest
from browser_helpers import CHROMIUM, CHROMIUM_ARGS, STEP_TIMEOUT_MS, cell, require_browser, text_box
from helpers import free_port, served_app
from studio_fixtures import build_fixture_file, copy_fixture_store

EXPECT_TIMEOUT_MS = 20_000

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture
def page(tmp_path):
    require_browser()  # a failure in CI, where the browser must be there
    from playwright import sync_api
    store_file = copy_fixture_store(build_fixture_file(tmp_path, "fixture.duckdb"), tmp_path / "studio.duckdb")
    env = {**os.environ, "ARTE_DB": str(store_file), "GRADIO_SERVER_PORT": str(free_port()),
           "ARTE_RUNS_DIR": str(tmp_path / "runs"), "GRADIO_ANALYTICS_ENABLED": "False"}
    for name in ("ARTE_AUTH", "ARTE_READ_ONLY", "GRADIO_SERVER_NAME", "SPACE_ID"):
        env.pop(name, None)
    with served_app(env, tmp_path / "app.log") as url, sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        tab = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
        tab.set_default_timeout(STEP_TIMEOUT_MS)
        # Each listener answers in under a second, but the first page load on a busy machine takes longer.
        sync_api.expect.set_options(timeout=EXPECT_TIMEOUT_MS)
        tab.goto(url)
        try:
            yield tab
        finally:
            sync_api.expect.set_options(timeout=5_000)  # Playwright's default, for other modules
            browser.close()


def open_pair(page, pair_id: str):
    """Click the pair's row and wait until the panel shows it (a click answers after a round trip)."""
    from playwright.sync_api import expect

    cell(page, "pairs-table", pair_id).click()
    expect(text_box(page, "pairs-pair-id")).to_have_value(pair_id)
    expect(page.locator("#pairs-header")).not_to_contain_text("Select a pair")


def open_pairs(page):
    from playwright.sync_api import expect

    page.get_by_role("tab", name="Pairs").click()
    expect(page.locator("#pairs-info")).to_contain_text("Pairs 1–9 of 9")


def test_an_invalid_filter_a_bogus_id_and_no_choice_leave_everything_in_place(page):
    from playwright.sync_api import expect

    expect(page.locator("#drafts-info")).to_contain_text("Drafts 1–24 of 24")
    text_box(page, "drafts-min-score").fill("50%")
    page.locator("#drafts-apply").click()
    expect(page.locator("#drafts-notice")).to_contain_text("min score must be a number, got '50%'")
    expect(page.locator("#drafts-info")).to_contain_text("Drafts 1–24 of 24")  # the table stays
    expect(cell(page, "drafts-table", "eliminate_options")).to_be_visible()
    cell(page, "drafts-table", "eliminate_options").click()
    expect(page.locator("#drafts-detail-meta")).to_contain_text("eliminate_options")
    text_box(page, "drafts-rationale-id").fill("no-such-draft")
    text_box(page, "drafts-rationale-id").press("Enter")
    expect(page.locator("#drafts-detail-notice")).to_contain_text("no-such-draft")
    expect(page.locator("#drafts-detail-meta")).to_contain_text("eliminate_options")  # the draft stays

    open_pairs(page)
    open_pair(page, "pr-0")
    expect(page.locator("#pairs-header")).to_contain_text("rationale pair")
    page.locator("#pairs-decide").click()  # no decision chosen
    expect(page.locator("#pairs-status")).to_contain_text("choose a decision")
    expect(page.locator("#pairs-header")).to_contain_text("rationale pair")  # the panel stays
    page.locator("#pairs-action").get_by_text("Exclude from training").click()  # the options still answer
    page.locator("#pairs-decide").click()
    expect(page.locator("#pairs-status")).to_contain_text("Recorded decision 1: exclude on pr-0")


def test_the_reason_is_cleared_and_the_name_kept_across_reload(page):
    from playwright.sync_api import expect

    text_box(page, "user-name").fill("Ada")
    text_box(page, "user-name").press("Tab")
    open_pairs(page)
    open_pair(page, "pr-0")
    text_box(page, "pairs-why").fill("meant for pr-0")
    open_pair(page, "pr-1")  # another pair: the reason does not come along
    expect(text_box(page, "pairs-why")).to_have_value("")
    text_box(page, "pairs-why").fill("states the rule first")
    page.locator("#pairs-action").get_by_text("Accept: chosen is better").click()
    page.locator("#pairs-decide").click()
    expect(page.locator("#pairs-status")).to_contain_text("Recorded decision 1: accept on pr-1 by Ada")
    expect(text_box(page, "pairs-why")).to_have_value("")  # cleared after the decision
    expect(page.locator("#pairs-trail")).to_contain_text("states the rule first")

    page.reload()
    expect(text_box(page, "user-name")).to_have_value("Ada")


def test_a_bulk_decision_is_confirmed_with_its_count_and_undone_as_one(page):
    from playwright.sync_api import expect

    open_pairs(page)
    page.locator("#pairs-filters").get_by_text("question", exact=True).click()
    page.locator("#pairs-apply").click()
    expect(page.locator("#pairs-info")).to_contain_text("Pairs 1–4 of 4")
    page.get_by_text("Bulk decision and undo").click()
    page.locator("#pairs-bulk").click()
    expect(page.locator("#pairs-bulk-question")).to_contain_text("exclude on 4 pair(s)")
    expect(page.locator("#pairs-agreement")).to_contain_text("No decisions yet")  # asking records nothing
    page.locator("#pairs-bulk-confirm").click()
    expect(page.locator("#pairs-status")).to_contain_text("exclude on 4 pair(s) by anonymous as bulk action 1")
    expect(page.locator("#pairs-agreement")).to_contain_text("4 excluded")
    expect(page.locator("#pairs-bulk-confirm")).to_be_hidden()
    expect(text_box(page, "pairs-bulk-undo-id")).to_have_value("1")
    page.locator("#pairs-bulk-undo").click()
    expect(page.locator("#pairs-status")).to_contain_text("Bulk action 1 undone: 4 decision(s) taken back")
    expect(page.locator("#pairs-agreement")).to_contain_text("No decisions yet")


def test_blind_review_hides_margin_decisions_and_reviewers_and_keeps_a_b_after_deciding(page):
    from playwright.sync_api import expect

    open_pairs(page)
    open_pair(page, "pr-0")
    page.locator("#pairs-action").get_by_text("Accept: chosen is better").click()
    page.locator("#pairs-decide").click()  # someone decided pr-0 openly
    expect(page.locator("#pairs-status")).to_contain_text("Recorded decision 1")
    page.locator("#pairs-blind label").click()
    expect(page.locator("#pairs-table")).to_contain_text("decided")
    expect(page.locator("#pairs-header")).to_contain_text("blind order")  # the open pair, shown blind
    header = page.locator("#pairs-table thead")
    for hidden in ("margin", "chosen score", "by", "notes"):
        expect(header).not_to_contain_text(hidden)
    open_pair(page, "pr-1")
    expect(page.locator("#pairs-header")).to_contain_text("blind")
    expect(page.locator("#pairs-header")).not_to_contain_text("margin 0.")
    expect(page.locator("#pairs-left")).to_contain_text("A (left)")
    expect(page.locator("#pairs-sides")).to_contain_text("solver agrees")  # the evidence a reviewer needs stays
    page.locator("#pairs-action").get_by_text("B (right) is better").click()
    page.locator("#pairs-decide").click()
    expect(page.locator("#pairs-status")).to_contain_text("Recorded decision 2")
    expect(page.locator("#pairs-left")).to_contain_text("A (left) · student's")  # revealed, still A/B
    expect(page.locator("#pairs-header")).to_contain_text("margin 0.300")
    expect(page.locator("#pairs-action")).to_contain_text("B (right) is better")
