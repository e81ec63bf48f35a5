"""The trading-day table: exchange_calendars' XNYS sessions, cached on disk per library
version, and never a reason for a command to fail."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
from datetime import date
from pathlib import Path

import pytest

import dca.trading_calendar as tc
from dca.trading_calendar import NyseCalendar, build_sessions

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def no_shared_table(monkeypatch):
    """Forget the table this process already holds, so the disk cache is what is read."""
    monkeypatch.setattr(tc, "_memory", {})


def refuse_to_build(monkeypatch):
    def fail(first, last):
        raise AssertionError(f"built the table from exchange_calendars ({first}-{last})")

    monkeypatch.setattr(tc, "build_sessions", fail)


def test_the_table_is_exchange_calendars_own_sessions(tmp_path, no_shared_table):
    import exchange_calendars

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        xnys = exchange_calendars.get_calendar("XNYS", start="2024-01-01", end="2027-12-31")
        expected = [ts.date() for ts in xnys.sessions]
    assert expected[0] == date(2024, 1, 2)
    calendar = NyseCalendar(cache_dir=tmp_path)
    assert calendar.sessions(date(2024, 1, 1), date(2027, 12, 31)) == expected
    assert date(2026, 11, 26) not in expected and date(2026, 11, 27) in expected  # Thanksgiving


def test_the_cache_is_written_once_and_read_without_exchange_calendars(tmp_path, monkeypatch, no_shared_table):
    first = NyseCalendar(cache_dir=tmp_path, today=date(2026, 12, 1))
    sessions = first.sessions(date(2026, 12, 1), date(2026, 12, 31))
    path = first.cache_path
    assert path.parent == tmp_path and path.name == f"xnys-sessions-{tc.library_version()}.json"
    data = json.loads(path.read_text())
    assert data["first_year"] == 2000 and data["last_year"] == 2037
    assert data["sessions"][0] == "2000-01-03" and "2026-12-25" not in data["sessions"]

    monkeypatch.setattr(tc, "_memory", {})
    refuse_to_build(monkeypatch)
    again = NyseCalendar(cache_dir=tmp_path, today=date(2026, 12, 1))
    assert again.sessions(date(2026, 12, 1), date(2026, 12, 31)) == sessions


def test_another_library_version_rebuilds_the_table(tmp_path, monkeypatch, no_shared_table):
    NyseCalendar(cache_dir=tmp_path).sessions(date(2026, 1, 1), date(2026, 1, 31))
    [old] = tmp_path.iterdir()
    # A file claiming to be another version's table is not trusted either.
    monkeypatch.setattr(tc, "library_version", lambda: "99.0")
    old.rename(tmp_path / "xnys-sessions-99.0.json")
    monkeypatch.setattr(tc, "_memory", {})
    built = []
    real_build = tc.build_sessions
    monkeypatch.setattr(tc, "build_sessions", lambda a, b: built.append((a, b)) or real_build(a, b))
    assert NyseCalendar(cache_dir=tmp_path).sessions(date(2026, 1, 2), date(2026, 1, 2)) == [date(2026, 1, 2)]
    assert built  # the table on disk said another version inside: rebuilt
    assert json.loads((tmp_path / "xnys-sessions-99.0.json").read_text())["exchange_calendars"] == "99.0"


@pytest.mark.parametrize("content", ["", "{not json", '{"format": 1}', '[1, 2]',
                                     '{"format": 1, "exchange_calendars": "%s", "first_year": 2000, '
                                     '"last_year": 2040, "sessions": ["2026-13-01"]}'])
def test_a_damaged_cache_is_rebuilt(tmp_path, no_shared_table, content):
    path = NyseCalendar(cache_dir=tmp_path).cache_path
    path.write_text(content.replace("%s", tc.library_version()))
    assert NyseCalendar(cache_dir=tmp_path).sessions(date(2026, 12, 24), date(2026, 12, 28)) == [
        date(2026, 12, 24), date(2026, 12, 28)]
    assert json.loads(path.read_text())["sessions"][0] == "2000-01-03"


def test_an_unusable_cache_directory_builds_in_memory(tmp_path, no_shared_table):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the cache directory should be")
    calendar = NyseCalendar(cache_dir=blocker / "dca")
    assert calendar.sessions(date(2026, 12, 24), date(2026, 12, 28)) == [date(2026, 12, 24), date(2026, 12, 28)]
    assert blocker.read_text().startswith("a file")


def test_days_outside_the_table_still_come_from_exchange_calendars(tmp_path, no_shared_table):
    calendar = NyseCalendar(cache_dir=tmp_path, today=date(2026, 12, 1))
    assert calendar.sessions(date(1999, 7, 1), date(1999, 7, 6)) == [date(1999, 7, 1), date(1999, 7, 2),
                                                                    date(1999, 7, 6)]  # July 4th on Monday 5th
    assert calendar.sessions(date(2045, 12, 22), date(2045, 12, 26)) == [date(2045, 12, 22), date(2045, 12, 26)]
    assert build_sessions(2045, 2045)[-1] == date(2045, 12, 29)


def test_quick_commands_import_neither_pandas_nor_exchange_calendars(tmp_path):
    """What makes `dca --help`, `plan` and `status` quick: with the table cached, nothing
    imports the calendar library (the timings themselves are in bench/commands.py)."""
    code = (
        "import sys\n"
        "from dca.cli import main\n"
        "for argv in (['plan'], ['status'], ['calendar']):\n"
        "    main(argv + ['--json'])\n"
        "heavy = sorted(m for m in ('pandas', 'numpy', 'exchange_calendars') if m in sys.modules)\n"
        "print('HEAVY', heavy, file=sys.stderr)\n"
    )
    env = {"PATH": "/usr/bin:/bin", "DCA_HOME": str(tmp_path / "home"), "XDG_CACHE_HOME": str(tmp_path / "cache")}
    first = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True)
    assert first.returncode == 0, first.stderr
    assert "HEAVY ['exchange_calendars', 'numpy', 'pandas']" in first.stderr  # built the table once
    second = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True)
    assert second.returncode == 0, second.stderr
    assert "HEAVY []" in second.stderr


def test_the_cache_lives_in_xdg_cache_home_or_the_home_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert tc.default_cache_dir() == tmp_path / "xdg" / "dca"
    for unusable in ("", "relative/cache"):  # the XDG spec ignores a relative path
        monkeypatch.setenv("XDG_CACHE_HOME", unusable)
        assert tc.default_cache_dir() == tmp_path / ".cache" / "dca"
