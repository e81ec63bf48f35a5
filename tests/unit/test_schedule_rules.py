"""The schedule rule on real NYSE dates (SCHEDULE-EXAMPLES.md), checked against XNYS.

Expected dates come from the worked examples or straight from `exchange_calendars`
(not through `NyseCalendar`), never from a holiday list written here: a named date in a
test is an example to read, the library is what decides it.
"""

from __future__ import annotations

import warnings
from datetime import date, datetime, time, timedelta, timezone
from itertools import groupby

import exchange_calendars
import pandas as pd
import pytest

from dca.domain import Frequency
from dca.schedule_rules import NEW_YORK, DueDecision, RowHistory, Schedule, scheduled_at
from tests.conftest import ny

DAILY, WEEKLY, MONTHLY = Frequency.DAILY, Frequency.WEEKLY, Frequency.MONTHLY
GRACE = timedelta(minutes=5)
EDT, EST = timedelta(hours=-4), timedelta(hours=-5)


# -- the reference: XNYS itself -----------------------------------------------------------


@pytest.fixture(scope="module")
def xnys():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return exchange_calendars.get_calendar("XNYS", start="2025-01-01", end="2029-12-31")


def xnys_sessions(xnys, start: date, end: date) -> list[date]:
    return [ts.date() for ts in xnys.sessions_in_range(pd.Timestamp(start), pd.Timestamp(end))]


def firsts(sessions: list[date], key) -> list[date]:
    return [min(group) for _, group in groupby(sessions, key=key)]


def weekday_holidays(xnys, start: date, end: date) -> list[date]:
    sessions = set(xnys_sessions(xnys, start, end))
    days = (start + timedelta(days=i) for i in range((end - start).days + 1))
    return [d for d in days if d.weekday() < 5 and d not in sessions]


@pytest.fixture
def schedule(calendar) -> Schedule:
    return Schedule(calendar)


def d(month_day: str, year: int = 2027) -> date:
    month, day = map(int, month_day.split("-"))
    return date(year, month, day)


def days(*month_days: str, year: int = 2027) -> list[date]:
    return [d(md, year) for md in month_days]


# -- April to June 2027, as in the worked examples ----------------------------------------

Q2_START, Q2_END = date(2027, 4, 1), date(2027, 6, 30)


def test_q2_2027_holidays_per_the_library(xnys):
    assert weekday_holidays(xnys, Q2_START, Q2_END) == days("05-31", "06-18")
    assert len(xnys_sessions(xnys, Q2_START, Q2_END)) == 63


def test_q2_2027_daily_is_every_trading_day(schedule, xnys):
    daily = schedule.between(DAILY, Q2_START, Q2_END)
    assert len(daily) == 63
    assert daily == xnys_sessions(xnys, Q2_START, Q2_END)
    assert d("05-31") not in daily and d("06-18") not in daily
    assert d("05-28") in daily and d("06-01") in daily and d("06-17") in daily and d("06-21") in daily


def test_q2_2027_weekly_is_the_first_trading_day_of_each_week(schedule):
    assert schedule.between(WEEKLY, Q2_START, Q2_END) == days(
        "04-05", "04-12", "04-19", "04-26", "05-03", "05-10", "05-17", "05-24",
        "06-01",  # Monday 05-31 is Memorial Day
        "06-07", "06-14", "06-21", "06-28",
    )


def test_week_of_march_29_had_its_execution_on_monday_not_on_april_1(schedule):
    weekly = schedule.between(WEEKLY, Q2_START, Q2_END)
    assert d("04-01") not in weekly  # Thursday: the first day of the range, not of the week
    assert schedule.between(WEEKLY, d("03-29"), d("04-04")) == [d("03-29")]
    assert schedule.between(WEEKLY, d("03-30"), d("04-04")) == []


def test_q2_2027_monthly(schedule):
    assert schedule.between(MONTHLY, Q2_START, Q2_END) == days("04-01", "05-03", "06-01")


def test_q2_2027_all_at_nine_eastern_daylight_time(schedule):
    for frequency in Frequency:
        for at in schedule.upcoming(frequency, Q2_START, Q2_END):
            assert (at.hour, at.minute, at.second) == (9, 0, 0)
            assert at.utcoffset() == EDT
            assert at.astimezone(timezone.utc).hour == 13


