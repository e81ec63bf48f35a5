"""Benchmarks for the worker: how soon after its time the first order goes out, and how
much memory an idle worker holds.

    python3 -m uv run python bench/worker.py [--repeat N] [--rows N]

(e) latency: a worker (the real loop, `schedule`, its run thread, the SIMULATED broker,
    SQLite) is started at 08:59:57 New York on a trading day with N Daily rows (default
    100, fractional, so each places an order); the time from 09:00:00 to the first order the broker receives -- target < 5 s.
    The clock is time-machine's, ticking at real speed from that moment, so the wait for
    09:00 is three real seconds and everything after it is real work.
(f) idle memory: `python -m dca.worker` as a process, on the example plan, once its start
    run is over: the largest resident set size (VmRSS) over two seconds of idling --
    target < 150 MB. Measured twice: the first start ever (which builds the trading-day
    table with exchange_calendars and pandas) and a later start (which reads it cached). Linux only (/proc); elsewhere it is reported as unavailable.

Exits 1 if a target is missed.
"""

from __future__ import annotations

import argparse
import os
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import time_machine  # noqa: E402

from dca.bootstrap import build  # noqa: E402
from dca.settings import load_settings  # noqa: E402
from dca.worker import SystemWorkerClock, Worker  # noqa: E402

NY = ZoneInfo("America/New_York")
LATENCY_TARGET_S = 5.0
RSS_TARGET_MB = 150.0


def latency_once(rows: int, folder: Path) -> float:
    home = folder / "home"
    home.mkdir(parents=True)
    lines = ["Status,Stock Symbol,Amount (USD),Frequency,Log,ID"]
    lines += [f"Active,S{i:03d},100,Daily,,r{i:04d}" for i in range(rows)]
    (home / "plan.csv").write_text("\n".join(lines) + "\n")
    first_submit: list[datetime] = []
    submitted = threading.Event()
    with time_machine.travel(datetime(2027, 5, 4, 8, 59, 57, tzinfo=NY), tick=True):
        settings = load_settings(environ={"DCA_HOME": str(home), "DCA_SIM_FRACTIONAL": "true",
                                          "DCA_MAX_DAILY_USD": "999999"}, dotenv=None)
        services = build(settings)
        submit = services.broker.submit

        def timed_submit(order, at):
            if not first_submit:
                first_submit.append(datetime.now(NY))
                submitted.set()
            return submit(order, at)

        services.broker.submit = timed_submit
        stop = threading.Event()
        worker = Worker(services, SystemWorkerClock(stop), stop)
        loop = threading.Thread(target=worker.run_forever)
        loop.start()
        try:
            if not submitted.wait(60):
                raise SystemExit("no order was submitted within 60 s of 09:00")
        finally:
            stop.set()
            loop.join()
        orders = len(services.broker.orders())
    if orders != rows:
        raise SystemExit(f"expected {rows} orders, the broker holds {orders}")
    return (first_submit[0] - datetime(2027, 5, 4, 9, 0, tzinfo=NY)).total_seconds()


def idle_rss_mb(folder: Path, cache: Path) -> float | None:
    if not Path("/proc/self/status").exists():
        return None
    home = folder / "home"
    folder.mkdir(parents=True)
    env = {**os.environ, "DCA_HOME": str(home), "XDG_CACHE_HOME": str(cache)}
    env = {k: v for k, v in env.items() if not k.startswith("DCA_") or k == "DCA_HOME"}
    proc = subprocess.Popen([sys.executable, "-m", "dca.worker"], env=env, cwd=folder,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise SystemExit(f"the worker exited: {proc.stderr.read()}")
            try:
                row = sqlite3.connect(home / "ledger.sqlite3").execute(
                    "SELECT state, last_run FROM worker_heartbeat").fetchone()
            except sqlite3.Error:
                row = None
            if row and row[0] == "idle" and row[1]:
                break
            time.sleep(0.1)
        else:
            raise SystemExit("the worker did not finish its start run within 120 s")
        samples = []
        for _ in range(20):
            status = Path(f"/proc/{proc.pid}/status").read_text()
            samples.append(int(next(x for x in status.splitlines() if x.startswith("VmRSS:")).split()[1]) / 1024)
            time.sleep(0.1)
        return max(samples)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise SystemExit("the worker did not stop within 30 s of SIGTERM")
        if code != 0:
            raise SystemExit(f"the worker exited {code} on SIGTERM")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--rows", type=int, default=100)
    args = parser.parse_args()
    missed = False
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["XDG_CACHE_HOME"] = str(Path(tmp) / "cache")  # never the person's own cache
        times = [latency_once(args.rows, Path(tmp) / f"latency-{i}") for i in range(args.repeat)]
        median = statistics.median(times)
        ok = median < LATENCY_TARGET_S
        missed |= not ok
        print(f"(e) 09:00 to first order, {args.rows} Daily rows: median {median:.3f} s "
              f"(runs: {', '.join(f'{t:.3f}' for t in times)}), target < {LATENCY_TARGET_S:g} s "
              f"{'ok' if ok else 'MISSED'}")
        # Cold: the first start ever builds the trading-day table (exchange_calendars and
        # pandas stay loaded); warm: every later start, which reads the cached table.
        for label, folder in (("first start", "rss-cold"), ("later starts", "rss-warm")):
            rss = idle_rss_mb(Path(tmp) / folder, Path(tmp) / "rss-cache")
            if rss is None:
                print("(f) idle worker RSS: unavailable (no /proc on this system)")
                break
            ok = rss < RSS_TARGET_MB
            missed |= not ok
            print(f"(f) idle worker RSS, {label}: {rss:.1f} MB, target < {RSS_TARGET_MB:g} MB {'ok' if ok else 'MISSED'}")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
