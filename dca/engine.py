"""One run of the engine: due -> guard -> intent -> submit -> reconcile -> outcome.

Exactly once rests on three things: the ledger's unique (row ID, scheduled date) key; the
intent committed *before* the broker is called; and, after any doubt, asking the broker
for the client order id before ever submitting again. A resend happens only when the
broker says the order is *provably absent*, never when it cannot tell, and only after the
row and the guards are checked again. The engine does no I/O of its own: plan source,
broker, ledger, notifier and clock are passed in, and so is the time.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Callable, Mapping

from dca.clock import SystemClock
from dca import logs
from dca.delivery import account_label, deliver_outbox
from dca.domain import (
    CENT,
    Outcome,
    ParsedPlan,
    PlanRow,
    RowIssue,
    RowStatus,
    client_order_id,
    format_money,
    format_quantity,
    new_row_id,
    size_order,
)
from dca.errors import BrokerUnavailable, DuplicateOrderRef, OrderRejected, PlanError
from dca.execution import ZERO, Execution, reserved, today_in_new_york
from dca.ledger import Ledger
from dca.notices import Notices
from dca.ports import (
    Broker,
    BrokerOrder,
    Clock,
    Found,
    LookupQuery,
    Notifier,
    OrderLookup,
    OrderRequest,
    OrderState,
    PlanSource,
    Quote,
)
from dca import clock_guard
from dca.reporting import log_line
from dca.schedule_rules import NEW_YORK, RowHistory, Schedule, scheduled_at

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunOptions:
    grace: timedelta = timedelta(minutes=5)
    max_lateness: timedelta | None = None  # None: a candidate is bought however late
    # Both maximums allow exactly the maximum; a cent over is refused.
    max_order_usd: Decimal = Decimal("5000")
    max_daily_usd: Decimal = Decimal("10000")
    # Room for the price to move between the quote and the fill (at 09:00 the quote is
    # the previous close): a whole-share order counts as its estimate plus this share.
    price_margin: Decimal = Decimal("0.05")
    max_submit_attempts: int = 3
    # Waits (beyond the broker's own settle time) before each lookup after a doubtful
    # submit; when every one comes back unknown the order stays in doubt for the next run.
    doubt_backoff: tuple[float, ...] = (0.0, 1.0, 2.0, 4.0)


@dataclass
class RunReport:
    as_of: datetime
    broker: str
    simulated: bool
    dry_run: bool
    executions: list[Execution] = field(default_factory=list)
    errors: list[RowIssue] = field(default_factory=list)
    warnings: list[RowIssue] = field(default_factory=list)
    deferred: list[dict] = field(default_factory=list)  # due, but not attempted: retried later
    delivery: dict = field(default_factory=dict)
    replayed: bool = False  # a one-off buy asked again: its recorded execution, nothing sent

    @property
    def ok(self) -> bool:
        bad = {Outcome.FAILED, Outcome.ERROR, Outcome.PENDING}
        return not self.errors and not self.deferred and not any(e.status in bad for e in self.executions)

    def summary(self) -> dict:
        counts: dict[str, int] = {}
        for e in self.executions:
            counts[str(e.status)] = counts.get(str(e.status), 0) + 1
        if self.deferred:
            counts["deferred"] = len(self.deferred)
        spent_statuses = {Outcome.FILLED, Outcome.SUBMITTED, Outcome.PLANNED}
        total = sum((e.cost or ZERO for e in self.executions if e.status in spent_statuses), ZERO)
        return {"counts": counts, "total_spent": str(total.quantize(CENT)), "plan_errors": len(self.errors)}

    def as_dict(self) -> dict:
        return {
            "as_of": self.as_of.isoformat(),
            "broker": self.broker,
            "simulated": self.simulated,
            "dry_run": self.dry_run,
            "executions": [e.as_dict() for e in self.executions],
            "errors": [i.as_dict() for i in self.errors],
            "warnings": [i.as_dict() for i in self.warnings],
            "deferred": self.deferred,
            "summary": self.summary(),
            "delivery": self.delivery,
        }


Checkpoint = Callable[[str, Execution], None]

# The frequency of a one-off buy (a manual order, a TradingView alert). It has no plan row:
# its execution is its own row, so a pending one is settled without looking for one.
ONE_OFF = "Once"


class Engine:
    def __init__(
        self,
        plan_source: PlanSource,
        broker: Broker,
        ledger: Ledger,
        notifier: Notifier,
        schedule: Schedule,
        options: RunOptions = RunOptions(),
        checkpoint: Checkpoint | None = None,
        clock: Clock | None = None,
    ):
        self.plan_source = plan_source
        self.broker = broker
        self.ledger = ledger
        self.notifier = notifier
        self.schedule = schedule
        self.options = options
        self.clock = clock or SystemClock()
        # Called at each step of an execution; the crash tests kill the process there.
        self._checkpoint = checkpoint or (lambda step, execution: None)

    # -- the run --------------------------------------------------------------------------

    def run(self, now: datetime, dry_run: bool = False, lock_timeout: float | None = None) -> RunReport:
        """One run as of `now`. `lock_timeout`: how long to wait for another run to end
        (default: the ledger's); a face a person is looking at waits less."""
        if now.tzinfo is None:
            raise ValueError("now must be timezone-aware")
        clock_guard.check_range(now)  # a time out of range poisons first-seen dates
        if dry_run:
            return _DryRun(self, now).execute()
        with self.ledger.run_lock(lock_timeout):
            clock_guard.check_not_earlier(now, self.ledger)  # under the lock: no run slips past
            return _Run(self, now).execute()

    def place_one_off(self, row_id: str, symbol: str, amount: Decimal, now: datetime,
                      dry_run: bool = False) -> RunReport:
        """Buy `amount` of `symbol` once, today, as the execution (`row_id`, today in New
        York) through the same guards, intent and reconciliation as a run, under the same
        lock. A second call with the same `row_id` on the same day returns the recorded
        execution and sends nothing."""
        if now.tzinfo is None:
            raise ValueError("now must be timezone-aware")
        clock_guard.check_range(now)
        if dry_run:
            return _OneOffDryRun(self, now).place(row_id, symbol, amount)
        with self.ledger.run_lock():
            clock_guard.check_not_earlier(now, self.ledger)
            return _OneOff(self, now).place(row_id, symbol, amount)


@dataclass(frozen=True)
class _Due:
    row: PlanRow
    day: date


class _Run:
    """The state of one real run; lives only while the run lock is held."""

    def __init__(self, engine: Engine, now: datetime):
        self.e = engine
        self.now = now
        self.today = today_in_new_york(now)
        self.report = RunReport(now, engine.broker.name, engine.broker.simulated, dry_run=False)
        self.broker_down: str | None = None  # why the broker cannot be used in this run
        self.spent_today = ZERO
        self.plan: ParsedPlan | None = None
        self.cash_left: Decimal | None = None  # for the funding check, when the broker tells
        self.cash_short = False
        self._started = engine.clock.monotonic()

    def at(self) -> datetime:
        """The run's moment plus the time that has passed since it began: what the broker
        is told, so its lag and settle times are measured on one clock."""
        return self.now + timedelta(seconds=self.e.clock.monotonic() - self._started)

    def execute(self) -> RunReport:
        try:
            plan = self._plan_with_ids()
        except PlanError as error:
            self._without_plan(error)
            raise
        self.plan = plan
        run_id = self.e.ledger.start_run(self.now)
        with logs.context(run=run_id):
            logger.info("run %s as of %s with the %s", run_id, self.now.isoformat(), self.e.broker.name)
            self.spent_today = self.e.ledger.committed_on(self.today, self.e.options.price_margin)
            self._check_broker()
            self._reconcile({r.row_id: r for r in plan.rows})
            self._watch_for_copies(plan)
            histories = self.e.ledger.row_histories(plan.rows, self.today, observe=True)
            due = self._decide(plan.active_rows, histories)
            self._buy_all(due)
            self._fill_in_commissions()
            self._report_problems(plan)
            self._queue_summary()
            self.report.delivery = deliver_outbox(self.e.ledger, self.e.plan_source, self.e.notifier,
                                                  account_label(self.e.broker), self.e.clock)
            self.e.ledger.finish_run(run_id, self.report.summary())
            logger.info("run %s done: %s", run_id, self.report.summary())
        return self.report

    def _queue_summary(self) -> None:
        """One summary per run that recorded anything: counts, total, missed, late, next run."""
        executions = self.report.executions
        if not executions:
            return
        summary = self.report.summary()
        successes = [e for e in executions if e.status in (Outcome.FILLED, Outcome.SUBMITTED)]
        missed = sum(e.status is Outcome.MISSED for e in executions)
        late = sum(bool(e.late) for e in executions)
        sessions = self.e.schedule.calendar.sessions(self.today, self.today + timedelta(days=14))
        upcoming = [scheduled_at(d, self.e.schedule.run_time) for d in sessions]
        next_run = next((t for t in upcoming if t > self.now), None)
        data = {**summary, "as_of": self.now.astimezone(NEW_YORK).isoformat(), "missed": missed, "late": late,
                "next_run": None if next_run is None else f"{next_run:%Y-%m-%d %H:%M} ET",
                "deferred": len(self.report.deferred), "successes": [e.id for e in successes],
                "success_lines": [_bought(e) for e in successes], "simulated": self.e.broker.simulated}
        counts = ", ".join(f"{v} {k}" for k, v in summary["counts"].items())
        text = (f"Run summary {self.now.astimezone(NEW_YORK):%Y-%m-%d %H:%M} ET: {counts}; total "
                f"${summary['total_spent']}; {missed} missed, {late} late; next run {data['next_run'] or 'unknown'}")
        self.e.ledger.enqueue_notification("summary", text, data)

    def _guarded(self, row: PlanRow, day: date | None, step: Callable[[], None]) -> None:
        try:
            step()
        except Exception as error:
            # One row's surprise must not stop the others. Whatever this row had
            # recorded stays in the ledger (a pending intent is reconciled next run).
            logger.exception("row %s (%s) failed unexpectedly", row.row_number, row.symbol)
            self._defer(row, day, f"unexpected error ({type(error).__name__}: {error}); an order "
                        "already sent for it is reconciled with the broker at the next run")

    # -- plan and IDs ---------------------------------------------------------------------

    def _plan_with_ids(self) -> ParsedPlan:
        plan = self.e.plan_source.load()
        if plan.unidentified:
            new_ids = {n: new_row_id() for n in plan.unidentified}
            try:
                # Stored, then confirmed by reading the plan again: only that plan is used.
                plan = self.e.plan_source.assign_ids(new_ids, plan.version)
            except PlanError as error:
                # Without a stored ID the next run would mint another one and buy again.
                logger.warning("could not store new row IDs: %s", error)
                blocked = set(plan.unidentified)
                for row in [r for r in plan.rows if r.row_number in blocked]:
                    plan.rows.remove(row)
                    plan.issues.append(
                        RowIssue(
                            row.row_number,
                            f"Row {row.row_number}: could not store a new ID in the plan ({error}); "
                            "nothing is bought for this row until it has one",
                            row.active,
                            None,
                            row.symbol,
                        )
                    )
        self.report.errors = plan.errors
        self.report.warnings = plan.warnings
        return plan

    def _without_plan(self, error: PlanError) -> None:
        """The plan cannot be read: still record what the broker says of orders in doubt
        (nothing is submitted without knowing the row is still wanted), and say so."""
        self.spent_today = self.e.ledger.committed_on(self.today, self.e.options.price_margin)
        self._check_broker()
        self._reconcile(None)
        notices = Notices(self.e.ledger, scope=("plan", "doubt"))  # nothing known of the rows
        notices.open("plan", f"The plan could not be read, so nothing new was bought: {error}")
        self._notice_doubts(notices)
        notices.settle()
        deliver_outbox(self.e.ledger, self.e.plan_source, self.e.notifier, account_label(self.e.broker),
                       self.e.clock)

    def _watch_for_copies(self, plan: ParsedPlan) -> None:
        """Prepare the guard against re-identified rows: the IDs the plan holds now."""
        self._in_plan = {r.row_id for r in plan.rows} | {i.row_id for i in plan.issues if i.row_id}
        self._confirmed = self.e.ledger.confirmed_rows()
        self._vanished: dict[date, list[Execution]] = {}
        self._plan = plan

    def _twin(self, row: PlanRow, history: RowHistory, day: date) -> Execution | None:
        """The execution on `day` of a vanished ID that this new-looking row repeats."""
        if history.last_recorded is not None or row.row_id in self._confirmed:
            return None
        if day not in self._vanished:
            self._vanished[day] = [
                e for e in self.e.ledger.executions_on(day)
                if e.row_id not in self._in_plan and e.status in (Outcome.FILLED, Outcome.SUBMITTED, Outcome.PENDING)
            ]
        return next((e for e in self._vanished[day] if e.symbol == row.symbol and e.amount_usd == row.amount
                     and e.frequency == str(row.frequency)), None)

    def _copy_of_vanished(self, row: PlanRow, history: RowHistory, day: date) -> bool:
        """Whether buying `row` on `day` would buy an execution already ordered for an ID
        that has vanished from the plan (a stale copy saved without its IDs, a restored
        version): then it is held, with a row error, until the person restores the old
        ID or confirms the row is new."""
        twin = self._twin(row, history, day)
        if twin is None:
            return False
        issue = RowIssue(
            row.row_number,
            f"Row {row.row_number}: {row.symbol} {format_money(row.amount)} {row.frequency} has a new ID "
            f"{row.row_id}, but its {day} execution was already ordered for ID {twin.row_id}, which is no "
            f"longer in the plan (a stale copy of the plan?). Nothing is bought for it: put {twin.row_id} back "
            f"in its ID cell, or if it really is a new row, run `dca confirm-row {row.row_id}`",
            True, row.row_id, row.symbol, row.log,
        )
        self._plan.issues.append(issue)
        self.report.errors.append(issue)
        return True

    # -- deciding what is due -------------------------------------------------------------

    def _decide(self, rows: list[PlanRow], histories: Mapping[str, RowHistory]) -> list[_Due]:
        due: list[_Due] = []
        for row in rows:
            self._guarded(row, None, lambda row=row: self._decide_row(row, histories[row.row_id], due))
        return due

    def _decide_row(self, row: PlanRow, history: RowHistory, due: list[_Due]) -> None:
        decision = self.e.schedule.decide(row.frequency, self.now, history, self.e.options.max_lateness)
        for day in decision.missed:
            twin = self._twin(row, history, day)
            if twin is not None:  # a held copy's past execution: the old ID bought it
                self._record(row, day, Outcome.SKIPPED, f"already ordered for ID {twin.row_id}, this row's "
                             "earlier ID; nothing bought again")
                continue
            self._record(row, day, Outcome.MISSED, "not run: nothing was running at its scheduled time")
        if decision.candidate is None:
            return
        if self._copy_of_vanished(row, history, decision.candidate):
            return
        if decision.candidate_too_late:
            minutes = int(self.e.options.max_lateness.total_seconds() // 60)
            self._record(row, decision.candidate, Outcome.MISSED,
                         f"too late to buy (more than {minutes} minutes after its time)")
            return
        due.append(_Due(row, decision.candidate))

    def _record(self, row: PlanRow, day: date, status: Outcome, message: str, **fields) -> Execution | None:
        carry = self.e.ledger.carry(row.row_id)
        fields.setdefault("carry_in", carry)
        fields.setdefault("carry_out", carry)
        return self._store(self._new_execution(row, day, status, message, **fields))

    def _store(self, execution: Execution) -> Execution | None:
        line = log_line(execution, self.now)
        stored = self.e.ledger.insert(execution, line)
        if stored is not None:
            logger.info("outcome %s", line,
                        extra={"execution": logs.execution_key(execution.row_id, execution.scheduled_date)})
            self.report.executions.append(stored)
        return stored

    def _new_execution(self, row: PlanRow, day: date, status: Outcome, message: str, **fields) -> Execution:
        return Execution(
            row_id=row.row_id,
            scheduled_date=day,
            scheduled_at=scheduled_at(day, self.e.schedule.run_time),
            symbol=row.symbol,
            frequency=str(row.frequency),
            amount_usd=row.amount,
            status=status,
            row_number=row.row_number,
            late=status is not Outcome.MISSED and self.e.schedule.is_late(day, self.now, self.e.options.grace),
            message=message,
            simulated=self.e.broker.simulated,
            **fields,
        )

    # -- buying ---------------------------------------------------------------------------

    def _check_broker(self) -> None:
        try:
            readiness = self.e.broker.readiness(self.at())
        except Exception as error:
            self.broker_down = f"broker unavailable ({error})"
            return
        self.report.broker = self.e.broker.name  # a real broker may name its account only now
        if not readiness.ready:
            self.broker_down = f"broker not ready: {readiness.message}"

    def _buy_all(self, due: list[_Due]) -> None:
        if not due:
            return
        quotes = self._quotes(due)
        if quotes is not None:
            self.cash_left = self._available_cash()
        for item in due:
            if quotes is None:
                self._defer(item.row, item.day, f"{self.broker_down}; nothing ordered")
                continue
            self._guarded(item.row, item.day, lambda item=item: self._buy(item.row, item.day, quotes[item.row.symbol]))

    def _quotes(self, due: list[_Due]) -> Mapping[str, Quote] | None:
        """Prices for every due symbol in one batch; None (and the reason kept) if the
        broker cannot give them."""
        if self.broker_down is not None:
            return None
        symbols = list(dict.fromkeys(item.row.symbol for item in due))
        try:
            quotes = dict(self.e.broker.quotes(symbols, self.at()))
        except BrokerUnavailable as error:
            self.broker_down = f"broker unavailable ({error})"
            return None
        except Exception as error:
            logger.exception("quotes failed")
            self.broker_down = f"could not get prices ({type(error).__name__}: {error})"
            return None
        for symbol in symbols:
            quotes.setdefault(symbol, Quote(symbol, None, problem="the broker gave no answer for it"))
        return quotes

    def _buy(self, row: PlanRow, day: date, quote: Quote) -> None:
        if quote.price is None and quote.unknown_symbol:
            issue = RowIssue(row.row_number, f"Row {row.row_number}: {quote.problem}; nothing is bought for it "
                             "until the symbol is corrected", True, row.row_id, row.symbol, row.log)
            if self.plan is not None:
                self.plan.issues.append(issue)  # so its Log cell says it and it is notified
            self.report.errors.append(issue)
            return
        if quote.price is None or quote.price <= 0:
            self._defer(row, day, f"no price for {row.symbol} ({quote.problem or 'none given'}); nothing ordered")
            return
        carry_in = self.e.ledger.carry(row.row_id)
        budget = row.amount + carry_in
        price = quote.price
        sizing = size_order(row.amount, carry_in, price, quote.fractional)
        if sizing.quantity <= 0:
            why = (f"{format_money(budget)} does not buy one share at {format_money(price)}" if budget > 0 else
                   f"the overspend carried from earlier buys ({format_money(-carry_in)}) takes this amount")
            self._record(row, day, Outcome.SKIPPED, f"{why}; carried forward", price=price,
                         carry_out=budget, added=row.amount, price_source=str(quote.kind))
            return
        intent = self._new_execution(
            row, day, Outcome.PENDING, "", quantity=sizing.quantity, price=price, cost=sizing.cost,
            cash_order=sizing.cash_amount is not None, carry_in=carry_in, carry_out=budget - sizing.cost,
            added=row.amount, order_ref=client_order_id(row.row_id, day), attempt_day=self.today,
            price_source=str(quote.kind),
        )
        refusal = self._guard(intent, already=self.spent_today)
        if refusal:
            self._record(row, day, Outcome.SKIPPED, refusal, price=price, price_source=str(quote.kind))
            return
        if self.cash_left is not None:
            # The funding check: rows are bought in plan order while the cash lasts; once
            # one does not fit, it and every later row are skipped (and notified).
            if self.cash_short or intent.cost > self.cash_left:
                self.cash_short = True
                self._record(row, day, Outcome.SKIPPED, f"insufficient cash: {format_money(self.cash_left)} "
                             f"available, this needs {format_money(intent.cost)}; nothing was ordered",
                             price=price, price_source=str(quote.kind))
                return
            self.cash_left -= intent.cost
        self._place(intent)

    def _fill_in_commissions(self) -> None:
        """A fill reported at submission often carries no commission yet. A broker that can
        tell later (`commissions(order_refs, at)`, one batch) fills it in for the fills of
        the last 7 days that still lack one; quietly, since the outcome is unchanged."""
        ask = getattr(self.e.broker, "commissions", None)
        if ask is None or self.broker_down is not None:
            return
        since = self.today - timedelta(days=6)
        missing = self.e.ledger.fills_without_commission(since)
        if not missing:
            return
        try:
            known = ask([e.order_ref for e in missing], self.at())
        except Exception as error:  # asked again at the next run
            logger.info("commissions not known yet: %s", error)
            return
        updated = {}
        for e in missing:
            if known.get(e.order_ref) is not None:
                updated[e.id] = self.e.ledger.update(e.evolve(commission=known[e.order_ref]))
        self.report.executions = [updated.get(e.id, e) for e in self.report.executions]

    def _available_cash(self) -> Decimal | None:
        """What the broker says is available for trading, for a broker that can tell
        (`available_cash(at)`); None: no funding check."""
        ask = getattr(self.e.broker, "available_cash", None)
        if ask is None:
            return None
        try:
            return ask(self.at())
        except Exception as error:  # the broker refuses an unfunded order anyway
            logger.warning("could not read the available cash, so no funding check in this run: %s", error)
            return None

    def _guard(self, intent: Execution, already: Decimal) -> str | None:
        """Why the guards refuse this order, or None. `already` is today's total without it."""
        options = self.e.options
        worst = reserved(intent, options.price_margin)
        margin_note = "" if intent.cash_order else (
            f" ({format_money(intent.cost)} plus {(options.price_margin * 100).normalize():f}% for the price moving "
            "before the fill)")
        if worst > options.max_order_usd:
            return (f"{format_money(worst)}{margin_note} is over the maximum per order "
                    f"({format_money(options.max_order_usd)})")
        if already + worst > options.max_daily_usd:
            return (f"{format_money(worst)}{margin_note} would take today's total past the maximum per day "
                    f"({format_money(options.max_daily_usd)}; {format_money(already)} already)")
        return None

    def _place(self, intent: Execution) -> None:
        # The intent counts as the first attempt: once it is on disk the order may reach
        # the broker, so any later look at it must ask the broker first.
        stored = self.e.ledger.insert(intent.evolve(attempts=1, last_attempt_at=self.at()), durable=True)
        if stored is None:
            return  # recorded by someone else meanwhile: theirs is the one
        self._account(None, stored)
        logger.info("intent %s %s %s for %s", stored.order_ref, stored.quantity, stored.symbol, stored.cost,
                    extra={"execution": logs.execution_key(stored.row_id, stored.scheduled_date)})
        self.e._checkpoint("intent_recorded", stored)
        self.report.executions.append(self._submit(stored))

    def _defer(self, row: PlanRow, day: date | None, reason: str) -> None:
        """Due but not attempted, and nothing recorded: the next run decides afresh."""
        self.report.deferred.append({
            "row_id": row.row_id,
            "row": row.row_number,
            "symbol": row.symbol,
            "frequency": str(row.frequency),
            "scheduled_at": None if day is None else scheduled_at(day, self.e.schedule.run_time).isoformat(),
            "message": f"{reason}; tried again at the next run",
        })

    # -- talking to the broker: submit, look up, decide -----------------------------------

    def _submit(self, execution: Execution) -> Execution:
        """Send one attempt of an intent whose attempt is already on disk."""
        try:
            order = self.e.broker.submit(_request(execution), self.at())
        except OrderRejected as error:
            return self._final(execution, Outcome.FAILED, str(error))
        except DuplicateOrderRef as error:
            # The broker HAS an order under this id: never a failure, always a lookup, and
            # from now on no list that misses it is taken as proof that it is absent.
            execution = execution.evolve(broker_status=ACKNOWLEDGED)
            return self._settle_doubt(execution, f"the broker already holds order {execution.order_ref} ({error})")
        except BrokerUnavailable as error:
            # Provably not received: this attempt does not count against the limit.
            self.broker_down = f"broker unavailable ({error})"
            return self._pending(execution.evolve(attempts=execution.attempts - 1),
                                 f"{self.broker_down}; retried at the next run")
        except Exception as error:
            logger.warning("order %s in doubt: %s", execution.order_ref, error)
            return self._settle_doubt(execution, f"{type(error).__name__}: {error}")
        self.e._checkpoint("broker_returned", execution)
        return self._from_broker(execution, order)

    def _settle_doubt(self, execution: Execution, reason: str) -> Execution:
        """After a doubtful submit: wait, look the order up, and resend only if the broker
        says it provably does not have it. If it cannot tell, the order stays in doubt."""
        execution = self._pending(execution, f"in doubt after submitting: {reason}")
        lookup = self._poll(execution, until=(Found.FOUND, Found.ABSENT))
        if lookup.found is Found.FOUND:
            return self._from_broker(execution, lookup.order)
        if lookup.found is Found.ABSENT and not _acknowledged(execution):
            return self._resend(execution)
        if lookup.found is Found.ABSENT:
            lookup = OrderLookup(Found.UNKNOWN, reason="it refused the id as a duplicate, yet does not list it")
        return self._pending(execution, f"in doubt: {reason}; the broker cannot tell yet whether it has the "
                             f"order ({lookup.reason}); checked again at the next run, never resent before")

    def _poll(self, execution: Execution, until: tuple[Found, ...]) -> OrderLookup:
        """Look the order up after each back-off until the answer is one of `until`."""
        lookup = OrderLookup(Found.UNKNOWN, reason="not asked yet")
        for wait in self.e.options.doubt_backoff:
            self.e.clock.sleep(self.e.broker.settle_seconds + wait)
            lookup = self._lookup([execution]).get(execution.order_ref, lookup)
            if lookup.found in until:
                break
        return lookup

    def _lookup(self, executions: list[Execution]) -> Mapping[str, OrderLookup]:
        queries = [LookupQuery(e.order_ref, e.last_attempt_at or e.scheduled_at) for e in executions]
        if not queries:
            return {}
        try:
            return self.e.broker.find_orders(queries, self.at())
        except Exception as error:
            logger.warning("could not look up %d order(s): %s", len(queries), error)
            reason = f"could not ask the broker ({error})"
            return {q.order_ref: OrderLookup(Found.UNKNOWN, reason=reason) for q in queries}

    def _resend(self, execution: Execution) -> Execution:
        if execution.attempt_day != self.today:
            return self._final(execution, Outcome.MISSED, "the broker shows no order or fill for it from "
                               f"{execution.attempt_day}, so nothing was bought; it is not placed on a later day")
        if execution.attempts >= self.e.options.max_submit_attempts:
            # Giving up is final, so it rests on more than one answer: the broker is asked
            # again over the whole back-off, in case its list was only slow to show it.
            lookup = self._poll(execution, until=(Found.FOUND,))
            if lookup.found is Found.FOUND:
                return self._from_broker(execution, lookup.order)
            if lookup.found is Found.UNKNOWN:
                return self._pending(execution, f"in doubt: the broker cannot tell whether it has order "
                                     f"{execution.order_ref} ({lookup.reason}); checked again at the next run")
            return self._final(execution, Outcome.ERROR, "the broker did not take the order after "
                               f"{execution.attempts} attempts ({execution.message})")
        if self.broker_down is not None:
            return self._pending(execution, f"{self.broker_down}; retried at the next run")
        execution = self.e.ledger.update(
            execution.evolve(attempts=execution.attempts + 1, last_attempt_at=self.at()), durable=True)
        self.e._checkpoint("attempt_recorded", execution)
        return self._submit(execution)

    # -- reconciliation at the start of a run ---------------------------------------------

    def _reconcile(self, rows: Mapping[str, PlanRow] | None) -> None:
        """Ask the broker, in one batch, about every order in doubt or still working, and
        settle what it answers. `rows` None: the plan is unknown, so nothing is resent."""
        pending = self.e.ledger.with_status(Outcome.PENDING)
        working = self.e.ledger.with_status(Outcome.SUBMITTED)
        asked = [e for e in pending if e.attempts > 0] + working
        if self.broker_down is not None:
            lookups = {e.order_ref: OrderLookup(Found.UNKNOWN, reason=self.broker_down) for e in asked}
        else:
            lookups = dict(self._lookup(asked))
            unsure = [e for e in asked if lookups.get(e.order_ref, _NO_ANSWER).found is Found.UNKNOWN]
            if unsure:
                # An order list often answers empty on its first call after a while (it
                # warms up): ask once more after a pause before leaving them in doubt.
                self.e.clock.sleep(self.e.broker.settle_seconds + self.e.options.doubt_backoff[-1])
                lookups.update(self._lookup(unsure))
        for execution in pending:
            lookup = lookups.get(execution.order_ref) if execution.attempts > 0 else OrderLookup(Found.ABSENT)
            self.report.executions.append(self._settle_pending(execution, lookup, rows))
        for execution in working:
            lookup = lookups.get(execution.order_ref)
            if lookup is not None and lookup.found is Found.FOUND:
                if not _news(execution, lookup.order):
                    continue  # still working as before: nothing to record or to say
                self.report.executions.append(self._from_broker(execution, lookup.order))
            elif lookup is not None and lookup.found is Found.ABSENT and execution.attempt_day < self.today:
                # Accepted, then gone from a list that covers its day: a DAY order expired.
                self.report.executions.append(self._final(
                    execution, Outcome.FAILED, "the broker no longer lists the order and reports no fill for "
                    "it; a DAY order that did not fill expires at the close"))

    def _settle_pending(self, execution: Execution, lookup: OrderLookup | None,
                        rows: Mapping[str, PlanRow] | None) -> Execution:
        lookup = lookup or OrderLookup(Found.UNKNOWN, reason="the broker gave no answer for it")
        if lookup.found is Found.FOUND:
            return self._from_broker(execution, lookup.order)
        if lookup.found is Found.ABSENT and _acknowledged(execution) and execution.attempt_day == self.today:
            # (On a later day "absent" means no live order and no fill: nothing was bought.)
            lookup = OrderLookup(Found.UNKNOWN, reason="it refused the id as a duplicate, yet does not list it")
        if lookup.found is Found.UNKNOWN:
            return self._pending(execution, f"in doubt: the broker cannot tell whether it has order "
                                 f"{execution.order_ref} ({lookup.reason}); checked again at the next run")
        # Provably not at the broker (or never sent at all).
        if execution.attempt_day < self.today:
            return self._final(execution, Outcome.MISSED, "the broker shows no order or fill for it from "
                               f"{execution.attempt_day}, so nothing was bought; it is not placed on a later day")
        if rows is None and execution.frequency != ONE_OFF:  # a one-off needs no plan to go ahead
            return self._pending(execution, "the plan could not be read; decided at the next run")
        changed = _row_change(execution, None if rows is None else rows.get(execution.row_id))
        if changed:
            return self._final(execution, Outcome.SKIPPED, f"{changed}; nothing was ordered")
        refusal = self._guard(execution, already=self.spent_today - reserved(execution, self.e.options.price_margin))
        if refusal:
            return self._final(execution, Outcome.SKIPPED, f"{refusal} (checked again before sending); nothing "
                               "was ordered")
        if execution.attempts == 0:  # recorded but never sent: this is its first attempt
            execution = self.e.ledger.update(execution.evolve(attempts=1, last_attempt_at=self.at()), durable=True)
            self.e._checkpoint("attempt_recorded", execution)
            return self._submit(execution)
        return self._resend(execution)

    # -- recording what the broker said ---------------------------------------------------

    def _from_broker(self, execution: Execution, order: BrokerOrder) -> Execution:
        changes: dict = {"broker_order_id": order.broker_order_id, "broker_status": order.broker_status or None,
                         "commission": order.commission}
        budget = execution.amount_usd + execution.carry_in
        if order.state in (OrderState.WORKING, OrderState.PARTIAL):
            note = "" if order.state is OrderState.WORKING else (
                f"partly filled so far: {format_quantity(order.filled_quantity)} of {format_quantity(order.quantity)}")
            working = execution.evolve(**changes, filled_quantity=order.filled_quantity)
            return self._final(working, Outcome.SUBMITTED, note)
        if order.state is OrderState.REJECTED or order.filled_quantity <= 0:
            message = order.message or f"the broker reports the order as {order.broker_status or order.state}"
            return self._final(execution.evolve(**changes), Outcome.FAILED, message)
        cost = order.fill_cost
        notes = []
        if order.filled_quantity < order.quantity and order.state is OrderState.CANCELLED:
            notes.append(f"partly filled: {format_quantity(order.filled_quantity)} of "
                         f"{format_quantity(order.quantity)}; the rest was cancelled ({order.message or 'by the broker'})")
        if cost > budget:
            notes.append(f"overspent {format_money(cost - budget)}: the fill cost more than the quote; "
                         "taken from the next buy")
        if cost > self.e.options.max_order_usd:
            notes.append(f"above the maximum per order ({format_money(self.e.options.max_order_usd)})")
        filled = execution.evolve(**changes, quantity=order.filled_quantity, filled_quantity=order.filled_quantity,
                                  price=order.avg_price, cost=cost, carry_out=budget - cost)
        return self._final(filled, Outcome.FILLED, " · ".join(notes))

    def _final(self, execution: Execution, status: Outcome, message: str) -> Execution:
        changes: dict = {"status": status, "message": message}
        if status not in (Outcome.FILLED, Outcome.SUBMITTED):
            changes["carry_out"] = execution.carry_in  # nothing bought: the carry stays
            changes["added"] = ZERO
        final = execution.evolve(**changes)
        line = log_line(final, self.now)
        stored = self.e.ledger.update(final, line)
        logger.info("outcome %s", line, extra={"execution": logs.execution_key(final.row_id, final.scheduled_date)})
        self._account(execution, stored)
        self.e._checkpoint("outcome_recorded", stored)
        return stored

    def _pending(self, execution: Execution, message: str) -> Execution:
        return self.e.ledger.update(execution.evolve(status=Outcome.PENDING, message=message))

    def _account(self, before: Execution | None, after: Execution) -> None:
        """Keep today's total (the daily guard's base) in step with the ledger."""
        if after.attempt_day != self.today:
            return
        margin = self.e.options.price_margin
        self.spent_today += reserved(after, margin) - (ZERO if before is None else reserved(before, margin))

    # -- what a person must hear of -------------------------------------------------------

    def _report_problems(self, plan: ParsedPlan) -> None:
        """Bad rows go to their Log cell; every distinct problem is notified when it first
        appears, when it changes and when it is resolved, not on every run."""
        for issue in plan.issues:
            body = f"{'error' if issue.is_error else 'warning'} · {issue.message}"
            if issue.row_id and issue.log != body:
                self.e.ledger.enqueue("log", body, issue.row_id)
        # Only the engine's own kinds of problem: the worker keeps others (its preflight).
        notices = Notices(self.e.ledger, scope=ENGINE_NOTICES)
        for issue in plan.errors:
            notices.open(f"row:{issue.row_id or issue.row_number}", f"Plan error ({self.e.plan_source.description}): "
                         f"{issue.message}")
        for d in self.report.deferred:
            day = (d["scheduled_at"] or self.today.isoformat())[:10]
            notices.open(f"deferred:{d['row_id']}:{day}",
                         f"Not attempted: row {d['row']} {d['symbol']} ({d['frequency']}, due {day}): {d['message']}. "
                         + _deferral_consequence(d["frequency"]))
        self._notice_doubts(notices)
        stuck = [i for i in self.e.ledger.undelivered("log") if i.attempts >= BACKLOG_ATTEMPTS]
        if stuck:
            errors = sorted({i.last_error for i in stuck if i.last_error})
            # No count in the text: more waiting is the same problem, not news.
            notices.open("backlog:log", f"Log cell updates for {self.e.plan_source.description} have "
                         f"failed {BACKLOG_ATTEMPTS} times or more ({'; '.join(errors)[:300]}). The orders are not "
                         "affected; the updates are delivered as soon as the plan can be written again.")
        notices.settle()

    def _notice_doubts(self, notices: Notices) -> None:
        for e in self.e.ledger.with_status(Outcome.PENDING):
            # Stable text: the reason may change from run to run, the problem does not.
            notices.open(f"doubt:{e.order_ref}",
                         f"Order in doubt: {e.symbol} {format_money(e.amount_usd)} for {e.scheduled_date} "
                         f"(reference {e.order_ref}): the broker has not yet confirmed whether it holds it. "
                         "Check the broker's orders for that reference; it is asked again at every run and "
                         "never sent again unless the broker shows it does not have it.")


ENGINE_NOTICES = ("row", "deferred", "doubt", "plan", "backlog")
BACKLOG_ATTEMPTS = 3  # failed delivery passes before a waiting Log update is a problem to tell

_NO_ANSWER = OrderLookup(Found.UNKNOWN, reason="the broker gave no answer for it")

# Set on an intent once the broker has shown it holds the order (it refused the id as a
# duplicate): a list that does not show it is then lag, never proof of absence.
ACKNOWLEDGED = "acknowledged"


def _bought(e: Execution) -> str:
    """A success as one line of the run summary, e.g. '2 VTI @ $390.26 = $780.52 (late)'."""
    line = f"{format_quantity(e.quantity or ZERO)} {e.symbol}"
    if e.price is not None:
        line += f" @ {format_money(e.price)}"
    if e.cost is not None:
        line += f" = {format_money(e.cost)}"
    return line + (" (working)" if e.status is Outcome.SUBMITTED else "") + (" (late)" if e.late else "")


def _acknowledged(execution: Execution) -> bool:
    return execution.broker_status == ACKNOWLEDGED or execution.broker_order_id is not None


def _news(execution: Execution, order: BrokerOrder) -> bool:
    """Whether the broker's report of a working order says anything new."""
    return (order.state.is_final or order.filled_quantity != (execution.filled_quantity or ZERO)
            or order.broker_status != (execution.broker_status or ""))


def _deferral_consequence(frequency: str) -> str:
    if frequency == "Daily":
        return ("A later run today still buys it; once the next trading day's execution is due, this one is "
                "recorded as missed.")
    return (f"A {frequency} row stays due until its next scheduled date, so a later run buys it "
            "(marked late) even on another day.")


def _row_change(execution: Execution, row: PlanRow | None) -> str | None:
    """Why a pending intent no longer matches its row, or None."""
    if execution.frequency == ONE_OFF:
        return None  # a one-off buy is its own row: nothing in the plan can change it
    if row is None:
        return "the row was removed from the plan (or has an error) before the order was sent"
    if not row.active:
        return "the row was made Inactive before the order was sent"
    changes = []
    if row.symbol != execution.symbol:
        changes.append(f"{execution.symbol} → {row.symbol}")
    if row.amount != execution.amount_usd:
        changes.append(f"{format_money(execution.amount_usd)} → {format_money(row.amount)}")
    if str(row.frequency) != execution.frequency:
        changes.append(f"{execution.frequency} → {row.frequency}")
    if changes:
        return "the row changed before the order was sent: " + ", ".join(changes)
    return None


def _request(execution: Execution) -> OrderRequest:
    return OrderRequest(
        order_ref=execution.order_ref,
        symbol=execution.symbol,
        quantity=execution.quantity,
        cash_amount=execution.cost if execution.cash_order else None,
    )


class _DryRun(_Run):
    """Everything a run would decide, at current prices, with nothing recorded or sent."""

    def __init__(self, engine: Engine, now: datetime):
        super().__init__(engine, now)
        self.report.dry_run = True

    def execute(self) -> RunReport:
        plan = self.e.plan_source.load()
        self.report.errors, self.report.warnings = plan.errors, plan.warnings
        for pending in self.e.ledger.with_status(Outcome.PENDING):
            self.report.executions.append(pending.evolve(message="in doubt: would be reconciled with the broker first"))
        self.spent_today = self.e.ledger.committed_on(self.today, self.e.options.price_margin)
        self._check_broker()
        self._watch_for_copies(plan)
        rows = [r if r.row_id else _with_id(r) for r in plan.active_rows]
        histories = self.e.ledger.row_histories(rows, self.today, observe=False)
        self._buy_all(self._decide(rows, histories))
        return self.report

    def _store(self, execution: Execution) -> Execution:
        self.report.executions.append(execution)
        return execution

    def _place(self, intent: Execution) -> None:
        self._account(None, intent)
        self.report.executions.append(intent.evolve(status=Outcome.PLANNED, message="dry run: not ordered"))


class _OneOff(_Run):
    """A one-off buy: one execution of a row that exists only in the ledger."""

    def place(self, row_id: str, symbol: str, amount: Decimal) -> RunReport:
        recorded = self.e.ledger.get(row_id, self.today)
        if recorded is not None:  # a replay: the answer already given, nothing sent
            self.report.executions.append(recorded)
            self.report.replayed = True
            return self.report
        row = PlanRow(0, row_id, RowStatus.ACTIVE, symbol, amount, ONE_OFF)  # type: ignore[arg-type]
        self.spent_today = self.e.ledger.committed_on(self.today, self.e.options.price_margin)
        self._check_broker()
        due = _Due(row, self.today)
        quotes = self._quotes([due])
        if quotes is None:
            self._defer(row, self.today, f"{self.broker_down}; nothing ordered")
        else:
            self._guarded(row, self.today, lambda: self._buy(row, self.today, quotes[symbol]))
        if not self.report.dry_run:
            self.report.delivery = deliver_outbox(self.e.ledger, self.e.plan_source, self.e.notifier,
                                                  account_label(self.e.broker), self.e.clock)
        return self.report

    def _new_execution(self, row: PlanRow, day: date, status: Outcome, message: str, **fields) -> Execution:
        if message.endswith("; carried forward"):  # a one-off has no next execution to carry to
            message = message.removesuffix("; carried forward") + "; nothing bought"
        # Placed when asked, so never late; its time is the moment it was asked for.
        return replace(super()._new_execution(row, day, status, message, **fields),
                       scheduled_at=self.now.astimezone(NEW_YORK).replace(microsecond=0), late=False,
                       row_number=None)


class _OneOffDryRun(_OneOff, _DryRun):
    """What a one-off buy would do, at current prices, with nothing recorded or sent."""


def _with_id(row: PlanRow) -> PlanRow:
    return replace(row, row_id=f"new-row-{row.row_id or row.row_number}")

