"""Run now: the confirmation names the total and the account, a second click orders nothing,
"buy now" for one row is one order per confirmation, and a panel exposed without a login
places no orders."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
import time_machine
from streamlit import config
from streamlit.testing.v1 import AppTest

from dca.account_view import BrokerMode
from dca.ledger import Ledger
from dca.panel.run_flow import (
    confirmation_text,
    is_loopback,
    one_off_confirmation_text,
    orders_blocked_reason,
)
from tests.conftest import HEADER

APP = Path(__file__).resolve().parents[2] / "app.py"
MONDAY_0901_NY = "2027-03-01 14:01:00+00:00"



@pytest.fixture
def plan(tmp_path, monkeypatch) -> Path:
    path = tmp_path / "plan.csv"
    path.write_text(HEADER + "Active,SPY,700,Weekly,,s1\nActive,VTI,1000,Monthly,,v1\n")
    monkeypatch.setenv("DCA_PLAN", str(path))
    return path


def history(tmp_path):
    return Ledger(tmp_path / "home" / "ledger.sqlite3").history()


def run_page() -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=30).run()
    at.switch_page("pages/run.py").run()
    assert not at.exception, at.exception
    return at


def keys(at: AppTest) -> set[str]:
    return {b.key for b in at.button}


def bold(at: AppTest) -> list[str]:
    return [m.value for m in at.markdown if m.value.startswith("**")]


def test_the_confirmation_names_the_total_and_the_account_before_anything_is_bought(plan, tmp_path):
    with time_machine.travel(MONDAY_0901_NY, tick=False):
        at = run_page()
        at.button(key="run_now").click().run()
        preview = at.dataframe[0].value
        assert set(zip(preview["Row"], preview["Symbol"], preview["Outcome"])) == {(2, "SPY", "planned"),
                                                                                  (3, "VTI", "planned")}
        assert (preview["Quantity"] > 0).all()
        total = Decimal(str(round(preview["Cost"].sum(), 2)))
        expected = confirmation_text(total, 2, BrokerMode("SIMULATED"))
        assert expected in [m.value.strip("*") for m in at.markdown]
        assert "about $" in expected and "SIMULATED broker (no real money)" in expected
        assert history(tmp_path) == []  # nothing before the confirmation
        at.button(key="run_cancel").click().run()
        assert "run_confirm" not in keys(at) and history(tmp_path) == []


def test_a_second_click_on_confirm_orders_nothing_and_says_nothing_is_due(plan, tmp_path):
    with time_machine.travel(MONDAY_0901_NY, tick=False):
        at = run_page()
        at.button(key="run_now").click().run()
        pending = at.session_state["run_pending"]
        at.button(key="run_confirm").click().run()
        assert len(history(tmp_path)) == 2
        assert "run_confirm" not in keys(at)  # the confirmation is used up
        # A double click: the second click reaches the server with the confirmation it was made on.
        at.session_state["run_pending"] = pending
        at.run()
        at.button(key="run_confirm").click().run()
        assert not at.exception
        assert any("nothing due" in m.value for m in at.markdown)
    assert len(history(tmp_path)) == 2


def test_buy_now_buys_one_row_once_after_its_confirmation(plan, tmp_path):
    with time_machine.travel(MONDAY_0901_NY, tick=False):
        at = run_page()
        at.selectbox(key="buy_row").set_value("Row 3: VTI ($1,000.00 Monthly)").run()
        at.number_input(key="buy_amount").set_value(500.0).run()
        at.button(key="buy_now").click().run()
        assert history(tmp_path) == []
        text = one_off_confirmation_text("VTI", Decimal("500.00"), BrokerMode("SIMULATED"))
        assert text in [m.value.strip("*") for m in at.markdown]
        pending = at.session_state["buy_pending"]
        at.button(key="buy_confirm").click().run()
        assert any("Buy now: VTI filled" in s.value for s in at.success)
        [bought] = history(tmp_path)
        assert (bought.symbol, bought.amount_usd, bought.row_id.startswith("m-")) == ("VTI", Decimal("500.00"), True)
        # The second click of a double click carries the same confirmation, hence the same key.
        at.session_state["buy_pending"] = pending
        at.run()
        at.button(key="buy_confirm").click().run()
        assert any("already placed; it was not bought again" in i.value for i in at.info)
    assert len(history(tmp_path)) == 1


def test_an_exposed_panel_without_a_login_places_no_orders(plan, tmp_path):
    config.set_option("server.address", "0.0.0.0")
    at = run_page()
    assert any("Placing orders is turned off" in e.value and "'0.0.0.0'" in e.value for e in at.error)
    assert at.button(key="run_now").disabled and at.button(key="buy_now").disabled
    assert not at.button(key="run_preview").disabled  # a preview orders nothing
    with pytest.raises(Exception, match="disabled"):
        at.button(key="run_now").click()


def test_an_exposed_panel_with_a_login_configured_asks_to_log_in(plan):
    config.set_option("server.address", "0.0.0.0")
    at = AppTest.from_file(str(APP), default_timeout=30)
    at.secrets["auth"] = {"redirect_uri": "https://dca.example/oauth2callback", "cookie_secret": "x",
                          "client_id": "id", "client_secret": "s", "server_metadata_url": "https://idp.example/.well-known"}
    at.run()
    at.switch_page("pages/run.py").run()
    assert not at.exception
    assert any("until you log in" in e.value for e in at.error)
    assert "run_login" in keys(at) and at.button(key="run_now").disabled


@pytest.mark.parametrize("address, loopback", [
    ("127.0.0.1", True), ("localhost", True), ("::1", True), ("[::1]", True), ("127.0.0.2", True),
    ("0.0.0.0", False), ("", False), (None, False), ("192.168.1.5", False), ("dca.example", False),
])
def test_what_counts_as_loopback(address, loopback):
    assert is_loopback(address) is loopback


def test_orders_blocked_reason():
    assert orders_blocked_reason("127.0.0.1", False, False) is None
    assert "no login is configured" in orders_blocked_reason("0.0.0.0", False, False)
    assert "not set (every interface)" in orders_blocked_reason(None, False, False)
    assert "until you log in" in orders_blocked_reason("0.0.0.0", True, False)
    assert orders_blocked_reason("0.0.0.0", True, True) is None


def test_confirmation_words_per_account():
    assert "the LIVE account U123 (real money)" in confirmation_text(Decimal("10"), 1, BrokerMode("LIVE", "U123"))
    assert "1 buy for about $1,234.50" in confirmation_text(Decimal("1234.5"), 1, BrokerMode("PAPER", "DU1"))
    assert "PAPER account DU1 (no real money)" in one_off_confirmation_text("SPY", Decimal("5"), BrokerMode("PAPER", "DU1"))
    assert "may be LIVE" in confirmation_text(Decimal("1"), 2, BrokerMode("IBKR"))


def test_a_confirmation_left_open_until_more_is_due_buys_nothing_and_asks_again(tmp_path, monkeypatch):
    path = tmp_path / "plan.csv"
    path.write_text(HEADER + "Active,SPY,700,Daily,,d1\n")
    monkeypatch.setenv("DCA_PLAN", str(path))
    with time_machine.travel(MONDAY_0901_NY, tick=False) as clock:
        at = run_page()
        at.button(key="run_now").click().run()
        assert "Place 1 buy for about" in " ".join(bold(at))
        clock.move_to("2027-03-02 14:01:00+00:00")  # Tuesday: Tuesday's buy is due, not Monday's
        at.button(key="run_confirm").click().run()
        assert not at.exception
        assert history(tmp_path) == []
        assert any("What is due changed since you were asked" in w.value for w in at.warning)
        assert at.session_state["run_pending"]["keys"] == {("d1", "2027-03-02")}  # asked again, for Tuesday
        at.button(key="run_confirm").click().run()
    bought = [(e.scheduled_date.isoformat(), str(e.status)) for e in history(tmp_path)]
    assert ("2027-03-02", "filled") in bought


def test_still_confirmed_holds_only_for_what_was_named(tmp_path, monkeypatch):
    from datetime import date, datetime, timezone

    from dca.engine import RunReport
    from dca.execution import Execution
    from dca.domain import Outcome
    from dca.panel.run_flow import confirmation_for, still_confirmed

    def report(*planned):
        r = RunReport(datetime(2027, 3, 1, 14, tzinfo=timezone.utc), "simulated", True, dry_run=True)
        for row_id, cost in planned:
            r.executions.append(Execution(row_id, date(2027, 3, 1), datetime(2027, 3, 1, 14, tzinfo=timezone.utc),
                                          "SPY", "Daily", Decimal(cost), Outcome.PLANNED, cost=Decimal(cost)))
        return r

    pending = confirmation_for(report(("a", "100"), ("b", "200")))
    assert pending["total"] == Decimal("300.00") and pending["buys"] == 2
    assert still_confirmed(pending, report(("a", "101"), ("b", "210")))  # prices moved a little
    assert not still_confirmed(pending, report(("a", "100"), ("b", "200"), ("c", "5")))  # more is due
    assert not still_confirmed(pending, report(("a", "100"), ("b", "300")))  # far more money
    assert confirmation_for(report()) is None
