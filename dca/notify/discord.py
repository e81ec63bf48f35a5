"""Discord notifications through a webhook, as embeds that stay within Discord's limits.

What Discord does that shapes this (see tests/fakes/discord_api.py, which behaves so):
- Without `?wait=true` a webhook answers 204 before the message is stored, and a dropped
  message looks like success; with it, the answer is the stored message. We always wait.
- A message holds at most 10 embeds and 6,000 characters across them (titles,
  descriptions, field names and values, footers, author names); a title 256, a
  description 4,096, a field name 256, a value 1,024, 25 fields; content 2,000. Longer
  gets 400 code 50035, so everything is cut with "…" here first.
- 429 carries `retry_after` (float seconds) and `Retry-After` / `X-RateLimit-*` headers;
  every answer says how many requests the bucket has left (`X-RateLimit-Remaining`) and
  when it refills (`X-RateLimit-Reset-After`). Nothing is hard-coded: we read them.
- 404 code 10015 (Unknown Webhook) and 401 code 50027 (Invalid Webhook Token) are
  permanent: the webhook was deleted or its URL is wrong.
- There is no idempotency key: a timeout after Discord stored a message means a resend
  duplicates it. A rare duplicate is preferred to a loss.
- Text from the plan could say @everyone: `allowed_mentions` allows no mention at all but
  the one configured.

The webhook URL is a secret (its token lets anyone post): it never appears in a
description, an error or a log line; `requests` puts URLs in its exception texts, so
those are redacted before they go anywhere.
"""

from __future__ import annotations

import hashlib
import logging
import re
from typing import Any, Mapping, Sequence
from urllib.parse import urlsplit

from dca.errors import ConfigError, NotifyError
from dca.logs import redact, register_secret
from dca.ports import Notification

logger = logging.getLogger(__name__)

# Discord's limits (docs: Message resource, "Embed Limits"; Execute Webhook).
CONTENT_MAX = 2000
EMBEDS_MAX = 10
EMBED_TOTAL_MAX = 6000
TITLE_MAX = 256
DESCRIPTION_MAX = 4096
FIELDS_MAX = 25
FIELD_NAME_MAX = 256
FIELD_VALUE_MAX = 1024
FOOTER_MAX = 2048
AUTHOR_MAX = 256

ELLIPSIS = "…"
_WEBHOOK_PATH = re.compile(r"/api(?:/v\d+)?/webhooks/(\d+)/([\w.\-]+)/?")
_LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")

COLORS = {"success": 0x2ECC71, "failure": 0xE74C3C, "skipped": 0xF1C40F, "missed": 0xF39C12,
          "summary": 0x3498DB, "system": 0xE67E22, "test": 0x95A5A6}
LABELS = {"SIMULATED": "SIMULATED broker · no real money", "PAPER": "PAPER account · no real money",
          "LIVE": "LIVE account · real money"}


def check_webhook_url(url: str) -> str:
    """The URL if it is a Discord webhook's (https; plain http only to this machine, for
    tests), else a ValueError that does not repeat the URL's token."""
    text = str(url).strip()
    parts = urlsplit(text)
    host = parts.hostname or ""
    if not _WEBHOOK_PATH.fullmatch(parts.path or "") or not host:
        where = f"a URL on {host}" if host else "the value"
        raise ValueError(f"{where} is not a Discord webhook URL (its path is not /api/webhooks/<id>/<token>); "
                         "copy it from the channel's "
                         "Integrations > Webhooks > Copy Webhook URL (https://discord.com/api/webhooks/<id>/<token>)")
    if parts.scheme != "https" and not (parts.scheme == "http" and host in _LOCAL_HOSTS):
        raise ValueError(f"the Discord webhook URL must start with https:// (it is {parts.scheme}://…)")
    return text


def cut(text: Any, limit: int) -> str:
    """At most `limit` characters; a cut ends with "…" so a person sees there was more."""
    text = "" if text is None else str(text)
    return text if len(text) <= limit else text[: limit - 1] + ELLIPSIS


def embed_size(embed: Mapping[str, Any]) -> int:
    """Characters Discord counts towards the 6,000 of a message."""
    size = len(embed.get("title", "")) + len(embed.get("description", ""))
    size += sum(len(f.get("name", "")) + len(f.get("value", "")) for f in embed.get("fields", []))
    size += len(embed.get("footer", {}).get("text", "")) + len(embed.get("author", {}).get("name", ""))
    return size


