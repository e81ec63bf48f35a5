"""The Plan page on a Google Sheet (the local Sheets emulator, real gspread client):
a cell edit is written to that cell only; an unreachable sheet shows the plan last read."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from tests.fakes.sheets_api import SheetsEmulator, point_dca_at

APP = Path(__file__).resolve().parents[2] / "app.py"
SID = "1AbCdEfGhIjKlMnOpQrStUvWxYz0123456789"
URL = f"https://docs.google.com/spreadsheets/d/{SID}/edit#gid=0"
HEADER = ["Status", "Stock Symbol", "Amount (USD)", "Frequency", "Log", "ID"]



@pytest.fixture
def api(monkeypatch, tmp_path):
    with SheetsEmulator() as emulator:
        point_dca_at(emulator, tmp_path, monkeypatch)
        monkeypatch.setenv("DCA_PLAN", URL)
        emulator.add_spreadsheet(SID, {"Plan": [HEADER, ["Active", "VTI", "$1,000.00", "Monthly", "", "v1"],
                                                ["Active", "SPY", "500", "Weekly", "", "s1"]]})
        yield emulator


def test_a_cell_edited_in_the_panel_is_written_to_that_cell_of_the_sheet(api):
    at = AppTest.from_file(str(APP), default_timeout=30).run()
    assert not at.exception
    assert any(URL.split("#")[0] in m.value for m in at.markdown)  # a link to the sheet
    at.session_state["plan_editor"] = {"edited_rows": {1: {"Amount (USD)": 750.0}}, "added_rows": [],
                                       "deleted_rows": []}
    at.run()
    at.button(key="plan_save").click().run()
    assert not at.exception
    assert [s.value for s in at.success] == ["Saved: 1 cell(s) written."]
    assert api.values(SID, "Plan")[1:] == [["Active", "VTI", "$1,000.00", "Monthly", "", "v1"],
                                           ["Active", "SPY", "750", "Weekly", "", "s1"]]


def test_an_unreachable_sheet_shows_the_plan_last_read_read_only(api):
    AppTest.from_file(str(APP), default_timeout=30).run()  # a read that the ledger remembers
    api.fail(":getByDataFilter", 403, times=100)
    at = AppTest.from_file(str(APP), default_timeout=30).run()
    assert not at.exception
    assert at.error  # what went wrong, in a sentence
    assert any("plan as last read" in w.value and "read-only" in w.value for w in at.warning)
    [table] = at.dataframe
    assert list(table.value["Stock Symbol"]) == ["VTI", "SPY"]
    assert not at.button  # nothing to save
