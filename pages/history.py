"""What has happened: the ledger's executions, filtered, downloadable, and charted."""

from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta

import altair as alt
import pandas as pd
import streamlit as st

from dca.bootstrap import Services
from dca.domain import Outcome, format_money
from dca.execution import today_in_new_york
from dca.history_views import average_prices, cumulative_invested, filter_history, invested_per_month, outcome_counts
from dca.errors import DcaError
from dca.panel.carry_panel import show_carry_notes
from dca.panel.frame import page_frame
from dca.schedule_rules import NEW_YORK

services: Services = page_frame()
st.title("History")

everything = services.ledger.history()
if not everything:
    st.info("Nothing has been recorded yet. The first run records what it buys, skips or misses here.")
    st.stop()

days = [today_in_new_york(e.scheduled_at) for e in everything]
first, last = min(days), max(days)
left, middle, right = st.columns([2, 2, 2])
picked = left.date_input("Dates (New York)", value=(max(first, last - timedelta(days=365)), last),
                         min_value=first, max_value=last, format="YYYY-MM-DD", key="history_range")
symbols = middle.multiselect("Symbols", sorted({e.symbol for e in everything}), key="history_symbols",
                             placeholder="All symbols")
statuses = right.multiselect("Outcomes", [str(o) for o in Outcome if o is not Outcome.PLANNED],
                             key="history_statuses", placeholder="All outcomes")
if not isinstance(picked, tuple) or len(picked) != 2:
    st.info("Pick the last date of the range.")
    st.stop()
chosen = filter_history(everything, picked[0], picked[1], symbols, statuses)
if not chosen:
    st.info("No execution matches these filters.")
    st.stop()

filled = [e for e in chosen if e.status is Outcome.FILLED]
a, b, c = st.columns(3)
a.metric("Invested", format_money(sum((e.cost for e in filled), start=0) or 0))
b.metric("Filled", len(filled))
c.metric("Not bought", sum(1 for e in chosen if e.status in (Outcome.FAILED, Outcome.SKIPPED, Outcome.MISSED,
                                                                Outcome.ERROR)),
         help="failed, skipped, missed or error")
try:
    plan_rows = services.plan_source.load().rows
except DcaError:
    plan_rows = []  # the Plan and Status pages say why; the history stands without it
show_carry_notes(services, [r for r in plan_rows if not symbols or r.symbol in symbols], datetime.now(NEW_YORK))

rows = [e.as_dict() for e in chosen]
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
    for e in chosen
])
st.dataframe(table, hide_index=True, width="stretch", column_config={
    "Price": st.column_config.NumberColumn(format="dollar"),
    "Cost": st.column_config.NumberColumn(format="dollar"),
    "Carry": st.column_config.NumberColumn(format="dollar"),
})
out = io.StringIO()
writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
writer.writeheader()
writer.writerows(rows)
st.download_button("Download CSV", out.getvalue(), file_name="dca-history.csv", mime="text/csv",
                   icon=":material/download:")

if filled:
    st.subheader("Invested over time")
    invested = pd.DataFrame([{"Day": p.day.isoformat(), "Symbol": p.symbol, "USD": float(p.invested)}
                             for p in cumulative_invested(chosen)])
    st.altair_chart(alt.Chart(invested).mark_line(point=True, interpolate="step-after").encode(
        x=alt.X("Day:T", title=None), y=alt.Y("USD:Q", title="Cumulative USD", axis=alt.Axis(format="$,.0f")),
        color="Symbol:N", tooltip=["Day:T", "Symbol:N", alt.Tooltip("USD:Q", format="$,.2f")]), width="stretch")

    st.subheader("Bought per month")
    months = pd.DataFrame([{"Month": m, "Symbol": s, "USD": float(v)} for (m, s), v in invested_per_month(chosen).items()])
    st.altair_chart(alt.Chart(months).mark_bar().encode(
        x=alt.X("Month:O", title=None), y=alt.Y("sum(USD):Q", title="USD", axis=alt.Axis(format="$,.0f")),
        color="Symbol:N", tooltip=["Month:O", "Symbol:N", alt.Tooltip("USD:Q", format="$,.2f")]), width="stretch")

    st.subheader("Average purchase price against the prices paid")
    prices = pd.DataFrame([
        {"Day": p.day.isoformat(), "Symbol": p.symbol, "Paid": float(p.price_paid), "Average": float(p.average_price)}
        for p in average_prices(chosen)
    ])
    symbol = st.selectbox("Symbol", sorted(prices["Symbol"].unique()), key="history_price_symbol")
    one = prices[prices["Symbol"] == symbol].melt(id_vars=["Day", "Symbol"], var_name="Price", value_name="USD")
    st.altair_chart(alt.Chart(one).mark_line(point=True).encode(
        x=alt.X("Day:T", title=None), y=alt.Y("USD:Q", title="USD per share", scale=alt.Scale(zero=False)),
        color=alt.Color("Price:N", title=None), tooltip=["Day:T", "Price:N", alt.Tooltip("USD:Q", format="$,.2f")]),
        width="stretch")

st.subheader("Outcomes")
counts = pd.DataFrame([{"Outcome": k, "Executions": v} for k, v in outcome_counts(chosen).items()])
st.altair_chart(alt.Chart(counts).mark_bar().encode(
    x=alt.X("Executions:Q"), y=alt.Y("Outcome:N", sort="-x", title=None), tooltip=["Outcome:N", "Executions:Q"]),
    width="stretch")
