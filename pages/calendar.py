"""The Calendar: what the plan will buy, as a month grid (trading holidays and early
closes marked, each day's executions and dollars) and as a list for the next weeks with
totals per week and month -- the same answer as `dca status` and `dca calendar`
(`dca.queries.next_executions`): a catch-up a run would buy now is listed as due now, and
what is already recorded is shown apart, with its outcome, and not counted.

"Now" is the real clock, or the start of the day given as the `today=YYYY-MM-DD` query
parameter, so a link can show the schedule as seen from a given day (and tests are
deterministic).
"""

from __future__ import annotations

import calendar
from dataclasses import replace
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pandas as pd
import streamlit as st

from dca.bootstrap import Services
from dca.calendar_view import MONTH_CSS, month_grid, month_html, month_totals, week_totals
from dca.domain import format_money
from dca.errors import PlanError
from dca.panel import charts
from dca.panel.carry_panel import show_carry_notes
from dca.panel.frame import page_frame
from dca.panel.outlook_cache import outlook as cached_outlook
from dca.queries import NextExecution, State
from dca.trading_calendar import early_closes
from dca.panel.tables import show_table

NEW_YORK = ZoneInfo("America/New_York")
DEFAULT_WEEKS = 4
MONTHS_AHEAD = 12


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

st.title("Calendar")

now = datetime.now(NEW_YORK)
pinned = st.query_params.get("today")
if pinned:
    try:
        now = datetime.combine(date.fromisoformat(pinned), time(0, 0), tzinfo=NEW_YORK)
    except ValueError:
        st.warning(f"Ignoring `today={pinned}` in the address: it is not a date like 2027-05-28.")
today = now.date()

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

symbols = st.multiselect("Symbols", sorted({r.symbol for r in plan.active_rows}), key="calendar_symbols",
                         placeholder="All symbols")
show_carry_notes(services, [r for r in plan.rows if not symbols or r.symbol in symbols], now)


def outlook_for(start: date, end: date):
    outlook = cached_outlook(services, plan, now, start, end)
    if symbols:  # a new Outlook: the cached one is shared
        outlook = replace(outlook, items=[i for i in outlook.items if i.symbol in symbols])
    return outlook


# -- the month grid -------------------------------------------------------------------------
months = []
year, month = today.year, today.month
for _ in range(MONTHS_AHEAD + 1):
    months.append((year, month))
    year, month = (year + 1, 1) if month == 12 else (year, month + 1)
picked_month = st.selectbox("Month", months, format_func=lambda ym: f"{calendar.month_name[ym[1]]} {ym[0]}",
                            key="calendar_month")
first = date(picked_month[0], picked_month[1], 1)
last = date(picked_month[0], picked_month[1], calendar.monthrange(*picked_month)[1])
month_outlook = outlook_for(max(first, today), last) if last >= today else None
grid = month_grid(*picked_month, services.schedule.calendar.sessions(first - timedelta(days=7), last + timedelta(days=7)),
                  early_closes(first - timedelta(days=7), last + timedelta(days=7)),
                  month_outlook.items if month_outlook else [], today)
st.markdown(MONTH_CSS + month_html(grid, today), unsafe_allow_html=True)
in_month = [d for week in grid for d in week if d.in_month]
holidays = [d.day for d in in_month if d.holiday]
early = [d.day for d in in_month if d.early_close]
st.caption(
    f"{format_money(month_outlook.total if month_outlook else 0)} still to come in "
    f"{calendar.month_name[first.month]} {first.year}. "
    + (f"Market closed: {', '.join(f'{d:%b %d}' for d in holidays)}. " if holidays else "")
    + (f"Early close (13:00): {', '.join(f'{d:%b %d}' for d in early)}. " if early else "")
    + "Buys run at the open, so an early close changes nothing for them."
)

# -- the list for the next weeks ------------------------------------------------------------
st.subheader("Next weeks")
weeks = st.number_input("Weeks ahead", min_value=1, max_value=104, value=DEFAULT_WEEKS, step=1,
                        key="calendar_weeks", width=200)
start, end = today, today + timedelta(days=7 * int(weeks))
outlook = outlook_for(start, end)
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
    show_table(
        pd.DataFrame([_row(i) for i in items]),
        hide_index=True,
        column_config={
            "Amount (USD)": st.column_config.NumberColumn(format="dollar"),
            "Row": st.column_config.NumberColumn(help="Line in the plan file", format="%d"),
        },
        key="upcoming_table",
    )
    per_week, per_month = st.columns(2)
    show_table(pd.DataFrame([{"Week of (Mon)": f"{d}", "USD": float(v)}
                                     for d, v in week_totals(items, today).items()]), where=per_week,
                       hide_index=True, column_config={"USD": st.column_config.NumberColumn(format="dollar")},
                       key="week_totals")
    show_table(pd.DataFrame([{"Month": m, "USD": float(v)} for m, v in month_totals(items, today).items()]), where=per_month,
                        hide_index=True, column_config={"USD": st.column_config.NumberColumn(format="dollar")},
                        key="month_totals")

if done:
    with st.expander(f"Already recorded in this range ({len(done)})"):
        show_table(pd.DataFrame([_row(i) for i in done]), hide_index=True,
                     column_config={"Amount (USD)": st.column_config.NumberColumn(format="dollar")},
                     key="recorded_table")

per_day = outlook.per_day()
if not per_day:
    st.stop()
daily = pd.DataFrame(
    {"Day": [f"{d:%a %m-%d}" for d in per_day], "USD": [float(v) for v in per_day.values()]}
)
st.subheader("Dollars per day")
st.vega_lite_chart(daily, charts.dollars_per_day(), width="stretch", height=260)
