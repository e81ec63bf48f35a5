"""The CSV plan source against real files, then the engine's use of it: a row is never
ordered until its ID is durably stored in the plan itself."""

from __future__ import annotations

import csv
import io
import os
import stat
from decimal import Decimal
from pathlib import Path

import pytest

from dca.domain import Outcome
from dca.errors import PlanError
from dca.plans.csv_file import EXAMPLE_ROWS, CsvPlanSource, write_example_plan
from tests.conftest import HEADER, ny

MONDAY = ny(2027, 5, 3, 9, 0, 20)  # first trading day of the month and week: all rows due


def rows_of(path: Path) -> list[list[str]]:
    return list(csv.reader(io.StringIO(path.read_text(encoding="utf-8-sig"))))


def leftovers(directory: Path, keep: set[str]) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name not in keep)


@pytest.fixture
def plan_file(tmp_path) -> Path:
    return tmp_path / "plan.csv"


# -- reading ----------------------------------------------------------------------------


def test_load_reads_a_file_saved_with_a_utf8_bom(plan_file):
    plan_file.write_bytes(("\ufeff" + HEADER + "Active,AAPL,10,Weekly,,a1\r\nInactive,TSLA,10,Daily,,t1\r\n").encode())
    plan = CsvPlanSource(plan_file).load()
    assert plan.issues == []
    assert [(r.row_number, r.symbol, r.row_id, r.active) for r in plan.rows] == [
        (2, "AAPL", "a1", True), (3, "TSLA", "t1", False),
    ]


def test_load_of_a_missing_file_is_a_plan_error(plan_file):
    with pytest.raises(PlanError, match="does not exist"):
        CsvPlanSource(plan_file).load()


def test_load_of_a_non_utf8_file_is_a_plan_error_saying_how_to_save_it(plan_file):
    plan_file.write_bytes((HEADER + "Active,AAPL,10,Weekly,caf\xe9,a1\n").encode("latin-1"))
    with pytest.raises(PlanError, match="UTF-8"):
        CsvPlanSource(plan_file).load()


def test_load_with_a_missing_column_is_a_plan_error_naming_it(plan_file):
    plan_file.write_text("Status,Stock Symbol,Frequency\nActive,AAPL,Weekly\n")
    with pytest.raises(PlanError, match=r"Amount \(USD\)"):
        CsvPlanSource(plan_file).load()


# -- assigning IDs ------------------------------------------------------------------------


def test_assign_ids_appends_an_id_column_and_keeps_every_other_cell(plan_file):
    plan_file.write_text(
        "Notes,Status,Symbol,Amount (USD),Frequency,Log\n"
        'my note,Active,aapl,"$1,000.50",Weekly,old log\n'
        "\n"
        '"quoted, note",Inactive,TSLA,10,Daily,\n'
    )
    source = CsvPlanSource(plan_file)
    plan = source.load()
    assert plan.unidentified == [2, 4]
    source.assign_ids({2: "rid2", 4: "rid4"}, plan.version)

    rows = rows_of(plan_file)
    assert rows[0] == ["Notes", "Status", "Symbol", "Amount (USD)", "Frequency", "Log", "ID"]
    assert rows[1] == ["my note", "Active", "aapl", "$1,000.50", "Weekly", "old log", "rid2"]
    assert rows[2] == []
    assert rows[3] == ["quoted, note", "Inactive", "TSLA", "10", "Daily", "", "rid4"]

    reloaded = CsvPlanSource(plan_file).load()
    assert reloaded.unidentified == []
    assert reloaded.issues == []
    assert [(r.row_number, r.row_id, r.symbol, r.amount) for r in reloaded.rows] == [
        (2, "rid2", "AAPL", Decimal("1000.50")), (4, "rid4", "TSLA", Decimal("10.00")),
    ]


def test_assign_ids_fills_an_existing_id_column_and_leaves_other_ids_alone(plan_file):
    plan_file.write_text(HEADER + "Active,AAPL,10,Weekly,,a1\nActive,SPY,500,Weekly,,\nActive,VTI,1000,Monthly\n")
    source = CsvPlanSource(plan_file)
    plan = source.load()
    assert plan.unidentified == [3, 4]
    source.assign_ids({3: "s1", 4: "v1"}, plan.version)
    assert rows_of(plan_file) == [
        HEADER.strip().split(","),
        ["Active", "AAPL", "10", "Weekly", "", "a1"],
        ["Active", "SPY", "500", "Weekly", "", "s1"],
        ["Active", "VTI", "1000", "Monthly", "", "v1"],
    ]
    assert {r.symbol: r.row_id for r in source.load().rows} == {"AAPL": "a1", "SPY": "s1", "VTI": "v1"}


