"""Surroundings that break start-up: an unusable data folder, a read-only one, an export
path that cannot be written. Each gives exit 2 and one sentence saying what is wrong and
what to do, never a traceback or a temp file's name; a read-only data folder still
serves every command that only looks.

Tests run as root, which ignores permission bits; dca itself treats a path with no write
bit at all as read-only (dca.sqlite_conn.is_writable), so `chmod a-w` is what these tests
use. The same
commands were also tried as an unprivileged user on a really read-only folder."""

from __future__ import annotations

import gc
import json
import os
import stat
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from dca.bootstrap import build
from dca.cli import main
from dca.errors import DcaError
from dca.settings import load_settings

APP = Path(__file__).resolve().parents[2] / "app.py"
READ_ONLY = stat.S_IRUSR | stat.S_IXUSR | stat.S_IRGRP | stat.S_IXGRP | stat.S_IROTH | stat.S_IXOTH


def dca(capsys, *args):
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_sentence(err: str, *fragments: str) -> None:
    assert err.startswith("dca: error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err and ".tmp" not in err
    for fragment in fragments:
        assert fragment in err


@pytest.fixture
def read_only(tmp_path):
    """chmod a-w on a folder, restored afterwards so pytest can clean up."""
    changed = []

    def make(path: Path) -> Path:
        changed.append((path, path.stat().st_mode))
        path.chmod(READ_ONLY)
        return path

    yield make
    for path, mode in reversed(changed):
        path.chmod(mode)


# -- a data folder that cannot be used ----------------------------------------------------


@pytest.mark.parametrize("command", [["plan"], ["run", "--dry-run"], ["status"], ["history"]])
def test_a_data_folder_under_proc_is_refused_in_one_sentence(capsys, monkeypatch, command):
    monkeypatch.setenv("DCA_HOME", "/proc/dca")
    code, out, err = dca(capsys, *command)
    assert code == 2 and out == ""
    assert_one_sentence(err, "data folder /proc/dca cannot be created", "/proc is read-only",
                        "set DCA_HOME to a folder you can write")


@pytest.mark.parametrize("below", ["", "sub"])
def test_a_file_instead_of_a_folder_is_refused_in_one_sentence(capsys, monkeypatch, tmp_path, below):
    a_file = tmp_path / "not-a-folder"
    a_file.write_text("hello")
    monkeypatch.setenv("DCA_HOME", str(a_file / below) if below else str(a_file))
    code, out, err = dca(capsys, "plan")
    assert code == 2 and out == ""
    assert_one_sentence(err, f"{a_file} is a file, not a folder", "set DCA_HOME")
    assert a_file.read_text() == "hello"


def test_a_data_folder_that_cannot_be_created_is_refused_in_one_sentence(capsys, monkeypatch, tmp_path, read_only):
    (tmp_path / "locked").mkdir()
    read_only(tmp_path / "locked")
    monkeypatch.setenv("DCA_HOME", str(tmp_path / "locked" / "dca"))
    code, out, err = dca(capsys, "run")
    assert code == 2 and out == ""
    assert_one_sentence(err, f"data folder {tmp_path / 'locked' / 'dca'} cannot be created",
                        f"{tmp_path / 'locked'} is read-only", "set DCA_HOME")
    assert not (tmp_path / "locked" / "dca").exists()


def test_an_empty_read_only_data_folder_cannot_hold_the_example_plan(capsys, monkeypatch, tmp_path, read_only):
    home = tmp_path / "home"
    home.mkdir()
    read_only(home)
    code, out, err = dca(capsys, "plan")
    assert code == 2 and out == ""
    assert_one_sentence(err, f"there is no plan at {home / 'plan.csv'}", "read-only", "DCA_HOME", "--plan")
    assert list(home.iterdir()) == []


def test_a_ledger_path_given_as_a_folder_is_one_sentence(capsys, tmp_path):
    code, out, err = dca(capsys, "run", "--db", str(tmp_path))
    assert code == 2
    assert_one_sentence(err, f"ledger {tmp_path}")


# -- a read-only data folder ------------------------------------------------------------


@pytest.fixture
def used_home(capsys, tmp_path):
    """A data folder after one real run: a plan with IDs, a ledger, a book, a lock file."""
    home = tmp_path / "home"
    code, out, _ = dca(capsys, "run", "--now", "2026-12-01T09:00", "--json")
    assert code == 0 and json.loads(out)["executions"]
    gc.collect()  # the run's SQLite handles close (and checkpoint) now, not mid-test
    return home


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and not p.name.endswith(("-shm", "-wal"))}  # logs/ is a folder of files


