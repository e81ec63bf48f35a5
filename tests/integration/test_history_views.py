"""The history's figures, asked of SQLite (dca.history_views), against the same figures
worked out by hand from every execution: the filters, the sums to the cent, the order.
And the change counter the panel keys its caches by."""

from __future__ import annotations

import random
import sqlite3
from collections import Counter, defaultdict
from contextlib import closing
from datetime import date, datetime, time, timedelta
from decimal import Decimal

import pytest

from dca.domain import Outcome
from dca.execution import Execution
from dca.history_views import (HistoryFilter, average_prices, bought_per_day, cumulative_invested, every,
                               history_span, invested_per_month, latest, outcome_counts)
from dca.ledger import Ledger
from dca.panel.history_cache import ledger_stamp
from dca.schedule_rules import NEW_YORK

SYMBOLS = ["SPY", "VTI", "QQQ", "BRK.B"]
STATUSES = [Outcome.FILLED, Outcome.FILLED, Outcome.FILLED, Outcome.SKIPPED, Outcome.MISSED, Outcome.FAILED]


def random_history(ledger: Ledger, seed: int, count: int = 300) -> list[Execution]:
    """Executions over ~4 months, across a DST change, some at odd times (one-off buys are
    stamped when asked, late in the day), with sub-cent fill costs."""
    rng = random.Random(seed)
    made = []
    for i in range(count):
        day = date(2027, 1, 4) + timedelta(days=rng.randrange(0, 120))
        at = datetime.combine(day, time(9, 0) if rng.random() < 0.8 else time(rng.randrange(9, 24), rng.randrange(60)),
                              NEW_YORK)
        status = rng.choice(STATUSES)
        quantity = cost = price = None
        if status is Outcome.FILLED:
            quantity = Decimal(rng.randrange(1, 40)) / (Decimal(10_000) if rng.random() < 0.3 else 1)
            price = Decimal(rng.randrange(5_000, 60_000)) / 100
            cost = quantity * price  # as the broker reports it: not rounded to the cent
        e = Execution(f"r{i}", day, at, rng.choice(SYMBOLS), "Daily", Decimal("100"), status,
                      quantity=quantity, price=price, cost=cost)
        made.append(ledger.insert(e))
    return [m for m in made if m]


def chosen_by_hand(executions, f: HistoryFilter) -> list[Execution]:
    return [e for e in executions
            if (not f.start or e.scheduled_at.astimezone(NEW_YORK).date() >= f.start)
            and (not f.end or e.scheduled_at.astimezone(NEW_YORK).date() <= f.end)
            and (not f.symbols or e.symbol in f.symbols) and (not f.statuses or str(e.status) in f.statuses)]


FILTERS = [
    HistoryFilter(),
    HistoryFilter(date(2027, 2, 1), date(2027, 3, 15)),
    HistoryFilter(date(2027, 3, 14), date(2027, 3, 14)),  # the DST change, one day, both ends included
    HistoryFilter(symbols=("BRK.B", "QQQ")),
    HistoryFilter(statuses=("missed", "failed")),
    HistoryFilter(date(2027, 1, 10), date(2027, 4, 1), ("SPY",), ("filled",)),
    HistoryFilter(date(2030, 1, 1), date(2030, 2, 1)),  # nothing
]


