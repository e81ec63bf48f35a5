"""The ledger file itself: what happens with a file that is not one, or is from the future."""

from __future__ import annotations

import sqlite3

import pytest

from dca.cli import main
from dca.ledger import Ledger, LedgerError


def test_a_file_that_is_not_a_database_is_refused_with_what_to_do(tmp_path):
    path = tmp_path / "ledger.sqlite3"
    path.write_text("this is a plan, not a ledger\n" * 100)
    with pytest.raises(LedgerError, match="cannot be opened as a SQLite database.*--db/DCA_DB"):
        Ledger(path)


def test_a_ledger_from_a_newer_version_is_refused(tmp_path):
    path = tmp_path / "ledger.sqlite3"
    Ledger(path).close()
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA user_version=99")
    with pytest.raises(LedgerError, match="newer version of dca"):
        Ledger(path)


def test_the_cli_exits_2_for_an_unusable_ledger(tmp_path, capsys):
    bad = tmp_path / "bad.sqlite3"
    bad.write_bytes(b"\x00garbage" * 1000)
    assert main(["history", "--db", str(bad)]) == 2
    assert "cannot be opened as a SQLite database" in capsys.readouterr().err


def test_reopening_keeps_what_was_recorded(make_rig):
    from tests.conftest import ny

    rig = make_rig("Active,SPY,700,Weekly,,s1\n")
    rig.run(ny(2027, 3, 1, 9, 1))
    rig.ledger.close()
    again = Ledger(rig.ledger.path)
    assert [e.order_ref for e in again.history()] == ["dca-s1-20270301"]


def test_a_failed_write_leaves_the_ledger_usable(make_rig):
    from decimal import Decimal

    from dca.domain import Outcome
    from dca.execution import Execution
    from tests.conftest import ny

    rig = make_rig("Active,SPY,700,Weekly,,s1\n")
    first = Execution("s1", ny(2027, 3, 1).date(), ny(2027, 3, 1, 9), "SPY", "Weekly", Decimal("700"), Outcome.MISSED)
    assert rig.ledger.insert(first) is not None
    assert rig.ledger.insert(first) is None  # the unique key refuses a second record...
    # ...and the connection it used is not left inside a transaction.
    second = first.evolve(scheduled_date=ny(2027, 3, 8).date(), scheduled_at=ny(2027, 3, 8, 9))
    assert rig.ledger.insert(second) is not None
    assert len(rig.ledger.history()) == 2


SCHEMA_1 = '''
CREATE TABLE executions (
    id INTEGER PRIMARY KEY, row_id TEXT NOT NULL, scheduled_date TEXT NOT NULL,
    scheduled_at TEXT NOT NULL, row_number INTEGER, symbol TEXT NOT NULL, frequency TEXT NOT NULL,
    amount_usd TEXT NOT NULL, status TEXT NOT NULL, late INTEGER NOT NULL DEFAULT 0, quantity TEXT,
    price TEXT, cost TEXT, cash_order INTEGER NOT NULL DEFAULT 0, carry_in TEXT NOT NULL DEFAULT '0',
    carry_out TEXT NOT NULL DEFAULT '0', order_ref TEXT, broker_order_id TEXT,
    message TEXT NOT NULL DEFAULT '', attempts INTEGER NOT NULL DEFAULT 0, attempt_day TEXT,
    simulated INTEGER NOT NULL DEFAULT 0, recorded_at TEXT NOT NULL, updated_at TEXT NOT NULL,
    UNIQUE (row_id, scheduled_date));
CREATE TABLE outbox (id INTEGER PRIMARY KEY, kind TEXT NOT NULL, row_id TEXT, body TEXT NOT NULL,
    created_at TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, last_error TEXT, delivered_at TEXT);
PRAGMA user_version=1;
'''


def test_a_ledger_of_the_first_schema_is_upgraded_and_keeps_its_carry(tmp_path):
    """A foundation ledger (schema 1) opens: each execution's contribution to the carry
    is derived from what it recorded, so the carry is the same after the upgrade."""
    import sqlite3
    from decimal import Decimal

    path = tmp_path / "old.sqlite3"
    with sqlite3.connect(path) as db:
        db.executescript(SCHEMA_1)
        rows = [  # (date, status, cost, carry_in, carry_out)
            ("2027-03-01", "filled", "650.00", "0", "50.00"),  # $700: bought 650, carried 50
            ("2027-03-08", "skipped", None, "50.00", "750.00"),  # below one share: $700 carried on
            ("2027-03-15", "failed", None, "750.00", "750.00"),  # the broker said no: carry kept
        ]
        for day, status, cost, carry_in, carry_out in rows:
            db.execute(
                "INSERT INTO executions(row_id, scheduled_date, scheduled_at, symbol, frequency, amount_usd, "
                "status, cost, carry_in, carry_out, recorded_at, updated_at) "
                "VALUES ('s1', ?, ?, 'SPY', 'Weekly', '700', ?, ?, ?, ?, 'x', 'x')",
                (day, day + "T09:00:00-05:00", status, cost, carry_in, carry_out))
        db.execute("INSERT INTO outbox(kind, row_id, body, created_at) VALUES ('notify', 's1', 'hello', 'x')")
    ledger = Ledger(path)
    assert ledger.carry("s1") == Decimal("750.00")
    assert [e.added for e in sorted(ledger.history(), key=lambda e: e.scheduled_date)] == [
        Decimal("700"), Decimal("700"), Decimal("0")]
    [item] = ledger.undelivered("notify")
    assert item.body == "hello" and item.execution_id is None
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == 3


def test_carries_of_many_rows_equal_each_rows_carry_by_hand(tmp_path):
    """The panel asks for a thousand rows' carry in one read: the same Decimal answer as
    adding up each row's executions, overspends (negative) and rows without any included."""
    import random
    from datetime import date, timedelta
    from decimal import Decimal

    from dca.domain import Outcome
    from dca.execution import Execution
    from tests.conftest import ny

    ledger = Ledger(tmp_path / "ledger.sqlite3")
    rng = random.Random(11)
    by_hand: dict[str, Decimal] = {}
    for i in range(700):  # more rows than one SQL statement takes variables for
        row_id = f"r{i % 600}"
        day = date(2027, 3, 1) + timedelta(days=i // 600)
        status = rng.choice(list(Outcome))
        added = Decimal(rng.randrange(0, 10_000)) / 100
        cost = None if rng.random() < 0.2 else Decimal(rng.randrange(0, 2_000_000)) / 10_000  # sub-cent fills
        ledger.insert(Execution(row_id, day, ny(day.year, day.month, day.day, 9), "SPY", "Daily", Decimal("10"),
                                status, added=added, cost=cost))
        spent = cost if status in (Outcome.FILLED, Outcome.SUBMITTED, Outcome.PENDING) and cost is not None else 0
        by_hand[row_id] = by_hand.get(row_id, Decimal("0")) + added - spent
    wanted = [*by_hand, "never-ran"]
    carries = ledger.carries(wanted)
    assert carries == {**by_hand, "never-ran": Decimal("0")}
    assert any(v < 0 for v in carries.values()) and any(v > 0 for v in carries.values())
    assert all(ledger.carry(r) == by_hand[r] for r in list(by_hand)[:20])
