"""How outcomes read to a person: the Log cell line and the notification text."""

from __future__ import annotations

from datetime import datetime

from dca.domain import Outcome, format_money, format_quantity
from dca.execution import Execution
from dca.schedule_rules import NEW_YORK


def log_line(execution: Execution, at: datetime) -> str:
    """One line for the row's Log cell, e.g.
    '2026-12-01 09:00 ET · filled · 2 SPY @ $412.10 = $824.20 · carry $75.80 · ref dca-r1-20261201'."""
    e = execution
    status = str(e.status) + (" (late)" if e.late else "")
    if e.status is Outcome.SUBMITTED and e.broker_status:
        status += f" ({e.broker_status})"  # e.g. PreSubmitted: held until the open
    parts = [f"{at.astimezone(NEW_YORK):%Y-%m-%d %H:%M} ET", status]
    if e.scheduled_at.astimezone(NEW_YORK).date() != at.astimezone(NEW_YORK).date():
        parts.append(f"for {e.scheduled_at:%Y-%m-%d}")
    if e.status in (Outcome.FILLED, Outcome.SUBMITTED) and e.quantity is not None:
        trade = f"{format_quantity(e.quantity)} {e.symbol}"
        if e.price is not None:
            trade += f" @ {format_money(e.price)}"
        if e.cost is not None:
            trade += f" = {format_money(e.cost)}"
        parts.append(trade)
    else:
        parts.append(f"{e.symbol} {format_money(e.amount_usd)}")
    if e.frequency == "Once":  # a one-off buy has no next buy to carry to or take from
        if e.carry_out > 0 and e.status in (Outcome.FILLED, Outcome.SUBMITTED):
            parts.append(f"unspent {format_money(e.carry_out)}")
    elif e.carry_out < 0:
        parts.append(f"carry -{format_money(-e.carry_out)}")  # an overspend, taken from the next buy
    elif e.carry_out and e.status in (Outcome.FILLED, Outcome.SUBMITTED, Outcome.SKIPPED, Outcome.PLANNED):
        parts.append(f"carry {format_money(e.carry_out)}")
    if e.order_ref and e.status in (Outcome.FILLED, Outcome.SUBMITTED, Outcome.FAILED):
        parts.append(f"ref {e.order_ref}")
    if e.message:
        parts.append(e.message)
    if e.simulated:
        parts.append("SIMULATED")
    return " · ".join(parts)
