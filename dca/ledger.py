"""The SQLite ledger: executions (unique per row and scheduled date), rows seen, outbox, runs.

Every write is its own short transaction taken with BEGIN IMMEDIATE, so a crash leaves
the ledger at a step boundary, and WAL lets the panel read while a run writes.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sqlite3
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Iterable, Iterator

from filelock import FileLock, Timeout

from dca.domain import Outcome, PlanRow
from dca.errors import DcaError
from dca.schedule_rules import NEW_YORK, RowHistory
from dca.sqlite_conn import ThreadConnections

logger = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS executions (
    id INTEGER PRIMARY KEY,
    row_id TEXT NOT NULL,
    scheduled_date TEXT NOT NULL,
    scheduled_at TEXT NOT NULL,
    row_number INTEGER,
    symbol TEXT NOT NULL,
    frequency TEXT NOT NULL,
    amount_usd TEXT NOT NULL,
    status TEXT NOT NULL,
    late INTEGER NOT NULL DEFAULT 0,
    quantity TEXT,
    price TEXT,
    cost TEXT,
    cash_order INTEGER NOT NULL DEFAULT 0,
    carry_in TEXT NOT NULL DEFAULT '0',
    carry_out TEXT NOT NULL DEFAULT '0',
    order_ref TEXT,
    broker_order_id TEXT,
    message TEXT NOT NULL DEFAULT '',
    attempts INTEGER NOT NULL DEFAULT 0,
    attempt_day TEXT,
    simulated INTEGER NOT NULL DEFAULT 0,
    recorded_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    UNIQUE (row_id, scheduled_date)
);
CREATE INDEX IF NOT EXISTS executions_status ON executions (status);
CREATE TABLE IF NOT EXISTS plan_rows (
    row_id TEXT PRIMARY KEY,
    first_seen TEXT NOT NULL,
    active_since TEXT,
    symbol TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('log', 'notify')),
    row_id TEXT,
    body TEXT NOT NULL,
    created_at TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    delivered_at TEXT
);
CREATE INDEX IF NOT EXISTS outbox_pending ON outbox (kind, delivered_at);
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY,
    started_at TEXT NOT NULL,
    as_of TEXT NOT NULL,
    finished_at TEXT,
    summary TEXT
);
"""


SCHEMA_VERSION = 1


class LedgerError(DcaError):
    """The ledger file cannot be used; nothing was run."""


class LedgerBusy(DcaError):
    """Another run holds the lock for longer than we were willing to wait."""


def _dec(text: str | None) -> Decimal | None:
    return None if text is None else Decimal(text)


def _utcnow() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@dataclass(frozen=True)
class Execution:
    row_id: str
    scheduled_date: date
    scheduled_at: datetime
    symbol: str
    frequency: str
    amount_usd: Decimal
    status: Outcome
    row_number: int | None = None
    late: bool = False
    quantity: Decimal | None = None
    price: Decimal | None = None
    cost: Decimal | None = None
    cash_order: bool = False
    carry_in: Decimal = Decimal("0")
    carry_out: Decimal = Decimal("0")
    order_ref: str | None = None
    broker_order_id: str | None = None
    message: str = ""
    attempts: int = 0
    attempt_day: date | None = None
    simulated: bool = False
    id: int | None = None
    recorded_at: str | None = None
    updated_at: str | None = None

    def evolve(self, **changes) -> "Execution":
        return replace(self, **changes)

    def as_dict(self) -> dict:
        def s(v):
            return None if v is None else str(v)

        return {
            "row_id": self.row_id,
            "row": self.row_number,
            "symbol": self.symbol,
            "frequency": self.frequency,
            "scheduled_at": self.scheduled_at.isoformat(),
            "status": str(self.status),
            "late": self.late,
            "quantity": s(self.quantity),
            "price": s(self.price),
            "amount_usd": s(self.amount_usd),
            "cost": s(self.cost),
            "carry": s(self.carry_out),
            "order_ref": self.order_ref,
            "broker_order_id": self.broker_order_id,
            "message": self.message,
            "simulated": self.simulated,
            "recorded_at": self.recorded_at,
            "updated_at": self.updated_at,
        }


_COLUMNS = (
    "row_id scheduled_date scheduled_at row_number symbol frequency amount_usd status late "
    "quantity price cost cash_order carry_in carry_out order_ref broker_order_id message "
    "attempts attempt_day simulated"
).split()