def test_monthly_does_not_start_mid_month(schedule):
    # A range starting 04-02 contains no first trading day of April.
    assert schedule.between(MONTHLY, d("04-02"), d("05-31")) == [d("05-03")]


# -- holidays -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("holiday", "week_start", "expected_weekly"),
    [
        (date(2027, 1, 18), date(2027, 1, 18), date(2027, 1, 19)),  # Martin Luther King Jr. Day
        (date(2027, 2, 15), date(2027, 2, 15), date(2027, 2, 16)),  # Presidents Day
        (date(2027, 5, 31), date(2027, 5, 31), date(2027, 6, 1)),  # Memorial Day
        (date(2026, 9, 7), date(2026, 9, 7), date(2026, 9, 8)),  # Labor Day
    ],
)
def test_monday_holiday_moves_weekly_to_tuesday(schedule, xnys, holiday, week_start, expected_weekly):
    assert holiday in weekday_holidays(xnys, holiday, holiday)
    week_end = week_start + timedelta(days=6)
    assert schedule.between(WEEKLY, week_start, week_end) == [expected_weekly]
    assert schedule.between(DAILY, week_start, week_end)[0] == expected_weekly


def test_thanksgiving_2026_daily_skips_it_and_the_friday_is_a_session(schedule, xnys):
    thanksgiving, friday = date(2026, 11, 26), date(2026, 11, 27)
    assert weekday_holidays(xnys, thanksgiving, friday) == [thanksgiving]
    daily = schedule.between(DAILY, date(2026, 11, 23), date(2026, 11, 30))
    assert daily == [date(2026, 11, 23), date(2026, 11, 24), date(2026, 11, 25), friday, date(2026, 11, 30)]
    assert schedule.between(WEEKLY, date(2026, 11, 23), date(2026, 11, 29)) == [date(2026, 11, 23)]


def test_good_friday_2027_daily_skips_it(schedule, xnys):
    good_friday = date(2027, 3, 26)
    assert weekday_holidays(xnys, good_friday, good_friday) == [good_friday]
    assert schedule.between(DAILY, d("03-22"), d("03-29")) == days("03-22", "03-23", "03-24", "03-25", "03-29")
    assert schedule.between(WEEKLY, d("03-22"), d("03-28")) == [d("03-22")]


def test_new_year_2027_monthly_january_is_january_4(schedule, xnys):
    assert date(2027, 1, 1) in weekday_holidays(xnys, date(2027, 1, 1), date(2027, 1, 1))
    assert schedule.between(MONTHLY, date(2026, 12, 15), date(2027, 1, 31)) == [date(2027, 1, 4)]
    assert schedule.between(DAILY, date(2026, 12, 31), date(2027, 1, 4)) == [date(2026, 12, 31), date(2027, 1, 4)]


def test_new_year_2028_on_a_saturday_is_not_observed_on_friday(schedule, xnys):
    # NYSE does not close on Friday 2027-12-31 for a Saturday New Year's Day.
    assert date(2027, 12, 31) in xnys_sessions(xnys, date(2027, 12, 31), date(2027, 12, 31))
    assert schedule.between(MONTHLY, date(2027, 12, 1), date(2028, 1, 31)) == [date(2027, 12, 1), date(2028, 1, 3)]


@pytest.mark.parametrize(
    ("month_start", "expected"),
    [
        (date(2027, 5, 1), date(2027, 5, 3)),  # Saturday
        (date(2026, 8, 1), date(2026, 8, 3)),  # Saturday
        (date(2026, 11, 1), date(2026, 11, 2)),  # Sunday
        (date(2027, 8, 1), date(2027, 8, 2)),  # Sunday
        (date(2027, 1, 1), date(2027, 1, 4)),  # holiday, then a weekend
        (date(2028, 1, 1), date(2028, 1, 3)),  # Saturday
        (date(2027, 4, 1), date(2027, 4, 1)),  # an ordinary Thursday
    ],
)
def test_month_starting_on_a_weekend_or_holiday(schedule, xnys, month_start, expected):
    month_end = (month_start.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)
    assert xnys_sessions(xnys, month_start, month_end)[0] == expected
    assert schedule.between(MONTHLY, month_start, month_end) == [expected]


