"""Which notifications are sent: per kind, per row, presets, and who is mentioned.

Kinds: success (filled or placed), failure (the broker said no, or an error), skipped,
missed, summary (one per run that recorded anything), system (problems: the plan
unreadable, an order in doubt, a row error, ...).

Defaults: everything, except that per-execution successes are folded into the run's
summary when the run has more than a handful (5) of them, so a big run sends a summary
listing what was bought rather than sixty messages. Presets start from nothing but
system problems (which no preset silences: a person must never learn of a problem from
a silence) and switch on: "failures only" → failure; "successes only" → success;
"summary only" → summary; "all" → every kind, successes always one by one.
Per-kind settings (`success=off,skipped=off`) and per-row ones apply on top: with
`row:r2f0ebbf9b1=off` that row's executions are not notified one by one (the summary
still counts them); with `row:r2f0ebbf9b1=on` they always are, whatever their kind's
setting, and never folded. A mention (a user `<@123>` or a role `<@&456>`) goes with failures and system
problems only, and Discord is told to allow that one mention and no other.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Any, Iterable, Mapping, Sequence

from dca.ports import NOTIFICATION_KINDS, Notification

HANDFUL = 5

PRESETS: dict[str, dict[str, str]] = {
    "default": {"success": "auto", "failure": "on", "skipped": "on", "missed": "on", "summary": "on", "system": "on"},
    "all": {k: "on" for k in NOTIFICATION_KINDS},
    "failures only": {**{k: "off" for k in NOTIFICATION_KINDS}, "failure": "on", "system": "on"},
    "successes only": {**{k: "off" for k in NOTIFICATION_KINDS}, "success": "on", "system": "on"},
    "summary only": {**{k: "off" for k in NOTIFICATION_KINDS}, "summary": "on", "system": "on"},
}
_VALUES = ("on", "off", "auto")
MENTIONED_KINDS = ("failure", "system")


def parse_preset(value: Any) -> str:
    text = " ".join(str(value).strip().lower().replace("-", " ").replace("_", " ").split())
    if text not in PRESETS:
        raise ValueError(f"'{value}' is not a preset (choose from: {', '.join(PRESETS)})")
    return text


def parse_rules(value: Any) -> dict[str, str]:
    """'success=off,skipped=off,row:r1=off' or a TOML table {success = "off"}."""
    if isinstance(value, Mapping):
        items = [(str(k), str(v)) for k, v in value.items()]
    else:
        items = []
        for part in (p.strip() for p in str(value).split(",") if p.strip()):
            key, sep, setting = part.partition("=")
            if not sep:
                raise ValueError(f"'{part}' should be KIND=on|off, e.g. success=off or row:r1=off")
            items.append((key, setting))
    rules = {}
    for key, setting in items:
        key, setting = key.strip(), setting.strip().lower()
        if key.lower().startswith("row:"):
            if not key[4:].strip() or setting not in ("on", "off"):
                raise ValueError(f"'{key}={setting}': a row rule is row:<row ID>=on|off")
            rules["row:" + key[4:].strip()] = setting
            continue
        kind = key.lower()
        if kind not in NOTIFICATION_KINDS:
            raise ValueError(f"unknown kind '{key}' (choose from: {', '.join(NOTIFICATION_KINDS)}, or row:<ID>)")
        if setting not in _VALUES or (setting == "auto" and kind != "success"):
            allowed = "on, off or auto" if kind == "success" else "on or off"
            raise ValueError(f"'{key}={setting}': {kind} can be {allowed}")
        rules[kind] = setting
    return rules


def parse_mention(value: Any) -> str:
    """'<@123>' or 'user:123' (a user), '<@&456>' or 'role:456' (a role) -> Discord's form."""
    text = str(value).strip()
    if not text:
        return ""
    m = re.fullmatch(r"<@!?(\d{5,25})>|user:(\d{5,25})", text)
    if m:
        return f"<@{m[1] or m[2]}>"
    m = re.fullmatch(r"<@&(\d{5,25})>|role:(\d{5,25})", text)
    if m:
        return f"<@&{m[1] or m[2]}>"
    raise ValueError(f"'{text[:40]}' is not a mention; give user:<id> or role:<id> (Discord: right-click > Copy ID), "
                     "or <@id> / <@&id>; @everyone and @here are never allowed")


@dataclass(frozen=True)
class Rules:
    preset: str = "default"
    overrides: Mapping[str, str] = field(default_factory=dict)
    mention: str = ""
    handful: int = HANDFUL

    @classmethod
    def from_settings(cls, settings) -> "Rules":
        return cls(getattr(settings, "notify_preset", "default") or "default",
                   dict(getattr(settings, "notify_rules", {}) or {}),
                   getattr(settings, "notify_mention", "") or "")

    def setting(self, kind: str) -> str:
        if kind == "test":
            return "on"
        return self.overrides.get(kind, PRESETS[self.preset].get(kind, "on"))

    def select(self, items: Sequence[tuple[int | None, Notification]]) -> list[Notification | None]:
        """For each (execution id, notification): the notification to send (with its
        mention), or None when the rules say not to send it. A summary whose run's
        successes are folded into it lists them."""
        folded = self._folded(n for _, n in items)
        out: list[Notification | None] = []
        for execution_id, n in items:
            setting = self.setting(n.kind)
            row = n.details.get("row_id") if n.details and n.kind not in ("summary", "system") else None
            row_rule = self.overrides.get(f"row:{row}") if row else None
            if row_rule == "off" or (row_rule is None and setting == "off"):
                out.append(None)
                continue
            if n.kind == "success" and setting == "auto" and execution_id in folded and row_rule != "on":
                out.append(None)
                continue
            if n.kind == "summary":
                lines = n.details.get("success_lines") or []
                if setting == "on" and len(lines) > self.handful and self.setting("success") == "auto":
                    n = replace(n, details={**n.details, "folded": lines})
            if self.mention and n.kind in MENTIONED_KINDS:
                n = replace(n, mention=self.mention)
            out.append(n)
        return out

    def _folded(self, notifications: Iterable[Notification]) -> set[int]:
        """Execution ids of successes that a summary takes in (a run with more than a
        handful). Without a summary queued (a crash before it), each is sent by itself."""
        folded: set[int] = set()
        if self.setting("success") != "auto" or self.setting("summary") != "on":
            return folded
        for n in notifications:
            if n.kind == "summary":
                ids = n.details.get("successes") or []
                if len(ids) > self.handful:
                    folded.update(ids)
        return folded
