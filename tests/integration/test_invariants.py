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
from datetime import timedelta
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

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


def run_history(rig, calendar, runs) -> None:
    now = START
    first_seen = None
    for gap, crash_step, crash_nth, fault in runs:
        now += timedelta(minutes=gap)
        rig.broker._faults.clear()
        if fault:
            kind, _, count = fault.partition(":")
            rig.broker._faults["*"] = [kind, int(count)]
        seen = Counter()

        def crash_at(step, execution, crash_step=crash_step, crash_nth=crash_nth):
            seen[step] += 1
            if step == crash_step and seen[step] == crash_nth:
                raise Crash

        rig.engine._checkpoint = crash_at
        crashed = False
        try:
            rig.run(now)
        except Crash:
            crashed = True
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
