"""The engine against a broker that behaves like a real one: lag, refusals, working orders.

Each of the first tests is one of the failures found in the foundation's engine (issue
"The core holds against a real broker's behaviour", scenarios 1-8), driven through the
real engine, ledger and CSV plan; the broker is a FakeBroker (tests/fakes) or the
SIMULATED broker's realistic mode.
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from datetime import timedelta
from decimal import Decimal

import pytest

from dca.brokers.simulated import RealisticWorld, SimulatedBroker
from dca.cli import main
from dca.domain import Outcome
from dca.errors import ConfigError
from dca.ledger import Ledger, LedgerError
from dca.ports import OrderState
from dca.settings import load_settings
from tests.conftest import HEADER, ny
from tests.fakes import FakeBroker

MONDAY = ny(2027, 3, 1, 9, 0, 30)  # first trading day of the week and of the month


def only(report, symbol):
    [execution] = [e for e in report.executions if e.symbol == symbol]
    return execution


def crash_at(step_name):
    def checkpoint(step, execution):
        if step == step_name:
            raise KeyboardInterrupt  # like a kill: not an Exception, so nothing catches it
    return checkpoint


def no_crash(step, execution):
    pass


# -- 1. a refused duplicate client order id is doubt, not failure -------------------------


def test_a_refused_duplicate_id_is_reconciled_not_recorded_as_failed(make_rig):
    # The reply to the submit is lost; the order list lags and (as a too-trusting adapter
    # would) calls the order absent, so the engine resends; the broker refuses the
    # duplicate id. The broker holds the order, so the ledger must say filled.
    broker = FakeBroker(lag_lookups=1, lag_looks_absent=True, submit_faults=["timeout_after_accept"])
    rig = make_rig("Active,SPY,700,Weekly,,s1\n", broker=broker)
    spy = only(rig.run(MONDAY), "SPY")
    assert broker.refused_duplicates == 1
    assert spy.status is Outcome.FILLED, spy.message
    assert spy.cost == Decimal("700.00") and spy.quantity == 7
    assert len(broker.book) == 1
    assert rig.ledger.committed_on(MONDAY.date()) == Decimal("700.00")  # the day's spend counts it


def test_after_a_refused_duplicate_a_list_that_misses_the_order_is_not_believed(make_rig):
    # The list keeps calling the order absent; the broker's refusal of the duplicate id
    # showed it holds the order, so the engine sends nothing more and waits in doubt.
    broker = FakeBroker(lag_lookups=99, lag_looks_absent=True, submit_faults=["timeout_after_accept"])
    rig = make_rig("Active,SPY,700,Weekly,,s1\n", broker=broker)
    spy = only(rig.run(MONDAY), "SPY")
    assert len(broker.submits) == 2 and broker.refused_duplicates == 1
    assert spy.status is Outcome.PENDING and "refused the id as a duplicate" in spy.message
    again = only(rig.run(ny(2027, 3, 1, 9, 30)), "SPY")
    assert again.status is Outcome.PENDING and len(broker.submits) == 2
    broker.lag_lookups = 0
    assert only(rig.run(ny(2027, 3, 1, 10)), "SPY").status is Outcome.FILLED


def test_an_order_the_broker_cannot_confirm_is_never_resent_while_unknown(make_rig):
    broker = FakeBroker(lag_lookups=99, submit_faults=["timeout_after_accept"])
    rig = make_rig("Active,SPY,700,Weekly,,s1\n", broker=broker)
    spy = only(rig.run(MONDAY), "SPY")
    assert spy.status is Outcome.PENDING and "cannot tell yet" in spy.message
    assert len(broker.submits) == 1  # one submit, however many lookups
    assert len(broker.lookups) == len(rig.engine.options.doubt_backoff)
    assert rig.clock.slept == list(rig.engine.options.doubt_backoff)  # it backed off before each look
    again = only(rig.run(ny(2027, 3, 1, 9, 30)), "SPY")
    assert again.status is Outcome.PENDING and len(broker.submits) == 1
    broker.lag_lookups = 0
    settled = only(rig.run(ny(2027, 3, 1, 10)), "SPY")
    assert settled.status is Outcome.FILLED and len(broker.submits) == 1


# -- 2. a pending intent is not resent at its old size ------------------------------------


def test_a_pending_intent_is_not_resent_after_its_amount_was_corrected(make_rig):
    broker = FakeBroker()
    rig = make_rig("Active,SPY,4000,Weekly,,s1\n", broker=broker, checkpoint=crash_at("intent_recorded"))
    with pytest.raises(KeyboardInterrupt):
        rig.run(MONDAY)
    rig.plan_path.write_text(HEADER + "Active,SPY,40,Weekly,,s1\n")  # the person fixes the typo
    rig.engine._checkpoint = no_crash
    spy = only(rig.run(ny(2027, 3, 1, 9, 20)), "SPY")
    assert spy.status is Outcome.SKIPPED
    assert "the row changed before the order was sent: $4,000.00 → $40.00" in spy.message
    assert broker.submits == [] and broker.book == {}
    assert spy.added == 0 and rig.ledger.carry("s1") == 0
    assert "the row changed before the order was sent" in rig.plan_path.read_text()


def test_a_pending_intent_is_not_resent_when_a_lowered_guard_now_refuses_it(make_rig):
    broker = FakeBroker()
    rig = make_rig("Active,SPY,4000,Weekly,,s1\n", broker=broker, checkpoint=crash_at("intent_recorded"))
    with pytest.raises(KeyboardInterrupt):
        rig.run(MONDAY)
    rig.engine.options = type(rig.engine.options)(max_order_usd=Decimal("1000"))
    rig.engine._checkpoint = no_crash
    spy = only(rig.run(ny(2027, 3, 1, 9, 20)), "SPY")
    assert spy.status is Outcome.SKIPPED
    assert "over the maximum per order ($1,000.00) (checked again before sending)" in spy.message
    assert broker.submits == []


def test_a_pending_intent_is_not_resent_when_the_daily_maximum_was_lowered(make_rig):
    broker = FakeBroker(fractional=True)
    rig = make_rig("Active,SPY,800,Weekly,,s1\n", broker=broker, checkpoint=crash_at("intent_recorded"))
    with pytest.raises(KeyboardInterrupt):
        rig.run(MONDAY)
    rig.engine.options = type(rig.engine.options)(max_daily_usd=Decimal("799.99"))
    rig.engine._checkpoint = no_crash
    spy = only(rig.run(ny(2027, 3, 1, 9, 20)), "SPY")
    assert spy.status is Outcome.SKIPPED and "maximum per day ($799.99" in spy.message
    assert broker.submits == []


def test_an_unchanged_pending_intent_is_sent_once_on_the_same_day(make_rig):
    broker = FakeBroker()
    rig = make_rig("Active,SPY,700,Weekly,,s1\n", broker=broker, checkpoint=crash_at("intent_recorded"))
    with pytest.raises(KeyboardInterrupt):
        rig.run(MONDAY)
    rig.engine._checkpoint = no_crash
    spy = only(rig.run(ny(2027, 3, 1, 9, 20)), "SPY")
    assert spy.status is Outcome.FILLED and len(broker.submits) == 1


# -- 3. "no such order" is not trusted as "never received" --------------------------------


def test_yesterdays_order_the_list_no_longer_shows_is_not_recorded_missed(make_rig):
    # Today-only order list: the next day the broker cannot say; the ledger must not
    # claim the order never reached it.
    broker = FakeBroker(today_only=True)
    rig = make_rig("Active,SPY,700,Weekly,,s1\n", broker=broker, checkpoint=crash_at("broker_returned"))
    with pytest.raises(KeyboardInterrupt):
        rig.run(MONDAY)
    rig.engine._checkpoint = no_crash
    tuesday = rig.run(ny(2027, 3, 2, 9, 0, 30))
    spy = only(tuesday, "SPY")
    assert spy.status is Outcome.PENDING and "list covers today only" in spy.message
    assert len(broker.submits) == 1


def test_realistic_broker_an_order_in_doubt_overnight_is_settled_from_its_fills(make_rig, tmp_path):
    world = RealisticWorld(partial_share=0.0)
    rig = make_rig("Active,SPY,700,Weekly,,s1\n", realistic=world, checkpoint=crash_at("broker_returned"))
    with pytest.raises(KeyboardInterrupt):
        rig.run(MONDAY)  # 09:00: accepted, PreSubmitted; the process dies before recording it
    # A restart the next day: a new broker session (its order list warms up again).
    rig.engine.broker = SimulatedBroker(rig.broker.book_path, realistic=world)
    rig.engine.broker.restart_session()
    rig.engine._checkpoint = no_crash
    # The first lookup warms the list up and answers nothing; the engine asks again.
    slept = len(rig.clock.slept)
    spy = only(rig.run(ny(2027, 3, 2, 9, 0, 30)), "SPY")
    assert len(rig.clock.slept) == slept + 1  # one pause before asking again
    [order] = rig.engine.broker.orders(at=ny(2027, 3, 2, 9, 10))
    assert order.state is OrderState.FILLED
    assert spy.status is Outcome.FILLED and spy.cost == order.fill_cost and spy.price == order.avg_price


# -- 4. working statuses stay submitted and are refreshed ---------------------------------


def test_realistic_broker_a_presubmitted_order_fills_at_the_open_at_another_price(make_rig):
    world = RealisticWorld(partial_share=0.0, lag_lookups=0, warm_up=False)
    rig = make_rig("Active,SPY,700,Weekly,,s1\n", realistic=world)
    spy = only(rig.run(MONDAY), "SPY")
    assert spy.status is Outcome.SUBMITTED and spy.broker_status == "PreSubmitted"
    assert spy.price_source == "previous close"
    assert "submitted (PreSubmitted)" in rig.plan_path.read_text()
    assert rig.run(ny(2027, 3, 1, 9, 20)).executions == []  # still working: nothing new to say
    filled = only(rig.run(ny(2027, 3, 1, 9, 45)), "SPY")
    assert filled.status is Outcome.FILLED
    [order] = rig.broker.orders()
    assert filled.price == order.avg_price != spy.price  # the open differs from the 09:00 quote
    assert filled.cost == order.fill_cost
    assert rig.ledger.carry("s1") == Decimal("700") - order.fill_cost


def test_a_working_order_is_refreshed_after_its_day_until_final(make_rig):
    broker = FakeBroker(fill="working")
    rig = make_rig("Active,SPY,700,Weekly,,s1\n", broker=broker)
    assert only(rig.run(MONDAY), "SPY").status is Outcome.SUBMITTED
    assert rig.run(ny(2027, 3, 2, 9, 1)).executions == []
    broker.set_state("dca-s1-20270301", OrderState.CANCELLED, filled_quantity=Decimal("3"),
                     avg_price=Decimal("101.00"))
    spy = only(rig.run(ny(2027, 3, 3, 9, 1)), "SPY")
    assert spy.status is Outcome.FILLED and spy.quantity == 3 and spy.cost == Decimal("303.00")
    assert "partly filled: 3 of 7" in spy.message
    assert rig.ledger.carry("s1") == Decimal("397.00")  # the unfilled part carries on


def test_a_partial_fill_is_recorded_while_the_order_works(make_rig):
    broker = FakeBroker(fill="working")
    rig = make_rig("Active,SPY,700,Weekly,,s1\n", broker=broker)
    rig.run(MONDAY)
    broker.set_state("dca-s1-20270301", OrderState.PARTIAL, filled_quantity=Decimal("2"),
                     avg_price=Decimal("100.00"), broker_status="Submitted")
    spy = only(rig.run(ny(2027, 3, 1, 10)), "SPY")
    assert spy.status is Outcome.SUBMITTED and spy.filled_quantity == 2
    assert "partly filled so far: 2 of 7" in spy.message


def test_an_order_cancelled_with_nothing_filled_is_failed_and_keeps_the_carry(make_rig):
    broker = FakeBroker(fill="working")
    rig = make_rig("Active,SPY,750,Weekly,,s1\n", broker=broker)
    rig.run(MONDAY)
    broker.set_state("dca-s1-20270301", OrderState.CANCELLED, filled_quantity=Decimal("0"))
    spy = only(rig.run(ny(2027, 3, 1, 16, 30)), "SPY")
    assert spy.status is Outcome.FAILED and rig.ledger.carry("s1") == 0


# -- 5. a fill above the estimate is recorded, and counted -------------------------------


def test_a_fill_above_the_estimate_is_recorded_as_an_overspend_and_taken_from_the_next_buy(make_rig):
    broker = FakeBroker(fill_price_factor=Decimal("1.20"))
    rig = make_rig("Active,SPY,900,Weekly,,s1\n", broker=broker, max_order_usd=Decimal("1000"))
    spy = only(rig.run(MONDAY), "SPY")
    # 9 shares sized at $100 (the quote), filled at $120.
    assert spy.status is Outcome.FILLED and spy.cost == Decimal("1080.00")
    assert "overspent $180.00" in spy.message and "above the maximum per order ($1,000.00)" in spy.message
    assert spy.carry_out == Decimal("-180.00") == rig.ledger.carry("s1")
    assert "carry -$180.00" in rig.plan_path.read_text()
    assert rig.ledger.committed_on(MONDAY.date()) == Decimal("1080.00")
    broker.fill_price_factor = Decimal("1")
    nxt = only(rig.run(ny(2027, 3, 8, 9, 1)), "SPY")
    assert nxt.quantity == 7 and nxt.carry_in == Decimal("-180.00")  # $900 - $180 buys 7 at $100


def test_the_guards_leave_a_margin_for_the_price_to_move(make_rig):
    broker = FakeBroker()
    rig = make_rig("Active,SPY,1000,Weekly,,s1\n", broker=broker, max_order_usd=Decimal("1000"))
    spy = only(rig.run(MONDAY), "SPY")
    assert spy.status is Outcome.SKIPPED
    assert "$1,050.00 ($1,000.00 plus 5% for the price moving before the fill) is over the maximum" in spy.message


# -- 6. a symbol change after the intent ---------------------------------------------------


def test_a_symbol_change_after_the_intent_is_skipped_and_says_so(make_rig):
    broker = FakeBroker()
    rig = make_rig("Active,AAPL,700,Weekly,,a1\n", broker=broker, checkpoint=crash_at("intent_recorded"))
    with pytest.raises(KeyboardInterrupt):
        rig.run(MONDAY)
    rig.plan_path.write_text(HEADER + "Active,MSFT,700,Weekly,,a1\n")
    rig.engine._checkpoint = no_crash
    report = rig.run(ny(2027, 3, 1, 9, 20))
    [execution] = report.executions
    assert execution.status is Outcome.SKIPPED
    assert "the row changed before the order was sent: AAPL → MSFT" in execution.message
    assert "no longer Active" not in execution.message
    assert broker.submits == []


# -- 7. notices once per problem -----------------------------------------------------------


def test_a_plan_error_is_notified_once_not_on_every_run_and_its_fix_is_told(make_rig):
    rig = make_rig("Active,SPY,700,Weekly,,s1\nActive,VTI,ten,Weekly,,v1\n")
    for minute in range(5):
        rig.run(ny(2027, 3, 1, 9, 1 + minute))
    assert rig.notifications().count("'ten' is not") == 1
    rig.plan_path.write_text(HEADER + "Active,SPY,700,Weekly,,s1\nActive,VTI,10,Weekly,,v1\n")
    rig.run(ny(2027, 3, 1, 9, 10))
    rig.run(ny(2027, 3, 1, 9, 11))
    assert rig.notifications().count("Resolved: Plan error") == 1


def test_a_deferred_execution_is_notified_once_with_what_happens_next(make_rig):
    rig = make_rig("Active,SPY,700,Weekly,,s1\n", faults={"*": "unavailable"})
    for minute in range(4):
        rig.run(ny(2027, 3, 1, 9, 1 + minute))
    text = rig.notifications()
    assert text.count("Not attempted: row 2 SPY") == 1
    # Weekly: still due the next day, not "recorded as missed after that day".
    assert "A Weekly row stays due until its next scheduled date" in text
    assert "after that day they are recorded as missed" not in text
    rig.broker._faults.clear()
    spy = only(rig.run(ny(2027, 3, 2, 9, 1)), "SPY")
    assert spy.status is Outcome.FILLED and spy.late
    assert rig.notifications().count("Resolved: Not attempted: row 2 SPY") == 1


def test_an_order_still_in_doubt_at_the_end_of_a_run_is_notified_with_what_to_check(make_rig):
    broker = FakeBroker(lag_lookups=99, submit_faults=["timeout_after_accept"])
    rig = make_rig("Active,SPY,700,Weekly,,s1\n", broker=broker)
    rig.run(MONDAY)
    rig.run(ny(2027, 3, 1, 9, 5))
    text = rig.notifications()
    assert text.count("Order in doubt: SPY $700.00 for 2027-03-01 (reference dca-s1-20270301)") == 1
    assert "Check the broker's orders for that reference" in text


def test_the_same_message_is_not_queued_twice_by_a_worker_checking_every_minute(make_rig):
    rig = make_rig("Active,SPY,700,Weekly,,s1\nActive,VTI,,Weekly,,v1\n")
    for minute in range(30):
        rig.run(ny(2027, 3, 1, 9, 1) + timedelta(minutes=minute))
    with sqlite3.connect(rig.ledger.path) as db:
        bodies = [b for (b,) in db.execute("SELECT body FROM outbox WHERE kind='notify'")]
    assert max(Counter(bodies).values()) == 1


# -- 8. a stale copy of the plan -----------------------------------------------------------


def stale_copy(rig):
    """The plan as a spreadsheet app saves an older copy: the same rows, no ID column."""
    rows = [line.split(",")[:4] for line in rig.plan_lines()[1:] if line]
    rig.plan_path.write_text("Status,Stock Symbol,Amount (USD),Frequency\n" + "".join(",".join(r) + "\n" for r in rows))


def test_a_stale_copy_without_ids_does_not_buy_the_rows_again(make_rig):
    rig = make_rig("Active,SPY,700,Daily,,s1\nActive,VTI,800,Daily,,v1\n")
    first = rig.run(MONDAY)
    assert [e.status for e in first.executions] == [Outcome.FILLED, Outcome.FILLED]
    stale_copy(rig)
    again = rig.run(ny(2027, 3, 1, 10))
    assert again.executions == []
    assert len(rig.broker.orders()) == 2
    held = [i for i in again.errors if "a stale copy of the plan?" in i.message]
    assert [i.symbol for i in held] == ["SPY", "VTI"]
    assert "put s1 back in its ID cell" in held[0].message
    assert "stale copy" in rig.notifications()
    # Tomorrow the new IDs are ordinary rows (nothing was bought twice on any day).
    tuesday = rig.run(ny(2027, 3, 2, 9, 1))
    assert sorted(e.symbol for e in tuesday.executions if e.status is Outcome.FILLED) == ["SPY", "VTI"]


def test_a_stale_copy_of_a_monthly_row_is_still_held_on_the_following_days(make_rig):
    # Held on Monday, the new ID's first sighting is Monday: on Tuesday its candidate is
    # still Monday's execution, which the vanished ID already bought.
    rig = make_rig("Active,VTI,800,Monthly,,v1\n")
    assert [e.status for e in rig.run(MONDAY).executions] == [Outcome.FILLED]
    stale_copy(rig)
    assert rig.run(ny(2027, 3, 1, 10)).executions == []
    tuesday = rig.run(ny(2027, 3, 2, 9, 1))
    assert tuesday.executions == [] and "its 2027-03-01 execution was already ordered" in tuesday.errors[0].message
    assert len(rig.broker.orders()) == 1
    april = rig.run(ny(2027, 4, 1, 9, 1))  # a new month: an execution nobody has bought
    assert [(e.scheduled_date.month, e.status) for e in april.executions] == [(3, Outcome.SKIPPED), (4, Outcome.FILLED)]
    assert "already ordered for ID v1" in april.executions[0].message
    assert len(rig.broker.orders()) == 2


def test_a_held_row_is_released_by_restoring_its_id_or_by_confirming_it(make_rig, capsys):
    rig = make_rig("Active,SPY,700,Daily,,s1\nActive,VTI,800,Daily,,v1\n")
    rig.run(MONDAY)
    stale_copy(rig)
    held = rig.run(ny(2027, 3, 1, 10)).errors
    vti_id = next(i.row_id for i in held if i.symbol == "VTI")
    # Restoring SPY's old ID: nothing to buy for it (it was bought today).
    table = [line.split(",") for line in rig.plan_lines()]
    id_column = table[0].index("ID")
    spy = next(line for line in table if line[1] == "SPY")
    spy[id_column] = "s1"
    rig.plan_path.write_text("".join(",".join(line) + "\n" for line in table))
    # Confirming VTI's new row as really new: it is bought (late) today.
    assert main(["confirm-row", vti_id, "--plan", str(rig.plan_path), "--db", str(rig.ledger.path)]) == 0
    assert "confirmed as a new row" in capsys.readouterr().out
    report = rig.run(ny(2027, 3, 1, 10, 30))
    assert [(e.symbol, e.status) for e in report.executions] == [("VTI", Outcome.FILLED)]
    assert report.errors == []


# -- 9. smaller -----------------------------------------------------------------------------


def test_an_integrity_error_other_than_already_recorded_is_not_swallowed(tmp_path):
    from dca.execution import Execution

    ledger = Ledger(tmp_path / "l.sqlite3")
    bad = Execution(row_id="r1", scheduled_date=MONDAY.date(), scheduled_at=MONDAY, symbol="SPY",
                    frequency=None, amount_usd=Decimal("1"), status=Outcome.PENDING)  # NOT NULL column
    with pytest.raises(LedgerError, match="could not record SPY"):
        ledger.insert(bad)
    good = bad.evolve(frequency="Weekly")
    assert ledger.insert(good) is not None
    assert ledger.insert(good) is None  # the same (row, date) again: already recorded


def test_one_ledger_reached_through_a_symlink_has_one_lock(tmp_path):
    real = tmp_path / "data" / "ledger.sqlite3"
    Ledger(real)
    (tmp_path / "link").symlink_to(tmp_path / "data")
    via_link = Ledger(tmp_path / "link" / "ledger.sqlite3")
    assert via_link.path == real.resolve()
    with Ledger(real).run_lock():
        from dca.ledger import LedgerBusy

        with pytest.raises(LedgerBusy):
            with via_link.run_lock(timeout=0):
                pass


def test_a_fault_count_applies_to_quotes_too(tmp_path):
    broker = SimulatedBroker(tmp_path / "b.sqlite3", faults={"SPY": "no_quote:1"})
    first = broker.quotes(["SPY"], MONDAY)["SPY"]
    second = broker.quotes(["SPY"], MONDAY)["SPY"]
    assert first.price is None and second.price is not None


@pytest.mark.parametrize("fault", ["crash_before_accept", "crash_after_accept"])
def test_the_crash_faults_cannot_be_switched_on_by_configuration(fault):
    with pytest.raises(ConfigError, match="unknown fault"):
        load_settings(environ={"DCA_SIM_FAULTS": f"SPY={fault}"}, dotenv=None)


def test_a_run_settles_only_the_engine_s_own_notices(make_rig):
    # The worker keeps notices of its own (its morning preflight); a run must not call
    # them resolved just because it did not see them.
    rig = make_rig("Active,SPY,700,Weekly,,s1\n")
    rig.ledger.settle_notices({"preflight:broker": "the broker is not logged in"}, [], [])
    rig.run(MONDAY)
    assert "preflight:broker" in rig.ledger.open_notices()
    assert "Resolved: the broker is not logged in" not in rig.notifications()


def test_log_updates_stuck_for_several_runs_are_told_once(make_rig):
    import os

    rig = make_rig("Active,SPY,700,Daily,,s1\n")
    os.chmod(rig.plan_path, 0o444)  # the plan cannot take Log writes
    for day in (1, 2, 3, 4, 5):
        rig.run(ny(2027, 3, day, 9, 1))
    text = rig.notifications()
    assert text.count("Log cell updates for CSV file") == 1
    assert "The orders are not affected" in text
    os.chmod(rig.plan_path, 0o644)
    rig.run(ny(2027, 3, 5, 10))
    rig.run(ny(2027, 3, 5, 11))
    assert rig.notifications().count("Resolved: Log cell updates for CSV file") == 1
