"""Every page of the panel in every surrounding it must stand in: the embedded default, an
empty plan, a plan of nothing but bad rows, an IBKR paper account (the local gateway
emulator, real ibind), a Google Sheet (the local Sheets emulator, real gspread), and the
same two unreachable. Each page must draw its own title and the broker banner, and say
what is wrong in a sentence: no exception, no traceback, no Streamlit error page.

And the Run now flow on the paper account: preview, confirm, exactly one order per due
row at the gateway, and the History shows the fills."""

from __future__ import annotations

import socket
from decimal import Decimal
from pathlib import Path

import pytest
import time_machine
from streamlit.testing.v1 import AppTest

from dca.ledger import Ledger
from tests.conftest import HEADER
from tests.fakes.ibkr_gateway import IbkrGateway
from tests.fakes.sheets_api import SheetsEmulator, point_dca_at

APP = Path(__file__).resolve().parents[2] / "app.py"
PAGES = {"pages/plan.py": "Plan", "pages/calendar.py": "Calendar", "pages/history.py": "History",
         "pages/run.py": "Run now", "pages/portfolio.py": "Portfolio", "pages/status.py": "Status"}
SID = "1AbCdEfGhIjKlMnOpQrStUvWxYz0123456789"
SHEET_URL = f"https://docs.google.com/spreadsheets/d/{SID}/edit#gid=0"
GOOD_ROWS = [["Active", "VTI", "$1,000.00", "Monthly", "", "v1"], ["Active", "SPY", "500", "Weekly", "", "s1"]]
BAD_ROWS = ("Active,,100,Weekly,,b1\nActive,SPY,-5,Weekly,,b2\nActive,VTI,100,Fortnightly,,b3\n"
            "Maybe,QQQ,100,Daily,,b4\nActive,IWM,1e400,Daily,,b5\nActive,SPY;VTI,100,Daily,,b6\n")
MONDAY_0901_NY = "2027-03-01 14:01:00+00:00"


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed once the block ends: nothing listens there


@pytest.fixture(autouse=True)
def no_outside_settings(monkeypatch):
    for key in ("IBIND_REST_URL", "IBIND_ACCOUNT_ID", "IBIND_USE_OAUTH", "DCA_BROKER", "DCA_PLAN",
                "GOOGLE_APPLICATION_CREDENTIALS", "DCA_SHEETS_API_URL"):
        monkeypatch.delenv(key, raising=False)


def csv_plan(tmp_path, monkeypatch, rows: str) -> None:
    path = tmp_path / "plan.csv"
    path.write_text(HEADER + rows)
    monkeypatch.setenv("DCA_PLAN", str(path))


def paper_gateway(monkeypatch, url: str) -> None:
    monkeypatch.setenv("DCA_BROKER", "ibkr")
    monkeypatch.setenv("IBIND_REST_URL", url)
    monkeypatch.setenv("IBIND_ACCOUNT_ID", "DU1234567")
    monkeypatch.setenv("DCA_IBKR_TIMEOUT", "2")


@pytest.fixture
def surroundings(request, tmp_path, monkeypatch):
    """Sets the environment for one surrounding; yields (banner, emulator or None)."""
    kind = request.param
    simulated = "SIMULATED broker — no real money"
    paper = "PAPER account DU1234567 at Interactive Brokers — no real money"
    if kind == "default":
        yield simulated, None
    elif kind == "empty plan":
        csv_plan(tmp_path, monkeypatch, "")
        yield simulated, None
    elif kind == "only bad rows":
        csv_plan(tmp_path, monkeypatch, BAD_ROWS)
        yield simulated, None
    elif kind in ("ibkr paper", "ibkr unreachable"):
        csv_plan(tmp_path, monkeypatch, "Active,VTI,1000,Monthly,,v1\nActive,SPY,500,Weekly,,s1\n")
        if kind == "ibkr unreachable":
            paper_gateway(monkeypatch, f"http://127.0.0.1:{closed_port()}/v1/api/")
            yield paper, None
        else:
            gateway = IbkrGateway(account="DU1234567")
            running = gateway.serve()
            paper_gateway(monkeypatch, running.url)
            yield paper, gateway
            running.stop()
    else:  # a Google Sheet, answering or not
        with SheetsEmulator() as emulator:
            point_dca_at(emulator, tmp_path, monkeypatch)
            monkeypatch.setenv("DCA_PLAN", SHEET_URL)
            emulator.add_spreadsheet(SID, {"Plan": [["Status", "Stock Symbol", "Amount (USD)", "Frequency", "Log",
                                                     "ID"], *GOOD_ROWS]})
            if kind == "sheet unreachable":
                emulator.fail("", 503, times=10_000)
            yield simulated, emulator


