"""The SQLite ledger: executions (unique per row and scheduled date), rows seen, outbox, runs.

Every write is its own short transaction taken with BEGIN IMMEDIATE, so a crash leaves
the ledger at a step boundary, and WAL lets the panel read while a run writes.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sqlite3
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Iterable, Iterator

from filelock import FileLock, Timeout

from dca.domain import Outcome, PlanRow
from dca.execution import Execution, reserved
from dca.errors import DcaError
from dca.schedule_rules import RowHistory
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
    added TEXT NOT NULL DEFAULT '0',
    filled_quantity TEXT,
    commission TEXT,
    broker_status TEXT,
    price_source TEXT,
    last_attempt_at TEXT,
    recorded_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    UNIQUE (row_id, scheduled_date)
);
CREATE INDEX IF NOT EXISTS executions_status ON executions (status);
CREATE INDEX IF NOT EXISTS executions_time ON executions (scheduled_at, id);
-- For the history's filters and choices (dca.history_views), without reading every row.
CREATE INDEX IF NOT EXISTS executions_day ON executions (scheduled_date);
CREATE INDEX IF NOT EXISTS executions_symbol ON executions (symbol);
-- A counter of every write to executions, so a face that keeps figures of the history
-- can tell in one read that they are out of date (dca.panel.history_cache).
CREATE TABLE IF NOT EXISTS executions_changes (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    changes INTEGER NOT NULL
);
INSERT OR IGNORE INTO executions_changes VALUES (1, 0);
CREATE TRIGGER IF NOT EXISTS executions_inserted AFTER INSERT ON executions
    BEGIN UPDATE executions_changes SET changes = changes + 1; END;
CREATE TRIGGER IF NOT EXISTS executions_updated AFTER UPDATE ON executions
    BEGIN UPDATE executions_changes SET changes = changes + 1; END;
CREATE TRIGGER IF NOT EXISTS executions_deleted AFTER DELETE ON executions
    BEGIN UPDATE executions_changes SET changes = changes + 1; END;
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
    delivered_at TEXT,
    execution_id INTEGER,
    given_up_at TEXT
);
CREATE INDEX IF NOT EXISTS outbox_pending ON outbox (kind, delivered_at);
CREATE TABLE IF NOT EXISTS notices (
    key TEXT PRIMARY KEY,
    body TEXT NOT NULL,
    opened_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS confirmed_rows (
    row_id TEXT PRIMARY KEY,
    confirmed_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS source_memory (
    source TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (source, key)
);
CREATE TABLE IF NOT EXISTS notify_details (
    outbox_id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    data TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS notify_problems (
    key TEXT PRIMARY KEY,
    body TEXT NOT NULL,
    since TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY,
    started_at TEXT NOT NULL,
    as_of TEXT NOT NULL,
    finished_at TEXT,
    summary TEXT
);
-- The worker's heartbeat: one row, rewritten on every tick, so `dca status` and the
-- panel can tell a live worker from a dead one and say when it runs next.
CREATE TABLE IF NOT EXISTS worker_heartbeat (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    pid INTEGER,
    host TEXT,
    state TEXT,
    started_at TEXT,
    last_tick TEXT,
    last_run TEXT,
    last_run_result TEXT,
    next_run TEXT,
    last_error TEXT,
    last_error_at TEXT
);
"""


SCHEMA_VERSION = 3

# Columns added since schema 1, and how an old row gets them: `added` is what the
# execution put into the row's budget (its amount when bought, working or carried).
_MIGRATIONS_2 = [
    "ALTER TABLE executions ADD COLUMN added TEXT NOT NULL DEFAULT '0'",
    "ALTER TABLE executions ADD COLUMN filled_quantity TEXT",
    "ALTER TABLE executions ADD COLUMN commission TEXT",
    "ALTER TABLE executions ADD COLUMN broker_status TEXT",
    "ALTER TABLE executions ADD COLUMN price_source TEXT",
    "ALTER TABLE executions ADD COLUMN last_attempt_at TEXT",
    "UPDATE executions SET added = CASE"
    " WHEN status IN ('filled','submitted','pending') THEN amount_usd"
    " WHEN status = 'skipped' AND CAST(carry_out AS REAL) > CAST(carry_in AS REAL) THEN amount_usd"
    " ELSE '0' END",
]
# Schema 3: an outbox item knows the execution it reports (so a deliverer can show its
# fields, e.g. a History row or a Discord embed), and can be given up on by itself.
_MIGRATIONS_3 = [
    "ALTER TABLE outbox ADD COLUMN execution_id INTEGER",
    "ALTER TABLE outbox ADD COLUMN given_up_at TEXT",
]


