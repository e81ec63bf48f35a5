"""Time travel cannot poison the ledger: `--now` has a supported range, a recording run
never goes back before the latest day the ledger has run at, a run in the future warns
first, and a New York time that daylight saving skips or repeats is never guessed.

Driven through the `dca` command as a person types it; the real clock is pinned with
time-machine, so "ten years ahead" and "a day ahead" are fixed moments."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest
import time_machine

from dca.cli import main
from dca.clock_guard import TimeRefused
from tests.conftest import HEADER, ny

# The real clock in these tests: Tuesday 2026-12-01, 07:00 in New York.
REAL_NOW = datetime(2026, 12, 1, 12, 0, tzinfo=timezone.utc)


@pytest.fixture(autouse=True)
def real_clock():
    with time_machine.travel(REAL_NOW, tick=False):
        yield


@pytest.fixture
def paths(tmp_path):
    plan = tmp_path / "plan.csv"
    plan.write_text(HEADER + "Active,QQQ,700,Daily,,q1\nActive,VOO,800,Weekly,,v1\n")
    return ["--plan", str(plan), "--db", str(tmp_path / "ledger.sqlite3")]


def dca(capsys, *args):
    code = main(list(args))
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, out, err


def history(capsys, paths) -> list[dict]:
    code, out, _ = dca(capsys, "history", "--json", *paths)
    assert code == 0
    return json.loads(out)


# -- the range --------------------------------------------------------------------------


@pytest.mark.parametrize("now", [
    "9999-12-31T23:59", "0001-01-01T00:00", "1900-01-01T09:00", "1999-12-31T23:59",
    "2036-12-02T09:00",  # a day beyond ten years from the real clock
    "2037-01-01T09:00-05:00",
    "9999-12-31T23:59:59.999999-23:59", "0001-01-01T00:00+23:59",  # the very edges of datetime
])
@pytest.mark.parametrize("mode", [[], ["--dry-run"], ["--json"]])
def test_a_now_outside_the_range_is_refused_in_every_mode(capsys, paths, now, mode):
    code, out, err = dca(capsys, "run", "--now", now, *mode, *paths)
    assert code == 2 and out == ""
    assert "is outside the range dca runs at, from 2000-01-01 to 2036-12-01" in err
    assert err.count("\n") == 1  # one sentence, no traceback
    assert history(capsys, paths) == []


def test_after_a_refused_far_future_the_real_clock_still_buys(capsys, paths):
    assert dca(capsys, "run", "--now", "9999-12-31T23:59", *paths)[0] == 2
    code, out, _ = dca(capsys, "run", "--json", *paths)  # the real clock: 2026-12-01 07:00
    assert code == 0
    code, out, _ = dca(capsys, "run", "--json", "--now", "2026-12-01T09:00", *paths)
    assert code == 0
    # VOO's week began on Monday, before it was first seen, so only QQQ is due.
    assert {e["symbol"]: e["status"] for e in json.loads(out)["executions"]} == {"QQQ": "filled"}


@pytest.mark.parametrize("now", ["2000-01-03T09:00", "2036-11-28T09:00"])
def test_the_edges_of_the_range_are_accepted(capsys, paths, now):
    code, out, _ = dca(capsys, "run", "--now", now, "--dry-run", "--json", *paths)
    assert code == 0
    assert {e["status"] for e in json.loads(out)["executions"]} == {"planned"}


# -- never back before the latest day ---------------------------------------------------


def test_a_recording_run_before_the_latest_day_is_refused_naming_it_and_the_way_out(capsys, paths):
    code, _, _ = dca(capsys, "run", "--now", "2026-12-14T09:00", *paths)  # the mistaken time travel
    assert code == 0
    recorded = history(capsys, paths)

    code, out, err = dca(capsys, "run", "--now", "2026-12-01T09:00", *paths)
    assert code == 2 and out == ""
    assert "has already run as of 2026-12-14 09:00 EST" in err
    assert "earlier day 2026-12-01" in err and "--db" in err and "DCA_HOME" in err
    code, _, err = dca(capsys, "run", *paths)  # the real clock, as the worker would
    assert code == 2 and "2026-12-14 09:00 EST" in err
    assert history(capsys, paths) == recorded  # nothing recorded by the refused runs


def test_a_dry_run_before_the_latest_day_is_never_refused(capsys, paths):
    assert dca(capsys, "run", "--now", "2026-12-14T09:00", *paths)[0] == 0
    code, out, _ = dca(capsys, "run", "--now", "2026-12-02T09:00", "--dry-run", "--json", *paths)
    assert code == 0 and json.loads(out)["dry_run"] is True


def test_later_on_the_same_day_and_later_days_still_run(capsys, paths):
    assert dca(capsys, "run", "--now", "2026-12-01T09:30", *paths)[0] == 0
    assert dca(capsys, "run", "--now", "2026-12-01T08:00", *paths)[0] == 0  # same New York day
    # 2026-12-02 03:00 UTC is still 2026-12-01 in New York: the day is New York's.
    assert dca(capsys, "run", "--now", "2026-12-02T03:00+00:00", *paths)[0] == 0
    assert dca(capsys, "run", "--now", "2026-12-02T09:00", *paths)[0] == 0


def test_the_engine_itself_refuses_so_every_face_does(make_rig):
    rig = make_rig("Active,QQQ,700,Daily,,q1\n")
    rig.run(ny(2026, 12, 3, 9, 0))
    with pytest.raises(TimeRefused, match=r"already run as of 2026-12-03 09:00 EST"):
        rig.run(ny(2026, 12, 2, 9, 0))
    with pytest.raises(TimeRefused, match="outside the range"):
        rig.run(ny(1900, 1, 2, 9, 0), dry_run=True)
    assert rig.run(ny(2026, 12, 2, 9, 0), dry_run=True).dry_run
    assert [e.scheduled_date.isoformat() for e in rig.ledger.history()] == ["2026-12-03"]


def test_the_latest_moment_is_compared_as_a_moment_not_as_text(make_rig):
    rig = make_rig("Active,QQQ,700,Daily,,q1\n")
    # As text "2026-12-03T01:00-05:00" < "2026-12-03T05:00+09:00", as moments it is later.
    rig.run(datetime.fromisoformat("2026-12-03T05:00+09:00"))  # 2026-12-02 15:00 New York
    rig.run(datetime.fromisoformat("2026-12-03T01:00-05:00"))
    assert rig.ledger.latest_run_at() == ny(2026, 12, 3, 1, 0)
    with pytest.raises(TimeRefused):
        rig.run(ny(2026, 12, 2, 16, 0))


# -- a warning before going ahead --------------------------------------------------------


def test_a_recording_run_more_than_a_day_ahead_warns_and_goes_ahead(capsys, paths):
    code, out, err = dca(capsys, "run", "--now", "2026-12-03T09:00", "--json", *paths)
    assert code == 0
    assert "warning: running as of 2026-12-03 09:00 EST, ahead of the real clock" in err
    assert "refuses runs that record on a day before 2026-12-03" in err
    assert {e["status"] for e in json.loads(out)["executions"]} == {"filled"}


@pytest.mark.parametrize("args", [["--now", "2026-12-01T09:00"], ["--now", "2026-12-24T09:00", "--dry-run"], []])
def test_no_warning_within_a_day_or_for_a_dry_run(capsys, paths, args):
    code, _, err = dca(capsys, "run", *args, *paths)
    assert code == 0 and "ahead of the real clock" not in err


# -- daylight saving time ---------------------------------------------------------------


@pytest.mark.parametrize("mode", [[], ["--dry-run"]])
def test_a_time_the_clocks_skip_is_refused_saying_what_to_write(capsys, paths, mode):
    code, out, err = dca(capsys, "run", "--now", "2026-03-08T02:30", *mode, *paths)
    assert code == 2 and out == ""
    assert "--now 2026-03-08T02:30 does not exist in New York" in err
    assert "2026-03-08T03:30" in err and "2026-03-08T02:30-05:00" in err


@pytest.mark.parametrize("mode", [[], ["--dry-run"]])
def test_a_time_the_clocks_repeat_is_refused_saying_which_offsets_to_write(capsys, paths, mode):
    code, out, err = dca(capsys, "run", "--now", "2026-11-01T01:30", *mode, *paths)
    assert code == 2 and out == ""
    assert "--now 2026-11-01T01:30 happens twice in New York" in err
    assert "2026-11-01T01:30-04:00 for the first (EDT)" in err
    assert "2026-11-01T01:30-05:00 for the second (EST)" in err


@pytest.mark.parametrize("now,shown", [
    ("2026-11-01T01:30-04:00", "2026-11-01 01:30 EDT"),
    ("2026-11-01T01:30-05:00", "2026-11-01 01:30 EST"),
    ("2026-03-08T02:30-05:00", "2026-03-08 03:30 EDT"),  # the same moment, in the zone it is in
    ("2026-11-01T00:59", "2026-11-01 00:59 EDT"),
    ("2026-11-01T02:00", "2026-11-01 02:00 EST"),
    ("2026-03-08T03:00", "2026-03-08 03:00 EDT"),
])
def test_with_an_offset_or_outside_the_change_the_time_is_shown_in_its_true_zone(capsys, paths, now, shown):
    code, out, _ = dca(capsys, "run", "--now", now, "--dry-run", *paths)
    assert code == 0
    assert f"Dry run as of {shown}" in out
