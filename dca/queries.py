"""Read-only questions the faces ask. The main one: what happens next, as of `now`.

`next_executions` is the one answer every face gives (`dca status`, `dca calendar`, the
panel's Upcoming page, later the API). It is built from what the engine itself uses --
the ledger's row histories (read without recording anything, as a dry run reads them)
and `Schedule.decide` -- so it cannot drift from what a run does:

- **done**: already recorded in the ledger, with its outcome (filled, skipped, missed, ...;
  `pending` when an order is in doubt). Listed, never counted in the totals.
- **due**: what a run now would attempt: the row's latest occurrence not yet recorded,
  including a catch-up from an earlier time (marked late past the grace period), exactly
  as `dca run --dry-run` shows it. It happens now, so it counts on today's total.
- **missed**: older occurrences a run now would record as missed (and a candidate past
  `max_lateness`); never bought, so never counted.
- **scheduled**: occurrences after `now` that a run at their time would buy.

Whether a guard (maximum per order or per day) lets a due execution through depends on
prices and is the dry run's to say; this answer is about what is due, at the row's amount.
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal

from dca.domain import Frequency, ParsedPlan, PlanRow
from dca.engine import RunOptions
from dca.execution import Execution, today_in_new_york
from dca.ledger import Ledger
from dca.schedule_rules import NEW_YORK, RowHistory, Schedule, elapsed, scheduled_at

ZERO = Decimal("0")


class State(enum.StrEnum):
    DONE = "done"
    DUE = "due"
    MISSED = "missed"
    SCHEDULED = "scheduled"


TO_COME = (State.DUE, State.SCHEDULED)


@dataclass(slots=True)
class NextExecution:
    # Not frozen: a year of a thousand-row plan is ~100k of these, and frozen dataclasses
    # are several times slower to create.
    row_id: str | None
    row_number: int
    symbol: str
    amount_usd: str
    frequency: str
    scheduled_at: datetime
    state: State = State.SCHEDULED
    late: bool = False
    outcome: str | None = None  # for done: the recorded status

    @property
    def to_come(self) -> bool:
        return self.state in TO_COME

    @property
    def label(self) -> str:
        """How a person reads the state: 'filled', 'due now (late)', 'scheduled'."""
        if self.state is State.DONE:
            if self.outcome == "pending":
                return "in doubt (pending): settled with the broker at the next run"
            return f"{self.outcome} (late)" if self.late and self.outcome != "missed" else str(self.outcome)
        if self.state is State.DUE:
            return "due now (late)" if self.late else "due now"
        if self.state is State.MISSED:
            return "missed at the next run"
        return "scheduled"

    def as_dict(self, scheduled_at_text: str | None = None) -> dict:
        return {
            "row_id": self.row_id,
            "row": self.row_number,
            "symbol": self.symbol,
            "amount_usd": self.amount_usd,
            "frequency": self.frequency,
            "scheduled_at": scheduled_at_text or self.scheduled_at.isoformat(),
            "state": str(self.state),
            "late": self.late,
            "outcome": self.outcome,
        }


@dataclass
class Outlook:
    """The executions of the Active, valid rows from `start` to `end`, as of `now`, by
    time then row. Due ones happen now: they are in it when today is in the range,
    whatever their scheduled date (a catch-up from an earlier day)."""

    now: datetime
    start: date
    end: date
    items: list[NextExecution] = field(default_factory=list)

    @property
    def today(self) -> date:
        return today_in_new_york(self.now)

    def to_come(self) -> list[NextExecution]:
        return [i for i in self.items if i.state in TO_COME]

    def done(self) -> list[NextExecution]:
        return [i for i in self.items if i.state is State.DONE]

    @property
    def total(self) -> Decimal:
        """Dollars still to be ordered in the range: due now and scheduled."""
        return sum(self.per_day().values(), ZERO)

    def per_day(self) -> dict[date, Decimal]:
        """Dollars still to come per New York day, in date order; a due execution counts
        on today, the day a run buys it."""
        days: dict[date, Decimal] = {}
        for item in self.items:
            if item.state in TO_COME:
                day = self.today if item.state is State.DUE else item.scheduled_at.date()
                days[day] = days.get(day, ZERO) + Decimal(item.amount_usd)
        return dict(sorted(days.items()))

    def as_dicts(self, items: list[NextExecution] | None = None) -> list[dict]:
        # ~250 distinct times in a year: format each once, not once per item.
        texts: dict[datetime, str] = {}
        result = []
        for item in self.items if items is None else items:
            text = texts.get(item.scheduled_at)
            if text is None:
                text = texts[item.scheduled_at] = item.scheduled_at.isoformat()
            result.append(item.as_dict(text))
        return result


    def as_json(self) -> str:
        """The items as a JSON array, one object per line: the objects of `as_dicts`,
        pieced together from parts each encoded once by `json.dumps` (a row's fields, a
        time, a state), since encoding each of a 1,000-row year's 250k items on its own
        takes seconds. Every byte still comes out of the JSON encoder, so it stays valid."""
        heads: dict[tuple, str] = {}
        times: dict[datetime, str] = {}
        tails: dict[tuple, str] = {}
        lines = []
        for item in self.items:
            key = (item.row_id, item.row_number, item.symbol, item.amount_usd, item.frequency)
            head = heads.get(key)
            if head is None:
                fields = dict(zip(("row_id", "row", "symbol", "amount_usd", "frequency"), key))
                head = heads[key] = json.dumps(fields)[:-1]  # without the closing brace
            at = times.get(item.scheduled_at)
            if at is None:
                at = times[item.scheduled_at] = json.dumps(item.scheduled_at.isoformat())
            state = (item.state, item.late, item.outcome)
            tail = tails.get(state)
            if tail is None:
                tail = tails[state] = json.dumps({"state": str(item.state), "late": item.late,
                                                  "outcome": item.outcome})[1:]  # without the opening one
            lines.append(f'{head}, "scheduled_at": {at}, {tail}')
        return "[\n" + ",\n".join(lines) + "\n]" if lines else "[]"


def next_executions(
    plan: ParsedPlan,
    schedule: Schedule,
    ledger: Ledger,
    now: datetime,
    start: date,
    end: date,
    options: RunOptions = RunOptions(),
) -> Outlook:
    """What happens next, as of `now`, for the Active, valid rows (see the module doc)."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    now = now.astimezone(NEW_YORK)
    today = today_in_new_york(now)
    rows = sorted(plan.active_rows, key=lambda r: r.row_number)
    identified = [r for r in rows if r.row_id]
    histories = ledger.row_histories(identified, today, observe=False)
    first_sight = RowHistory(today, None)  # what the next run records for a row it has not seen

    by_id = {r.row_id: r for r in identified}
    now_items: list[NextExecution] = []
    for execution in ledger.recorded_between(start, end):
        row = by_id.get(execution.row_id)
        if row is not None:
            now_items.append(_done(row, execution))

    today_in_range = start <= today <= end
    floors: list[date] = []  # per row: the first date a later occurrence may be bought
    for row in rows:
        history = histories.get(row.row_id, first_sight) if row.row_id else first_sight
        decision = schedule.decide(row.frequency, now, history, options.max_lateness)
        for day in decision.missed:
            if start <= day <= end:
                now_items.append(_item(row, day, schedule, State.MISSED))
        if decision.candidate is not None and today_in_range:  # it happens now, today
            if decision.candidate_too_late:
                now_items.append(_item(row, decision.candidate, schedule, State.MISSED))
            else:
                late = schedule.is_late(decision.candidate, now, options.grace)
                now_items.append(_item(row, decision.candidate, schedule, State.DUE, late))
        # As `decide` rules: never before the row became Active, never at or before its
        # latest record (a frequency change never reaches back).
        floor = history.active_since
        if history.last_recorded is not None:
            floor = max(floor, history.last_recorded + timedelta(days=1))
        floors.append(floor)

    later = _scheduled(rows, floors, schedule, now, start, end)
    now_items.sort(key=lambda i: (i.scheduled_at.timestamp(), i.row_number))
    if now_items and later and elapsed(now_items[-1].scheduled_at, later[0].scheduled_at) >= timedelta(0):
        # Only with records dated after `now` (a run made with a later --now).
        items = sorted(now_items + later, key=lambda i: (i.scheduled_at.timestamp(), i.row_number))
    else:
        items = now_items + later
    return Outlook(now, start, end, items)