def every_text(at: AppTest) -> list[str]:
    found = []
    for kind in ("title", "markdown", "caption", "error", "warning", "info", "success", "exception", "text"):
        found += [str(getattr(e, "value", "")) for e in at.get(kind)]
    return found


SURROUNDINGS = ["default", "empty plan", "only bad rows", "ibkr paper", "ibkr unreachable", "sheet",
                "sheet unreachable"]


@pytest.mark.parametrize("surroundings", SURROUNDINGS, indirect=True)
@pytest.mark.parametrize("name", list(PAGES))
def test_each_page_draws_itself_in_each_surrounding(surroundings, name):
    banner, _ = surroundings
    with time_machine.travel(MONDAY_0901_NY, tick=False):
        at = AppTest.from_file(str(APP), default_timeout=30).run()
        at.switch_page(name).run()
    assert not at.exception, [e.value for e in at.exception]
    assert [t.value for t in at.title][:1] == [PAGES[name]]
    shown = every_text(at)
    assert any(banner in t for t in shown), shown
    assert not any("Traceback" in t or "Something went wrong on this page" in t for t in shown), shown


@pytest.mark.parametrize("surroundings", ["only bad rows"], indirect=True)
def test_a_plan_of_bad_rows_is_named_row_by_row_on_the_plan_page(surroundings):
    at = AppTest.from_file(str(APP), default_timeout=30).run()
    errors = [e.value for e in at.error]
    assert [e.split(":")[0] for e in errors] == [f"Row {n}" for n in range(2, 8)], errors


@pytest.mark.parametrize("surroundings", ["ibkr paper"], indirect=True)
def test_run_now_on_a_paper_account_orders_each_due_row_once(surroundings, tmp_path):
    _, gateway = surroundings
    with time_machine.travel(MONDAY_0901_NY, tick=False):  # VTI's first trading day of March, SPY's Monday
        at = AppTest.from_file(str(APP), default_timeout=60).run()
        at.switch_page("pages/run.py").run()
        at.button(key="run_preview").click().run()
        assert not at.exception
        preview = at.dataframe[0].value
        assert set(preview["Symbol"]) == {"VTI", "SPY"}
        assert gateway.count("POST", r".*/iserver/account/[^/]+/orders") == 0  # a preview orders nothing
        at.button(key="run_now").click().run()
        assert any("DU1234567" in m.value and "PAPER" in m.value for m in at.markdown), \
            [m.value for m in at.markdown]  # the confirmation names the account
        assert gateway.orders == []
        at.button(key="run_confirm").click().run()
        assert not at.exception
        assert not [b for b in at.button if b.key == "run_confirm"]  # nothing left to confirm twice
        at.button(key="run_now").click().run()  # a second go the same morning
        assert any("nothing due" in m.value for m in at.markdown)
    assert sorted(o.order_ref for o in gateway.orders) == ["dca-s1-20270301", "dca-v1-20270301"]
    recorded = Ledger(tmp_path / "home" / "ledger.sqlite3").history()
    assert {(e.symbol, str(e.status)) for e in recorded} == {("VTI", "filled"), ("SPY", "filled")}
    assert {e.quantity for e in recorded} == {Decimal("10"), Decimal("5")}  # at the emulator's $100
    with time_machine.travel(MONDAY_0901_NY, tick=False):
        at.switch_page("pages/history.py").run()
    assert not at.exception
    assert sorted(at.dataframe[0].value["Symbol"]) == ["SPY", "VTI"]
