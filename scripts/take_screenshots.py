"""Retake the README's screenshots (`assets/screenshots/`) of the studio on the built-in demo dataset.

Starts `python app.py` on an empty temporary store (so it imports `assets/demo/`, as `make demo` does),
then drives headless Debian Chromium through the Drafts, Pairs, Analysis, Signals, Study and Guide tabs.

    .venv/bin/python scripts/take_screenshots.py [--out assets/screenshots] [--chromium /usr/bin/chromium]
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
VIEWPORT = {"width": 1400, "height": 1000}
START_TIMEOUT_S = 120


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_app(folder: Path, port: int) -> subprocess.Popen:
    env = {**os.environ, "ARTE_DB": str(folder / "studio.duckdb"), "GRADIO_SERVER_PORT": str(port),
           "ARTE_RUNS_DIR": str(folder / "runs"), "GRADIO_ANALYTICS_ENABLED": "False"}
    for name in ("ARTE_AUTH", "ARTE_READ_ONLY", "GRADIO_SERVER_NAME"):
        env.pop(name, None)
    log = open(folder / "app.log", "wb")  # a file, not a pipe: a full pipe would stall the app
    return subprocess.Popen([sys.executable, "app.py"], cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)


def wait_for(url: str, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit(f"app.py exited with {process.returncode}:\n{log.read_text(errors='replace')[-2000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.5)
    sys.exit(f"app.py did not answer on {url} within {START_TIMEOUT_S} s")


def shoot(page, out: Path, name: str) -> None:
    page.mouse.move(0, 0)
    page.evaluate("document.querySelectorAll('[role=grid] *').forEach(e => { if (e.scrollLeft) e.scrollLeft = 0; })")
    page.wait_for_timeout(800)
    page.screenshot(path=str(out / name), full_page=True)
    print(f"wrote {out / name}")


def first_cell(page, table_id: str, column: int = 1):
    """A visible body cell of the table's first row (Gradio also renders a hidden header copy)."""
    return page.locator(f"#{table_id} [role=gridcell] >> visible=true").nth(column)


def take(url: str, out: Path, chromium: str) -> None:
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, headless=True,
                                    args=["--no-sandbox", "--disable-gpu", "--no-first-run"])
        page = browser.new_page(viewport=VIEWPORT)
        page.set_default_timeout(60_000)
        page.goto(url)
        expect(page.locator("#drafts-info")).to_contain_text("Drafts 1–")
        first_cell(page, "drafts-table").click()
        expect(page.locator("#drafts-detail-meta")).to_contain_text("words")
        shoot(page, out, "drafts.png")

        page.get_by_role("tab", name="Pairs").click()
        expect(page.locator("#pairs-info")).to_contain_text("Pairs 1–")
        first_cell(page, "pairs-table").click()
        expect(page.locator("#pairs-header")).to_contain_text("pair")
        shoot(page, out, "pairs.png")

        page.get_by_role("tab", name="Analysis").click()
        expect(page.locator("#analysis-summary")).to_contain_text("scored drafts")
        expect(page.locator("#plot-length .js-plotly-plot")).to_be_visible()
        page.wait_for_timeout(2000)  # plotly draws after the element appears
        shoot(page, out, "analysis.png")

        page.get_by_role("tab", name="Signals").click()
        expect(page.locator("#plot-signals .js-plotly-plot")).to_be_visible()
        page.wait_for_timeout(1500)
        shoot(page, out, "signals.png")

        page.get_by_role("tab", name="Study").click()
        expect(page.locator("#study-plot .js-plotly-plot")).to_be_visible()
        page.wait_for_timeout(1500)
        shoot(page, out, "study.png")

        page.get_by_role("tab", name="Guide").click()
        expect(page.locator("#guide-loop svg")).to_be_visible()
        shoot(page, out, "guide.png")
        browser.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(REPO / "assets" / "screenshots"))
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="arte-shots-") as folder:
        port = free_port()
        process = start_app(Path(folder), port)
        try:
            url = f"http://127.0.0.1:{port}/"
            wait_for(url, process, Path(folder) / "app.log")
            take(url, out, args.chromium)
        finally:
            process.terminate()
            process.wait(timeout=30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
