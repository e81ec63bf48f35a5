"""What a person wants to see of the ledger's history: filters and the figures behind the
charts an investing tool shows, shared by every face.

Everything is asked of SQLite, filtered and grouped there: a ledger of 100,000 executions
is never read whole to draw a chart. What comes back is small: one line per symbol and
day bought, one count per outcome, the latest executions for a table. Money is summed as
Decimal from the ledger's own text, so the figures add up to the cent with the ledger."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from dca.domain import CENT, Outcome
from dca.execution import Execution
from dca.ledger import Ledger, _decimal_sum, _from_row  # the ledger's own readers, so the shapes cannot drift

NOT_BOUGHT = (Outcome.FAILED, Outcome.SKIPPED, Outcome.MISSED, Outcome.ERROR)


@dataclass(frozen=True)
class HistoryFilter:
    """By scheduled date (New York, both ends included), symbol and outcome; empty
    `symbols`/`statuses` mean all."""

    start: date | None = None
    end: date | None = None
    symbols: tuple[str, ...] = ()
    statuses: tuple[str, ...] = ()

    def where(self, *extra: str, by_time: bool = False) -> tuple[str, list]:
        """The SQL WHERE clause and its arguments. `by_time`: the dates as a range of
        `scheduled_at` (its local New York date is the scheduled date), so a query in time
        order walks one index for both."""
        clauses, args = list(extra), []
        column = "scheduled_at" if by_time else "scheduled_date"
        if self.start:
            clauses.append(f"{column} >= ?")
            args.append(self.start.isoformat())
        if self.end:
            clauses.append(f"{column} < ?" if by_time else f"{column} <= ?")
            args.append((self.end + timedelta(days=1) if by_time else self.end).isoformat())
        for column, values in (("symbol", self.symbols), ("status", self.statuses)):
            if values:
                clauses.append(f"{column} IN ({','.join('?' * len(values))})")
                args.extend(values)
        return (" WHERE " + " AND ".join(clauses)) if clauses else "", args


EVERYTHING = HistoryFilter()


@dataclass(frozen=True)
class HistorySpan:
    """What the ledger holds at all: for the filters' choices."""

    count: int
    first: date | None
    last: date | None
    symbols: tuple[str, ...]


def history_span(ledger: Ledger) -> HistorySpan:
    with ledger._connect() as db:
        count, first, last = db.execute(
            "SELECT count(*), min(scheduled_date), max(scheduled_date) FROM executions").fetchone()
        symbols = tuple(r[0] for r in db.execute("SELECT DISTINCT symbol FROM executions ORDER BY symbol"))
    return HistorySpan(count, first and date.fromisoformat(first), last and date.fromisoformat(last), symbols)


def outcome_counts(ledger: Ledger, chosen: HistoryFilter = EVERYTHING) -> dict[str, int]:
    clause, args = chosen.where()
    with ledger._connect() as db:
        return {r[0]: r[1] for r in db.execute(
            f"SELECT status, count(*) FROM executions{clause} GROUP BY status ORDER BY status", args)}


def latest(ledger: Ledger, chosen: HistoryFilter = EVERYTHING, limit: int = 2_000) -> list[Execution]:
    """The newest `limit` executions chosen, newest first (a history table's order)."""
    clause, args = chosen.where(by_time=True)
    with ledger._connect() as db:
        rows = db.execute(f"SELECT * FROM executions{clause} ORDER BY scheduled_at DESC, id DESC LIMIT ?",
                          [*args, limit]).fetchall()
    return [_from_row(r) for r in rows]


def every(ledger: Ledger, chosen: HistoryFilter = EVERYTHING) -> Iterator[Execution]:
    """Every execution chosen, oldest first, one at a time (a CSV of them all)."""
    clause, args = chosen.where(by_time=True)
    with ledger._connect() as db:
        cursor = db.execute(f"SELECT * FROM executions{clause} ORDER BY scheduled_at, id", args)
        while batch := cursor.fetchmany(1_000):
            yield from (_from_row(r) for r in batch)


@dataclass(frozen=True)
class DayBought:
    """What one symbol's fills of one day cost, and the shares they bought."""

    day: date
    symbol: str
    cost: Decimal
    quantity: Decimal

    @property
    def price_paid(self) -> Decimal:
        """The day's average price per share."""
        return (self.cost / self.quantity).quantize(CENT)


def bought_per_day(ledger: Ledger, chosen: HistoryFilter = EVERYTHING) -> list[DayBought]:
    """Filled executions with what they actually cost, per day and symbol, oldest first.
    SQLite groups them; the sums are Decimal, from the ledger's own text (SQLite would add
    the costs as floating point)."""
    clause, args = chosen.where("status = 'filled'", "cost IS NOT NULL", "quantity IS NOT NULL")
    with ledger._connect() as db:
        cursor = db.execute(f"SELECT scheduled_date, symbol, group_concat(cost), group_concat(quantity)"
                            f" FROM executions{clause} GROUP BY scheduled_date, symbol"
                            " ORDER BY scheduled_date, symbol", args)
        cursor.row_factory = None  # plain tuples
        days = cursor.fetchall()
    bought = [DayBought(date.fromisoformat(day), symbol, _decimal_sum(costs), _decimal_sum(quantities))
              for day, symbol, costs, quantities in days]
    return [b for b in bought if b.quantity]


@dataclass(frozen=True)
class InvestedPoint:
    day: date
    symbol: str
    invested: Decimal  # cumulative, to the end of that day


def cumulative_invested(bought: list[DayBought]) -> list[InvestedPoint]:
    totals: dict[str, Decimal] = defaultdict(Decimal)
    points = []
    for b in bought:
        totals[b.symbol] += b.cost
        points.append(InvestedPoint(b.day, b.symbol, totals[b.symbol]))
    return points


def invested_per_month(bought: list[DayBought]) -> dict[tuple[str, str], Decimal]:
    """(YYYY-MM, symbol) -> dollars bought in that month."""
    months: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    for b in bought:
        months[(f"{b.day:%Y-%m}", b.symbol)] += b.cost
    return dict(months)


@dataclass(frozen=True)
class PricePoint:
    day: date
    symbol: str
    price_paid: Decimal  # the day's average price per share
    average_price: Decimal  # what all the symbol's shares so far cost on average


def average_prices(bought: list[DayBought]) -> list[PricePoint]:
    """Per symbol, the price paid against the running average cost per share: the
    dollar-cost-averaging picture (the average sits below most of the prices paid when
    prices move)."""
    spent: dict[str, Decimal] = defaultdict(Decimal)
    shares: dict[str, Decimal] = defaultdict(Decimal)
    points = []
    for b in bought:
        spent[b.symbol] += b.cost
        shares[b.symbol] += b.quantity
        points.append(PricePoint(b.day, b.symbol, b.price_paid, (spent[b.symbol] / shares[b.symbol]).quantize(CENT)))
    return points


def not_bought(counts: dict[str, int]) -> int:
    return sum(counts.get(str(o), 0) for o in NOT_BOUGHT)

