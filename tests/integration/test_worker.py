"""The worker, driven step by step through time (time-machine, never sleeping).

The loop is the real one: `schedule`'s own Scheduler decides when the worker wakes, the
engine and the ledger (SQLite) decide what is bought, on the embedded default (CSV plan,
SIMULATED broker, file notifier). `drive` does what `run_forever` does, except that the
wait between ticks moves the clock instead of sleeping.
"""

from __future__ import annotations

import logging
import os
import signal
import sqlite3
import threading
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine

from dca.bootstrap import Services, build
from dca.cli import main
from dca.settings import load_settings
from dca.worker import Worker, lifetime_lock, serve
from tests.conftest import HEADER, ny
from tests.fakes import FakeBroker

UTC = ZoneInfo("UTC")
DAILY = "Active,QQQ,500,Daily,,q1\n"


class TravelClock:
    """The worker's clock in a time-travelling test: waiting moves time at once."""

    def __init__(self, traveller, stop: threading.Event):
        self.traveller = traveller
        self.stop = stop

    def now(self) -> datetime:
        return datetime.now(ZoneInfo("America/New_York"))

    def wait(self, seconds: float) -> bool:
        self.traveller.shift(seconds)
        return self.stop.is_set()


def make_services(tmp_path, rows: str = DAILY, broker=None, checkpoint=None, **env) -> Services:
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    plan = home / "plan.csv"
    if not plan.exists():
        plan.write_text(HEADER + rows)
    settings = load_settings(environ={"DCA_HOME": str(home), **env}, dotenv=None)
    services = build(settings, checkpoint)
    if broker is not None:
        services.broker = broker
        services.engine.broker = broker
    return services


def make_worker(services, traveller, **kw) -> Worker:
    stop = threading.Event()
    kw.setdefault("threaded", False)
    kw.setdefault("tick_seconds", 3600)  # wake-ups come from the schedule; this only bounds a wait
    return Worker(services, TravelClock(traveller, stop), stop, **kw)


def drive(worker: Worker, until: datetime) -> None:
    """The loop of `run_forever` up to `until`: tick, then wait as long as it would."""
    while True:
        worker.tick()
        remaining = (until - worker.clock.now()).total_seconds()
        if remaining <= 0:
            return
        worker.clock.wait(min(worker._sleep_seconds(), remaining))


def runs(services) -> list[datetime]:
    """The moments the recording runs were made as of, in UTC."""
    db = sqlite3.connect(services.ledger.path)
    try:
        return [datetime.fromisoformat(r[0]).astimezone(UTC) for r in db.execute("SELECT as_of FROM runs ORDER BY id")]
    finally:
        db.close()


def executions(services) -> list[tuple[str, str, str, bool]]:
    return sorted((e.symbol, e.scheduled_date.isoformat(), str(e.status), e.late) for e in services.ledger.history())


def orders(services) -> list[str]:
    return sorted(o.order_ref for o in services.broker.orders())


def travel(start: datetime, machine_tz: str | None = None):
    """Travel to `start`; the machine's own timezone becomes `machine_tz` (default New York)."""
    return time_machine.travel(start.astimezone(ZoneInfo(machine_tz)) if machine_tz else start, tick=False)


# -- a day, a holiday, a weekend -------------------------------------------------------------


def test_a_trading_day_runs_on_start_then_at_nine_and_not_again(tmp_path):
    with travel(ny(2027, 5, 3, 8, 0)) as t:
        services = make_services(tmp_path)
        worker = make_worker(services, t)
        worker.start()
        drive(worker, ny(2027, 5, 3, 15, 0))
        assert runs(services) == [ny(2027, 5, 3, 8, 0), ny(2027, 5, 3, 9, 0)]
        assert executions(services) == [("QQQ", "2027-05-03", "filled", False)]
        beat = services.ledger.heartbeat()
        assert beat["last_run"] == "2027-05-03T09:00:00-04:00"
        assert beat["next_run"] == "2027-05-04T09:00:00-04:00"
        assert beat["last_tick"] == "2027-05-03T15:00:00-04:00"
        assert beat["state"] == "idle" and beat["last_error"] is None