def test_assign_ids_on_a_bom_crlf_file_as_a_spreadsheet_saves_it(plan_file):
    plan_file.write_bytes(("\ufeff" + HEADER.replace("\n", "\r\n") + "Active,AAPL,10,Weekly,,\r\nActive,SPY,500,Weekly,,s1\r\n").encode())
    source = CsvPlanSource(plan_file)
    plan = source.load()
    assert plan.unidentified == [2]
    source.assign_ids({2: "a1"}, plan.version)
    plan = CsvPlanSource(plan_file).load()
    assert plan.issues == [] and plan.unidentified == []
    assert [(r.symbol, r.row_id) for r in plan.rows] == [("AAPL", "a1"), ("SPY", "s1")]
    assert plan_file.read_bytes().startswith(b"\xef\xbb\xbfStatus,")  # the BOM is kept
    source.write_logs({"s1": "filled"})
    assert plan_file.read_bytes().startswith(b"\xef\xbb\xbfStatus,")


def test_a_file_without_a_bom_does_not_get_one(plan_file):
    plan_file.write_text(HEADER + "Active,AAPL,10,Weekly,,\n")
    source = CsvPlanSource(plan_file)
    version = source.load().version
    source.assign_ids({2: "a1"}, version)
    assert plan_file.read_bytes().startswith(b"Status,")


def test_assign_ids_puts_the_id_on_the_parsed_row_even_after_a_multi_line_cell(plan_file):
    plan_file.write_text(HEADER + 'Active,AAPL,10,Weekly,"first line\nsecond line",a1\nActive,SPY,500,Weekly,,\n')
    source = CsvPlanSource(plan_file)
    plan = source.load()
    (spy,) = [r for r in plan.rows if r.symbol == "SPY"]
    assert plan.unidentified == [spy.row_number]
    source.assign_ids({spy.row_number: "s1"}, plan.version)
    rows = {r.symbol: (r.row_id, r.log) for r in CsvPlanSource(plan_file).load().rows}
    assert rows == {"AAPL": ("a1", "first line\nsecond line"), "SPY": ("s1", "")}


def test_assign_ids_through_a_symlink_stores_the_id_in_the_linked_plan(tmp_path):
    """A plan kept elsewhere (a synced folder) and linked into DCA_HOME: the ID must reach
    the person's file, and the link must stay a link, or their later edits are not seen."""
    real = tmp_path / "synced" / "plan.csv"
    real.parent.mkdir()
    real.write_text(HEADER + "Active,AAPL,10,Weekly,,\n")
    link = tmp_path / "plan.csv"
    link.symlink_to(real)
    source = CsvPlanSource(link)
    version = source.load().version
    source.assign_ids({2: "a1"}, version)
    assert link.is_symlink()
    assert [r.row_id for r in CsvPlanSource(real).load().rows] == ["a1"]


def test_assign_ids_keeps_the_files_permissions_and_leaves_no_temp_files(plan_file, tmp_path):
    plan_file.write_text(HEADER + "Active,AAPL,10,Weekly,,\n")
    plan_file.chmod(0o640)
    source = CsvPlanSource(plan_file)
    version = source.load().version
    source.assign_ids({2: "a1"}, version)
    assert stat.S_IMODE(plan_file.stat().st_mode) == 0o640
    assert leftovers(tmp_path, keep={"plan.csv"}) == []


def test_assign_ids_on_a_read_only_file_is_a_plan_error_and_changes_nothing(plan_file, tmp_path):
    original = HEADER + "Active,AAPL,10,Weekly,,\n"
    plan_file.write_text(original)
    source = CsvPlanSource(plan_file)
    version = source.load().version
    plan_file.chmod(0o444)
    with pytest.raises(PlanError, match="read-only"):
        source.assign_ids({2: "a1"}, version)
    assert plan_file.read_text() == original
    assert leftovers(tmp_path, keep={"plan.csv"}) == []


def test_assign_ids_on_a_deleted_file_is_a_plan_error(plan_file, tmp_path):
    plan_file.write_text(HEADER + "Active,AAPL,10,Weekly,,\n")
    source = CsvPlanSource(plan_file)
    version = source.load().version
    plan_file.unlink()
    with pytest.raises(PlanError, match="disappeared"):
        source.assign_ids({2: "a1"}, version)
    assert not plan_file.exists()
    assert leftovers(tmp_path, keep=set()) == []


