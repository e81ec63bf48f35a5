"""Carry in a person's words: a whole-share row whose amount buys less than one share
saves up ("carries") until it can buy one, so "skipped" week after week is the plan
working, not a fault. Here: the carry so far, the price of one share (the last one a run
recorded), and the projected date of the first buy.

`first_buy` is pure; `carry_notes` reads the ledger and the schedule for the pages.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from contextlib import closing
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from dca.domain import PlanRow

# How far ahead the projection looks; beyond it the page says "more than N years".
HORIZON_YEARS = 5


@dataclass(frozen=True)
class LastPrice:
    price: Decimal
    on: date


@dataclass(frozen=True)
class CarryNote:
    row: PlanRow
    carry: Decimal
    price: LastPrice
    first_buy: date | None  # None: not within the horizon

    @property
    def text(self) -> str:
        r = self.row
        saved = (f"${self.carry:,.2f} saved so far" if self.carry > 0 else "nothing saved yet")
        # "Next", not "first": a row that bought before saves up again after each buy.
        when = (f"the next buy is projected for **{self.first_buy:%a %d %b %Y}**" if self.first_buy
                else f"the next buy is more than {HORIZON_YEARS} years away at this amount")
        return (f"Row {r.row_number} {r.symbol} is saving up: ${r.amount:,.2f} {r.frequency.lower()} buys less than "
                f"one share (${self.price.price:,.2f}, the last price recorded, on {self.price.on:%d %b %Y}). "
                f"It has {saved}; {when}. Until then its runs say \"skipped\": that is the plan working.")


def first_buy(amount: Decimal, carry: Decimal, price: Decimal, dates: Iterable[date]) -> date | None:
    """The first of `dates` (the row's next scheduled ones, in order) by which the carry
    plus `amount` per date reaches one share's `price`; None if none does."""
    if amount <= 0:
        return None
    budget = carry
    for day in dates:
        budget += amount
        if budget >= price:
            return day
    return None


def is_carrying(amount: Decimal, price: Decimal | None) -> bool:
    """The row's amount alone does not buy one share (so it saves up between buys)."""
    return price is not None and 0 < amount < price


def last_prices(db_path, symbols: Iterable[str]) -> dict[str, LastPrice]:
    """The last price a run recorded for each of `symbols`: one indexed lookup each (the
    ledger's symbol index, newest first), never a read of the whole history."""
    found = {}
    try:
        with closing(sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)) as db:
            for symbol in dict.fromkeys(symbols):
                row = db.execute("SELECT price, scheduled_date FROM executions WHERE symbol = ? AND price IS NOT NULL"
                                 " ORDER BY id DESC LIMIT 1", (symbol,)).fetchone()
                if row:
                    found[symbol] = LastPrice(Decimal(row[0]), date.fromisoformat(row[1]))
    except sqlite3.Error:  # no ledger yet
        return {}
    return found


def carry_notes(rows: Sequence[PlanRow], ledger, schedule, today: date, fractional: bool = False) -> list[CarryNote]:
    """A note for each active row that is saving up for a share (none when fractional
    shares are bought: nothing is carried then)."""
    if fractional:
        return []
    active = [r for r in rows if r.active and r.row_id]
    prices = last_prices(ledger.path, (r.symbol for r in active))
    carrying = [r for r in active if is_carrying(r.amount, prices[r.symbol].price if r.symbol in prices else None)]
    carries = ledger.carries(r.row_id for r in carrying)
    notes = []
    dates_of: dict = {}  # per frequency, computed once for all rows
    for r in carrying:
        price, carry = prices[r.symbol], carries[r.row_id]
        if r.frequency not in dates_of:
            end = today + timedelta(days=366 * HORIZON_YEARS)
            dates_of[r.frequency] = schedule.between(r.frequency, today + timedelta(days=1), end)
        dates = dates_of[r.frequency]
        notes.append(CarryNote(r, carry, price, first_buy(r.amount, carry, price.price, dates)))
    return notes
