"""One answer to "what happens next", the same for every face, and the same as a run.

The reproductions of issue 7 ("Where the panel and the CLI disagree") go through the `dca`
command with the real clock moved by time-machine; the rules go through
`dca.queries.next_executions` on real adapters, each checked against what
`Engine.run(now, dry_run=True)` and a real run do at that moment.
"""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest
import time_machine

from dca.cli import main
from dca.domain import Outcome
from dca.queries import NextExecution, Outlook, State, next_executions
from tests.conftest import ny

# 10:20 in New York on Tuesday 2026-12-01, the first trading day of December.
AFTER_THE_RUN_TIME = "2026-12-01 15:20:00+00:00"


def dca(capsys, *args):
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err




# -- issue 7's example, through the command --------------------------------------------


def test_status_before_the_run_shows_the_catch_up_a_dry_run_would_buy(capsys):
    # Nothing ran at 09:00; at 10:20 the run would buy VTI's 09:00 execution, late.
    with time_machine.travel(AFTER_THE_RUN_TIME, tick=False):
        code, out, _ = dca(capsys, "run", "--dry-run", "--json")
        dry = json.loads(out)
        code, out, _ = dca(capsys, "status", "--json")
    assert code == 0
    [planned] = [e for e in dry["executions"] if e["status"] == "planned"]
    assert (planned["symbol"], planned["scheduled_at"], planned["late"]) == ("VTI", "2026-12-01T09:00:00-05:00", True)
    first = json.loads(out)["next_executions"][0]
    assert (first["symbol"], first["scheduled_at"], first["state"], first["late"]) == (
        "VTI", "2026-12-01T09:00:00-05:00", "due", True)
    assert first["row_id"] == planned["row_id"]

    with time_machine.travel(AFTER_THE_RUN_TIME, tick=False):
        code, out, _ = dca(capsys, "status")
    assert "VTI     1000.00     Monthly    5    due now (late)" in out


def test_after_the_fill_every_face_marks_it_done_and_leaves_it_out_of_the_total(capsys):
    code, out, _ = dca(capsys, "run", "--now", "2026-12-01T09:00", "--json")
    assert [e["status"] for e in json.loads(out)["executions"]] == ["filled"]
    with time_machine.travel(AFTER_THE_RUN_TIME, tick=False):
        _, out, _ = dca(capsys, "calendar", "--start", "2026-12-01", "--end", "2026-12-07", "--json")
        calendar = json.loads(out)
        _, out, _ = dca(capsys, "status", "--json")
        status = json.loads(out)
        _, human, _ = dca(capsys, "calendar", "--start", "2026-12-01", "--end", "2026-12-07")
        _, dry, _ = dca(capsys, "run", "--dry-run", "--json")
    assert [(i["symbol"], i["scheduled_at"][:10], i["state"], i["outcome"]) for i in calendar] == [
        ("VTI", "2026-12-01", "done", "filled"),
        ("AAPL", "2026-12-07", "scheduled", None),
        ("SPY", "2026-12-07", "scheduled", None),
    ]
    assert [i["symbol"] for i in status["done_today"]] == ["VTI"]
    assert "VTI" not in [i["symbol"] for i in status["next_executions"]]
    assert "Still to come from 2026-12-01 to 2026-12-07: 2 executions, $510.00" in human
    assert json.loads(dry)["executions"] == []  # and the dry run agrees: nothing is due


# -- the rules, against the engine ------------------------------------------------------

PLAN = "Active,QQQ,50,Daily,,q1\nActive,VOO,200,Weekly,,v1\nActive,IWM,300,Monthly,,i1\nInactive,TSLA,10,Daily,,t1\n"


def outlook_of(rig, now: datetime, start: date | None = None, end: date | None = None):
    today = now.date()
    return next_executions(rig.plan.load(), rig.engine.schedule, rig.ledger, now,
                           start or today - timedelta(days=60), end or today + timedelta(days=40),
                           rig.engine.options)


def assert_agrees_with_the_dry_run(rig, now: datetime):
    """What the outlook says is due now, and will be recorded missed now, is exactly what a
    dry run at `now` attempts and records missed; and today's total is the dry run's."""
    report = rig.run(now, dry_run=True)
    outlook = outlook_of(rig, now)
    attempted = {(e.row_number, e.scheduled_date, e.late) for e in report.executions
                 if e.status not in (Outcome.MISSED, Outcome.PENDING)}
    missed = {(e.row_number, e.scheduled_date) for e in report.executions if e.status is Outcome.MISSED}
    due = {(i.row_number, i.scheduled_at.date(), i.late) for i in outlook.items if i.state is State.DUE}
    to_be_missed = {(i.row_number, i.scheduled_at.date()) for i in outlook.items if i.state is State.MISSED}
    assert due == attempted
    keys = [(i.row_number, i.scheduled_at.date()) for i in outlook.items]
    assert len(keys) == len(set(keys)), "an execution is listed twice"
    assert [i.scheduled_at.timestamp() for i in outlook.items] == sorted(i.scheduled_at.timestamp()
                                                                         for i in outlook.items)
    assert to_be_missed == missed
    today_after_now = sum((Decimal(i.amount_usd) for i in outlook.items if i.state is State.SCHEDULED
                           and i.scheduled_at.date() == now.date()), Decimal("0"))
    dry_total = sum((e.amount_usd for e in report.executions if e.status not in (Outcome.MISSED, Outcome.PENDING)),
                    Decimal("0"))
    assert outlook.per_day().get(now.date(), Decimal("0")) - today_after_now == dry_total
    return outlook