def test_assign_ids_after_the_file_was_edited_is_a_plan_error_and_keeps_the_edit(plan_file, tmp_path):
    plan_file.write_text(HEADER + "Active,AAPL,10,Weekly,,\n")
    source = CsvPlanSource(plan_file)
    plan = source.load()
    assert plan.unidentified == [2]
    # The person inserts a row above: row 2 is now a different row.
    edited = HEADER + "Active,QQQ,50,Daily,,\nActive,AAPL,10,Weekly,,\n"
    plan_file.write_text(edited)
    with pytest.raises(PlanError, match="changed"):
        source.assign_ids({2: "a1"}, plan.version)
    assert plan_file.read_text() == edited
    assert leftovers(tmp_path, keep={"plan.csv"}) == []


def test_ids_are_stored_against_the_version_they_were_made_for_not_the_latest_read(plan_file):
    """Another read through the same source (the panel, a status query) between the run's
    read and its ID write must not make a changed file look like the one the IDs are for."""
    plan_file.write_text(HEADER + "Active,AAPL,10,Weekly,,\n")
    source = CsvPlanSource(plan_file)
    plan = source.load()
    edited = HEADER + "Active,QQQ,50,Daily,,\nActive,AAPL,10,Weekly,,\n"
    plan_file.write_text(edited)
    assert source.load().version != plan.version  # read again meanwhile
    with pytest.raises(PlanError, match="changed"):
        source.assign_ids({2: "a1"}, plan.version)
    assert plan_file.read_text() == edited  # QQQ never got AAPL's ID


def test_assign_ids_returns_the_plan_read_again_with_the_ids(plan_file):
    plan_file.write_text(HEADER + "Active,AAPL,10,Weekly,,\n")
    source = CsvPlanSource(plan_file)
    confirmed = source.assign_ids({2: "a1"}, source.load().version)
    assert [(r.row_id, r.symbol) for r in confirmed.rows] == [("a1", "AAPL")]
    assert confirmed.unidentified == [] and confirmed.version == source.load().version


# -- writing Log cells ------------------------------------------------------------------


def test_write_logs_finds_rows_by_id_after_they_were_reordered(plan_file, tmp_path):
    plan_file.write_text(HEADER + "Active,AAPL,10,Weekly,,a1\nActive,SPY,500,Weekly,,s1\nActive,VTI,1000,Monthly,,v1\n")
    source = CsvPlanSource(plan_file)
    source.load()
    # Reordered, a row inserted and an unknown column added, after the load.
    plan_file.write_text(
        "Status,Stock Symbol,Amount (USD),Frequency,Log,ID,Extra\n"
        "Active,VTI,1000,Monthly,,v1,x\n"
        "Active,QQQ,50,Daily,,q1,y\n"
        "Active,AAPL,10,Weekly,,a1,z\n"
    )
    found = source.write_logs({"a1": "log for AAPL", "v1": "log, for VTI", "gone": "nobody"})
    assert found == {"a1", "v1"}
    assert rows_of(plan_file) == [
        ["Status", "Stock Symbol", "Amount (USD)", "Frequency", "Log", "ID", "Extra"],
        ["Active", "VTI", "1000", "Monthly", "log, for VTI", "v1", "x"],
        ["Active", "QQQ", "50", "Daily", "", "q1", "y"],
        ["Active", "AAPL", "10", "Weekly", "log for AAPL", "a1", "z"],
    ]
    assert {r.symbol: r.log for r in CsvPlanSource(plan_file).load().rows} == {
        "VTI": "log, for VTI", "QQQ": "", "AAPL": "log for AAPL",
    }
    assert leftovers(tmp_path, keep={"plan.csv"}) == []


def test_write_logs_with_only_unknown_ids_returns_nothing_and_keeps_the_rows(plan_file):
    plan_file.write_text(HEADER + "Active,AAPL,10,Weekly,keep me,a1\n")
    source = CsvPlanSource(plan_file)
    assert source.write_logs({"zzz": "nothing"}) == set()
    assert rows_of(plan_file)[1] == ["Active", "AAPL", "10", "Weekly", "keep me", "a1"]


