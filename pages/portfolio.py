"""The portfolio: positions, market value, cash and net liquidation as the broker shows
them, next to what the plan spends per symbol each month (`dca.account_view`)."""

from __future__ import annotations

from datetime import datetime

import pandas as pd
import streamlit as st

from dca.account_view import account_of, monthly_spend, portfolio_rows
from dca.bootstrap import Services
from dca.domain import format_money
from dca.errors import DcaError
from dca.panel.frame import page_frame
from dca.schedule_rules import NEW_YORK
from dca.panel.tables import show_table

services: Services = page_frame()
st.title("Portfolio")

try:
    account = account_of(services.broker, datetime.now(NEW_YORK))
except DcaError as e:
    st.error(f"The broker's account cannot be read now: {e}", icon=":material/error:")
    st.stop()
if account is None:
    st.info(f"{services.broker.name} offers no account view, so positions and cash cannot be shown here.",
            icon=":material/info:")
    st.stop()

try:
    spend = monthly_spend(services.plan_source.load().rows)
except DcaError as e:
    st.warning(f"The plan cannot be read, so its monthly spend is not shown: {e}", icon=":material/warning:")
    spend = {}

value = sum((p.market_value for p in account.positions if p.market_value is not None), start=0)
a, b, c = st.columns(3)
a.metric("Positions' market value", format_money(value) if account.positions else "$0.00")
a_cash = "not tracked" if account.cash is None else format_money(account.cash)
b.metric("Cash", a_cash)
c.metric("Net liquidation", "not tracked" if account.net_liquidation is None else format_money(account.net_liquidation))
if account.note:
    st.caption(account.note)

rows = portfolio_rows(account, spend)
if not rows:
    st.info("No positions yet and nothing planned.")
    st.stop()
show_table(pd.DataFrame(rows), hide_index=True, width="stretch", column_config={
    "Quantity": st.column_config.NumberColumn(format="%.4f"),
    "Cost": st.column_config.NumberColumn(format="dollar", help="What was paid for the position"),
    "Market value": st.column_config.NumberColumn(format="dollar"),
    "Weight": st.column_config.NumberColumn(format="percent", help="Share of the positions' market value"),
    "Plan per month": st.column_config.NumberColumn(
        format="dollar", help="What the Active rows spend on it in an average month (21 trading days, 4.33 weeks)"),
    "Plan share": st.column_config.NumberColumn(format="percent", help="Share of the plan's monthly spend"),
})
