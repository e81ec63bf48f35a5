"""The Plan page's editor through AppTest: the editor's state is set as the browser would
send it, then Save is clicked; the CSV file is what is checked."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from tests.conftest import HEADER

APP = Path(__file__).resolve().parents[2] / "app.py"
ROWS = "Active,VTI,1000,Monthly,,v1\nInactive,TSLA,10,Daily,,t1\n"



@pytest.fixture
def plan(tmp_path, monkeypatch) -> Path:
    path = tmp_path / "my-plan.csv"
    path.write_text(HEADER + ROWS)
    monkeypatch.setenv("DCA_PLAN", str(path))
    return path


def edit(at: AppTest, edited=None, added=(), deleted=()) -> AppTest:
    at.session_state["plan_editor"] = {"edited_rows": edited or {}, "added_rows": list(added),
                                       "deleted_rows": list(deleted)}
    return at.run()


def texts(elements) -> list[str]:
    return [e.value for e in elements]


def test_editing_and_saving_a_cell_changes_only_that_cell(plan):
    at = AppTest.from_file(str(APP), default_timeout=30).run()
    editor = at.dataframe[0]
    assert editor.proto.editing_mode  # an editor, not a read-only table
    edit(at, {0: {"Amount (USD)": 1250.5}, 1: {"Status": "Active"}})
    assert "Unsaved: 2 changed cell(s)." in texts(at.caption)
    at.button(key="plan_save").click().run()
    assert not at.exception
    assert "Saved: 2 cell(s) written." in texts(at.success)
    assert plan.read_text() == HEADER + "Active,VTI,1250.50,Monthly,,v1\nActive,TSLA,10,Daily,,t1\n"


def test_a_cell_changed_in_the_file_meanwhile_is_refused_and_the_plan_reloaded(plan):
    at = AppTest.from_file(str(APP), default_timeout=30).run()
    edit(at, {0: {"Amount (USD)": 5.0}})
    plan.write_text(HEADER + "Active,VTI,999,Monthly,,v1\nInactive,TSLA,10,Daily,,t1\n")  # someone else's edit
    at.button(key="plan_save").click().run()
    assert not at.exception
    [error] = [e for e in texts(at.error)]
    assert "changed since it was loaded, so nothing was written" in error and "Reload" in error
    assert "999" in plan.read_text() and "5," not in plan.read_text()
    assert list(at.dataframe[0].value["Amount (USD)"]) == [999.0, 10.0]  # reloaded: the file as it is now


def test_a_bad_edit_is_named_before_saving_and_cannot_be_saved(plan):
    at = AppTest.from_file(str(APP), default_timeout=30).run()
    # The browser enforces the dropdown; a request that bypasses it is checked here again.
    edit(at, {0: {"Frequency": "Hourly", "Stock Symbol": "vti!"}})
    errors = texts(at.error)
    assert any(e.startswith("Not saved yet — Row 2: ") and "Hourly" in e for e in errors)
    assert at.button(key="plan_save").disabled
    assert plan.read_text() == HEADER + ROWS


def test_added_and_deleted_rows_are_written_and_the_ledger_keeps_history(plan):
    at = AppTest.from_file(str(APP), default_timeout=30).run()
    edit(at, added=[{"Status": "Active", "Stock Symbol": "SPY", "Amount (USD)": 50, "Frequency": "Weekly"}],
         deleted=[1])
    assert any("stays in the ledger" in i for i in texts(at.info))
    at.button(key="plan_save").click().run()
    assert not at.exception
    assert plan.read_text() == HEADER + "Active,VTI,1000,Monthly,,v1\nActive,SPY,50,Weekly,,\n"
    assert any("get one on the next run" in c for c in texts(at.caption))


def test_deactivating_a_row_is_a_status_edit(plan):
    at = AppTest.from_file(str(APP), default_timeout=30).run()
    edit(at, {0: {"Status": "Inactive"}})
    at.button(key="plan_save").click().run()
    assert plan.read_text().splitlines()[1] == "Inactive,VTI,1000,Monthly,,v1"


def test_with_nothing_unsaved_the_page_shows_the_plan_as_it_is_now(plan):
    at = AppTest.from_file(str(APP), default_timeout=30).run()
    plan.write_text(HEADER + "Active,VTI,1000,Monthly,,v1\nInactive,TSLA,10,Daily,,t1\nActive,SPY,5,Weekly,,s1\n")
    at.run()
    assert list(at.dataframe[0].value["Stock Symbol"]) == ["VTI", "TSLA", "SPY"]


def test_with_unsaved_edits_the_loaded_plan_is_kept_so_positions_still_mean_the_same_rows(plan):
    at = AppTest.from_file(str(APP), default_timeout=30).run()
    edit(at, {1: {"Status": "Active"}})
    plan.write_text(HEADER + "Active,SPY,5,Weekly,,s1\n" + ROWS)  # a row inserted above, meanwhile
    at.run()
    assert list(at.dataframe[0].value["Stock Symbol"]) == ["VTI", "TSLA"]
    at.button(key="plan_save").click().run()
    assert plan.read_text() == HEADER + "Active,SPY,5,Weekly,,s1\nActive,VTI,1000,Monthly,,v1\nActive,TSLA,10,Daily,,t1\n"
