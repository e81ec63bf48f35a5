"""Delivering the outbox: queued Log lines to the plan, queued messages to the notifier.

Outcomes are queued in the same transaction that records them; this drains the queue.
A failure leaves the items queued for the next run and never affects orders. Each kind
has its own deliverer, so the plan source and the notifier fail (and recover) apart.
"""

from __future__ import annotations

import logging
from typing import Callable

from dca.ledger import Ledger, OutboxItem
from dca.ports import Notifier, PlanSource

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
        plan_source.write_logs(latest)
        return len(latest)

    return _drain(ledger, "log", write_logs)


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
