"""What the panel's Calendar page computes: a month as a grid of weeks (trading holidays
and early closes marked, each day's executions and dollars), and totals per week and per
month. The executions come from `dca.queries.next_executions`, the engine's own schedule
answer; this module only arranges them. No Streamlit."""

from __future__ import annotations

import calendar as _calendar
import html
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import Iterable, Sequence

from dca.domain import format_money
from dca.queries import NextExecution, State

ZERO = Decimal("0")


@dataclass
class CalendarDay:
    day: date
    in_month: bool
    trading: bool
    early_close: bool
    items: list[NextExecution] = field(default_factory=list)

    @property
    def holiday(self) -> bool:
        """A weekday the exchange is closed (weekends are not called holidays)."""
        return not self.trading and self.day.weekday() < 5

    @property
    def total(self) -> Decimal:
        return sum((Decimal(i.amount_usd) for i in self.items), ZERO)


def buy_day(item: NextExecution, today: date) -> date:
    """The day an execution is bought: a due one (a catch-up) is bought today."""
    return today if item.state is State.DUE else item.scheduled_at.date()


def month_grid(year: int, month: int, sessions: Iterable[date], early: Iterable[date],
               items: Sequence[NextExecution], today: date) -> list[list[CalendarDay]]:
    """The weeks (Monday first) covering the month; `items` are the executions still to
    come (each placed on the day it is bought), `sessions` the trading days."""
    sessions, early = set(sessions), set(early)
    by_day: dict[date, list[NextExecution]] = {}
    for item in items:
        if item.to_come:
            by_day.setdefault(buy_day(item, today), []).append(item)
    weeks = []
    for week in _calendar.Calendar(firstweekday=0).monthdatescalendar(year, month):
        weeks.append([CalendarDay(d, d.month == month, d in sessions, d in early, by_day.get(d, [])) for d in week])
    return weeks


def week_totals(items: Sequence[NextExecution], today: date) -> dict[date, Decimal]:
    """Dollars still to come per week, keyed by the week's Monday, in date order."""
    weeks: dict[date, Decimal] = {}
    for item in items:
        if item.to_come:
            day = buy_day(item, today)
            monday = day - timedelta(days=day.weekday())
            weeks[monday] = weeks.get(monday, ZERO) + Decimal(item.amount_usd)
    return dict(sorted(weeks.items()))


def month_totals(items: Sequence[NextExecution], today: date) -> dict[str, Decimal]:
    """Dollars still to come per month ('2026-12'), in date order."""
    months: dict[str, Decimal] = {}
    for item in items:
        if item.to_come:
            key = f"{buy_day(item, today):%Y-%m}"
            months[key] = months.get(key, ZERO) + Decimal(item.amount_usd)
    return dict(sorted(months.items()))


MAX_SYMBOLS_IN_A_DAY = 6


def month_html(weeks: list[list[CalendarDay]], today: date) -> str:
    """The grid as a small HTML table (every plan text escaped)."""
    head = "".join(f"<th>{name}</th>" for name in ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"))
    body = []
    for week in weeks:
        cells = []
        for d in week:
            classes = ["day"]
            notes = []
            if not d.in_month:
                classes.append("other")
            if d.holiday:
                classes.append("holiday")
                notes.append("Holiday: market closed")
            elif not d.trading:
                classes.append("weekend")
            if d.early_close:
                classes.append("early")
                notes.append("Early close 13:00")
            if d.day == today:
                classes.append("today")
            lines = [f"<div class='num'>{d.day.day}</div>"]
            lines += [f"<div class='note'>{n}</div>" for n in notes]
            if d.items:
                symbols = sorted({i.symbol for i in d.items})
                shown = ", ".join(html.escape(s) for s in symbols[:MAX_SYMBOLS_IN_A_DAY])
                if len(symbols) > MAX_SYMBOLS_IN_A_DAY:
                    shown += f" +{len(symbols) - MAX_SYMBOLS_IN_A_DAY}"
                lines.append(f"<div class='buys'>{shown}</div>")
                lines.append(f"<div class='total'>{format_money(d.total)}</div>")
            cells.append(f"<td class='{' '.join(classes)}' data-day='{d.day.isoformat()}'>{''.join(lines)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table class='dca-month'><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


MONTH_CSS = """<style>
table.dca-month { width: 100%; border-collapse: collapse; table-layout: fixed; }
table.dca-month th { text-align: left; font-weight: 600; padding: 4px 6px; }
table.dca-month td { vertical-align: top; height: 78px; padding: 4px 6px; border: 1px solid rgba(128,128,128,.3); }
table.dca-month td.other { opacity: .4; }
table.dca-month td.weekend { background: rgba(128,128,128,.08); }
table.dca-month td.holiday { background: rgba(255,75,75,.12); }
table.dca-month td.early { background: rgba(255,170,0,.14); }
table.dca-month td.today { outline: 2px solid #1c83e1; outline-offset: -2px; }
table.dca-month .num { font-weight: 600; }
table.dca-month .note { font-size: .75rem; }
table.dca-month .buys { font-size: .8rem; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
table.dca-month .total { font-size: .85rem; font-weight: 600; }
</style>"""
