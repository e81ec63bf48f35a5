"""The History page's reads, cached until the ledger changes.

The figures are asked of SQLite (dca.history_views: filtered and grouped there, never the
whole history read), and kept with `st.cache_data` so a person going back to a filter does
not wait again. `ledger_stamp` is a cheap probe that changes whenever an execution is
written; everything here is keyed by it (and by the ledger's path: the `_ledger` itself
is not hashed), so a new run shows at once.
"""

from __future__ import annotations

import csv
import io
import sqlite3
from contextlib import closing
from datetime import date
from decimal import Decimal
from pathlib import Path

import pandas as pd
import streamlit as st

from dca.domain import Outcome
from dca.history_views import (HistoryFilter, HistorySpan, average_prices, bought_per_day, cumulative_invested, every,
                               history_span, invested_per_month, latest, not_bought, outcome_counts)
from dca.ledger import Ledger

TABLE_ROWS = 2_000  # the table shows the latest ones; the CSV has every execution chosen


def ledger_stamp(path: Path) -> tuple:
    """Changes whenever an execution is added, changed or removed: the ledger's own counter
    of writes to executions (a trigger keeps it), read in one lookup. A ledger from before
    the counter, opened read-only so it could not get one, is probed the slow way. Not the
    file's change time: the panel writes other tables of the same file on every rerun."""
    try:
        with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
            try:
                return ("changes", *db.execute("SELECT changes FROM executions_changes").fetchone())
            except (sqlite3.Error, TypeError):
                # updated_at has whole seconds: the sums catch a change within the same second.
                return tuple(db.execute(
                    "SELECT count(*), max(id), max(updated_at), total(length(status)), total(attempts),"
                    " total(length(coalesce(cost, ''))), total(length(coalesce(broker_status, '')))"
                    " FROM executions").fetchone())
    except sqlite3.Error:
        return (0,)


def _filter(start: date, end: date, symbols: tuple[str, ...], statuses: tuple[str, ...]) -> HistoryFilter:
    return HistoryFilter(start, end, tuple(symbols), tuple(statuses))


@st.cache_data(max_entries=2, show_spinner=False)
def span(_ledger: Ledger, path: str, stamp: tuple) -> HistorySpan:
    return history_span(_ledger)


@st.cache_data(max_entries=8, show_spinner="Reading the history…")
def view(_ledger: Ledger, path: str, stamp: tuple, start: date, end: date, symbols: tuple[str, ...],
         statuses: tuple[str, ...]) -> dict:
    chosen = _filter(start, end, symbols, statuses)
    counts = outcome_counts(_ledger, chosen)
    table = pd.DataFrame([
        {
            "Scheduled (ET)": f"{e.scheduled_at:%Y-%m-%d %H:%M}",
            "Symbol": e.symbol,
            "Outcome": str(e.status) + (" (late)" if e.late else ""),
            "Quantity": None if e.quantity is None else float(e.quantity),
            "Price": None if e.price is None else float(e.price),
            "Cost": None if e.cost is None else float(e.cost),
            "Carry": float(e.carry_out),
            "Reference": e.order_ref or "",
            "Message": e.message,
        }
        for e in latest(_ledger, chosen, TABLE_ROWS)
    ])
    bought = bought_per_day(_ledger, chosen)
    invested = pd.DataFrame([{"Day": p.day.isoformat(), "Symbol": p.symbol, "USD": float(p.invested)}
                             for p in cumulative_invested(bought)]) if bought else None
    months = pd.DataFrame([{"Month": m, "Symbol": s, "USD": float(v)}
                           for (m, s), v in invested_per_month(bought).items()]) if bought else None
    prices = pd.DataFrame([
        {"Day": p.day.isoformat(), "Symbol": p.symbol, "Paid": float(p.price_paid), "Average": float(p.average_price)}
        for p in average_prices(bought)
    ]) if bought else None
    return {
        "count": sum(counts.values()), "filled": counts.get(str(Outcome.FILLED), 0),
        "invested": sum((b.cost for b in bought), start=Decimal(0)), "not_bought": not_bought(counts),
        "table": table, "invested_chart": invested, "months": months, "prices": prices, "outcomes": counts,
    }


@st.cache_data(max_entries=2, show_spinner=False)
def csv_of(_ledger: Ledger, path: str, stamp: tuple, start: date, end: date, symbols: tuple[str, ...],
           statuses: tuple[str, ...]) -> str:
    """Every chosen execution as CSV; built when the download is asked for, not on each rerun."""
    out = io.StringIO()
    writer = None
    for e in every(_ledger, _filter(start, end, symbols, statuses)):
        row = e.as_dict()
        if writer is None:
            writer = csv.DictWriter(out, fieldnames=list(row), lineterminator="\n")
            writer.writeheader()
        writer.writerow(row)
    return out.getvalue()
