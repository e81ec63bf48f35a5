"""The `dca` command as people and scripts use it: output shapes and exit codes."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import pytest
import time_machine

from dca.cli import main
from tests.conftest import HEADER

REPO = Path(__file__).resolve().parents[2]


def dca(capsys, *args):
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def plan_file(tmp_path):
    path = tmp_path / "plan.csv"
    path.write_text(HEADER + "Active,QQQ,700,Daily,,q1\nActive,VOO,800,Weekly,,v1\nActive,IWM,900,Monthly,,i1\n"
                    "Inactive,TSLA,10,Daily,,t1\n")
    return path


def test_console_script_is_declared():
    assert any(ep.name == "dca" and ep.value == "dca.cli:main" for ep in entry_points(group="console_scripts"))


def test_first_start_creates_the_example_plan(capsys, tmp_path):
    code, out, _ = dca(capsys, "plan", "--json")
    assert code == 0
    plan = json.loads(out)
    assert [(r["status"], r["symbol"], r["amount_usd"], r["frequency"]) for r in plan["rows"]] == [
        ("Active", "AAPL", "10.00", "Weekly"), ("Inactive", "TSLA", "10.00", "Daily"),
        ("Active", "SPY", "500.00", "Weekly"), ("Active", "VTI", "1000.00", "Monthly")]
    assert all(r["row_id"] for r in plan["rows"])
    assert (tmp_path / "home" / "plan.csv").exists()


def test_calendar_json_is_sorted_by_time_then_row(capsys, plan_file):
    code, out, _ = dca(capsys, "calendar", "--plan", str(plan_file), "--start", "2027-05-28", "--end", "2027-06-02", "--json")
    assert code == 0
    items = json.loads(out)
    assert [(i["scheduled_at"], i["symbol"]) for i in items] == [
        ("2027-05-28T09:00:00-04:00", "QQQ"),
        ("2027-06-01T09:00:00-04:00", "QQQ"),  # 05-31 is Memorial Day
        ("2027-06-01T09:00:00-04:00", "VOO"),
        ("2027-06-01T09:00:00-04:00", "IWM"),
        ("2027-06-02T09:00:00-04:00", "QQQ"),
    ]
    assert set(items[0]) >= {"row_id", "symbol", "amount_usd", "frequency", "scheduled_at"}


def test_run_json_then_history_and_orders(capsys, plan_file, tmp_path):
    db = str(tmp_path / "ledger.sqlite3")
    code, out, _ = dca(capsys, "run", "--plan", str(plan_file), "--db", db, "--now", "2027-03-01T09:00:30", "--json")
    assert code == 0
    report = json.loads(out)
    assert report["simulated"] is True
    assert {e["symbol"]: e["status"] for e in report["executions"]} == {"QQQ": "filled", "VOO": "filled", "IWM": "filled"}
    for e in report["executions"]:
        assert set(e) >= {"row_id", "symbol", "scheduled_at", "status", "late", "quantity", "price", "amount_usd",
                          "order_ref", "message"}
        assert e["scheduled_at"] == "2027-03-01T09:00:00-05:00" and e["late"] is False
    assert report["summary"]["counts"] == {"filled": 3}
    assert report["errors"] == []

    code, out, _ = dca(capsys, "history", "--db", db, "--plan", str(plan_file), "--json")
    history = json.loads(out)
    assert code == 0 and len(history) == 3 and all(h["recorded_at"] for h in history)

    code, out, _ = dca(capsys, "history", "--db", db, "--plan", str(plan_file), "--csv", "-")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert {r["symbol"] for r in rows} == {"QQQ", "VOO", "IWM"}

    code, out, _ = dca(capsys, "orders", "--json")
    refs = {o["order_ref"] for o in json.loads(out)}
    assert refs == {e["order_ref"] for e in report["executions"]}
    code, out, _ = dca(capsys, "orders")
    assert "SIMULATED" in out


def test_human_run_output_says_simulated(capsys, plan_file, tmp_path):
    code, out, _ = dca(capsys, "run", "--plan", str(plan_file), "--db", str(tmp_path / "l.sqlite3"),
                       "--now", "2027-03-01T09:00:30", "--dry-run")
    assert code == 0
    assert out.startswith("SIMULATED broker")
    assert "Dry run as of 2027-03-01 09:00 EST" in out and "planned" in out


def test_an_invalid_active_row_exits_1_but_the_others_run(capsys, tmp_path):
    path = tmp_path / "plan.csv"
    path.write_text(HEADER + "Active,QQQ,700,Daily,,q1\nActive,SPY,-5,Daily,,s1\n")
    code, out, _ = dca(capsys, "run", "--plan", str(path), "--db", str(tmp_path / "l.sqlite3"),
                       "--now", "2027-03-01T09:00:30", "--json")
    report = json.loads(out)
    assert code == 1
    assert report["errors"][0]["row"] == 3 and "more than $0" in report["errors"][0]["message"]
    assert [e["symbol"] for e in report["executions"]] == ["QQQ"]
    code, out, _ = dca(capsys, "plan", "--plan", str(path))
    assert code == 1 and "ERROR: Row 3" in out


@pytest.mark.parametrize("args,env,message", [
    (["run", "--now", "yesterday"], {}, "--now 'yesterday' is not an ISO 8601 time"),
    (["plan", "--plan", "missing.csv"], {}, "missing.csv does not exist"),
    (["plan"], {"DCA_MAX_ORDER_USD": "lots"}, "$DCA_MAX_ORDER_USD: 'lots' is not an amount"),
    (["plan", "--config", "nope.toml"], {}, "config file nope.toml does not exist"),
    (["calendar", "--start", "2027-02-30"], {}, "--start '2027-02-30' is not a date"),
])
def test_could_not_run_exits_2_with_what_to_fix(capsys, monkeypatch, args, env, message):
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    code, out, err = dca(capsys, *args)
    assert code == 2
    assert message in err and out == ""


def test_bad_arguments_exit_2(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["run", "--bogus"])
    assert exit_info.value.code == 2


def test_status_shows_configuration_and_next_executions(capsys, plan_file, tmp_path):
    code, out, _ = dca(capsys, "status", "--plan", str(plan_file), "--json")
    status = json.loads(out)
    assert code == 0 and status["simulated"] is True
    assert status["plan"].endswith("plan.csv") and status["last_run"] is None
    assert status["settings"]["max_order_usd"] == "5000"
    assert status["sources"]["plan_path"] == "command line"
    assert len(status["next_executions"]) > 0


def test_the_module_runs_as_a_program(tmp_path):
    result = subprocess.run([sys.executable, "-m", "dca.cli", "plan", "--json"], cwd=REPO, capture_output=True,
                            text=True, env={"DCA_HOME": str(tmp_path / "h"), "PATH": "/usr/bin:/bin",
                                                                 "XDG_CACHE_HOME": os.environ["XDG_CACHE_HOME"]})
    assert result.returncode == 0, result.stderr
    assert len(json.loads(result.stdout)["rows"]) == 4


def test_run_without_now_uses_the_real_clock_in_new_york(capsys, plan_file, tmp_path):
    # 14:00:30 UTC on 2027-03-01 is 09:00:30 in New York (EST): everything is due, on time.
    with time_machine.travel("2027-03-01 14:00:30+00:00", tick=False):
        code, out, _ = dca(capsys, "run", "--plan", str(plan_file), "--db", str(tmp_path / "l.sqlite3"), "--json")
    report = json.loads(out)
    assert code == 0
    assert report["as_of"] == "2027-03-01T09:00:30-05:00"
    assert {(e["symbol"], e["late"]) for e in report["executions"]} == {("QQQ", False), ("VOO", False), ("IWM", False)}
    # The same run at 09:06 New York time would have been late.
    with time_machine.travel("2027-03-02 14:06:00+00:00", tick=False):
        code, out, _ = dca(capsys, "run", "--plan", str(plan_file), "--db", str(tmp_path / "l.sqlite3"), "--json")
    assert [(e["symbol"], e["late"]) for e in json.loads(out)["executions"]] == [("QQQ", True)]


def test_history_marks_simulated_executions(capsys, plan_file, tmp_path):
    db = str(tmp_path / "ledger.sqlite3")
    dca(capsys, "run", "--plan", str(plan_file), "--db", db, "--now", "2027-03-01T09:00:30")
    code, out, _ = dca(capsys, "history", "--plan", str(plan_file), "--db", db)
    assert code == 0 and out.startswith("SIMULATED broker")
    assert out.count("SIMULATED") == 4  # the banner and each of the three executions


def test_status_lists_what_is_still_to_come_with_a_due_catch_up_first(capsys, plan_file):
    # 10:00 on Monday 2027-03-01, nothing ran at 09:00: those are due now (late), as a run
    # now would buy them; after them only what is still to come.
    with time_machine.travel("2027-03-01 15:00:00+00:00", tick=False):
        code, out, _ = dca(capsys, "status", "--plan", str(plan_file), "--json")
    upcoming = json.loads(out)["next_executions"]
    assert [(u["symbol"], u["state"], u["late"]) for u in upcoming[:3]] == [
        ("QQQ", "due", True), ("VOO", "due", True), ("IWM", "due", True)]
    assert all(u["scheduled_at"] == "2027-03-01T09:00:00-05:00" for u in upcoming[:3])
    assert upcoming[3]["scheduled_at"] == "2027-03-02T09:00:00-05:00"
    assert all(u["state"] == "scheduled" for u in upcoming[3:])
