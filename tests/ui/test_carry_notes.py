"""Carry in a person's words: a row whose amount buys less than one share says how much it
has saved, what one share costs, and when the next buy is projected."""

from __future__ import annotations

import math
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import time_machine
from streamlit.testing.v1 import AppTest

from dca.cli import main
from dca.ledger import Ledger
from dca.panel.carry_view import first_buy, is_carrying, last_prices
from tests.conftest import HEADER

APP = Path(__file__).resolve().parents[2] / "app.py"
D = Decimal


def weekly(start: date, n: int) -> list[date]:
    return [start + timedelta(weeks=i) for i in range(n)]


def test_first_buy_is_the_date_the_savings_reach_one_share():
    dates = weekly(date(2027, 3, 8), 30)
    # $10 a week with $30 saved toward a $105 share: 8 more weeks (30 + 80 >= 105).
    assert first_buy(D("10"), D("30"), D("105"), dates) == dates[7]
    assert first_buy(D("10"), D("95"), D("105"), dates) == dates[0]  # exactly enough counts
    assert first_buy(D("10"), D("0"), D("100"), dates) == dates[9]
    assert first_buy(D("10"), D("0"), D("1000"), dates) is None  # not within the dates given
    assert first_buy(D("0"), D("0"), D("10"), dates) is None


def test_only_an_amount_below_one_share_is_carrying():
    assert is_carrying(D("10"), D("230.10"))
    assert not is_carrying(D("700"), D("511"))
    assert not is_carrying(D("10"), None)  # no price recorded yet: nothing to say



@pytest.fixture
def saver(tmp_path, monkeypatch) -> Path:
    path = tmp_path / "plan.csv"
    path.write_text(HEADER + "Active,AAPL,10,Weekly,,a1\nActive,SPY,2000,Weekly,,s1\n")
    monkeypatch.setenv("DCA_PLAN", str(path))
    for day in ("2027-03-01", "2027-03-08", "2027-03-15"):
        assert main(["run", "--now", f"{day}T09:01", "--plan", str(path)]) == 0
    return path


def expected_note(tmp_path) -> tuple[str, str]:
    ledger = Ledger(tmp_path / "home" / "ledger.sqlite3")
    price = last_prices(ledger.path, ["AAPL"])["AAPL"].price
    assert ledger.carry("a1") == D("30")  # three skipped weeks of $10
    weeks = math.ceil((price - 30) / 10)
    first = date(2027, 3, 22) + timedelta(weeks=weeks - 1)  # a week per date; that Monday is no holiday
    return f"${price:,.2f}", f"{first:%a %d %b %Y}"


@pytest.mark.parametrize("page", ["plan", "calendar", "history"])
def test_a_carrying_row_says_so_on_every_page(saver, tmp_path, page):
    price, first = expected_note(tmp_path)
    with time_machine.travel("2027-03-16 15:00:00+00:00", tick=False):
        at = AppTest.from_file(str(APP), default_timeout=30).run()
        if page != "plan":
            at.switch_page(f"pages/{page}.py").run()
        assert not at.exception, at.exception
    [note] = [i.value for i in at.info if "saving up" in i.value]
    assert "Row 2 AAPL is saving up: $10.00 weekly buys less than one share" in note
    assert "$30.00 saved so far" in note and f"({price}, the last price recorded" in note
    assert f"the next buy is projected for **{first}**" in note
    assert not any("Row 3 SPY" in i.value for i in at.info)  # $2,000 buys shares every week


def test_the_projection_starts_from_the_ledger_s_latest_run_when_it_ran_ahead(saver, tmp_path):
    # The runs above were made ahead with --now (March 2027); looked at from the real
    # clock's earlier day, the projection must not name dates that are already recorded.
    price, first = expected_note(tmp_path)
    with time_machine.travel("2027-01-05 15:00:00+00:00", tick=False):
        at = AppTest.from_file(str(APP), default_timeout=30).run()
        assert not at.exception, at.exception
    [note] = [i.value for i in at.info if "saving up" in i.value]
    assert f"the next buy is projected for **{first}**" in note
