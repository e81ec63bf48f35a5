"""Runs one engine run in its own process, optionally killing itself (SIGKILL) at a step.

Used by the crash tests: `python -m tests.crash_runner '<json>'` with keys dir, now,
kill_step (a checkpoint name or null), kill_nth (1-based occurrence), faults, and
pause_step: print PAUSED there and wait for a line on stdin.
A kill by SIGKILL skips every cleanup, as a power cut or OOM kill would.
"""

import json
import os
import signal
import sys
from datetime import datetime
from pathlib import Path

from dca.brokers.simulated import SimulatedBroker
from dca.engine import Engine, RunOptions
from dca.ledger import Ledger
from dca.notify.log_notifier import FileNotifier
from dca.plans.csv_file import CsvPlanSource
from dca.schedule_rules import Schedule
from dca.trading_calendar import NyseCalendar


def main(spec: dict) -> int:
    base = Path(spec["dir"])
    seen = {"n": 0}

    def checkpoint(step, execution):
        if step == spec.get("pause_step") and not seen.get("paused"):
            seen["paused"] = True
            # Hold the run (and its lock) until the test says go: a deterministic overlap.
            print("PAUSED", flush=True)
            sys.stdin.readline()
        if step == spec.get("kill_step"):
            seen["n"] += 1
            if seen["n"] == spec.get("kill_nth", 1):
                os.kill(os.getpid(), signal.SIGKILL)

    engine = Engine(
        CsvPlanSource(base / "plan.csv"),
        SimulatedBroker(base / "book.sqlite3", fractional=spec.get("fractional", False), faults=spec.get("faults")),
        Ledger(base / "ledger.sqlite3", lock_timeout=60),
        FileNotifier(base / "notifications.log"),
        Schedule(NyseCalendar()),
        RunOptions(),
        checkpoint,
    )
    report = engine.run(datetime.fromisoformat(spec["now"]))
    print(json.dumps(report.as_dict()))
    return 0


if __name__ == "__main__":
    sys.exit(main(json.loads(sys.argv[1])))