def test_a_holiday_has_no_run_and_the_next_trading_day_does(tmp_path):
    # 2026-11-26 is Thanksgiving: the exchange is closed.
    with travel(ny(2026, 11, 25, 10, 0)) as t:
        services = make_services(tmp_path)
        worker = make_worker(services, t)
        worker.start()
        drive(worker, ny(2026, 11, 26, 23, 0))
        assert services.ledger.heartbeat()["next_run"] == "2026-11-27T09:00:00-05:00"
        drive(worker, ny(2026, 11, 27, 12, 0))
        assert runs(services) == [ny(2026, 11, 25, 10, 0), ny(2026, 11, 27, 9, 0)]
        assert executions(services) == [("QQQ", "2026-11-25", "filled", True), ("QQQ", "2026-11-27", "filled", False)]


def test_a_weekend_has_no_run_and_monday_does(tmp_path):
    with travel(ny(2026, 12, 4, 8, 0)) as t:
        services = make_services(tmp_path, DAILY + "Active,VOO,800,Weekly,,v1\n")
        worker = make_worker(services, t)
        worker.start()
        drive(worker, ny(2026, 12, 5, 12, 0))
        assert services.ledger.heartbeat()["next_run"] == "2026-12-07T09:00:00-05:00"
        drive(worker, ny(2026, 12, 7, 12, 0))
        assert runs(services) == [ny(2026, 12, 4, 8, 0), ny(2026, 12, 4, 9, 0), ny(2026, 12, 7, 9, 0)]
        assert executions(services) == [
            ("QQQ", "2026-12-04", "filled", False), ("QQQ", "2026-12-07", "filled", False),
            ("VOO", "2026-12-07", "filled", False)]  # 12-04 is a Friday: VOO was first seen after its week began


# -- daylight saving time, and a machine clock in another timezone ---------------------------


@pytest.mark.parametrize("machine_tz", ["America/New_York", "UTC", "Europe/Berlin", "Asia/Tokyo"])
@pytest.mark.parametrize("friday, monday, before, after", [
    # Clocks go back on Sunday 2026-11-01: 09:00 New York is 13:00 UTC before, 14:00 after.
    ((2026, 10, 30), (2026, 11, 2), "13:00", "14:00"),
    # Clocks go forward on Sunday 2027-03-14: 14:00 UTC before, 13:00 after.
    ((2027, 3, 12), (2027, 3, 15), "14:00", "13:00"),
])
def test_the_run_is_at_nine_new_york_time_on_both_sides_of_a_dst_change(tmp_path, machine_tz, friday, monday,
                                                                         before, after):
    with travel(ny(*friday, 8, 0), machine_tz) as t:
        services = make_services(tmp_path)
        worker = make_worker(services, t)
        worker.start()
        drive(worker, ny(*monday, 12, 0))
    at_nine = [r for r in runs(services) if r.astimezone(ZoneInfo("America/New_York")).hour == 9]
    assert [f"{r:%Y-%m-%d %H:%M:%S}" for r in at_nine] == [
        f"{datetime(*friday):%Y-%m-%d} {before}:00", f"{datetime(*monday):%Y-%m-%d} {after}:00"]
    assert len(runs(services)) == 3  # the start, Friday 09:00, Monday 09:00: nothing in between
    assert [(d, s, late) for _, d, s, late in executions(services)] == [
        (f"{datetime(*friday):%Y-%m-%d}", "filled", False), (f"{datetime(*monday):%Y-%m-%d}", "filled", False)]


# -- sleeping, being down, catching up -------------------------------------------------------


def test_a_machine_that_sleeps_across_nine_runs_when_it_wakes(tmp_path):
    with travel(ny(2027, 5, 4, 8, 45)) as t:
        services = make_services(tmp_path)
        worker = make_worker(services, t)
        worker.start()
        worker.tick()
        t.shift(timedelta(hours=2, minutes=45))  # the lid closed at 08:45 and opened at 11:30: no tick between
        worker.tick()
        assert runs(services) == [ny(2027, 5, 4, 8, 45), ny(2027, 5, 4, 11, 30)]
        assert executions(services) == [("QQQ", "2027-05-04", "filled", True)]  # late, but bought, once
        drive(worker, ny(2027, 5, 4, 15, 0))
        assert len(runs(services)) == 2


