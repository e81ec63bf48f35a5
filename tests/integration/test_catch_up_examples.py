"""The "Catch-up, missed and late" examples of SCHEDULE-EXAMPLES.md, end to end.

Each run goes through the Engine on real adapters (CSV plan, SIMULATED broker, SQLite
ledger) and is checked twice: on the run's report, and on the broker's own order book,
which must hold exactly one order per bought execution and none for a missed one.
Time travels through the `now` argument only.
"""

from __future__ import annotations

import threading
from datetime import date

from dca.domain import Outcome, client_order_id
from dca.engine import Engine
from dca.ledger import Ledger
from dca.plans.csv_file import CsvPlanSource
from dca.schedule_rules import Schedule
from tests.conftest import HEADER, ny

QQQ, VOO, IWM = "q-qqq", "v-voo", "i-iwm"
PLAN = f"Active,QQQ,50,Daily,,{QQQ}\nActive,VOO,200,Weekly,,{VOO}\nActive,IWM,300,Monthly,,{IWM}\n"
BOUGHT = {Outcome.FILLED}


def d(month_day: str, year: int = 2027) -> date:
    month, day = map(int, month_day.split("-"))
    return date(year, month, day)


def bought(report, late: bool | None = None) -> set[tuple[str, date]]:
    return {
        (e.symbol, e.scheduled_date)
        for e in report.executions
        if e.status in BOUGHT and (late is None or e.late is late)
    }


def missed(report) -> list[tuple[str, date]]:
    return sorted((e.symbol, e.scheduled_date) for e in report.executions if e.status is Outcome.MISSED)


def statuses(report) -> set[Outcome]:
    return {e.status for e in report.executions}


def book(rig) -> set[tuple[str, str]]:
    return {(o.symbol, o.order_ref) for o in rig.broker.orders()}


def refs(report) -> set[tuple[str, str]]:
    """The broker orders a report's bought executions must correspond to."""
    return {(e.symbol, e.order_ref) for e in report.executions if e.status in BOUGHT}


def assert_book_matches(rig, *reports) -> None:
    orders = rig.broker.orders()
    assert len(orders) == len({o.order_ref for o in orders}), "a client order id was used twice"
    expected = set().union(*(refs(r) for r in reports))
    assert book(rig) == expected
    assert all(o.state == "filled" for o in orders)
    for report in reports:
        for e in report.executions:
            if e.status is Outcome.MISSED:
                assert e.order_ref is None
                assert client_order_id(e.row_id, e.scheduled_date) not in book(rig)
            if e.status in BOUGHT:
                assert e.order_ref == client_order_id(e.row_id, e.scheduled_date)


def test_catch_up_missed_and_late(make_rig):
    rig = make_rig(PLAN, fractional=True)

    # 1. Monday 2027-05-03 09:00:20, rows first seen: all three bought on time.
    step1 = rig.run(ny(2027, 5, 3, 9, 0, 20))
    assert statuses(step1) == {Outcome.FILLED}
    assert bought(step1, late=False) == {("QQQ", d("05-03")), ("VOO", d("05-03")), ("IWM", d("05-03"))}
    assert len(step1.executions) == 3
    assert step1.ok
    assert len(rig.broker.orders()) == 3
    assert_book_matches(rig, step1)

    # 2. Off until Thursday 2027-05-06 11:30: QQQ 05-06 bought late, 05-04/05 missed;
    #    VOO and IWM have nothing (05-03 is their latest occurrence, and it is done).
    step2 = rig.run(ny(2027, 5, 6, 11, 30))
    assert bought(step2) == {("QQQ", d("05-06"))}
    assert bought(step2, late=True) == {("QQQ", d("05-06"))}
    assert missed(step2) == [("QQQ", d("05-04")), ("QQQ", d("05-05"))]
    assert len(step2.executions) == 3
    assert not any(e.symbol in ("VOO", "IWM") for e in step2.executions)
    assert len(rig.broker.orders()) == 4
    assert_book_matches(rig, step1, step2)

    # 3. Off until Tuesday 2027-06-01 09:03: all three on time (3 min <= 5 of grace);
    #    QQQ missed the 16 trading days 05-07 ... 05-28, VOO three Mondays.
    step3 = rig.run(ny(2027, 6, 1, 9, 3))
    assert bought(step3) == {("QQQ", d("06-01")), ("VOO", d("06-01")), ("IWM", d("06-01"))}
    assert bought(step3, late=False) == bought(step3)
    qqq_missed = [day for symbol, day in missed(step3) if symbol == "QQQ"]
    assert len(qqq_missed) == 16
    assert qqq_missed[0] == d("05-07") and qqq_missed[-1] == d("05-28")
    assert d("05-31") not in qqq_missed  # Memorial Day
    assert all(day.weekday() < 5 for day in qqq_missed)
    assert [day for symbol, day in missed(step3) if symbol == "VOO"] == [d("05-10"), d("05-17"), d("05-24")]
    assert [day for symbol, day in missed(step3) if symbol == "IWM"] == []
    assert len(step3.executions) == 3 + 16 + 3
    assert all(not e.late for e in step3.executions if e.status is Outcome.MISSED)
    assert len(rig.broker.orders()) == 7
    assert_book_matches(rig, step1, step2, step3)

    # 4. Again at 09:30: nothing new, nothing ordered.
    step4 = rig.run(ny(2027, 6, 1, 9, 30))
    assert step4.executions == []
    assert step4.deferred == []
    assert len(rig.broker.orders()) == 7
    assert_book_matches(rig, step1, step2, step3)

    # The ledger holds each (row, date) once: 7 bought + 2 + 16 + 3 missed.
    history = rig.ledger.history()
    assert len(history) == 28
    assert len({(e.row_id, e.scheduled_date) for e in history}) == 28


