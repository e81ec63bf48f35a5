"""What has happened: the ledger's executions, filtered, downloadable, and charted.

The figures are asked of the ledger filtered and grouped (dca.history_views), once per
change of the ledger and filter (dca.panel.history_cache): a big ledger is never read
whole to draw the page."""

from __future__ import annotations

from datetime import datetime, timedelta

import pandas as pd
import streamlit as st

from dca.bootstrap import Services
from dca.domain import Outcome, format_money
from dca.errors import DcaError
from dca.panel import charts
from dca.panel.carry_panel import show_carry_notes
from dca.panel.frame import page_frame
from dca.panel.history_cache import TABLE_ROWS, csv_of, ledger_stamp, span, view
from dca.schedule_rules import NEW_YORK
from dca.panel.tables import show_table

services: Services = page_frame()
st.title("History")

ledger = services.ledger
path = str(ledger.path)
stamp = ledger_stamp(ledger.path)
held = span(ledger, path, stamp)
if not held.count:
    st.info("Nothing has been recorded yet. The first run records what it buys, skips or misses here.")
    st.stop()

left, middle, right = st.columns([2, 2, 2])
picked = left.date_input("Dates (New York)", value=(max(held.first, held.last - timedelta(days=365)), held.last),
                         min_value=held.first, max_value=held.last, format="YYYY-MM-DD", key="history_range")
symbols = middle.multiselect("Symbols", list(held.symbols), key="history_symbols", placeholder="All symbols")
statuses = right.multiselect("Outcomes", [str(o) for o in Outcome if o is not Outcome.PLANNED],
                             key="history_statuses", placeholder="All outcomes")
if not isinstance(picked, tuple) or len(picked) != 2:
    st.info("Pick the last date of the range.")
    st.stop()
filters = (path, stamp, picked[0], picked[1], tuple(symbols), tuple(statuses))
chosen = view(ledger, *filters)
if not chosen["count"]:
    st.info("No execution matches these filters.")
    st.stop()

a, b, c = st.columns(3)
a.metric("Invested", format_money(chosen["invested"]))
b.metric("Filled", chosen["filled"])
c.metric("Not bought", chosen["not_bought"], help="failed, skipped, missed or error")
try:
    plan_rows = services.plan_source.load().rows
except DcaError:
    plan_rows = []  # the Plan and Status pages say why; the history stands without it
show_carry_notes(services, [r for r in plan_rows if not symbols or r.symbol in symbols], datetime.now(NEW_YORK))

if chosen["count"] > TABLE_ROWS:
    st.caption(f"The latest {TABLE_ROWS:,} of {chosen['count']:,} executions; the CSV has them all.")
show_table(chosen["table"], hide_index=True, width="stretch", column_config={
    "Price": st.column_config.NumberColumn(format="dollar"),
    "Cost": st.column_config.NumberColumn(format="dollar"),
    "Carry": st.column_config.NumberColumn(format="dollar"),
})
st.download_button("Download CSV", lambda: csv_of(ledger, *filters), file_name="dca-history.csv", mime="text/csv",
                   icon=":material/download:", key="history_csv")

if chosen["filled"]:
    st.subheader("Invested over time")
    st.vega_lite_chart(chosen["invested_chart"], charts.invested_over_time(), width="stretch")

    st.subheader("Bought per month")
    st.vega_lite_chart(chosen["months"], charts.bought_per_month(), width="stretch")

    st.subheader("Average purchase price against the prices paid")
    prices = chosen["prices"]
    symbol = st.selectbox("Symbol", sorted(prices["Symbol"].unique()), key="history_price_symbol")
    one = prices[prices["Symbol"] == symbol].melt(id_vars=["Day", "Symbol"], var_name="Price", value_name="USD")
    st.vega_lite_chart(one, charts.prices_paid(), width="stretch")

st.subheader("Outcomes")
counts = pd.DataFrame([{"Outcome": k, "Executions": v} for k, v in chosen["outcomes"].items()])
st.vega_lite_chart(counts, charts.outcome_counts(), width="stretch")
