"""One-off buys: a manual order (an `Idempotency-Key`) or a TradingView alert (its alert id).

A one-off buy is an execution like any other, sent through the engine's own path (guards,
the intent committed before the submit, reconciliation after doubt): its row ID is derived
from the key (`m-…` for a manual order, `tv-…` for an alert), its frequency is "Once" and
its scheduled date is today in New York. The ledger's unique (row ID, date) key makes a
replayed key on the same day return the recorded answer with no second order; the table
below remembers which day each key was used on, so a key replayed on a later day returns
that answer too instead of buying again.
"""

from __future__ import annotations

import hashlib
import re
import sqlite3
from contextlib import closing
from dataclasses import dataclass
from datetime import date, datetime, timezone
from decimal import Decimal, InvalidOperation

from dca.domain import ABSURD_AMOUNT, CENT
from dca.engine import Engine, RunReport
from dca.errors import DcaError
from dca.execution import Execution, today_in_new_york
from dca.ledger import Ledger

# Kept in the ledger's own file, beside the executions it points to. Its own table, so the
# ledger's schema (and its version) is untouched.
_SCHEMA = """
CREATE TABLE IF NOT EXISTS one_off_keys (
    row_id TEXT PRIMARY KEY,
    source TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    symbol TEXT NOT NULL,
    amount_usd TEXT NOT NULL,
    scheduled_date TEXT NOT NULL,
    created_at TEXT NOT NULL
)
"""
_SYMBOL = re.compile(r"^[A-Z][A-Z0-9]{0,5}([.\-][A-Z0-9]{1,3})?$")
MAX_KEY_LENGTH = 200


class OneOffRefused(DcaError):
    """The request is wrong as asked (a bad symbol or amount); nothing was done."""


class KeyReused(DcaError):
    """The idempotency key was already used for a different order; nothing was done."""


@dataclass(frozen=True)
class OneOffAnswer:
    execution: Execution | None  # None: nothing recorded (dry run that plans nothing, or deferred)
    deferred: str | None  # why nothing was attempted (the broker down, no price); retried with the same key
    replayed: bool  # the key was used before: this is the answer recorded then
    dry_run: bool
    simulated: bool
    broker: str

    def as_dict(self) -> dict:
        return {
            "execution": None if self.execution is None else self.execution.as_dict(),
            "deferred": self.deferred,
            "replayed": self.replayed,
            "dry_run": self.dry_run,
            "simulated": self.simulated,
            "broker": self.broker,
        }


def manual_row_id(key: str) -> str:
    return "m-" + hashlib.sha256(key.encode("utf-8")).hexdigest()[:10]


def alert_row_id(alert_id: str, symbol: str) -> str:
    """TradingView's `{{timenow}}` is the same for alerts on two tickers firing on one bar,
    so the symbol is part of the key."""
    return "tv-" + hashlib.sha256(f"{symbol}\n{alert_id}".encode("utf-8")).hexdigest()[:10]


def parse_symbol(text: str) -> str:
    symbol = text.strip().upper()
    if not _SYMBOL.match(symbol):
        raise OneOffRefused(f"symbol {text[:20]!r} is not a ticker like AAPL or BRK.B")
    return symbol


def parse_amount_usd(value: Decimal | float | int | str) -> Decimal:
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        raise OneOffRefused(f"amount_usd {str(value)[:20]!r} is not a number of dollars") from None
    if not amount.is_finite() or amount <= 0:
        raise OneOffRefused("amount_usd must be more than $0")
    if amount != amount.quantize(CENT):
        raise OneOffRefused("amount_usd has more than two decimals")
    if amount >= ABSURD_AMOUNT:
        raise OneOffRefused("amount_usd of $1,000,000 or more is refused as implausible")
    return amount.quantize(CENT)


def check_key(key: str, what: str) -> str:
    key = key.strip()
    if not key or len(key) > MAX_KEY_LENGTH:
        raise OneOffRefused(f"{what} must be 1 to {MAX_KEY_LENGTH} characters")
    return key


