"""NYSE trading days from `exchange_calendars` (XNYS), never from a hand-written list.

Importing exchange_calendars (and pandas with it) takes longer than everything else a
quick command does, so the sessions are kept as a table of ISO dates generated from
XNYS and cached on disk, one file per exchange_calendars version:
`$XDG_CACHE_HOME/dca/xnys-sessions-<version>.json` (else `~/.cache/dca/...`). The table
covers 2000 to eleven years past the current one; a request outside it, a cache written
by another version, or a damaged file builds from exchange_calendars again. A cache that
cannot be read or written is never an error: the table is then built in memory.
"""

from __future__ import annotations

import bisect
import json
import logging
import os
import tempfile
import threading
import warnings
from datetime import date
from pathlib import Path

logger = logging.getLogger(__name__)

NEW_YORK = "America/New_York"
FIRST_YEAR = 2000
YEARS_AHEAD = 11  # today's year + 11: beyond the furthest `--now` anyone may give (10 years)
CACHE_FORMAT = 1

_lock = threading.Lock()
# One table per library version and process, shared by every NyseCalendar:
# (first year, last year, sessions).
_memory: dict[str, tuple[int, int, list[date]]] = {}


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME", "")
    if not os.path.isabs(base):  # the XDG spec: a relative path is ignored
        base = os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "dca"


def library_version() -> str:
    """exchange_calendars' version, read from its metadata without importing it."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("exchange-calendars")
    except PackageNotFoundError:  # pragma: no cover - it is a dependency
        return "unknown"


class NyseCalendar:
    """XNYS sessions with explicit bounds (the library defaults to about one year either
    side). The bounds grow on demand, so a long-idle ledger or a test far in the future
    still gets real sessions rather than an out-of-bounds error. Safe to share between
    threads (the panel's sessions): the table is replaced whole, under a lock."""

    def __init__(self, cache_dir: Path | None | bool = True, today: date | None = None):
        """`cache_dir`: True for `default_cache_dir()`, None/False for no disk cache."""
        self._cache_dir = default_cache_dir() if cache_dir is True else (Path(cache_dir) if cache_dir else None)
        self._wanted = (FIRST_YEAR, (today or date.today()).year + YEARS_AHEAD)
        # (first year, last year, sessions), replaced whole so a reader never pairs
        # one table with another's bounds.
        self._held: tuple[int, int, list[date]] | None = None
        self._version: str | None = None

    @property
    def cache_path(self) -> Path | None:
        if self._cache_dir is None:
            return None
        return self._cache_dir / f"xnys-sessions-{self._library_version()}.json"

    def _library_version(self) -> str:
        if self._version is None:
            self._version = library_version()
        return self._version

    def sessions(self, start: date, end: date) -> list[date]:
        """Trading days in the inclusive range, ascending."""
        if end < start:
            return []
        table = self._sessions_covering(start.year, end.year)
        return table[bisect.bisect_left(table, start) : bisect.bisect_right(table, end)]

    def _sessions_covering(self, first: int, last: int) -> list[date]:
        held = self._held
        if held is not None and held[0] <= first and last <= held[1]:
            return held[2]
        with _lock:
            held = self._held
            if held is None or not (held[0] <= first and last <= held[1]):
                first = min(first, self._wanted[0], held[0] if held else first)
                last = max(last, self._wanted[1], held[1] if held else last)
                self._held = held = self._load_or_build(first, last)
            return held[2]

    def _load_or_build(self, first: int, last: int) -> tuple[int, int, list[date]]:
        version = self._library_version()
        held = _memory.get(version)
        if held and held[0] <= first and held[1] >= last:
            return held
        stored = self._read_cache(version)
        if stored and stored[0] <= first and stored[1] >= last:
            _memory[version] = stored
            return stored
        for known in (stored, held):  # keep what was covered already, so a table only grows
            if known:
                first, last = min(first, known[0]), max(last, known[1])
        built = (first, last, build_sessions(first, last))
        _memory[version] = built
        self._write_cache(version, *built)
        return built

    def _read_cache(self, version: str) -> tuple[int, int, list[date]] | None:
        path = self.cache_path
        if path is None:
            return None
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if data.get("format") != CACHE_FORMAT or data.get("exchange_calendars") != version:
                return None
            table = [date.fromisoformat(d) for d in data["sessions"]]
            first, last = int(data["first_year"]), int(data["last_year"])
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
            logger.info("ignoring the trading-day cache %s (%s); rebuilding it", path, e)
            return None
        if not table or table != sorted(table):
            logger.info("ignoring the trading-day cache %s (not an ascending list of dates)", path)
            return None
        return first, last, table

    def _write_cache(self, version: str, first: int, last: int, table: list[date]) -> None:
        path = self.cache_path
        if path is None:
            return
        payload = {
            "format": CACHE_FORMAT,
            "exchange_calendars": version,
            "calendar": "XNYS",
            "first_year": first,
            "last_year": last,
            "sessions": [d.isoformat() for d in table],
        }
        tmp = None
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(payload, f, separators=(",", ":"))
            os.replace(tmp, path)  # readers see the old file or the new one, never half of one
            tmp = None
        except OSError as e:
            logger.info("could not write the trading-day cache %s (%s); using it from memory", path, e)
        finally:
            if tmp is not None:
                try:
                    os.unlink(tmp)
                except OSError:
                    pass


def build_sessions(first_year: int, last_year: int) -> list[date]:
    """All XNYS sessions from January 1st of `first_year` to December 31st of `last_year`,
    straight from exchange_calendars (imported here, only when a table must be built)."""
    with warnings.catch_warnings():
        # exchange_calendars 4.13 trips a pandas 3.1 deprecation inside its own code.
        warnings.filterwarnings("ignore", message="Series.values returning an ndarray")
        import exchange_calendars

        calendar = exchange_calendars.get_calendar("XNYS", start=f"{first_year}-01-01", end=f"{last_year}-12-31")
        return [ts.date() for ts in calendar.sessions]


_early_lock = threading.Lock()
_early: dict[int, frozenset[date]] = {}


def early_closes(start: date, end: date) -> set[date]:
    """XNYS sessions that close early (13:00 New York) in the inclusive range, straight
    from exchange_calendars' `early_closes`. Kept in memory per year: building a year
    imports the library (a second or two), so the panel pays it once per process, not on
    every rerun; the schedule itself never needs these (buys run at the open)."""
    if end < start:
        return set()
    missing = [y for y in range(start.year, end.year + 1) if y not in _early]
    if missing:
        with _early_lock:
            missing = [y for y in missing if y not in _early]
            if missing:
                with warnings.catch_warnings():
                    warnings.filterwarnings("ignore", message="Series.values returning an ndarray")
                    import exchange_calendars

                    calendar = exchange_calendars.get_calendar(
                        "XNYS", start=f"{min(missing)}-01-01", end=f"{max(missing)}-12-31")
                    days = [ts.date() for ts in calendar.early_closes]
                for year in missing:
                    _early[year] = frozenset(d for d in days if d.year == year)
    return {d for y in range(start.year, end.year + 1) for d in _early[y] if start <= d <= end}