def test_two_runs_at_once_the_second_waits_then_finds_nothing(make_rig, calendar):
    armed: list[bool] = []
    waited: list[bool] = []  # was the second run still blocked after half a second?
    second: dict = {}

    def checkpoint(step, execution):
        # While the first run holds the lock (mid-way through its first order), start
        # the second one: it must block on the lock rather than run alongside.
        if armed and not waited:
            thread.start()
            thread.join(timeout=0.5)
            waited.append(thread.is_alive())

    rig = make_rig(PLAN, fractional=True, checkpoint=checkpoint)
    rig.run(ny(2027, 5, 3, 9, 0, 20))
    rig.run(ny(2027, 5, 6, 11, 30))
    # A second engine on the same files, as another face (worker, panel) would build it.
    other = Engine(
        CsvPlanSource(rig.plan_path), rig.broker, Ledger(rig.ledger.path, lock_timeout=30),
        rig.notifier, Schedule(calendar),
    )
    now = ny(2027, 6, 1, 9, 3)

    def run_second():
        second["report"] = other.run(now)

    thread = threading.Thread(target=run_second)
    armed.append(True)
    first = rig.run(now)
    thread.join(timeout=30)
    assert not thread.is_alive()
    assert waited == [True], "the second run did not wait for the first"
    assert bought(first) == {("QQQ", d("06-01")), ("VOO", d("06-01")), ("IWM", d("06-01"))}
    assert len(missed(first)) == 16 + 3
    assert second["report"].executions == []
    assert len(rig.broker.orders()) == 7


def test_daily_row_first_seen_in_the_afternoon_is_bought_late_that_day(make_rig):
    rig = make_rig(f"Active,VOO,200,Weekly,,{VOO}\n", fractional=True)
    rig.run(ny(2027, 5, 3, 9, 0, 20))  # the plan has been running since Monday
    rig.plan_path.write_text(HEADER + f"Active,VOO,200,Weekly,,{VOO}\nActive,QQQ,50,Daily,,{QQQ}\n")

    report = rig.run(ny(2027, 5, 5, 15))
    assert [(e.symbol, e.scheduled_date, e.status, e.late) for e in report.executions] == [
        ("QQQ", d("05-05"), Outcome.FILLED, True)
    ]
    assert report.executions[0].scheduled_at == ny(2027, 5, 5, 9)
    assert {o.order_ref for o in rig.broker.orders()} == {
        client_order_id(VOO, d("05-03")),
        client_order_id(QQQ, d("05-05")),
    }

    # Later runs never reach back before 05-05 for it.
    thursday = rig.run(ny(2027, 5, 6, 9, 1))
    assert [(e.symbol, e.scheduled_date, e.status, e.late) for e in thursday.executions] == [
        ("QQQ", d("05-06"), Outcome.FILLED, False)
    ]
    monday = rig.run(ny(2027, 5, 10, 9, 2))
    assert missed(monday) == [("QQQ", d("05-07"))]
    assert bought(monday, late=False) == {("QQQ", d("05-10")), ("VOO", d("05-10"))}
    qqq_dates = [e.scheduled_date for e in rig.ledger.history() if e.row_id == QQQ]
    assert min(qqq_dates) == d("05-05")
    assert len(rig.broker.orders()) == 5


