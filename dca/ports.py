"""The small interfaces the engine depends on. Adapters implement them at the edge.

The Broker port is shaped by what a real broker can say, not by what the simulated one
happens to know: an order lookup can come back *unknown* (the broker's list lags, or does
not reach back that far), a submission can be refused because the client order id is
already registered (which means the broker *has* the order), orders work for a while
before they fill (or fill in part), and a price has a kind and an age.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Mapping, Protocol, Sequence, runtime_checkable

from dca.domain import ParsedPlan


class TradingCalendar(Protocol):
    def sessions(self, start: date, end: date) -> list[date]:
        """Trading days in the inclusive range, ascending."""
        ...


class PlanSource(Protocol):
    description: str

    def load(self) -> ParsedPlan:
        """Read and parse the plan, with the `version` it was read at; raises PlanError
        when it cannot be read at all."""
        ...

    def assign_ids(self, ids_by_row: Mapping[int, str], version: str | None) -> ParsedPlan:
        """Durably store new IDs (row number -> ID) in the plan as it was at `version`
        (row numbers mean nothing in another one), then read it again to confirm each ID
        is on the row it was meant for, and return that plan. Raises PlanError if the
        plan changed since `version`, or the IDs cannot be stored and confirmed."""
        ...

    def write_logs(self, lines_by_id: Mapping[str, str], history: Sequence[HistoryEntry] = (),
                   maybe_written: bool = False) -> set[str]:
        """Write Log cells by row ID, found where they are at the time of writing (never by
        row number), and append `history` where the source keeps one. `maybe_written`: an
        earlier attempt may have been applied, so entries already there are not added
        again. Returns the IDs found in the plan (and written)."""
        ...


@dataclass(frozen=True)
class HistoryEntry:
    """One outcome, as a plan source's History keeps it. `key` (row ID, scheduled date,
    status) identifies it, so a write that may have been applied is not appended twice."""

    time: str  # when the outcome was recorded, New York time
    scheduled: str  # the execution's scheduled date, YYYY-MM-DD
    row_id: str
    symbol: str
    amount: str
    quantity: str
    price: str
    status: str
    order_ref: str
    message: str

    @property
    def key(self) -> str:
        return f"{self.row_id}|{self.scheduled}|{self.status}"


class Clock(Protocol):
    """Elapsed time and waiting, for the back-off between a doubtful submit and the
    lookup that settles it. The run's own moment (`now`) is passed in separately, so
    time travel and waiting never mix; tests give a clock whose sleep advances at once."""

    def monotonic(self) -> float: ...

    def sleep(self, seconds: float) -> None: ...


@dataclass(frozen=True)
class OrderRequest:
    order_ref: str  # the client order id: one per (row, scheduled date)
    symbol: str
    quantity: Decimal
    cash_amount: Decimal | None = None  # when set, buy this many dollars instead


class OrderState(enum.StrEnum):
    """Where an order stands at the broker, in the engine's terms."""

    WORKING = "working"  # accepted, nothing filled yet (pending, pre-submitted, submitted)
    PARTIAL = "partial"  # still working, part of it filled
    FILLED = "filled"  # final: all of it filled
    CANCELLED = "cancelled"  # final: cancelled or expired, possibly after a partial fill
    REJECTED = "rejected"  # final: refused, nothing filled

    @property
    def is_final(self) -> bool:
        return self in (OrderState.FILLED, OrderState.CANCELLED, OrderState.REJECTED)


@dataclass(frozen=True)
class BrokerOrder:
    """An order as the broker reports it."""

    order_ref: str
    symbol: str
    quantity: Decimal  # ordered (for a cash order: the broker's estimate)
    state: OrderState
    filled_quantity: Decimal = Decimal("0")
    avg_price: Decimal | None = None  # of what has filled
    commission: Decimal | None = None
    cash_amount: Decimal | None = None
    broker_order_id: str | None = None
    broker_status: str = ""  # the broker's own word for it, e.g. PreSubmitted
    placed_at: datetime | None = None
    message: str = ""

    @property
    def fill_cost(self) -> Decimal:
        """What the filled part cost, to the cent (commission not included)."""
        if not self.filled_quantity or self.avg_price is None:
            return Decimal("0.00")
        return (self.filled_quantity * self.avg_price).quantize(Decimal("0.01"))

    def as_dict(self) -> dict:
        def s(v):
            return None if v is None else str(v)

        return {
            "order_ref": self.order_ref,
            "broker_order_id": self.broker_order_id,
            "symbol": self.symbol,
            "quantity": str(self.quantity),
            "cash_amount": s(self.cash_amount),
            "state": str(self.state),
            "broker_status": self.broker_status,
            "filled_quantity": str(self.filled_quantity),
            "avg_price": s(self.avg_price),
            "commission": s(self.commission),
            "placed_at": None if self.placed_at is None else self.placed_at.isoformat(),
            "message": self.message,
        }


