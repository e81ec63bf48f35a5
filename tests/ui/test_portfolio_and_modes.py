"""The Portfolio page and the broker-mode banner: the simulated broker (positions from its
fills, cash not tracked) and IBKR paper/live through the local gateway emulator."""

from __future__ import annotations

import socket
from decimal import Decimal
from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from dca.cli import main
from tests.conftest import HEADER
from tests.fakes.ibkr_gateway import IbkrGateway

APP = Path(__file__).resolve().parents[2] / "app.py"
PAGES = ["pages/plan.py", "pages/calendar.py", "pages/history.py", "pages/run.py", "pages/portfolio.py",
         "pages/status.py"]


@pytest.fixture(autouse=True)
def fresh_settings_cache(monkeypatch):
    for key in ("IBIND_REST_URL", "IBIND_ACCOUNT_ID", "IBIND_USE_OAUTH"):
        monkeypatch.delenv(key, raising=False)
    st.cache_resource.clear()
    yield
    st.cache_resource.clear()


@pytest.fixture
def plan(tmp_path, monkeypatch) -> Path:
    path = tmp_path / "plan.csv"
    path.write_text(HEADER + "Active,VTI,1000,Monthly,,v1\nActive,SPY,500,Weekly,,s1\n")
    monkeypatch.setenv("DCA_PLAN", str(path))
    return path


@pytest.fixture
def gateway(monkeypatch):
    gw = IbkrGateway(account="DU1234567")
    running = gw.serve()
    monkeypatch.setenv("DCA_BROKER", "ibkr")
    monkeypatch.setenv("IBIND_REST_URL", running.url)
    monkeypatch.setenv("IBIND_ACCOUNT_ID", "DU1234567")
    yield gw
    running.stop()


def page(name: str) -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=30).run()
    at.switch_page(name).run()
    return at


def texts(elements) -> list[str]:
    return [e.value for e in elements]


def test_simulated_positions_come_from_its_fills_and_cash_is_not_tracked(plan):
    assert main(["run", "--now", "2026-12-01T09:00:30"]) == 0  # VTI's month starts: it fills
    at = page("pages/portfolio.py")
    assert not at.exception
    assert any("SIMULATED broker" in w for w in texts(at.warning))
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Cash"] == "not tracked" and metrics["Net liquidation"] == "not tracked"
    df = at.dataframe[0].value
    held = dict(zip(df["Symbol"], df["Quantity"]))
    assert held["VTI"] > 0 and held["SPY"] == 0  # SPY's week began on Monday 11-30, before the plan ran
    spend = dict(zip(df["Symbol"], df["Plan per month"]))
    assert spend == {"SPY": pytest.approx(500 * 52 / 12, abs=0.01), "VTI": 1000.0}


def test_an_ibkr_paper_account_shows_its_positions_cash_and_net_liquidation(plan, gateway):
    gateway.positions = {"VTI": Decimal("3")}
    at = page("pages/portfolio.py")
    assert not at.exception
    assert any("PAPER account DU1234567" in i for i in texts(at.info))
    assert not any("SIMULATED" in w for w in texts(at.warning))
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Cash"] == "$100,000.00" and metrics["Net liquidation"] == "$100,300.00"
    df = at.dataframe[0].value
    assert dict(zip(df["Symbol"], df["Market value"]))["VTI"] == 300.0


def test_an_unreachable_broker_is_a_sentence_on_the_portfolio_page(plan, monkeypatch):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed once the block ends: nothing listens there
    monkeypatch.setenv("DCA_BROKER", "ibkr")
    monkeypatch.setenv("IBIND_REST_URL", f"http://127.0.0.1:{port}/v1/api/")
    monkeypatch.setenv("IBIND_ACCOUNT_ID", "DU1234567")
    monkeypatch.setenv("DCA_IBKR_TIMEOUT", "1")
    at = page("pages/portfolio.py")
    assert not at.exception
    assert any("cannot be read now" in e for e in texts(at.error))


@pytest.mark.parametrize("name", PAGES)
def test_a_live_account_gets_a_red_banner_on_every_page(plan, monkeypatch, name):
    monkeypatch.setenv("DCA_BROKER", "ibkr")
    monkeypatch.setenv("IBIND_REST_URL", "http://127.0.0.1:9/v1/api/")  # never reached for the banner
    monkeypatch.setenv("IBIND_ACCOUNT_ID", "U7654321")
    monkeypatch.setenv("DCA_IBKR_TIMEOUT", "1")
    at = page(name)
    assert not at.exception
    assert any("LIVE account U7654321 at Interactive Brokers — real money" in e for e in texts(at.error))
