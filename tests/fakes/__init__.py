"""Fakes named after the ports they stand in for, keeping state to assert on.

`FakeBroker` is an in-memory broker with the habits of a real one that matter to
exactly-once: its order list can lag behind a submit, it can list only the current New
York day, it refuses a duplicate client order id, and its fills are set by the test.
`FakeClock` is a clock whose sleep advances at once, so back-offs cost no real time.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import ROUND_DOWN, Decimal
from typing import Sequence

from dca.errors import BrokerUnavailable, DuplicateOrderRef, OrderInDoubt, OrderRejected
from dca.ports import BrokerOrder, Found, LookupQuery, OrderLookup, OrderRequest, OrderState, PriceKind, Quote, Readiness
from dca.schedule_rules import NEW_YORK


class FakeClock:
    def __init__(self):
        self.now = 0.0
        self.slept: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


@dataclass
class FakeBroker:
    prices: dict[str, Decimal] = field(default_factory=dict)
    default_price: Decimal = Decimal("100.00")
    fractional: bool = False
    lag_lookups: int = 0  # a new order is missing from this many lookups
    lag_looks_absent: bool = False  # ...and a missing order is called absent, not unknown
    today_only: bool = False  # lookups know only orders placed on the current New York day
    fill: str = "filled"  # what a new order becomes: filled | working | rejected
    fill_price_factor: Decimal = Decimal("1")  # the fill price over the quote
    ready: bool = True
    name: str = "fake broker"
    simulated: bool = True
    settle_seconds: float = 0.0
    # Per submit call, in order: None (accept), "reject", "unavailable",
    # "error_before_accept", "timeout_after_accept".
    submit_faults: list = field(default_factory=list)
    book: dict[str, BrokerOrder] = field(default_factory=dict)
    submits: list[OrderRequest] = field(default_factory=list)
    refused_duplicates: int = 0
    lookups: list[list[str]] = field(default_factory=list)
    _looked: dict[str, int] = field(default_factory=dict)

    def price(self, symbol: str) -> Decimal:
        return self.prices.get(symbol, self.default_price)

    def readiness(self, at: datetime) -> Readiness:
        return Readiness(self.ready, "" if self.ready else "log in to the fake gateway")

    def quotes(self, symbols: Sequence[str], at: datetime) -> dict[str, Quote]:
        return {s: Quote(s, self.price(s), PriceKind.PREVIOUS_CLOSE, at, self.fractional) for s in symbols}

    def submit(self, order: OrderRequest, at: datetime) -> BrokerOrder:
        self.submits.append(order)
        fault = self.submit_faults.pop(0) if self.submit_faults else None
        if fault == "unavailable":
            raise BrokerUnavailable("fake broker unreachable")
        if fault == "error_before_accept":
            raise OrderInDoubt("connection reset")
        if order.order_ref in self.book:
            self.refused_duplicates += 1
            raise DuplicateOrderRef(f"Local order ID={order.order_ref} is already registered")
        if fault == "reject" or self.fill == "rejected":
            self.book[order.order_ref] = self._order(order, at, OrderState.REJECTED)
            raise OrderRejected("fake rejection")
        state = OrderState.FILLED if self.fill == "filled" else OrderState.WORKING
        self.book[order.order_ref] = placed = self._order(order, at, state)
        self._looked[order.order_ref] = 0
        if fault == "timeout_after_accept":
            raise OrderInDoubt("read timeout")
        return placed

    def _order(self, order: OrderRequest, at: datetime, state: OrderState) -> BrokerOrder:
        fill_price = (self.price(order.symbol) * self.fill_price_factor).quantize(Decimal("0.01"))
        quantity = order.quantity
        if order.cash_amount is not None:
            quantity = (order.cash_amount / fill_price).quantize(Decimal("0.0001"), rounding=ROUND_DOWN)
        filled = state is OrderState.FILLED
        return BrokerOrder(order.order_ref, order.symbol, quantity, state,
                           filled_quantity=quantity if filled else Decimal("0"),
                           avg_price=fill_price if filled else None, cash_amount=order.cash_amount,
                           broker_order_id=f"F{len(self.book) + 1}", placed_at=at,
                           broker_status={OrderState.FILLED: "Filled", OrderState.WORKING: "PreSubmitted",
                                          OrderState.REJECTED: "Inactive"}[state])

    def set_state(self, order_ref: str, state: OrderState, filled_quantity: Decimal | None = None,
                  avg_price: Decimal | None = None, broker_status: str = "") -> None:
        order = self.book[order_ref]
        filled = order.quantity if filled_quantity is None and state is OrderState.FILLED else filled_quantity
        self.book[order_ref] = replace(order, state=state, filled_quantity=filled or Decimal("0"),
                                       avg_price=avg_price or order.avg_price or self.price(order.symbol),
                                       broker_status=broker_status or str(state))

    def find_orders(self, queries: Sequence[LookupQuery], at: datetime) -> dict[str, OrderLookup]:
        self.lookups.append([q.order_ref for q in queries])
        today = at.astimezone(NEW_YORK).date()
        answers = {}
        for q in queries:
            order = self.book.get(q.order_ref)
            if order is not None and self._looked.get(q.order_ref, 0) < self.lag_lookups:
                self._looked[q.order_ref] += 1
                answers[q.order_ref] = OrderLookup(Found.ABSENT) if self.lag_looks_absent else OrderLookup(
                    Found.UNKNOWN, reason="the order list lags")
                continue
            if self.today_only and q.last_attempt_at.astimezone(NEW_YORK).date() != today:
                answers[q.order_ref] = OrderLookup(Found.UNKNOWN, reason="the list covers today only")
                continue
            answers[q.order_ref] = OrderLookup(Found.FOUND, order) if order else OrderLookup(Found.ABSENT)
        return answers

    def orders(self) -> list[BrokerOrder]:
        return list(self.book.values())
