"""NYSE trading days from `exchange_calendars` (XNYS), never from a hand-written list."""

from __future__ import annotations

import functools
import warnings
from datetime import date

import exchange_calendars
import pandas as pd

NEW_YORK = "America/New_York"


class NyseCalendar:
    """Wraps XNYS with explicit bounds (the library defaults to about one year either side).

    The bounds grow on demand, so a long-idle ledger or a test far in the future still
    gets real sessions rather than an out-of-bounds error.
    """

    def __init__(self, first_year: int = 2015, last_year: int | None = None):
        self._first_year = first_year
        self._last_year = last_year or date.today().year + 3
        self._calendar = None

    def _xnys(self, start: date, end: date):
        if start.year < self._first_year or end.year > self._last_year or self._calendar is None:
            self._first_year = min(self._first_year, start.year)
            self._last_year = max(self._last_year, end.year)
            self._calendar = _build(self._first_year, self._last_year)
        return self._calendar

    def sessions(self, start: date, end: date) -> list[date]:
        if end < start:
            return []
        calendar = self._xnys(start, end)
        index = calendar.sessions_in_range(pd.Timestamp(start), pd.Timestamp(end))
        return [ts.date() for ts in index]


@functools.lru_cache(maxsize=4)
def _build(first_year: int, last_year: int):
    with warnings.catch_warnings():
        # exchange_calendars 4.13 trips a pandas 3.1 deprecation inside its own code.
        warnings.filterwarnings("ignore", message="Series.values returning an ndarray")
        return exchange_calendars.get_calendar("XNYS", start=f"{first_year}-01-01", end=f"{last_year}-12-31")
