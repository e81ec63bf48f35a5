"""Benchmarks for a thousand-row plan: one engine run, and the upcoming calendar.

    python3 -m uv run python bench/run.py [--repeat N] [--dir PATH] [--profile]

(a) one engine run of 1,000 Active rows (Daily/Weekly/Monthly, mixed amounts, fixed IDs,
    CSV plan) on the SIMULATED broker with a SQLite ledger, at Monday 2027-03-01
    09:00:30 New York, when every row is due -- target < 1 s; then a second run at 09:30
    (nothing due), reported but without a target.
(b) `dca.queries.next_executions` for the same 1,000 rows over 2027, on an empty ledger,
    as of 2026-12-31 -- target < 200 ms.

Each repetition starts from empty files in a new temporary directory and a new
`Schedule`. "first" is the first repetition (cold: SQLite files created, sessions
fetched); "median" is over all repetitions and is what the target applies to. Building
the XNYS calendar happens once per process and is reported on its own line. Exits 1 if a
target is missed or (a) does not place exactly 1,000 orders; with a missed target (or
--profile) it prints where the time goes.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Callable
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dca.brokers.simulated import SimulatedBroker  # noqa: E402
from dca.domain import Outcome  # noqa: E402
from dca.engine import Engine, RunOptions  # noqa: E402
from dca.ledger import Ledger  # noqa: E402
from dca.notify.log_notifier import FileNotifier  # noqa: E402
from dca.plans.csv_file import CsvPlanSource  # noqa: E402
from dca.queries import next_executions  # noqa: E402
from dca.schedule_rules import Schedule  # noqa: E402
from dca.trading_calendar import NyseCalendar  # noqa: E402

NY = ZoneInfo("America/New_York")
ROWS = 1000
ALL_DUE = datetime(2027, 3, 1, 9, 0, 30, tzinfo=NY)  # first trading day of a month and a week
NOTHING_DUE = datetime(2027, 3, 1, 9, 30, tzinfo=NY)
YEAR = (date(2027, 1, 1), date(2027, 12, 31))
BEFORE_THE_YEAR = datetime(2026, 12, 31, 12, 0, tzinfo=NY)
RUN_TARGET_S = 1.0
UPCOMING_TARGET_S = 0.200

SYMBOLS = (
    "AAPL MSFT NVDA AMZN GOOGL META BRK.B AVGO TSLA JPM V UNH XOM MA JNJ PG HD COST ABBV MRK "
    "VOO VTI QQQ IWM SPY SCHD VXUS BND VEA VWO VNQ GLD TLT IEFA AGG IJR IJH VIG VYM VGT"
).split()
FREQUENCIES = ("Daily", "Weekly", "Monthly")
AMOUNTS = ("25", "50", "75.50", "100", "$250", "500", "1,000", "2500")


def plan_csv(rows: int = ROWS) -> str:
    lines = ["Status,Stock Symbol,Amount (USD),Frequency,Log,ID"]
    for i in range(rows):
        amount = AMOUNTS[(i * 7) % len(AMOUNTS)]
        lines.append(
            f'Active,{SYMBOLS[i % len(SYMBOLS)]},"{amount}",{FREQUENCIES[i % 3]},,bench-{i:04d}'
        )
    return "\n".join(lines) + "\n"


def build_engine(directory: Path, calendar: NyseCalendar) -> tuple[Engine, SimulatedBroker, Ledger]:
    plan_path = directory / "plan.csv"
    plan_path.write_text(plan_csv())
    broker = SimulatedBroker(directory / "book.sqlite3", fractional=True)
    ledger = Ledger(directory / "ledger.sqlite3")
    options = RunOptions(max_order_usd=Decimal("5000"), max_daily_usd=Decimal("100000000"))
    engine = Engine(
        CsvPlanSource(plan_path), broker, ledger, FileNotifier(directory / "notifications.log"),
        Schedule(calendar), options,
    )
    return engine, broker, ledger


@dataclass
class Measure:
    name: str
    target: float | None
    times: list[float] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    ok: bool = True

    @property
    def first(self) -> float:
        return self.times[0]

    @property
    def median(self) -> float:
        return statistics.median(self.times)

    @property
    def met(self) -> bool:
        return self.ok and (self.target is None or self.median < self.target)


def timed(fn: Callable[[], object]) -> tuple[float, object]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def bench_engine(repeat: int, base: Path | None, calendar: NyseCalendar) -> tuple[Measure, Measure]:
    first_run = Measure("(a) engine run, 1,000 rows all due", RUN_TARGET_S)
    second_run = Measure("(a) second run, nothing due", None)
    for _ in range(repeat):
        with tempfile.TemporaryDirectory(prefix="dca-bench-", dir=base) as tmp:
            engine, broker, ledger = build_engine(Path(tmp), calendar)
            elapsed, report = timed(lambda: engine.run(ALL_DUE))
            first_run.times.append(elapsed)
            orders = len(broker.orders())
            filled = sum(e.status is Outcome.FILLED for e in report.executions)
            if orders != ROWS or filled != ROWS:
                first_run.ok = False
            first_run.notes.append(f"orders {orders}, filled {filled}, executions {len(report.executions)}")

            elapsed, again = timed(lambda: engine.run(NOTHING_DUE))
            second_run.times.append(elapsed)
            new_orders = len(broker.orders()) - orders
            if again.executions or new_orders:
                second_run.ok = False
            second_run.notes.append(f"executions {len(again.executions)}, new orders {new_orders}")
            ledger.close()
    return first_run, second_run


def bench_upcoming(repeat: int, calendar: NyseCalendar) -> Measure:
    measure = Measure("(b) next executions, 1,000 rows, 2027", UPCOMING_TARGET_S)
    with tempfile.TemporaryDirectory(prefix="dca-bench-") as tmp:
        path = Path(tmp) / "plan.csv"
        path.write_text(plan_csv())
        plan = CsvPlanSource(path).load()
        ledger = Ledger(Path(tmp) / "ledger.sqlite3")
        assert len(plan.active_rows) == ROWS, plan.issues[:3]
        for _ in range(repeat):
            schedule = Schedule(calendar)
            elapsed, outlook = timed(lambda: next_executions(plan, schedule, ledger, BEFORE_THE_YEAR, *YEAR))
            measure.times.append(elapsed)
            measure.notes.append(f"{len(outlook.items)} items")
        ledger.close()
    return measure


def profile(label: str, fn: Callable[[], object], limit: int = 25) -> None:
    profiler = cProfile.Profile()
    profiler.enable()
    fn()
    profiler.disable()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out).strip_dirs()
    stats.sort_stats("tottime").print_stats(limit)
    stats.sort_stats("cumulative").print_stats(limit)
    print(f"\n--- profile: {label} ---")
    print(out.getvalue())


def profile_engine(base: Path | None, calendar: NyseCalendar) -> None:
    with tempfile.TemporaryDirectory(prefix="dca-bench-", dir=base) as tmp:
        engine, _, ledger = build_engine(Path(tmp), calendar)
        profile("(a) engine run, 1,000 rows all due", lambda: engine.run(ALL_DUE))
        ledger.close()


def profile_upcoming(calendar: NyseCalendar) -> None:
    with tempfile.TemporaryDirectory(prefix="dca-bench-") as tmp:
        path = Path(tmp) / "plan.csv"
        path.write_text(plan_csv())
        plan = CsvPlanSource(path).load()
        ledger = Ledger(Path(tmp) / "ledger.sqlite3")
        profile("(b) next executions",
                lambda: next_executions(plan, Schedule(calendar), ledger, BEFORE_THE_YEAR, *YEAR))
        ledger.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5, help="repetitions per benchmark (default 5)")
    parser.add_argument("--dir", type=Path, default=None, help="where the temporary SQLite files go")
    parser.add_argument("--profile", action="store_true", help="print cProfile output even if targets are met")
    args = parser.parse_args(argv)

    calendar = NyseCalendar(cache_dir=None)  # built from exchange_calendars, as on a first start
    build_time, _ = timed(lambda: calendar.sessions(date(2027, 1, 1), date(2027, 1, 31)))

    run_a, run_a2 = bench_engine(args.repeat, args.dir, calendar)
    run_b = bench_upcoming(args.repeat, calendar)
    measures = [run_a, run_a2, run_b]

    where = args.dir or Path(tempfile.gettempdir())
    print(f"Python {sys.version.split()[0]}, {args.repeat} repetitions, SQLite files in {where}")
    print(f"XNYS trading-day table built from exchange_calendars (once per process; cached on disk "
          f"for the command): {build_time * 1000:.0f} ms\n")
    print(f"{'benchmark':<40} {'first':>10} {'median':>10} {'target':>10}  result")
    for m in measures:
        target = "-" if m.target is None else f"< {m.target * 1000:.0f} ms"
        result = ("ok" if m.met else "MISSED") if m.target is not None else ("ok" if m.ok else "WRONG")
        print(f"{m.name:<40} {m.first * 1000:>7.0f} ms {m.median * 1000:>7.0f} ms {target:>10}  {result}")
        runs = ", ".join(f"{t * 1000:.0f}" for t in m.times)
        print(f"{'':<40} {m.notes[0]}; all runs (ms): {runs}")
    failed = [m for m in measures if not m.met]

    if args.profile or not run_a.met:
        profile_engine(args.dir, calendar)
    if args.profile or not run_b.met:
        profile_upcoming(calendar)
    if failed:
        print("\nMISSED: " + "; ".join(m.name for m in failed), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