def test_a_start_after_three_days_down_buys_once_per_row_and_records_the_missed(tmp_path):
    rows = DAILY + "Active,VOO,800,Weekly,,v1\nActive,IWM,900,Monthly,,i1\n"
    with travel(ny(2027, 5, 3, 8, 55)) as t:  # Monday: every row is due at 09:00
        services = make_services(tmp_path, rows)
        worker = make_worker(services, t)
        worker.start()
        drive(worker, ny(2027, 5, 3, 9, 30))
        worker.shutdown()
        assert len(orders(services)) == 3
        t.move_to(ny(2027, 5, 7, 10, 0))  # down Tuesday, Wednesday, Thursday; started Friday at 10:00
        again = make_worker(services, t)
        again.start()
        drive(again, ny(2027, 5, 7, 15, 0))
    assert executions(services) == [
        ("IWM", "2027-05-03", "filled", False),
        ("QQQ", "2027-05-03", "filled", False), ("QQQ", "2027-05-04", "missed", False),
        ("QQQ", "2027-05-05", "missed", False), ("QQQ", "2027-05-06", "missed", False),
        ("QQQ", "2027-05-07", "filled", True),
        ("VOO", "2027-05-03", "filled", False)]
    assert orders(services) == ["dca-i1-20270503", "dca-q1-20270503", "dca-q1-20270507", "dca-v1-20270503"]
    notes = services.notifier.path.read_text()
    assert notes.count("missed") >= 3 and "SIMULATED" in notes


# -- retries of what was deferred, and the preflight -----------------------------------------


def test_a_run_the_broker_blocked_is_retried_every_15_minutes_until_it_goes_through(tmp_path):
    broker = FakeBroker(ready=False)
    with travel(ny(2027, 5, 4, 8, 50)) as t:
        services = make_services(tmp_path, broker=broker)
        worker = make_worker(services, t)
        worker.start()
        drive(worker, ny(2027, 5, 4, 9, 50))
        assert not broker.submits
        tries = [r for r in runs(services) if r >= ny(2027, 5, 4, 9, 0)]
        assert len(tries) == 4 and all(timedelta(minutes=14) <= b - a <= timedelta(minutes=15)
                                       for a, b in zip(tries, tries[1:]))
        assert worker.needs_retry
        assert services.ledger.heartbeat()["next_run"] <= "2027-05-04T10:05:00-04:00"
        notes = services.notifier.path.read_text()
        assert notes.count("Not attempted: row 2 QQQ") == 1  # said once, not at every retry
        broker.ready = True  # the person logged in
        drive(worker, ny(2027, 5, 4, 11, 0))
        assert [o.order_ref for o in broker.submits] == ["dca-q1-20270504"]
        assert not worker.needs_retry
        assert "Resolved: Not attempted" in services.notifier.path.read_text()


def test_retries_stop_at_the_close(tmp_path):
    broker = FakeBroker(ready=False)
    with travel(ny(2027, 5, 4, 15, 20)) as t:
        services = make_services(tmp_path, broker=broker)
        worker = make_worker(services, t)
        worker.start()
        drive(worker, ny(2027, 5, 4, 20, 0))
        assert [f"{r.astimezone(ZoneInfo('America/New_York')):%H:%M}" for r in runs(services)] == [
            "15:20", "15:35", "15:50"]
        assert services.ledger.heartbeat()["next_run"] == "2027-05-05T09:00:00-04:00"


def test_retries_stop_at_an_early_close(tmp_path):
    broker = FakeBroker(ready=False)
    with travel(ny(2026, 11, 27, 12, 20)) as t:  # the day after Thanksgiving: XNYS closes at 13:00
        services = make_services(tmp_path, broker=broker)
        worker = make_worker(services, t)
        worker.start()
        drive(worker, ny(2026, 11, 27, 17, 0))
        assert [f"{r.astimezone(ZoneInfo('America/New_York')):%H:%M}" for r in runs(services)] == [
            "12:20", "12:35", "12:50"]


