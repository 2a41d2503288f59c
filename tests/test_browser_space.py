"""The studio as a public Space in headless Chromium: the Guide tab renders, every tab is reachable on a
390 px phone, and one visitor's decision is invisible to another (each decides in a private sandbox).

`python app.py` with SPACE_ID set, on a copy of the studio fixture; screenshots go to test-artifacts/."""

import os
import re

import pytest
from browser_helpers import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, STEP_TIMEOUT_MS, require_browser, text_box
from helpers import free_port, served_app
from studio_fixtures import build_fixture_file, copy_fixture_store

from arte_core.store import Store

PHONE = {"width": 390, "height": 844}
REASON = "Alice's private reason: the rejected side states the rule first"

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def space(tmp_path_factory):
    """(URL, shared store file) of the studio served as a Space."""
    require_browser()
    folder = tmp_path_factory.mktemp("space")
    store_file = copy_fixture_store(build_fixture_file(folder, "fixture.duckdb"), folder / "studio.duckdb")
    env = {**os.environ, "ARTE_DB": str(store_file), "GRADIO_SERVER_PORT": str(free_port()),
           "ARTE_RUNS_DIR": str(folder / "runs"), "GRADIO_ANALYTICS_ENABLED": "False", "SPACE_ID": "someone/arte"}
    for name in ("ARTE_AUTH", "ARTE_READ_ONLY", "GRADIO_SERVER_NAME", "ARTE_ALLOW_RUNS", "OAUTH_CLIENT_ID"):
        env.pop(name, None)
    with served_app(env, folder / "app.log") as url:
        yield url, store_file


@pytest.fixture(scope="module")
def browser():
    require_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


def visitor(browser, url: str, viewport: dict | None = None):
    """A new visitor: a fresh browser context (own cookies, own Gradio session) on the page."""
    context = browser.new_context(viewport=viewport or {"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(STEP_TIMEOUT_MS)
    page.goto(url)
    return page


def shoot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name), full_page=True)


def open_pair(page, pair_id: str) -> None:
    page.get_by_role("tab", name="Pairs").click()
    page.locator("#pairs-table").get_by_role("gridcell", name=pair_id, exact=True).first.click()


def test_the_guide_tab_renders(space, browser):
    from playwright.sync_api import expect

    page = visitor(browser, space[0])
    expect(page.locator("#space-warning")).to_contain_text("private copy")
    page.get_by_role("tab", name="Guide").click()
    expect(page.locator("#guide-intro")).to_contain_text("Aligning TeacheR with StudenT PreferencEs")
    expect(page.locator("#guide-intro a[href='https://arxiv.org/abs/2406.19227']").first).to_be_visible()
    expect(page.locator("#arte-loop")).to_be_visible()
    expect(page.locator("#guide-tour")).to_contain_text("three-step tour")
    expect(page.locator("#guide-glossary")).to_contain_text("binomial noise sd")
    shoot(page, "guide.png")
    page.context.close()


def test_every_tab_is_reachable_on_a_phone(space, browser):
    from playwright.sync_api import expect

    page = visitor(browser, space[0], PHONE)
    expect(page.get_by_role("tab", name="Drafts", exact=True)).to_be_visible()
    names = page.get_by_role("tab").all_inner_texts()
    assert {"Drafts", "Pairs", "Analysis", "Runs", "Export", "Guide"} <= {n.strip() for n in names}
    for name in names:
        tab = page.get_by_role("tab", name=name.strip(), exact=True)
        expect(tab).to_be_visible()  # in the bar itself, not behind a "…" menu
        box = tab.bounding_box()
        assert box and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"] + 1, name
        tab.click()
        expect(tab).to_have_attribute("aria-selected", "true")
    page.get_by_role("tab", name="Drafts", exact=True).click()
    run = page.locator("#run-select")
    expect(run).to_be_visible()
    box = run.bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"] + 1  # the run picker is not cut
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]  # nothing sticks out sideways
    shoot(page, "phone.png")
    page.context.close()


def test_a_sandboxed_decision_is_invisible_to_a_second_visitor(space, browser):
    from playwright.sync_api import expect

    url, store_file = space
    alice = visitor(browser, url)
    open_pair(alice, "pr-1")
    expect(alice.locator("#pairs-header")).to_contain_text("rationale pair")
    alice.locator("#pairs-action").get_by_text(re.compile(r"^Exclude")).first.click()
    text_box(alice, "pairs-why").fill(REASON)
    alice.locator("#pairs-decide").click()
    expect(alice.locator("#pairs-trail")).to_contain_text(REASON)
    shoot(alice, "space_alice.png")

    bob = visitor(browser, url)
    open_pair(bob, "pr-1")
    expect(bob.locator("#pairs-header")).to_contain_text("rationale pair")
    bob.wait_for_timeout(1000)  # let every listener of the click answer before judging what is absent
    expect(bob.locator("#pairs-trail")).not_to_contain_text(REASON)
    expect(bob.locator("#pairs-header")).not_to_contain_text("decision in force")
    shoot(bob, "space_bob.png")
    alice.context.close()
    bob.context.close()
    with Store(store_file, read_only=True) as shared:  # the served app holds it open: a read-only look
        assert int(shared.scalar("SELECT count(*) FROM pair_decisions")) == 0
