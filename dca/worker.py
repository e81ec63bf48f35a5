"""The unattended worker: runs the engine on start, every trading morning and on retries.

`python -m dca.worker` (or `dca worker`). It owns a `schedule.Scheduler` with two jobs:
the run at the configured New York time (09:00 by default) and the preflight before it
(08:30); a run that left something undone is tried again 15 minutes after it began, until
the close. The jobs only
*ask* the engine; the ledger decides what is due, so a job that fires twice, late or
after a restart buys nothing twice. `schedule` keeps no state across restarts and never
runs missed jobs, so every tick also compares the latest scheduled moment with the
ledger's latest run: a worker started late, or a laptop waking after 09:00, runs at once.

Time is injected: a `WorkerClock` gives `now()` and `wait(seconds)` on the stop event,
so tests travel in time and drive the loop step by step with `tick()`. A run happens in
its own thread, so waiting for the run lock (another face's run) never freezes the
heartbeat, the broker keep-alive or shutdown. SIGTERM/SIGINT set the stop event: the run
in flight finishes, no new one starts, the worker exits 0. A lifetime lock beside the
ledger keeps a second worker on the same data from starting.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import sys
import threading
import time as _time
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Callable, Protocol

import schedule as schedule_lib
from filelock import FileLock, Timeout

from dca.bootstrap import Services
from dca.delivery import account_label, deliver_outbox
from dca.domain import Frequency, Outcome, format_money
from dca.errors import DcaError, PlanError
from dca.ledger import Ledger, LedgerBusy
from dca.notices import Notices
from dca.queries import next_executions
from dca.schedule_rules import NEW_YORK, scheduled_at

logger = logging.getLogger(__name__)

CLOSE = time(16, 0)  # NYSE's regular close, New York time: retries stop here
EARLY_CLOSE = time(13, 0)  # or here on an early-close day (the day after Thanksgiving, Christmas Eve)
TICK_SECONDS = 60.0  # the longest the loop sleeps: heartbeat and keep-alive cadence
LOCK_POLL_SECONDS = 1.0


class WorkerClock(Protocol):
    def now(self) -> datetime:
        """The current moment, timezone-aware."""
        ...

    def wait(self, seconds: float) -> bool:
        """Wait up to `seconds`, returning early (True) when the worker is asked to stop."""
        ...


class SystemWorkerClock:
    def __init__(self, stop: threading.Event):
        self.stop = stop

    def now(self) -> datetime:
        return datetime.now(NEW_YORK)

    def wait(self, seconds: float) -> bool:
        return self.stop.wait(max(0.0, seconds))


class WorkerAlreadyRunning(DcaError):
    """A second worker on the same ledger; exit 2."""


class Worker:
    def __init__(
        self,
        services: Services,
        clock: WorkerClock | None = None,
        stop: threading.Event | None = None,
        *,
        threaded: bool = True,
        tick_seconds: float = TICK_SECONDS,
        lock_poll_seconds: float = LOCK_POLL_SECONDS,
    ):
        self.s = services
        self.stop = stop or threading.Event()
        self.clock = clock or SystemWorkerClock(self.stop)
        self.threaded = threaded
        self.tick_seconds = tick_seconds
        self.lock_poll_seconds = lock_poll_seconds
        settings = services.settings
        self.run_time: time = services.schedule.run_time
        self.preflight_time: time = settings.preflight_time
        self.retry_every: timedelta = settings.retry_minutes
        self.needs_retry = False  # the last run left something undone (deferred, in doubt, raised)
        self.retry_at: datetime | None = None  # when, then: the last run's start plus retry_every
        self.runs_started = 0
        self._thread: threading.Thread | None = None
        self._state = "idle"
        self._attempted_for: datetime | None = None  # the scheduled moment last asked for
        self._last_keep_alive: float | None = None
        self.waiting_for_lock = threading.Event()  # set while a run waits for another face's
        # Its own Scheduler, not schedule's module-level default one (which any import shares).
        self.scheduler = schedule_lib.Scheduler()
        self.scheduler.every().day.at(f"{self.run_time:%H:%M}", "America/New_York").do(
            self._job, "run", self._scheduled_run)
        self.scheduler.every().day.at(f"{self.preflight_time:%H:%M}", "America/New_York").do(
            self._job, "preflight", self.preflight)

    # -- the loop ---------------------------------------------------------------------------

    def run_forever(self) -> None:
        """Run on start, then follow the schedule until the stop event is set."""
        self.start()
        while not self.stop.is_set():
            self.tick()
            if self.clock.wait(self._sleep_seconds()):
                break
        self.shutdown()

    def start(self) -> None:
        now = self.clock.now()
        self._say_started(self.s.ledger.heartbeat(), now)
        self.s.ledger.beat(pid=os.getpid(), host=socket.gethostname(), state="starting",
                           started_at=_stamp(now), last_tick=_stamp(now))
        logger.info("worker started (pid %d): runs at %s New York time on trading days, preflight at %s; "
                    "broker: %s", os.getpid(), f"{self.run_time:%H:%M}", f"{self.preflight_time:%H:%M}",
                    self.s.broker.name)
        # On start, run at once: what was missed while it was down is caught up (or
        # recorded missed) by the engine's rule, never by replaying schedule's jobs.
        moment = self._latest_moment(now)
        if self.request_run("start"):
            self._attempted_for = moment  # the start run covers it; a failure is the retry's
        self._beat(now)

    def tick(self) -> None:
        """One step: due jobs, the catch-up check, the keep-alive and the heartbeat."""
        if not self.stop.is_set():
            self.scheduler.run_pending()
            self._job("catch-up", self._catch_up)
            self._job("retry", self._retry)
        self._keep_alive()
        self._beat(self.clock.now())

    def shutdown(self) -> None:
        """Let the run in flight finish, start no new one, and say so in the heartbeat."""
        self.stop.set()
        if self._thread is not None and self._thread.is_alive():
            logger.info("stopping: waiting for the run in flight to finish")
            self._state = "stopping"
            self._beat(self.clock.now())
            self._thread.join()
        self._state = "stopped"
        self.s.ledger.beat(state="stopped", last_tick=_stamp(self.clock.now()), next_run=None)
        self.s.ledger.enqueue("notify", f"Worker stopped at {self.clock.now().astimezone(NEW_YORK):%Y-%m-%d %H:%M} "
                              "ET: nothing is bought until it is started again (or a run is started by hand).")
        self._deliver()
        logger.info("worker stopped")

    def _say_started(self, previous: dict | None, now) -> None:
        """A system notice: started, or restarted after stopping without saying so (a
        crash, a power cut, a killed process): the person should know it was down."""
        when = f"{now.astimezone(NEW_YORK):%Y-%m-%d %H:%M} ET"
        if previous is not None and previous.get("state") not in (None, "stopped"):
            text = (f"Worker restarted at {when} after it stopped unexpectedly (its last sign of life: "
                    f"{previous.get('last_tick') or 'unknown'}); what it missed meanwhile is caught up or recorded "
                    "as missed now.")
        else:
            text = f"Worker started at {when}: it runs at {self.run_time:%H:%M} New York time on trading days."
        self.s.ledger.enqueue("notify", text)

    def _sleep_seconds(self) -> float:
        waits = [self.tick_seconds, self.scheduler.idle_seconds]
        if self.needs_retry and self.retry_at is not None:
            waits.append((self.retry_at - self.clock.now()).total_seconds())
        return max(0.5, min(w for w in waits if w is not None))  # never a hot loop, even if a job stayed overdue

    @property
    def busy(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def join(self) -> None:
        """Wait for the run in flight, if any (tests, and shutdown)."""
        if self._thread is not None:
            self._thread.join()

    # -- the jobs (each wrapped: an exception escaping schedule's run_pending would leave
    # the job overdue and re-run it on every tick) ---------------------------------------

    def _job(self, name: str, job: Callable[[], None]) -> None:
        try:
            job()
        except Exception as error:
            logger.exception("the worker's %s job failed", name)
            self._system_error(f"its {name} job", error)

    def _scheduled_run(self) -> None:
        now = self.clock.now()
        if self._trading_day(now.astimezone(NEW_YORK).date()) and self.request_run("scheduled"):
            self._attempted_for = self._latest_moment(now)

    def _catch_up(self) -> None:
        """Has a scheduled moment passed that no run (of any face) has covered? Then run now.
        This is what notices a wake-up after 09:00 and a start after days down."""
        now = self.clock.now()
        moment = self._latest_moment(now)
        if moment is None or self.busy or moment == self._attempted_for:
            return  # once per moment: a run that could not record anything is the retry job's
        last = self.s.ledger.latest_run_at()
        if last is not None and last >= moment:
            return
        if self.request_run("catch-up"):
            self._attempted_for = moment

    def _retry(self) -> None:
        """Every `retry_every` after a run that left something undone, until the close."""
        now = self.clock.now()
        if not self.needs_retry or self.busy or self.retry_at is None or now < self.retry_at:
            return
        ny_now = now.astimezone(NEW_YORK)
        if self._trading_day(ny_now.date()) and ny_now.time() < self._close_on(ny_now.date()):
            self.request_run("retry")

    # -- runs ---------------------------------------------------------------------------------

    def request_run(self, reason: str) -> bool:
        """Start a run unless one is in flight or the worker is stopping."""
        if self.stop.is_set() or self.busy:
            return False
        self.runs_started += 1
        if not self.threaded:
            self._run(reason)
            return True
        self._thread = threading.Thread(target=self._run, args=(reason,), name=f"dca-run-{reason}", daemon=True)
        self._thread.start()
        return True

    def _run(self, reason: str) -> None:
        now = self.clock.now()
        try:
            if not self._wait_for_run_lock():
                return
            now = self.clock.now()
            self._state = f"running ({reason})"
            self._beat(now)
            logger.info("%s run as of %s", reason, now.isoformat(timespec="seconds"))
            report = self.s.engine.run(now)
        except PlanError as error:
            # The engine has recorded and notified it (once); try again later today.
            self._finished(now, f"plan unreadable: {error}", retry=True)
        except LedgerBusy as error:
            self._finished(now, f"not run: {error}", retry=True)
        except Exception as error:
            logger.exception("the %s run failed", reason)
            self._finished(now, f"error: {type(error).__name__}: {error}", retry=True)
            self._system_error(f"the {reason} run", error)
        else:
            counts = report.summary()["counts"]
            result = ", ".join(f"{n} {k}" for k, n in counts.items()) or "nothing due"
            undone = bool(report.deferred) or any(e.status is Outcome.PENDING for e in report.executions) \
                or any(d.get("waiting") for d in report.delivery.values())
            self._finished(now, result, retry=undone)
            self._resolve_system_error()
            logger.info("%s run done: %s%s", reason, result,
                        f"; tried again every {_minutes(self.retry_every)} until the close" if undone else "")
        finally:
            self._state = "idle"
            self._beat(self.clock.now())

    def _wait_for_run_lock(self) -> bool:
        """Wait for another face's run to finish without holding anything, so the stop
        event is seen while waiting. False: asked to stop, so no run is started."""
        waited_since = _time.monotonic()
        try:
            while self.s.ledger.run_lock_busy():
                if not self.waiting_for_lock.is_set():
                    logger.info("another run holds the lock; waiting for it to finish")
                    self._state = "waiting for the run lock"
                    self.waiting_for_lock.set()
                if _time.monotonic() - waited_since > self.s.settings.lock_timeout_seconds:
                    raise LedgerBusy(f"another run held the lock for over {self.s.settings.lock_timeout_seconds:.0f}s")
                if self.stop.wait(self.lock_poll_seconds):
                    return False
            return True
        finally:
            self.waiting_for_lock.clear()

    def _finished(self, now: datetime, result: str, retry: bool) -> None:
        self.needs_retry = retry
        self.retry_at = now + self.retry_every if retry else None
        self.s.ledger.beat(last_run=_stamp(now), last_run_result=result[:500])

    # -- preflight --------------------------------------------------------------------------

    def preflight(self) -> list[str]:
        """Before the run: broker logged in, account reachable, plan readable, cash enough
        for today's due total. Problems are notified (once, until resolved), early enough
        for the person to log in before the run."""
        now = self.clock.now()
        today = now.astimezone(NEW_YORK).date()
        if not self._trading_day(today):
            return []
        problems = []
        broker = self.s.broker
        try:
            readiness = broker.readiness(now)
            if not readiness.ready:
                problems.append(f"the broker is not ready: {readiness.message}")
        except Exception as error:
            problems.append(f"the broker cannot be reached ({type(error).__name__}: {error})")
        login_url = getattr(broker, "login_url", None)
        if problems and login_url:
            problems.append(f"IBKR sessions need a daily login in a browser: open {login_url} and log in "
                            f"before {self.run_time:%H:%M}")
        due_total = None
        try:
            plan = self.s.plan_source.load()
            outlook = next_executions(plan, self.s.schedule, self.s.ledger, now, today, today, self.s.engine.options)
            due_total = sum((Decimal(i.amount_usd) for i in outlook.to_come()), Decimal("0"))
            if plan.errors:
                problems.append(f"{len(plan.errors)} Active row(s) of the plan have errors (see `dca plan`)")
        except PlanError as error:
            problems.append(f"the plan cannot be read: {error}")
        cash_of = getattr(broker, "available_cash", None)
        if due_total and callable(cash_of) and not any(p.startswith("the broker") for p in problems):
            try:
                cash = cash_of(now)
            except Exception as error:
                problems.append(f"the account's cash cannot be read ({type(error).__name__}: {error})")
            else:
                if cash is not None and cash < due_total:
                    problems.append(f"the account has {format_money(cash)} available, less than today's "
                                    f"{format_money(due_total)} due")
        notices = Notices(self.s.ledger, scope=("preflight",))
        if problems:
            notices.open("preflight", f"Preflight for today's {self.run_time:%H:%M} run: " + "; ".join(problems))
            logger.warning("preflight: %s", "; ".join(problems))
        else:
            logger.info("preflight: ready for today's run (%s due)", format_money(due_total or Decimal("0")))
        notices.settle()
        self._deliver()
        return problems

    # -- faults, notices and delivery --------------------------------------------------------

    def _system_error(self, where: str, error: BaseException) -> None:
        text = (f"System error in the worker, in {where}: {type(error).__name__}: {error}. The traceback is in "
                f"the worker's log; it keeps running and tries again in {_minutes(self.retry_every)}.")
        try:
            self.s.ledger.beat(last_error=text[:1000], last_error_at=_stamp(self.clock.now()))
            notices = Notices(self.s.ledger, scope=("worker",))
            notices.open("worker:error", text)
            notices.settle()
            self._deliver()
        except Exception:
            logger.exception("could not record or notify the system error")

    def _resolve_system_error(self) -> None:
        if "worker:error" in self.s.ledger.open_notices():
            Notices(self.s.ledger, scope=("worker",)).settle()  # says "Resolved: ..."
            self._deliver()

    def _deliver(self) -> None:
        """Deliver what the worker queued itself, under the run lock so that a run of
        another face does not deliver the same items at the same time."""
        if self.busy and threading.current_thread() is not self._thread:
            return  # the run in flight delivers at its end
        try:
            with self.s.ledger.run_lock(timeout=0):
                deliver_outbox(self.s.ledger, self.s.plan_source, self.s.notifier, account_label(self.s.broker))
        except LedgerBusy:
            pass  # that run delivers at its end

    def _keep_alive(self) -> None:
        """Keep the broker's session alive (IBKR's needs a call every few minutes); not
        while a run is talking to the broker itself."""
        keep_alive = getattr(self.s.broker, "keep_alive", None)
        if not callable(keep_alive) or self._state.startswith("running"):
            return
        elapsed = _time.monotonic() - self._last_keep_alive if self._last_keep_alive is not None else None
        if elapsed is not None and elapsed < TICK_SECONDS:
            return
        self._last_keep_alive = _time.monotonic()
        try:
            keep_alive()
        except Exception as error:
            logger.warning("broker keep-alive failed: %s", error)

    # -- time ---------------------------------------------------------------------------------

    def _close_on(self, day: date) -> time:
        """The close of a trading day: 13:00 on XNYS's early closes, else 16:00."""
        from dca.trading_calendar import early_closes

        try:
            return EARLY_CLOSE if day in early_closes(day, day) else CLOSE
        except Exception as error:  # the calendar library unusable: the regular close
            logger.warning("could not read early closes (%s); retrying until 16:00", error)
            return CLOSE

    def _trading_day(self, day: date) -> bool:
        return bool(self.s.schedule.between(Frequency.DAILY, day, day))

    def _latest_moment(self, now: datetime) -> datetime | None:
        """The latest trading day's run time at or before now (looking back two weeks)."""
        today = now.astimezone(NEW_YORK).date()
        day = self.s.schedule.latest_at_or_before(Frequency.DAILY, now, today - timedelta(days=14))
        return None if day is None else scheduled_at(day, self.run_time)

    def next_run(self, now: datetime) -> datetime:
        """When the worker runs next: a retry today, else the next trading day's run time."""
        today = now.astimezone(NEW_YORK).date()
        moment = next(scheduled_at(d, self.run_time)
                      for d in self.s.schedule.between(Frequency.DAILY, today, today + timedelta(days=30))
                      if scheduled_at(d, self.run_time) > now)
        if self.needs_retry and self.retry_at is not None:
            retry = max(self.retry_at, now)
            day = retry.astimezone(NEW_YORK).date()
            if self._trading_day(day) and retry.astimezone(NEW_YORK).time() < self._close_on(day):
                return min(moment, retry)
        return moment

    def _beat(self, now: datetime) -> None:
        try:
            self.s.ledger.beat(state=self._state, last_tick=_stamp(now), next_run=_stamp(self.next_run(now)))
        except Exception:
            logger.exception("could not write the heartbeat")


