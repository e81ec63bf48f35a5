"""A 100-order run at "IBKR": the engine, the real ibind client over real HTTP, and the
gateway emulator enforcing IBKR's limits in real time.

    python3 -m uv run python bench/ibkr.py [--orders 100]

The plan has 100 Active Daily rows; the run is at Tuesday 2026-12-01 09:00:30 New York,
when all are due. The emulator refuses (429) more than 10 requests a second and more
than one order-list or trades request per 5 s, as IBKR does, so a run that breaks the
pacing fails rather than looks fast. The time the pacing rules allow is

    (requests sent - 1) / 10 s  +  the snapshot preflight's wait (1 s)

(every request, the order POSTs included, goes through the one 10-per-second budget).
Target: the run takes at most 1.2 times that. Exits 1 if it takes longer, if any request
was refused, or if the gateway does not hold exactly one order per row.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dca.brokers.ibkr import IbkrBroker, IbkrConfig, build_client  # noqa: E402
from dca.domain import Outcome  # noqa: E402
from dca.engine import Engine, RunOptions  # noqa: E402
from dca.ledger import Ledger  # noqa: E402
from dca.notify.log_notifier import FileNotifier  # noqa: E402
from dca.plans.csv_file import CsvPlanSource  # noqa: E402
from dca.schedule_rules import Schedule  # noqa: E402
from dca.trading_calendar import NyseCalendar  # noqa: E402
from tests.conftest import HEADER, ny  # noqa: E402
from tests.fakes.ibkr_gateway import UNIVERSE, IbkrGateway  # noqa: E402

AT = ny(2026, 12, 1, 9, 0, 30)
TARGET = 1.2


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=100)
    args = parser.parse_args(argv)

    gateway = IbkrGateway(account="DU1234567")
    gateway.today = AT.date()
    gateway.global_rate = 10.0
    running = gateway.serve()
    symbols = sorted(UNIVERSE)
    try:
        with tempfile.TemporaryDirectory() as folder:
            base = Path(folder)
            plan_path = base / "plan.csv"
            plan_path.write_text(HEADER + "".join(
                f"Active,{symbols[i % len(symbols)]},{200 + i},Daily,,r{i:03d}\n" for i in range(args.orders)))
            config = IbkrConfig(url=running.url, account_id="DU1234567")
            broker = IbkrBroker(build_client(config), config)
            engine = Engine(CsvPlanSource(plan_path), broker, Ledger(base / "ledger.sqlite3"),
                            FileNotifier(base / "notifications.log"), Schedule(NyseCalendar()),
                            RunOptions(max_daily_usd=10_000_000))
            started = time.perf_counter()
            report = engine.run(AT)
            elapsed = time.perf_counter() - started
    finally:
        running.stop()

    requests = len(gateway.requests)
    allowed = (requests - 1) / 10 + config.preflight_wait
    filled = sum(1 for e in report.executions if e.status is Outcome.FILLED)
    refs = [o.order_ref for o in gateway.orders]
    refused = gateway.refused
    print(f"{args.orders} rows: {filled} filled, {len(refs)} orders at the gateway "
          f"({len(set(refs))} distinct client order ids), {requests} requests, {refused} refused")
    print(f"run took {elapsed:.2f} s; pacing allows {allowed:.2f} s; ratio {elapsed / allowed:.3f} (target <= {TARGET})")
    ok = elapsed <= TARGET * allowed and refused == 0 and len(refs) == len(set(refs)) == args.orders == filled
    print("OK" if ok else "MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