def test_write_logs_adds_a_log_column_when_the_plan_has_none(plan_file):
    plan_file.write_text("Status,Stock Symbol,Amount (USD),Frequency,ID\nActive,AAPL,10,Weekly,a1\n")
    assert CsvPlanSource(plan_file).write_logs({"a1": "filled"}) == {"a1"}
    rows = rows_of(plan_file)
    assert rows[0] == ["Status", "Stock Symbol", "Amount (USD)", "Frequency", "ID", "Log"]
    assert rows[1] == ["Active", "AAPL", "10", "Weekly", "a1", "filled"]


def test_write_logs_to_a_read_only_file_is_a_plan_error(plan_file):
    original = HEADER + "Active,AAPL,10,Weekly,,a1\n"
    plan_file.write_text(original)
    plan_file.chmod(0o444)
    with pytest.raises(PlanError, match="read-only"):
        CsvPlanSource(plan_file).write_logs({"a1": "filled"})
    assert plan_file.read_text() == original


# -- the engine: IDs before orders ------------------------------------------------------
# Simulated prices are at most about $630 a share, so every $1,000 here buys whole shares.


def bought(rig) -> list[str]:
    return sorted(o.symbol for o in rig.broker.orders())


def test_new_rows_get_ids_on_the_first_run_and_are_bought(make_rig):
    rig = make_rig("Active,SPY,1000,Weekly,,\nActive,VTI,1000,Monthly\nActive,QQQ,1000,Daily,,q1\n")
    report = rig.run(MONDAY)
    assert report.errors == []
    assert bought(rig) == ["QQQ", "SPY", "VTI"]

    plan = rig.plan.load()
    assert plan.unidentified == []
    ids = {r.symbol: r.row_id for r in plan.rows}
    assert ids["QQQ"] == "q1"
    assert ids["SPY"] and ids["VTI"] and ids["SPY"] != ids["VTI"]
    # The executions are keyed by the IDs now stored in the file.
    assert {e.symbol: e.row_id for e in report.executions} == ids
    assert all(e.status is Outcome.FILLED for e in report.executions)
    # And the IDs stay: a second run the same day buys nothing more.
    assert rig.run(ny(2027, 5, 3, 10, 0)).executions == []
    assert len(rig.broker.orders()) == 3
    assert {r.symbol: r.row_id for r in rig.plan.load().rows} == ids


def test_a_row_whose_id_cannot_be_stored_is_an_error_and_not_bought(make_rig):
    rig = make_rig("Active,VTI,1000,Monthly,,v1\nActive,SPY,1000,Weekly,,\n")
    rig.plan_path.chmod(0o444)
    before = rig.plan_path.read_text()

    report = rig.run(MONDAY)

    assert bought(rig) == ["VTI"]  # the row with an ID still runs
    assert [e.symbol for e in report.executions] == ["VTI"]
    (error,) = report.errors
    assert error.row_number == 3 and error.symbol == "SPY" and error.is_error
    assert "Row 3" in error.message and "ID" in error.message and "read-only" in error.message
    assert "nothing is bought" in error.message
    assert not report.ok
    assert rig.plan_path.read_text() == before
    assert "Row 3" in rig.notifications()

    # Made writable again, the next run stores the ID and buys the row.
    rig.plan_path.chmod(0o644)
    report = rig.run(ny(2027, 5, 3, 9, 2))
    assert report.errors == []
    assert bought(rig) == ["SPY", "VTI"]
    assert rig.plan.load().unidentified == []


def test_an_inactive_row_whose_id_cannot_be_stored_is_only_a_warning(make_rig):
    rig = make_rig("Active,VTI,1000,Monthly,,v1\nInactive,TSLA,10,Daily,,\n")
    rig.plan_path.chmod(0o444)
    report = rig.run(MONDAY)
    assert report.errors == []
    assert [(w.row_number, w.is_error) for w in report.warnings] == [(3, False)]
    assert bought(rig) == ["VTI"]


def test_a_bad_active_row_is_reported_with_its_row_number_and_its_log_cell_says_why(make_rig):
    rig = make_rig(
        "Active,QQQ,1000,Daily,,q1\n"
        "Active,AAPL,abc,Weekly,,a1\n"
        "Active,SPY,500,Hourly,,\n"
        "Active,VTI,1000,Monthly,,v1\n"
    )
    report = rig.run(MONDAY)

    assert bought(rig) == ["QQQ", "VTI"]
    assert [(e.row_number, e.is_error) for e in report.errors] == [(3, True), (4, True)]
    assert report.errors[0].message.startswith("Row 3:") and "Amount (USD)" in report.errors[0].message
    assert report.errors[1].message.startswith("Row 4:") and "Frequency 'Hourly'" in report.errors[1].message

    logs = {row[1]: row[4] for row in rows_of(rig.plan_path)[1:]}
    assert "Row 3" in logs["AAPL"] and "Amount (USD)" in logs["AAPL"] and "error" in logs["AAPL"]
    # The bad row without an ID was given one, so its Log cell could be written too.
    assert "Row 4" in logs["SPY"] and "Hourly" in logs["SPY"]
    assert "filled" in logs["QQQ"] and "filled" in logs["VTI"]
    assert rig.plan.load().unidentified == []


