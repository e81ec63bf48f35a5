"""What the plan will buy next: the executions of the Active, valid rows in a date range,
and the dollars still to come per day -- the same answer as `dca status` and
`dca calendar` (`dca.queries.next_executions`): a catch-up a run would buy now is listed
as due now, and what is already recorded is shown apart, with its outcome, and not counted.

"Now" is the real clock, or the start of the day given as the `today=YYYY-MM-DD` query
parameter, so a link can show the schedule as seen from a given day (and tests are
deterministic).
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import altair as alt
import pandas as pd
import streamlit as st

from dca.bootstrap import Services
from dca.panel.frame import page_frame
from dca.domain import format_money
from dca.errors import PlanError
from dca.queries import NextExecution, State, next_executions

NEW_YORK = ZoneInfo("America/New_York")
DEFAULT_DAYS = 30


def _row(item: NextExecution) -> dict:
    return {
        "Date/time (ET)": f"{item.scheduled_at:%Y-%m-%d %H:%M}",
        "Day": f"{item.scheduled_at:%a}",
        "Stock Symbol": item.symbol,
        "Amount (USD)": float(item.amount_usd),  # display only
        "Frequency": item.frequency,
        "State": item.label,
        "Row": item.row_number,
    }


services: Services = page_frame()

st.title("Upcoming")

now = datetime.now(NEW_YORK)
pinned = st.query_params.get("today")
if pinned:
    try:
        now = datetime.combine(date.fromisoformat(pinned), time(0, 0), tzinfo=NEW_YORK)
    except ValueError:
        st.warning(f"Ignoring `today={pinned}` in the address: it is not a date like 2027-05-28.")

today = now.date()
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

outlook = next_executions(plan, services.schedule, services.ledger, now, start, end, services.engine.options)
items = [i for i in outlook.items if i.state is not State.DONE]
done = outlook.done()
if not items:
    st.info(f"Nothing is scheduled from {start} to {end}.")
else:
    coming = outlook.to_come()
    due = [i for i in coming if i.state is State.DUE]
    left, middle, right, _ = st.columns([1, 1, 1, 1])
    left.metric("Total in range", format_money(outlook.total),
                help=f"Still to come from {start} to {end}, both included: due now and scheduled. "
                "What is already recorded is not counted.")
    middle.metric("Executions", len(coming))
    right.metric("Due now", len(due), help="A run now would buy these (late, if past their time)")
    st.dataframe(
        pd.DataFrame([_row(i) for i in items]),
        hide_index=True,
        column_config={
            "Amount (USD)": st.column_config.NumberColumn(format="dollar"),
            "Row": st.column_config.NumberColumn(help="Line in the plan file", format="%d"),
        },
        key="upcoming_table",
    )

if done:
    with st.expander(f"Already recorded in this range ({len(done)})"):
        st.dataframe(pd.DataFrame([_row(i) for i in done]), hide_index=True,
                     column_config={"Amount (USD)": st.column_config.NumberColumn(format="dollar")},
                     key="recorded_table")

per_day = outlook.per_day()
if not per_day:
    st.stop()
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
