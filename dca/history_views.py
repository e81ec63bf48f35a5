"""What a person wants to see of the ledger's history: filters and the figures behind the
charts an investing tool shows. Plain functions over Executions, shared by every face."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Iterable, Sequence

from dca.domain import CENT, Outcome
from dca.execution import Execution, today_in_new_york

ZERO = Decimal("0")


def filter_history(
    executions: Iterable[Execution],
    start: date | None = None,
    end: date | None = None,
    symbols: Sequence[str] = (),
    statuses: Sequence[str] = (),
) -> list[Execution]:
    """By scheduled date (New York, both ends included), symbol and status; empty
    `symbols`/`statuses` mean all."""
    chosen = []
    for e in executions:
        day = today_in_new_york(e.scheduled_at)
        if (start and day < start) or (end and day > end):
            continue
        if symbols and e.symbol not in symbols:
            continue
        if statuses and str(e.status) not in statuses:
            continue
        chosen.append(e)
    return chosen


def _bought(executions: Iterable[Execution]) -> list[Execution]:
    """Filled executions with what they actually cost, oldest first."""
    filled = [e for e in executions if e.status is Outcome.FILLED and e.cost is not None and e.quantity]
    return sorted(filled, key=lambda e: (e.scheduled_at, e.id or 0))


@dataclass(frozen=True)
class InvestedPoint:
    day: date
    symbol: str
    invested: Decimal  # cumulative, to that day


def cumulative_invested(executions: Iterable[Execution]) -> list[InvestedPoint]:
    totals: dict[str, Decimal] = defaultdict(Decimal)
    points = []
    for e in _bought(executions):
        totals[e.symbol] += e.cost
        points.append(InvestedPoint(today_in_new_york(e.scheduled_at), e.symbol, totals[e.symbol]))
    return points


def invested_per_month(executions: Iterable[Execution]) -> dict[tuple[str, str], Decimal]:
    """(YYYY-MM, symbol) -> dollars bought in that month."""
    months: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    for e in _bought(executions):
        months[(f"{today_in_new_york(e.scheduled_at):%Y-%m}", e.symbol)] += e.cost
    return dict(months)


def outcome_counts(executions: Iterable[Execution]) -> dict[str, int]:
    return dict(Counter(str(e.status) for e in executions))


@dataclass(frozen=True)
class PricePoint:
    day: date
    symbol: str
    price_paid: Decimal  # this fill's average price
    average_price: Decimal  # what all the row's shares so far cost on average


def average_prices(executions: Iterable[Execution]) -> list[PricePoint]:
    """Per symbol, each fill's price against the running average cost per share: the
    dollar-cost-averaging picture (the average sits below most of the prices paid when
    prices move)."""
    spent: dict[str, Decimal] = defaultdict(Decimal)
    shares: dict[str, Decimal] = defaultdict(Decimal)
    points = []
    for e in _bought(executions):
        spent[e.symbol] += e.cost
        shares[e.symbol] += e.quantity
        paid = e.price if e.price is not None else (e.cost / e.quantity).quantize(CENT)
        points.append(PricePoint(today_in_new_york(e.scheduled_at), e.symbol, paid,
                                 (spent[e.symbol] / shares[e.symbol]).quantize(CENT)))
    return points
