"""Delivering the outbox: queued Log lines to the plan, queued messages to the notifier.

Outcomes are queued in the same transaction that records them; this drains the queue.
A failure leaves the items queued for the next run and never affects orders. Each kind
has its own deliverer, so the plan source and the notifier fail (and recover) apart.
"""

from __future__ import annotations

import logging
import re
from typing import Callable

from dca.domain import Outcome
from dca.ledger import Ledger, OutboxItem
from dca.ports import HistoryEntry, Notifier, PlanSource

logger = logging.getLogger(__name__)


def deliver_outbox(ledger: Ledger, plan_source: PlanSource, notifier: Notifier, simulated: bool) -> dict:
    """Returns, per kind, how many were delivered and how many still wait (and why)."""
    return {
        "log": deliver_logs(ledger, plan_source),
        "notify": deliver_notifications(ledger, notifier, simulated),
    }


def deliver_logs(ledger: Ledger, plan_source: PlanSource) -> dict:
    def write_logs(items: list[OutboxItem]) -> int:
        latest = {item.row_id: item.body for item in items}  # later lines supersede earlier
        history = [entry for item in items if (entry := history_entry(ledger, item)) is not None]
        # An item tried before may have been written by a write that got no clear answer.
        plan_source.write_logs(latest, history, maybe_written=any(item.attempts for item in items))
        return len(latest)

    return _drain(ledger, "log", write_logs)


_LOG_TIME = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2} ET")


def history_entry(ledger: Ledger, item: OutboxItem) -> HistoryEntry | None:
    """The History line of an outcome's Log item (row problems have no execution: none)."""
    if item.execution_id is None:
        return None
    execution = ledger.execution(item.execution_id)
    if execution is None:
        return None

    def text(value) -> str:
        return "" if value is None else str(value)

    # The time the Log line shows (the run's moment), so History and Log agree.
    stamp = _LOG_TIME.match(item.body)
    return HistoryEntry(
        time=stamp.group(0) if stamp else text(execution.updated_at),
        scheduled=execution.scheduled_date.isoformat(),
        row_id=execution.row_id,
        symbol=execution.symbol,
        amount=text(execution.amount_usd),
        quantity=text(execution.quantity) if execution.status in (Outcome.FILLED, Outcome.SUBMITTED) else "",
        price=text(execution.price) if execution.status in (Outcome.FILLED, Outcome.SUBMITTED) else "",
        status=str(execution.status),
        order_ref=text(execution.order_ref),
        message=execution.message,
    )


def deliver_notifications(ledger: Ledger, notifier: Notifier, simulated: bool) -> dict:
    title = "Recurring investments" + (" — SIMULATED broker, no real money" if simulated else "")

    def notify(items: list[OutboxItem]) -> int:
        notifier.send(title + "\n" + "\n".join(item.body for item in items))
        return len(items)

    return _drain(ledger, "notify", notify)


def _drain(ledger: Ledger, kind: str, send: Callable[[list[OutboxItem]], int]) -> dict:
    items = ledger.undelivered(kind)
    if not items:
        return {"delivered": 0, "waiting": 0}
    try:
        delivered = send(items)
    except Exception as error:
        logger.warning("could not deliver %d %s item(s) (%s); kept for the next run", len(items), kind, error)
        ledger.mark_failed((i.id for i in items), str(error))
        return {"delivered": 0, "waiting": len(items), "error": str(error)}
    ledger.mark_delivered(i.id for i in items)
    return {"delivered": delivered, "waiting": 0}