@pytest.mark.parametrize("command,shows", [
    (["plan"], "VTI"),
    (["history"], "VTI"),
    (["orders"], "dca-r"),
    (["status"], "Last run:  2026-12-01T09:00:00-05:00"),
    (["calendar", "--start", "2026-12-01", "--end", "2026-12-01"], "VTI"),
    (["run", "--dry-run", "--now", "2026-12-02T09:00"], "Dry run as of 2026-12-02 09:00 EST"),
])
def test_commands_that_only_look_still_work_in_a_read_only_data_folder(capsys, used_home, read_only, command, shows):
    before = snapshot(used_home)
    read_only(used_home)
    code, out, err = dca(capsys, *command)
    assert code == 0, err
    assert shows in out
    assert snapshot(used_home) == before


def test_history_in_a_read_only_data_folder_shows_what_is_recorded(capsys, used_home, read_only):
    code, out, _ = dca(capsys, "history", "--json")
    recorded = json.loads(out)
    read_only(used_home)
    code, out, _ = dca(capsys, "history", "--json")
    assert code == 0 and json.loads(out) == recorded


@pytest.mark.parametrize("now", [[], ["--now", "2026-12-02T09:00"], ["--now", "2026-12-02T09:00", "--json"]])
def test_run_in_a_read_only_data_folder_exits_2_in_one_sentence_and_records_nothing(capsys, used_home, read_only, now):
    (used_home / "ledger.sqlite3.lock").unlink()  # nor may the run lock's file appear there
    before = snapshot(used_home)
    read_only(used_home)
    code, out, err = dca(capsys, "run", *now)
    assert code == 2 and out == ""
    assert_one_sentence(err, f"cannot record anything in ledger {used_home / 'ledger.sqlite3'}",
                        f"the folder {used_home} is read-only", f"chmod u+w {used_home}", "DCA_HOME")
    assert snapshot(used_home) == before


def test_a_read_only_ledger_file_is_read_but_never_written(capsys, used_home):
    ledger = used_home / "ledger.sqlite3"
    mode = ledger.stat().st_mode
    ledger.chmod(stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)
    try:
        assert dca(capsys, "history")[0] == 0
        code, _, err = dca(capsys, "run", "--now", "2026-12-02T09:00")
        assert code == 2
        assert_one_sentence(err, f"the file {ledger} is read-only")
    finally:
        ledger.chmod(mode)


def test_the_panel_gets_the_same_sentence_as_a_dca_error(monkeypatch, tmp_path):
    a_file = tmp_path / "not-a-folder"
    a_file.write_text("")
    monkeypatch.setenv("DCA_HOME", str(a_file))
    with pytest.raises(DcaError, match=f"{a_file} is a file, not a folder"):
        build(load_settings())
    import streamlit as st

    st.cache_resource.clear()
    try:
        at = AppTest.from_file(str(APP), default_timeout=30).run()
    finally:
        st.cache_resource.clear()
    assert not at.exception
    shown = " ".join(e.value for e in at.error)
    assert f"{a_file} is a file, not a folder" in shown and ".tmp" not in shown


# -- exporting history ------------------------------------------------------------------


@pytest.mark.parametrize("target,problem", [
    ("/nonexistent/x.csv", "the folder /nonexistent does not exist"),
    ("{tmp}", "it is a folder"),
    ("{tmp}/a-file/x.csv", "{tmp}/a-file is not a folder"),
])
def test_history_csv_to_a_place_that_cannot_be_written_is_one_sentence(capsys, tmp_path, target, problem):
    (tmp_path / "a-file").write_text("")
    target, problem = target.format(tmp=tmp_path), problem.format(tmp=tmp_path)
    code, out, err = dca(capsys, "history", "--csv", target)
    assert code == 2 and out == ""
    assert_one_sentence(err, f"--csv {target} cannot be written: {problem}", "'-' for the screen")


