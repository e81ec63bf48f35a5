"""The Status page through AppTest: worker heartbeat, dead letters, notifier problems, the
test notification, broker and plan source connections, versions."""

from __future__ import annotations

from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from dca.ledger import Ledger
from dca.panel.status_view import NO_WORKER, heartbeat_lines, versions
from tests.conftest import HEADER

APP = Path(__file__).resolve().parents[2] / "app.py"



@pytest.fixture
def plan(tmp_path, monkeypatch) -> Path:
    path = tmp_path / "plan.csv"
    path.write_text(HEADER + "Active,SPY,700,Weekly,,s1\n")
    monkeypatch.setenv("DCA_PLAN", str(path))
    return path


def ledger(tmp_path) -> Ledger:
    return Ledger(tmp_path / "home" / "ledger.sqlite3")


def status() -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=30).run()
    at.switch_page("pages/status.py").run()
    assert not at.exception, at.exception
    return at


def table(at: AppTest, column: str):
    [df] = [d.value for d in at.dataframe if column in d.value.columns]
    return df


def all_text(at: AppTest) -> str:
    return " ".join(e.value for kind in (at.markdown, at.error, at.warning, at.success, at.info) for e in kind)


def test_no_worker_is_said_plainly(plan):
    at = status()
    assert any(NO_WORKER in w.value for w in at.warning)


def test_the_worker_heartbeat_is_shown(plan, tmp_path):
    status()  # creates the ledger
    ledger(tmp_path).beat(state="running", last_tick="2027-03-01T09:05:00-05:00", last_run="2027-03-01T09:01:00-05:00",
                          last_run_result="2 filled", next_run="2027-03-02T09:00:00-05:00",
                          last_error="broker unreachable", last_error_at="2027-02-28T09:00:00-05:00")
    at = status()
    df = table(at, "Worker")
    shown = dict(zip(df["Worker"], df["Value"]))
    assert shown["State"] == "running"
    assert shown["Last tick"] == "2027-03-01 09:05"
    assert shown["Last run"] == "2027-03-01 09:01 — 2 filled"
    assert shown["Next run"] == "2027-03-02 09:00"
    assert shown["Last error"] == "2027-02-28 09:00: broker unreachable"
    assert not any(NO_WORKER in w.value for w in at.warning)


def test_heartbeat_lines_of_a_worker_without_errors():
    lines = dict(heartbeat_lines({"state": "idle", "last_tick": None, "next_run": None}))
    assert lines["Last error"] == "none" and lines["Next run"] == "—"
    assert heartbeat_lines(None) == []


def test_dead_letters_and_notifier_problems_are_shown(plan, tmp_path):
    status()
    book = ledger(tmp_path)
    book.enqueue("notify", "first")
    book.enqueue("notify", "second")
    ids = [i.id for i in book.undelivered("notify")]
    book.give_up(ids[:1], "webhook refused: 400")
    book.give_up(ids[1:], "webhook gone: 404")
    book.set_notify_problem("webhook", "Discord says the webhook does not exist (404)")
    at = status()
    assert any("2 notification(s) were given up" in e.value and "webhook gone: 404" in e.value for e in at.error)
    assert any("the webhook does not exist (404)" in e.value for e in at.error)


def test_the_test_notification_says_it_arrived(plan, tmp_path):
    at = status()
    at.button(key="status_test_notification").click().run()
    assert not at.exception
    assert any("The test notification was sent" in s.value for s in at.success)
    assert "Test message from dca" in (tmp_path / "home" / "notifications.log").read_text()


def test_the_test_notification_says_it_did_not_arrive(plan, tmp_path, monkeypatch):
    (tmp_path / "blocked").mkdir()
    monkeypatch.setenv("DCA_NOTIFY_FILE", str(tmp_path / "blocked"))  # a folder: the message cannot be written
    at = status()
    at.button(key="status_test_notification").click().run()
    assert not at.exception
    assert any("did NOT arrive" in e.value for e in at.error)
    assert not any("was sent" in s.value for s in at.success)


def test_broker_and_plan_source_connections_are_shown(plan):
    at = status()
    text = all_text(at)
    assert "Broker connection: **ready**; account type **SIMULATED**" in text
    assert "Plan source: **reachable**" in text


def test_an_unreadable_plan_source_is_said_so(plan):
    plan.write_bytes(b"\xff\xfe\x00garbage")
    at = status()
    assert "Plan source: **cannot be read:" in all_text(at)


def test_versions_are_listed(plan):
    at = status()
    df = table(at, "Package")
    assert list(df["Package"]) == ["dca", "streamlit", "ibind", "gspread"]
    assert dict(zip(df["Package"], df["Version"]))["streamlit"] == st.__version__
    assert versions(("surely-not-a-package-xyz",)) == {"surely-not-a-package-xyz": "not installed"}
