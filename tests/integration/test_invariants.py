"""Exactly once and nothing lost, over random histories of runs, crashes and faults.

Hypothesis draws a sequence of run times over three months; a run may crash at a random
step (KeyboardInterrupt: not an Exception, so nothing in the engine catches it, as with
a kill) or meet a broker fault. After every run:
  - the broker holds at most one order per execution key, and every order it holds
    belongs to an execution recorded as filled, or one still pending after a crash;
  - nothing is pending after a run that finished with the broker reachable.
After a final clean run, each row has exactly one record for every occurrence from the
day it was first seen to now: bought, skipped or missed, never lost.
"""

from __future__ import annotations

import tempfile
from collections import Counter
from dataclasses import replace
from datetime import datetime, time, timedelta
from decimal import Decimal
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dca.brokers.simulated import RealisticWorld, SimulatedBroker
from dca.domain import Frequency, Outcome
from dca.schedule_rules import Schedule
from tests.conftest import ny

PLAN = "Active,QQQ,700,Daily,,q1\nActive,VOO,800,Weekly,,v1\nActive,IWM,900,Monthly,,i1\n"
ROWS = {"q1": Frequency.DAILY, "v1": Frequency.WEEKLY, "i1": Frequency.MONTHLY}
START = ny(2027, 3, 1, 8, 0)
STEPS = ["intent_recorded", "broker_returned", "outcome_recorded", None]
FAULTS = [None, "error_before_accept:1", "timeout_after_accept:1", "unavailable:1"]


class Crash(KeyboardInterrupt):
    pass


run_spec = st.tuples(
    st.integers(min_value=0, max_value=60 * 24 * 10),  # minutes after the previous run
    st.sampled_from(STEPS),  # crash at this step (None: no crash)
    st.integers(min_value=1, max_value=3),  # ...at its n-th occurrence
    st.sampled_from(FAULTS),  # a broker fault for this run, on every symbol
)


@settings(max_examples=100, derandomize=True, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(run_spec, min_size=1, max_size=8))
def test_random_histories_keep_exactly_once_and_lose_nothing(make_rig, calendar, runs):
    with tempfile.TemporaryDirectory() as fresh:  # one per example: the fixture's tmp_path is shared
        run_history(make_rig(PLAN, fractional=True, base=Path(fresh)), calendar, runs)


def run_once(rig, now, crash_step, crash_nth, fault) -> bool:
    """One run with a broker fault on every symbol and a crash at the n-th `crash_step`;
    True if it crashed."""
    rig.broker._faults.clear()
    if fault:
        kind, _, count = fault.partition(":")
        rig.broker._faults["*"] = [kind, int(count)]
    seen = Counter()

    def crash_at(step, execution):
        seen[step] += 1
        if step == crash_step and seen[step] == crash_nth:
            raise Crash

    rig.engine._checkpoint = crash_at
    try:
        rig.run(now)
    except Crash:
        return True
    return False


def run_history(rig, calendar, runs) -> None:
    now = START
    first_seen = None
    for gap, crash_step, crash_nth, fault in runs:
        now += timedelta(minutes=gap)
        crashed = run_once(rig, now, crash_step, crash_nth, fault)
        first_seen = first_seen or now.date()
        # An intent may wait (pending) after a crash, or when the broker could not be
        # reached; the final clean run must settle it either way.
        check_book(rig, allow_pending=crashed or (fault or "").startswith("unavailable"))

    # A last clean run settles everything.
    rig.broker._faults.clear()
    rig.engine._checkpoint = lambda step, execution: None
    now += timedelta(minutes=1)
    rig.run(now)
    check_book(rig, allow_pending=False)
    check_nothing_lost(rig, calendar, first_seen, now)


def check_book(rig, allow_pending: bool) -> None:
    book = Counter(o.order_ref for o in rig.broker.orders())
    assert all(n == 1 for n in book.values()), book
    executions = {e.order_ref: e for e in rig.ledger.history() if e.order_ref}
    for ref in book:
        status = executions[ref].status
        assert status is Outcome.FILLED or (allow_pending and status is Outcome.PENDING), (ref, status)
    pending = rig.ledger.with_status(Outcome.PENDING)
    if not allow_pending:
        assert pending == [], pending
    for e in executions.values():  # a filled execution has its order at the broker
        if e.status is Outcome.FILLED:
            assert book[e.order_ref] == 1


def check_nothing_lost(rig, calendar, first_seen, now) -> None:
    schedule = Schedule(calendar)
    recorded = Counter((e.row_id, e.scheduled_date) for e in rig.ledger.history())
    assert all(n == 1 for n in recorded.values())
    for row_id, frequency in ROWS.items():
        due = [d for d in schedule.between(frequency, first_seen, now.date())
               if schedule.upcoming(frequency, d, d)[0] <= now]
        assert sorted(d for (r, d) in recorded if r == row_id) == due, row_id


# -- the same laws over the realistic broker ----------------------------------------------

REALISTIC_FAULTS = [None, None, "error_before_accept:1", "timeout_after_accept:1", "unavailable:1",
                    "timeout_after_accept:2", "logged_out:1"]
MARGIN = Decimal("0.05")

