"""Discord as a person uses it: through the `dca` command, against the local webhook."""

from __future__ import annotations

import json
import time

import pytest

from tests.conftest import HEADER
from tests.fakes.discord_api import TOKEN, discord_api  # noqa: F401 (fixture)
from tests.integration.test_cli import dca


@pytest.fixture
def discord_env(monkeypatch, discord_api, tmp_path):
    monkeypatch.setenv("DCA_DISCORD_WEBHOOK_URL", discord_api.url)
    discord_api.limit = 100  # a roomy bucket on the real clock: these tests never wait for it
    plan = tmp_path / "plan.csv"
    plan.write_text(HEADER + "Active,SPY,700,Daily,,s1\nActive,QQQ,900,Daily,,q1\n")
    monkeypatch.setenv("DCA_PLAN", str(plan))
    return discord_api


def everything_printed(capsys_out: str, tmp_path) -> str:
    logs = "".join(p.read_text() for p in (tmp_path / "home" / "logs").glob("*")) if (
        tmp_path / "home" / "logs").exists() else ""
    return capsys_out + logs


def test_notify_test_says_it_arrived(capsys, discord_env):
    code, out, err = dca(capsys, "notify-test")
    assert code == 0, err
    assert "The test message arrived at Discord webhook" in out and "(SIMULATED)" in out
    [message] = discord_env.received
    assert message["embeds"][0]["title"] == "Test message from dca"
    assert TOKEN not in out + err


def test_notify_test_says_plainly_when_it_did_not_arrive(capsys, discord_env, tmp_path):
    discord_env.known = False  # the webhook was deleted in Discord
    code, out, err = dca(capsys, "notify-test", "--json")
    assert code == 1
    result = json.loads(out)
    assert result["arrived"] is False and "refuses the webhook" in result["error"]
    assert TOKEN not in everything_printed(out + err, tmp_path)


def test_a_bad_webhook_url_stops_at_start_without_repeating_it(capsys, monkeypatch):
    monkeypatch.setenv("DCA_DISCORD_WEBHOOK_URL", f"https://example.com/hooks/{TOKEN}")
    code, out, err = dca(capsys, "status")
    assert code == 2 and "DCA_DISCORD_WEBHOOK_URL" in err and "not a Discord webhook URL" in err
    assert TOKEN not in out + err


def test_run_notifies_discord_and_status_masks_the_webhook(capsys, discord_env, tmp_path):
    code, out, err = dca(capsys, "run", "--now", "2027-03-01T09:00:30", "-v")
    assert code == 0, err
    titles = [e["title"] for e in discord_env.embeds()]
    assert len(titles) == 3 and titles[-1].startswith("Run summary")
    code, out2, err2 = dca(capsys, "status")
    assert "Notifier:  Discord webhook http://127.0.0.1:" in out2 and "/****" in out2
    assert "discord_webhook_url=****" in out2
    assert TOKEN not in everything_printed(out + err + out2 + err2, tmp_path)
    log = (tmp_path / "home" / "logs" / "dca.log").read_text()
    assert "run=1" in log and "exec=s1/2027-03-01" in log  # one execution followed by its key


def test_refused_notifications_become_dead_letters_shown_by_status_and_resent(capsys, discord_env, tmp_path):
    discord_env.refuse = lambda body: True  # Discord refuses everything, whatever its size
    code, out, _ = dca(capsys, "run", "--now", "2027-03-01T09:00:30")
    assert code == 0  # the orders are unaffected
    code, out, _ = dca(capsys, "status", "--json")
    health = json.loads(out)["notifications"]
    assert health["dead_letters"] == 3 and "50035" in health["latest_dead_letter"]["last_error"]
    code, out, _ = dca(capsys, "status")
    assert "Dead letters: 3 notification(s) given up" in out
    discord_env.refuse = None  # fixed
    code, out, _ = dca(capsys, "notify-test", "--resend-dead-letters")
    assert code == 0 and "3 dead letter(s) queued again: 3 delivered, 0 waiting" in out
    assert [e["title"] for e in discord_env.embeds()][-1].startswith("Run summary")
    code, out, _ = dca(capsys, "status", "--json")
    assert json.loads(out)["notifications"]["dead_letters"] == 0


def test_a_deleted_webhook_is_a_problem_in_status_until_notify_test_succeeds(capsys, discord_env, monkeypatch):
    discord_env.known = False
    dca(capsys, "run", "--now", "2027-03-01T09:00:30")
    code, out, _ = dca(capsys, "status")
    assert "NOTIFIER PROBLEM" in out and "Unknown Webhook" in out
    monkeypatch.setenv("DCA_DISCORD_WEBHOOK_URL", discord_env.url + "/")  # another webhook
    code, out, _ = dca(capsys, "status")
    assert "NOTIFIER PROBLEM" not in out  # the refused one is no longer in use
    monkeypatch.setenv("DCA_DISCORD_WEBHOOK_URL", discord_env.url)
    discord_env.known = True
    assert dca(capsys, "notify-test")[0] == 0
    code, out, _ = dca(capsys, "status")
    assert "NOTIFIER PROBLEM" not in out


def test_dca_run_waits_only_a_bounded_few_seconds_for_discord(capsys, discord_env):
    discord_env.storm = lambda n: (429, 60.0)  # Discord says: come back in a minute, every time
    started = time.monotonic()
    code, out, err = dca(capsys, "run", "--now", "2027-03-01T09:00:30", "--json")
    elapsed = time.monotonic() - started
    assert code == 0
    report = json.loads(out)
    assert {e["status"] for e in report["executions"]} == {"filled"}
    assert report["delivery"]["notify"]["waiting"] == 3 and "rate-limiting" in report["delivery"]["notify"]["error"]
    assert elapsed < 5  # it did not wait the minute; the outbox keeps them for later