@pytest.mark.parametrize("frequency", list(Frequency))
def test_three_years_match_the_library(calendar, xnys, frequency):
    start, end = date(2026, 1, 1), date(2028, 12, 31)
    # Start the reference a week early so the first week of 2026 is whole.
    sessions = xnys_sessions(xnys, start - timedelta(days=7), end)
    expected = {
        DAILY: sessions,
        WEEKLY: firsts(sessions, lambda s: s.isocalendar()[:2]),
        MONTHLY: firsts(sessions, lambda s: (s.year, s.month)),
    }[frequency]
    expected = [s for s in expected if start <= s <= end]
    assert Schedule(calendar).between(frequency, start, end) == expected


def test_answers_do_not_depend_on_what_was_asked_before(calendar, schedule):
    # The schedule caches one window of sessions and grows it; any order of questions
    # must give the same answers as a fresh schedule.
    questions = [
        (WEEKLY, date(2027, 6, 1), date(2027, 6, 30)),
        (WEEKLY, date(2027, 4, 1), date(2027, 4, 30)),  # grows the window backwards
        (MONTHLY, date(2026, 12, 15), date(2027, 2, 28)),
        (DAILY, date(2027, 3, 10), date(2027, 3, 20)),  # inside the window
        (WEEKLY, date(2027, 12, 20), date(2028, 1, 20)),  # grows it forwards
    ]
    for frequency, start, end in questions:
        assert schedule.between(frequency, start, end) == Schedule(calendar).between(frequency, start, end)
    assert schedule.between(WEEKLY, date(2027, 4, 1), date(2027, 4, 30)) == days("04-05", "04-12", "04-19", "04-26")


def test_empty_range(schedule):
    assert schedule.between(DAILY, date(2027, 5, 10), date(2027, 5, 9)) == []
    assert schedule.between(DAILY, date(2027, 5, 8), date(2027, 5, 9)) == []  # a weekend


# -- daylight saving time -----------------------------------------------------------------


def test_dst_starts_march_2027(schedule):
    friday, monday = schedule.upcoming(DAILY, d("03-12"), d("03-15"))
    assert friday == ny(2027, 3, 12, 9) and friday.utcoffset() == EST
    assert monday == ny(2027, 3, 15, 9) and monday.utcoffset() == EDT
    assert friday.isoformat() == "2027-03-12T09:00:00-05:00"
    assert monday.isoformat() == "2027-03-15T09:00:00-04:00"
    assert friday.astimezone(timezone.utc).hour == 14 and monday.astimezone(timezone.utc).hour == 13


def test_dst_ends_november_2027(schedule):
    friday, monday = schedule.upcoming(DAILY, d("11-05"), d("11-08"))
    assert friday.isoformat() == "2027-11-05T09:00:00-04:00"
    assert monday.isoformat() == "2027-11-08T09:00:00-05:00"
    assert scheduled_at(d("11-05"), time(9)).utcoffset() == EDT
    assert scheduled_at(d("11-08"), time(9)).utcoffset() == EST


@pytest.mark.parametrize(
    ("utc_now", "expected"),
    [
        # 09:00:30 in New York on each side of both changes, given in UTC.
        (datetime(2027, 3, 12, 14, 0, 30, tzinfo=timezone.utc), date(2027, 3, 12)),
        (datetime(2027, 3, 15, 13, 0, 30, tzinfo=timezone.utc), date(2027, 3, 15)),
        (datetime(2027, 11, 5, 13, 0, 30, tzinfo=timezone.utc), date(2027, 11, 5)),
        (datetime(2027, 11, 8, 14, 0, 30, tzinfo=timezone.utc), date(2027, 11, 8)),
    ],
)
def test_due_at_nine_new_york_whatever_the_offset(schedule, utc_now, expected):
    history = RowHistory(active_since=expected - timedelta(days=10), last_recorded=expected - timedelta(days=1))
    decision = schedule.decide(DAILY, utc_now, history)
    assert decision.candidate == expected
    assert not schedule.is_late(expected, utc_now, GRACE)
    # One hour earlier (what a fixed offset would get wrong) it is not yet due.
    assert schedule.decide(DAILY, utc_now - timedelta(hours=1), history).candidate is None


def test_a_utc_evening_is_still_the_new_york_day(schedule):
    # 2027-05-04 02:00 UTC is 2027-05-03 22:00 in New York: 05-04 is not due yet.
    now = datetime(2027, 5, 4, 2, 0, tzinfo=timezone.utc)
    history = RowHistory(active_since=date(2027, 4, 1), last_recorded=date(2027, 4, 30))
    assert schedule.decide(DAILY, now, history) == DueDecision(date(2027, 5, 3), False, [])