def test_the_preflight_warns_before_the_run_with_what_to_do(tmp_path):
    class GatewayBroker(FakeBroker):
        login_url = "https://localhost:5000"

        def available_cash(self, at):
            from decimal import Decimal
            return Decimal("120.00")

    broker = GatewayBroker(ready=False)
    with travel(ny(2027, 5, 4, 8, 0)) as t:
        services = make_services(tmp_path, broker=broker)
        worker = make_worker(services, t)
        worker.start()
        drive(worker, ny(2027, 5, 4, 8, 31))
        notes = services.notifier.path.read_text()
        assert "Preflight for today's 09:00 run: the broker is not ready: log in to the fake gateway" in notes
        assert "open https://localhost:5000 and log in before 09:00" in notes
        broker.ready = True
        assert worker.preflight() == ["the account has $120.00 available, less than today's $500.00 due"]
        assert "Update: Preflight for today's 09:00 run: the account has $120.00 available" in \
            services.notifier.path.read_text()


# -- faults ----------------------------------------------------------------------------------


def test_a_run_that_raises_is_logged_notified_and_the_worker_goes_on(tmp_path, caplog):
    services = make_services(tmp_path)
    real_load = services.plan_source.load
    calls = []

    class Exploding:
        description = services.plan_source.description

        def load(self):
            calls.append(1)
            if len(calls) == 1:
                raise RuntimeError("disk on fire")
            return real_load()

        def __getattr__(self, name):
            return getattr(services.plan_source, name)

    services.engine.plan_source = Exploding()
    with travel(ny(2027, 5, 4, 9, 0)) as t:
        worker = make_worker(services, t)
        with caplog.at_level(logging.ERROR, logger="dca.worker"):
            worker.start()
        assert "RuntimeError: disk on fire" in caplog.text and "Traceback" in caplog.text
        for _ in range(5):
            worker.tick()  # the failed run is not re-run on every tick...
        assert len(calls) == 1
        beat = services.ledger.heartbeat()
        assert "RuntimeError: disk on fire" in beat["last_error"] and beat["last_run_result"].startswith("error")
        notes = services.notifier.path.read_text()
        assert "System error in the worker, in the start run: RuntimeError: disk on fire" in notes
        drive(worker, ny(2027, 5, 4, 9, 20))  # ...but tried again 15 minutes later
        assert len(calls) == 2
        assert executions(services) == [("QQQ", "2027-05-04", "filled", True)]
        assert "Resolved: System error in the worker" in services.notifier.path.read_text()


def test_a_job_that_raises_does_not_stop_the_loop_nor_rerun_on_every_tick(tmp_path, monkeypatch):
    with travel(ny(2027, 5, 4, 8, 0)) as t:
        services = make_services(tmp_path)
        worker = make_worker(services, t)
        worker.start()
        calls = []

        def broken_readiness(at):
            calls.append(at)
            raise ZeroDivisionError("bug")

        monkeypatch.setattr(services.plan_source, "load", lambda: 1 / 0)  # preflight's plan read raises
        drive(worker, ny(2027, 5, 4, 8, 45))
        assert "System error in the worker, in its preflight job: ZeroDivisionError" in \
            services.notifier.path.read_text()
        assert worker.scheduler.get_jobs()[1].next_run > datetime.now()  # rescheduled, not overdue


# -- one worker, the run lock, shutdown ------------------------------------------------------


def test_a_second_worker_on_the_same_data_refuses_with_a_clear_message(tmp_path, capsys, monkeypatch):
    def second_loop(self):
        raise AssertionError("a second worker started its loop")

    monkeypatch.setattr(Worker, "run_forever", second_loop)
    services = make_services(tmp_path)
    services.ledger.beat(pid=4242, host="box", started_at="2027-05-04T08:00:00-04:00")
    held = lifetime_lock(services.ledger)
    try:
        code = main(["worker"])
    finally:
        held.release()
    err = capsys.readouterr().err
    assert code == 2
    assert "another worker is already running on ledger" in err and "pid 4242 on box" in err
    assert "kill 4242" in err


