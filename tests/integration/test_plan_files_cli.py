"""Hostile plan files through the `dca` command as a person types it: what it prints,
its exit code, and what the file holds afterwards."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from dca.cli import main
from tests.conftest import HEADER

NOW = "2027-05-03T09:00:20"  # first trading day of the month and week: every row is due


def dca(capsys, *args):
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def run(capsys, plan: Path, tmp_path: Path, *extra):
    return dca(capsys, "run", "--plan", str(plan), "--db", str(tmp_path / "l.sqlite3"), "--now", NOW, *extra)


def bought(capsys, plan: Path, tmp_path: Path) -> list[str]:
    code, out, _ = dca(capsys, "history", "--plan", str(plan), "--db", str(tmp_path / "l.sqlite3"), "--json")
    return sorted(e["symbol"] for e in json.loads(out) if e["status"] == "filled")


@pytest.fixture
def plan(tmp_path) -> Path:
    return tmp_path / "plan.csv"


@pytest.mark.parametrize(
    "content, words",
    [
        (HEADER + 'Active,VTI,1000,Monthly,,v1\nActive,"AAPL,10,Weekly,,\nActive,SPY,500,Weekly,,s1\n',
         "the quote that opens on line 3 (row 3, column B) is never closed"),
        ("", "the plan has no header row; expected Status, Stock Symbol, Amount (USD), Frequency, Log, ID"),
        ("\n \n\n", "the plan has no header row"),
        ("Status,Symbol,Amount,Frequency,Stock Symbol,ID\nActive,AAPL,10,Weekly,SPY,a1\n",
         "the Stock Symbol column twice: column B 'Symbol' and column E 'Stock Symbol'"),
        ("Estado;Símbolo;Importe;Frecuencia\nActivo;AAPL;10;Semanal\n", "export the plan as comma-separated CSV"),
    ],
    ids=["unterminated-quote", "empty", "blank-lines", "duplicated-column", "foreign-header"],
)
def test_a_malformed_plan_exits_2_buys_nothing_and_leaves_the_file_byte_for_byte(capsys, plan, tmp_path,
                                                                                   content, words):
    data = content.replace("\n", "\r\n").encode()
    plan.write_bytes(data)
    code, out, err = dca(capsys, "plan", "--plan", str(plan))
    assert code == 2 and words in err and "Traceback" not in err
    code, out, err = run(capsys, plan, tmp_path)
    assert code == 2 and words in err
    assert plan.read_bytes() == data
    assert bought(capsys, plan, tmp_path) == []


def test_an_empty_default_plan_is_an_error_and_never_replaced_by_the_example(capsys, tmp_path):
    home_plan = tmp_path / "home" / "plan.csv"
    home_plan.parent.mkdir()
    home_plan.write_bytes(b"")
    code, _, err = dca(capsys, "plan")
    assert code == 2 and "no header row" in err
    assert home_plan.read_bytes() == b""


def test_amounts_a_person_did_not_mean_are_row_errors_and_the_rest_run(capsys, plan, tmp_path):
    plan.write_text(HEADER + 'Active,SPY,"10,5",Weekly,,s1\nActive,QQQ,"1.000,00",Daily,,q1\nActive,IWM,1e3,Daily,,i1\n'
                    'Active,VTI,"$1,000.50",Monthly,,v1\nActive,VOO,"1\u00a0000",Weekly,,o1\n')
    code, out, err = dca(capsys, "plan", "--plan", str(plan), "--json")
    assert code == 1
    shown = json.loads(out)
    assert [(r["symbol"], r["amount_usd"]) for r in shown["rows"]] == [("VTI", "1000.50"), ("VOO", "1000.00")]
    messages = {e["row"]: e["message"] for e in shown["errors"]}
    assert sorted(messages) == [2, 3, 4]
    assert "'10,5' is not an amount in dollars" in messages[2] and "$1,000.50" in messages[2]
    assert "'1.000,00' is not an amount" in messages[3]
    assert "'1e3' is not an amount" in messages[4]
    code, out, _ = run(capsys, plan, tmp_path)
    assert code == 1
    assert bought(capsys, plan, tmp_path) == ["VOO", "VTI"]


def test_a_crlf_plan_with_quoted_cells_keeps_every_other_byte_through_a_run(capsys, plan, tmp_path):
    original = ('\ufeffStatus,Stock Symbol,Amount (USD),Frequency,Log,ID,Notes\r\n'
                'Active,"SPY","$1,000",Weekly,,,"mine, keep"\r\n'
                'Inactive,TSLA,10,Daily,"old, log",t1,5" tall\r\n'
                'Active,VTI,1000,Monthly,,v1')
    plan.write_bytes(original.encode())
    code, _, _ = run(capsys, plan, tmp_path)
    assert code == 0
    after = plan.read_bytes().decode()
    rows = list(csv.reader(io.StringIO(after.lstrip("\ufeff"))))
    spy_id, spy_log, vti_log = rows[1][5], rows[1][4], rows[3][4]
    assert spy_id and "filled" in spy_log and "filled" in vti_log
    assert after == (
        '\ufeffStatus,Stock Symbol,Amount (USD),Frequency,Log,ID,Notes\r\n'
        f'Active,"SPY","$1,000",Weekly,{_csv_cell(spy_log)},{spy_id},"mine, keep"\r\n'
        'Inactive,TSLA,10,Daily,"old, log",t1,5" tall\r\n'
        f'Active,VTI,1000,Monthly,{_csv_cell(vti_log)},v1'
    )


def _csv_cell(value: str) -> str:
    return f'"{value}"' if "," in value else value


def test_a_semicolon_plan_is_run_and_keeps_its_semicolons(capsys, plan, tmp_path):
    plan.write_bytes(b"Status;Stock Symbol;Amount (USD);Frequency;Log;ID\r\nActive;SPY;1000;Weekly;;\r\n")
    code, out, _ = run(capsys, plan, tmp_path)
    assert code == 0
    assert bought(capsys, plan, tmp_path) == ["SPY"]
    lines = plan.read_bytes().split(b"\r\n")
    assert lines[0] == b"Status;Stock Symbol;Amount (USD);Frequency;Log;ID" and lines[2] == b""
    assert lines[1].startswith(b"Active;SPY;1000;Weekly;") and lines[1].count(b";") == 5


def test_copied_rows_each_get_a_log_naming_both(capsys, plan, tmp_path):
    plan.write_text(HEADER + "Active,SPY,1000,Weekly,,s1\nActive,VTI,1000,Monthly,,v1\nActive,SPY,1000,Weekly,,s1\n")
    code, out, err = run(capsys, plan, tmp_path)
    assert code == 1
    assert bought(capsys, plan, tmp_path) == ["VTI"]
    logs = [row[4] for row in csv.reader(io.StringIO(plan.read_text()))][1:]
    assert "Rows 2 and 4 have the same ID s1" in logs[0]
    assert "Rows 2 and 4 have the same ID s1" in logs[2]


@pytest.mark.parametrize("size", [128 * 1024 + 1, 1024 * 1024 + 7])
def test_a_huge_cell_is_an_error_on_its_row_never_a_traceback(capsys, plan, tmp_path, size):
    plan.write_text(HEADER + f"Active,SPY,1000,Weekly,,s1\nActive,{'A' * size},1000,Monthly,,v1\n")
    code, out, err = dca(capsys, "plan", "--plan", str(plan))
    assert code == 1 and "Traceback" not in out + err
    assert f"Row 3: the cell in column B holds {size:,} characters" in out
    assert len(out) < 2000  # the cell is not echoed
    code, out, err = run(capsys, plan, tmp_path)
    assert code == 1 and "Traceback" not in out + err
    assert bought(capsys, plan, tmp_path) == ["SPY"]