# -- run time -------------------------------------------------------------------------------


def test_run_time_is_configurable(calendar):
    schedule = Schedule(calendar, run_time=time(10, 30))
    assert schedule.upcoming(WEEKLY, d("05-31"), d("06-06")) == [ny(2027, 6, 1, 10, 30)]
    history = RowHistory(active_since=date(2027, 5, 3), last_recorded=date(2027, 5, 3))
    assert schedule.decide(DAILY, ny(2027, 5, 4, 10, 29, 59), history).candidate is None
    assert schedule.decide(DAILY, ny(2027, 5, 4, 10, 30), history).candidate == date(2027, 5, 4)
    assert not schedule.is_late(date(2027, 5, 4), ny(2027, 5, 4, 10, 35), GRACE)
    assert schedule.is_late(date(2027, 5, 4), ny(2027, 5, 4, 10, 35, 1), GRACE)


def test_run_time_keeps_dst_offsets(calendar):
    schedule = Schedule(calendar, run_time=time(15, 45))
    friday, monday = schedule.upcoming(DAILY, d("03-12"), d("03-15"))
    assert friday.isoformat() == "2027-03-12T15:45:00-05:00"
    assert monday.isoformat() == "2027-03-15T15:45:00-04:00"


# -- Schedule.decide ------------------------------------------------------------------------


def test_weekly_row_first_seen_on_wednesday_waits_for_next_week(schedule):
    first_seen = RowHistory(active_since=date(2027, 5, 5), last_recorded=None)
    assert schedule.decide(WEEKLY, ny(2027, 5, 5, 9, 1), first_seen) == DueDecision(None, False, [])
    assert schedule.decide(WEEKLY, ny(2027, 5, 7, 16), first_seen) == DueDecision(None, False, [])
    assert schedule.decide(WEEKLY, ny(2027, 5, 10, 8, 59, 59), first_seen) == DueDecision(None, False, [])
    assert schedule.decide(WEEKLY, ny(2027, 5, 10, 9), first_seen) == DueDecision(date(2027, 5, 10), False, [])


def test_monthly_row_first_seen_mid_month_waits_for_next_month(schedule):
    first_seen = RowHistory(active_since=date(2027, 5, 12), last_recorded=None)
    assert schedule.decide(MONTHLY, ny(2027, 5, 12, 9, 1), first_seen).candidate is None
    assert schedule.decide(MONTHLY, ny(2027, 6, 1, 9, 1), first_seen) == DueDecision(date(2027, 6, 1), False, [])


def test_daily_row_first_seen_in_the_afternoon_takes_that_morning(schedule):
    first_seen = RowHistory(active_since=date(2027, 5, 5), last_recorded=None)
    decision = schedule.decide(DAILY, ny(2027, 5, 5, 15), first_seen)
    assert decision == DueDecision(date(2027, 5, 5), False, [])
    assert schedule.is_late(date(2027, 5, 5), ny(2027, 5, 5, 15), GRACE)


def test_daily_row_first_seen_before_its_time_gets_nothing_yet(schedule):
    first_seen = RowHistory(active_since=date(2027, 5, 5), last_recorded=None)
    assert schedule.decide(DAILY, ny(2027, 5, 5, 8, 59), first_seen) == DueDecision(None, False, [])


@pytest.mark.parametrize(
    ("now", "previous_session"),
    [
        (ny(2027, 5, 4, 8, 59), date(2027, 5, 3)),  # Tuesday morning: Monday
        (ny(2027, 5, 10, 8, 59), date(2027, 5, 7)),  # Monday morning: Friday
        (ny(2027, 6, 1, 8, 59), date(2027, 5, 28)),  # after Memorial Day: the Friday before
        (ny(2027, 3, 29, 8, 59), date(2027, 3, 25)),  # after Good Friday: Thursday
    ],
)
def test_before_run_time_the_latest_occurrence_is_the_previous_session(schedule, now, previous_session):
    history = RowHistory(active_since=date(2027, 3, 1), last_recorded=previous_session - timedelta(days=1))
    decision = schedule.decide(DAILY, now, history)
    assert decision.candidate == previous_session
    assert schedule.latest_at_or_before(DAILY, now, date(2027, 3, 1)) == previous_session