def test_waiting_for_the_run_lock_keeps_the_heartbeat_and_shutdown_going(tmp_path):
    with travel(ny(2027, 5, 4, 9, 0)) as t:
        services = make_services(tmp_path)
        worker = make_worker(services, t, threaded=True, lock_poll_seconds=0.01)
        with services.ledger.run_lock():  # another face's run is in progress
            worker.start()
            assert worker.waiting_for_lock.wait(10)
            for _ in range(3):
                t.shift(60)
                worker.tick()  # returns at once while the run waits
            beat = services.ledger.heartbeat()
            assert beat["state"] == "waiting for the run lock"
            assert beat["last_tick"] == "2027-05-04T09:03:00-04:00"
            worker.stop.set()  # SIGTERM: the waiting run gives up at once (no run was in flight)...
            worker._thread.join(timeout=10)
            assert not worker.busy
            worker.shutdown()
        assert runs(services) == [] and services.ledger.heartbeat()["state"] == "stopped"


def test_a_run_waits_for_another_faces_run_then_goes_ahead(tmp_path):
    with travel(ny(2027, 5, 4, 9, 0)) as t:
        services = make_services(tmp_path)
        worker = make_worker(services, t, threaded=True, lock_poll_seconds=0.01)
        with services.ledger.run_lock():
            worker.start()
            assert worker.waiting_for_lock.wait(10)
            worker.tick()
            assert executions(services) == []
        worker.join()
        assert executions(services) == [("QQQ", "2027-05-04", "filled", False)]


def test_a_nine_oclock_job_that_finds_a_run_in_flight_is_caught_up_when_it_ends(tmp_path):
    entered, gate = threading.Event(), threading.Event()
    with travel(ny(2027, 5, 4, 8, 59, 59)) as t:
        services = make_services(tmp_path)
        plan = services.plan_source

        class SlowPlan:
            description = plan.description

            def load(self):
                if not entered.is_set():
                    entered.set()
                    assert gate.wait(10)
                return plan.load()

            def __getattr__(self, name):
                return getattr(plan, name)

        services.engine.plan_source = SlowPlan()
        worker = make_worker(services, t, threaded=True)
        worker.start()  # as of 08:59:59, still reading the plan at 09:00
        assert entered.wait(10)
        t.shift(2)
        worker.tick()  # schedule's 09:00 job fires while that run is in flight: no second run
        gate.set()
        worker.join()
        assert executions(services) == []
        worker.tick()  # the ledger's latest run is before 09:00: run now
        worker.join()
        assert executions(services) == [("QQQ", "2027-05-04", "filled", False)]
        assert worker.runs_started == 2


def test_status_shows_the_heartbeat(tmp_path, capsys):
    with travel(ny(2027, 5, 4, 8, 0)) as t:
        services = make_services(tmp_path)
        worker = make_worker(services, t)
        worker.start()
        drive(worker, ny(2027, 5, 4, 9, 1))
        assert main(["status"]) == 0
        out = capsys.readouterr().out
        assert "Worker:    running (pid" in out and "last tick 2027-05-04T09:01:00-04:00" in out
        assert "last run 2027-05-04T09:00:00-04:00 (1 filled)" in out
        assert "next run 2027-05-05T09:00:00-04:00" in out
        t.shift(timedelta(hours=1))  # no tick for an hour: the worker is gone
        main(["status"])
        assert "NOT RUNNING? no heartbeat since 2027-05-04T09:01:00-04:00" in capsys.readouterr().out
        worker.shutdown()
        main(["status", "--json"])
        assert '"state": "stopped"' in capsys.readouterr().out


def test_status_says_when_no_worker_ever_ran(tmp_path, capsys):
    make_services(tmp_path)
    main(["status"])
    assert "Worker:    never run on this ledger" in capsys.readouterr().out