def _to_row(e: Execution) -> tuple:
    def s(v):
        return None if v is None else str(v)

    return (
        e.row_id, e.scheduled_date.isoformat(), e.scheduled_at.isoformat(), e.row_number,
        e.symbol, e.frequency, str(e.amount_usd), str(e.status), int(e.late), s(e.quantity),
        s(e.price), s(e.cost), int(e.cash_order), str(e.carry_in), str(e.carry_out),
        e.order_ref, e.broker_order_id, e.message, e.attempts,
        None if e.attempt_day is None else e.attempt_day.isoformat(), int(e.simulated),
    )


def _from_row(r: sqlite3.Row) -> Execution:
    return Execution(
        id=r["id"], row_id=r["row_id"], scheduled_date=date.fromisoformat(r["scheduled_date"]),
        scheduled_at=datetime.fromisoformat(r["scheduled_at"]), row_number=r["row_number"],
        symbol=r["symbol"], frequency=r["frequency"], amount_usd=Decimal(r["amount_usd"]),
        status=Outcome(r["status"]), late=bool(r["late"]), quantity=_dec(r["quantity"]),
        price=_dec(r["price"]), cost=_dec(r["cost"]), cash_order=bool(r["cash_order"]),
        carry_in=Decimal(r["carry_in"]), carry_out=Decimal(r["carry_out"]),
        order_ref=r["order_ref"], broker_order_id=r["broker_order_id"], message=r["message"],
        attempts=r["attempts"],
        attempt_day=None if r["attempt_day"] is None else date.fromisoformat(r["attempt_day"]),
        simulated=bool(r["simulated"]), recorded_at=r["recorded_at"], updated_at=r["updated_at"],
    )


@dataclass(frozen=True)
class OutboxItem:
    id: int
    kind: str
    row_id: str | None
    body: str
    attempts: int
    last_error: str | None


