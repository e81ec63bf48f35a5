"""A whole run notifying Discord (the emulator, over real HTTP): 60 executions under a 429
storm arrive exactly once, in order, within Discord's limits, and no order waits."""

from __future__ import annotations

import pytest

from dca.delivery import DELIVERY_BUDGET_SECONDS, deliver_notifications
from dca.domain import Outcome
from dca.notify.discord import DiscordNotifier
from dca.notify.rules import Rules
from tests.conftest import ny
from tests.fakes.discord_api import discord_api  # noqa: F401 (fixture)

MONDAY = ny(2027, 3, 1, 9, 0, 30)
SYMBOLS = [f"Q{chr(65 + i // 26)}{chr(65 + i % 26)}" for i in range(60)]


@pytest.fixture
def big_run(make_rig, discord_api):
    def make(rules: Rules):
        requests_when_ordered: list[int] = []

        def checkpoint(step, execution):
            if step == "outcome_recorded":
                requests_when_ordered.append(len(discord_api.requests))

        rows = "".join(f"Active,{s},100,Daily,,row{i}\n" for i, s in enumerate(SYMBOLS))
        rig = make_rig(rows, fractional=True, checkpoint=checkpoint)
        discord_api.clock = rig.clock.monotonic
        discord_api.storm = lambda n: (429, 1.5) if n % 2 == 0 else None  # every other post refused
        rig.engine.notifier = DiscordNotifier(discord_api.url, rules)
        return rig, requests_when_ordered

    return make


def drain(rig, notifier, passes: int = 40) -> int:
    """Later passes (the next runs, or the worker), until nothing waits."""
    for n in range(passes):
        if deliver_notifications(rig.ledger, notifier, clock=rig.clock)["waiting"] == 0:
            return n + 1
    raise AssertionError("notifications still waiting after many passes")


def test_sixty_executions_under_a_429_storm_arrive_once_in_order(big_run, discord_api):
    rig, requests_when_ordered = big_run(Rules(preset="all"))
    report = rig.run(MONDAY)
    bought = [e for e in report.executions if e.status is Outcome.FILLED]
    assert len(bought) == 60 and len(rig.broker.orders()) == 60
    # No order waited for Discord: every outcome was recorded before its first request,
    # and the run spent at most its budget waiting for it (on the fake clock).
    assert requests_when_ordered == [0] * 60
    assert sum(rig.clock.slept) <= DELIVERY_BUDGET_SECONDS
    first = report.delivery["notify"]
    assert first["delivered"] >= 1 and first["waiting"] > 0  # the rest is left to the outbox
    drain(rig, rig.engine.notifier)

    refs = [f["value"] for e in discord_api.embeds() for f in e["fields"] if f["name"] == "Order ref"]
    assert refs == [e.order_ref for e in bought]  # each exactly once, in the order they happened
    titles = [e["title"] for e in discord_api.embeds()]
    assert titles[-1].startswith("Run summary") and sum(t.startswith("Run summary") for t in titles) == 1
    assert len(discord_api.received) == 7  # 61 embeds, 10 to a message
    for message in discord_api.received:
        assert len(message["embeds"]) <= 10
        assert sum(len(e.get("title", "")) + len(e.get("description", "")) + len(e["footer"]["text"])
                   + sum(len(f["name"]) + len(f["value"]) for f in e["fields"]) for e in message["embeds"]) <= 6000
    statuses = [r for r in discord_api.requests]
    assert len(statuses) > len(discord_api.received)  # the storm did refuse some
    assert rig.ledger.given_up("notify") == [] and rig.ledger.undelivered("notify") == []


def test_by_default_a_big_runs_successes_are_folded_into_its_summary(big_run, discord_api):
    rig, _ = big_run(Rules())
    report = rig.run(MONDAY)
    drain(rig, rig.engine.notifier)
    [summary] = discord_api.embeds()
    fields = {f["name"]: f["value"] for f in summary["fields"]}
    assert fields["Executions"] == "60 filled"
    assert fields["Total spent"] == f"${float(report.summary()['total_spent']):,.2f}"
    assert fields["Next run"] == "2027-03-02 09:00 ET" and fields["Missed"] == "0" and fields["Late"] == "0"
    assert summary["description"].startswith("**Bought:**") and "QAA" in summary["description"]
    assert len(summary["description"]) <= 4096
    assert "SIMULATED" in discord_api.received[0]["content"]


def test_a_small_run_sends_each_success_and_a_summary(make_rig, discord_api):
    rig = make_rig("Active,SPY,700,Daily,,s1\nActive,QQQ,300,Daily,,q1\n", fractional=True)
    discord_api.clock = rig.clock.monotonic
    rig.engine.notifier = DiscordNotifier(discord_api.url, Rules())
    report = rig.run(ny(2027, 3, 1, 9, 20))  # 20 minutes after its time: late
    assert report.delivery["notify"] == {"delivered": 3, "waiting": 0}
    [message] = discord_api.received
    titles = [e["title"] for e in message["embeds"]]
    assert titles[:2] == [f"Bought {e.quantity} {e.symbol} (late)" for e in report.executions]
    assert titles[2].startswith("Run summary")
    late = {f["name"]: f["value"] for f in message["embeds"][0]["fields"]}["Late"]
    assert late == "yes"
    summary = {f["name"]: f["value"] for f in message["embeds"][2]["fields"]}
    assert summary["Late"] == "2" and summary["Executions"] == "2 filled"


def test_a_failure_mentions_the_configured_role_and_says_what_to_do(make_rig, discord_api):
    rig = make_rig("Active,SPY,700,Daily,,s1\n", faults={"SPY": "reject"})
    discord_api.clock = rig.clock.monotonic
    rig.engine.notifier = DiscordNotifier(discord_api.url, Rules(preset="failures only", mention="<@&4242424242>"))
    rig.run(MONDAY)
    [message] = discord_api.received
    [embed] = message["embeds"]  # failures only: no summary
    assert embed["title"].startswith("Not bought: SPY")
    assert message["content"].startswith("<@&4242424242>")
    assert discord_api.requests[-1].body["allowed_mentions"] == {"parse": [], "roles": ["4242424242"]}
