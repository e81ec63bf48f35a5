"""The control panel through Streamlit's AppTest: real settings, real adapters, temp dirs."""

from __future__ import annotations

from pathlib import Path

import pytest
import time_machine
from streamlit.testing.v1 import AppTest

from dca.cli import main
from tests.conftest import HEADER

APP = Path(__file__).resolve().parents[2] / "app.py"
BANNER = "SIMULATED broker — no real money"



def start(**query) -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=30)
    for key, value in query.items():
        at.query_params[key] = value
    return at.run()


def texts(elements) -> list[str]:
    return [e.value for e in elements]


def write_plan(tmp_path: Path, monkeypatch, rows_csv: str) -> Path:
    path = tmp_path / "my-plan.csv"
    path.write_text(HEADER + rows_csv)
    monkeypatch.setenv("DCA_PLAN", str(path))
    return path


def test_first_start_creates_the_example_plan_and_shows_it(tmp_path):
    at = start()
    assert not at.exception
    assert (tmp_path / "home" / "plan.csv").exists()
    assert at.title[0].value == "Plan"
    [table] = at.dataframe
    df = table.value
    assert list(df.columns) == ["Row", "Status", "Stock Symbol", "Amount (USD)", "Frequency", "Last outcome", "Log", "ID"]
    assert sorted(df["Stock Symbol"]) == ["AAPL", "SPY", "TSLA", "VTI"]
    assert dict(zip(df["Stock Symbol"], df["Status"]))["TSLA"] == "Inactive"
    assert df["ID"].str.fullmatch(r"r[0-9a-f]{10}").all()  # the example comes with IDs
    assert not at.error
    # Where things are, so a person can find and edit the file.
    shown = " ".join(texts(at.markdown))
    assert str(tmp_path / "home" / "plan.csv") in shown
    assert str(tmp_path / "home" / "ledger.sqlite3") in shown


def test_every_page_says_the_broker_is_simulated():
    at = start()
    assert any(BANNER in w for w in texts(at.warning))
    at.switch_page("pages/calendar.py").run()
    assert not at.exception
    assert at.title[0].value == "Calendar"
    assert any(BANNER in w for w in texts(at.warning))


def test_a_bad_active_row_is_named_and_the_valid_rows_still_show(tmp_path, monkeypatch):
    write_plan(
        tmp_path,
        monkeypatch,
        "Active,VTI,1000,Monthly,,v1\n"
        "Active,QQQ,-5,Weekly,,q1\n"
        "Active,SPY,500,Weekly,,s1\n"
        "Inactive,BAD!,10,Daily,,x1\n",
    )
    at = start()
    assert not at.exception
    [error] = texts(at.error)
    assert error.startswith("Row 3: ")
    assert "must be more than $0" in error
    warnings = [w for w in texts(at.warning) if BANNER not in w]
    assert len(warnings) == 1 and warnings[0].startswith("Row 5: ") and "Inactive" in warnings[0]
    # The editor shows every row as written, the bad ones too, so they can be mended there.
    df = at.dataframe[0].value
    assert list(df["Stock Symbol"]) == ["VTI", "QQQ", "SPY", "BAD!"]
    assert list(df["Row"]) == [2, 3, 4, 5]
    assert df["Amount (USD)"].isna().tolist() == [False, True, False, False]  # -5 is no amount to edit
    assert not (tmp_path / "home" / "plan.csv").exists()  # no example beside a chosen plan


PLAN_FOR_JUNE_2027 = (
    "Active,VTI,1000,Monthly,,v1\n"
    "Active,SPY,500,Weekly,,s1\n"
    "Inactive,QQQ,50,Daily,,q1\n"  # never listed: Inactive
    "Active,IWM,-1,Daily,,i1\n"  # never listed: an error
)


