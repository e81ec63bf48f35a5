"""The Google Sheet plan source, driven through real gspread and google-auth (a service
account's JWT grant at the credentials' token_uri) against the local Sheets emulator."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pytest

from dca.brokers.simulated import SimulatedBroker
from dca.domain import Outcome
from dca.engine import Engine, RunOptions
from dca.errors import PlanError
from dca.ledger import Ledger
from dca.notify.log_notifier import FileNotifier
from dca.plans.sheets import (
    HISTORY_COLUMNS,
    RetryPolicy,
    SheetConflict,
    SheetError,
    SheetPlanSource,
    SheetRef,
    build_sheet_source,
)
from dca.schedule_rules import Schedule
from tests.conftest import ny
from tests.fakes import FakeClock
from tests.fakes.sheets_api import Cell, SheetsEmulator, service_account_info

SID = "sheet-0123456789abcdef"
EMAIL = "dca-bot@dca-test.iam.gserviceaccount.com"
HEADER = ["Status", "Stock Symbol", "Amount (USD)", "Frequency", "Log", "ID"]
MONDAY = ny(2027, 5, 3, 9, 0, 20)  # first trading day of the month and week: every row is due
TUESDAY = ny(2027, 5, 4, 9, 0, 20)


@pytest.fixture
def api():
    with SheetsEmulator() as emulator:
        yield emulator


@pytest.fixture
def credentials(api, tmp_path) -> Path:
    path = tmp_path / "service-account.json"
    path.write_text(json.dumps(service_account_info(api.token_uri, EMAIL)))
    return path


@dataclass
class SheetRig:
    api: SheetsEmulator
    source: SheetPlanSource
    clock: FakeClock
    broker: SimulatedBroker
    ledger: Ledger
    notifier: FileNotifier
    engine: Engine

    def run(self, now):
        return self.engine.run(now)

    def plan(self) -> list[list[str]]:
        return self.api.values(SID, "Plan")

    def history(self) -> list[list[str]]:
        return self.api.values(SID, "History")

    def log_of(self, row_id: str) -> str:
        rows = self.plan()
        id_col, log_col = rows[0].index("ID"), rows[0].index("Log")
        row = next(r for r in rows[1:] if len(r) > id_col and r[id_col] == row_id)
        return row[log_col] if len(row) > log_col else ""


@pytest.fixture
def make_rig(api, credentials, tmp_path, calendar):
    def make(rows: list[list], ref: SheetRef | None = None, **options) -> SheetRig:
        if SID not in api.spreadsheets:
            api.add_spreadsheet(SID, {"Plan": rows})
        clock = FakeClock()
        ledger = Ledger(tmp_path / "ledger.sqlite3", lock_timeout=30)
        source = build_sheet_source(ref or SheetRef(SID, gid=0), credentials, api.base_url, clock,
                                    rng=random.Random(7), memory=ledger)
        broker = SimulatedBroker(tmp_path / "book.sqlite3", fractional=True)  # $10 buys a part of a share
        notifier = FileNotifier(tmp_path / "notifications.log")
        options.setdefault("max_daily_usd", Decimal("100000"))
        engine = Engine(source, broker, ledger, notifier, Schedule(calendar), RunOptions(**options), None, clock)
        return SheetRig(api, source, clock, broker, ledger, notifier, engine)

    return make


def daily_rows(n: int, ids: bool = True) -> list[list]:
    return [HEADER] + [["Active", "SPY", "10", "Daily", "", f"r{i:04d}" if ids else ""] for i in range(n)]


# -- reading ---------------------------------------------------------------------------------


def test_a_messy_real_world_sheet_reads_as_the_csv_source_reads_it(make_rig, api):
    rows = [
        ["status ", "TICKER", "amount", " Frequency", "My notes", "Log", "id"],
        ["Active ", " aapl ", Cell(1000, "currency"), "weekly", "keep me", "", "a1"],  # shown "$1,000.00"
        [],  # a blank row
        ["Inactive", "TSLA", 10, "Daily", "", "", "t1"],  # a number: read as the string "10"
        ["Active", "VTI", "$1,000", "Monthly ", "", "", "v1"],
        ["Active", "SPY", "10,5", "Weekly", "", "", "s1"],  # never a decimal comma
    ]
    rig = make_rig(rows)
    plan = rig.source.load()
    assert [(r.row_number, r.row_id, str(r.status), r.symbol, r.amount, str(r.frequency)) for r in plan.rows] == [
        (2, "a1", "Active", "AAPL", Decimal("1000.00"), "Weekly"),
        (4, "t1", "Inactive", "TSLA", Decimal("10.00"), "Daily"),
        (5, "v1", "Active", "VTI", Decimal("1000.00"), "Monthly"),
    ]
    assert [(i.row_number, i.is_error) for i in plan.issues] == [(6, True)]
    assert "'10,5' is not an amount" in plan.issues[0].message
    assert api.api_requests() == 1  # the whole plan in one request
    # What the emulator answered is what the real API answers: formatted strings, trimmed.
    answer = api.requests[-1]
    assert answer.path.endswith(":getByDataFilter") and answer.status == 200


def test_an_empty_worksheet_and_a_header_without_a_required_column_are_refused_as_a_whole(make_rig, api):
    rig = make_rig([])
    with pytest.raises(SheetError, match="no header row"):
        rig.source.load()
    api.spreadsheets[SID].sheets[0].rows = [[Cell("Status"), Cell("Symbol"), Cell("Amount")]]
    with pytest.raises(SheetError, match="lacks Frequency"):
        rig.source.load()


def test_the_worksheet_is_found_by_name_and_a_missing_one_is_named_with_the_ones_there(make_rig, api, credentials):
    api.add_spreadsheet(SID, {"Notes": [["hello"]], "Plan": daily_rows(1)})
    named = make_rig([], ref=SheetRef(SID, worksheet="Plan")).source
    assert [r.row_id for r in named.load().rows] == ["r0000"]
    missing = build_sheet_source(SheetRef(SID, worksheet="Plan 2"), credentials, api.base_url, FakeClock())
    with pytest.raises(SheetError, match=r"no worksheet named 'Plan 2' \(it has: Notes, Plan\)"):
        missing.load()
    by_gid = build_sheet_source(SheetRef(SID, gid=99), credentials, api.base_url, FakeClock())
    with pytest.raises(SheetError, match="no worksheet with gid 99"):
        by_gid.load()


def test_403_says_to_share_the_sheet_with_the_service_account_as_editor(make_rig, api):
    rig = make_rig(daily_rows(1))
    api.spreadsheets[SID].readers = {"someone@else.example"}
    api.spreadsheets[SID].writers = set()
    with pytest.raises(SheetError, match=f"share the sheet with {EMAIL} as Editor"):
        rig.source.load()
    api.spreadsheets[SID].readers = {EMAIL}  # a Viewer: reads work, writes do not
    rig.source.load()
    with pytest.raises(SheetError, match=f"{EMAIL} may not edit .*share the sheet with {EMAIL} as Editor"):
        rig.source.write_logs({"r0000": "filled"})


def test_404_says_no_spreadsheet_has_that_id(api, credentials):
    source = build_sheet_source(SheetRef("no-such-sheet-1234567890"), credentials, api.base_url, FakeClock())
    with pytest.raises(SheetError, match="no spreadsheet with id no-such-sheet-1234567890"):
        source.load()


def test_reads_back_off_with_jitter_after_429_honouring_retry_after_within_a_bound(make_rig, api):
    rig = make_rig(daily_rows(1))
    api.fail(":getByDataFilter", 429, times=2, retry_after=3)
    api.fail(":getByDataFilter", 503, times=2)
    assert [r.row_id for r in rig.source.load().rows] == ["r0000"]
    assert rig.clock.slept[:2] == [3.0, 3.0]  # Retry-After, as the server asked
    backoffs = rig.clock.slept[2:]
    assert len(backoffs) == 2 and 1.5 <= backoffs[0] <= 4 and 2 <= backoffs[1] <= 8  # doubling, jittered
    assert backoffs != [4.0, 8.0] and backoffs != [2.0, 4.0]


def test_a_persistent_outage_gives_up_within_the_bounded_time(make_rig, api):
    rig = make_rig(daily_rows(1))
    api.fail(":getByDataFilter", 500, times=100)
    with pytest.raises(SheetError, match=r"gave up after \d attempt"):
        rig.source.load()
    assert sum(rig.clock.slept) <= RetryPolicy().total_wait
    assert api.api_requests() <= RetryPolicy().attempts


def test_a_slow_sheet_times_out_and_is_retried(api, credentials):
    api.add_spreadsheet(SID, {"Plan": daily_rows(1)})
    source = build_sheet_source(SheetRef(SID, gid=0), credentials, api.base_url, FakeClock(),
                                policy=RetryPolicy(timeout=0.2))
    api.fail(":getByDataFilter", None, delay=0.5)  # answers, but too late
    assert [r.row_id for r in source.load().rows] == ["r0000"]
    assert api.api_requests() == 2


# -- a run: the request budget, IDs, Log and History ---------------------------------------------------


@pytest.mark.parametrize("n", [1, 500])
def test_a_run_makes_three_requests_whatever_the_number_of_rows(make_rig, api, n):
    rig = make_rig(daily_rows(n))
    report = rig.run(MONDAY)
    assert [e.status for e in report.executions] == [Outcome.FILLED] * n
    assert api.api_requests() == 3
    assert [r.kind for r in api.requests if r.kind != "token"] == ["read", "read", "write"]
    plan = rig.plan()
    assert all(row[4].startswith("2027-05-03 09:00 ET · filled · ") for row in plan[1:])
    history = rig.history()
    assert history[0] == list(HISTORY_COLUMNS) and len(history) == n + 1
    assert history[1][1:3] == ["r0000", "SPY"] and history[1][6] == "filled"
    assert history[1][9] == "r0000|2027-05-03|filled"


@pytest.mark.parametrize("n", [1, 500])
def test_a_run_that_stores_new_ids_makes_two_more_requests_and_orders_after_they_are_confirmed(make_rig, api, n):
    rig = make_rig(daily_rows(n, ids=False))
    report = rig.run(MONDAY)
    assert [e.status for e in report.executions] == [Outcome.FILLED] * n
    assert api.api_requests() == 5
    assert [r.kind for r in api.requests if r.kind != "token"] == ["read", "write", "read", "read", "write"]
    plan = rig.plan()
    ids = [row[5] for row in plan[1:]]
    assert len(set(ids)) == n and all(ids)
    assert {e.row_id for e in report.executions} == set(ids)


def test_a_sheet_without_id_and_log_columns_gets_them_after_every_column_in_use(make_rig, api):
    rig = make_rig([["Status", "Stock Symbol", "Amount (USD)", "Frequency", "Notes"],
                    ["Active", "SPY", "10", "Daily", "", "", "stray text in G"]])
    rig.run(MONDAY)
    plan = rig.plan()
    assert plan[0] == ["Status", "Stock Symbol", "Amount (USD)", "Frequency", "Notes", "", "", "ID", "Log"]
    assert plan[1][6] == "stray text in G" and plan[1][7].startswith("r") and "filled" in plan[1][8]


def test_rows_moved_and_inserted_during_a_run_each_get_their_own_log(make_rig, api):
    rows = [HEADER, ["Active", "SPY", "10", "Daily", "", "s1"], ["Active", "QQQ", "20", "Daily", "", "q1"],
            ["Active", "VTI", "30", "Daily", "", "v1"]]
    rig = make_rig(rows)

    def person_reorders():  # after the run read the plan, before it writes the Logs
        api.move_row(SID, "Plan", 3, 1)  # VTI to the top
        api.insert_row(SID, "Plan", 2, ["Active", "IWM", "40", "Daily", "", ""])

    api.on_request(2, person_reorders)
    rig.run(MONDAY)
    plan = rig.plan()
    assert [r[1] for r in plan[1:]] == ["VTI", "IWM", "SPY", "QQQ"]
    for symbol, row_id in (("SPY", "s1"), ("QQQ", "q1"), ("VTI", "v1")):
        assert f" {symbol} @ " in rig.log_of(row_id)
    assert len(plan[2]) <= 4 or plan[2][4] == ""  # the inserted row got nobody's Log


def test_a_persons_edit_to_another_cell_during_the_run_survives(make_rig, api):
    rows = [HEADER + ["Notes"], ["Active", "SPY", "10", "Daily", "old log", "s1", "note"],
            ["Inactive", "QQQ", "20", "Daily", "", "q1"]]
    rig = make_rig(rows)

    def person_edits():  # between the re-read and the write
        api.set_cell(SID, "Plan", "C3", "25")  # QQQ's amount
        api.set_cell(SID, "Plan", "G2", "typed at 9:00")  # SPY's note

    api.on_request(3, person_edits)
    rig.run(MONDAY)
    plan = rig.plan()
    assert plan[2][2] == "25" and plan[1][6] == "typed at 9:00"
    assert "filled" in plan[1][4]
    write = [r for r in api.requests if r.kind == "write"][-1]
    kinds = [next(iter(q)) for q in write.body["requests"]]
    assert kinds.count("updateCells") == 1 and "appendCells" in kinds  # one Log cell, nothing else


def test_a_row_inserted_while_ids_are_stored_never_gets_another_rows_id(make_rig, api):
    rows = [HEADER, ["Active", "SPY", "10", "Daily", "", ""], ["Active", "QQQ", "20", "Daily", "", ""]]
    rig = make_rig(rows)
    # The person inserts a row at the top after the run read the plan, before it stores IDs.
    api.on_request(2, lambda: api.insert_row(SID, "Plan", 1, ["Active", "TSLA", "500", "Daily", "", ""]))
    report = rig.run(MONDAY)
    assert report.executions == [] and rig.broker.orders() == []  # nothing bought for unconfirmed IDs
    assert any("inserted or moved while new IDs were being stored" in i.message for i in report.errors)
    plan = rig.plan()
    assert all(len(r) < 6 or r[5] == "" for r in plan[1:])  # every misplaced ID was taken back
    report = rig.run(MONDAY.replace(minute=30))  # the next run identifies each row itself
    assert sorted(e.symbol for e in report.executions) == ["QQQ", "SPY", "TSLA"]
    ids = {r[1]: r[5] for r in rig.plan()[1:]}
    assert {e.symbol: e.row_id for e in report.executions} == ids


def test_a_stale_copy_of_the_sheet_without_ids_is_not_bought_twice(make_rig, api):
    rig = make_rig([HEADER, ["Active", "SPY", "10", "Daily", "", "s1"]])
    rig.run(MONDAY)
    # Version history restores a copy saved before the row had its ID.
    api.spreadsheets[SID].sheets[0].rows = [[Cell(v) for v in HEADER], [Cell(v) for v in ["Active", "SPY", "10", "Daily"]]]
    report = rig.run(MONDAY.replace(minute=30))
    assert len(rig.broker.orders()) == 1
    assert any("stale copy" in e.message for e in report.errors)
    new_id = rig.plan()[1][5]
    assert new_id and new_id != "s1" and "s1" in rig.log_of(new_id)


# -- faults at write time: nothing lost, nothing twice ---------------------------------------------


@pytest.mark.parametrize("applied", [True, False], ids=["applied-then-500", "500-not-applied"])
def test_an_outage_at_write_time_then_recovery_delivers_every_line_exactly_once(make_rig, api, applied):
    rig = make_rig([HEADER, ["Active", "SPY", "10", "Daily", "", "s1"], ["Active", "QQQ", "20", "Daily", "", "q1"]])
    api.fail(":batchUpdate", 500, apply_first=applied)
    report = rig.run(MONDAY)
    assert report.delivery["log"]["waiting"] == 2 and "may or may not have been applied" in report.delivery["log"]["error"]
    assert len(rig.broker.orders()) == 2
    rig.run(MONDAY.replace(minute=30))  # the sheet is back: the outbox is delivered
    history = rig.history()
    assert sorted(r[9] for r in history[1:]) == ["q1|2027-05-03|filled", "s1|2027-05-03|filled"]
    assert "filled" in rig.log_of("s1") and "filled" in rig.log_of("q1")
    assert len(rig.broker.orders()) == 2  # the orders were never repeated
    assert rig.ledger.undelivered("log") == []
    rig.run(TUESDAY)
    assert len(rig.history()) == 5  # and later runs add only their own lines


def test_a_write_is_retried_after_429_since_it_was_certainly_not_applied(make_rig, api):
    rig = make_rig([HEADER, ["Active", "SPY", "10", "Daily", "", "s1"]])
    api.fail(":batchUpdate", 429, retry_after=2)
    report = rig.run(MONDAY)
    assert report.delivery["log"] == {"delivered": 1, "waiting": 0}
    assert len(rig.history()) == 2 and 2.0 in rig.clock.slept


def test_a_write_that_times_out_is_not_retried_blindly(make_rig, api, credentials, tmp_path):
    rig = make_rig([HEADER, ["Active", "SPY", "10", "Daily", "", "s1"]])
    rig.source.api.client.set_timeout(0.3)
    api.fail(":batchUpdate", None, delay=0.6)  # applied, but the answer comes too late
    report = rig.run(MONDAY)
    assert report.delivery["log"]["waiting"] == 1
    writes = [r for r in api.requests if r.kind == "write"]
    assert len(writes) == 1
    rig.run(MONDAY.replace(minute=30))
    assert [r[9] for r in rig.history()[1:]] == ["s1|2027-05-03|filled"]


def test_an_unreadable_sheet_orders_nothing_notifies_and_the_last_plan_is_kept(make_rig, api):
    rig = make_rig([HEADER, ["Active", "SPY", "10", "Daily", "", "s1"]])
    rig.run(MONDAY)
    api.fail(":getByDataFilter", 503, times=100)
    with pytest.raises(PlanError, match="gave up"):
        rig.run(TUESDAY)
    assert len(rig.broker.orders()) == 1
    assert "The plan could not be read, so nothing new was bought" in rig.notifier.path.read_text()
    kept, read_at = rig.source.kept_plan()
    assert [(r.row_id, r.symbol) for r in kept.rows] == [("s1", "SPY")] and read_at


# -- the panel's edits -------------------------------------------------------------------------


def test_a_panel_edit_writes_only_the_changed_cells_and_refuses_on_conflict(make_rig, api):
    rig = make_rig([HEADER + ["Notes"], ["Active", "SPY", "10", "Daily", "", "s1", "n"],
                    ["Active", "QQQ", "20", "Daily", "", "q1"]])
    rig.source.load()
    assert rig.source.write_cells({("q1", "Amount (USD)"): ("20", "25")}) == 1
    write = [r for r in api.requests if r.kind == "write"][-1]
    assert len(write.body["requests"]) == 1
    assert write.body["requests"][0]["updateCells"]["rows"][0]["values"][0]["userEnteredValue"] == {"numberValue": 25}
    assert rig.plan()[2][2] == "25"
    api.set_cell(SID, "Plan", "A2", "Inactive")  # changed in the sheet meanwhile
    with pytest.raises(SheetConflict, match=r"Status of row 2 \(A2\) is now 'Inactive', not 'Active'"):
        rig.source.write_cells({("s1", "Status"): ("Active", "Active"), ("q1", "Frequency"): ("Daily", "Weekly")})
    assert rig.plan()[2][3] == "Daily"  # nothing written


# -- setting a sheet up ---------------------------------------------------------------------------


def test_sheet_init_prepares_an_empty_sheet_and_on_a_second_run_adds_nothing_new(make_rig, api):
    rig = make_rig([])
    done = rig.source.init()
    assert any("header row" in d for d in done) and any("History" in d for d in done)
    assert rig.plan() == [list(HEADER)]
    ws = api.worksheet(SID, "Plan")
    assert ws.frozen_rows == 1
    status_rule = ws.validations[(1, 0)]["condition"]
    assert [v["userEnteredValue"] for v in status_rule["values"]] == ["Active", "Inactive"]
    assert [v["userEnteredValue"] for v in ws.validations[(1, 3)]["condition"]["values"]] == ["Daily", "Weekly", "Monthly"]
    assert rig.history() == [list(HISTORY_COLUMNS)]
    again = rig.source.init()
    assert not any("header" in d or "History" in d or "froze" in d for d in again)
    assert rig.history() == [list(HISTORY_COLUMNS)]


def test_sheet_init_on_an_existing_sheet_only_adds_missing_columns_at_the_end(make_rig, api):
    rig = make_rig([["Ticker", "Status", "Amount", "Frequency", "Notes"], ["AAPL", "Active", "10", "Weekly", "x"]])
    rig.source.init()
    assert rig.plan() == [["Ticker", "Status", "Amount", "Frequency", "Notes", "Log", "ID"],
                          ["AAPL", "Active", "10", "Weekly", "x"]]
    assert (1, 1) in api.worksheet(SID, "Plan").validations  # Status is column B here


def test_refused_credentials_say_so_without_showing_the_key(make_rig, api):
    rig = make_rig(daily_rows(1))
    api.fail("/token", 400)  # a deleted key: Google's token endpoint says invalid_grant
    with pytest.raises(SheetError, match=f"Google refused the credentials of {EMAIL}") as raised:
        rig.source.load()
    assert "PRIVATE KEY" not in str(raised.value) and "assertion" not in str(raised.value)


def test_a_credentials_file_that_is_not_a_key_is_named_without_its_content(api, tmp_path):
    path = tmp_path / "key.json"
    path.write_text(json.dumps({"type": "service_account", "private_key": "-----BEGIN PRIVATE KEY-----\nsecret"}))
    with pytest.raises(SheetError, match="is incomplete") as raised:
        build_sheet_source(SheetRef(SID), path, api.base_url)
    assert "secret" not in str(raised.value)
    path.write_text("{not json")
    with pytest.raises(SheetError, match="cannot be read as JSON"):
        build_sheet_source(SheetRef(SID), path, api.base_url)


def test_an_address_without_gid_reads_the_first_tab_whatever_its_id(api, credentials):
    sheet = api.add_spreadsheet(SID, {"Plan": daily_rows(1), "Other": [["x"]]})
    sheet.sheets[0].sheet_id = 555
    source = build_sheet_source(SheetRef(SID), credentials, api.base_url, FakeClock())
    assert [r.row_id for r in source.load().rows] == ["r0000"]
    source.write_logs({"r0000": "a log"})
    assert api.values(SID, "Plan")[1][4] == "a log"


def test_a_grid_too_narrow_for_new_columns_is_widened_in_the_same_write(make_rig, api):
    rig = make_rig([["Status", "Stock Symbol", "Amount (USD)", "Frequency"], ["Active", "SPY", "10", "Daily"]])
    api.worksheet(SID, "Plan").column_count = 4  # as a person may have trimmed it
    report = rig.run(MONDAY)
    assert [e.status for e in report.executions] == [Outcome.FILLED]
    assert rig.plan()[0] == ["Status", "Stock Symbol", "Amount (USD)", "Frequency", "ID", "Log"]
    assert api.api_requests() == 5


def test_a_history_tab_made_by_hand_is_found_and_appended_to(make_rig, api):
    rig = make_rig([HEADER, ["Active", "SPY", "10", "Daily", "", "s1"]])
    api.add_spreadsheet(SID, {"Plan": [HEADER, ["Active", "SPY", "10", "Daily", "", "s1"]],
                              "History": [list(HISTORY_COLUMNS)]})
    rig.run(MONDAY)
    assert [r[9] for r in rig.history()[1:]] == ["s1|2027-05-03|filled"]
    api.reset_log()
    rig.run(TUESDAY)  # its id is remembered: no search this time
    assert len(rig.history()) == 3 and api.api_requests() == 3


def test_a_log_line_is_written_as_text_never_as_a_formula(make_rig, api):
    rig = make_rig([HEADER, ["Active", "SPY", "10", "Daily", "", "s1"]])
    rig.source.load()
    rig.source.write_logs({"s1": "=IMPORTXML(\"http://example.com\")"})
    write = [r for r in api.requests if r.kind == "write"][-1]
    assert write.body["requests"][-1]["updateCells"]["rows"][0]["values"][0]["userEnteredValue"] == {
        "stringValue": "=IMPORTXML(\"http://example.com\")"}
