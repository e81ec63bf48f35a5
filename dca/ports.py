"""The small interfaces the engine depends on. Adapters implement them at the edge."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Mapping, Protocol

from dca.domain import ParsedPlan


class TradingCalendar(Protocol):
    def sessions(self, start: date, end: date) -> list[date]:
        """Trading days in the inclusive range, ascending."""
        ...


class PlanSource(Protocol):
    description: str

    def load(self) -> ParsedPlan:
        """Read and parse the plan; raises PlanError when it cannot be read at all."""
        ...

    def assign_ids(self, ids_by_row: Mapping[int, str]) -> None:
        """Durably store new IDs (row number -> ID); raises PlanError if it cannot."""
        ...

    def write_logs(self, lines_by_id: Mapping[str, str]) -> set[str]:
        """Write Log cells by row ID; returns the IDs found in the plan (and written)."""
        ...


@dataclass(frozen=True)
class OrderRequest:
    order_ref: str  # the client order id: one per (row, scheduled date)
    symbol: str
    quantity: Decimal
    cash_amount: Decimal | None = None  # when set, buy this many dollars instead


@dataclass(frozen=True)
class BrokerOrder:
    """An order as the broker reports it."""

    order_ref: str
    symbol: str
    quantity: Decimal
    status: str  # filled | submitted | rejected | cancelled
    broker_order_id: str | None = None
    avg_price: Decimal | None = None
    placed_at: datetime | None = None
    message: str = ""

    def as_dict(self) -> dict:
        return {
            "order_ref": self.order_ref,
            "broker_order_id": self.broker_order_id,
            "symbol": self.symbol,
            "quantity": str(self.quantity),
            "status": self.status,
            "avg_price": None if self.avg_price is None else str(self.avg_price),
            "placed_at": None if self.placed_at is None else self.placed_at.isoformat(),
            "message": self.message,
        }


class Broker(Protocol):
    name: str
    simulated: bool
    supports_fractional: bool

    def quote(self, symbol: str, now: datetime) -> Decimal:
        """A current price; raises BrokerError (e.g. unknown symbol)."""
        ...

    def submit(self, order: OrderRequest, now: datetime) -> BrokerOrder:
        """Place a buy. Raises OrderRejected, BrokerUnavailable (not received) or
        anything else when the outcome is in doubt. Never retries by itself."""
        ...

    def find_order(self, order_ref: str) -> BrokerOrder | None:
        """The order with this client order id, or None if the broker never had it."""
        ...

    def orders(self) -> list[BrokerOrder]: ...


class Notifier(Protocol):
    description: str

    def send(self, text: str) -> None:
        """Deliver one message; raises on failure so the outbox keeps it."""
        ...