def test_before_run_time_on_monday_weekly_latest_is_last_week(schedule):
    history = RowHistory(active_since=date(2027, 4, 1), last_recorded=None)
    assert schedule.decide(WEEKLY, ny(2027, 5, 10, 8, 59), history) == DueDecision(
        date(2027, 5, 3), False, days("04-05", "04-12", "04-19", "04-26")
    )


def test_exactly_at_run_time_is_due(schedule):
    history = RowHistory(active_since=date(2027, 5, 3), last_recorded=date(2027, 5, 3))
    assert schedule.decide(DAILY, ny(2027, 5, 4, 9), history).candidate == date(2027, 5, 4)
    assert schedule.decide(DAILY, ny(2027, 5, 4, 8, 59, 59), history).candidate is None


def test_nothing_when_latest_is_already_recorded(schedule):
    history = RowHistory(active_since=date(2027, 5, 3), last_recorded=date(2027, 5, 3))
    assert schedule.decide(WEEKLY, ny(2027, 5, 6, 11, 30), history) == DueDecision(None, False, [])
    assert schedule.decide(MONTHLY, ny(2027, 5, 28, 16), history) == DueDecision(None, False, [])


def test_frequency_change_never_reaches_back_before_last_recorded(schedule):
    # Daily until 05-20, then changed to Monthly: May's 05-03 must not come back.
    history = RowHistory(active_since=date(2027, 4, 1), last_recorded=date(2027, 5, 20))
    assert schedule.decide(MONTHLY, ny(2027, 5, 25, 9, 1), history) == DueDecision(None, False, [])
    assert schedule.decide(MONTHLY, ny(2027, 6, 1, 9, 1), history) == DueDecision(date(2027, 6, 1), False, [])
    # Daily until Wednesday 05-05, then Weekly: nothing until Monday 05-10, and no missed.
    history = RowHistory(active_since=date(2027, 4, 1), last_recorded=date(2027, 5, 5))
    assert schedule.decide(WEEKLY, ny(2027, 5, 7, 9, 1), history) == DueDecision(None, False, [])
    assert schedule.decide(WEEKLY, ny(2027, 5, 10, 9, 1), history) == DueDecision(date(2027, 5, 10), False, [])


@pytest.mark.parametrize("frequency", list(Frequency))
def test_candidate_is_never_older_than_last_recorded(schedule, frequency):
    last = date(2027, 5, 12)
    history = RowHistory(active_since=date(2027, 1, 4), last_recorded=last)
    now = ny(2027, 5, 12, 12)
    while now < ny(2027, 7, 1):
        decision = schedule.decide(frequency, now, history)
        if decision.candidate is not None:
            assert decision.candidate > last
        assert all(last < m < (decision.candidate or date.max) for m in decision.missed)
        now += timedelta(hours=7)


def test_missed_are_the_occurrences_between_last_recorded_and_candidate(schedule):
    history = RowHistory(active_since=date(2027, 5, 3), last_recorded=date(2027, 5, 3))
    assert schedule.decide(DAILY, ny(2027, 5, 6, 11, 30), history) == DueDecision(
        date(2027, 5, 6), False, days("05-04", "05-05")
    )
    june = schedule.decide(DAILY, ny(2027, 6, 1, 9, 3), RowHistory(date(2027, 5, 3), date(2027, 5, 6)))
    assert june.candidate == date(2027, 6, 1)
    assert june.missed == schedule.between(DAILY, date(2027, 5, 7), date(2027, 5, 28))
    assert len(june.missed) == 16 and date(2027, 5, 31) not in june.missed
    weekly = schedule.decide(WEEKLY, ny(2027, 6, 1, 9, 3), RowHistory(date(2027, 5, 3), date(2027, 5, 3)))
    assert weekly == DueDecision(date(2027, 6, 1), False, days("05-10", "05-17", "05-24"))
    monthly = schedule.decide(MONTHLY, ny(2027, 6, 1, 9, 3), RowHistory(date(2027, 5, 3), date(2027, 5, 3)))
    assert monthly == DueDecision(date(2027, 6, 1), False, [])


def test_missed_start_at_active_since_when_nothing_recorded(schedule):
    history = RowHistory(active_since=date(2027, 5, 3), last_recorded=None)
    decision = schedule.decide(DAILY, ny(2027, 5, 6, 11, 30), history)
    assert decision == DueDecision(date(2027, 5, 6), False, days("05-03", "05-04", "05-05"))