def place_one_off(engine: Engine, source: str, key: str, row_id: str, symbol: str, amount: Decimal,
                  now: datetime, dry_run: bool = False) -> OneOffAnswer:
    """Buy once for `key`; the same key again (any day) gives the recorded answer."""
    ledger = engine.ledger
    today = today_in_new_york(now)
    known = _known(ledger, row_id)
    if known is not None:
        if (known["symbol"], Decimal(known["amount_usd"])) != (symbol, amount):
            raise KeyReused(f"this {_KEY_WORD[source]} was already used for {known['symbol']} "
                            f"${Decimal(known['amount_usd']):,.2f} on {known['scheduled_date']}; "
                            "use a new one for a different order")
        recorded = ledger.get(row_id, date.fromisoformat(known["scheduled_date"]))
        if recorded is not None:
            return _answer(engine, recorded, None, replayed=True, dry_run=dry_run)
        # Claimed but nothing recorded (it was deferred, or never reached the intent):
        # no order exists under it, so it may be tried, today.
    if dry_run:
        report = engine.place_one_off(row_id, symbol, amount, now, dry_run=True)
        return _from_report(engine, report, dry_run=True)
    # Claimed before the engine is called: a crash after the intent still leaves the key
    # pointing at the day of its execution.
    _claim(ledger, row_id, source, key, symbol, amount, today)
    report = engine.place_one_off(row_id, symbol, amount, now)
    return _from_report(engine, report, dry_run=False)


_KEY_WORD = {"manual": "Idempotency-Key", "tradingview": "alert_id"}


def _from_report(engine: Engine, report: RunReport, dry_run: bool) -> OneOffAnswer:
    execution = report.executions[-1] if report.executions else None
    deferred = report.deferred[-1]["message"] if report.deferred else None
    return _answer(engine, execution, deferred, replayed=report.replayed, dry_run=dry_run)


def _answer(engine: Engine, execution: Execution | None, deferred: str | None, replayed: bool,
            dry_run: bool) -> OneOffAnswer:
    return OneOffAnswer(execution, deferred, replayed, dry_run, engine.broker.simulated, engine.broker.name)


def _db(ledger: Ledger) -> sqlite3.Connection:
    db = sqlite3.connect(ledger.path, timeout=30, isolation_level=None)
    db.row_factory = sqlite3.Row
    db.execute(_SCHEMA)
    return db


def _known(ledger: Ledger, row_id: str) -> sqlite3.Row | None:
    with closing(_db(ledger)) as db:
        return db.execute("SELECT * FROM one_off_keys WHERE row_id=?", (row_id,)).fetchone()


def _claim(ledger: Ledger, row_id: str, source: str, key: str, symbol: str, amount: Decimal, day: date) -> None:
    stamp = datetime.now(timezone.utc).isoformat(timespec="seconds")
    with closing(_db(ledger)) as db:
        db.execute("PRAGMA synchronous=FULL")  # on disk before the intent can be
        db.execute(
            "INSERT INTO one_off_keys(row_id, source, idempotency_key, symbol, amount_usd, scheduled_date, created_at)"
            " VALUES (?,?,?,?,?,?,?) ON CONFLICT(row_id) DO UPDATE SET scheduled_date=excluded.scheduled_date",
            (row_id, source, key, symbol, str(amount), day.isoformat(), stamp))


def one_off_keys(ledger: Ledger) -> dict[str, tuple[str, str]]:
    """Row ID -> (source, the key it was derived from: an alert id, an Idempotency-Key)."""
    if ledger.read_only and not ledger.path.exists():
        return {}
    try:
        with closing(_db(ledger)) as db:
            return {r["row_id"]: (r["source"], r["idempotency_key"])
                    for r in db.execute("SELECT row_id, source, idempotency_key FROM one_off_keys")}
    except sqlite3.OperationalError:  # a read-only ledger from before the table existed
        return {}
