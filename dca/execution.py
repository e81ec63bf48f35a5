"""An execution of a plan row on a scheduled date, and what it cost: plain data, no I/O.

Money follows one rule, so it can be checked: an execution that takes its row's amount
(bought, working, or carried because it does not buy a share yet) adds the amount to the
row's budget (`added`); what the broker filled is `cost`. A row's carry is everything
added minus everything spent, so a fill that costs more or less than estimated settles
in the carry by itself, even after later executions have run (a negative carry is an
overspend, taken from the next buy).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime
from decimal import Decimal

from dca.domain import CENT, Outcome
from dca.schedule_rules import NEW_YORK

ZERO = Decimal("0")


def today_in_new_york(now: datetime) -> date:
    return now.astimezone(NEW_YORK).date()


@dataclass(frozen=True)
class Execution:
    row_id: str
    scheduled_date: date
    scheduled_at: datetime
    symbol: str
    frequency: str
    amount_usd: Decimal
    status: Outcome
    row_number: int | None = None
    late: bool = False
    quantity: Decimal | None = None  # ordered; once final, what filled
    price: Decimal | None = None  # the quote it was sized at; once filled, the average fill price
    cost: Decimal | None = None  # estimated until the broker reports fills, then actual
    cash_order: bool = False
    carry_in: Decimal = ZERO
    carry_out: Decimal = ZERO
    added: Decimal = ZERO  # what this execution put into the row's budget
    filled_quantity: Decimal | None = None
    commission: Decimal | None = None
    broker_status: str | None = None
    price_source: str | None = None  # last | previous close | delayed
    order_ref: str | None = None
    broker_order_id: str | None = None
    message: str = ""
    attempts: int = 0
    attempt_day: date | None = None
    last_attempt_at: datetime | None = None
    simulated: bool = False
    id: int | None = None
    recorded_at: str | None = None
    updated_at: str | None = None

    def evolve(self, **changes) -> "Execution":
        return replace(self, **changes)

    @property
    def spent(self) -> Decimal:
        """What this execution takes from the row's budget: its (estimated or actual) cost
        while an order exists or may exist, nothing otherwise."""
        if self.status in (Outcome.FILLED, Outcome.SUBMITTED, Outcome.PENDING) and self.cost is not None:
            return self.cost
        return ZERO

    def as_dict(self) -> dict:
        def s(v):
            return None if v is None else str(v)

        return {
            "row_id": self.row_id,
            "row": self.row_number,
            "symbol": self.symbol,
            "frequency": self.frequency,
            "scheduled_at": self.scheduled_at.isoformat(),
            "status": str(self.status),
            "late": self.late,
            "quantity": s(self.quantity),
            "price": s(self.price),
            "price_source": self.price_source,
            "amount_usd": s(self.amount_usd),
            "cost": s(self.cost),
            "commission": s(self.commission),
            "carry": s(self.carry_out),
            "order_ref": self.order_ref,
            "broker_order_id": self.broker_order_id,
            "broker_status": self.broker_status,
            "message": self.message,
            "simulated": self.simulated,
            "recorded_at": self.recorded_at,
            "updated_at": self.updated_at,
        }


def reserved(execution: Execution, margin: Decimal) -> Decimal:
    """What an execution counts against the daily maximum: the actual cost once filled,
    the cash of a cash order, else the estimate plus the margin for the price moving
    between the quote and the fill."""
    if execution.status not in (Outcome.FILLED, Outcome.SUBMITTED, Outcome.PENDING) or execution.cost is None:
        return ZERO
    if execution.status is Outcome.FILLED or execution.cash_order:
        return execution.cost
    return (execution.cost * (1 + margin)).quantize(CENT)