@pytest.mark.parametrize("f", FILTERS, ids=lambda f: f"{f.start}-{f.end}-{f.symbols}-{f.statuses}")
def test_sql_figures_equal_the_figures_worked_out_by_hand(tmp_path, f):
    ledger = Ledger(tmp_path / "ledger.sqlite3")
    random_history(ledger, seed=7)
    everything = sorted(ledger.history(), key=lambda e: (e.scheduled_at, e.id))
    chosen = chosen_by_hand(everything, f)

    assert outcome_counts(ledger, f) == dict(Counter(str(e.status) for e in chosen))
    assert [e.id for e in every(ledger, f)] == [e.id for e in chosen]
    assert [e.id for e in latest(ledger, f, limit=25)] == [e.id for e in reversed(chosen[-25:])]

    per_day: dict[tuple[date, str], list[Decimal]] = defaultdict(lambda: [Decimal(0), Decimal(0)])
    for e in chosen:
        if e.status is Outcome.FILLED:
            per_day[(e.scheduled_date, e.symbol)][0] += e.cost
            per_day[(e.scheduled_date, e.symbol)][1] += e.quantity
    bought = bought_per_day(ledger, f)
    assert [(b.day, b.symbol, b.cost, b.quantity) for b in bought] == \
        [(d, s, c, q) for (d, s), (c, q) in sorted(per_day.items())]
    # To the cent and beyond: Decimal sums of the ledger's own text, not floating point.
    assert sum((b.cost for b in bought), Decimal(0)) == sum((e.cost for e in chosen if e.cost is not None), Decimal(0))
    for s in {b.symbol for b in bought}:
        mine = [e for e in chosen if e.symbol == s and e.status is Outcome.FILLED]
        assert [p for p in cumulative_invested(bought) if p.symbol == s][-1].invested == sum(e.cost for e in mine)
        last = [p for p in average_prices(bought) if p.symbol == s][-1]
        assert last.average_price == (sum(e.cost for e in mine) / sum(e.quantity for e in mine)).quantize(Decimal("0.01"))
    assert sum(invested_per_month(bought).values(), Decimal(0)) == sum(c for c, _ in per_day.values())


def test_the_span_names_what_the_ledger_holds(tmp_path):
    ledger = Ledger(tmp_path / "ledger.sqlite3")
    assert history_span(ledger).count == 0 and history_span(ledger).first is None
    made = random_history(ledger, seed=3, count=50)
    span = history_span(ledger)
    assert span.count == len(made)
    assert (span.first, span.last) == (min(e.scheduled_date for e in made), max(e.scheduled_date for e in made))
    assert span.symbols == tuple(sorted({e.symbol for e in made}))


def test_the_stamp_changes_on_every_write_even_within_one_second(tmp_path):
    ledger = Ledger(tmp_path / "ledger.sqlite3")
    seen = [ledger_stamp(ledger.path)]
    e = ledger.insert(Execution("r1", date(2027, 3, 1), datetime(2027, 3, 1, 9, tzinfo=NEW_YORK), "SPY", "Daily",
                                Decimal("100"), Outcome.PENDING))
    seen.append(ledger_stamp(ledger.path))
    # Two changes of one execution in the same second, the same length of text each time:
    # a probe of counts, times and lengths would miss the second.
    ledger.update(e.evolve(status=Outcome.SUBMITTED, broker_status="Submitted"))
    seen.append(ledger_stamp(ledger.path))
    ledger.update(e.evolve(status=Outcome.SUBMITTED, broker_status="Cancelled"[:9]))
    seen.append(ledger_stamp(ledger.path))
    assert len(set(seen)) == len(seen), seen
    assert ledger_stamp(ledger.path) == seen[-1]  # and stays put when nothing is written


def test_a_ledger_without_the_counter_is_still_probed(tmp_path):
    """A ledger written before the counter existed, opened read-only by the panel (so the
    counter could not be added): the stamp falls back to a probe and still sees a run."""
    ledger = Ledger(tmp_path / "ledger.sqlite3")
    with closing(sqlite3.connect(ledger.path)) as db:
        db.executescript("DROP TRIGGER executions_inserted; DROP TRIGGER executions_updated;"
                         " DROP TRIGGER executions_deleted; DROP TABLE executions_changes;")
    before = ledger_stamp(ledger.path)
    with closing(sqlite3.connect(ledger.path)) as db:
        db.execute("INSERT INTO executions(row_id, scheduled_date, scheduled_at, symbol, frequency, amount_usd,"
                   " status, recorded_at, updated_at) VALUES ('r1','2027-03-01','2027-03-01T09:00:00-05:00','SPY',"
                   "'Daily','100','missed','x','x')")
        db.commit()
    assert ledger_stamp(ledger.path) != before
    assert ledger_stamp(tmp_path / "nothing-here.sqlite3") == (0,)
