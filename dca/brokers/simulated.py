"""A SIMULATED broker: deterministic prices, immediate fills, a durable order book.

It behaves like a real broker where exactly-once depends on it: its book lives apart
from the ledger, it remembers client order ids across restarts, refuses a duplicate id,
and answers `find_order` -- so crash reconciliation is exercised for real. Faults can be
switched on per symbol for tests and demonstrations.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import signal
import sqlite3
from datetime import datetime
from decimal import ROUND_DOWN, Decimal
from pathlib import Path
from typing import Iterator, Mapping

from dca.domain import FRACTION_STEP
from dca.errors import BrokerUnavailable, OrderInDoubt, OrderRejected
from dca.ports import BrokerOrder, OrderRequest
from dca.schedule_rules import NEW_YORK
from dca.sqlite_conn import ThreadConnections

FAULTS = {
    "reject": "the order is refused",
    "unavailable": "the broker cannot be reached; nothing is received",
    "error_before_accept": "the call fails before the broker records the order",
    "timeout_after_accept": "the broker records the order, then the reply is lost",
    "crash_before_accept": "the process is killed before the order is recorded",
    "crash_after_accept": "the process is killed after the order is recorded",
    "no_quote": "no price is available for the symbol",
    "delayed_fill": "the order is accepted unfilled; it fills when the broker is next asked",
}


def simulated_price(symbol: str, day) -> Decimal:
    """A stable price per symbol and New York date: $10-$610, moving up to ±3% a day."""
    base = int.from_bytes(hashlib.sha256(symbol.encode()).digest()[:4], "big") % 60000 / 100 + 10
    wobble = int.from_bytes(hashlib.sha256(f"{symbol}|{day}".encode()).digest()[:4], "big") % 601 - 300
    return (Decimal(str(base)) * (1 + Decimal(wobble) / 10000)).quantize(Decimal("0.01"))


class SimulatedBroker:
    name = "SIMULATED broker"
    simulated = True

    def __init__(self, book_path: Path, fractional: bool = False, faults: Mapping[str, str] | None = None):
        """`faults` maps a symbol (or '*') to a fault name, optionally ':N' to fault only
        the first N submissions of that symbol in this process."""
        self.book_path = Path(book_path)
        self.supports_fractional = fractional
        self._faults: dict[str, list] = {}
        for symbol, spec in (faults or {}).items():
            kind, _, count = spec.partition(":")
            if kind not in FAULTS:
                raise ValueError(f"unknown simulated fault '{kind}'; choose from {', '.join(FAULTS)}")
            self._faults[symbol.upper()] = [kind, int(count) if count else None]
        self.book_path.parent.mkdir(parents=True, exist_ok=True)
        self._connections = ThreadConnections(self.book_path)
        with self._book() as db:
            db.execute(
                "CREATE TABLE IF NOT EXISTS orders (order_ref TEXT PRIMARY KEY, broker_order_id TEXT NOT NULL,"
                " symbol TEXT NOT NULL, quantity TEXT NOT NULL, cash_amount TEXT, status TEXT NOT NULL,"
                " avg_price TEXT, placed_at TEXT NOT NULL, message TEXT NOT NULL DEFAULT '')"
            )

    @contextlib.contextmanager
    def _book(self) -> Iterator[sqlite3.Connection]:
        # NORMAL sync survives our process being killed, which is what the crash tests
        # exercise; a simulation has no real orders to protect against a power cut.
        yield self._connections.get()

    def _fault(self, symbol: str) -> str | None:
        entry = self._faults.get(symbol) or self._faults.get("*")
        if entry is None or entry[1] == 0:
            return None
        if entry[1] is not None:
            entry[1] -= 1
        return entry[0]

    def quote(self, symbol: str, now: datetime) -> Decimal:
        entry = self._faults.get(symbol) or self._faults.get("*")
        if entry and entry[0] == "no_quote":
            raise OrderRejected(f"no market data for {symbol} (SIMULATED)")
        if entry and entry[0] == "unavailable":
            raise BrokerUnavailable("SIMULATED broker is unreachable")
        return simulated_price(symbol, now.astimezone(NEW_YORK).date())

    def submit(self, order: OrderRequest, now: datetime) -> BrokerOrder:
        fault = self._fault(order.symbol)
        if fault == "unavailable":
            raise BrokerUnavailable("SIMULATED broker is unreachable")
        if fault == "error_before_accept":
            raise OrderInDoubt("SIMULATED connection reset while sending the order")
        if fault == "crash_before_accept":
            os.kill(os.getpid(), signal.SIGKILL)
        price = simulated_price(order.symbol, now.astimezone(NEW_YORK).date())
        quantity = order.quantity
        if order.cash_amount is not None:
            quantity = (order.cash_amount / price).quantize(FRACTION_STEP, rounding=ROUND_DOWN)
        status, message, avg_price = "filled", "", price
        if fault == "reject":
            status, message, avg_price = "rejected", "SIMULATED rejection: order refused by the broker", None
        elif fault == "delayed_fill":
            status = "submitted"
        elif quantity <= 0:
            status, message, avg_price = "rejected", "quantity must be positive", None
        broker_order_id = "SIM-" + hashlib.sha256(order.order_ref.encode()).hexdigest()[:10]
        try:
            with self._book() as db:
                db.execute(
                    "INSERT INTO orders VALUES (?,?,?,?,?,?,?,?,?)",
                    (order.order_ref, broker_order_id, order.symbol, str(quantity),
                     None if order.cash_amount is None else str(order.cash_amount), status,
                     None if avg_price is None else str(avg_price), now.isoformat(), message),
                )
        except sqlite3.IntegrityError:
            raise OrderRejected(f"Local order ID={order.order_ref} is already registered (SIMULATED)") from None
        if fault == "crash_after_accept":
            os.kill(os.getpid(), signal.SIGKILL)
        if fault == "timeout_after_accept":
            raise OrderInDoubt("SIMULATED read timeout after the order was sent")
        if status == "rejected":
            raise OrderRejected(message)
        with self._book() as db:
            return _order(db.execute("SELECT * FROM orders WHERE order_ref=?", (order.order_ref,)).fetchone())

    def find_order(self, order_ref: str) -> BrokerOrder | None:
        with self._book() as db:
            # A delayed fill completes by the time anyone asks again.
            db.execute("UPDATE orders SET status='filled' WHERE order_ref=? AND status='submitted'", (order_ref,))
            r = db.execute("SELECT * FROM orders WHERE order_ref=?", (order_ref,)).fetchone()
        return None if r is None else _order(r)

    def orders(self) -> list[BrokerOrder]:
        with self._book() as db:
            rows = db.execute("SELECT * FROM orders ORDER BY placed_at, rowid").fetchall()
        return [_order(r) for r in rows]


def _order(r: sqlite3.Row) -> BrokerOrder:
    return BrokerOrder(
        order_ref=r["order_ref"],
        symbol=r["symbol"],
        quantity=Decimal(r["quantity"]),
        status=r["status"],
        broker_order_id=r["broker_order_id"],
        avg_price=None if r["avg_price"] is None else Decimal(r["avg_price"]),
        placed_at=datetime.fromisoformat(r["placed_at"]),
        message=r["message"],
    )
