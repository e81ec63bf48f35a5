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
from dca.errors import DcaError
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


# -- the questions the HTTP API (and any other face) asks ------------------------------------

# A heartbeat older than this means the worker is not ticking (it ticks every minute).
HEARTBEAT_STALE_AFTER = timedelta(minutes=5)
HISTORY_MAX_PAGE = 500


def broker_mode(broker) -> str:
    """SIMULATED, PAPER or LIVE: the same label as every notification (a real broker that
    does not say is taken as LIVE, the safe assumption when money may be real)."""
    from dca.delivery import account_label

    return account_label(broker)


def plan_overview(plan: ParsedPlan, schedule: Schedule, ledger: Ledger, now: datetime,
                  options: RunOptions = RunOptions()) -> dict:
    """The plan's rows with their parsed values, each row's next execution (None for an
    Inactive row), and the rows' errors and warnings."""
    today = today_in_new_york(now)
    outlook = next_executions(plan, schedule, ledger, now, today, today + timedelta(days=40), options)
    upcoming: dict[str | None, NextExecution] = {}
    for item in outlook.to_come():
        upcoming.setdefault(item.row_id, item)
    rows = []
    for r in sorted(plan.rows, key=lambda r: r.row_number):
        item = upcoming.get(r.row_id) if r.active and r.row_id else None
        rows.append({
            "row": r.row_number, "row_id": r.row_id, "status": str(r.status), "symbol": r.symbol,
            "amount_usd": str(r.amount), "frequency": str(r.frequency), "log": r.log,
            "next_execution": None if item is None else {
                "scheduled_at": item.scheduled_at.isoformat(), "state": str(item.state), "late": item.late},
        })
    return {"rows": rows, "errors": [i.as_dict() for i in plan.errors],
            "warnings": [i.as_dict() for i in plan.warnings]}


def execution_counts(ledger: Ledger) -> dict[str, int]:
    """How many executions the ledger holds per status."""
    with ledger._connect() as db:  # a read; the ledger has no counting method of its own
        return {r[0]: r[1] for r in db.execute("SELECT status, COUNT(*) FROM executions GROUP BY status")}


def outbox_backlog(ledger: Ledger) -> dict[str, int]:
    return {kind: len(ledger.undelivered(kind)) for kind in ("log", "notify")}


def worker_heartbeat(ledger: Ledger) -> dict | None:
    """The worker's last heartbeat, or None when no worker has ever run on this ledger
    (also when this version of the ledger has no heartbeat table yet)."""
    reader = getattr(ledger, "heartbeat", None)
    if callable(reader):
        return reader()
    with ledger._connect() as db:
        try:
            r = db.execute("SELECT * FROM worker_heartbeat WHERE id=1").fetchone()
        except Exception:  # no such table: no worker ever ran here
            return None
    return None if r is None else dict(r)


def heartbeat_problem(beat: dict | None, now: datetime, stale_after: timedelta = HEARTBEAT_STALE_AFTER) -> str | None:
    """Why the worker is not known to be alive, or None (also when none has ever run)."""
    if beat is None:
        return None
    if beat.get("state") == "stopped":
        return f"the worker stopped at {beat.get('last_tick')}"
    try:
        tick = datetime.fromisoformat(str(beat.get("last_tick")))
    except ValueError:
        return "the worker's heartbeat has no readable time"
    if tick.tzinfo is None:
        tick = tick.replace(tzinfo=NEW_YORK)
    age = now - tick
    if age > stale_after:
        return f"the worker's last heartbeat is {int(age.total_seconds() // 60)} minutes old ({beat.get('last_tick')})"
    return None


def status_overview(plan_source, schedule: Schedule, ledger: Ledger, broker, now: datetime,
                    options: RunOptions = RunOptions(), limit: int = 10) -> dict:
    """Last run, next executions, counts, outbox backlog, broker mode, worker heartbeat."""
    today = today_in_new_york(now)
    payload: dict = {"broker": broker.name, "mode": broker_mode(broker), "simulated": broker.simulated,
                     "plan": plan_source.description, "last_run": ledger.last_run(),
                     "counts": execution_counts(ledger), "outbox": outbox_backlog(ledger),
                     "worker": worker_heartbeat(ledger)}
    try:
        plan = plan_source.load()
    except DcaError as error:
        payload.update(next_executions=[], done_today=[], plan_errors=[{"row": None, "message": str(error)}])
        return payload
    outlook = next_executions(plan, schedule, ledger, now, today, today + timedelta(days=31), options)
    payload["next_executions"] = outlook.as_dicts(outlook.to_come()[:limit])
    payload["done_today"] = outlook.as_dicts([i for i in outlook.done() if i.scheduled_at.date() == today])
    payload["plan_errors"] = [i.as_dict() for i in plan.errors]
    return payload


