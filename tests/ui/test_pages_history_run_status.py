"""The History, Run now and Status pages through AppTest, on the embedded default."""

from __future__ import annotations

from pathlib import Path

import pytest
import time_machine
from streamlit.testing.v1 import AppTest

from dca.cli import main
from dca.history_views import (HistoryFilter, average_prices, bought_per_day, cumulative_invested, invested_per_month,
                               outcome_counts)
from dca.ledger import Ledger
from tests.conftest import HEADER

APP = Path(__file__).resolve().parents[2] / "app.py"
BANNER = "SIMULATED broker — no real money"



@pytest.fixture
def plan(tmp_path, monkeypatch) -> Path:
    path = tmp_path / "plan.csv"
    path.write_text(HEADER + "Active,SPY,700,Weekly,,s1\nActive,VTI,1000,Monthly,,v1\nActive,QQQ,ten,Daily,,q1\n")
    monkeypatch.setenv("DCA_PLAN", str(path))
    return path


def page(name: str) -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=30).run()
    at.switch_page(f"pages/{name}.py").run()
    assert not at.exception, at.exception
    assert any(BANNER in w.value for w in at.warning)
    return at


def history_of_three_months(plan: Path) -> None:
    for day in ("2027-03-01", "2027-03-08", "2027-04-01", "2027-04-05", "2027-05-03"):
        assert main(["run", "--now", f"{day}T09:01", "--plan", str(plan)]) in (0, 1)


def test_history_shows_the_ledger_filtered_with_its_charts(plan, tmp_path):
    history_of_three_months(plan)
    at = page("history")
    assert at.title[0].value == "History"
    df = at.dataframe[0].value
    recorded = Ledger(tmp_path / "home" / "ledger.sqlite3").history()
    assert set(df["Symbol"]) == {"SPY", "VTI"} and {o.split()[0] for o in df["Outcome"]} == {"filled", "missed"}
    assert len(df) == len(recorded) == 13  # every execution recorded, bought or missed (the weeks not run)
    assert list(df["Scheduled (ET)"]) == sorted(df["Scheduled (ET)"], reverse=True)  # the newest first
    invested = sum(e.cost for e in recorded if str(e.status) == "filled")
    assert at.metric[0].value == f"${invested:,.2f}"
    assert len(at.get("vega_lite_chart")) == 4  # invested, per month, prices, outcomes
    at.multiselect(key="history_symbols").set_value(["VTI"]).run()
    assert set(at.dataframe[0].value["Symbol"]) == {"VTI"} and len(at.dataframe[0].value) == 3
    at.multiselect(key="history_statuses").set_value(["missed"]).run()
    assert any("No execution matches" in i.value for i in at.info)


def test_history_figures_add_up(plan, tmp_path):
    history_of_three_months(plan)
    ledger = Ledger(tmp_path / "home" / "ledger.sqlite3")
    executions = ledger.history()
    filled = [e for e in executions if str(e.status) == "filled"]
    spy = [e for e in filled if e.symbol == "SPY"]
    bought = bought_per_day(ledger)
    assert cumulative_invested(bought_per_day(ledger, HistoryFilter(symbols=("SPY",))))[-1].invested \
        == sum(e.cost for e in spy)
    assert [p.invested for p in cumulative_invested(bought) if p.symbol == "SPY"][-1] == sum(e.cost for e in spy)
    assert sum(invested_per_month(bought).values()) == sum(e.cost for e in filled)
    assert outcome_counts(ledger) == {s: sum(1 for e in executions if str(e.status) == s)
                                      for s in {str(e.status) for e in executions}}
    points = [p for p in average_prices(bought) if p.symbol == "SPY"]
    shares = sum(e.quantity for e in spy)
    assert points[-1].average_price == (sum(e.cost for e in spy) / shares).quantize(points[-1].average_price)
    assert min(p.price_paid for p in points) <= points[-1].average_price <= max(p.price_paid for p in points)


def test_history_says_so_when_nothing_is_recorded(plan):
    at = page("history")
    assert any("Nothing has been recorded yet" in i.value for i in at.info)


def test_run_now_previews_then_buys_once(plan, tmp_path):
    with time_machine.travel("2027-03-01 14:01:00+00:00", tick=False):  # 09:01 in New York
        at = page("run")
        at.button(key="run_preview").click().run()
        assert not at.exception
        df = at.dataframe[0].value
        assert set(zip(df["Symbol"], df["Outcome"])) == {("SPY", "planned"), ("VTI", "planned")}
        assert Ledger(tmp_path / "home" / "ledger.sqlite3").history() == []  # a preview records nothing
        assert any("Stock Symbol" in e.value or "Amount" in e.value for e in at.error)  # QQQ's bad amount
        at.button(key="run_now").click().run()
        assert Ledger(tmp_path / "home" / "ledger.sqlite3").history() == []  # asks first
        at.button(key="run_confirm").click().run()
        df = at.dataframe[0].value
        assert set(zip(df["Symbol"], df["Outcome"])) == {("SPY", "filled"), ("VTI", "filled")}
        at.button(key="run_now").click().run()
        assert any("nothing due" in m.value for m in at.markdown)
        assert not [b for b in at.button if b.key == "run_confirm"]  # nothing to confirm
    assert len(Ledger(tmp_path / "home" / "ledger.sqlite3").history()) == 2


def test_run_now_says_so_when_another_run_holds_the_lock(plan, tmp_path, monkeypatch):
    monkeypatch.setenv("DCA_LOCK_TIMEOUT", "0")  # do not wait at all in the test
    with time_machine.travel("2027-03-01 14:01:00+00:00", tick=False):
        at = page("run")
        at.button(key="run_now").click().run()
        with Ledger(tmp_path / "home" / "ledger.sqlite3").run_lock():  # e.g. the worker's run
            at.button(key="run_confirm").click().run()
    assert any("another run is still in progress" in e.value for e in at.error)
    assert Ledger(tmp_path / "home" / "ledger.sqlite3").history() == []


def test_status_shows_problems_last_run_and_masked_settings(plan, tmp_path, monkeypatch):
    assert main(["run", "--now", "2027-03-01T09:01", "--plan", str(plan)]) == 1  # QQQ's row is bad
    at = page("status")
    assert at.title[0].value == "Status"
    assert any("'ten'" in e.value for e in at.error)  # the open plan error
    assert at.metric[0].value == "2027-03-01 09:01"
    settings = at.dataframe[0].value
    assert "max_order_usd" in set(settings["Setting"])


def test_history_csv_has_every_chosen_execution(plan, tmp_path):
    from datetime import date

    from dca.panel.history_cache import csv_of, ledger_stamp

    history_of_three_months(plan)
    path = tmp_path / "home" / "ledger.sqlite3"
    lines = csv_of(Ledger(path), str(path), ledger_stamp(path), date(2027, 1, 1), date(2027, 12, 31), ("VTI",), ()).splitlines()
    assert len(lines) == 1 + 3 and lines[0].startswith("row_id,") and all(",VTI," in line for line in lines[1:])


def test_the_history_cache_sees_a_new_run(plan, tmp_path):
    history_of_three_months(plan)
    at = page("history")
    assert len(at.dataframe[0].value) == 13
    assert main(["run", "--now", "2027-05-10T09:01", "--plan", str(plan)]) in (0, 1)
    at = page("history")  # a new visit; the process's caches are kept, as on a running server
    assert len(at.dataframe[0].value) == 14