def _stamp(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(NEW_YORK).isoformat(timespec="seconds")


def _minutes(delta: timedelta) -> str:
    return f"{int(delta.total_seconds() // 60)} minutes"


# -- the process ----------------------------------------------------------------------------


def lifetime_lock(ledger: Ledger) -> FileLock:
    """Taken for the worker's whole life; a second worker on the same ledger is refused."""
    path = str(ledger.path) + ".worker.lock"
    lock = FileLock(path, is_singleton=False)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        beat = ledger.heartbeat() or {}
        who = f" (pid {beat['pid']} on {beat['host']}, started {beat['started_at']})" if beat.get("pid") else ""
        raise WorkerAlreadyRunning(
            f"another worker is already running on ledger {ledger.path}{who}; only one may run on the same "
            f"data. Stop it first (`systemctl --user stop dca-worker`, or `kill {beat.get('pid') or '<pid>'}`), "
            f"or give this one another DCA_HOME. Lock file: {path}") from None
    return lock


def serve(services: Services, install_signals: bool = True, stop: threading.Event | None = None) -> int:
    """The worker process: lifetime lock, signal handlers, the loop. Returns the exit code."""
    lock = lifetime_lock(services.ledger)
    stop = stop or threading.Event()
    previous = {}
    try:
        if install_signals and threading.current_thread() is threading.main_thread():
            def ask_to_stop(signum, frame):
                logger.info("received %s: finishing the run in flight, then stopping", signal.Signals(signum).name)
                stop.set()

            for signum in (signal.SIGTERM, signal.SIGINT):
                previous[signum] = signal.signal(signum, ask_to_stop)
        if services.broker.simulated:
            logger.info("the worker runs with the SIMULATED broker: no real orders are placed")
        Worker(services, SystemWorkerClock(stop), stop).run_forever()
        return 0
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        lock.release()


if __name__ == "__main__":
    from dca.cli import main

    sys.exit(main(["worker", *sys.argv[1:]]))
