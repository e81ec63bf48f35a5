"""The emulator answers real gspread as the real API does where it matters: formatted
strings, no `values` for an empty range, trailing blanks trimmed, 429 with Retry-After,
403/404 as gspread's own exceptions, atomic batch updates, and a log to count requests."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import gspread
import pytest
from google.oauth2 import service_account

from dca.plans.sheets import SCOPES, _redirecting_client
from tests.fakes.sheets_api import Cell, SheetsEmulator, service_account_info

SID = "emulated-0123456789"
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def api():
    with SheetsEmulator() as emulator:
        emulator.add_spreadsheet(SID, {"Plan": [["Status", "Amount", "", ""], ["Active", Cell(1000, "currency"), 5, ""],
                                                ["", "", "", ""]], "Empty": []})
        yield emulator


@pytest.fixture
def gc(api):
    credentials = service_account.Credentials.from_service_account_info(service_account_info(api.token_uri),
                                                                        scopes=SCOPES)
    client = gspread.Client(credentials, http_client=_redirecting_client(api.base_url))
    client.set_timeout(5)
    return client


def test_values_are_formatted_strings_with_trailing_blanks_trimmed(gc, api):
    ws = gc.open_by_key(SID).worksheet("Plan")
    assert ws.get_all_values() == [["Status", "Amount", ""], ["Active", "$1,000.00", "5"]]  # gspread pads
    raw = ws.spreadsheet.values_get("'Plan'")
    assert raw["values"] == [["Status", "Amount"], ["Active", "$1,000.00", "5"]]  # ragged, strings


def test_an_empty_range_has_no_values_key(gc):
    raw = gc.open_by_key(SID).values_get("'Empty'")
    assert "values" not in raw and raw["majorDimension"] == "ROWS"


def test_the_token_endpoint_is_used_and_every_request_is_logged(gc, api):
    sheet = gc.open_by_key(SID)
    sheet.worksheet("Plan")  # gspread fetches the metadata again for this
    kinds = [(r.method, r.kind) for r in api.requests]
    assert kinds == [("POST", "token"), ("GET", "read"), ("GET", "read")]
    assert api.api_requests() == 2 and api.api_requests("write") == 0


def test_gspread_writes_and_appends_reach_the_state(gc, api):
    ws = gc.open_by_key(SID).worksheet("Plan")
    ws.update([["Inactive"]], "A2")
    ws.append_rows([["Active", "20"]])
    ws.batch_update([{"range": "C1", "values": [["Note"]]}])
    assert api.values(SID, "Plan") == [["Status", "Amount", "Note"], ["Inactive", "$1,000.00", "5"], ["Active", "20"]]


def test_429_carries_retry_after_and_403_404_are_gspreads_own_errors(gc, api):
    api.fail("/v4/", 429, retry_after=7)
    with pytest.raises(gspread.exceptions.APIError) as raised:
        gc.open_by_key(SID)
    assert raised.value.response.status_code == 429 and raised.value.response.headers["Retry-After"] == "7"
    with pytest.raises(gspread.exceptions.SpreadsheetNotFound):
        gc.open_by_key("missing-0123456789")
    api.spreadsheets[SID].readers = set()
    api.spreadsheets[SID].writers = set()
    with pytest.raises(PermissionError):  # what gspread makes of a 403
        gc.open_by_key(SID)


def test_a_batch_update_applies_entirely_or_not_at_all(gc, api):
    sheet = gc.open_by_key(SID)
    with pytest.raises(gspread.exceptions.APIError, match="exceeds grid limits"):
        sheet.batch_update({"requests": [
            {"updateCells": {"start": {"sheetId": 0, "rowIndex": 0, "columnIndex": 0},
                             "rows": [{"values": [{"userEnteredValue": {"stringValue": "changed"}}]}],
                             "fields": "userEnteredValue"}},
            {"updateCells": {"start": {"sheetId": 0, "rowIndex": 0, "columnIndex": 500},
                             "rows": [{"values": [{"userEnteredValue": {"stringValue": "too far"}}]}],
                             "fields": "userEnteredValue"}}]})
    assert api.values(SID, "Plan")[0] == ["Status", "Amount"]
    with pytest.raises(gspread.exceptions.APIError, match="already exists"):
        sheet.add_worksheet("Plan", 10, 10)


def test_a_write_can_be_applied_and_still_answered_with_500(gc, api):
    ws = gc.open_by_key(SID).worksheet("Plan")
    api.fail(":batchUpdate", 500, apply_first=True)
    with pytest.raises(gspread.exceptions.APIError):
        ws.batch_update([{"range": "A2", "values": [["Inactive"]]}])
    assert api.values(SID, "Plan")[1][0] == "Inactive"


@pytest.mark.slow
def test_it_can_be_started_by_hand(tmp_path):
    key = tmp_path / "sa.json"
    process = subprocess.Popen([sys.executable, "-m", "tests.fakes.sheets_api", "--port", "0", "--credentials",
                                str(key)], cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        lines = [process.stdout.readline().strip() for _ in range(3)]
    finally:
        process.terminate()
        process.wait(10)
    assert lines[0].startswith("DCA_PLAN=https://docs.google.com/spreadsheets/d/")
    assert lines[1].startswith("DCA_SHEETS_API_URL=http://127.0.0.1:")
    assert json.loads(key.read_text())["type"] == "service_account"
