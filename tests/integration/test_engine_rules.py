"""Broker faults, guards, carry-forward, dry run and the outbox, on the real adapters."""

from __future__ import annotations

import os
import sqlite3
from dataclasses import replace
from decimal import Decimal

from dca.brokers.simulated import simulated_price
from dca.domain import Outcome
from tests.conftest import ny

MONDAY = ny(2027, 3, 1, 9, 0, 30)  # first trading day of the week and of the month


def only(report, symbol):
    [execution] = [e for e in report.executions if e.symbol == symbol]
    return execution


def orders(rig):
    return [(o.order_ref, o.symbol, str(o.state)) for o in rig.broker.orders()]


# -- broker faults -------------------------------------------------------------------------


def test_a_rejected_order_is_failed_and_keeps_the_carry(make_rig):
    rig = make_rig("Active,SPY,700,Weekly,,s1\n", faults={"SPY": "reject"})
    spy = only(rig.run(MONDAY), "SPY")
    assert spy.status is Outcome.FAILED
    assert "rejection" in spy.message
    assert spy.carry_out == Decimal("0")
    assert rig.run(ny(2027, 3, 1, 11)).executions == []  # not retried: the broker said no


def test_a_timeout_after_the_broker_accepted_is_reconciled_not_resubmitted(make_rig):
    rig = make_rig("Active,SPY,700,Weekly,,s1\n", faults={"SPY": "timeout_after_accept"})
    spy = only(rig.run(MONDAY), "SPY")
    assert spy.status is Outcome.FILLED
    assert spy.attempts == 1
    assert orders(rig) == [("dca-s1-20270301", "SPY", "filled")]


def test_an_error_before_the_broker_accepted_is_resubmitted_under_the_same_id(make_rig):
    rig = make_rig("Active,SPY,700,Weekly,,s1\n", faults={"SPY": "error_before_accept:1"})
    spy = only(rig.run(MONDAY), "SPY")
    assert spy.status is Outcome.FILLED
    assert spy.attempts == 2
    assert orders(rig) == [("dca-s1-20270301", "SPY", "filled")]


def test_an_order_that_never_gets_through_ends_in_error_after_bounded_attempts(make_rig):
    rig = make_rig("Active,SPY,700,Weekly,,s1\n", faults={"SPY": "error_before_accept"}, max_submit_attempts=3)
    spy = only(rig.run(MONDAY), "SPY")
    assert spy.status is Outcome.ERROR
    assert "after 3 attempts" in spy.message
    assert orders(rig) == []


def test_an_unreachable_broker_defers_and_a_later_run_that_day_buys_late(make_rig, tmp_path):
    rig = make_rig("Active,SPY,700,Weekly,,s1\nActive,VTI,800,Weekly,,v1\n", faults={"*": "unavailable"})
    report = rig.run(MONDAY)
    assert report.executions == []
    assert [d["symbol"] for d in report.deferred] == ["SPY", "VTI"]
    assert not report.ok
    assert "broker unavailable" in report.deferred[0]["message"]
    # The person hears of it, although nothing was recorded for the executions.
    notified = rig.notifications()
    assert "Not attempted" in notified and "row 2 SPY" in notified and "row 3 VTI" in notified
    healthy = make_rig("Active,SPY,700,Weekly,,s1\nActive,VTI,800,Weekly,,v1\n")
    later = healthy.run(ny(2027, 3, 1, 11, 15))
    assert {e.symbol: (e.status, e.late) for e in later.executions} == {
        "SPY": (Outcome.FILLED, True), "VTI": (Outcome.FILLED, True)}


def test_a_submitted_order_is_updated_when_the_broker_reports_the_fill(make_rig):
    rig = make_rig("Active,SPY,700,Weekly,,s1\n", faults={"SPY": "delayed_fill"})
    spy = only(rig.run(MONDAY), "SPY")
    assert spy.status is Outcome.SUBMITTED
    assert "submitted" in next(line for line in rig.plan_lines() if line.endswith(",s1"))
    later = only(rig.run(ny(2027, 3, 1, 16, 30)), "SPY")
    assert later.status is Outcome.FILLED and later.order_ref == spy.order_ref
    assert "filled" in next(line for line in rig.plan_lines() if line.endswith(",s1"))
    assert orders(rig) == [("dca-s1-20270301", "SPY", "filled")]


class QuoteBreaksFor:
    """A broker whose answer for one symbol is malformed in a way nobody planned for."""

    def __init__(self, broker, symbol):
        self._broker, self._symbol = broker, symbol
        self.name, self.simulated, self.settle_seconds = broker.name, broker.simulated, broker.settle_seconds

    def quotes(self, symbols, at):
        answers = dict(self._broker.quotes(symbols, at))
        answers[self._symbol] = replace(answers[self._symbol], price="n/a")  # e.g. a field of the wrong type
        return answers

    def __getattr__(self, name):
        return getattr(self._broker, name)


