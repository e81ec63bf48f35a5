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


def test_the_panel_shows_the_example_plan_and_upcoming_buys_with_the_simulated_banner(panel, page, tmp_path):
    page.goto(panel)
    page.get_by_text("SIMULATED broker — no real money").wait_for(timeout=30000)
    page.get_by_role("heading", name="Plan").wait_for()
    table = page.locator("[data-testid='stDataFrame']")
    table.wait_for()
    page.screenshot(path=str(tmp_path / "plan.png"))
    assert (tmp_path / "home" / "plan.csv").exists()

    page.get_by_role("link", name="Upcoming").click()
    page.get_by_role("heading", name="Upcoming").wait_for(timeout=30000)
    page.get_by_text("SIMULATED broker — no real money").wait_for()
    page.get_by_text("Executions").wait_for()
    page.screenshot(path=str(tmp_path / "upcoming.png"))
    assert "Total in range" in page.content()
