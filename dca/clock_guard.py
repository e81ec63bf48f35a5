"""The time rules that keep a mistaken time travel from poisoning the ledger.

A run records what it sees as of its `now`: the day a row is first seen, which dates are
missed, which are due. A run far in the future (`--now 9999-12-31`) would store first-seen
dates no real run ever reaches, and every real run after it would silently find nothing
due. So:

- `now` must lie in a supported range: from 2000-01-01 (New York) to ten years ahead of
  the real clock, for every run, dry or not;
- a run that records anything is refused when its New York day is earlier than the
  latest moment this ledger has already run at (kept in the ledger's `runs` table);
- a recording run more than a day ahead of the real clock goes ahead, but the person is
  told that this ledger will refuse earlier days from then on.

The real clock is an argument (default: the system clock) so tests travel in time.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from typing import Protocol
from zoneinfo import ZoneInfo

from dca.errors import DcaError

NEW_YORK = ZoneInfo("America/New_York")
EARLIEST = datetime(2000, 1, 1, tzinfo=NEW_YORK)
YEARS_AHEAD = 10
AHEAD_WARNING = timedelta(days=1)


class TimeRefused(DcaError):
    """The time a run was asked to run at is refused; nothing ran or was recorded."""


class _RunMemory(Protocol):
    path: object

    def latest_run_at(self) -> datetime | None: ...


def _real(real_now: datetime | None) -> datetime:
    return datetime.now(timezone.utc) if real_now is None else real_now


def latest_allowed(real_now: datetime | None = None) -> datetime:
    """Ten years ahead of the real clock (29 February falls back to the 28th)."""
    real = _real(real_now).astimezone(NEW_YORK)
    try:
        return real.replace(year=real.year + YEARS_AHEAD)
    except ValueError:
        return real.replace(year=real.year + YEARS_AHEAD, day=28)


def check_range(now: datetime, real_now: datetime | None = None) -> None:
    """Refuse a `now` outside 2000-01-01 .. ten years ahead of the real clock."""
    latest = latest_allowed(real_now)
    if not EARLIEST <= now <= latest:
        raise TimeRefused(
            f"the time {_wall(now)} is outside the range dca runs at, from {EARLIEST:%Y-%m-%d} "
            f"to {latest:%Y-%m-%d} (ten years from today); give a time in that range"
        )


def check_not_earlier(now: datetime, ledger: _RunMemory) -> None:
    """Refuse a recording run on an earlier New York day than the ledger has run at."""
    latest = ledger.latest_run_at()
    if latest is None or _ny_day(now) >= _ny_day(latest):
        return
    raise TimeRefused(
        f"ledger {ledger.path} has already run as of {_show(latest)}, so a run that records "
        f"as of the earlier day {_ny_day(now)} is refused (it would buy and miss the wrong "
        "days); to try other times, use a separate ledger with --db or DCA_HOME, or add --dry-run"
    )


def check_run(now: datetime, ledger: _RunMemory, dry_run: bool, real_now: datetime | None = None) -> None:
    """Every rule that applies before a run starts. Dry runs record nothing, so only
    the range applies to them."""
    check_range(now, real_now)
    if not dry_run:
        check_not_earlier(now, ledger)


def ahead_warning(now: datetime, real_now: datetime | None = None) -> str | None:
    """The warning for a recording run more than a day ahead of the real clock, if any."""
    if now - _real(real_now) <= AHEAD_WARNING:
        return None
    return (
        f"running as of {_show(now)}, ahead of the real clock: from now on this ledger refuses "
        f"runs that record on a day before {_ny_day(now)}; use --dry-run or a separate "
        "--db/DCA_HOME for trying times out"
    )


def _ny_day(moment: datetime) -> date:
    try:
        return moment.astimezone(NEW_YORK).date()
    except (OverflowError, ValueError):  # a moment at the very edge of year 9999 or 1
        return moment.date()


def _wall(moment: datetime) -> str:
    """The wall-clock time as given (year 1 and 9999 cannot all be converted to New York)."""
    m = moment
    return f"{m.year:04d}-{m.month:02d}-{m.day:02d} {m.hour:02d}:{m.minute:02d}"


def _show(moment: datetime) -> str:
    try:
        return f"{moment.astimezone(NEW_YORK):%Y-%m-%d %H:%M %Z}"
    except (OverflowError, ValueError):  # 9999-12-31 in a zone west of New York
        return moment.isoformat(timespec="minutes")