def test_an_unexpected_error_on_one_row_does_not_stop_the_others(make_rig):
    rig = make_rig("Active,SPY,700,Weekly,,s1\nActive,VTI,800,Weekly,,v1\nActive,QQQ,900,Weekly,,q1\n")
    rig.engine.broker = QuoteBreaksFor(rig.broker, "VTI")
    report = rig.run(MONDAY)
    assert {e.symbol: e.status for e in report.executions} == {"SPY": Outcome.FILLED, "QQQ": Outcome.FILLED}
    assert [(d["symbol"], "unexpected error (TypeError" in d["message"]) for d in report.deferred] == [("VTI", True)]
    assert not report.ok
    # Nothing was recorded for VTI, so a later run that day buys it once the fault is gone.
    rig.engine.broker = rig.broker
    later = rig.run(ny(2027, 3, 1, 10))
    assert [(e.symbol, e.status, e.late) for e in later.executions] == [("VTI", Outcome.FILLED, True)]


def test_pending_unsent_intent_of_a_deactivated_row_is_skipped_not_sent(make_rig):
    rig = make_rig("Active,SPY,700,Weekly,,s1\n", faults={"SPY": "error_before_accept"}, max_submit_attempts=9)
    # Simulate a crash right after the intent: record it, then stop before any attempt.
    rig.engine._checkpoint = _raise_at("intent_recorded")
    try:
        rig.run(MONDAY)
    except KeyboardInterrupt:
        pass
    assert rig.ledger.get("s1", MONDAY.date()).status is Outcome.PENDING
    rig.plan_path.write_text("Status,Stock Symbol,Amount (USD),Frequency,Log,ID\nInactive,SPY,700,Weekly,,s1\n")
    rig.engine._checkpoint = lambda step, execution: None
    spy = only(rig.run(ny(2027, 3, 1, 9, 30)), "SPY")
    assert spy.status is Outcome.SKIPPED
    assert "made Inactive before the order was sent" in spy.message
    assert orders(rig) == []


def _raise_at(step_name):
    def checkpoint(step, execution):
        if step == step_name:
            raise KeyboardInterrupt  # like Ctrl-C: not an Exception, so nothing catches it
    return checkpoint


# -- guards --------------------------------------------------------------------------------


def test_a_row_over_the_per_order_maximum_is_skipped_and_the_others_run(make_rig):
    rig = make_rig("Active,SPY,6000,Weekly,,s1\nActive,VTI,800,Weekly,,v1\n", max_order_usd=Decimal("5000"))
    report = rig.run(MONDAY)
    spy, vti = only(report, "SPY"), only(report, "VTI")
    assert spy.status is Outcome.SKIPPED and "maximum per order ($5,000.00)" in spy.message
    assert vti.status is Outcome.FILLED
    assert [o[1] for o in orders(rig)] == ["VTI"]


def test_the_daily_maximum_stops_rows_once_reached_counting_earlier_runs(make_rig):
    plan = "Active,AAA,900,Daily,,a1\nActive,BBB,900,Daily,,b1\nActive,CCC,900,Daily,,c1\n"
    rig = make_rig(plan, fractional=True, max_daily_usd=Decimal("2000"))
    report = rig.run(MONDAY)
    assert [str(e.status) for e in report.executions] == ["filled", "filled", "skipped"]
    assert "maximum per day ($2,000.00; $1,800.00 already)" in only(report, "CCC").message
    # The next day the budget is fresh.
    next_day = rig.run(ny(2027, 3, 2, 9, 0, 30))
    assert [str(e.status) for e in next_day.executions] == ["filled", "filled", "skipped"]


# -- sizing and carry-forward --------------------------------------------------------------


def test_whole_shares_carry_the_remainder_to_the_next_execution(make_rig):
    rig = make_rig("Active,SPY,700,Weekly,,s1\n", fractional=False)
    first = only(rig.run(MONDAY), "SPY")
    price1 = simulated_price("SPY", MONDAY.date())
    assert first.quantity == (Decimal(700) / price1).to_integral_value(rounding="ROUND_DOWN")
    assert first.carry_out == Decimal(700) - first.quantity * price1
    second = only(rig.run(ny(2027, 3, 8, 9, 0, 30)), "SPY")
    assert second.carry_in == first.carry_out
    price2 = simulated_price("SPY", ny(2027, 3, 8).date())
    budget = Decimal(700) + first.carry_out
    assert second.quantity == (budget / price2).to_integral_value(rounding="ROUND_DOWN")
    assert second.carry_out == budget - second.quantity * price2
    spy_line = next(line for line in rig.plan_lines() if line.endswith(",s1"))
    assert f"carry ${second.carry_out:,.2f}" in spy_line


