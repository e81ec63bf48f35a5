"""A Schedule shared by concurrent panel sessions: its window cache is rebuilt by one
thread at a time and every thread gets the same dates as a Schedule of its own."""

from __future__ import annotations

import threading
from datetime import date, timedelta

from dca.domain import Frequency
from dca.schedule_rules import Schedule
from dca.trading_calendar import NyseCalendar


class WatchedCalendar:
    """Real XNYS sessions; counts how many threads are inside `sessions` at once, and
    holds the first one there until a second arrives (or a short while passes)."""

    def __init__(self, real: NyseCalendar):
        self.real = real
        self.inside = 0
        self.most_inside = 0
        self.guard = threading.Lock()
        self.both_in = threading.Barrier(2, timeout=0.2)

    def sessions(self, start: date, end: date) -> list[date]:
        with self.guard:
            self.inside += 1
            self.most_inside = max(self.most_inside, self.inside)
        try:
            self.both_in.wait()
        except threading.BrokenBarrierError:
            pass  # alone in here: what a lock around the rebuild must ensure
        try:
            return self.real.sessions(start, end)
        finally:
            with self.guard:
                self.inside -= 1


def test_two_sessions_widening_the_window_at_once_rebuild_it_one_at_a_time(calendar):
    watched = WatchedCalendar(calendar)
    shared = Schedule(watched)
    ranges = {"a": (date(2027, 1, 1), date(2027, 6, 30)), "b": (date(2026, 1, 1), date(2026, 12, 31))}
    results: dict[str, list[date]] = {}

    def ask(name: str) -> None:
        results[name] = shared.between(Frequency.DAILY, *ranges[name])

    threads = [threading.Thread(target=ask, args=(name,)) for name in ranges]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert watched.most_inside == 1
    for name, (start, end) in ranges.items():
        assert results[name] == Schedule(calendar).between(Frequency.DAILY, start, end)
    # And what the cache holds afterwards still answers both ranges and what lies between.
    whole = (date(2026, 1, 1), date(2027, 6, 30))
    assert shared.between(Frequency.MONTHLY, *whole) == Schedule(calendar).between(Frequency.MONTHLY, *whole)
    assert shared.between(Frequency.DAILY, whole[0], whole[0] + timedelta(days=3)) == [date(2026, 1, 2)]
