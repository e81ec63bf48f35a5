"""The Run now page's decisions, as plain functions (AppTest cannot click inside a dialog,
and a rule that moves money deserves a unit test of its own).

- what a preview would buy, and the confirmation sentence that names the total and the
  account before anything real is sent;
- whether this panel may place orders at all (`orders_blocked_reason`): a panel that
  listens beyond loopback with no login configured refuses;
- the key of a panel "buy now", made once per confirmation, so a double click on the
  confirm button is one order (the one-off path replays a key instead of buying again).
"""

from __future__ import annotations

import ipaddress
import uuid
from decimal import Decimal

from dca.account_view import BrokerMode
from dca.domain import CENT, Outcome
from dca.engine import RunReport

ZERO = Decimal("0")
_LOOPBACK_NAMES = {"localhost", "ip6-localhost"}


def planned_total(report: RunReport) -> Decimal:
    """Money the previewed run would spend: the estimated cost of what it plans to buy."""
    return sum((e.cost or ZERO for e in report.executions if e.status is Outcome.PLANNED), ZERO).quantize(CENT)


def planned_count(report: RunReport) -> int:
    return sum(1 for e in report.executions if e.status is Outcome.PLANNED)


def planned_keys(report: RunReport) -> frozenset[tuple[str, str]]:
    """What the person is asked to confirm: each planned (row ID, scheduled date)."""
    return frozenset((e.row_id, e.scheduled_date.isoformat()) for e in report.executions
                     if e.status is Outcome.PLANNED)


def confirmation_for(report: RunReport) -> dict | None:
    """The pending confirmation of a preview, or None when it plans no buy."""
    if not planned_count(report):
        return None
    return {"total": planned_total(report), "buys": planned_count(report), "keys": planned_keys(report)}


def still_confirmed(pending: dict, fresh: RunReport) -> bool:
    """A confirmation holds only for what it named: if what is due changed since (a
    confirmation left open past midnight, a plan edited meanwhile), ask again."""
    return planned_keys(fresh) == pending["keys"] and planned_total(fresh) <= pending["total"] * Decimal("1.05")


def account_words(mode: BrokerMode) -> str:
    if mode.label == "SIMULATED":
        return "the SIMULATED broker (no real money)"
    if mode.label == "PAPER":
        return f"the PAPER account {mode.account} (no real money)"
    if mode.label == "LIVE":
        return f"the LIVE account {mode.account} (real money)"
    return "Interactive Brokers, account not known yet (it may be LIVE, with real money)"


def confirmation_text(total: Decimal, buys: int, mode: BrokerMode) -> str:
    noun = "buy" if buys == 1 else "buys"
    return (f"Place {buys} {noun} for about ${total:,.2f} on {account_words(mode)}? "
            "Prices may move a little before the orders go out.")


def one_off_confirmation_text(symbol: str, amount: Decimal, mode: BrokerMode) -> str:
    return f"Buy {symbol} for ${amount:,.2f} now, once, outside the schedule, on {account_words(mode)}?"


def new_one_off_key() -> str:
    """One per confirmation shown: the confirm button's every click sends this same key."""
    return f"panel-{uuid.uuid4()}"


def is_loopback(address: str | None) -> bool:
    """Streamlit listens on every interface when `server.address` is unset or empty."""
    if not address:
        return False
    host = address.strip().strip("[]").lower()
    if host in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def orders_blocked_reason(address: str | None, auth_configured: bool, logged_in: bool) -> str | None:
    """None when this panel may place orders; else the sentence that says why not."""
    if is_loopback(address):
        return None
    where = f"`server.address` is {address!r}" if address else "`server.address` is not set (every interface)"
    if not auth_configured:
        return (f"Placing orders is turned off: {where}, so anyone who can reach this panel could use it, and no "
                "login is configured. Set `server.address = \"127.0.0.1\"`, or configure `[auth]` in "
                ".streamlit/secrets.toml (see README, \"Exposing the panel\").")
    if not logged_in:
        return "Placing orders is turned off until you log in (this panel is reachable beyond this computer)."
    return None
