"""A SIMULATED broker: deterministic prices, a durable order book, no real money.

Two modes. The *simple* one (the embedded default) fills at once at the quote and its
book is complete and instant: every lookup is found or provably absent. The *realistic*
one behaves the way IBKR's Client Portal does where exactly-once depends on it (see
shared/notes/ibkr-client-portal.md): the order list warms up after a (re)start and lags
behind a submit, covers the current New York day (fills: seven days), refuses a duplicate
client order id, holds an order placed before 09:30 as PreSubmitted and fills it at the
open at a price that differs from the 09:00 quote (the previous close), fills some orders
in part, and has no or delayed quotes for some symbols. Its randomness is a hash of the
order and day, so a scenario replays exactly.

Both keep the book apart from the ledger, so crash reconciliation is exercised for real.
Faults can be switched on per symbol for tests and demonstrations.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import signal
import sqlite3
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from decimal import ROUND_DOWN, Decimal
from pathlib import Path
from typing import Iterator, Mapping, Sequence

from dca.domain import CENT, FRACTION_STEP
from dca.errors import BrokerUnavailable, DuplicateOrderRef, OrderInDoubt, OrderRejected
from dca.ports import (
    Account,
    BrokerOrder,
    Found,
    LookupQuery,
    OrderLookup,
    OrderRequest,
    OrderState,
    Position,
    PriceKind,
    Quote,
    Readiness,
)
from dca.schedule_rules import NEW_YORK
from dca.sqlite_conn import ThreadConnections

# Faults a person may switch on (DCA_SIM_FAULTS), with the calls each one affects.
FAULTS = {
    "reject": "the order is refused",
    "unavailable": "the broker cannot be reached; nothing is received",
    "logged_out": "the broker session is not logged in; nothing can be ordered",
    "error_before_accept": "the call fails before the broker records the order",
    "timeout_after_accept": "the broker records the order, then the reply is lost",
    "no_quote": "no price is available for the symbol",
    "delayed_fill": "the order is accepted unfilled; it fills when the broker is next asked",
}
# Only tests may kill the process; a setting must never be able to.
TEST_FAULTS = {
    "crash_before_accept": "the process is killed before the order is recorded",
    "crash_after_accept": "the process is killed after the order is recorded",
}
_CALLS = {"no_quote": "quote", "unavailable": "any", "logged_out": "readiness"}

MARKET_OPEN, MARKET_CLOSE = time(9, 30), time(16, 0)
FILLS_KEPT = timedelta(days=7)  # like iserver/account/trades
LAG_AT_MOST = timedelta(minutes=1)


def simulated_price(symbol: str, day) -> Decimal:
    """A stable price per symbol and New York date: $10-$610, moving up to ±3% a day."""
    base = int.from_bytes(hashlib.sha256(symbol.encode()).digest()[:4], "big") % 60000 / 100 + 10
    wobble = int.from_bytes(hashlib.sha256(f"{symbol}|{day}".encode()).digest()[:4], "big") % 601 - 300
    return (Decimal(str(base)) * (1 + Decimal(wobble) / 10000)).quantize(Decimal("0.01"))


def _unit(*parts: object) -> float:
    """A number in [0, 1) fixed by its inputs: the simulation's only source of chance."""
    digest = hashlib.sha256("|".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


@dataclass(frozen=True)
class RealisticWorld:
    """How far the realistic simulation departs from an ideal broker."""

    lag_lookups: int = 2  # a new order is invisible to this many lookups that ask for it
    warm_up: bool = True  # the first lookup after a (re)start sees no orders at all
    max_open_move: Decimal = Decimal("0.03")  # the open vs the previous close, either way
    partial_share: float = 0.25  # orders that fill only in part at first
    partial_cancel_share: float = 0.5  # of those, the ones whose rest is cancelled at the close
    no_quote_share: float = 0.0  # symbols with no market data on a given day
    delayed_quote_share: float = 0.3  # symbols whose quote is delayed
    fractional_share: float = 0.5  # symbols that take cash-amount orders
    settle_seconds: float = 5.0
    # An adapter whose settle time is too short believes an order list that still lags:
    # it then calls a lagging order absent, and only the broker's refusal of the
    # duplicate client order id stands between a resend and a second order.
    absent_while_lagging: bool = False


class SimulatedBroker:
    simulated = True
    account_kind = "SIMULATED"  # what notifications say it concerns (no real money)

    def __init__(
        self,
        book_path: Path,
        fractional: bool = False,
        faults: Mapping[str, str] | None = None,
        realistic: RealisticWorld | None = None,
    ):
        """`faults` maps a symbol (or '*') to a fault name, optionally ':N' to fault only
        the first N calls it affects in this process."""
        self.book_path = Path(book_path)
        self.fractional = fractional
        self.world = realistic
        self.name = "SIMULATED broker" + (" (realistic)" if realistic else "")
        self.settle_seconds = realistic.settle_seconds if realistic else 0.0
        self._faults: dict[str, list] = {}
        for symbol, spec in (faults or {}).items():
            kind, _, count = spec.partition(":")
            if kind not in FAULTS and kind not in TEST_FAULTS:
                raise ValueError(f"unknown simulated fault '{kind}'; choose from {', '.join(FAULTS)}")
            self._faults[symbol.upper()] = [kind, int(count) if count else None]
        self.refused_duplicates = 0  # submits refused for an id already in the book
        self._latest_at: datetime | None = None
        self.book_path.parent.mkdir(parents=True, exist_ok=True)
        self._connections = ThreadConnections(self.book_path)
        with self._book() as db:
            db.execute(
                "CREATE TABLE IF NOT EXISTS orders (order_ref TEXT PRIMARY KEY, broker_order_id TEXT NOT NULL,"
                " symbol TEXT NOT NULL, quantity TEXT NOT NULL, cash_amount TEXT, status TEXT NOT NULL,"
                " avg_price TEXT, placed_at TEXT NOT NULL, message TEXT NOT NULL DEFAULT '',"
                " lookups INTEGER NOT NULL DEFAULT 0)"
            )
            # The gateway's session, which outlives our process: its order list warms up
            # once after it (re)starts, not every time dca starts.
            db.execute("CREATE TABLE IF NOT EXISTS session (warmed INTEGER NOT NULL)")
            if db.execute("SELECT COUNT(*) FROM session").fetchone()[0] == 0:
                db.execute("INSERT INTO session VALUES (?)", (0 if realistic and realistic.warm_up else 1,))

    @contextlib.contextmanager
    def _book(self) -> Iterator[sqlite3.Connection]:
        # NORMAL sync survives our process being killed, which is what the crash tests
        # exercise; a simulation has no real orders to protect against a power cut.
        yield self._connections.get()

    def _fault(self, symbol: str, call: str) -> str | None:
        entry = self._faults.get(symbol) or self._faults.get("*")
        if entry is None or entry[1] == 0:
            return None
        affects = _CALLS.get(entry[0], "submit")
        if affects not in (call, "any"):
            return None
        if entry[1] is not None:
            entry[1] -= 1
        return entry[0]

    def _seen(self, at: datetime) -> None:
        if self._latest_at is None or at > self._latest_at:
            self._latest_at = at

    # -- the port ---------------------------------------------------------------------------

    def readiness(self, at: datetime) -> Readiness:
        if self._fault("*", "readiness") == "logged_out":
            return Readiness(False, "the SIMULATED broker session is logged out (fault logged_out); "
                                    "remove DCA_SIM_FAULTS to log it in")
        return Readiness(True)

    def quotes(self, symbols: Sequence[str], at: datetime) -> dict[str, Quote]:
        self._seen(at)
        answers = {}
        for symbol in symbols:
            fault = self._fault(symbol, "quote")
            if fault == "unavailable":
                raise BrokerUnavailable("SIMULATED broker is unreachable")
            if fault == "no_quote":
                answers[symbol] = Quote(symbol, None, problem=f"no market data for {symbol} (SIMULATED)")
                continue
            answers[symbol] = self._quote(symbol, at)
        return answers

    def _quote(self, symbol: str, at: datetime) -> Quote:
        day = at.astimezone(NEW_YORK).date()
        if self.world is None:
            return Quote(symbol, simulated_price(symbol, day), PriceKind.LAST, at, self.fractional)
        w = self.world
        fractional = _unit("fractional", symbol) < w.fractional_share
        if _unit("no quote", symbol, day) < w.no_quote_share:
            return Quote(symbol, None, fractional=fractional, problem=f"no market data for {symbol} today (SIMULATED)")
        delayed = _unit("delayed", symbol) < w.delayed_quote_share
        if at.astimezone(NEW_YORK).time() < MARKET_OPEN:
            return Quote(symbol, self._previous_close(symbol, day), PriceKind.PREVIOUS_CLOSE,
                         at, fractional)
        return Quote(symbol, self._open_price(symbol, day), PriceKind.DELAYED if delayed else PriceKind.LAST,
                     at, fractional)

    def submit(self, order: OrderRequest, at: datetime) -> BrokerOrder:
        self._seen(at)
        fault = self._fault(order.symbol, "submit")
        if fault == "unavailable":
            raise BrokerUnavailable("SIMULATED broker is unreachable")
        if fault == "error_before_accept":
            raise OrderInDoubt("SIMULATED connection reset while sending the order")
        if fault == "crash_before_accept":
            os.kill(os.getpid(), signal.SIGKILL)
        if order.cash_amount is not None and self.world is not None and not self._takes_cash(order.symbol):
            raise OrderRejected(f"cash-amount orders are not accepted for {order.symbol} (SIMULATED)")
        status, message = ("accepted" if self.world else "filled"), ""
        if fault == "reject":
            status, message = "rejected", "SIMULATED rejection: order refused by the broker"
        elif fault == "delayed_fill":
            status = "working"
        elif order.quantity <= 0 and order.cash_amount is None:
            status, message = "rejected", "quantity must be positive"
        day = at.astimezone(NEW_YORK).date()
        price = simulated_price(order.symbol, day) if self.world is None else None
        quantity = order.quantity
        if order.cash_amount is not None and price is not None:
            quantity = (order.cash_amount / price).quantize(FRACTION_STEP, rounding=ROUND_DOWN)
        broker_order_id = "SIM-" + hashlib.sha256(order.order_ref.encode()).hexdigest()[:10]
        try:
            with self._book() as db:
                db.execute(
                    "INSERT INTO orders VALUES (?,?,?,?,?,?,?,?,?,0)",
                    (order.order_ref, broker_order_id, order.symbol, str(quantity),
                     None if order.cash_amount is None else str(order.cash_amount), status,
                     None if price is None or status == "rejected" else str(price), at.isoformat(), message),
                )
        except sqlite3.IntegrityError:
            self.refused_duplicates += 1
            raise DuplicateOrderRef(f"Local order ID={order.order_ref} is already registered (SIMULATED)") from None
        if fault == "crash_after_accept":
            os.kill(os.getpid(), signal.SIGKILL)
        if fault == "timeout_after_accept":
            raise OrderInDoubt("SIMULATED read timeout after the order was sent")
        if status == "rejected":
            raise OrderRejected(message)
        return self._state(self._row(order.order_ref), at)

    def find_orders(self, queries: Sequence[LookupQuery], at: datetime) -> dict[str, OrderLookup]:
        self._seen(at)
        if queries and self._fault("*", "lookup") == "unavailable":
            raise BrokerUnavailable("SIMULATED broker is unreachable")
        with self._book() as db:
            warming = not db.execute("SELECT warmed FROM session").fetchone()[0]
            db.execute("UPDATE session SET warmed=1")
        answers = {}
        for q in queries:
            answers[q.order_ref] = self._lookup(q, at, warming)
        return answers

    def _lookup(self, q: LookupQuery, at: datetime, warming: bool) -> OrderLookup:
        row = self._row(q.order_ref)
        if self.world is None:
            if row is None:
                return OrderLookup(Found.ABSENT)
            if row["status"] == "working":  # a delayed fill completes by the time anyone asks
                with self._book() as db:
                    db.execute("UPDATE orders SET status='filled' WHERE order_ref=?", (q.order_ref,))
                row = self._row(q.order_ref)
            return OrderLookup(Found.FOUND, self._state(row, at))
        if warming:
            return OrderLookup(Found.UNKNOWN, reason="the broker's order list is warming up after a restart")
        today = at.astimezone(NEW_YORK).date()
        settled = (at - q.last_attempt_at).total_seconds() >= self.world.settle_seconds
        if row is not None:
            placed_day = _placed(row).astimezone(NEW_YORK).date()
            # Listed after a few lookups, or a minute at most.
            lagging = (placed_day == today and row["lookups"] < self.world.lag_lookups
                       and at - _placed(row) < LAG_AT_MOST)
            with self._book() as db:
                db.execute("UPDATE orders SET lookups=lookups+1 WHERE order_ref=?", (q.order_ref,))
            if lagging:
                # Not listed yet. An honest adapter cannot tell this from absent, so it
                # says unknown; a too-trusting one (absent_while_lagging) says absent.
                if self.world.absent_while_lagging and settled:
                    return OrderLookup(Found.ABSENT)
                return OrderLookup(Found.UNKNOWN, reason="the broker's order list lags behind the submit")
            order = self._state(row, at)
            # Live (still working) orders are listed whatever day they were placed; final
            # ones only on their day, and fills for seven days.
            if (not order.state.is_final or placed_day == today
                    or (order.filled_quantity > 0 and at - _placed(row) <= FILLS_KEPT)):
                return OrderLookup(Found.FOUND, order)
            if at - _placed(row) > FILLS_KEPT:
                return OrderLookup(Found.UNKNOWN, reason="older than the broker's seven days of fills")
            return OrderLookup(Found.ABSENT)  # an unfilled DAY order of an earlier day: nothing bought
        if at - q.last_attempt_at > FILLS_KEPT:
            return OrderLookup(Found.UNKNOWN, reason="older than the broker's seven days of fills")
        if q.last_attempt_at.astimezone(NEW_YORK).date() == today and not settled:
            return OrderLookup(Found.UNKNOWN, reason="the broker's order list may not show a new order yet")
        return OrderLookup(Found.ABSENT)

    def restart_session(self) -> None:
        """The gateway restarts (e.g. its nightly reset): its order list warms up again."""
        if self.world is not None and self.world.warm_up:
            with self._book() as db:
                db.execute("UPDATE session SET warmed=0")

    def orders(self, at: datetime | None = None) -> list[BrokerOrder]:
        """Every order in the book, as of `at` (default: the latest moment it was asked)."""
        at = at or self._latest_at or datetime.now(NEW_YORK)
        with self._book() as db:
            rows = db.execute("SELECT * FROM orders ORDER BY placed_at, rowid").fetchall()
        return [self._state(r, at) for r in rows]

    def account(self, at: datetime) -> Account:
        """Positions from the book's fills, valued at today's simulated price. Cash is not
        tracked (the simulation has no deposits), so cash and net liquidation are None."""
        held: dict[str, list[Decimal]] = {}
        for order in self.orders(at):
            if order.filled_quantity > 0:
                position = held.setdefault(order.symbol, [Decimal("0"), Decimal("0")])
                position[0] += order.filled_quantity
                position[1] += order.fill_cost
        day = at.astimezone(NEW_YORK).date()
        positions = tuple(
            Position(symbol, quantity, cost.quantize(CENT), (quantity * simulated_price(symbol, day)).quantize(CENT))
            for symbol, (quantity, cost) in sorted(held.items()))
        return Account(None, None, positions, note="SIMULATED broker: positions are its own fills; cash is not "
                                                   "tracked, so cash and net liquidation are not known")

    # -- the simulated market -------------------------------------------------------------

    def _takes_cash(self, symbol: str) -> bool:
        return self.world is None or _unit("fractional", symbol) < self.world.fractional_share

    def _previous_close(self, symbol: str, day) -> Decimal:
        return simulated_price(symbol, day - timedelta(days=1))

    def _open_price(self, symbol: str, day) -> Decimal:
        move = (2 * _unit("open", symbol, day) - 1) * float(self.world.max_open_move)
        return (self._previous_close(symbol, day) * (1 + Decimal(str(round(move, 6))))).quantize(CENT)

    def _row(self, order_ref: str) -> sqlite3.Row | None:
        with self._book() as db:
            return db.execute("SELECT * FROM orders WHERE order_ref=?", (order_ref,)).fetchone()

    def _state(self, r: sqlite3.Row, at: datetime) -> BrokerOrder:
        """The order as of `at`: in the realistic mode its fills follow from the clock."""
        common = dict(order_ref=r["order_ref"], symbol=r["symbol"], broker_order_id=r["broker_order_id"],
                      placed_at=_placed(r), message=r["message"],
                      cash_amount=None if r["cash_amount"] is None else Decimal(r["cash_amount"]))
        quantity = Decimal(r["quantity"])
        status = r["status"]
        if status == "rejected":
            return BrokerOrder(quantity=quantity, state=OrderState.REJECTED, broker_status="Inactive", **common)
        if self.world is None or status != "accepted":
            price = None if r["avg_price"] is None else Decimal(r["avg_price"])
            if status == "filled":
                return BrokerOrder(quantity=quantity, state=OrderState.FILLED, filled_quantity=quantity,
                                   avg_price=price, commission=Decimal("0"), broker_status="Filled", **common)
            return BrokerOrder(quantity=quantity, state=OrderState.WORKING, broker_status="Submitted", **common)
        return self._realistic_state(r, at, common)

    def _realistic_state(self, r: sqlite3.Row, at: datetime, common: dict) -> BrokerOrder:
        placed = _placed(r).astimezone(NEW_YORK)
        day = placed.date()
        opens = datetime.combine(day, MARKET_OPEN, tzinfo=NEW_YORK)
        closes = datetime.combine(day, MARKET_CLOSE, tzinfo=NEW_YORK)
        if placed >= closes:
            # Placed after the close: held (PreSubmitted) for the next weekday's open, as a
            # DAY order outside regular hours is. (Holidays are not modelled.)
            day = day + timedelta(days=1)
            while day.weekday() >= 5:
                day += timedelta(days=1)
            opens = datetime.combine(day, MARKET_OPEN, tzinfo=NEW_YORK)
            closes = datetime.combine(day, MARKET_CLOSE, tzinfo=NEW_YORK)
        fills_at = max(placed, opens)
        price = self._open_price(r["symbol"], day)
        if r["cash_amount"] is not None:
            quantity = (Decimal(r["cash_amount"]) / price).quantize(FRACTION_STEP, rounding=ROUND_DOWN)
        else:
            quantity = Decimal(r["quantity"])
        commission = max(Decimal("1.00"), (quantity * Decimal("0.005")).quantize(CENT)).min(
            (quantity * price * Decimal("0.01")).quantize(CENT))
        partial = _unit("partial", r["order_ref"]) < self.world.partial_share
        if at < fills_at:
            if at >= closes:
                return BrokerOrder(quantity=quantity, state=OrderState.CANCELLED, broker_status="Cancelled",
                                   **{**common, "message": "expired unfilled at the close (DAY order)"})
            return BrokerOrder(quantity=quantity, state=OrderState.WORKING,
                               broker_status="PreSubmitted" if at < opens else "Submitted", **common)
        if not partial:
            return BrokerOrder(quantity=quantity, state=OrderState.FILLED, filled_quantity=quantity,
                               avg_price=price, commission=commission, broker_status="Filled", **common)
        step = FRACTION_STEP if r["cash_amount"] is not None else Decimal("1")
        first = (quantity / 2).quantize(step, rounding=ROUND_DOWN)
        if first <= 0:
            first = quantity
        cancel_rest = _unit("cancel rest", r["order_ref"]) < self.world.partial_cancel_share
        rest_at = fills_at + timedelta(hours=1)
        if first == quantity or (not cancel_rest and at >= rest_at):
            return BrokerOrder(quantity=quantity, state=OrderState.FILLED, filled_quantity=quantity,
                               avg_price=price, commission=commission, broker_status="Filled", **common)
        if cancel_rest and at >= closes:
            return BrokerOrder(quantity=quantity, state=OrderState.CANCELLED, filled_quantity=first,
                               avg_price=price, commission=commission, broker_status="Cancelled",
                               **{**common, "message": "the rest expired unfilled at the close (DAY order)"})
        return BrokerOrder(quantity=quantity, state=OrderState.PARTIAL, filled_quantity=first,
                           avg_price=price, commission=commission, broker_status="Submitted", **common)


def _placed(r: sqlite3.Row) -> datetime:
    return datetime.fromisoformat(r["placed_at"])

