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
