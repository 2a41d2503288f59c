"""What the browser tests share: Debian's Chromium with Playwright, the check that both are there, and the
locators every tab's test uses."""

import os
from pathlib import Path

import pytest

from paths import REPO

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = REPO / "test-artifacts"  # screenshots of the browser tests, kept for a failed run
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
STEP_TIMEOUT_MS = 30_000


def require_browser():
    """Chromium and Playwright, or a skip that says what is missing (a failure in CI)."""
    missing = None
    if not CHROMIUM.exists():
        missing = f"{CHROMIUM} not found (install it: `make browser` or `apt-get install -y chromium`)"
    else:
        try:
            import playwright.sync_api  # noqa: F401
        except ImportError:
            missing = "the playwright package is not installed (`pip install -e '.[dev]'`)"
    if missing:
        if os.environ.get("CI"):
            pytest.fail(missing)
        pytest.skip(missing)


def text_box(page, elem_id: str):
    """The text input or text area of a Gradio component."""
    return page.locator(f"#{elem_id} textarea, #{elem_id} input").first


def cell(page, table_id: str, text: str):
    """The first visible table cell holding exactly `text` (Gradio also renders a hidden header copy)."""
    return page.locator(f"#{table_id}").get_by_role("gridcell", name=text, exact=True).first
