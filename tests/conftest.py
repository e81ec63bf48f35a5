"""Shared fixtures: a clean environment, New York times, and an engine on real adapters
(CSV plan, SIMULATED broker, SQLite ledger, file notifier) in a temporary directory."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from dca.brokers.simulated import SimulatedBroker
from dca.engine import Engine, RunOptions
from dca.ledger import Ledger
from dca.notify.log_notifier import FileNotifier
from dca.plans.csv_file import CsvPlanSource
from dca.schedule_rules import Schedule
from dca.trading_calendar import NyseCalendar
from tests.fakes import FakeClock

NY = ZoneInfo("America/New_York")
HEADER = "Status,Stock Symbol,Amount (USD),Frequency,Log,ID\n"


def ny(*args) -> datetime:
    """ny(2027, 5, 3, 9, 0, 20) -> that wall-clock time in New York."""
    return datetime(*args, tzinfo=NY)


@pytest.fixture(scope="session")
def cache_home(tmp_path_factory) -> Path:
    """One $XDG_CACHE_HOME for the session: the trading-day table is built once, and
    never written to the developer's own ~/.cache."""
    return tmp_path_factory.mktemp("xdg-cache")


@pytest.fixture(autouse=True)
def clean_environ(monkeypatch, tmp_path, cache_home):
    """No DCA_* variable of the developer's machine leaks into a test; data goes to tmp."""
    for key in list(os.environ):
        if key.startswith("DCA_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("DCA_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache_home))
    monkeypatch.chdir(tmp_path)  # so no stray .env of the repo is read


@pytest.fixture(scope="session")
def calendar() -> NyseCalendar:
    return NyseCalendar()


@dataclass
class Rig:
    """An engine and its real adapters, with handles for assertions."""

    dir: Path
    plan_path: Path
    plan: CsvPlanSource
    broker: SimulatedBroker
    ledger: Ledger
    notifier: FileNotifier
    engine: Engine
    clock: FakeClock

    def run(self, now: datetime, dry_run: bool = False):
        return self.engine.run(now, dry_run=dry_run)

    def plan_lines(self) -> list[str]:
        return self.plan_path.read_text().splitlines()

    def notifications(self) -> str:
        return self.notifier.path.read_text() if self.notifier.path.exists() else ""


@pytest.fixture
def make_rig(tmp_path, calendar):
    """make_rig(rows_csv, fractional=False, faults=None, **run_options) -> Rig.

    `rows_csv` is the plan without its header, e.g. "Active,QQQ,50,Daily,,q1\\n"."""

    def make(rows_csv: str, fractional: bool = False, faults=None, checkpoint=None, base: Path | None = None,
             broker=None, realistic=None, **options) -> Rig:
        """`base`: another directory than the test's tmp_path (e.g. one per Hypothesis example).
        `broker`: another broker than the SIMULATED one (e.g. a FakeBroker); `realistic`: a
        RealisticWorld for the SIMULATED broker."""
        base = base or tmp_path
        plan_path = base / "plan.csv"
        plan_path.write_text(HEADER + rows_csv)
        plan = CsvPlanSource(plan_path)
        broker = broker or SimulatedBroker(base / "book.sqlite3", fractional=fractional, faults=faults,
                                           realistic=realistic)
        ledger = Ledger(base / "ledger.sqlite3", lock_timeout=30)
        notifier = FileNotifier(base / "notifications.log")
        clock = FakeClock()  # back-offs advance it at once: no test sleeps
        engine = Engine(plan, broker, ledger, notifier, Schedule(calendar), RunOptions(**options), checkpoint, clock)
        return Rig(base, plan_path, plan, broker, ledger, notifier, engine, clock)

    return make
