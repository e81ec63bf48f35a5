"""One run of the engine: due -> guard -> intent -> submit -> reconcile -> outcome.

Exactly once rests on three things: the ledger's unique (row ID, scheduled date) key; the
intent committed *before* the broker is called; and, after any doubt, asking the broker
for the client order id before ever submitting again. The engine does no I/O of its own:
plan source, broker, ledger and notifier are passed in, and so is the time.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Callable

from dca.domain import (
    CENT,
    Outcome,
    ParsedPlan,
    PlanRow,
    RowIssue,
    client_order_id,
    format_money,
    new_row_id,
    size_order,
)
from dca.errors import BrokerError, BrokerUnavailable, OrderRejected, PlanError
from dca.ledger import Execution, Ledger, today_in_new_york
from dca.ports import Broker, BrokerOrder, Notifier, OrderRequest, PlanSource
from dca import clock_guard
from dca.delivery import deliver_outbox
from dca.reporting import log_line
from dca.schedule_rules import NEW_YORK, RowHistory, Schedule, scheduled_at

logger = logging.getLogger(__name__)

ZERO = Decimal("0")


@dataclass(frozen=True)
class RunOptions:
    grace: timedelta = timedelta(minutes=5)
    max_lateness: timedelta | None = None  # None: a candidate is bought however late
    max_order_usd: Decimal = Decimal("5000")
    max_daily_usd: Decimal = Decimal("10000")
    max_submit_attempts: int = 3


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

_FROM_BROKER = {
    "filled": Outcome.FILLED,
    "submitted": Outcome.SUBMITTED,
    "rejected": Outcome.FAILED,
    "cancelled": Outcome.FAILED,
}


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
    ):
        self.plan_source = plan_source
        self.broker = broker
        self.ledger = ledger
        self.notifier = notifier
        self.schedule = schedule
        self.options = options
        # Called at each step of an execution; the crash tests kill the process there.
        self._checkpoint = checkpoint or (lambda step, execution: None)

    # -- the run --------------------------------------------------------------------------

    def run(self, now: datetime, dry_run: bool = False) -> RunReport:
        if now.tzinfo is None:
            raise ValueError("now must be timezone-aware")
        clock_guard.check_range(now)  # a time out of range poisons first-seen dates
        if dry_run:
            return _DryRun(self, now).execute()
        with self.ledger.run_lock():
            clock_guard.check_not_earlier(now, self.ledger)  # under the lock: no run slips past
            return _Run(self, now).execute()


class _Run:
    """The state of one real run; lives only while the run lock is held."""

    def __init__(self, engine: Engine, now: datetime):
        self.e = engine
        self.now = now
        self.today = today_in_new_york(now)
        self.report = RunReport(now, engine.broker.name, engine.broker.simulated, dry_run=False)
        self.broker_down: BrokerUnavailable | None = None
        self.spent_today = ZERO

    def execute(self) -> RunReport:
        try:
            plan = self._plan_with_ids()
        except PlanError as error:
            self._without_plan(error)
            raise
        run_id = self.e.ledger.start_run(self.now)
        active = {r.row_id: r for r in plan.active_rows}
        self._settle_pending(active)
        self._refresh_submitted()
        histories = self.e.ledger.row_histories(plan.rows, self.today, observe=True)
        self.spent_today = self.e.ledger.committed_on(self.today)
        self._run_rows(plan.active_rows, histories)
        self._report_problems(plan)
        self.report.delivery = deliver_outbox(self.e.ledger, self.e.plan_source, self.e.notifier, self.e.broker.simulated)
        self.e.ledger.finish_run(run_id, self.report.summary())
        return self.report

    def _run_rows(self, rows: list[PlanRow], histories: dict[str, RowHistory]) -> None:
        for row in rows:
            try:
                self._run_row(row, histories[row.row_id])
            except Exception as error:
                # One row's surprise must not stop the others. Whatever this row had
                # recorded stays in the ledger (a pending intent is reconciled next run).
                logger.exception("row %s (%s) failed unexpectedly", row.row_number, row.symbol)
                self._defer(row, None, f"unexpected error ({type(error).__name__}: {error}); an order "
                            "already sent for it is reconciled with the broker at the next run")

    # -- plan and IDs ---------------------------------------------------------------------

    def _plan_with_ids(self) -> ParsedPlan:
        plan = self.e.plan_source.load()
        if plan.unidentified:
            new_ids = {n: new_row_id() for n in plan.unidentified}
            try:
                self.e.plan_source.assign_ids(new_ids)
                plan = self.e.plan_source.load()
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
        for execution in self.e.ledger.with_status(Outcome.PENDING):
            self._drive(execution, allow_submit=None)
        self.e.ledger.enqueue("notify", f"The plan could not be read, so nothing new was bought: {error}")
        deliver_outbox(self.e.ledger, self.e.plan_source, self.e.notifier, self.e.broker.simulated)

    def _report_problems(self, plan: ParsedPlan) -> None:
        """Queue what a person must hear of besides outcomes: bad rows, and due executions
        that could not even be attempted."""
        for issue in plan.issues:
            body = f"{'error' if issue.is_error else 'warning'} · {issue.message}"
            if issue.row_id and issue.log != body:
                self.e.ledger.enqueue("log", body, issue.row_id)
        if plan.errors:
            lines = "\n".join(f"- {i.message}" for i in plan.errors)
            self.e.ledger.enqueue("notify", f"Plan errors ({self.e.plan_source.description}):\n{lines}")
        if self.report.deferred:
            lines = "\n".join(f"- row {d['row']} {d['symbol']}: {d['message']}" for d in self.report.deferred)
            self.e.ledger.enqueue(
                "notify",
                f"Not attempted at {self.now.astimezone(NEW_YORK):%Y-%m-%d %H:%M} ET; a run later the same "
                f"day tries again, after that day they are recorded as missed:\n{lines}",
            )

    # -- reconciliation -------------------------------------------------------------------

    def _settle_pending(self, active: dict[str, PlanRow]) -> None:
        for execution in self.e.ledger.with_status(Outcome.PENDING):
            row = active.get(execution.row_id)
            still_wanted = row is not None and row.symbol == execution.symbol
            self.report.executions.append(self._drive(execution, allow_submit=still_wanted))

    def _refresh_submitted(self) -> None:
        for execution in self.e.ledger.with_status(Outcome.SUBMITTED):
            try:
                order = self.e.broker.find_order(execution.order_ref)
            except Exception as error:  # the status stays 'submitted'; asked again next run
                logger.warning("could not refresh order %s: %s", execution.order_ref, error)
                continue
            if order is not None and _FROM_BROKER.get(order.status) not in (None, Outcome.SUBMITTED):
                self.report.executions.append(self._from_broker(execution, order))

    # -- one row --------------------------------------------------------------------------

    def _run_row(self, row: PlanRow, history: RowHistory) -> None:
        decision = self.e.schedule.decide(row.frequency, self.now, history, self.e.options.max_lateness)
        for day in decision.missed:
            self._record(row, day, Outcome.MISSED, "not run: nothing was running at its scheduled time")
        if decision.candidate is None:
            return
        if decision.candidate_too_late:
            minutes = int(self.e.options.max_lateness.total_seconds() // 60)
            self._record(row, decision.candidate, Outcome.MISSED,
                         f"too late to buy (more than {minutes} minutes after its time)")
            return
        self._buy(row, decision.candidate)

    def _record(self, row: PlanRow, day: date, status: Outcome, message: str, **fields) -> Execution | None:
        carry = self.e.ledger.carry(row.row_id)
        fields.setdefault("carry_in", carry)
        fields.setdefault("carry_out", carry)
        return self._store(self._new_execution(row, day, status, message, **fields))

    def _store(self, execution: Execution) -> Execution | None:
        stored = self.e.ledger.insert(execution, log_line(execution, self.now))
        if stored is not None:
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

    def _buy(self, row: PlanRow, day: date) -> None:
        options = self.e.options
        carry_in = self.e.ledger.carry(row.row_id)
        budget = row.amount + carry_in
        if budget > options.max_order_usd:
            self._record(row, day, Outcome.SKIPPED, f"{format_money(budget)} is over the maximum per order "
                         f"({format_money(options.max_order_usd)})")
            return
        if self.broker_down is not None:
            self._defer(row, day, f"broker unavailable ({self.broker_down}); nothing ordered")
            return
        try:
            price = self.e.broker.quote(row.symbol, self.now)
        except BrokerUnavailable as error:
            self.broker_down = error
            self._defer(row, day, f"broker unavailable ({error}); nothing ordered")
            return
        except BrokerError as error:
            self._record(row, day, Outcome.ERROR, f"no price for {row.symbol}: {error}")
            return
        sizing = size_order(row.amount, carry_in, price, self.e.broker.supports_fractional)
        if sizing.quantity <= 0:
            self._record(row, day, Outcome.SKIPPED, f"{format_money(budget)} does not buy one share at "
                         f"{format_money(price)}; carried forward", price=price, carry_out=budget)
            return
        if self.spent_today + sizing.cost > options.max_daily_usd:
            self._record(row, day, Outcome.SKIPPED, f"{format_money(sizing.cost)} would take today's total past "
                         f"the maximum per day ({format_money(options.max_daily_usd)}; "
                         f"{format_money(self.spent_today)} already)", price=price)
            return
        intent = self._new_execution(
            row, day, Outcome.PENDING, "", quantity=sizing.quantity, price=price, cost=sizing.cost,
            cash_order=sizing.cash_amount is not None, carry_in=carry_in, carry_out=sizing.carry_out,
            order_ref=client_order_id(row.row_id, day), attempt_day=self.today,
        )
        self._place(intent)

    def _place(self, intent: Execution) -> None:
        # The intent counts as the first attempt: once it is on disk the order may reach
        # the broker, so any later look at it must ask the broker first.
        stored = self.e.ledger.insert(intent.evolve(attempts=1), durable=True)
        if stored is None:
            return  # recorded by someone else meanwhile: theirs is the one
        self.spent_today += intent.cost
        self.e._checkpoint("intent_recorded", stored)
        self.report.executions.append(self._drive(stored, allow_submit=True, fresh=True))

    def _defer(self, row: PlanRow, day: date | None, reason: str) -> None:
        """Due but not attempted, and nothing recorded: the next run decides afresh."""
        self.report.deferred.append({
            "row_id": row.row_id,
            "row": row.row_number,
            "symbol": row.symbol,
            "scheduled_at": None if day is None else scheduled_at(day, self.e.schedule.run_time).isoformat(),
            "message": f"{reason}; retried at the next run",
        })

    # -- talking to the broker ------------------------------------------------------------

    def _drive(self, execution: Execution, allow_submit: bool | None, fresh: bool = False) -> Execution:
        """Bring an intent to a final outcome, or leave it pending with the reason.

        A submission is only ever made when the broker has provably not got the order
        (a `fresh` intent just recorded, or the broker says it has no such client order
        id), on the same New York day as the intent, at most `max_submit_attempts` times.
        `allow_submit` None means the plan is unknown: reconcile only, decide nothing."""
        broker, ledger, ref = self.e.broker, self.e.ledger, execution.order_ref
        while True:
            if not fresh:
                if execution.attempts > 0:
                    try:
                        found = broker.find_order(ref)
                    except Exception as error:
                        if execution.attempt_day < self.today:
                            return self._final(execution, Outcome.ERROR, "could not confirm with the broker whether "
                                               f"order {ref} was placed ({error}); check the broker's orders")
                        return self._pending(execution, f"in doubt: could not ask the broker about {ref} ({error}); "
                                             "checked again at the next run")
                    if found is not None:
                        return self._from_broker(execution, found)
                if execution.attempt_day < self.today:
                    return self._final(execution, Outcome.MISSED, "the order never reached the broker on "
                                       f"{execution.attempt_day}; it is not placed on a later day")
                if allow_submit is None:
                    return self._pending(execution, "the plan could not be read; decided at the next run")
                if not allow_submit:
                    return self._final(execution, Outcome.MISSED, "the row is no longer Active in the plan; "
                                       "the unsent order was dropped")
                if execution.attempts >= self.e.options.max_submit_attempts:
                    return self._final(execution, Outcome.ERROR, "the broker did not take the order after "
                                       f"{execution.attempts} attempts ({execution.message})")
                if self.broker_down is not None:
                    return self._pending(execution, f"broker unavailable ({self.broker_down}); retried later today")
                execution = ledger.update(execution.evolve(attempts=execution.attempts + 1), durable=True)
                self.e._checkpoint("attempt_recorded", execution)
            fresh = False
            try:
                order = broker.submit(_request(execution), self.now)
            except OrderRejected as error:
                return self._final(execution, Outcome.FAILED, str(error))
            except BrokerUnavailable as error:
                # Provably not received: this attempt does not count against the limit.
                self.broker_down = error
                return self._pending(execution.evolve(attempts=execution.attempts - 1),
                                     f"broker unavailable ({error}); retried later today")
            except Exception as error:  # in doubt: the loop asks the broker before anything else
                logger.warning("order %s in doubt: %s", ref, error)
                execution = self._pending(execution, f"in doubt after submitting: {error}")
                continue
            self.e._checkpoint("broker_returned", execution)
            return self._from_broker(execution, order)

    def _from_broker(self, execution: Execution, order: BrokerOrder) -> Execution:
        status = _FROM_BROKER.get(order.status)
        if status is None:
            return self._final(execution, Outcome.ERROR, f"the broker reports order {order.order_ref} as "
                               f"'{order.status}', which is not understood; check it at the broker")
        changes: dict = {"broker_order_id": order.broker_order_id}
        if status in (Outcome.FILLED, Outcome.SUBMITTED):
            changes["quantity"] = order.quantity
            if order.avg_price is not None:
                changes["price"] = order.avg_price
                if not execution.cash_order:
                    cost = (order.quantity * order.avg_price).quantize(CENT)
                    changes["cost"] = cost
                    changes["carry_out"] = max(execution.amount_usd + execution.carry_in - cost, ZERO)
        message = order.message if status is Outcome.FAILED else ""
        return self._final(execution.evolve(**changes), status, message)

    def _final(self, execution: Execution, status: Outcome, message: str) -> Execution:
        changes: dict = {"status": status, "message": message}
        if status not in (Outcome.FILLED, Outcome.SUBMITTED):
            changes["carry_out"] = execution.carry_in  # nothing bought: the carry stays
            if execution.status is Outcome.PENDING and execution.attempt_day == self.today and execution.cost:
                self.spent_today -= execution.cost
        final = execution.evolve(**changes)
        stored = self.e.ledger.update(final, log_line(final, self.now))
        self.e._checkpoint("outcome_recorded", stored)
        return stored

    def _pending(self, execution: Execution, message: str) -> Execution:
        return self.e.ledger.update(execution.evolve(status=Outcome.PENDING, message=message))


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
        rows = [r if r.row_id else _with_id(r) for r in plan.active_rows]
        histories = self.e.ledger.row_histories(rows, self.today, observe=False)
        self.spent_today = self.e.ledger.committed_on(self.today)
        self._run_rows(rows, histories)
        return self.report

    def _store(self, execution: Execution) -> Execution:
        self.report.executions.append(execution)
        return execution

    def _place(self, intent: Execution) -> None:
        self.spent_today += intent.cost
        self.report.executions.append(intent.evolve(status=Outcome.PLANNED, message="dry run: not ordered"))


def _with_id(row: PlanRow) -> PlanRow:
    return replace(row, row_id=f"new-row-{row.row_number}")