def history_page(ledger: Ledger, limit: int = 50, offset: int = 0, symbol: str | None = None,
                 status: str | None = None, row_id: str | None = None, start: date | None = None,
                 end: date | None = None, kind: str | None = None) -> dict:
    """The ledger's executions, newest first, filtered, one page of them and the total.
    `kind`: plan, manual (POST /orders) or tradingview (alerts)."""
    from dca.ledger import _from_row  # the ledger's own row reader, so the shapes cannot drift
    from dca.one_off import one_off_keys

    where, args = [], []
    for column, value in (("symbol", symbol and symbol.upper()), ("status", status), ("row_id", row_id)):
        if value:
            where.append(f"{column} = ?")
            args.append(value)
    if start:
        where.append("scheduled_date >= ?")
        args.append(start.isoformat())
    if end:
        where.append("scheduled_date <= ?")
        args.append(end.isoformat())
    if kind == "manual":
        where.append("frequency = 'Once' AND row_id LIKE 'm-%'")
    elif kind == "tradingview":
        where.append("frequency = 'Once' AND row_id LIKE 'tv-%'")
    elif kind == "plan":
        where.append("frequency != 'Once'")
    clause = (" WHERE " + " AND ".join(where)) if where else ""
    limit = max(1, min(limit, HISTORY_MAX_PAGE))
    with ledger._connect() as db:  # a read; paged and filtered in SQL, not in memory
        total = db.execute(f"SELECT COUNT(*) FROM executions{clause}", args).fetchone()[0]
        rows = db.execute(f"SELECT * FROM executions{clause} ORDER BY scheduled_at DESC, id DESC LIMIT ? OFFSET ?",
                          [*args, limit, max(0, offset)]).fetchall()
    keys = one_off_keys(ledger)
    items = []
    for r in rows:
        item = _from_row(r).as_dict()
        if item["row_id"] in keys:
            item["source"], item["key"] = keys[item["row_id"]]
        items.append(item)
    return {"total": total, "limit": limit, "offset": max(0, offset), "items": items}


def health(plan_source, broker, ledger: Ledger, notifier, now: datetime,
           stale_after: timedelta = HEARTBEAT_STALE_AFTER) -> dict:
    """Whether every configured part answers, part by part. Answered without a token, so
    the reasons are fixed phrases, never an adapter's own error text (it may hold a URL)."""
    parts: dict[str, dict] = {}

    def part(name: str, ok: bool, detail: str) -> None:
        parts[name] = {"ok": ok, "detail": detail}

    try:
        ledger.last_run()
        part("ledger", True, "read-only: nothing can be recorded" if ledger.read_only else "answers")
        if ledger.read_only:
            parts["ledger"]["ok"] = False
    except Exception as error:
        part("ledger", False, f"cannot be read ({type(error).__name__})")
    try:
        plan = plan_source.load()
        part("plan", True, f"{len(plan.rows)} valid rows, {len(plan.errors)} with errors")
    except Exception as error:
        part("plan", False, f"cannot be read ({type(error).__name__}); see GET /recurring/status")
    try:
        readiness = broker.readiness(now)
        part("broker", readiness.ready, f"{broker_mode(broker)}: " + ("ready" if readiness.ready else "not ready"))
    except Exception as error:
        part("broker", False, f"{broker_mode(broker)}: unreachable ({type(error).__name__})")
    try:
        waiting = ledger.undelivered("notify")
        failing = [i for i in waiting if i.attempts > 0]
        check = getattr(notifier, "check", None)
        if callable(check):
            check()
        if failing:
            part("notifier", False, f"{len(waiting)} notifications waiting; the last delivery failed")
        else:
            part("notifier", True, "answers")
    except Exception as error:
        part("notifier", False, f"does not answer ({type(error).__name__})")
    try:
        beat = worker_heartbeat(ledger)
        problem = heartbeat_problem(beat, now, stale_after)
        part("worker", problem is None, problem or ("no worker has ever run" if beat is None else "alive"))
    except Exception as error:
        part("worker", False, f"heartbeat cannot be read ({type(error).__name__})")
    return {"ok": all(p["ok"] for p in parts.values()), "mode": broker_mode(broker), "parts": parts}
