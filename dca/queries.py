"""Read-only questions the faces ask: upcoming executions, what the ledger holds."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from dca.domain import ParsedPlan
from dca.schedule_rules import Schedule


@dataclass(frozen=True)
class Upcoming:
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
    """Scheduled executions of the Active, valid rows in [start, end], by time then row."""
    items = [
        Upcoming(row.row_id, row.row_number, row.symbol, str(row.amount), str(row.frequency), at)
        for row in plan.active_rows
        for at in schedule.upcoming(row.frequency, start, end)
    ]
    items.sort(key=lambda u: (u.scheduled_at, u.row_number))
    return items
