"""The panel in a real browser: Debian's Chromium driven by Playwright against a live
`streamlit run app.py` on loopback, on the embedded default."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = shutil.which("chromium")

if CHROMIUM is None and os.environ.get("CI"):
    pytest.fail("CI must run the browser tests: .ci/run installs Debian's chromium", pytrace=False)
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no chromium (apt-get install chromium)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def panel(tmp_path):
    port = free_port()
    env = {**os.environ, "DCA_HOME": str(tmp_path / "home")}
    server = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port)],
        cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(150):  # bounded: up to ~30 s for the server to come up
            try:
                if requests.get(f"{url}/_stcore/health", timeout=1).ok:
                    break
            except requests.ConnectionError:
                pass
            if server.poll() is not None:
                pytest.fail(f"streamlit exited: {server.stderr.read()}")
            time.sleep(0.2)
        else:
            pytest.fail("streamlit did not become healthy")
        yield url
    finally:
        server.terminate()
        server.wait(timeout=10)


@pytest.fixture
def page():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync"],
        )
        yield browser.new_page(viewport={"width": 1400, "height": 1000})
        browser.close()


PAGES = [("Calendar", "Calendar"), ("History", "History"), ("Run now", "Run now"), ("Portfolio", "Portfolio"),
         ("Status", "Status")]
BANNER = "SIMULATED broker — no real money"
# Screenshots of every page, for a person to look at (git-ignored).
SHOTS = Path(os.environ.get("DCA_SCREENSHOTS", REPO / "screenshots"))


def settle(page) -> None:
    """Wait until Streamlit has finished the rerun (its status widget disappears)."""
    page.wait_for_function("!document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=30000)


def test_every_page_renders_with_the_banner_and_a_plan_edit_is_saved(panel, page, tmp_path):
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    # The panel makes no outside request at all (it must work offline and leak nothing).
    outside: list[str] = []
    page.on("request", lambda r: None if r.url.startswith((panel, "data:", "blob:")) else outside.append(r.url))
    SHOTS.mkdir(parents=True, exist_ok=True)

    page.goto(panel)
    page.get_by_text(BANNER).wait_for(timeout=30000)
    page.get_by_role("heading", name="Plan").wait_for()
    grid = page.locator("[data-testid='stDataFrame']")
    grid.wait_for()
    settle(page)
    page.screenshot(path=str(SHOTS / "plan.png"), full_page=True)

    # Edit the first row's Amount in the grid (a canvas: click its first cell, move right
    # to Amount (USD), type), then save: only that cell changes in the file.
    plan = tmp_path / "home" / "plan.csv"
    before = plan.read_text().splitlines()
    box = grid.bounding_box()
    page.mouse.click(box["x"] + 55, box["y"] + 35 + 17)  # past the row-selection column
    for _ in range(3):
        page.keyboard.press("ArrowRight")
    page.keyboard.press("Enter")  # opens the cell's editor
    editor = page.locator("#portal input").first
    editor.wait_for(timeout=10000)
    editor.fill("25")
    editor.press("Enter")
    page.get_by_text("Unsaved: 1 changed cell(s).").wait_for(timeout=30000)
    page.get_by_role("button", name="Save changes").click()
    page.get_by_text("Saved: 1 cell(s) written.").wait_for(timeout=30000)
    after = plan.read_text().splitlines()
    assert after[1] == before[1].replace("AAPL,10,", "AAPL,25,") and after[2:] == before[2:]

    for link, heading in PAGES:
        page.get_by_role("link", name=link).click()
        page.get_by_role("heading", name=heading).wait_for(timeout=30000)
        page.get_by_text(BANNER).wait_for()
        settle(page)
        assert page.locator("[data-testid='stException']").count() == 0, link
        page.screenshot(path=str(SHOTS / f"{link.lower().replace(' ', '-')}.png"), full_page=True)
    assert page.locator("table.dca-month").count() == 0  # left the Calendar: its grid is gone
    assert not outside, outside
    assert not errors, errors


def test_run_now_previews_confirms_and_buy_now_shows_in_the_history(panel, page, tmp_path):
    """The real clicks AppTest cannot make: preview, the confirmation, buy now; the wall
    clock decides whether a scheduled buy is due, so both answers are accepted there, while
    the buy-now (any day, on the simulated broker) must fill and reach the History."""
    from dca.ledger import Ledger

    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(panel)
    page.get_by_text(BANNER).wait_for(timeout=30000)
    page.get_by_role("link", name="Run now").click()
    page.get_by_role("heading", name="Run now").wait_for(timeout=30000)
    settle(page)
    page.get_by_role("button", name="Preview").click()
    page.get_by_text("Would do:").wait_for(timeout=30000)
    page.get_by_role("button", name="Run now…").click()
    settle(page)
    ledger = Ledger(tmp_path / "home" / "ledger.sqlite3")
    if page.get_by_text("Nothing is due to buy right now").count() == 0:
        page.get_by_text("on the SIMULATED broker (no real money)?").wait_for(timeout=30000)
        assert ledger.history() == []  # asked, not yet bought
        page.get_by_role("button", name="Confirm and buy").click()
        page.get_by_text("Done:").wait_for(timeout=30000)
        settle(page)
    scheduled = len(ledger.history())

    page.get_by_label("Amount (USD)").fill("2000")
    page.get_by_label("Amount (USD)").press("Enter")
    settle(page)
    page.get_by_role("button", name="Buy now…").click()
    page.get_by_text("now, once, outside the schedule").wait_for(timeout=30000)
    page.get_by_role("button", name="Confirm and buy").dblclick()  # a double click is one order
    page.get_by_text("Buy now:").first.wait_for(timeout=30000)
    settle(page)
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "run-now-done.png"), full_page=True)
    one_offs = [e for e in ledger.history() if e.row_id.startswith("m-")]
    assert len(one_offs) == 1 and str(one_offs[0].status) == "filled", (one_offs[0].amount_usd, one_offs[0].message)
    assert len(ledger.history()) == scheduled + 1

    page.get_by_role("link", name="History").click()
    page.get_by_role("heading", name="History").wait_for(timeout=30000)
    settle(page)
    assert page.get_by_text("Nothing has been recorded yet").count() == 0
    assert page.locator("[data-testid='stException']").count() == 0
    assert not errors, errors


def test_a_page_asked_for_first_after_a_restart_is_still_the_panels(panel, page):
    """Right after the server starts, Streamlit runs a page script found under pages/
    directly (its legacy multipage mode) until app.py's st.navigation has run once: the
    first visitor at /history would get Streamlit's own menu (with an "app" page) and no
    error guard of ours. The page routes itself through app.py instead."""
    page.goto(f"{panel}/history")
    page.get_by_text(BANNER).wait_for(timeout=30000)
    page.get_by_role("heading", name="History").wait_for(timeout=30000)
    settle(page)
    nav = page.locator("[data-testid='stSidebarNav']")
    nav.wait_for(timeout=10000)
    links = [t.strip().splitlines()[-1] for t in nav.locator("a").all_inner_texts()]  # after the icon's name
    assert links == ["Plan", "Calendar", "History", "Run now", "Portfolio", "Status"], links
    assert page.url.rstrip("/").endswith("/history")
