"""The Discord notifier and the notification outbox, over real HTTP (requests) against the
local webhook emulator (tests/fakes/discord_api.py). No test sleeps: waits go to a
FakeClock, which is also the emulator's rate-limit clock."""

from __future__ import annotations

import logging

import pytest
import requests

from dca.delivery import deliver_notifications
from dca.errors import NotifyError
from dca.ledger import Ledger
from dca.notify.discord import DiscordNotifier, check_webhook_url, embed_for, embed_size

from dca.ports import Notification
from tests.fakes import FakeClock
from tests.fakes.discord_api import TOKEN, WEBHOOK_ID, discord_api, limit_errors  # noqa: F401 (fixture)


@pytest.fixture
def clock(discord_api):
    clock = FakeClock()
    discord_api.clock = clock.monotonic
    return clock


@pytest.fixture
def ledger(tmp_path):
    return Ledger(tmp_path / "ledger.sqlite3")


def success(symbol="VTI", ref="dca-r1-20261201", message="", **extra) -> Notification:
    details = {"symbol": symbol, "status": "filled", "quantity": "2", "price": "390.26", "cost": "780.52",
               "amount_usd": "1000.00", "order_ref": ref, "late": False, "message": message,
               "scheduled_at": "2026-12-01T09:00:00-05:00", "row": 2, "frequency": "Monthly", **extra}
    return Notification("success", f"filled · 2 {symbol}", "SIMULATED", details)


def queue(ledger: Ledger, notifications) -> None:
    for n in notifications:
        ledger.enqueue_notification(n.kind, n.text, dict(n.details))


def sent_refs(api) -> list[str]:
    return [f["value"] for e in api.embeds() for f in e.get("fields", []) if f["name"] == "Order ref"]


# -- the emulator is Discord as far as we rely on it ----------------------------------------


def test_emulator_answers_like_discord(discord_api):
    url = discord_api.url
    ok = requests.post(url, params={"wait": "true"}, json={"content": "hi"}, timeout=5)
    assert ok.status_code == 200 and ok.json()["content"] == "hi" and ok.json()["id"]
    assert requests.post(url, json={"content": "no wait"}, timeout=5).status_code == 204
    too_long = requests.post(url, params={"wait": "true"}, json={"content": "x" * 2001}, timeout=5)
    assert too_long.status_code == 400 and too_long.json()["code"] == 50035
    assert "content" in too_long.json()["errors"]
    big = {"embeds": [{"title": "t", "description": "d" * 4000}, {"description": "d" * 2001}]}
    assert requests.post(url, params={"wait": "true"}, json=big, timeout=5).json()["code"] == 50035
    assert requests.post(url, params={"wait": "true"}, json={"embeds": [{"title": "t"}] * 11},
                         timeout=5).status_code == 400
    wrong = requests.post(url.replace(TOKEN, "nope"), params={"wait": "true"}, json={"content": "x"}, timeout=5)
    assert (wrong.status_code, wrong.json()["code"]) == (401, 50027)
    discord_api.known = False
    gone = requests.post(url, params={"wait": "true"}, json={"content": "x"}, timeout=5)
    assert (gone.status_code, gone.json()["code"]) == (404, 10015)
    discord_api.known = True
    discord_api.script = [(429, 1.25)]
    limited = requests.post(url, params={"wait": "true"}, json={"content": "x"}, timeout=5)
    assert limited.status_code == 429 and limited.json()["retry_after"] == 1.25
    assert limited.headers["Retry-After"] == "2" and limited.headers["X-RateLimit-Scope"]
    assert [m["content"] for m in discord_api.received] == ["hi", "no wait"]


# -- what a message looks like ----------------------------------------------------------------


def test_a_message_waits_for_discord_and_allows_no_mention(discord_api, clock):
    notifier = DiscordNotifier(discord_api.url)
    pause = notifier.send([success()])
    assert pause == 0.0
    request = discord_api.requests[-1]
    assert request.query == {"wait": "true"}
    assert request.body["allowed_mentions"] == {"parse": []}
    assert "SIMULATED" in request.body["content"]
    embed = discord_api.received[0]["embeds"][0]
    fields = {f["name"]: f["value"] for f in embed["fields"]}
    assert embed["title"] == "Bought 2 VTI"
    assert fields["Quantity"] == "2" and fields["Price"] == "$390.26" and fields["Amount"] == "$780.52"
    assert fields["Order ref"] == "dca-r1-20261201" and fields["Late"] == "no"
    assert "SIMULATED" in embed["footer"]["text"]


@pytest.mark.parametrize("account, word", [("PAPER", "PAPER account"), ("LIVE", "LIVE account · real money")])
def test_every_message_says_which_account(discord_api, account, word):
    n = Notification("failure", "failed", account, {"symbol": "SPY", "status": "failed", "amount_usd": "500",
                                                     "message": "insufficient funds", "order_ref": "dca-x"})
    DiscordNotifier(discord_api.url).send([n])
    message = discord_api.received[0]
    assert word in message["content"] and word in message["embeds"][0]["footer"]["text"]
    assert "insufficient funds" in message["embeds"][0]["description"]
    assert "What to do" in [f["name"] for f in message["embeds"][0]["fields"]]