class LedgerError(DcaError):
    """The ledger file cannot be used; nothing was run."""


class LedgerReadOnly(LedgerError):
    """The ledger can be read but not written (read-only file or folder); nothing ran."""


class LedgerBusy(DcaError):
    """Another run holds the lock for longer than we were willing to wait."""


def _dec(text: str | None) -> Decimal | None:
    return None if text is None else Decimal(text)


def _decimal_sum(joined: str | None) -> Decimal:
    """The sum of a `group_concat` of decimal texts (None: no values)."""
    return sum(map(Decimal, joined.split(",")), start=Decimal("0")) if joined else Decimal("0")


def _utcnow() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


_COLUMNS = (
    "row_id scheduled_date scheduled_at row_number symbol frequency amount_usd status late "
    "quantity price cost cash_order carry_in carry_out order_ref broker_order_id message "
    "attempts attempt_day simulated added filled_quantity commission broker_status price_source "
    "last_attempt_at"
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
        str(e.added), s(e.filled_quantity), s(e.commission), e.broker_status, e.price_source,
        None if e.last_attempt_at is None else e.last_attempt_at.isoformat(),
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
        added=Decimal(r["added"]), filled_quantity=_dec(r["filled_quantity"]), commission=_dec(r["commission"]),
        broker_status=r["broker_status"], price_source=r["price_source"],
        last_attempt_at=None if r["last_attempt_at"] is None else datetime.fromisoformat(r["last_attempt_at"]),
    )


@dataclass(frozen=True)
class OutboxItem:
    id: int
    kind: str
    row_id: str | None
    body: str
    attempts: int
    last_error: str | None
    execution_id: int | None = None  # the execution this item reports, if any


