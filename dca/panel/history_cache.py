"""The History page's reads, cached until the ledger changes.

Reading 100,000 executions takes seconds; a person changing a filter should not wait for
it again. `ledger_stamp` is a cheap probe (a count, the latest update, the files' change
times) that changes whenever anything is written; everything here is keyed by it, so a
new run shows at once and an unchanged ledger is read once.

The executions are kept with `st.cache_resource` (one shared list, not copied: Execution
is frozen and the page only reads it), the derived tables with `st.cache_data`.
"""

from __future__ import annotations

import csv
import io
import sqlite3
from contextlib import closing
from datetime import date
from pathlib import Path

import pandas as pd
import streamlit as st

from dca.domain import Outcome
from dca.execution import Execution, today_in_new_york
from dca.history_views import average_prices, cumulative_invested, filter_history, invested_per_month, outcome_counts
from dca.ledger import Ledger

TABLE_ROWS = 2_000  # the table shows the latest ones; the CSV has every execution chosen


def ledger_stamp(path: Path) -> tuple:
    """Changes whenever an execution is added or changed. Not the file's change time: the
    panel writes other tables of the same file on every rerun (the plan's row IDs)."""
    try:
        with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
            # updated_at has whole seconds: the sums catch a change within the same second.
            return tuple(db.execute(
                "SELECT count(*), max(id), max(updated_at), total(length(status)), total(attempts),"
                " total(length(coalesce(cost, ''))), total(length(coalesce(broker_status, '')))"
                " FROM executions").fetchone())
    except sqlite3.Error:
        return (0,)


@st.cache_resource(max_entries=2, show_spinner="Reading the history…")
def executions(path: str, stamp: tuple) -> tuple[list[Execution], date | None, date | None, list[str]]:
    everything = Ledger(Path(path)).history()
    days = [today_in_new_york(e.scheduled_at) for e in everything]
    symbols = sorted({e.symbol for e in everything})
    return everything, min(days, default=None), max(days, default=None), symbols


@st.cache_data(max_entries=8, show_spinner=False)
def view(path: str, stamp: tuple, start: date, end: date, symbols: tuple[str, ...], statuses: tuple[str, ...]) -> dict:
    everything = executions(path, stamp)[0]
    chosen = filter_history(everything, start, end, list(symbols), list(statuses))
    filled = [e for e in chosen if e.status is Outcome.FILLED]
    latest = chosen[-TABLE_ROWS:]
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
        for e in latest
    ])
    invested = pd.DataFrame([{"Day": p.day.isoformat(), "Symbol": p.symbol, "USD": float(p.invested)}
                             for p in cumulative_invested(chosen)]) if filled else None
    months = pd.DataFrame([{"Month": m, "Symbol": s, "USD": float(v)}
                           for (m, s), v in invested_per_month(chosen).items()]) if filled else None
    prices = pd.DataFrame([
        {"Day": p.day.isoformat(), "Symbol": p.symbol, "Paid": float(p.price_paid), "Average": float(p.average_price)}
        for p in average_prices(chosen)
    ]) if filled else None
    # One point per symbol and day (the day's last): a chart of every fill of a big ledger
    # is slow to send and draw, and shows nothing more.
    if invested is not None:
        invested = invested.groupby(["Day", "Symbol"], as_index=False, sort=False).last()
    if prices is not None:
        prices = prices.groupby(["Day", "Symbol"], as_index=False, sort=False).last()
    not_bought = sum(1 for e in chosen if e.status in (Outcome.FAILED, Outcome.SKIPPED, Outcome.MISSED, Outcome.ERROR))
    return {
        "count": len(chosen), "filled": len(filled), "invested": sum((e.cost for e in filled), start=0) or 0,
        "not_bought": not_bought, "table": table, "invested_chart": invested,
        "months": months, "prices": prices, "outcomes": outcome_counts(chosen),
    }


@st.cache_data(max_entries=2, show_spinner=False)
def csv_of(path: str, stamp: tuple, start: date, end: date, symbols: tuple[str, ...], statuses: tuple[str, ...]) -> str:
    """Every chosen execution as CSV; built when the download is asked for, not on each rerun."""
    chosen = filter_history(executions(path, stamp)[0], start, end, list(symbols), list(statuses))
    out = io.StringIO()
    if chosen:
        rows = [e.as_dict() for e in chosen]
        writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return out.getvalue()