def test_the_keep_alive_hook_is_called_while_idle(tmp_path):
    class KeptAlive(FakeBroker):
        kept: int = 0

        def keep_alive(self):
            self.kept += 1

    broker = KeptAlive()
    with travel(ny(2027, 5, 4, 10, 0)) as t:
        services = make_services(tmp_path, broker=broker)
        worker = make_worker(services, t, tick_seconds=60)
        worker.start()
        drive(worker, ny(2027, 5, 4, 10, 10))
    assert broker.kept == 1  # at most once a minute (of monotonic time, which did not pass): not per tick


def test_sigterm_in_the_middle_of_a_run_finishes_it_starts_no_other_and_exits_cleanly(tmp_path):
    stop = threading.Event()
    seen = []

    def checkpoint(step, execution):
        seen.append((step, execution.symbol))
        if step == "intent_recorded" and len(seen) == 1:
            os.kill(os.getpid(), signal.SIGTERM)  # as `systemctl stop` or `docker stop` would
            assert stop.wait(10), "the SIGTERM handler did not set the stop event"

    before = signal.getsignal(signal.SIGTERM)
    with time_machine.travel(ny(2027, 5, 4, 9, 0), tick=True):
        services = make_services(tmp_path, DAILY + "Active,VOO,800,Daily,,v1\n", checkpoint=checkpoint)
        assert serve(services, stop=stop) == 0
    assert [x[2] for x in executions(services)] == ["filled"] * 2
    assert orders(services) == ["dca-q1-20270504", "dca-v1-20270504"]  # the run in flight went to its end
    assert len(runs(services)) == 1  # and no other started
    assert services.ledger.heartbeat()["state"] == "stopped"
    assert signal.getsignal(signal.SIGTERM) is before  # the handlers are put back


