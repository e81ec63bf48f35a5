"""The `dca` command with a Google Sheet as the plan, as a person configures it: the
sheet's address in DCA_PLAN or --plan, a service-account key file, and (for the
emulator) DCA_SHEETS_API_URL."""

from __future__ import annotations

import json

import pytest

from dca.cli import main
from dca.plans.sheets import HISTORY_COLUMNS
from tests.fakes.sheets_api import SheetsEmulator, point_dca_at

SID = "1AbCdEfGhIjKlMnOpQrStUvWxYz0123456789"
URL = f"https://docs.google.com/spreadsheets/d/{SID}/edit#gid=0"
HEADER = ["Status", "Stock Symbol", "Amount (USD)", "Frequency", "Log"]


def dca(capsys, *args):
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def api(monkeypatch, tmp_path):
    with SheetsEmulator() as emulator:
        point_dca_at(emulator, tmp_path, monkeypatch)
        yield emulator


def test_a_sheet_address_in_plan_is_a_sheet_not_a_path(capsys, api):
    api.add_spreadsheet(SID, {"Plan": [HEADER, ["Active", "AAPL", "$1,000.00", "Weekly"]]})
    code, out, err = dca(capsys, "plan", "--plan", URL, "--json")
    assert code == 0, err
    plan = json.loads(out)
    assert plan["source"] == f"Google Sheet {SID} (worksheet gid 0)"
    assert [(r["symbol"], r["amount_usd"]) for r in plan["rows"]] == [("AAPL", "1000.00")]


def test_a_run_through_the_command_writes_logs_ids_and_history(capsys, api, monkeypatch):
    api.add_spreadsheet(SID, {"Plan": [HEADER, ["Active", "QQQ", "700", "Daily"]]})
    monkeypatch.setenv("DCA_PLAN", URL)
    code, out, err = dca(capsys, "run", "--now", "2027-03-01T09:00:30", "--json")
    assert code == 0, err
    report = json.loads(out)
    assert [e["status"] for e in report["executions"]] == ["filled"]
    rows = api.values(SID, "Plan")
    assert rows[0] == HEADER + ["ID"] and rows[1][5] == report["executions"][0]["row_id"]
    assert "filled" in rows[1][4]
    assert api.values(SID, "History")[0] == list(HISTORY_COLUMNS)
    assert api.api_requests() == 5  # read, store IDs, confirm, re-read, write


def test_sheet_init_through_the_command(capsys, api, monkeypatch):
    api.add_spreadsheet(SID, {"Plan": []})
    monkeypatch.setenv("DCA_PLAN", URL)
    code, out, err = dca(capsys, "sheet", "init")
    assert code == 0, err
    assert "wrote the header row" in out and "added the History worksheet" in out
    assert api.values(SID, "Plan") == [HEADER + ["ID"]]


def test_sheet_init_on_a_csv_plan_says_what_to_set(capsys, tmp_path):
    code, _, err = dca(capsys, "sheet", "init")
    assert code == 2 and "not a Google Sheet; put the sheet's address in DCA_PLAN" in err


def test_a_sheet_without_credentials_is_a_configuration_error(capsys, monkeypatch):
    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS", raising=False)
    code, _, err = dca(capsys, "plan", "--plan", URL)
    assert code == 2 and "GOOGLE_APPLICATION_CREDENTIALS" in err


def test_a_refused_sheet_exits_2_naming_the_account_and_nothing_secret(capsys, api, monkeypatch):
    sheet = api.add_spreadsheet(SID, {"Plan": [HEADER]})
    sheet.readers, sheet.writers = set(), set()
    code, out, err = dca(capsys, "plan", "--plan", URL)
    assert code == 2
    assert "share the sheet with dca-bot@dca-test.iam.gserviceaccount.com as Editor" in err
    assert "PRIVATE KEY" not in out + err and "emu-token" not in out + err


def test_status_shows_the_sheet_and_no_key_material(capsys, api, monkeypatch):
    api.add_spreadsheet(SID, {"Plan": [HEADER, ["Active", "AAPL", "10", "Weekly"]]})
    monkeypatch.setenv("DCA_PLAN", URL)
    code, out, err = dca(capsys, "status", "--json")
    status = json.loads(out)
    assert status["plan"].startswith(f"Google Sheet {SID}") and status["settings"]["sheet_id"] == SID
    assert "PRIVATE KEY" not in out + err and "emu-token" not in out + err


@pytest.mark.parametrize("env, message", [
    ({"DCA_PLAN": "https://example.com/plan.csv"}, "is not a Google Sheet address"),
    ({"DCA_SHEET_ID": URL}, "takes the bare spreadsheet id"),
    ({"DCA_PLAN": URL, "DCA_SHEET_WORKSHEET": "Plan"}, "keep one of them"),
    ({"DCA_SHEETS_API_URL": "localhost:8080"}, "is not a base address"),
])
def test_sheet_settings_are_checked_at_start(capsys, monkeypatch, env, message):
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    code, _, err = dca(capsys, "plan")
    assert code == 2 and message in err


def test_a_bare_sheet_id_and_a_worksheet_name(capsys, api, monkeypatch):
    api.add_spreadsheet(SID, {"Notes": [["x"]], "My plan": [HEADER, ["Active", "VTI", "10", "Monthly"]]})
    monkeypatch.setenv("DCA_SHEET_ID", SID)
    monkeypatch.setenv("DCA_SHEET_WORKSHEET", "My plan")
    code, out, err = dca(capsys, "plan", "--json")
    assert code == 0, err
    assert [r["symbol"] for r in json.loads(out)["rows"]] == ["VTI"]
