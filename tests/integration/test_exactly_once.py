"""Exactly once: double runs, concurrent processes, a kill at every step, broker faults.

The broker's own book (the SIMULATED broker keeps it apart from the ledger) is the
witness: it must hold exactly one order per due execution, whatever happened.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from dca.domain import Outcome
from tests.conftest import ny

REPO = Path(__file__).resolve().parents[2]
# Monday 2027-03-01 is the first trading day of a week and of a month: all three are due.
PLAN = "Active,QQQ,700,Daily,,q1\nActive,VOO,800,Weekly,,v1\nActive,IWM,900,Monthly,,i1\n"
DUE_REFS = {"dca-q1-20270301", "dca-v1-20270301", "dca-i1-20270301"}


def book_refs(rig) -> Counter:
    return Counter(o.order_ref for o in rig.broker.orders())


def statuses(report) -> dict[str, str]:
    return {e.symbol: str(e.status) for e in report.executions}


def test_a_second_run_finds_nothing_left_to_do(make_rig):
    rig = make_rig(PLAN)
    first = rig.run(ny(2027, 3, 1, 9, 0, 20))
    assert statuses(first) == {"QQQ": "filled", "VOO": "filled", "IWM": "filled"}
    second = rig.run(ny(2027, 3, 1, 9, 0, 21))
    assert second.executions == []
    assert book_refs(rig) == Counter(DUE_REFS)


def test_rows_reordered_in_the_plan_are_not_bought_again(make_rig):
    rig = make_rig(PLAN)
    rig.run(ny(2027, 3, 1, 9, 1))
    lines = rig.plan_lines()
    rig.plan_path.write_text("\n".join([lines[0], lines[3], "", lines[1], lines[2]]) + "\n")
    again = rig.run(ny(2027, 3, 1, 10, 0))
    assert again.executions == []
    assert book_refs(rig) == Counter(DUE_REFS)
    # The Log of each row still speaks of its own symbol after the reorder.
    for line in rig.plan_lines()[1:]:
        if line:
            symbol = line.split(",")[1]
            assert f" {symbol} @ " in line, line


def _spawn(tmp_path: Path, **spec) -> subprocess.Popen:
    spec = {"dir": str(tmp_path), **spec}
    return subprocess.Popen(
        [sys.executable, "-m", "tests.crash_runner", json.dumps(spec)],
        cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def _dca(*args: str, env_home: Path) -> subprocess.Popen:
    env = {**os.environ, "DCA_HOME": str(env_home)}
    return subprocess.Popen(
        [sys.executable, "-m", "dca.cli", *args], cwd=REPO, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


@pytest.mark.slow
def test_two_runs_at_once_the_second_waits_then_finds_nothing(make_rig, tmp_path):
    rig = make_rig(PLAN)
    first = _spawn(tmp_path, now="2027-03-01T09:00:30-05:00", pause_step="intent_recorded")
    # The first run now holds the lock with an intent recorded, and waits for us.
    assert first.stdout.readline().strip() == "PAUSED", first.stderr.read()
    second = _dca("run", "--json", "--now", "2027-03-01T09:00:31", "--plan", str(rig.plan_path),
                  "--db", str(tmp_path / "ledger.sqlite3"), env_home=tmp_path / "home")
    # The second announces that it waits for the lock before the first is released.
    waiting_line = second.stderr.readline()
    if "ahead of the real clock" in waiting_line:  # the warning for a --now in the future
        waiting_line = second.stderr.readline()
    assert "another run is in progress" in waiting_line
    first_out, first_err = first.communicate("go\n", timeout=60)
    second_out, second_err = second.communicate(timeout=60)
    assert first.returncode == 0, first_err
    assert second.returncode == 0, second_err
    assert len(json.loads(first_out)["executions"]) == 3
    assert json.loads(second_out)["executions"] == []
    assert book_refs(rig) == Counter(DUE_REFS)


CRASH_POINTS = [
    # (kill_step, kill_nth, faults): where the process dies during the second execution (VOO)
    ("intent_recorded", 2, None),  # intent committed, broker not called yet
    (None, 0, {"VOO": "crash_before_accept"}),  # during submit, before the broker records it
    (None, 0, {"VOO": "crash_after_accept"}),  # during submit, after the broker records it
    ("broker_returned", 2, None),  # the broker answered; outcome not yet recorded
    ("outcome_recorded", 2, None),  # outcome recorded; Log and notification not yet delivered
    # The first submit fails in doubt, the broker has no such order, and the process dies
    # just after recording the second attempt, before resubmitting.
    ("attempt_recorded", 1, {"VOO": "error_before_accept:1"}),
]


@pytest.mark.slow
@pytest.mark.parametrize("kill_step,kill_nth,faults", CRASH_POINTS, ids=lambda v: str(v))
@pytest.mark.parametrize("restart", ["same day", "next day"])
def test_killed_at_any_step_each_due_execution_is_ordered_at_most_once(make_rig, tmp_path, kill_step, kill_nth, faults,
                                                                       restart):
    rig = make_rig(PLAN)
    # Only the second execution (VOO, row order) is killed; QQQ is done before it.
    crashed = _spawn(tmp_path, now="2027-03-01T09:00:30-05:00", kill_step=kill_step, kill_nth=kill_nth, faults=faults)
    crashed.communicate(timeout=60)
    assert crashed.returncode == -9, "the run should have been killed"

    restart_at = ny(2027, 3, 1, 9, 20) if restart == "same day" else ny(2027, 3, 2, 9, 0, 30)
    rig.run(restart_at)
    book = book_refs(rig)
    assert all(count == 1 for count in book.values()), book
    voo = rig.ledger.get("v1", ny(2027, 3, 1).date())
    voo_at_broker = "dca-v1-20270301" in book
    if restart == "same day":
        # Every due execution of the day is ordered exactly once.
        assert set(book) >= DUE_REFS
        assert voo.status is Outcome.FILLED
    else:
        # An order the broker never got is not placed a day late; one it got is recorded.
        assert voo.status is (Outcome.FILLED if voo_at_broker else Outcome.MISSED)
        assert voo_at_broker == (kill_step in ("broker_returned", "outcome_recorded")
                                 or faults == {"VOO": "crash_after_accept"})
    # Nothing is left pending, and each execution's outcome reached the Log and notifier.
    assert rig.ledger.with_status(Outcome.PENDING) == []
    assert rig.ledger.undelivered("log") == [] and rig.ledger.undelivered("notify") == []
    voo_line = next(line for line in rig.plan_lines() if ",v1" in line)
    assert str(voo.status) in voo_line
    assert "VOO" in rig.notifications()
    # A third run changes nothing.
    rig.run(restart_at.replace(minute=restart_at.minute + 5))
    assert book_refs(rig) == book