def _item(row: PlanRow, day: date, schedule: Schedule, state: State, late: bool = False) -> NextExecution:
    return NextExecution(row.row_id, row.row_number, row.symbol, str(row.amount), str(row.frequency),
                         scheduled_at(day, schedule.run_time), state, late)


def _done(row: PlanRow, execution: Execution) -> NextExecution:
    return NextExecution(row.row_id, row.row_number, execution.symbol, str(execution.amount_usd),
                         execution.frequency, execution.scheduled_at.astimezone(NEW_YORK), State.DONE,
                         execution.late, str(execution.status))


def _scheduled(rows: list[PlanRow], floors: list[date], schedule: Schedule, now: datetime,
               start: date, end: date) -> list[NextExecution]:
    """Occurrences after `now` in [start, end], by time then row.

    Walks the days in order and, on each, the rows of the frequencies due that day in
    plan order, so the result comes out sorted without sorting ~100k entries."""
    first = max(start, today_in_new_york(now))
    due_on: dict[datetime, set[Frequency]] = {}
    for frequency in {r.frequency for r in rows}:
        for at in schedule.upcoming(frequency, first, end):
            due_on.setdefault(at, set()).add(frequency)
    fields = [(r.frequency, floor, r.row_id, r.row_number, r.symbol, str(r.amount), str(r.frequency))
              for r, floor in zip(rows, floors)]
    latest_floor = max(floors, default=first)
    by_frequencies: dict[frozenset, list[tuple]] = {}
    items: list[NextExecution] = []
    for at in sorted(due_on):
        if elapsed(at, now) <= timedelta(0):
            continue  # already due or past: `decide` answered for it
        key = frozenset(due_on[at])
        if key not in by_frequencies:
            by_frequencies[key] = [f[1:] for f in fields if f[0] in key]
        day = at.date()
        if day > latest_floor:
            items.extend(NextExecution(*f[1:], at) for f in by_frequencies[key])
        else:
            items.extend(NextExecution(*f[1:], at) for f in by_frequencies[key] if f[0] <= day)
    return items