def test_active_since_is_a_floor_after_a_pause(schedule):
    # Bought on 05-03, paused, made Active again on 05-12: the pause is not missed.
    history = RowHistory(active_since=date(2027, 5, 12), last_recorded=date(2027, 5, 3))
    assert schedule.decide(DAILY, ny(2027, 5, 12, 9, 1), history) == DueDecision(date(2027, 5, 12), False, [])
    assert schedule.decide(DAILY, ny(2027, 5, 14, 9, 1), history) == DueDecision(
        date(2027, 5, 14), False, days("05-12", "05-13")
    )
    # Made Active again on a Wednesday: Weekly waits for Monday, and its Monday is not owed.
    assert schedule.decide(WEEKLY, ny(2027, 5, 12, 9, 1), history) == DueDecision(None, False, [])
    assert schedule.decide(WEEKLY, ny(2027, 5, 17, 9, 1), history) == DueDecision(date(2027, 5, 17), False, [])


def test_max_lateness_marks_candidate_too_late(schedule):
    history = RowHistory(active_since=date(2027, 5, 3), last_recorded=date(2027, 5, 3))
    limit = timedelta(hours=2)
    assert schedule.decide(DAILY, ny(2027, 5, 4, 11), history, limit) == DueDecision(date(2027, 5, 4), False, [])
    assert schedule.decide(DAILY, ny(2027, 5, 4, 11, 0, 1), history, limit) == DueDecision(date(2027, 5, 4), True, [])
    late = schedule.decide(DAILY, ny(2027, 5, 6, 11, 30), history, limit)
    assert late == DueDecision(date(2027, 5, 6), True, days("05-04", "05-05"))
    assert schedule.decide(DAILY, ny(2027, 5, 6, 11, 30), history, None).candidate_too_late is False


def test_max_lateness_counts_real_time_across_dst(schedule):
    # Friday 09:00 EST (14:00 UTC) to Monday 08:59 EDT (12:59 UTC) is 70h59m of real
    # time; the wall clocks are 71h59m apart. The answer must be the same whichever zone
    # `now` is given in (Python subtracts same-tzinfo datetimes by wall clock).
    history = RowHistory(active_since=date(2027, 3, 1), last_recorded=date(2027, 3, 11))
    now_ny = ny(2027, 3, 15, 8, 59)
    now_utc = now_ny.astimezone(timezone.utc)
    friday_utc = scheduled_at(date(2027, 3, 12), time(9)).astimezone(timezone.utc)
    assert now_utc - friday_utc == timedelta(hours=70, minutes=59)
    limit = timedelta(hours=71, minutes=30)
    assert schedule.decide(DAILY, now_utc, history, limit) == DueDecision(date(2027, 3, 12), False, [])
    assert schedule.decide(DAILY, now_ny, history, limit) == DueDecision(date(2027, 3, 12), False, [])
    tight = timedelta(hours=70, minutes=58)
    assert schedule.decide(DAILY, now_utc, history, tight).candidate_too_late is True
    assert schedule.decide(DAILY, now_ny, history, tight).candidate_too_late is True


@pytest.mark.parametrize(
    ("now", "late"),
    [
        (ny(2027, 5, 4, 9, 0), False),
        (ny(2027, 5, 4, 9, 3), False),
        (ny(2027, 5, 4, 9, 5, 0), False),
        (ny(2027, 5, 4, 9, 5, 0, 1), True),
        (ny(2027, 5, 4, 9, 5, 1), True),
        (ny(2027, 5, 4, 11, 30), True),
    ],
)
def test_is_late_after_five_minutes_of_grace(schedule, now, late):
    assert schedule.is_late(date(2027, 5, 4), now, GRACE) is late


def test_is_late_compares_instants_not_wall_clocks(schedule):
    at_0905_ny = datetime(2027, 5, 4, 13, 5, tzinfo=timezone.utc)
    assert at_0905_ny.astimezone(NEW_YORK).time() == time(9, 5)
    assert schedule.is_late(date(2027, 5, 4), at_0905_ny, GRACE) is False
    assert schedule.is_late(date(2027, 5, 4), at_0905_ny + timedelta(seconds=1), GRACE) is True