def test_an_amount_below_one_share_accumulates_until_it_buys(make_rig):
    price = simulated_price("SPY", MONDAY.date())
    small = (price / 3).quantize(Decimal("1"))  # three or four weeks to afford a share
    rig = make_rig(f"Active,SPY,{small},Weekly,,s1\n")
    weeks = [ny(2027, 3, 1, 9, 1), ny(2027, 3, 8, 9, 1), ny(2027, 3, 15, 9, 1), ny(2027, 3, 22, 9, 1),
             ny(2027, 3, 29, 9, 1)]
    outcomes = [only(rig.run(at), "SPY") for at in weeks]
    first_fill = next(i for i, e in enumerate(outcomes) if e.status is Outcome.FILLED)
    assert all(e.status is Outcome.SKIPPED for e in outcomes[:first_fill])
    assert outcomes[first_fill - 1].carry_out == small * first_fill
    assert outcomes[first_fill].carry_in == small * first_fill


def test_fractional_orders_spend_the_whole_amount_as_cash(make_rig):
    rig = make_rig("Active,SPY,10,Weekly,,s1\n", fractional=True)
    spy = only(rig.run(MONDAY), "SPY")
    assert spy.status is Outcome.FILLED and spy.cash_order
    [order] = rig.broker.orders()
    # The cost is what the broker filled (4-decimal shares), the cents left over carry on.
    assert spy.cost == (order.filled_quantity * order.avg_price).quantize(Decimal("0.01"))
    assert Decimal("9.90") <= spy.cost <= Decimal("10.00")
    assert spy.carry_out == Decimal("10.00") - spy.cost == rig.ledger.carry("s1")
    assert Decimal(0) < spy.quantity < 1


# -- dry run -------------------------------------------------------------------------------


def test_a_dry_run_shows_what_the_run_will_do_and_records_nothing(make_rig):
    plan = "Active,SPY,700,Weekly,,s1\nActive,VTI,6000,Weekly,,v1\nActive,QQQ,900,Daily,,\n"
    rig = make_rig(plan, max_order_usd=Decimal("5000"))
    plan_before = rig.plan_path.read_text()
    dry = rig.run(MONDAY, dry_run=True)
    assert dry.dry_run
    assert rig.plan_path.read_text() == plan_before  # not even an ID is written
    assert orders(rig) == []
    with sqlite3.connect(rig.ledger.path) as db:
        assert db.execute("SELECT COUNT(*) FROM executions").fetchone()[0] == 0
        assert db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0] == 0
        assert db.execute("SELECT COUNT(*) FROM plan_rows").fetchone()[0] == 0
    real = rig.run(MONDAY)
    planned = {(e.symbol, e.quantity, e.price, e.cost) for e in dry.executions}
    done = {(e.symbol, e.quantity, e.price, e.cost) for e in real.executions}
    assert planned == done
    assert [str(e.status) for e in dry.executions] == ["planned", "skipped", "planned"]
    assert dry.summary()["total_spent"] == real.summary()["total_spent"]


# -- outbox: nothing lost ------------------------------------------------------------------


def test_log_and_notifications_wait_while_their_targets_are_down_then_arrive(make_rig):
    rig = make_rig("Active,SPY,700,Weekly,,s1\n")
    os.chmod(rig.plan_path, 0o444)  # the plan cannot take Log writes
    rig.notifier.path.mkdir()  # the notifier cannot write (a directory is in the way)
    report = rig.run(MONDAY)
    assert only(report, "SPY").status is Outcome.FILLED  # the order is unaffected
    # The notifier waits with two: the SPY outcome and the run's summary.
    assert report.delivery["log"]["waiting"] == 1 and report.delivery["notify"]["waiting"] == 2
    assert "filled" not in rig.plan_path.read_text()
    os.chmod(rig.plan_path, 0o644)
    rig.notifier.path.rmdir()
    later = rig.run(ny(2027, 3, 1, 12))
    assert later.executions == []
    assert later.delivery["log"] == {"delivered": 1, "waiting": 0}
    assert later.delivery["notify"] == {"delivered": 2, "waiting": 0}
    assert "filled" in next(line for line in rig.plan_lines() if line.endswith(",s1"))
    assert "SPY" in rig.notifications() and "SIMULATED" in rig.notifications()


def test_the_log_cell_shows_only_the_latest_outcome(make_rig):
    rig = make_rig("Active,SPY,700,Daily,,s1\n")
    rig.run(MONDAY)
    rig.run(ny(2027, 3, 2, 9, 1))
    line = next(line for line in rig.plan_lines() if line.endswith(",s1"))
    assert "dca-s1-20270302" in line and "dca-s1-20270301" not in line


