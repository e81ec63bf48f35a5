"""Notification rules: per kind, per row, presets, folding successes, mentions."""

from __future__ import annotations

import pytest

from dca.errors import ConfigError
from dca.notify.rules import Rules, parse_mention, parse_preset, parse_rules
from dca.ports import Notification
from dca.settings import load_settings


def n(kind: str, row_id: str = "r1", **details) -> Notification:
    return Notification(kind, kind, "SIMULATED", {"row_id": row_id, **details})


def summary(successes: list[int]) -> Notification:
    return Notification("summary", "Run summary", "SIMULATED",
                        {"successes": successes, "success_lines": [f"line {i}" for i in successes]})


def kinds(rules: Rules, items) -> list[str | None]:
    return [None if x is None else x.kind for x in rules.select(items)]


EVERY_KIND = [(1, n("success")), (2, n("failure")), (3, n("skipped")), (4, n("missed")),
              (None, summary([1])), (None, n("system"))]


def test_defaults_send_everything_for_a_small_run():
    assert kinds(Rules(), EVERY_KIND) == ["success", "failure", "skipped", "missed", "summary", "system"]


def test_defaults_fold_more_than_a_handful_of_successes_into_the_summary():
    items = [(i, n("success")) for i in range(1, 7)] + [(7, n("failure")), (None, summary(list(range(1, 7))))]
    chosen = Rules().select(items)
    assert [c is None for c in chosen[:6]] == [True] * 6  # folded
    assert chosen[6].kind == "failure"  # a failure is never folded
    assert chosen[7].details["folded"] == [f"line {i}" for i in range(1, 7)]


def test_a_handful_is_still_sent_one_by_one():
    items = [(i, n("success")) for i in range(1, 6)] + [(None, summary(list(range(1, 6))))]
    chosen = Rules().select(items)
    assert all(c is not None for c in chosen) and "folded" not in chosen[-1].details


def test_without_their_summary_successes_are_sent_one_by_one():
    # A crash between the outcomes and the summary: nothing is folded into a summary that is not there.
    assert all(Rules().select([(i, n("success")) for i in range(1, 9)]))


@pytest.mark.parametrize("preset, sent", [
    ("failures only", ["failure", "system"]),
    ("successes only", ["success", "system"]),
    ("summary only", ["summary", "system"]),
    ("all", ["success", "failure", "skipped", "missed", "summary", "system"]),
])
def test_presets(preset, sent):
    assert [k for k in kinds(Rules(preset=preset), EVERY_KIND) if k] == sent


def test_all_sends_every_success_even_in_a_big_run():
    items = [(i, n("success")) for i in range(1, 9)] + [(None, summary(list(range(1, 9))))]
    chosen = Rules(preset="all").select(items)
    assert all(chosen) and "folded" not in chosen[-1].details


def test_per_kind_and_per_row_rules_apply_on_top():
    rules = Rules(overrides={"skipped": "off", "missed": "off", "row:r9": "off"})
    items = EVERY_KIND + [(9, n("failure", row_id="r9"))]
    assert kinds(rules, items) == ["success", "failure", None, None, "summary", "system", None]


def test_a_row_switched_on_is_always_sent_one_by_one():
    rules = Rules(preset="failures only", overrides={"row:vip": "on"})
    items = [(1, n("success", row_id="vip")), (2, n("success", row_id="other")), (3, n("skipped", row_id="vip"))]
    assert kinds(rules, items) == ["success", None, "skipped"]
    big = [(i, n("success", row_id="vip" if i == 1 else "r")) for i in range(1, 8)] + [(None, summary(list(range(1, 8))))]
    assert [c is not None for c in Rules(overrides={"row:vip": "on"}).select(big)] == [True] + [False] * 6 + [True]


def test_the_mention_goes_with_failures_and_system_problems_only():
    chosen = Rules(mention="<@&123456>").select(EVERY_KIND)
    assert {c.kind: c.mention for c in chosen} == {"success": "", "failure": "<@&123456>", "skipped": "",
                                                    "missed": "", "summary": "", "system": "<@&123456>"}


def test_parsing_rules_presets_and_mentions():
    assert parse_rules("success=off, Skipped=OFF,row:r2f0=off") == {"success": "off", "skipped": "off",
                                                                   "row:r2f0": "off"}
    assert parse_rules({"summary": "off"}) == {"summary": "off"}
    assert parse_preset("Failures-Only") == "failures only"
    assert parse_mention("role:123456789") == "<@&123456789>" and parse_mention("<@!123456789>") == "<@123456789>"
    with pytest.raises(ValueError, match="unknown kind 'sucess'"):
        parse_rules("sucess=off")
    with pytest.raises(ValueError, match="failure can be on or off"):
        parse_rules("failure=auto")
    with pytest.raises(ValueError, match="should be KIND=on"):
        parse_rules("success")
    with pytest.raises(ValueError, match="@everyone and @here are never allowed"):
        parse_mention("@everyone")
    with pytest.raises(ValueError, match="not a preset"):
        parse_preset("quiet")


def test_settings_carry_the_rules_and_name_the_key_on_a_mistake(tmp_path):
    s = load_settings(environ={"DCA_HOME": str(tmp_path), "DCA_NOTIFY_PRESET": "summary only",
                               "DCA_NOTIFY_RULES": "failure=on", "DCA_NOTIFY_MENTION": "user:5555555"}, dotenv=None)
    rules = Rules.from_settings(s)
    assert (rules.preset, dict(rules.overrides), rules.mention) == ("summary only", {"failure": "on"}, "<@5555555>")
    with pytest.raises(ConfigError, match=r"\$DCA_NOTIFY_RULES: unknown kind"):
        load_settings(environ={"DCA_HOME": str(tmp_path), "DCA_NOTIFY_RULES": "sucess=off"}, dotenv=None)
    toml = tmp_path / "dca.toml"
    toml.write_text('[notify]\npreset = "failures only"\nrules = { skipped = "off" }\n')
    s = load_settings(toml, environ={"DCA_HOME": str(tmp_path)}, dotenv=None)
    assert s.notify_preset == "failures only" and s.notify_rules == {"skipped": "off"}
    toml.write_text('[notify]\ndiscord_webhook_url = "https://discord.com/api/webhooks/1/abc"\n')
    with pytest.raises(ConfigError, match="looks like a secret"):
        load_settings(toml, environ={"DCA_HOME": str(tmp_path)}, dotenv=None)
