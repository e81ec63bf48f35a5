"""The Calendar page's month grid: XNYS holidays and early closes, each day's buys."""

from __future__ import annotations

import re
from datetime import date, datetime
from pathlib import Path

from streamlit.testing.v1 import AppTest

from dca.calendar_view import month_grid
from dca.queries import NextExecution, State
from dca.schedule_rules import NEW_YORK
from tests.conftest import HEADER

APP = Path(__file__).resolve().parents[2] / "app.py"



def cell(markup: str, day: str) -> str:
    match = re.search(rf"<td class='([^']*)' data-day='{day}'>(.*?)</td>", markup)
    assert match, day
    return match.group(1) + " | " + match.group(2)


def test_the_month_grid_marks_xnys_holidays_and_early_closes(tmp_path, monkeypatch):
    plan = tmp_path / "plan.csv"
    plan.write_text(HEADER + "Active,VTI,1000,Monthly,,v1\nActive,SPY,500,Weekly,,s1\n")
    monkeypatch.setenv("DCA_PLAN", str(plan))
    at = AppTest.from_file(str(APP), default_timeout=30)
    at.query_params["today"] = "2026-11-02"
    at.run()
    at.switch_page("pages/calendar.py").run()
    assert not at.exception
    at.selectbox(key="calendar_month").set_value((2026, 12)).run()
    assert not at.exception
    december = next(m.value for m in at.markdown if "dca-month" in m.value)
    assert "holiday" in cell(december, "2026-12-25") and "Holiday: market closed" in cell(december, "2026-12-25")
    assert "early" in cell(december, "2026-12-24") and "Early close 13:00" in cell(december, "2026-12-24")
    assert "holiday" not in cell(december, "2026-12-26")  # a Saturday is a weekend, not a holiday
    # Tuesday 12-01: VTI's month starts and SPY's week (Monday 11-30 is in November's week).
    assert "VTI" in cell(december, "2026-12-01") and "$1,000.00" in cell(december, "2026-12-01")
    assert "SPY" in cell(december, "2026-12-07") and "$500.00" in cell(december, "2026-12-07")
    assert any("Market closed: Dec 25" in c.value and "Early close (13:00): Dec 24" in c.value for c in at.caption)

    at.selectbox(key="calendar_month").set_value((2026, 11)).run()
    november = next(m.value for m in at.markdown if "dca-month" in m.value)
    assert "early" in cell(november, "2026-11-27") and "holiday" in cell(november, "2026-11-26")


def test_a_due_catch_up_is_placed_on_today():
    due = NextExecution("q1", 2, "QQQ", "50", "Daily", datetime(2026, 12, 1, 9, tzinfo=NEW_YORK),
                        State.DUE, late=True)
    weeks = month_grid(2026, 12, [date(2026, 12, 2)], [], [due], today=date(2026, 12, 2))
    [day] = [d for w in weeks for d in w if d.day == date(2026, 12, 2)]
    assert [i.symbol for i in day.items] == ["QQQ"] and day.total == 50