def test_a_configured_mention_is_the_only_one_allowed(discord_api):
    n = Notification("failure", "failed", "LIVE", {"symbol": "SPY", "status": "failed",
                                                   "message": "@everyone look <@&999999999>"}, mention="<@&123456789>")
    DiscordNotifier(discord_api.url).send([n])
    body = discord_api.requests[-1].body
    assert body["allowed_mentions"] == {"parse": [], "roles": ["123456789"]}
    assert body["content"].startswith("<@&123456789>")


def test_oversized_text_is_cut_with_an_ellipsis_and_accepted(discord_api):
    huge = "reason " * 3000  # 21,000 characters from a broker or a sheet
    n = success(symbol="S" * 300, ref="r" * 2000, message=huge)
    embed = embed_for(n)
    assert len(embed["title"]) == 256 and embed["title"].endswith("…")
    assert embed["description"].endswith("…") and len(embed["description"]) <= 4096
    assert all(len(f["value"]) <= 1024 for f in embed["fields"]) and embed_size(embed) <= 6000
    DiscordNotifier(discord_api.url).send([n])
    assert discord_api.received  # Discord took it: nothing over a limit
    system = Notification("system", "Plan error: " + "x" * 9000, "SIMULATED")
    assert limit_errors({"embeds": [embed_for(system)]}) == []


def test_webhook_url_must_be_a_discord_webhook_and_is_never_repeated():
    assert check_webhook_url("https://discord.com/api/webhooks/123/abc-DEF_1")
    with pytest.raises(ValueError, match="https://"):
        check_webhook_url("http://discord.com/api/webhooks/123/abcdefSECRET")
    with pytest.raises(ValueError) as refused:
        check_webhook_url("https://example.com/hooks/abcdefSECRET")
    assert "abcdefSECRET" not in str(refused.value)


# -- failures of delivery, and what they do --------------------------------------------------


def test_requests_errors_never_show_the_token(caplog):
    caplog.set_level(logging.DEBUG)
    notifier = DiscordNotifier(f"http://127.0.0.1:9/api/webhooks/{WEBHOOK_ID}/{TOKEN}")  # nothing listens
    with pytest.raises(NotifyError) as failure:
        notifier.send([success()])
    assert "could not reach Discord" in str(failure.value)
    assert TOKEN not in str(failure.value) and failure.value.__cause__ is None
    assert TOKEN not in notifier.description and WEBHOOK_ID in notifier.description
    assert TOKEN not in caplog.text


def test_429_waits_retry_after_then_resends_once(discord_api, clock, ledger):
    discord_api.script = [(429, 0.75)]
    queue(ledger, [success()])
    result = deliver_notifications(ledger, DiscordNotifier(discord_api.url), clock=clock)
    assert result == {"delivered": 1, "waiting": 0}
    assert clock.slept == [0.75]
    assert len(discord_api.received) == 1 and len(discord_api.requests) == 2


def test_rate_limit_headers_are_read_so_no_429_is_hit(discord_api, clock, ledger):
    discord_api.limit, discord_api.window = 1, 2.0  # one message per 2 s of the fake clock
    queue(ledger, [success(ref=f"dca-r{i}") for i in range(25)])
    result = deliver_notifications(ledger, DiscordNotifier(discord_api.url), clock=clock, budget_seconds=60)
    assert result == {"delivered": 25, "waiting": 0}
    assert [len(m["embeds"]) for m in discord_api.received] == [10, 10, 5]
    assert clock.slept == [2.0, 2.0, 2.0]  # X-RateLimit-Remaining 0: wait Reset-After before the next
    assert len(discord_api.requests) == 3  # never a 429


def test_a_429_longer_than_the_budget_leaves_the_rest_for_later(discord_api, clock, ledger):
    discord_api.script = [(429, 30.0)]
    queue(ledger, [success()])
    result = deliver_notifications(ledger, DiscordNotifier(discord_api.url), clock=clock, budget_seconds=5)
    assert result["delivered"] == 0 and result["waiting"] == 1 and "rate-limiting" in result["error"]
    assert clock.slept == []  # never waits past the budget
    assert deliver_notifications(ledger, DiscordNotifier(discord_api.url), clock=clock)["delivered"] == 1


def test_5xx_backs_off_briefly_then_waits_for_the_next_pass(discord_api, clock, ledger):
    discord_api.script = [500, 502, 503, 500]
    queue(ledger, [success()])
    result = deliver_notifications(ledger, DiscordNotifier(discord_api.url), clock=clock)
    assert result["delivered"] == 0 and result["waiting"] == 1 and "HTTP 500" in result["error"]
    assert clock.slept == [0.5, 1.0, 2.0]  # bounded back-off within the pass
    [item] = ledger.undelivered("notify")
    assert item.attempts == 1  # one attempt per pass, however many tries within it
    assert deliver_notifications(ledger, DiscordNotifier(discord_api.url), clock=clock)["delivered"] == 1
    assert len(discord_api.received) == 1


