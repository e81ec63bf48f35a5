"""Delivering the outbox: queued Log lines to the plan, queued messages to the notifier.

Outcomes are queued in the same transaction that records them; this drains the queue.
A failure leaves the items queued for the next run and never affects orders. Each kind
has its own deliverer, so the plan source and the notifier fail (and recover) apart.
"""

from __future__ import annotations

import logging
import re
from typing import Callable

from dca.clock import SystemClock
from dca.domain import Outcome
from dca.errors import NotifyError
from dca.ledger import Ledger, OutboxItem
from dca.notify.rules import Rules
from dca.ports import Clock, HistoryEntry, Notification, Notifier, PlanSource

logger = logging.getLogger(__name__)


def deliver_outbox(ledger: Ledger, plan_source: PlanSource, notifier: Notifier, account: str,
                  clock: Clock | None = None) -> dict:
    """Returns, per kind, how many were delivered and how many still wait (and why).
    `account`: SIMULATED, PAPER or LIVE (see `account_label`)."""
    if isinstance(account, bool):  # an older caller's `simulated`
        account = "SIMULATED" if account else "LIVE"
    return {
        "log": deliver_logs(ledger, plan_source),
        "notify": deliver_notifications(ledger, notifier, account, clock=clock),
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



# How long one pass waits for the notifier in all (429 waits, rate-limit pauses,
# back-offs): a `dca run` is never held longer; what is left waits for the next pass.
DELIVERY_BUDGET_SECONDS = 5.0
# A message that keeps failing with temporary errors (5xx, timeouts) is given up after
# this many attempts; at one attempt per run that is weeks, at a worker's pace hours.
MAX_ATTEMPTS = 30
BACKOFF = (0.5, 1.0, 2.0)  # in-pass waits after temporary failures, then the next pass
MAX_RATE_LIMITED = 20  # 429s honoured in one pass (a service saying "retry after 0" forever)
_EXECUTION_KINDS = {"filled": "success", "submitted": "success", "failed": "failure", "error": "failure",
                    "skipped": "skipped", "missed": "missed"}


def account_label(broker) -> str:
    """What the broker says the account is; a real broker that does not say counts as LIVE."""
    kind = getattr(broker, "account_kind", None)
    if kind:
        return str(kind).upper()
    return "SIMULATED" if broker.simulated else "LIVE"


def send_test_notification(notifier: Notifier, account: str, now, clock: Clock | None = None) -> Exception | None:
    """Send one test message at once (not through the outbox); None when it arrived,
    else the error that says why not. Every face's "test notification" is this."""
    clock = clock or SystemClock()
    test = Notification("test", f"Test message from dca, {now:%Y-%m-%d %H:%M %Z}: notifications about the {account} "
                        "account arrive here.", account)
    error: Exception | None = None
    for _ in range(2):  # once more after a rate limit, if it asks for a short wait
        try:
            notifier.send([test])
            return None
        except NotifyError as e:
            error = e
            if e.retry_after is None or e.retry_after > 5:
                break
            clock.sleep(e.retry_after)
        except Exception as e:  # a file notifier's OSError, say: the message did not arrive
            return e
    return error


def deliver_notifications(ledger: Ledger, notifier: Notifier, account: str = "SIMULATED", *,
                          clock: Clock | None = None, budget_seconds: float = DELIVERY_BUDGET_SECONDS) -> dict:
    """Item by item, in order: each is sent (grouped with its neighbours into as few
    messages as the notifier's limits allow), retried and given up on by itself.

    - delivered: marked so, never sent again;
    - rate-limited (429): wait what the service says, if the budget allows, else stop;
    - refused for good (400 after truncation): a group is split and its items sent one
      by one, and only the refused one becomes a dead letter; the others go on;
    - the destination gone (401/404, a deleted webhook): that message is a dead letter,
      the problem is recorded for `dca status`, and nothing more is tried on it until its
      configuration changes or `dca notify-test` succeeds; the rest wait, not lost;
    - temporary (5xx, no connection, anything unexpected): a short back-off within the
      budget, then the rest wait for the next pass (a timeout waits at once: the message
      may have arrived); after MAX_ATTEMPTS it is a dead letter.
    A notifier problem never raises from here: orders never depend on it."""
    clock = clock or SystemClock()
    items = ledger.undelivered("notify")
    if not items:
        return {"delivered": 0, "waiting": 0}
    identity = getattr(notifier, "identity", notifier.description)
    gone_key = f"gone:{identity}"
    problems = ledger.notify_problems()
    if gone_key in problems:
        error = problems[gone_key]["body"]
        return {"delivered": 0, "waiting": len(items), "error": error}
    details = ledger.notify_details(i.id for i in items)
    rules = getattr(notifier, "rules", None) or Rules()
    chosen = rules.select([(i.execution_id, _notification(ledger, i, details.get(i.id), account)) for i in items])
    skipped = [i.id for i, n in zip(items, chosen) if n is None]
    ledger.mark_delivered(skipped)  # the rules said not to send these: done with them
    queue = [(i, n) for i, n in zip(items, chosen) if n is not None]
    result: dict = {"delivered": 0, "waiting": 0}
    if skipped:
        result["not_sent_by_rules"] = len(skipped)
    deadline = clock.monotonic() + budget_seconds
    singles = 0  # after a refused group: send this many from the front one by one
    failures = limited = 0
    error: str | None = None
    while queue:
        if clock.monotonic() > deadline:
            error = error or f"the {budget_seconds:g} s allowed for notifications ran out; the rest are sent later"
            break
        size = 1 if singles else max(1, min(notifier.pack([n for _, n in queue]), len(queue)))
        batch = queue[:size]
        ids = [i.id for i, _ in batch]
        try:
            pause = notifier.send([n for _, n in batch])
        except NotifyError as e:
            error = str(e)
            if e.retry_after is not None:
                limited += 1
                if limited <= MAX_RATE_LIMITED and clock.monotonic() + e.retry_after <= deadline:
                    clock.sleep(e.retry_after)
                    continue
                logger.info("notifications rate-limited for %.1f s; %d wait for the next pass", e.retry_after,
                            len(queue))
                break
            if e.gone:
                logger.error("notifier refused: %s", e)
                ledger.give_up(ids, error)
                ledger.set_notify_problem(gone_key, error)
                result["given_up"] = result.get("given_up", 0) + len(ids)
                queue = queue[size:]
                break
            if e.permanent and size > 1:
                singles = size  # which one is refused? each of them alone says
                continue
            if e.permanent:
                logger.warning("notification %d refused for good, kept as a dead letter: %s", ids[0], e)
                ledger.give_up(ids, error)
                result["given_up"] = result.get("given_up", 0) + 1
                queue = queue[1:]
                singles = max(0, singles - 1)
                continue
            failures += 1
            if e.may_have_arrived:
                pass  # a timeout: not again at once (it may have arrived), and it cost its wait already
            elif failures <= len(BACKOFF) and clock.monotonic() + BACKOFF[failures - 1] <= deadline:
                clock.sleep(BACKOFF[failures - 1])  # a short hiccup of the service: once more
                continue
        except Exception as e:  # the notifier broke in a way it did not foresee: temporary
            error = f"{type(e).__name__}: {e}"
        else:
            ledger.mark_delivered(ids)
            result["delivered"] += len(ids)
            queue = queue[size:]
            singles = max(0, singles - size)
            failures = 0
            if pause > 0:
                if clock.monotonic() + pause > deadline:
                    error = "waiting for the notifier's rate limit; the rest are sent later"
                    break
                clock.sleep(pause)
            continue
        # A temporary failure that outlasted the pass's back-off: one attempt counted
        # against these items; they and the rest wait for the next pass.
        logger.warning("could not deliver %d notification(s) (%s); kept for later", len(ids), error)
        ledger.mark_failed(ids, error)
        worn = [i.id for i, _ in batch if i.attempts + 1 >= MAX_ATTEMPTS]
        if worn:
            ledger.give_up(worn, f"gave up after {MAX_ATTEMPTS} attempts; last error: {error}")
            result["given_up"] = result.get("given_up", 0) + len(worn)
            queue = [(i, n) for i, n in queue if i.id not in worn]
        break
    result["waiting"] = len(queue)
    if error and queue:
        result["error"] = error
    return result


def _notification(ledger: Ledger, item: OutboxItem, detail: tuple[str, dict] | None, account: str) -> Notification:
    kind, data = detail if detail else ("system", {})
    if detail is None and item.execution_id is not None:  # queued before details were kept
        execution = ledger.execution(item.execution_id)
        kind, data = ("execution", execution.as_dict()) if execution else ("system", {})
    if kind == "execution":
        kind = _EXECUTION_KINDS.get(str(data.get("status")), "system")
        if data.get("simulated"):
            account = "SIMULATED"
        elif account == "SIMULATED":  # a real execution, reported while the simulated broker is set
            account = "LIVE"
    return Notification(kind, item.body, account, data)


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
