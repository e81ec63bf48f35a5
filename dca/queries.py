"""Read-only questions the faces ask: upcoming executions, what the ledger holds."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from dca.domain import Frequency, ParsedPlan
from dca.schedule_rules import Schedule


@dataclass(slots=True)
class Upcoming:
    # Not frozen: a year of a thousand-row plan is ~100k of these, and frozen dataclasses
    # are several times slower to create.
    row_id: str | None
    row_number: int
    symbol: str
    amount_usd: str
    frequency: str
    scheduled_at: datetime

    def as_dict(self) -> dict:
        return {
            "row_id": self.row_id,
            "row": self.row_number,
            "symbol": self.symbol,
            "amount_usd": self.amount_usd,
            "frequency": self.frequency,
            "scheduled_at": self.scheduled_at.isoformat(),
        }


def upcoming(plan: ParsedPlan, schedule: Schedule, start: date, end: date) -> list[Upcoming]:
    """Scheduled executions of the Active, valid rows in [start, end], by time then row.

    Walks the days in order and, on each, the rows of the frequencies due that day in
    plan order, so the result comes out sorted without sorting ~100k entries.
    """
    rows = sorted(plan.active_rows, key=lambda r: r.row_number)
    due_on: dict[datetime, set[Frequency]] = {}
    for frequency in {r.frequency for r in rows}:
        for at in schedule.upcoming(frequency, start, end):
            due_on.setdefault(at, set()).add(frequency)
    fields = [(r.frequency, r.row_id, r.row_number, r.symbol, str(r.amount), str(r.frequency)) for r in rows]
    by_frequencies: dict[frozenset, list[tuple]] = {}
    items = []
    for at in sorted(due_on):
        key = frozenset(due_on[at])
        if key not in by_frequencies:
            by_frequencies[key] = [f[1:] for f in fields if f[0] in key]
        items.extend(Upcoming(*f, at) for f in by_frequencies[key])
    return items