class Found(enum.StrEnum):
    FOUND = "found"
    ABSENT = "absent"  # provably: the broker's list covers the attempt's time and has settled
    UNKNOWN = "unknown"  # the broker cannot tell yet (lag, warm-up, out of its window, down)


@dataclass(frozen=True)
class OrderLookup:
    found: Found
    order: BrokerOrder | None = None
    reason: str = ""  # why it is unknown, for the record and the person


@dataclass(frozen=True)
class LookupQuery:
    order_ref: str
    last_attempt_at: datetime  # when the latest attempt that may have reached the broker began


class PriceKind(enum.StrEnum):
    LAST = "last"  # a trade today, real time
    PREVIOUS_CLOSE = "previous close"  # before the open: normal at 09:00 New York
    DELAYED = "delayed"  # a delayed feed (paper accounts often have only this)


@dataclass(frozen=True)
class Quote:
    symbol: str
    price: Decimal | None  # None: no usable price; `problem` says why
    kind: PriceKind = PriceKind.LAST
    as_of: datetime | None = None
    fractional: bool = False  # the broker takes cash-amount (fractional) orders for it
    problem: str = ""
    # The broker has no such instrument (or several): an error on the plan's row, which
    # the person must fix, rather than a price that may come at the next run.
    unknown_symbol: bool = False


@dataclass(frozen=True)
class Readiness:
    ready: bool
    message: str = ""  # when not ready: what is wrong and what the person should do


class Broker(Protocol):
    name: str
    simulated: bool
    # What the account is, as the broker reports it: SIMULATED, PAPER or LIVE. Every
    # notification carries it (a broker without it counts as LIVE unless simulated).
    account_kind: str
    # Seconds after a submit before the broker's order list can be trusted to show it;
    # the engine waits at least this long before a lookup that could justify a resend.
    settle_seconds: float

    def readiness(self, at: datetime) -> Readiness:
        """Logged in and the account usable? Asked once per run before anything is sent."""
        ...

    def quotes(self, symbols: Sequence[str], at: datetime) -> Mapping[str, Quote]:
        """Prices for all the symbols in one batch; every symbol asked gets an answer.
        Raises BrokerUnavailable when the broker cannot be reached at all."""
        ...

    def submit(self, order: OrderRequest, at: datetime) -> BrokerOrder:
        """Place a buy. Raises OrderRejected (received and refused), DuplicateOrderRef
        (the client order id is already registered: the broker has an order under it),
        BrokerUnavailable (provably not received), or anything else when the outcome is
        in doubt. Never retries by itself."""
        ...

    def find_orders(self, queries: Sequence[LookupQuery], at: datetime) -> Mapping[str, OrderLookup]:
        """Found, provably absent or unknown, for each client order id asked."""
        ...

    def orders(self) -> list[BrokerOrder]:
        """Every order the broker reports, for audit."""
        ...


# The kinds of notification, which the rules switch on and off (dca/notify/rules.py).
NOTIFICATION_KINDS = ("success", "failure", "skipped", "missed", "summary", "system")


@dataclass(frozen=True)
class Notification:
    """One outbox item, ready for a notifier: its plain line and the fields behind it."""

    kind: str  # one of NOTIFICATION_KINDS, or "test"
    text: str  # the plain line (the Log cell's line, a notice's text, the summary's line)
    account: str = "SIMULATED"  # SIMULATED | PAPER | LIVE: the account it concerns
    details: Mapping[str, Any] = field(default_factory=dict)  # the execution's fields, or the run summary
    mention: str = ""  # a user or role to mention with it (the rules decide), e.g. <@&123>


class Notifier(Protocol):
    """Delivers notifications one message at a time; the outbox (dca/delivery.py) decides
    what to send, in which order, and what to do when a message is not delivered."""

    description: str  # safe to print: never contains a secret
    identity: str  # stable per destination (a webhook is known dead by it); no secret

    def pack(self, notifications: Sequence[Notification]) -> int:
        """How many of these, from the front, fit in the next message (at least 1)."""
        ...

    def send(self, notifications: Sequence[Notification]) -> float:
        """Deliver them as one message. Returns how many seconds to wait before the next
        message (the service's rate limit, from its answer); raises NotifyError (or
        anything else, taken as temporary) when it was not delivered."""
        ...


# -- the account, for the faces (optional: a broker may not offer it) ----------------------


@dataclass(frozen=True)
class Position:
    symbol: str
    quantity: Decimal
    cost: Decimal | None = None  # what was paid for it, if the broker knows
    market_value: Decimal | None = None


@dataclass(frozen=True)
class Account:
    """Cash, net liquidation and positions, as far as the broker knows them (None: it
    does not say; `note` says why)."""

    cash: Decimal | None
    net_liquidation: Decimal | None
    positions: tuple[Position, ...] = ()
    currency: str = "USD"
    note: str = ""


@runtime_checkable
class AccountView(Protocol):
    """A broker that can show its account. Faces check for it with `isinstance`."""

    def account(self, at: datetime) -> Account: ...