def by_state(outlook, state) -> list[tuple[str, date]]:
    return [(i.symbol, i.scheduled_at.date()) for i in outlook.items if i.state is state]


def test_a_catch_up_after_an_idle_spell_is_due_now_and_the_rest_missed(make_rig):
    rig = make_rig(PLAN)
    rig.run(ny(2027, 3, 1, 9, 0, 30))  # Monday: all three bought
    wednesday = ny(2027, 3, 3, 11, 0)
    outlook = assert_agrees_with_the_dry_run(rig, wednesday)
    assert by_state(outlook, State.DONE) == [("QQQ", date(2027, 3, 1)), ("VOO", date(2027, 3, 1)),
                                             ("IWM", date(2027, 3, 1))]
    assert by_state(outlook, State.MISSED) == [("QQQ", date(2027, 3, 2))]
    assert by_state(outlook, State.DUE) == [("QQQ", date(2027, 3, 3))]
    [due] = [i for i in outlook.items if i.state is State.DUE]
    assert due.late and due.label == "due now (late)"
    scheduled = by_state(outlook, State.SCHEDULED)
    assert scheduled[:3] == [("QQQ", date(2027, 3, 4)), ("QQQ", date(2027, 3, 5)), ("QQQ", date(2027, 3, 8))]
    assert ("VOO", date(2027, 3, 8)) in scheduled and ("IWM", date(2027, 4, 1)) in scheduled
    assert "TSLA" not in {i.symbol for i in outlook.items}

    rig.run(wednesday)  # what the outlook said is what happened
    after = outlook_of(rig, wednesday + timedelta(minutes=1))
    assert by_state(after, State.DUE) == [] and by_state(after, State.MISSED) == []
    recorded = {(e.symbol, e.scheduled_date): str(e.status) for e in rig.ledger.history()}
    assert {(i.symbol, i.scheduled_at.date()): i.outcome for i in after.done()} == recorded
    assert by_state(after, State.SCHEDULED) == scheduled


def test_before_the_run_time_today_is_scheduled_not_due(make_rig):
    rig = make_rig(PLAN)
    rig.run(ny(2027, 3, 1, 9, 0, 30))
    early = ny(2027, 3, 2, 8, 30)
    outlook = assert_agrees_with_the_dry_run(rig, early)
    assert by_state(outlook, State.DUE) == []
    assert by_state(outlook, State.SCHEDULED)[0] == ("QQQ", date(2027, 3, 2))
    assert outlook.per_day()[date(2027, 3, 2)] == Decimal("50.00")


def test_the_totals_count_what_is_still_to_come(make_rig):
    rig = make_rig(PLAN, fractional=True)
    monday = ny(2027, 3, 1, 9, 0, 30)
    outlook = assert_agrees_with_the_dry_run(rig, monday)
    assert outlook.per_day()[date(2027, 3, 1)] == Decimal("550.00")
    rig.run(monday)
    outlook = outlook_of(rig, monday, date(2027, 3, 1), date(2027, 3, 5))
    assert date(2027, 3, 1) not in outlook.per_day()  # bought: no longer to come
    assert outlook.total == Decimal("200.00")  # QQQ Tuesday to Friday
    assert [i.outcome for i in outlook.done()] == ["filled", "filled", "filled"]


def test_too_late_for_max_lateness_is_missed_not_due(make_rig):
    rig = make_rig(PLAN, max_lateness=timedelta(minutes=30))
    rig.run(ny(2027, 3, 1, 9, 0, 30))
    outlook = assert_agrees_with_the_dry_run(rig, ny(2027, 3, 2, 10, 0))
    assert by_state(outlook, State.MISSED) == [("QQQ", date(2027, 3, 2))]
    assert by_state(outlook, State.DUE) == []


def test_a_row_without_an_id_yet_is_due_as_the_dry_run_would_buy_it(make_rig):
    rig = make_rig("Active,QQQ,50,Daily,,\nActive,VOO,200,Weekly,,v1\n")
    outlook = assert_agrees_with_the_dry_run(rig, ny(2027, 3, 1, 12, 0))
    assert [(i.row_id, i.symbol, i.state) for i in outlook.items[:2]] == [
        (None, "QQQ", State.DUE), ("v1", "VOO", State.DUE)]