def test_daily_row_first_seen_alone_in_the_afternoon(make_rig):
    rig = make_rig(f"Active,QQQ,50,Daily,,{QQQ}\n", fractional=True)
    report = rig.run(ny(2027, 5, 5, 15))
    assert [(e.scheduled_date, e.status, e.late) for e in report.executions] == [(d("05-05"), Outcome.FILLED, True)]
    assert [o.order_ref for o in rig.broker.orders()] == [client_order_id(QQQ, d("05-05"))]
    assert rig.run(ny(2027, 5, 5, 16)).executions == []


def _write_plan(rig, qqq_status: str) -> None:
    rig.plan_path.write_text(
        HEADER + f"{qqq_status},QQQ,50,Daily,,{QQQ}\nActive,VOO,200,Weekly,,{VOO}\n"
    )


def test_pause_is_not_a_string_of_missed(make_rig):
    rig = make_rig("", fractional=True)
    _write_plan(rig, "Active")

    # Day 1: both bought.
    day1 = rig.run(ny(2027, 5, 3, 9, 0, 20))
    assert bought(day1) == {("QQQ", d("05-03")), ("VOO", d("05-03"))}

    # Paused; a run on Thursday sees it Inactive and does nothing for it.
    _write_plan(rig, "Inactive")
    paused = rig.run(ny(2027, 5, 6, 9, 1))
    assert paused.executions == []
    monday = rig.run(ny(2027, 5, 10, 9, 1))
    assert [(e.symbol, e.scheduled_date, e.status) for e in monday.executions] == [
        ("VOO", d("05-10"), Outcome.FILLED)
    ]

    # Active again on Wednesday 05-12: bought that day, nothing recorded for 05-04 ... 05-11.
    _write_plan(rig, "Active")
    resumed = rig.run(ny(2027, 5, 12, 9, 1))
    assert [(e.symbol, e.scheduled_date, e.status, e.late) for e in resumed.executions] == [
        ("QQQ", d("05-12"), Outcome.FILLED, False)
    ]
    assert missed(resumed) == []

    # From then on it is an ordinary Daily row again: 05-13 missed, 05-14 bought.
    friday = rig.run(ny(2027, 5, 14, 9, 1))
    assert missed(friday) == [("QQQ", d("05-13"))]
    assert bought(friday) == {("QQQ", d("05-14"))}

    qqq = sorted((e.scheduled_date, e.status) for e in rig.ledger.history() if e.row_id == QQQ)
    assert qqq == [
        (d("05-03"), Outcome.FILLED),
        (d("05-12"), Outcome.FILLED),
        (d("05-13"), Outcome.MISSED),
        (d("05-14"), Outcome.FILLED),
    ]
    assert not any(d("05-04") <= day <= d("05-11") for day, _ in qqq)
    assert sorted(o.order_ref for o in rig.broker.orders() if o.symbol == "QQQ") == sorted(
        client_order_id(QQQ, day) for day in (d("05-03"), d("05-12"), d("05-14"))
    )
    assert len(rig.broker.orders()) == 3 + 2  # QQQ three times, VOO 05-03 and 05-10


def test_weekly_row_made_active_again_midweek_waits_for_monday(make_rig):
    rig = make_rig(f"Active,VOO,200,Weekly,,{VOO}\n", fractional=True)
    assert bought(rig.run(ny(2027, 5, 3, 9, 0, 20))) == {("VOO", d("05-03"))}
    rig.plan_path.write_text(HEADER + f"Inactive,VOO,200,Weekly,,{VOO}\n")
    assert rig.run(ny(2027, 5, 10, 9, 1)).executions == []
    rig.plan_path.write_text(HEADER + f"Active,VOO,200,Weekly,,{VOO}\n")
    assert rig.run(ny(2027, 5, 19, 9, 1)).executions == []  # Wednesday: 05-17 is not owed
    monday = rig.run(ny(2027, 5, 24, 9, 1))
    assert [(e.scheduled_date, e.status) for e in monday.executions] == [(d("05-24"), Outcome.FILLED)]
    assert sorted(e.scheduled_date for e in rig.ledger.history()) == [d("05-03"), d("05-24")]
    assert len(rig.broker.orders()) == 2