def test_a_refused_message_is_a_dead_letter_and_holds_back_no_other(discord_api, clock, ledger):
    discord_api.refuse = lambda body: any("POISON" in e.get("description", "") for e in body.get("embeds", []))
    items = [success(ref=f"dca-r{i}", message="POISON" if i == 3 else "") for i in range(6)]
    queue(ledger, items)
    result = deliver_notifications(ledger, DiscordNotifier(discord_api.url), clock=clock)
    assert result == {"delivered": 5, "waiting": 0, "given_up": 1}
    assert sent_refs(discord_api) == ["dca-r0", "dca-r1", "dca-r2", "dca-r4", "dca-r5"]  # in order
    [dead] = ledger.given_up("notify")
    assert "refused the message" in dead["last_error"] and "50035" in dead["last_error"]
    assert ledger.undelivered("notify") == []
    assert deliver_notifications(ledger, DiscordNotifier(discord_api.url), clock=clock) == {"delivered": 0,
                                                                                           "waiting": 0}


@pytest.mark.parametrize("status, code", [(404, 10015), (401, 50027)])
def test_a_deleted_webhook_stops_delivery_until_the_url_changes(discord_api, clock, ledger, status, code):
    discord_api.script = [status]
    # The first message (10 embeds) is refused: its items are dead letters; the rest wait.
    queue(ledger, [success(ref=f"dca-r{i}") for i in range(10)] + [
        Notification("system", "Order in doubt: SPY", "SIMULATED"), Notification("system", "Plan error", "SIMULATED")])
    result = deliver_notifications(ledger, DiscordNotifier(discord_api.url), clock=clock)
    assert result["given_up"] == 10 and result["waiting"] == 2 and "refuses the webhook" in result["error"]
    assert str(code) in ledger.given_up("notify")[0]["last_error"]
    [problem] = ledger.notify_problems().values()
    assert "DCA_DISCORD_WEBHOOK_URL" in problem["body"]
    posts = len(discord_api.requests)
    again = deliver_notifications(ledger, DiscordNotifier(discord_api.url), clock=clock)
    assert again["waiting"] == 2 and len(discord_api.requests) == posts  # not even tried: nothing lost
    other = DiscordNotifier(discord_api.url + "/")  # a new URL (here: the same webhook, fixed)
    assert deliver_notifications(ledger, other, clock=clock)["delivered"] == 2


def test_a_dropped_answer_is_sent_again_a_duplicate_rather_than_a_loss(discord_api, clock, ledger):
    discord_api.script = ["drop_after_store"]
    queue(ledger, [success(ref="dca-once")])
    first = deliver_notifications(ledger, DiscordNotifier(discord_api.url), clock=clock)
    assert first["waiting"] == 0 or first["delivered"] == 0
    while ledger.undelivered("notify"):
        deliver_notifications(ledger, DiscordNotifier(discord_api.url), clock=clock)
    assert sent_refs(discord_api).count("dca-once") == 2  # Discord has no idempotency key


def test_big_embeds_are_split_into_messages_of_at_most_6000_characters(discord_api, clock, ledger):
    queue(ledger, [success(ref=f"dca-r{i}", message="m" * 1500) for i in range(10)])
    result = deliver_notifications(ledger, DiscordNotifier(discord_api.url), clock=clock)
    assert result == {"delivered": 10, "waiting": 0}
    sizes = [sum(embed_size(e) for e in m["embeds"]) for m in discord_api.received]
    assert [len(m["embeds"]) for m in discord_api.received] == [3, 3, 3, 1] and all(size <= 6000 for size in sizes)
    assert len(discord_api.requests) == 4  # none refused: they were cut to fit before sending
    assert sent_refs(discord_api) == [f"dca-r{i}" for i in range(10)]


def test_a_timeout_keeps_the_message_for_later_and_says_it_may_have_arrived(discord_api, clock, ledger):
    discord_api.script = [("slow", 0.3)]
    queue(ledger, [success(ref="dca-slow")])
    notifier = DiscordNotifier(discord_api.url, timeout=(1.0, 0.05))
    result = deliver_notifications(ledger, notifier, clock=clock)
    assert result["waiting"] == 1 and "did not answer within 0.05 s" in result["error"]
    assert "sent again later" in result["error"]
    assert clock.slept == []  # a timeout is not retried within the pass
    assert deliver_notifications(ledger, notifier, clock=clock)["delivered"] == 1
    assert sent_refs(discord_api) == ["dca-slow", "dca-slow"]  # stored the first time too: a duplicate, no loss


def test_endless_429s_with_no_wait_end_the_pass_rather_than_spin(discord_api, clock, ledger):
    discord_api.storm = lambda n: (429, 0.0)
    queue(ledger, [success()])
    result = deliver_notifications(ledger, DiscordNotifier(discord_api.url), clock=clock)
    assert result["waiting"] == 1 and "rate-limiting" in result["error"]
    assert len(discord_api.requests) == 21  # 20 honoured, then left for the next pass