@dataclass
class Ledger:
    path: Path
    lock_timeout: float = 900.0
    _connections: ThreadConnections = field(init=False, repr=False)

    def __post_init__(self):
        self.path = Path(self.path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._connections = ThreadConnections(self.path)
        try:
            with self._connect() as db:
                version = db.execute("PRAGMA user_version").fetchone()[0]
                if version > SCHEMA_VERSION:
                    raise LedgerError(
                        f"ledger {self.path} was written by a newer version of dca (schema {version}, "
                        f"this one knows {SCHEMA_VERSION}); upgrade dca rather than risk misreading it"
                    )
                db.executescript(SCHEMA)
                db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        except sqlite3.DatabaseError as e:
            self.close()
            raise LedgerError(f"ledger {self.path} cannot be opened as a SQLite database ({e}); "
                              "point --db/DCA_DB at the right file or restore it from a backup") from e

    # -- plumbing -------------------------------------------------------------------------

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        yield self._connections.get()

    def close(self) -> None:
        self._connections.close()

    @contextlib.contextmanager
    def _write(self, durable: bool = False) -> Iterator[sqlite3.Connection]:
        """A write transaction. `durable` ones are fsynced before COMMIT returns, so they
        survive a power cut: intents and attempts, which must be on disk before the broker
        hears of an order. Other writes survive a process crash (WAL); if a power cut
        loses one, what it said is recovered from the broker via the durable intent."""
        with self._connect() as db:
            db.execute(f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
                db.execute("COMMIT")
            except BaseException:
                # Also after a failed COMMIT (disk full): the kept-open connection must not
                # stay inside a transaction, or every later write on this thread fails.
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise

    @contextlib.contextmanager
    def run_lock(self, timeout: float | None = None) -> Iterator[None]:
        """The one-run-at-a-time lock shared by every face that uses this ledger."""
        lock = FileLock(str(self.path) + ".lock", is_singleton=False)
        wait = self.lock_timeout if timeout is None else timeout
        try:
            try:
                lock.acquire(timeout=0)
            except Timeout:
                logger.warning("another run is in progress; waiting up to %.0f s for it to finish", wait)
                lock.acquire(timeout=wait)
        except Timeout:
            raise LedgerBusy(
                f"another run is still in progress (lock {self.path}.lock held for over {wait:.0f}s); "
                "try again when it finishes"
            ) from None
        try:
            yield
        finally:
            lock.release()

    # -- rows -----------------------------------------------------------------------------

    def row_histories(self, rows: Iterable[PlanRow], today: date, observe: bool) -> dict[str, RowHistory]:
        """What the schedule needs per row. With `observe`, first sightings and
        reactivations are recorded (a pause starts the row afresh); without, they are
        only computed, as a dry run must record nothing."""
        rows = [r for r in rows if r.row_id]
        histories: dict[str, RowHistory] = {}
        with (self._write() if observe else self._connect()) as db:
            known = {
                r["row_id"]: r
                for r in db.execute("SELECT row_id, first_seen, active_since FROM plan_rows")
            }
            last = {
                r["row_id"]: date.fromisoformat(r["last"])
                for r in db.execute("SELECT row_id, MAX(scheduled_date) AS last FROM executions GROUP BY row_id")
            }
            for row in rows:
                seen = known.get(row.row_id)
                active_since = seen["active_since"] if seen else None
                if not row.active:
                    if observe and seen and active_since is not None:
                        db.execute("UPDATE plan_rows SET active_since=NULL WHERE row_id=?", (row.row_id,))
                    elif observe and not seen:
                        db.execute(
                            "INSERT INTO plan_rows(row_id, first_seen, active_since, symbol) VALUES (?,?,NULL,?)",
                            (row.row_id, today.isoformat(), row.symbol),
                        )
                    continue
                if active_since is None:
                    active_since = today.isoformat()
                    if observe and seen:
                        db.execute("UPDATE plan_rows SET active_since=?, symbol=? WHERE row_id=?",
                                   (active_since, row.symbol, row.row_id))
                    elif observe:
                        db.execute(
                            "INSERT INTO plan_rows(row_id, first_seen, active_since, symbol) VALUES (?,?,?,?)",
                            (row.row_id, today.isoformat(), active_since, row.symbol),
                        )
                histories[row.row_id] = RowHistory(date.fromisoformat(active_since), last.get(row.row_id))
        return histories

    # -- executions -----------------------------------------------------------------------

    def insert(self, execution: Execution, outcome_line: str | None = None, durable: bool = False) -> Execution | None:
        """Record an execution; None when (row, date) is already recorded, by anyone.

        `outcome_line`, given for a final execution, is queued for the row's Log and the
        notifier in the same transaction, so neither can be lost."""
        now = _utcnow()
        placeholders = ",".join("?" * (len(_COLUMNS) + 2))
        try:
            with self._write(durable) as db:
                cursor = db.execute(
                    f"INSERT INTO executions({','.join(_COLUMNS)}, recorded_at, updated_at) VALUES ({placeholders})",
                    (*_to_row(execution), now, now),
                )
                self._enqueue_outcome(db, execution, outcome_line)
        except sqlite3.IntegrityError:
            return None
        return execution.evolve(id=cursor.lastrowid, recorded_at=now, updated_at=now)

    def update(self, execution: Execution, outcome_line: str | None = None, durable: bool = False) -> Execution:
        """Store the new state of an execution, queueing `outcome_line` as `insert` does."""
        assert execution.id is not None
        now = _utcnow()
        with self._write(durable) as db:
            db.execute(
                f"UPDATE executions SET {', '.join(c + '=?' for c in _COLUMNS)}, updated_at=? WHERE id=?",
                (*_to_row(execution), now, execution.id),
            )
            self._enqueue_outcome(db, execution, outcome_line)
        return execution.evolve(updated_at=now)

    @staticmethod
    def _enqueue_outcome(db: sqlite3.Connection, execution: Execution, line: str | None) -> None:
        if line is None:
            return
        now = _utcnow()
        db.execute("INSERT INTO outbox(kind,row_id,body,created_at) VALUES ('log',?,?,?)", (execution.row_id, line, now))
        db.execute("INSERT INTO outbox(kind,row_id,body,created_at) VALUES ('notify',?,?,?)", (execution.row_id, line, now))

    def get(self, row_id: str, scheduled_date: date) -> Execution | None:
        with self._connect() as db:
            r = db.execute(
                "SELECT * FROM executions WHERE row_id=? AND scheduled_date=?", (row_id, scheduled_date.isoformat())
            ).fetchone()
        return None if r is None else _from_row(r)

    def with_status(self, *statuses: Outcome) -> list[Execution]:
        marks = ",".join("?" * len(statuses))
        with self._connect() as db:
            rows = db.execute(
                f"SELECT * FROM executions WHERE status IN ({marks}) ORDER BY scheduled_date, id",
                [str(s) for s in statuses],
            ).fetchall()
        return [_from_row(r) for r in rows]

    def history(self, limit: int | None = None) -> list[Execution]:
        sql = "SELECT * FROM executions ORDER BY scheduled_at DESC, id DESC"
        with self._connect() as db:
            rows = db.execute(sql + (" LIMIT ?" if limit else ""), (limit,) if limit else ()).fetchall()
        return [_from_row(r) for r in rows]

    def recorded_between(self, start: date, end: date) -> list[Execution]:
        """Executions scheduled from `start` to `end` (inclusive), by scheduled time."""
        with self._connect() as db:
            rows = db.execute(
                "SELECT * FROM executions WHERE scheduled_date BETWEEN ? AND ? ORDER BY scheduled_at, id",
                (start.isoformat(), end.isoformat()),
            ).fetchall()
        return [_from_row(r) for r in rows]

    def carry(self, row_id: str) -> Decimal:
        """The cash a whole-share row has left over, from its latest execution."""
        with self._connect() as db:
            r = db.execute(
                "SELECT carry_out FROM executions WHERE row_id=? ORDER BY scheduled_date DESC, id DESC LIMIT 1",
                (row_id,),
            ).fetchone()
        return Decimal("0") if r is None else Decimal(r["carry_out"])

    def committed_on(self, day: date) -> Decimal:
        """Money ordered (or about to be) on a New York trading day: the daily guard's base."""
        with self._connect() as db:
            rows = db.execute(
                "SELECT cost FROM executions WHERE attempt_day=? AND status IN ('pending','submitted','filled')",
                (day.isoformat(),),
            ).fetchall()
        return sum((Decimal(r["cost"]) for r in rows if r["cost"] is not None), Decimal("0"))

    # -- outbox ---------------------------------------------------------------------------

    def enqueue(self, kind: str, body: str, row_id: str | None = None) -> None:
        with self._write() as db:
            db.execute(
                "INSERT INTO outbox(kind,row_id,body,created_at) VALUES (?,?,?,?)", (kind, row_id, body, _utcnow())
            )

    def undelivered(self, kind: str) -> list[OutboxItem]:
        with self._connect() as db:
            rows = db.execute(
                "SELECT id, kind, row_id, body, attempts, last_error FROM outbox "
                "WHERE kind=? AND delivered_at IS NULL ORDER BY id",
                (kind,),
            ).fetchall()
        return [OutboxItem(**dict(r)) for r in rows]

    def mark_delivered(self, ids: Iterable[int]) -> None:
        ids = list(ids)
        if not ids:
            return
        with self._write() as db:
            db.executemany("UPDATE outbox SET delivered_at=? WHERE id=?", [(_utcnow(), i) for i in ids])

    def mark_failed(self, ids: Iterable[int], error: str) -> None:
        with self._write() as db:
            db.executemany(
                "UPDATE outbox SET attempts=attempts+1, last_error=? WHERE id=?", [(error[:500], i) for i in ids]
            )

    # -- runs -----------------------------------------------------------------------------

    def start_run(self, as_of: datetime) -> int:
        with self._write() as db:
            return db.execute(
                "INSERT INTO runs(started_at, as_of) VALUES (?,?)", (_utcnow(), as_of.isoformat())
            ).lastrowid

    def finish_run(self, run_id: int, summary: dict) -> None:
        with self._write() as db:
            db.execute(
                "UPDATE runs SET finished_at=?, summary=? WHERE id=?", (_utcnow(), json.dumps(summary), run_id)
            )

    def last_run(self) -> dict | None:
        with self._connect() as db:
            r = db.execute("SELECT * FROM runs ORDER BY id DESC LIMIT 1").fetchone()
        if r is None:
            return None
        return {
            "started_at": r["started_at"],
            "as_of": r["as_of"],
            "finished_at": r["finished_at"],
            "summary": json.loads(r["summary"]) if r["summary"] else None,
        }


def today_in_new_york(now: datetime) -> date:
    return now.astimezone(NEW_YORK).date()