def test_an_error_after_the_broker_accepted_is_reconciled_at_the_next_run(make_rig):
    def fail_after_broker(step, execution):
        if step == "broker_returned" and execution.symbol == "SPY":
            raise RuntimeError("disk I/O error")  # the outcome cannot be recorded

    rig = make_rig("Active,SPY,700,Weekly,,s1\nActive,VTI,800,Weekly,,v1\n", checkpoint=fail_after_broker)
    report = rig.run(MONDAY)
    assert [e.symbol for e in report.executions] == ["VTI"]
    assert report.deferred[0]["symbol"] == "SPY" and "reconciled with the broker" in report.deferred[0]["message"]
    assert rig.ledger.get("s1", MONDAY.date()).status is Outcome.PENDING
    rig.engine._checkpoint = lambda step, execution: None
    later = rig.run(ny(2027, 3, 1, 9, 30))
    assert [(e.symbol, e.status) for e in later.executions] == [("SPY", Outcome.FILLED)]
    assert sorted(o[0] for o in orders(rig)) == ["dca-s1-20270301", "dca-v1-20270301"]


def test_a_candidate_later_than_the_maximum_lateness_is_missed_not_bought(make_rig):
    from datetime import timedelta

    rig = make_rig("Active,SPY,700,Daily,,s1\n", max_lateness=timedelta(hours=2))
    rig.run(ny(2027, 3, 1, 9, 1))  # first seen on Monday, bought on time
    on_time_enough = only(rig.run(ny(2027, 3, 2, 10, 59)), "SPY")
    assert on_time_enough.status is Outcome.FILLED and on_time_enough.late
    too_late = only(rig.run(ny(2027, 3, 3, 11, 1)), "SPY")
    assert too_late.status is Outcome.MISSED and "too late to buy" in too_late.message
    assert len(orders(rig)) == 2


def test_max_lateness_is_configurable(capsys, tmp_path):
    from dca.cli import main
    from tests.conftest import HEADER

    plan = tmp_path / "p.csv"
    plan.write_text(HEADER + "Active,SPY,700,Daily,,s1\n")
    config = tmp_path / "dca.toml"
    config.write_text('[schedule]\nmax_lateness_minutes = 30\n')
    args = ["run", "--json", "--config", str(config), "--plan", str(plan), "--db", str(tmp_path / "l.sqlite3")]
    main([*args, "--now", "2027-03-01T09:00:10"])
    capsys.readouterr()
    main([*args, "--now", "2027-03-02T09:45"])
    import json

    [execution] = json.loads(capsys.readouterr().out)["executions"]
    assert execution["status"] == "missed" and "too late" in execution["message"]


def test_with_the_plan_unreadable_orders_in_doubt_are_still_reconciled_and_the_person_told(make_rig):
    import pytest

    from dca.errors import PlanError

    rig = make_rig("Active,SPY,700,Weekly,,s1\nActive,VTI,800,Weekly,,v1\n")
    rig.engine._checkpoint = _raise_at("broker_returned")  # dies after SPY's order is accepted
    with pytest.raises(KeyboardInterrupt):
        rig.run(MONDAY)
    assert rig.ledger.get("s1", MONDAY.date()).status is Outcome.PENDING
    rig.engine._checkpoint = lambda step, execution: None
    rig.plan_path.unlink()  # the plan is gone when the next run starts
    with pytest.raises(PlanError, match="does not exist"):
        rig.run(ny(2027, 3, 1, 9, 30))
    # What the broker did is recorded all the same, and nothing new was ordered.
    assert rig.ledger.get("s1", MONDAY.date()).status is Outcome.FILLED
    assert [o[1] for o in orders(rig)] == ["SPY"]
    notified = rig.notifications()
    assert "The plan could not be read" in notified and "filled" in notified and "SPY" in notified


def test_with_the_plan_unreadable_an_unsent_intent_waits_rather_than_being_decided(make_rig):
    import pytest

    from dca.errors import PlanError

    rig = make_rig("Active,SPY,700,Weekly,,s1\n")
    rig.engine._checkpoint = _raise_at("intent_recorded")  # dies before SPY is sent
    with pytest.raises(KeyboardInterrupt):
        rig.run(MONDAY)
    rig.engine._checkpoint = lambda step, execution: None
    plan_text = rig.plan_path.read_text()
    rig.plan_path.unlink()
    with pytest.raises(PlanError):
        rig.run(ny(2027, 3, 1, 9, 30))
    assert rig.ledger.get("s1", MONDAY.date()).status is Outcome.PENDING  # not sent, not dropped
    assert orders(rig) == []
    rig.plan_path.write_text(plan_text)  # the plan is back the same day: the order goes out once
    spy = only(rig.run(ny(2027, 3, 1, 10)), "SPY")
    assert spy.status is Outcome.FILLED
    assert orders(rig) == [("dca-s1-20270301", "SPY", "filled")]