def test_history_csv_still_writes_a_file_in_a_folder_that_exists(capsys, used_home, tmp_path):
    code, _, err = dca(capsys, "history", "--csv", str(tmp_path / "out.csv"))
    assert code == 0 and "wrote 1 executions" in err
    assert (tmp_path / "out.csv").read_text().startswith("row_id,")


def test_a_failure_writing_the_example_plan_never_shows_the_temp_file(capsys, monkeypatch, tmp_path):
    # The disk refuses the temp file the example plan is written through (full, or a
    # permission no check foresaw): the sentence names the plan and what to do.
    def refused(*args, **kwargs):
        raise PermissionError(13, "Permission denied", str(tmp_path / "home" / ".plan.csv.x1y2.tmp"))

    monkeypatch.setattr("dca.plans.csv_file.tempfile.mkstemp", refused)
    code, _, err = dca(capsys, "plan")
    assert code == 2
    assert_one_sentence(err, f"the example plan {tmp_path / 'home' / 'plan.csv'} cannot be created "
                             "(permission denied)", "set DCA_HOME")
    assert "x1y2" not in err


def test_a_read_only_data_folder_without_a_ledger_yet_shows_an_empty_one(capsys, monkeypatch, tmp_path, read_only):
    home = tmp_path / "home"
    home.mkdir()
    (home / "plan.csv").write_text("Status,Stock Symbol,Amount (USD),Frequency,Log,ID\nActive,QQQ,700,Daily,,q1\n")
    read_only(home)
    assert dca(capsys, "history")[1].strip() == "(none)"
    code, out, _ = dca(capsys, "status")
    assert code == 0 and "Last run:  never" in out
    assert sorted(p.name for p in home.iterdir()) == ["plan.csv"]


def test_every_thread_reads_the_same_copy_of_a_read_only_ledger(used_home, read_only):
    # The panel serves each session from its own thread.
    from concurrent.futures import ThreadPoolExecutor

    from dca.ledger import Ledger

    read_only(used_home)
    ledger = Ledger(used_home / "ledger.sqlite3")
    assert ledger.read_only
    with ThreadPoolExecutor(2) as pool:
        seen = list(pool.map(lambda _: [e.symbol for e in ledger.history()], range(2)))
    assert seen == [["VTI"], ["VTI"]]


def test_a_config_path_that_is_a_folder_is_one_sentence(capsys, tmp_path):
    code, _, err = dca(capsys, "plan", "--config", str(tmp_path))
    assert code == 2
    assert_one_sentence(err, f"config file {tmp_path} cannot be read (is a directory)", "--config")


def test_what_no_check_foresaw_is_still_one_sentence_naming_the_folder(capsys, tmp_path):
    # Here: a folder where the run lock's file belongs. main()'s last resort names the
    # folder, not the file (elsewhere that could be a temp file), and what to check.
    home = tmp_path / "home"
    home.mkdir()
    (home / "ledger.sqlite3.lock").mkdir()
    code, out, err = dca(capsys, "run", "--now", "2026-12-01T09:00")
    assert code == 2 and out == ""
    assert_one_sentence(err, f"could not read or write a file in {home} (is a directory)", "DCA_HOME")


# -- unknown variables ------------------------------------------------------------------


def test_a_misspelt_variable_is_warned_about_at_start_of_the_command(tmp_path):
    import subprocess
    import sys

    env = {**os.environ, "DCA_HOME": str(tmp_path / "home"), "DCA_MAX_ORDER": "s3cr3t-looking-value"}
    done = subprocess.run([sys.executable, "-m", "dca.cli", "plan"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0
    assert "DCA_MAX_ORDER (in the environment or .env) is not a dca setting and is ignored; " \
           "did you mean DCA_MAX_ORDER_USD?" in done.stderr
    assert "s3cr3t" not in done.stderr + done.stdout


@pytest.mark.parametrize("mode,writable", [(0o555, False), (0o575, True), (0o755, True), (0o1777, True)])
def test_a_folder_is_read_only_when_it_has_no_write_bit_at_all_even_for_root(tmp_path, mode, writable):
    from dca.sqlite_conn import is_writable

    folder = tmp_path / "f"
    folder.mkdir()
    folder.chmod(mode)
    try:
        assert is_writable(folder) is writable
    finally:
        folder.chmod(0o755)