def test_a_copied_row_is_bought_for_neither_copy(make_rig):
    rig = make_rig("Active,SPY,1000,Weekly,,s1\nActive,SPY,1000,Weekly,,s1\nActive,VTI,1000,Monthly,,v1\n")
    report = rig.run(MONDAY)
    assert bought(rig) == ["VTI"]
    assert [e.row_number for e in report.errors] == [2, 3]


def test_the_run_leaves_no_temp_files_next_to_the_plan(make_rig, tmp_path):
    rig = make_rig("Active,SPY,1000,Weekly,,\nActive,AAPL,abc,Weekly,,a1\n")
    rig.run(MONDAY)
    temp = [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp") or p.name.startswith(".plan.csv")]
    assert temp == []


# -- the first-start example --------------------------------------------------------------


def test_write_example_plan_creates_the_four_example_rows_with_ids(tmp_path):
    path = tmp_path / "new" / "dir" / "plan.csv"
    write_example_plan(path)
    plan = CsvPlanSource(path).load()
    assert plan.issues == [] and plan.unidentified == []
    assert [(str(r.status), r.symbol, str(r.amount), str(r.frequency)) for r in plan.rows] == [
        ("Active", "AAPL", "10.00", "Weekly"),
        ("Inactive", "TSLA", "10.00", "Daily"),
        ("Active", "SPY", "500.00", "Weekly"),
        ("Active", "VTI", "1000.00", "Monthly"),
    ]
    assert len(EXAMPLE_ROWS) == 4
    ids = [r.row_id for r in plan.rows]
    assert all(ids) and len(set(ids)) == 4
    assert rows_of(path)[0] == ["Status", "Stock Symbol", "Amount (USD)", "Frequency", "Log", "ID"]
    assert leftovers(path.parent, keep={"plan.csv"}) == []


def test_write_example_plan_never_overwrites_an_existing_plan(tmp_path):
    path = tmp_path / "plan.csv"
    mine = HEADER + "Active,QQQ,50,Daily,,q1\n"
    path.write_text(mine)
    write_example_plan(path)
    assert path.read_text() == mine
    example = tmp_path / "example.csv"
    write_example_plan(example)
    first = example.read_text()
    write_example_plan(example)
    assert example.read_text() == first  # same IDs: not regenerated


def test_write_example_plan_does_not_overwrite_an_empty_existing_file(tmp_path):
    path = tmp_path / "plan.csv"
    path.write_text("")
    write_example_plan(path)
    assert path.read_text() == ""
    assert os.path.getsize(path) == 0


# -- a malformed table is refused whole, and the file is left alone ------------------------


def test_an_unterminated_quote_is_a_plan_error_naming_the_line_where_it_opened(plan_file):
    plan_file.write_text(HEADER + 'Active,AAPL,10,Weekly,"two\nlines",a1\nActive,"SPY,500,Weekly,,\nActive,VTI,1000,Monthly,,v1\n')
    with pytest.raises(PlanError, match=r"the quote that opens on line 4 \(row 3, column B\) is never closed"):
        CsvPlanSource(plan_file).load()


def test_a_run_on_a_plan_with_an_unterminated_quote_buys_nothing_and_leaves_the_file_untouched(make_rig):
    rig = make_rig('Active,VTI,1000,Monthly,,v1\nActive,"AAPL,1000,Weekly,,\nActive,SPY,1000,Weekly,,\n')
    rig.plan_path.write_bytes(rig.plan_path.read_bytes().replace(b"\n", b"\r\n"))
    before = rig.plan_path.read_bytes()
    with pytest.raises(PlanError, match="line 3"):
        rig.run(MONDAY)
    assert rig.broker.orders() == []
    assert rig.plan_path.read_bytes() == before
    # Fixed, the plan runs: the quote is closed where the person meant it.
    rig.plan_path.write_text(HEADER + 'Active,VTI,1000,Monthly,,v1\nActive,"AAPL",1000,Weekly,,\nActive,SPY,1000,Weekly,,\n')
    assert rig.run(ny(2027, 5, 3, 9, 5)).errors == []
    assert bought(rig) == ["AAPL", "SPY", "VTI"]


def test_text_after_a_closing_quote_is_an_error_on_that_row_only(plan_file):
    plan_file.write_text(HEADER + 'Active,"AA"PL,10,Weekly,,a1\nActive,SPY,500,Weekly,,s1\n')
    plan = CsvPlanSource(plan_file).load()
    assert [r.symbol for r in plan.rows] == ["SPY"]
    (issue,) = plan.issues
    assert issue.row_number == 2 and issue.is_error
    assert "column B has text after its closing quote" in issue.message


def test_a_quote_inside_an_unquoted_cell_and_nul_in_a_note_are_ordinary_characters(plan_file):
    plan_file.write_text("Notes," + HEADER + '5" screen,Active,AAPL,10,Weekly,,a1\nnul\x00here,Active,SPY,500,Weekly,,s1\n')
    plan = CsvPlanSource(plan_file).load()
    assert plan.issues == [] and [r.symbol for r in plan.rows] == ["AAPL", "SPY"]


def test_a_nul_in_a_known_cell_is_an_error_on_its_row_shown_escaped(plan_file):
    plan_file.write_text(HEADER + "Act\x00ive,AAPL,10,Weekly,,a1\nActive,SPY,500,Weekly,,s1\n")
    plan = CsvPlanSource(plan_file).load()
    assert [r.symbol for r in plan.rows] == ["SPY"]
    assert "Status 'Act\\x00ive' is not Active" in plan.issues[0].message


@pytest.mark.parametrize("content", [b"", b"\n\n", b"\r\n  \r\n", b",,,\n,,\n", b"\xef\xbb\xbf"])
def test_a_file_without_a_header_row_is_a_plan_error_and_a_run_leaves_it_alone(make_rig, content):
    rig = make_rig("")
    rig.plan_path.write_bytes(content)
    with pytest.raises(PlanError, match=r"the plan has no header row; expected Status, Stock Symbol"):
        rig.plan.load()
    with pytest.raises(PlanError):
        rig.run(MONDAY)
    assert rig.plan_path.read_bytes() == content


def test_a_duplicated_column_is_a_plan_error_and_a_run_leaves_the_file_alone(make_rig):
    rig = make_rig("")
    rig.plan_path.write_text("Status,Symbol,Amount,Frequency,Log,ID,Status\nActive,AAPL,10,Weekly,,,Inactive\n")
    before = rig.plan_path.read_bytes()
    with pytest.raises(PlanError, match="the Status column twice: column A 'Status' and column G 'Status'"):
        rig.run(MONDAY)
    assert rig.broker.orders() == [] and rig.plan_path.read_bytes() == before


def test_a_latin1_file_is_refused_naming_the_line(plan_file):
    plan_file.write_bytes((HEADER + "Active,AAPL,10,Weekly,,a1\nActive,SPY,10,Weekly,caf\xe9,s1\n").encode("latin-1"))
    with pytest.raises(PlanError, match="not UTF-8 text.*line 3.*0xE9.*save it as CSV UTF-8"):
        CsvPlanSource(plan_file).load()


def test_utf16_without_a_byte_order_mark_is_refused_plainly(plan_file):
    plan_file.write_bytes((HEADER + "Active,AAPL,10,Weekly,,a1\n").encode("utf-16-le"))
    with pytest.raises(PlanError, match="UTF-16 text without a byte-order mark"):
        CsvPlanSource(plan_file).load()


@pytest.mark.parametrize("size", [128 * 1024 + 1, 1024 * 1024])
def test_a_huge_cell_is_an_error_on_its_row_and_the_other_rows_run(make_rig, size):
    rig = make_rig(f"Active,SPY,1000,Weekly,,s1,{'x' * size}\nActive,VTI,1000,Monthly,,v1\n")
    report = rig.run(MONDAY)
    assert bought(rig) == ["VTI"]
    (error,) = report.errors
    assert error.row_number == 2 and f"column G holds {size:,} characters" in error.message
    assert len(error.message) < 300


# -- separators and encodings other spreadsheet apps write --------------------------------


@pytest.mark.parametrize("sep", [";", "\t"])
def test_a_semicolon_or_tab_separated_plan_is_read_and_written_with_its_separator(plan_file, sep):
    text = sep.join(["Status", "Stock Symbol", "Amount (USD)", "Frequency", "Log", "ID"]) + "\r\n"
    text += sep.join(["Active", "AAPL", '"1,000.50"', "Weekly", "", ""]) + "\r\n"
    text += sep.join(["Active", "SPY", "10,5", "Weekly", "", "s1"]) + "\r\n"
    plan_file.write_bytes(text.encode())
    source = CsvPlanSource(plan_file)
    plan = source.load()
    assert [(r.symbol, r.amount) for r in plan.rows] == [("AAPL", Decimal("1000.50"))]
    assert "'10,5' is not an amount" in plan.errors[0].message  # never read as a decimal comma
    source.assign_ids({2: "a1"}, plan.version)
    source.write_logs({"s1": "error; see row 3"})
    expected = text.replace(f"Weekly{sep}{sep}\r\n", f"Weekly{sep}{sep}a1\r\n", 1)
    expected = expected.replace(f"Weekly{sep}{sep}s1", f'Weekly{sep}' + ('"error; see row 3"' if sep == ";" else "error; see row 3") + f"{sep}s1")
    assert plan_file.read_bytes() == expected.encode()


def test_the_separator_is_found_even_when_a_header_cell_is_quoted_across_lines(plan_file):
    plan_file.write_text('"My\nnotes";Status;"Stock Symbol";Amount (USD);Frequency\nx;Active;AAPL;"1,000";Weekly\n')
    plan = CsvPlanSource(plan_file).load()
    assert plan.issues == [] and [(r.symbol, r.amount) for r in plan.rows] == [("AAPL", Decimal("1000.00"))]


def test_a_utf16_plan_with_a_byte_order_mark_is_read_and_written_back_as_utf16(plan_file):
    text = "\ufeff" + HEADER.replace(",", "\t").replace("\n", "\r\n") + "Active\tAAPL\t10\tWeekly\t\t\r\n"
    plan_file.write_bytes(text.encode("utf-16-le"))
    source = CsvPlanSource(plan_file)
    plan = source.load()
    assert [r.symbol for r in plan.rows] == ["AAPL"]
    source.assign_ids({2: "a1"}, plan.version)
    assert plan_file.read_bytes() == text.replace("Weekly\t\t\r\n", "Weekly\t\ta1\r\n").encode("utf-16-le")


def test_a_header_that_lacks_columns_says_it_was_read_as_semicolon_separated(plan_file):
    plan_file.write_text("Status;Stock Symbol;Amount (USD)\nActive;AAPL;10\n")
    with pytest.raises(PlanError, match=r"lacks Frequency.*read as semicolon-separated"):
        CsvPlanSource(plan_file).load()


def test_an_unreadable_header_with_semicolons_says_to_export_comma_separated(plan_file):
    plan_file.write_text("Estado;Símbolo;Importe;Frecuencia\nActive;AAPL;10;Weekly\n")
    with pytest.raises(PlanError, match="looks like a file separated by semicolons or tabs; export the plan as comma-separated"):
        CsvPlanSource(plan_file).load()


# -- writes change only the cells meant to change ------------------------------------------


def test_writes_keep_every_byte_but_the_cells_they_change(plan_file):
    original = (
        "\ufeffNotes,Status,Stock Symbol,Amount (USD),Frequency,Log,ID\r\n"
        '"a, b",Active,"AAPL","$1,000.50",Weekly,"old log",a1\r\n'
        '5" screen,Active,SPY,500,Weekly\n'  # a LF line in a CRLF file, and a short row
        '"two\r\nlines",Active,VTI,1000,Monthly,,\r'  # an old-Mac line end
        "\r\n"
        ",Inactive,TSLA,10,Daily,,t1  \r\n"
        "# trailing note"  # no line break at the end
    )
    plan_file.write_bytes(original.encode())
    source = CsvPlanSource(plan_file)
    plan = source.load()
    assert plan.unidentified == [3, 4]
    source.assign_ids({3: "s1", 4: "v1"}, plan.version)
    source.write_logs({"a1": "filled", "t1": 'skipped, "2" TSLA', "v1": "filled"})
    expected = (
        "\ufeffNotes,Status,Stock Symbol,Amount (USD),Frequency,Log,ID\r\n"
        '"a, b",Active,"AAPL","$1,000.50",Weekly,"filled",a1\r\n'  # a quoted cell stays quoted
        '5" screen,Active,SPY,500,Weekly,,s1\n'
        '"two\r\nlines",Active,VTI,1000,Monthly,filled,v1\r'
        "\r\n"
        ',Inactive,TSLA,10,Daily,"skipped, ""2"" TSLA",t1  \r\n'
        "# trailing note"
    )
    assert plan_file.read_bytes() == expected.encode()
    assert {r.symbol: (r.row_id, r.log) for r in CsvPlanSource(plan_file).load().rows} == {
        "AAPL": ("a1", "filled"), "SPY": ("s1", ""), "VTI": ("v1", "filled"), "TSLA": ("t1", 'skipped, "2" TSLA'),
    }


def test_a_new_id_column_is_added_at_the_end_of_the_header_line_only(plan_file):
    plan_file.write_bytes(b"Status,Stock Symbol,Amount (USD),Frequency\r\nActive,AAPL,10,Weekly\r\n\r\n")
    source = CsvPlanSource(plan_file)
    version = source.load().version
    source.assign_ids({2: "a1"}, version)
    assert plan_file.read_bytes() == b"Status,Stock Symbol,Amount (USD),Frequency,ID\r\nActive,AAPL,10,Weekly,a1\r\n\r\n"


def test_write_logs_without_an_id_column_leaves_the_file_untouched(plan_file):
    plan_file.write_text("Status,Stock Symbol,Amount (USD),Frequency\nActive,AAPL,10,Weekly\n")
    before = plan_file.stat().st_mtime_ns, plan_file.read_bytes()
    assert CsvPlanSource(plan_file).write_logs({"a1": "filled"}) == set()
    assert (plan_file.stat().st_mtime_ns, plan_file.read_bytes()) == before


def test_write_logs_refuses_a_file_that_became_malformed_and_leaves_it_alone(plan_file):
    plan_file.write_text(HEADER + "Active,AAPL,10,Weekly,,a1\n")
    source = CsvPlanSource(plan_file)
    source.load()
    broken = (HEADER + 'Active,AAPL,10,Weekly,,a1\nActive,"SPY,10,Weekly,,\n').encode()
    plan_file.write_bytes(broken)
    with pytest.raises(PlanError, match="never closed"):
        source.write_logs({"a1": "filled"})
    assert plan_file.read_bytes() == broken


@pytest.mark.parametrize("edited", [
    "Status,Stock Symbol,Amount (USD),Frequency,Log,ID,ID\nActive,AAPL,10,Weekly,,a1,a2\n",  # a second ID column
    "",  # emptied
])
def test_write_logs_refuses_a_file_that_no_longer_reads_as_a_plan_and_leaves_it_alone(plan_file, edited):
    plan_file.write_text(HEADER + "Active,AAPL,10,Weekly,,a1\n")
    source = CsvPlanSource(plan_file)
    source.load()
    plan_file.write_text(edited)
    with pytest.raises(PlanError):
        source.write_logs({"a1": "filled"})
    assert plan_file.read_text() == edited


def test_a_crlf_plan_stays_crlf_through_a_run(make_rig):
    rig = make_rig("Active,SPY,1000,Weekly,,\nActive,VTI,1000,Monthly,,v1\nInactive,TSLA,10,Daily,,t1\n")
    rig.plan_path.write_bytes(rig.plan_path.read_bytes().replace(b"\n", b"\r\n"))
    rig.run(MONDAY)
    data = rig.plan_path.read_bytes()
    assert data.count(b"\r\n") == 4 and data.count(b"\n") == 4
    assert data.endswith(b",,t1\r\n")  # the Inactive row is untouched


def test_an_edit_saved_while_the_new_text_is_being_written_is_not_overwritten(tmp_path, monkeypatch):
    """The window between checking the file and replacing it includes the fsync of the
    new text (slow on a busy disk); a person saving then must keep their edit."""
    import dca.plans.csv_file as csv_file
    from dca.errors import PlanError

    path = tmp_path / "plan.csv"
    path.write_text("Status,Stock Symbol,Amount (USD),Frequency,Log,ID\nActive,SPY,700,Weekly,,s1\n")
    source = csv_file.CsvPlanSource(path)
    source.load()
    edited = "Status,Stock Symbol,Amount (USD),Frequency,Log,ID\nActive,SPY,70,Weekly,,s1\n"
    real_fsync = os.fsync

    def person_saves_during_fsync(fd):
        real_fsync(fd)
        if path.read_text() != edited:
            path.write_text(edited)  # the spreadsheet app saves right now

    monkeypatch.setattr(csv_file.os, "fsync", person_saves_during_fsync)
    with pytest.raises(PlanError, match="edited during the update"):
        source.write_logs({"s1": "filled"})
    assert path.read_text() == edited
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
