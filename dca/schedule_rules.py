"""When a plan row is due: occurrences on the NYSE calendar, catch-up, missed and late.

Daily is every trading day, Weekly the first trading day of each week, Monthly the first
trading day of each month, all at the configured run time in New York.
"""

from __future__ import annotations

import bisect
import threading
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

from dca.domain import Frequency
from dca.ports import TradingCalendar

NEW_YORK = ZoneInfo("America/New_York")


def scheduled_at(day: date, run_time: time) -> datetime:
    """The wall-clock run time of a day in New York; zoneinfo picks the right DST offset."""
    return datetime.combine(day, run_time, tzinfo=NEW_YORK)


def elapsed(later: datetime, earlier: datetime) -> timedelta:
    """Real time between two moments. Python subtracts datetimes sharing a tzinfo by wall
    clock, which is an hour off across a DST change; UTC has no such change."""
    return later.astimezone(timezone.utc) - earlier.astimezone(timezone.utc)


def first_per_period(sessions: list[date], frequency: Frequency) -> list[date]:
    if frequency is Frequency.DAILY:
        return list(sessions)
    key = (lambda d: d.isocalendar()[:2]) if frequency is Frequency.WEEKLY else (lambda d: (d.year, d.month))
    result, seen = [], None
    for day in sessions:
        period = key(day)
        if period != seen:
            result.append(day)
            seen = period
    return result


@dataclass(frozen=True)
class RowHistory:
    """What the ledger knows of a row, as far as scheduling is concerned."""

    active_since: date  # first seen, or made Active again after a pause
    last_recorded: date | None  # latest scheduled date with any recorded execution


@dataclass(frozen=True)
class DueDecision:
    candidate: date | None  # to be bought now (or recorded missed if too late)
    candidate_too_late: bool
    missed: list[date]


class Schedule:
    """Answers 'what is due for this row at this moment' against one calendar.

    Sessions are fetched once per window and shared by every row of a run, which keeps
    a thousand-row plan cheap. Safe to share between threads.
    """

    def __init__(self, calendar: TradingCalendar, run_time: time = time(9, 0)):
        self.calendar = calendar
        self.run_time = run_time
        # ((first, last), dates by frequency): one immutable pair, replaced whole under
        # the lock, so sessions of the panel sharing this Schedule never see a window
        # paired with another window's dates.
        self._cache: tuple[tuple[date, date], dict[Frequency, list[date]]] | None = None
        self._lock = threading.Lock()

    def _dates(self, frequency: Frequency, start: date, end: date) -> list[date]:
        cache = self._cache
        if cache is None or start < cache[0][0] or end > cache[0][1]:
            with self._lock:
                cache = self._cache
                if cache is None or start < cache[0][0] or end > cache[0][1]:
                    lo = min(start, cache[0][0]) if cache else start
                    hi = max(end, cache[0][1]) if cache else end
                    sessions = self.calendar.sessions(lo.replace(day=1) - timedelta(days=7), hi)
                    cache = ((lo, hi), {f: first_per_period(sessions, f) for f in Frequency})
                    self._cache = cache
        dates = cache[1][frequency]
        return dates[bisect.bisect_left(dates, start) : bisect.bisect_right(dates, end)]

    def between(self, frequency: Frequency, start: date, end: date) -> list[date]:
        return self._dates(frequency, start, end) if start <= end else []

    def latest_at_or_before(self, frequency: Frequency, now: datetime, floor: date) -> date | None:
        today = now.astimezone(NEW_YORK).date()
        dates = self._dates(frequency, min(floor, today), today)
        for day in reversed(dates):
            if elapsed(now, scheduled_at(day, self.run_time)) >= timedelta(0):
                return day
        return None

    def decide(
        self,
        frequency: Frequency,
        now: datetime,
        history: RowHistory,
        max_lateness: timedelta | None = None,
    ) -> DueDecision:
        latest = self.latest_at_or_before(frequency, now, history.active_since)
        floor = history.active_since
        last = history.last_recorded
        if latest is None or latest < floor or (last is not None and latest <= last):
            return DueDecision(None, False, [])
        start = floor if last is None else max(floor, last + timedelta(days=1))
        missed = [d for d in self.between(frequency, start, latest) if d < latest]
        too_late = (
            max_lateness is not None and elapsed(now, scheduled_at(latest, self.run_time)) > max_lateness
        )
        return DueDecision(latest, too_late, missed)

    def is_late(self, day: date, now: datetime, grace: timedelta) -> bool:
        return elapsed(now, scheduled_at(day, self.run_time)) > grace

    def upcoming(self, frequency: Frequency, start: date, end: date) -> list[datetime]:
        return [scheduled_at(d, self.run_time) for d in self.between(frequency, start, end)]