def _fit(embed: dict) -> dict:
    """Every part within its own limit, and the whole within a message's 6,000."""
    if "title" in embed:
        embed["title"] = cut(embed["title"], TITLE_MAX)
    if "description" in embed:
        embed["description"] = cut(embed["description"], DESCRIPTION_MAX)
    fields = embed.get("fields", [])[:FIELDS_MAX]
    embed["fields"] = [{"name": cut(f["name"], FIELD_NAME_MAX) or "-", "value": cut(f["value"], FIELD_VALUE_MAX) or "-",
                        "inline": f.get("inline", True)} for f in fields]
    if "footer" in embed:
        embed["footer"] = {"text": cut(embed["footer"]["text"], FOOTER_MAX)}
    over = embed_size(embed) - EMBED_TOTAL_MAX
    if over > 0 and embed.get("description"):
        keep = max(1, len(embed["description"]) - over)
        embed["description"] = cut(embed["description"], keep)
        over = embed_size(embed) - EMBED_TOTAL_MAX
    while over > 0 and embed["fields"]:  # only with absurd inputs: drop fields from the end
        embed["fields"].pop()
        over = embed_size(embed) - EMBED_TOTAL_MAX
    return embed


def _money(value: Any) -> str:
    if value in (None, ""):
        return "-"
    try:
        return f"${float(value):,.2f}"
    except (TypeError, ValueError):
        return str(value)


def _field(name: str, value: Any, inline: bool = True) -> dict:
    return {"name": name, "value": "-" if value in (None, "") else str(value), "inline": inline}


def _execution_embed(n: Notification) -> dict:
    d = n.details
    symbol, status = d.get("symbol", "?"), d.get("status", n.kind)
    late = " (late)" if d.get("late") else ""
    fields: list[dict] = []
    if n.kind == "success":
        bought = status == "filled"
        title = (f"Bought {d.get('quantity')} {symbol}" if bought else f"Order placed: {symbol}") + late
        fields += [_field("Quantity", d.get("quantity")), _field("Price", _money(d.get("price"))),
                   _field("Amount", _money(d.get("cost"))), _field("Order ref", d.get("order_ref")),
                   _field("Late", "yes" if d.get("late") else "no")]
        if not bought:
            fields.append(_field("Status", f"{status} ({d.get('broker_status') or 'working'}); the fill is "
                                 "reported when the broker has it", inline=False))
        description = d.get("message") or ""
    elif n.kind == "failure":
        title = f"Not bought: {symbol} {_money(d.get('amount_usd'))}{late}"
        description = f"**Broker's reason:** {d.get('message') or 'none given'}"
        fields += [_field("Amount", _money(d.get("amount_usd"))), _field("Order ref", d.get("order_ref")),
                   _field("What to do", _what_to_do(d), inline=False)]
    else:  # skipped, missed
        title = f"{n.kind.capitalize()}: {symbol} {_money(d.get('amount_usd'))}"
        description = d.get("message") or ""
    fields.append(_field("Scheduled", str(d.get("scheduled_at", ""))[:16].replace("T", " ")))
    if d.get("row"):
        fields.append(_field("Row", f"{d.get('row')} ({d.get('frequency', '')})"))
    return {"title": title, "description": description, "fields": fields}


def _what_to_do(d: Mapping[str, Any]) -> str:
    if d.get("status") == "error":
        return ("Nothing was bought. Check `dca history` and the broker's orders for this reference; the row "
                "is bought again at its next scheduled date.")
    return ("Nothing was bought. Read the broker's reason above (funds, permissions, market hours, symbol), "
            "fix it at the broker or in the plan; the row is tried again at its next scheduled date.")


def _summary_embed(n: Notification) -> dict:
    d = n.details
    counts = d.get("counts") or {}
    title = f"Run summary · {str(d.get('as_of', ''))[:16].replace('T', ' ')} ET"
    lines = list(d.get("folded") or [])
    description = ("**Bought:**\n" + "\n".join(lines)) if lines else ""
    fields = [_field("Executions", ", ".join(f"{v} {k}" for k, v in counts.items()) or "nothing due", inline=False),
              _field("Total spent", _money(d.get("total_spent"))),
              _field("Missed", d.get("missed", 0)), _field("Late", d.get("late", 0)),
              _field("Next run", d.get("next_run") or "-")]
    if d.get("plan_errors"):
        fields.append(_field("Plan errors", d.get("plan_errors")))
    return {"title": title, "description": description, "fields": fields}


def _system_embed(n: Notification) -> dict:
    first = n.text.split(":", 1)[0] if ":" in n.text[:80] else "System"
    title = {"test": "Test message from dca"}.get(n.kind, f"⚠ {first}")
    return {"title": title, "description": n.text}


def embed_for(n: Notification) -> dict:
    if n.kind in ("success", "failure", "skipped", "missed") and n.details:
        embed = _execution_embed(n)
    elif n.kind == "summary" and n.details:
        embed = _summary_embed(n)
    else:
        embed = _system_embed(n)
    embed["color"] = COLORS.get(n.kind, COLORS["system"])
    embed["footer"] = {"text": LABELS.get(n.account, n.account)}
    return _fit(embed)


def _mention_parts(mention: str) -> tuple[str, str] | None:
    m = re.fullmatch(r"<@(&?)(\d+)>", mention or "")
    if not m:
        return None
    return ("roles" if m[1] else "users", m[2])


