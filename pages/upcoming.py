"""What the plan will buy next: the executions of the Active, valid rows in a date range,
and the dollars committed per day.

"Today" is New York's date, or the `today=YYYY-MM-DD` query parameter, so a link can
show the schedule as seen from a given day (and tests are deterministic).
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import altair as alt
import pandas as pd
import streamlit as st

from dca.bootstrap import Services
from dca.panel.frame import page_frame
from dca.domain import format_money
from dca.errors import PlanError
from dca.queries import upcoming

NEW_YORK = ZoneInfo("America/New_York")
DEFAULT_DAYS = 30

services: Services = page_frame()

st.title("Upcoming")

today = datetime.now(NEW_YORK).date()
pinned = st.query_params.get("today")
if pinned:
    try:
        today = date.fromisoformat(pinned)
    except ValueError:
        st.warning(f"Ignoring `today={pinned}` in the address: it is not a date like 2027-05-28.")

picked = st.date_input(
    "Dates (New York)",
    value=(today, today + timedelta(days=DEFAULT_DAYS)),
    format="YYYY-MM-DD",
    key="upcoming_range",
    width=320,
)
if not isinstance(picked, tuple) or len(picked) != 2:
    # The range picker returns one date while the person is still choosing the second.
    st.info("Pick the last date of the range.")
    st.stop()
start, end = picked

try:
    plan = services.plan_source.load()
except PlanError as e:
    st.error(str(e), icon=":material/error:")
    st.stop()

if plan.errors:
    st.warning(
        f"{len(plan.errors)} plan row(s) have errors and are left out here; see the Plan page.",
        icon=":material/warning:",
    )

items = upcoming(plan, services.schedule, start, end)
if not items:
    st.info(f"Nothing is scheduled from {start} to {end}.")
    st.stop()

total = sum((Decimal(u.amount_usd) for u in items), Decimal("0"))
left, right, _ = st.columns([1, 1, 2])
left.metric("Total in range", format_money(total), help=f"From {start} to {end}, both included")
right.metric("Executions", len(items))

table = pd.DataFrame(
    [
        {
            "Date/time (ET)": f"{u.scheduled_at:%Y-%m-%d %H:%M}",
            "Day": f"{u.scheduled_at:%a}",
            "Stock Symbol": u.symbol,
            "Amount (USD)": float(u.amount_usd),  # display only
            "Frequency": u.frequency,
            "Row": u.row_number,
        }
        for u in items
    ]
)
st.dataframe(
    table,
    hide_index=True,
    column_config={
        "Amount (USD)": st.column_config.NumberColumn(format="dollar"),
        "Row": st.column_config.NumberColumn(help="Line in the plan file", format="%d"),
    },
)

per_day: dict[date, Decimal] = defaultdict(Decimal)
for u in items:
    per_day[u.scheduled_at.date()] += Decimal(u.amount_usd)
daily = pd.DataFrame(
    {"Day": [f"{d:%a %m-%d}" for d in per_day], "USD": [float(v) for v in per_day.values()]}
)
st.subheader("Dollars per day")
st.altair_chart(
    alt.Chart(daily)
    .mark_bar()
    .encode(
        # Ordinal, in date order: only days with a buy get a bar, weekends leave no gaps.
        x=alt.X("Day:O", sort=None, title=None, axis=alt.Axis(labelAngle=-45)),
        y=alt.Y("USD:Q", title="USD", axis=alt.Axis(format="$,.0f")),
        tooltip=[alt.Tooltip("Day:O"), alt.Tooltip("USD:Q", format="$,.2f")],
    ),
    width="stretch",
    height=260,
)