@dataclass
class Ledger:
    path: Path
    lock_timeout: float = 900.0
    _connections: ThreadConnections = field(init=False, repr=False)

    def __post_init__(self):
        # Resolved, so one ledger reached through a symlink or `..` has one lock, not two.
        self.path = Path(os.path.realpath(self.path))
        self._connections = ThreadConnections(self.path)
        if not self.read_only:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            with self._connect() as db:
                version = db.execute("PRAGMA user_version").fetchone()[0]
                if version > SCHEMA_VERSION:
                    raise LedgerError(
                        f"ledger {self.path} was written by a newer version of dca (schema {version}, "
                        f"this one knows {SCHEMA_VERSION}); upgrade dca rather than risk misreading it"
                    )
                columns = {r[1] for r in db.execute("PRAGMA table_info(executions)")}
                if columns and "added" not in columns:
                    if self.read_only:
                        raise LedgerError(
                            f"ledger {self.path} was written by an older version of dca and must be upgraded "
                            "once, which needs its folder to be writable; make it writable and run any dca command")
                    with self._write() as migrating:
                        for statement in _MIGRATIONS_2:
                            migrating.execute(statement)
                outbox_columns = {r[1] for r in db.execute("PRAGMA table_info(outbox)")}
                if outbox_columns and "execution_id" not in outbox_columns and not self.read_only:
                    with self._write() as migrating:
                        for statement in _MIGRATIONS_3:
                            migrating.execute(statement)
                if not self.read_only or not self.path.exists():  # an empty one in memory
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

    @property
    def read_only(self) -> bool:
        """Opened read-only (see dca.sqlite_conn): everything can be read, nothing recorded."""
        return self._connections.read_only

    def _refuse_if_read_only(self) -> None:
        if self.read_only:
            raise LedgerReadOnly(
                f"cannot record anything in ledger {self.path}: {self._connections.read_only_reason}; "
                f"make it writable (chmod u+w {self.path.parent}) or set DCA_HOME or --db to a folder you "
                "can write (plan, history, orders, status and calendar still work as it is)"
            )

    @contextlib.contextmanager
    def _write(self, durable: bool = False) -> Iterator[sqlite3.Connection]:
        """A write transaction. `durable` ones are fsynced before COMMIT returns, so they
        survive a power cut: intents and attempts, which must be on disk before the broker
        hears of an order. Other writes survive a process crash (WAL); if a power cut
        loses one, what it said is recovered from the broker via the durable intent."""
        self._refuse_if_read_only()
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
        self._refuse_if_read_only()  # before the lock file, which a read-only folder cannot hold
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
                self._enqueue_outcome(db, execution.evolve(id=cursor.lastrowid), outcome_line)
        except sqlite3.IntegrityError as e:
            if "executions.row_id, executions.scheduled_date" in str(e):
                return None
            # Anything else (a NOT NULL, a CHECK) is a bug, never "someone else recorded it".
            raise LedgerError(f"could not record {execution.symbol} {execution.scheduled_date} ({e})") from e
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
        for kind in ("log", "notify"):
            cursor = db.execute("INSERT INTO outbox(kind,row_id,body,created_at,execution_id) VALUES (?,?,?,?,?)",
                                (kind, execution.row_id, line, now, execution.id))
        # The execution as it was when this was said, for the notifier's embed (a later
        # outcome of the same execution must not rewrite an earlier message).
        db.execute("INSERT INTO notify_details VALUES (?,?,?)",
                   (cursor.lastrowid, "execution", json.dumps(execution.as_dict(), default=str)))

    def get(self, row_id: str, scheduled_date: date) -> Execution | None:
        with self._connect() as db:
            r = db.execute(
                "SELECT * FROM executions WHERE row_id=? AND scheduled_date=?", (row_id, scheduled_date.isoformat())
            ).fetchone()
        return None if r is None else _from_row(r)

    def execution(self, execution_id: int) -> Execution | None:
        with self._connect() as db:
            r = db.execute("SELECT * FROM executions WHERE id=?", (execution_id,)).fetchone()
        return None if r is None else _from_row(r)

    def with_status(self, *statuses: Outcome) -> list[Execution]:
        marks = ",".join("?" * len(statuses))
        with self._connect() as db:
            rows = db.execute(
                f"SELECT * FROM executions WHERE status IN ({marks}) ORDER BY scheduled_date, id",
                [str(s) for s in statuses],
            ).fetchall()
        return [_from_row(r) for r in rows]

    def fills_without_commission(self, since: date) -> list[Execution]:
        """Real fills attempted on or after `since` whose commission is not known yet: asked
        in SQL, so a run on a long history does not read every fill to find a few."""
        # Through the day index: an attempt is never long after its scheduled day (a
        # catch-up is bounded by the lateness rule), so a month before `since` is plenty,
        # and at worst a commission stays unknown.
        with self._connect() as db:
            rows = db.execute(
                "SELECT * FROM executions WHERE scheduled_date >= ? AND +status = 'filled' AND commission IS NULL"
                " AND simulated = 0 AND order_ref IS NOT NULL AND coalesce(attempt_day, scheduled_date) >= ?"
                " ORDER BY id", ((since - timedelta(days=31)).isoformat(), since.isoformat())).fetchall()
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
        """The row's unspent budget: everything its executions added, less what they spent
        (actual costs once filled). Negative after an overspend."""
        return self.carries([row_id])[row_id]

    def carries(self, row_ids: Iterable[str]) -> dict[str, Decimal]:
        """`carry` of many rows in one read (a panel showing a thousand rows). Summed as
        Decimal from the ledger's text: SQLite would add them as floating point."""
        wanted = list(dict.fromkeys(row_ids))
        totals = {row_id: Decimal("0") for row_id in wanted}
        with self._connect() as db:
            for start in range(0, len(wanted), 500):  # under SQLite's limit on variables
                chunk = wanted[start:start + 500]
                for row_id, added, spent in db.execute(
                        "SELECT row_id, group_concat(added),"
                        " group_concat(CASE WHEN status IN ('filled','submitted','pending') THEN cost END)"
                        f" FROM executions WHERE row_id IN ({','.join('?' * len(chunk))}) GROUP BY row_id", chunk):
                    totals[row_id] = _decimal_sum(added) - _decimal_sum(spent)
        return totals

    def committed_on(self, day: date, margin: Decimal = Decimal("0")) -> Decimal:
        """Money ordered (or about to be) on a New York trading day: the daily guard's base.
        Actual costs where the broker has filled, else the estimate plus `margin`."""
        with self._connect() as db:
            rows = db.execute(
                "SELECT * FROM executions WHERE attempt_day=? AND status IN ('pending','submitted','filled')",
                (day.isoformat(),),
            ).fetchall()
        return sum((reserved(_from_row(r), margin) for r in rows), Decimal("0"))

    def executions_on(self, day: date) -> list[Execution]:
        with self._connect() as db:
            rows = db.execute("SELECT * FROM executions WHERE scheduled_date=? ORDER BY id", (day.isoformat(),))
            return [_from_row(r) for r in rows.fetchall()]

    # -- rows a person confirmed, and open notices ---------------------------------------

    def confirm_row(self, row_id: str) -> None:
        with self._write() as db:
            db.execute("INSERT OR REPLACE INTO confirmed_rows VALUES (?,?)", (row_id, _utcnow()))

    def confirmed_rows(self) -> set[str]:
        with self._connect() as db:
            return {r["row_id"] for r in db.execute("SELECT row_id FROM confirmed_rows")}

    def open_notices(self) -> dict[str, str]:
        with self._connect() as db:
            return {r["key"]: r["body"] for r in db.execute("SELECT key, body FROM notices")}

    def settle_notices(self, opened: dict[str, str], closed: Iterable[str], messages: Iterable[str]) -> None:
        """Store the problems now open (new or changed) and drop the resolved ones, queueing
        their messages in the same transaction, so each is said once."""
        now = _utcnow()
        with self._write() as db:
            db.executemany("INSERT OR REPLACE INTO notices VALUES (?,?,?)", [(k, v, now) for k, v in opened.items()])
            db.executemany("DELETE FROM notices WHERE key=?", [(k,) for k in closed])
            db.executemany("INSERT INTO outbox(kind,row_id,body,created_at) VALUES ('notify',NULL,?,?)",
                           [(m, now) for m in messages])

    # -- outbox ---------------------------------------------------------------------------

    def enqueue(self, kind: str, body: str, row_id: str | None = None) -> None:
        with self._write() as db:
            db.execute(
                "INSERT INTO outbox(kind,row_id,body,created_at) VALUES (?,?,?,?)", (kind, row_id, body, _utcnow())
            )

    def undelivered(self, kind: str) -> list[OutboxItem]:
        with self._connect() as db:
            rows = db.execute(
                "SELECT id, kind, row_id, body, attempts, last_error, execution_id FROM outbox "
                "WHERE kind=? AND delivered_at IS NULL AND given_up_at IS NULL ORDER BY id",
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

    # -- what a plan source keeps (e.g. the last plan read from a Google Sheet) -----------

    def remember(self, source: str, key: str, value: str) -> None:
        with self._write() as db:
            db.execute("INSERT OR REPLACE INTO source_memory VALUES (?,?,?,?)", (source, key, value, _utcnow()))

    def recall(self, source: str, key: str) -> tuple[str, str] | None:
        """(value, when it was stored, UTC) or None."""
        try:
            with self._connect() as db:
                r = db.execute("SELECT value, updated_at FROM source_memory WHERE source=? AND key=?",
                               (source, key)).fetchone()
        except sqlite3.OperationalError:  # a read-only ledger from before the table existed
            return None
        return None if r is None else (r["value"], r["updated_at"])

    # -- notifications: details, dead letters, problems with the notifier (dca/delivery.py)

    def enqueue_notification(self, kind: str, body: str, data: dict) -> None:
        """Queue a notification with the fields a notifier shows (e.g. the run summary)."""
        with self._write() as db:
            cursor = db.execute("INSERT INTO outbox(kind,row_id,body,created_at) VALUES ('notify',NULL,?,?)",
                                (body, _utcnow()))
            db.execute("INSERT INTO notify_details VALUES (?,?,?)",
                       (cursor.lastrowid, kind, json.dumps(data, default=str)))

    def notify_details(self, ids: Iterable[int]) -> dict[int, tuple[str, dict]]:
        ids = list(ids)
        out: dict[int, tuple[str, dict]] = {}
        with self._connect() as db:
            for start in range(0, len(ids), 500):
                chunk = ids[start:start + 500]
                for r in db.execute(f"SELECT * FROM notify_details WHERE outbox_id IN ({','.join('?' * len(chunk))})",
                                    chunk):
                    out[r["outbox_id"]] = (r["kind"], json.loads(r["data"]))
        return out

    def give_up(self, ids: Iterable[int], error: str) -> None:
        """Dead letters: never tried again, shown by `dca status` with the reason."""
        now = _utcnow()
        with self._write() as db:
            db.executemany("UPDATE outbox SET attempts=attempts+1, last_error=?, given_up_at=? WHERE id=?",
                           [(error[:500], now, i) for i in ids])

    def given_up(self, kind: str) -> list[dict]:
        with self._connect() as db:
            rows = db.execute("SELECT id, body, attempts, last_error, given_up_at FROM outbox "
                              "WHERE kind=? AND given_up_at IS NOT NULL ORDER BY id", (kind,)).fetchall()
        return [dict(r) for r in rows]

    def requeue_given_up(self, kind: str) -> int:
        """Dead letters back in the queue (after the cause was fixed); how many."""
        with self._write() as db:
            return db.execute("UPDATE outbox SET given_up_at=NULL, attempts=0 WHERE kind=? AND given_up_at IS NOT NULL"
                              " AND delivered_at IS NULL", (kind,)).rowcount

    def set_notify_problem(self, key: str, body: str | None) -> None:
        """A problem with the notifier itself (its webhook refused): None clears it."""
        with self._write() as db:
            if body is None:
                db.execute("DELETE FROM notify_problems WHERE key=?", (key,))
            else:
                db.execute("INSERT OR REPLACE INTO notify_problems VALUES (?,?,?)", (key, body, _utcnow()))

    def notify_problems(self) -> dict[str, dict]:
        with self._connect() as db:
            try:
                rows = db.execute("SELECT * FROM notify_problems").fetchall()
            except sqlite3.OperationalError:  # a read-only ledger of an older version
                return {}
        return {r["key"]: {"body": r["body"], "since": r["since"]} for r in rows}

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

    def latest_run_at(self) -> datetime | None:
        """The latest moment any recording run has run as of (the clock guard's base).
        Compared as moments, not as text: `as_of` keeps the offset each run was given."""
        with self._connect() as db:
            stamps = [r[0] for r in db.execute("SELECT DISTINCT as_of FROM runs")]
        return max((datetime.fromisoformat(s) for s in stamps), default=None)

    # -- the worker's heartbeat -----------------------------------------------------------

    HEARTBEAT_FIELDS = ("pid", "host", "state", "started_at", "last_tick", "last_run", "last_run_result",
                        "next_run", "last_error", "last_error_at")

    def beat(self, **fields) -> None:
        """Store the given heartbeat fields (the others keep their values)."""
        unknown = set(fields) - set(self.HEARTBEAT_FIELDS)
        if unknown:
            raise ValueError(f"unknown heartbeat field(s) {', '.join(sorted(unknown))}")
        if not fields:
            return
        names = list(fields)
        with self._write() as db:
            db.execute("INSERT OR IGNORE INTO worker_heartbeat(id) VALUES (1)")
            db.execute(f"UPDATE worker_heartbeat SET {', '.join(n + '=?' for n in names)} WHERE id=1",
                       [fields[n] for n in names])

    def heartbeat(self) -> dict | None:
        """The worker's last heartbeat, or None if no worker ever ran on this ledger."""
        with self._connect() as db:
            try:
                r = db.execute("SELECT * FROM worker_heartbeat WHERE id=1").fetchone()
            except sqlite3.OperationalError:  # a read-only ledger from before the table existed
                return None
        return None if r is None else {k: r[k] for k in self.HEARTBEAT_FIELDS}

    def run_lock_busy(self) -> bool:
        """Whether some run holds the run lock right now (a probe; it takes nothing)."""
        lock = FileLock(str(self.path) + ".lock", is_singleton=False)
        try:
            lock.acquire(timeout=0)
        except Timeout:
            return True
        lock.release()
        return False

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