world_spec = st.builds(
    RealisticWorld,
    lag_lookups=st.integers(0, 2),
    warm_up=st.booleans(),
    max_open_move=st.sampled_from([Decimal("0"), Decimal("0.02"), MARGIN]),  # within the margin
    partial_share=st.sampled_from([0.0, 0.5, 1.0]),
    partial_cancel_share=st.sampled_from([0.0, 0.5, 1.0]),
    no_quote_share=st.sampled_from([0.0, 0.2]),
    delayed_quote_share=st.sampled_from([0.0, 0.5]),
    fractional_share=st.sampled_from([0.0, 0.5, 1.0]),
    settle_seconds=st.sampled_from([0.0, 5.0]),
    absent_while_lagging=st.booleans(),
)
realistic_run = st.tuples(
    st.integers(min_value=0, max_value=60 * 24 * 3),  # minutes after the previous run (fills are kept 7 days)
    st.sampled_from(STEPS + ["attempt_recorded"]),
    st.integers(min_value=1, max_value=3),
    st.sampled_from(REALISTIC_FAULTS),
)


@settings(max_examples=200, derandomize=True, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(world_spec, st.sampled_from([Decimal("1600"), Decimal("2500"), Decimal("10000")]),
       st.lists(realistic_run, min_size=1, max_size=8))
def test_random_histories_over_the_realistic_broker_keep_the_money_laws(make_rig, world, max_daily, runs):
    with tempfile.TemporaryDirectory() as fresh:
        rig = make_rig(PLAN, base=Path(fresh), realistic=world, max_daily_usd=max_daily, price_margin=MARGIN)
        run_realistic_history(rig, world, runs)


def restart(rig, world):
    """A new process: the broker session starts again (its order list warms up)."""
    latest = rig.broker._latest_at  # the world's clock goes on; only the session restarts
    rig.broker = rig.engine.broker = SimulatedBroker(rig.broker.book_path, realistic=world)
    rig.broker._latest_at = latest
    rig.broker.restart_session()


def run_realistic_history(rig, world, runs) -> None:
    now = START
    first_seen = None
    refused = 0
    for gap, crash_step, crash_nth, fault in runs:
        now += timedelta(minutes=gap)
        if run_once(rig, now, crash_step, crash_nth, fault):
            refused += rig.broker.refused_duplicates
            restart(rig, world)
        first_seen = first_seen or now.date()
        check_realistic_book(rig, now, refused + rig.broker.refused_duplicates, world)

    # Clean runs until the broker has settled. First a catch-up run (after a restart, with
    # every quote available); then, with the rows made Inactive so nothing new is due,
    # runs over the next days until every order has worked and every lookup has settled.
    refused += rig.broker.refused_duplicates
    restart(rig, replace(world, no_quote_share=0.0))
    rig.engine._checkpoint = lambda step, execution: None
    now += timedelta(minutes=1)
    rig.run(now)
    caught_up = now
    rig.plan_path.write_text(rig.plan_path.read_text().replace("Active,", "Inactive,"))
    evening = datetime.combine(now.date() + timedelta(days=1), time(17, 30), tzinfo=now.tzinfo)
    settle_times = [evening + timedelta(minutes=10 * i) for i in range(3)]
    for day in [evening.date() + timedelta(days=n) for n in (1, 2, 3, 4)]:
        settle_times += [datetime.combine(day, time(h, 0), tzinfo=now.tzinfo) for h in (10, 12, 17)]
    for at in settle_times:
        rig.run(at)
    now = settle_times[-1]
    check_realistic_book(rig, now, refused + rig.broker.refused_duplicates, world)
    unsettled = rig.ledger.with_status(Outcome.PENDING, Outcome.SUBMITTED)
    assert unsettled == [], [(e.order_ref, e.status, e.message) for e in unsettled]
    check_nothing_lost(rig, rig.engine.schedule.calendar, first_seen, caught_up)
    check_money(rig, now)


def check_realistic_book(rig, now, refused: int, world) -> None:
    # As of the latest moment the broker was told (a run's clock moves on with back-offs).
    book = rig.broker.orders(at=max(now, rig.broker._latest_at or now))
    # An honest adapter never lets the engine resend an order the broker holds.
    if not world.absent_while_lagging:
        assert refused == 0
    executions = {e.order_ref: e for e in rig.ledger.history() if e.order_ref}
    for order in book:  # every order at the broker is one the ledger knows of
        e = executions[order.order_ref]
        if order.filled_quantity > 0:
            assert e.status in (Outcome.FILLED, Outcome.SUBMITTED, Outcome.PENDING), (order, e)
    for e in executions.values():
        if e.status is Outcome.FILLED:
            [order] = [o for o in book if o.order_ref == e.order_ref]
            assert order.state.is_final
            assert (e.quantity, e.cost, e.price) == (order.filled_quantity, order.fill_cost, order.avg_price)
    # The spend at the broker per New York day stays within the daily maximum plus the margin.
    per_day = Counter()
    for order in book:
        per_day[order.placed_at.astimezone(ny(2027, 1, 1).tzinfo).date()] += order.fill_cost
    limit = rig.engine.options.max_daily_usd * (1 + MARGIN)
    assert all(total <= limit for total in per_day.values()), (per_day, limit)


def check_money(rig, now) -> None:
    """For every row: what its executions added = what the broker filled + the carry."""
    fills = Counter()
    for order in rig.broker.orders(at=max(now, rig.broker._latest_at or now)):
        fills[order.order_ref] = order.fill_cost
    for row_id in ROWS:
        executions = [e for e in rig.ledger.history() if e.row_id == row_id]
        added = sum((e.added for e in executions), Decimal("0"))
        for e in executions:
            took_amount = e.status is Outcome.FILLED or (e.status is Outcome.SKIPPED and "carried forward" in e.message)
            assert e.added == (e.amount_usd if took_amount else 0), e
        spent = sum((fills[e.order_ref] for e in executions if e.order_ref), Decimal("0"))
        assert added == spent + rig.ledger.carry(row_id), row_id