class DiscordNotifier:
    def __init__(self, url: str, rules=None, *, timeout: tuple[float, float] = (3.05, 5.0), session=None):
        import requests  # here, not at import: quick commands never load it

        try:
            self.url = check_webhook_url(url)
        except ValueError as e:
            raise ConfigError(f"DCA_DISCORD_WEBHOOK_URL: {e}") from None
        shown = _WEBHOOK_PATH.sub(lambda m: f"/api/webhooks/{m[1]}/****", self.url)
        register_secret(self.url, shown)
        register_secret(_WEBHOOK_PATH.search(self.url)[2])  # the token alone, as some libraries log it
        self.rules = rules
        self.timeout = timeout
        self.session = session or requests.Session()
        self._requests = requests
        self.description = f"Discord webhook {shown}"
        self.identity = "discord:" + hashlib.sha256(self.url.encode()).hexdigest()[:16]

    # -- shaping messages ---------------------------------------------------------------

    def pack(self, notifications: Sequence[Notification]) -> int:
        """As many as fit one message: ≤ 10 embeds, ≤ 6,000 characters, one account."""
        total, count = 0, 0
        for n in notifications[:EMBEDS_MAX]:
            size = embed_size(embed_for(n))
            if count and (total + size > EMBED_TOTAL_MAX or n.account != notifications[0].account):
                break
            total += size
            count += 1
        return max(count, 1)

    def payload(self, notifications: Sequence[Notification]) -> dict:
        mentions = list(dict.fromkeys(n.mention for n in notifications if _mention_parts(n.mention)))
        label = LABELS.get(notifications[0].account, notifications[0].account)
        allowed: dict[str, Any] = {"parse": []}
        for mention in mentions:
            kind, ident = _mention_parts(mention)
            allowed.setdefault(kind, []).append(ident)
        content = " ".join(mentions + [f"**{label}**"])
        return {"content": cut(content, CONTENT_MAX), "embeds": [embed_for(n) for n in notifications[:EMBEDS_MAX]],
                "allowed_mentions": allowed}

    # -- sending ------------------------------------------------------------------------

    def send(self, notifications: Sequence[Notification]) -> float:
        payload = self.payload(notifications)
        requests = self._requests
        try:
            response = self.session.post(self.url, params={"wait": "true"}, json=payload, timeout=self.timeout)
        except requests.Timeout:
            raise NotifyError(f"Discord did not answer within {self.timeout[1]:g} s; it may have received the "
                              "message, which is sent again later (a rare duplicate rather than a loss)",
                              may_have_arrived=True) from None
        except requests.RequestException as e:
            # The text of a requests exception names the full URL, token included.
            raise NotifyError(f"could not reach Discord ({type(e).__name__}: {redact(str(e))})") from None
        return self._answer(response)

    def _answer(self, response) -> float:
        status = response.status_code
        try:
            body = response.json()
        except ValueError:
            body = {}
        if not isinstance(body, dict):
            body = {}
        headers = response.headers
        if 200 <= status < 300:
            if headers.get("X-RateLimit-Remaining") == "0":
                return _seconds(headers.get("X-RateLimit-Reset-After")) or 0.0
            return 0.0
        code, text = body.get("code"), redact(str(body.get("message") or response.reason or ""))
        if status == 429:
            wait = _seconds(body.get("retry_after"))
            if wait is None:
                wait = _seconds(headers.get("Retry-After"))
            if wait is None:
                wait = _seconds(headers.get("X-RateLimit-Reset-After"))
            wait = 1.0 if wait is None else wait
            scope = headers.get("X-RateLimit-Scope") or ("global" if body.get("global") else "webhook")
            raise NotifyError(f"Discord is rate-limiting ({scope}); retry after {wait:g} s", status=429,
                              code=code, retry_after=wait)
        if status in (401, 403, 404):
            raise NotifyError(f"Discord refuses the webhook (HTTP {status}, code {code}: {text}): it was deleted "
                              "or its URL is wrong; create a webhook again and set DCA_DISCORD_WEBHOOK_URL, then "
                              "run `dca notify-test`", status=status, code=code, gone=True)
        if status >= 500:
            raise NotifyError(f"Discord had a problem (HTTP {status}); sent again later", status=status, code=code)
        problems = "; ".join(_form_errors(body.get("errors")))[:300]
        raise NotifyError(f"Discord refused the message (HTTP {status}, code {code}: {text}"
                          f"{'; ' + redact(problems) if problems else ''})", status=status, code=code, permanent=True)


def _seconds(value: Any) -> float | None:
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        return None
    if seconds != seconds or seconds < 0:  # nan, negative
        return None
    return min(seconds, 3600.0)


def _form_errors(errors: Any, path: str = "") -> list[str]:
    """Discord's nested 50035 errors as 'embeds.0.title: Must be 256 or fewer in length.'"""
    if not isinstance(errors, dict):
        return []
    out = []
    for key, value in errors.items():
        if key == "_errors" and isinstance(value, list):
            out += [f"{path}: {e.get('message', '')}" for e in value if isinstance(e, dict)]
        else:
            out += _form_errors(value, f"{path}.{key}" if path else str(key))
    return out