def test_the_calendar_lists_the_next_4_weeks_from_a_pinned_today(tmp_path, monkeypatch):
    write_plan(tmp_path, monkeypatch, PLAN_FOR_JUNE_2027)
    at = start(today="2027-05-28")
    at.switch_page("pages/calendar.py").run()
    assert not at.exception
    assert at.number_input(key="calendar_weeks").value == 4
    df = at.dataframe[0].value
    rows = list(zip(df["Date/time (ET)"], df["Stock Symbol"], df["Amount (USD)"], df["Frequency"]))
    assert rows == [
        ("2027-06-01 09:00", "VTI", 1000.0, "Monthly"),  # first trading day of June
        ("2027-06-01 09:00", "SPY", 500.0, "Weekly"),  # Monday 05-31 is Memorial Day
        ("2027-06-07 09:00", "SPY", 500.0, "Weekly"),
        ("2027-06-14 09:00", "SPY", 500.0, "Weekly"),
        ("2027-06-21 09:00", "SPY", 500.0, "Weekly"),
    ]
    assert [m.value for m in at.metric] == ["$3,000.00", "5", "0"]
    assert any("1 plan row(s) have errors" in w for w in texts(at.warning))
    assert at.get("vega_lite_chart")  # the per-day chart is drawn


def test_the_calendar_list_follows_the_weeks_and_the_symbol_filter(tmp_path, monkeypatch):
    write_plan(tmp_path, monkeypatch, PLAN_FOR_JUNE_2027)
    at = start(today="2027-05-28")
    at.switch_page("pages/calendar.py").run()
    at.number_input(key="calendar_weeks").set_value(5).run()  # to 2027-07-02
    at.multiselect(key="calendar_symbols").set_value(["VTI"]).run()
    assert not at.exception
    df = at.dataframe[0].value
    assert list(zip(df["Date/time (ET)"], df["Stock Symbol"])) == [
        ("2027-06-01 09:00", "VTI"),
        ("2027-07-01 09:00", "VTI"),
    ]
    weeks, months = at.dataframe[1].value, at.dataframe[2].value
    assert list(zip(weeks["Week of (Mon)"], weeks["USD"])) == [("2027-05-31", 1000.0), ("2027-06-28", 1000.0)]
    assert list(zip(months["Month"], months["USD"])) == [("2027-06", 1000.0), ("2027-07", 1000.0)]


def test_a_malformed_today_is_ignored_with_a_warning():
    at = start(today="tomorrow")
    at.switch_page("pages/calendar.py").run()
    assert not at.exception
    assert any("today=tomorrow" in w for w in texts(at.warning))
    assert at.dataframe  # the real clock was used instead


def test_a_bad_setting_is_named_without_a_traceback(monkeypatch):
    monkeypatch.setenv("DCA_MAX_ORDER_USD", "-5")
    at = start()
    assert not at.exception
    [error] = texts(at.error)
    assert "DCA_MAX_ORDER_USD" in error and "positive" in error
    assert not at.title  # nothing else ran


@pytest.mark.parametrize("page", [None, "pages/calendar.py"])
def test_an_unreadable_plan_is_an_error_not_an_exception(tmp_path, monkeypatch, page):
    missing = tmp_path / "nowhere" / "plan.csv"
    monkeypatch.setenv("DCA_PLAN", str(missing))
    at = start()
    if page:
        at.switch_page(page).run()
    assert not at.exception
    [error] = texts(at.error)
    assert str(missing) in error and "does not exist" in error
    assert not at.dataframe
    assert not missing.exists()


def test_upcoming_leaves_out_what_filled_and_shows_a_due_catch_up_as_due_now(tmp_path, monkeypatch):
    """Issue 7's example: after VTI's 2026-12-01 execution filled, the page still listed
    it and counted it in the total; and a catch-up a run would buy now was not due."""
    plan = write_plan(tmp_path, monkeypatch, "Active,VTI,1000,Monthly,,v1\nActive,SPY,500,Weekly,,s1\n")
    assert main(["run", "--now", "2026-12-01T09:00:30"]) == 0  # VTI filled (SPY's Monday was 11-30)
    # Added after the run: a run now would buy today's 09:00 for it, late.
    plan.write_text(plan.read_text() + "Active,QQQ,50,Daily,,q1\n")
    with time_machine.travel("2026-12-01 15:20:00+00:00", tick=False):  # 10:20 in New York
        at = start()
        at.switch_page("pages/calendar.py").run()
    assert not at.exception
    assert any(BANNER in w for w in texts(at.warning))
    df = at.dataframe[0].value
    rows = list(zip(df["Date/time (ET)"], df["Stock Symbol"], df["State"]))
    assert rows[:3] == [
        ("2026-12-01 09:00", "QQQ", "due now (late)"),
        ("2026-12-02 09:00", "QQQ", "scheduled"),
        ("2026-12-03 09:00", "QQQ", "scheduled"),
    ]
    assert "VTI" not in set(df["Stock Symbol"])  # filled: not listed as to come
    assert ("2026-12-07 09:00", "SPY", "scheduled") in rows
    # 4 weeks, 2026-12-01 to 2026-12-29: QQQ on 20 trading days, SPY on 4 Mondays (07, 14, 21, 28).
    assert [m.value for m in at.metric] == [f"${20 * 50 + 4 * 500:,.2f}", str(20 + 4), "1"]
    recorded = at.dataframe[-1]  # after the list and its week and month totals
    assert list(zip(recorded.value["Stock Symbol"], recorded.value["State"])) == [("VTI", "filled")]