@pytest.mark.slow
def test_the_worker_process_refuses_a_second_one_and_stops_on_sigterm(tmp_path):
    import subprocess
    import sys
    import time

    home = tmp_path / "home"
    env = {**os.environ, "DCA_HOME": str(home)}
    first = subprocess.Popen([sys.executable, "-m", "dca.worker"], env=env, cwd=tmp_path,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        db = home / "ledger.sqlite3"
        deadline = time.monotonic() + 60  # waiting for a real process to come up, not for a schedule
        state = None
        while time.monotonic() < deadline and state != "idle":
            if first.poll() is not None:
                pytest.fail(f"the worker exited early: {first.communicate()}")
            if db.exists():
                try:
                    row = sqlite3.connect(db).execute("SELECT state, last_run FROM worker_heartbeat").fetchone()
                    state = row[0] if row and row[1] else None
                except sqlite3.OperationalError:
                    pass
            time.sleep(0.1)
        assert state == "idle", "the worker did not finish its start run"
        second = subprocess.run([sys.executable, "-m", "dca.worker"], env=env, cwd=tmp_path,
                                capture_output=True, text=True, timeout=60)
        assert second.returncode == 2
        assert "another worker is already running on ledger" in second.stderr
        assert f"pid {first.pid}" in second.stderr
        first.send_signal(signal.SIGTERM)
        _, err = first.communicate(timeout=30)
        assert first.returncode == 0, err
        assert "received SIGTERM" in err and "worker stopped" in err
        assert "SIMULATED" in err
    finally:
        if first.poll() is None:
            first.kill()


def test_the_preflight_time_and_the_retry_interval_are_settings(tmp_path):
    broker = FakeBroker(ready=False)
    with travel(ny(2027, 5, 4, 7, 0)) as t:
        services = make_services(tmp_path, broker=broker, DCA_PREFLIGHT_TIME="07:45", DCA_RETRY_MINUTES="5",
                                 DCA_RUN_TIME="10:00")
        worker = make_worker(services, t)
        worker.start()
        drive(worker, ny(2027, 5, 4, 7, 44))
        said = services.notifier.path.read_text() if services.notifier.path.exists() else ""
        assert "Preflight" not in said  # nothing to say about it yet
        drive(worker, ny(2027, 5, 4, 7, 45))
        assert "Preflight for today's 10:00 run: the broker is not ready" in services.notifier.path.read_text()
        drive(worker, ny(2027, 5, 4, 10, 11))
    assert [f"{r.astimezone(ZoneInfo('America/New_York')):%H:%M}" for r in runs(services)] == [
        "07:00", "10:00", "10:05", "10:10"]


@pytest.mark.parametrize("variable, value, message", [
    ("DCA_PREFLIGHT_TIME", "8.30", "$DCA_PREFLIGHT_TIME: '8.30' is not a time of day like 09:00"),
    ("DCA_RETRY_MINUTES", "0", "$DCA_RETRY_MINUTES: 0 must be at least 1 minute"),
])
def test_a_bad_worker_setting_stops_it_at_start_naming_the_key(capsys, variable, value, message, monkeypatch):
    monkeypatch.setenv(variable, value)
    assert main(["worker"]) == 2
    assert message in capsys.readouterr().err


def test_a_run_lock_held_too_long_is_given_up_and_retried_later(tmp_path):
    with travel(ny(2027, 5, 4, 9, 0)) as t:
        services = make_services(tmp_path, DCA_LOCK_TIMEOUT="0")
        worker = make_worker(services, t, lock_poll_seconds=0.01)
        with services.ledger.run_lock():
            worker.start()
        assert runs(services) == [] and worker.needs_retry
        assert services.ledger.heartbeat()["last_run_result"].startswith("not run: another run held the lock")
        drive(worker, ny(2027, 5, 4, 9, 16))
        assert executions(services) == [("QQQ", "2027-05-04", "filled", True)]


def test_the_heartbeat_takes_only_its_own_fields(tmp_path):
    services = make_services(tmp_path)
    assert services.ledger.heartbeat() is None
    services.ledger.beat(state="idle")
    services.ledger.beat(last_error="x")
    assert services.ledger.heartbeat()["state"] == "idle" and services.ledger.heartbeat()["last_error"] == "x"
    with pytest.raises(ValueError, match="unknown heartbeat field"):
        services.ledger.beat(colour="red")


def test_an_order_left_in_doubt_is_settled_by_a_retry_without_a_second_order(tmp_path):
    from tests.fakes import FakeClock

    broker = FakeBroker(submit_faults=["timeout_after_accept"], lag_lookups=5)
    with travel(ny(2027, 5, 4, 9, 0)) as t:
        services = make_services(tmp_path, broker=broker)
        services.engine.clock = FakeClock()  # the engine's back-off between lookups costs no time
        worker = make_worker(services, t)
        worker.start()
        assert executions(services) == [("QQQ", "2027-05-04", "pending", False)] and worker.needs_retry
        drive(worker, ny(2027, 5, 4, 9, 31))
        assert executions(services) == [("QQQ", "2027-05-04", "filled", False)]
        assert len(broker.submits) == 1 and not worker.needs_retry
        # 09:00: 4 lookups after the submit, all lagging; 09:15: the run's lookup, and the one it
    # asks again after a pause, finds it (the list lags 5 lookups).
    assert [f"{r.astimezone(ZoneInfo('America/New_York')):%H:%M}" for r in runs(services)] == [
            "09:00", "09:15"]


def test_the_worker_says_when_it_starts_stops_and_restarts_after_a_crash(tmp_path):
    with travel(ny(2027, 5, 4, 7, 0)) as t:
        services = make_services(tmp_path)
        worker = make_worker(services, t)
        worker.start()
        worker.shutdown()
        notes = services.notifier.path.read_text()
        assert "Worker started at 2027-05-04 07:00 ET" in notes and "Worker stopped at 2027-05-04 07:00 ET" in notes
        crashed = make_worker(services, t)
        crashed.start()  # ... and the process is killed: no shutdown, the heartbeat stays "idle"
        again = make_worker(services, t)
        again.start()
        again.shutdown()
    notes = services.notifier.path.read_text()
    assert notes.count("Worker restarted at 2027-05-04 07:00 ET after it stopped unexpectedly") == 1
