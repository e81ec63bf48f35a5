"""The panel's edits to a CSV plan: only the changed cells, refused when the file changed."""

from __future__ import annotations

import pytest

from dca.plans.csv_file import CsvPlanSource, PlanConflict
from tests.conftest import HEADER

ROWS = 'Active,AAPL,10,Weekly,"ok, done",a1\r\nInactive,TSLA,"$1,000.00",Daily,,t1\r\n'


@pytest.fixture
def plan(tmp_path):
    path = tmp_path / "plan.csv"
    path.write_bytes((HEADER.replace("\n", "\r\n") + ROWS).encode())
    return path


def test_an_edited_cell_changes_only_that_cell(plan):
    before = plan.read_bytes()
    n = CsvPlanSource(plan).write_cells({("a1", "Amount (USD)"): ("10", "25"), ("t1", "Status"): ("Inactive", "Inactive")})
    assert n == 1
    assert plan.read_bytes() == before.replace(b"AAPL,10,", b"AAPL,25,")


def test_a_cell_changed_in_the_file_since_it_was_loaded_refuses_every_edit(plan):
    before = plan.read_bytes()
    with pytest.raises(PlanConflict, match=r"Amount \(USD\) of row 2 is now '10', not '12'.*Reload"):
        CsvPlanSource(plan).write_cells({("t1", "Status"): ("Inactive", "Active"), ("a1", "Amount (USD)"): ("12", "25")})
    assert plan.read_bytes() == before


def test_a_row_that_is_gone_is_a_conflict(plan):
    with pytest.raises(PlanConflict, match="row zz or its Status column is no longer in the file"):
        CsvPlanSource(plan).write_cells({("zz", "Status"): ("Active", "Inactive")})


def test_added_rows_are_appended_without_an_id_keeping_the_file_as_it_was(plan):
    before = plan.read_bytes()
    assert CsvPlanSource(plan).add_rows([{"Status": "Active", "Stock Symbol": "SPY", "Amount (USD)": "5",
                                          "Frequency": "Monthly", "ID": "forged"}, {"Status": ""}]) == 1
    assert plan.read_bytes() == before + b"Active,SPY,5,Monthly,,\r\n"
    loaded = CsvPlanSource(plan).load()
    assert [r.symbol for r in loaded.rows] == ["AAPL", "TSLA", "SPY"] and loaded.unidentified == [4]


def test_a_deleted_row_is_removed_whole(plan):
    CsvPlanSource(plan).delete_rows({"a1": {"Status": "Active", "Stock Symbol": "AAPL"}})
    assert plan.read_bytes() == (HEADER.replace("\n", "\r\n") + 'Inactive,TSLA,"$1,000.00",Daily,,t1\r\n').encode()


def test_a_row_edited_since_it_was_loaded_is_not_deleted(plan):
    before = plan.read_bytes()
    with pytest.raises(PlanConflict, match="nothing was deleted: Amount"):
        CsvPlanSource(plan).delete_rows({"a1": {"Amount (USD)": "11"}})
    assert plan.read_bytes() == before


def test_cells_lists_every_row_as_written_bad_ones_too(plan):
    rows = CsvPlanSource(plan).cells()
    assert rows[1] == {"Row": "3", "Status": "Inactive", "Stock Symbol": "TSLA", "Amount (USD)": "$1,000.00",
                       "Frequency": "Daily", "Log": "", "ID": "t1"}