def test_nothing_is_promised_that_a_ledger_from_a_later_now_will_refuse(make_rig):
    rig = make_rig("Active,QQQ,50,Daily,,q1\n")
    rig.run(ny(2027, 3, 10, 9, 0, 30))  # a time travel ahead: QQQ first seen and bought 03-10
    outlook = assert_agrees_with_the_dry_run(rig, ny(2027, 3, 3, 9, 0, 30))
    assert by_state(outlook, State.DONE) == [("QQQ", date(2027, 3, 10))]
    assert by_state(outlook, State.DUE) == []
    assert by_state(outlook, State.SCHEDULED)[0] == ("QQQ", date(2027, 3, 11))


def test_every_scheduled_execution_is_what_the_engine_decides_at_its_time(make_rig):
    """The scheduled ones are not a second rule: at each one's time, `Schedule.decide`
    with the row's history names exactly that occurrence."""
    rig = make_rig(PLAN)
    rig.run(ny(2027, 3, 1, 9, 0, 30))
    now = ny(2027, 3, 3, 11, 0)
    outlook = outlook_of(rig, now, date(2027, 3, 3), date(2027, 6, 30))
    plan = rig.plan.load()
    histories = rig.ledger.row_histories(plan.active_rows, now.date(), observe=False)
    rows = {r.row_id: r for r in plan.active_rows}
    scheduled = [i for i in outlook.items if i.state is State.SCHEDULED]
    assert len(scheduled) > 80
    for item in scheduled:
        # As if the due one now were bought, nothing else recorded until then.
        history = histories[item.row_id]
        if item.row_id == "q1":
            history = type(history)(history.active_since, date(2027, 3, 3))
        decision = rig.engine.schedule.decide(rows[item.row_id].frequency, item.scheduled_at + timedelta(seconds=30),
                                              history)
        assert decision.candidate == item.scheduled_at.date()


@pytest.mark.parametrize("now", [ny(2027, 3, 1, 8, 0), ny(2027, 3, 1, 9, 0), ny(2027, 3, 1, 9, 5, 1),
                                 ny(2027, 3, 6, 12, 0), ny(2027, 3, 8, 23, 59)])
def test_agrees_with_the_dry_run_at_any_moment(make_rig, now):
    rig = make_rig(PLAN)
    rig.run(ny(2027, 2, 26, 9, 0, 30))  # a Friday: QQQ, and VOO/IWM first seen
    assert_agrees_with_the_dry_run(rig, now)


def test_the_json_of_a_large_calendar_is_the_same_objects_one_per_line(make_rig):
    rig = make_rig(PLAN)
    rig.run(ny(2027, 3, 1, 9, 0, 30))
    outlook = outlook_of(rig, ny(2027, 3, 3, 11, 0))
    outlook.items.append(NextExecution('q"\\\u00e9\n', 9, "BRK.B", "1.00", "Daily", ny(2027, 3, 5, 9, 0),
                                       State.DONE, True, "filled"))
    text = outlook.as_json()
    assert json.loads(text) == outlook.as_dicts()
    assert len(text.splitlines()) == len(outlook.items) + 2  # "[", one line per item, "]"
    assert {i["state"] for i in json.loads(text)} == {"done", "missed", "due", "scheduled"}
    assert Outlook(outlook.now, outlook.start, outlook.end).as_json() == "[]"


def test_a_due_catch_up_belongs_to_today_not_to_its_scheduled_day(make_rig):
    rig = make_rig("Active,IWM,300,Monthly,,i1\n")
    rig.run(ny(2027, 2, 26, 9, 0, 30))  # IWM first seen; its next is Monday 03-01
    wednesday = ny(2027, 3, 3, 11, 0)  # nothing ran since: 03-01 is a catch-up, due now
    today_on = outlook_of(rig, wednesday, date(2027, 3, 3), date(2027, 3, 31))
    assert [(i.scheduled_at.date(), i.state, i.late) for i in today_on.items] == [(date(2027, 3, 1), State.DUE, True)]
    assert today_on.per_day() == {date(2027, 3, 3): Decimal("300.00")}
    past = outlook_of(rig, wednesday, date(2027, 3, 1), date(2027, 3, 2))
    assert past.items == [] and past.total == 0  # it is not bought on 03-01 any more


def test_an_order_in_doubt_is_done_as_pending_and_not_due_again(make_rig):
    rig = make_rig("Active,QQQ,50,Daily,,q1\n", fractional=True)
    monday = ny(2027, 3, 1, 9, 0, 30)
    rig.run(monday)
    [execution] = rig.ledger.history()
    rig.ledger.update(execution.evolve(status=Outcome.PENDING, message="in doubt"))  # as after a crash
    outlook = assert_agrees_with_the_dry_run(rig, monday + timedelta(minutes=1))
    [done] = outlook.done()
    assert (done.outcome, done.label) == ("pending", "in doubt (pending): settled with the broker at the next run")
    assert by_state(outlook, State.DUE) == []