def test_services_are_built_once_per_process_not_on_every_rerun(monkeypatch):
    import dca.panel.frame as frame

    builds = []
    real_build = frame.build
    monkeypatch.setattr(frame, "build", lambda settings: builds.append(settings) or real_build(settings))
    at = start()
    at.run()
    at.switch_page("pages/calendar.py").run()
    at.run()
    assert not at.exception
    assert len(builds) == 1
    assert any(BANNER in w for w in texts(at.warning))  # the frame is still drawn every time


def test_the_calendar_is_not_worked_out_again_when_nothing_it_depends_on_changed(tmp_path, monkeypatch):
    """A widget change reruns the page; the outlook of a range already seen comes from the
    cache, until the plan or the ledger changes."""
    import dca.panel.outlook_cache as cache

    worked_out = []
    real = cache.next_executions

    def counting(plan, schedule, ledger, now, start, end, options):
        worked_out.append((start, end))
        return real(plan, schedule, ledger, now, start, end, options)

    monkeypatch.setattr(cache, "next_executions", counting)
    cache._outlook.clear()  # the process may hold outlooks of other tests
    path = write_plan(tmp_path, monkeypatch, PLAN_FOR_JUNE_2027)
    at = start(today="2027-05-28")
    at.switch_page("pages/calendar.py").run()
    first = len(worked_out)
    assert first == 2  # the month grid and the next 4 weeks
    at.number_input(key="calendar_weeks").set_value(5).run()
    assert len(worked_out) == first + 1  # only the new range; the month is as it was
    at.number_input(key="calendar_weeks").set_value(4).run()
    at.multiselect(key="calendar_symbols").set_value(["VTI"]).run()  # filtered from the cached outlook
    assert len(worked_out) == first + 1
    assert list(at.dataframe[0].value["Stock Symbol"]) == ["VTI"]

    path.write_text(path.read_text().replace("Active,SPY,500", "Active,SPY,600"))  # the plan changed
    at.run()
    assert len(worked_out) == first + 3
    assert main(["run", "--now", "2027-06-01T09:01", "--plan", str(path)]) in (0, 1)  # so did the ledger
    at.run()
    assert len(worked_out) == first + 5


def test_the_plan_shows_each_rows_last_outcome_and_its_log_line_in_full(tmp_path, monkeypatch):
    path = write_plan(tmp_path, monkeypatch, "Active,SPY,700,Weekly,,s1\nActive,AAPL,10,Weekly,,a1\n"
                                             "Active,VTI,100,Monthly,typed by hand,v1\n")
    assert main(["run", "--now", "2027-03-01T09:01", "--plan", str(path)]) in (0, 1)
    at = start()
    assert not at.exception
    df = at.dataframe[0].value
    outcomes = dict(zip(df["Stock Symbol"], df["Last outcome"]))
    assert outcomes["SPY"] == "filled (2027-03-01)" and outcomes["AAPL"] == "skipped (2027-03-01)"
    [expander] = [e for e in at.expander if e.label.startswith("Log lines in full")]
    text = " ".join(m.value for m in expander.markdown)
    spy_line = path.read_text().splitlines()[1].split(",")[4]
    assert spy_line.endswith("SIMULATED") and spy_line.replace("$", "\\$") in text  # the whole line, as written
    assert "Last outcome" not in " ".join(w.value for w in at.warning)  # read-only: nothing to save
