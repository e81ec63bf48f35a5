"""A local Discord webhook, for the real `requests` code to talk to over real HTTP.

It behaves as Discord's Execute Webhook does where it matters to us:
- `POST /api/webhooks/<id>/<token>`; with `?wait=true` it answers 200 and the stored
  message, without it 204 (and the message may be dropped: `drop_without_wait`).
- Limits: content 2,000; 10 embeds; 6,000 characters across a message's embeds; title
  256, description 4,096, 25 fields, field name 256, value 1,024, footer 2,048, author
  256; an empty message is refused. Over a limit: 400 code 50035 "Invalid Form Body"
  with Discord's nested `errors`.
- A wrong token: 401 code 50027; an unknown (deleted) webhook: 404 code 10015.
- A rate-limit bucket (`limit` requests per `window` seconds of an injected clock, so
  tests travel in time): every answer has `X-RateLimit-Limit/Remaining/Reset/Reset-After`
  and `X-RateLimit-Bucket`; over the limit: 429 with `retry_after` (float seconds),
  `global`, `Retry-After` (whole seconds, rounded up) and `X-RateLimit-Scope`.
- A payload it refuses whatever its size (`refuse`), to stand for what no truncation fixes.
- Scripted answers for the next requests (`script`): 429 (with retry_after), 5xx, 404,
  401, 400, "drop" (the connection closes with no answer, after the message is stored
  or not: `"drop_after_store"`), `("slow", seconds)` (stored, answered late).

`received` holds every stored message in order; `requests` every request as it came.
"""

from __future__ import annotations

import json
import math
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable
from urllib.parse import parse_qs, urlsplit

WEBHOOK_ID = "112233445566778899"
TOKEN = "sEcReT-t0ken_ABCdef123456"


def _err(path: str, message: str, code: str = "BASE_TYPE_MAX_LENGTH") -> tuple[str, dict]:
    return path, {"_errors": [{"code": code, "message": message}]}


def _nest(errors: list[tuple[str, dict]]) -> dict:
    out: dict = {}
    for path, leaf in errors:
        node = out
        parts = path.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = leaf
    return out


def limit_errors(payload: Any) -> list[tuple[str, dict]]:
    """What Discord would refuse in this payload, as (path, error) pairs."""
    if not isinstance(payload, dict):
        return [("_root", {"_errors": [{"code": "DICT_TYPE_CONVERT", "message": "Only dictionaries may be used"}]})]
    errors = []

    def check(path: str, value: Any, most: int) -> None:
        if value is not None and len(str(value)) > most:
            errors.append(_err(path, f"Must be {most} or fewer in length."))

    check("content", payload.get("content"), 2000)
    embeds = payload.get("embeds") or []
    if len(embeds) > 10:
        errors.append(_err("embeds", "Must be 10 or fewer in length."))
    total = 0
    for i, embed in enumerate(embeds):
        check(f"embeds.{i}.title", embed.get("title"), 256)
        check(f"embeds.{i}.description", embed.get("description"), 4096)
        fields = embed.get("fields") or []
        if len(fields) > 25:
            errors.append(_err(f"embeds.{i}.fields", "Must be 25 or fewer in length."))
        for j, f in enumerate(fields):
            check(f"embeds.{i}.fields.{j}.name", f.get("name"), 256)
            check(f"embeds.{i}.fields.{j}.value", f.get("value"), 1024)
            if not f.get("name") or not f.get("value"):
                errors.append(_err(f"embeds.{i}.fields.{j}", "This field is required", "BASE_TYPE_REQUIRED"))
        footer = (embed.get("footer") or {}).get("text")
        author = (embed.get("author") or {}).get("name")
        check(f"embeds.{i}.footer.text", footer, 2048)
        check(f"embeds.{i}.author.name", author, 256)
        total += sum(len(str(x or "")) for x in (embed.get("title"), embed.get("description"), footer, author))
        total += sum(len(str(f.get("name") or "")) + len(str(f.get("value") or "")) for f in fields)
    if total > 6000:
        errors.append(_err("embeds", "Embed size exceeds maximum size of 6000", "MAX_EMBED_SIZE_EXCEEDED"))
    return errors


@dataclass
class Request:
    path: str
    query: dict
    headers: dict
    body: Any


@dataclass
class DiscordWebhook:
    """Start with `start()` (or use the `discord_api` fixture); `url` is the webhook URL."""

    clock: Callable[[], float] = time.monotonic  # the bucket's time (a test gives a FakeClock's)
    limit: int = 5  # requests per window, like a webhook's bucket
    window: float = 2.0
    known: bool = True  # False: the webhook was deleted (404 10015)
    drop_without_wait: bool = False  # without ?wait=true, answer 204 and store nothing
    script: list = field(default_factory=list)  # answers for the next requests, then normal
    storm: Callable[[int], Any] | None = None  # request number -> a scripted answer or None
    refuse: Callable[[dict], bool] | None = None  # a payload it refuses (400 50035) whatever its size
    received: list[dict] = field(default_factory=list)
    requests: list[Request] = field(default_factory=list)
    _window_start: float | None = None
    _used: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> "DiscordWebhook":
        webhook = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def do_POST(self):
                webhook._handle(self)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    @property
    def url(self) -> str:
        return f"{self.base}/api/webhooks/{WEBHOOK_ID}/{TOKEN}"

    # -- the webhook ----------------------------------------------------------------------

    def _bucket(self) -> tuple[bool, float]:
        """(allowed, seconds until the window resets), consuming one request if allowed."""
        now = self.clock()
        if self._window_start is None or now >= self._window_start + self.window:
            self._window_start, self._used = now, 0
        reset_after = self._window_start + self.window - now
        if self._used >= self.limit:
            return False, reset_after
        self._used += 1
        return True, reset_after

    def _rate_headers(self, reset_after: float) -> dict:
        return {"X-RateLimit-Limit": str(self.limit), "X-RateLimit-Remaining": str(max(self.limit - self._used, 0)),
                "X-RateLimit-Reset": f"{1_700_000_000 + self.clock() + reset_after:.3f}",
                "X-RateLimit-Reset-After": f"{reset_after:.3f}", "X-RateLimit-Bucket": "b0e5fa1c7e"}

    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(h.path)
        length = int(h.headers.get("Content-Length") or 0)
        raw = h.rfile.read(length)
        try:
            body = json.loads(raw or b"null")
        except ValueError:
            body = None
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        with self._lock:
            number = len(self.requests)
            self.requests.append(Request(parts.path, query, dict(h.headers), body))
            scripted = self.script.pop(0) if self.script else (self.storm(number) if self.storm else None)
            self._answer(h, parts.path, query, body, scripted)

    def _answer(self, h, path: str, query: dict, body: Any, scripted: Any) -> None:
        def send(status: int, payload: Any = None, headers: dict | None = None) -> None:
            data = b"" if payload is None else json.dumps(payload).encode()
            try:
                h.send_response(status)
                for k, v in (headers or {}).items():
                    h.send_header(k, v)
                if payload is not None:
                    h.send_header("Content-Type", "application/json")
                h.send_header("Content-Length", str(len(data)))
                h.end_headers()
                h.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):  # the client gave up waiting (a timeout test)
                h.close_connection = True

        expected = f"/api/webhooks/{WEBHOOK_ID}/"
        if not path.startswith(expected) or not self.known:
            return send(404, {"message": "Unknown Webhook", "code": 10015})
        if path[len(expected):].rstrip("/") != TOKEN:
            return send(401, {"message": "Invalid Webhook Token", "code": 50027})
        if isinstance(scripted, tuple):
            kind, arg = scripted
        else:
            kind, arg = scripted, None
        if kind == 429:
            retry = 0.5 if arg is None else arg
            return send(429, {"message": "You are being rate limited.", "retry_after": retry, "global": False},
                        {"Retry-After": str(math.ceil(retry)), "X-RateLimit-Scope": "shared",
                         "X-RateLimit-Limit": str(self.limit), "X-RateLimit-Remaining": "0",
                         "X-RateLimit-Reset-After": f"{retry:.3f}"})
        if kind in (500, 502, 503, 504):
            return send(kind, {"message": "500: Internal Server Error", "code": 0})
        if kind == 404:
            return send(404, {"message": "Unknown Webhook", "code": 10015})
        if kind == 401:
            return send(401, {"message": "Invalid Webhook Token", "code": 50027})
        if kind == "drop":
            h.close_connection = True
            h.connection.close()
            return
        allowed, reset_after = self._bucket()
        if not allowed:
            return send(429, {"message": "You are being rate limited.", "retry_after": round(reset_after, 3),
                              "global": False},
                        {"Retry-After": str(math.ceil(reset_after)), "X-RateLimit-Scope": "user",
                         **self._rate_headers(reset_after)})
        rate = self._rate_headers(reset_after)
        if kind == 400:
            return send(400, {"message": "Invalid Form Body", "code": 50035,
                              "errors": _nest([_err("content", "Scripted refusal.")])}, rate)
        errors = limit_errors(body)
        if self.refuse and isinstance(body, dict) and self.refuse(body):
            errors.append(_err("embeds.0.description", "Contains words not allowed here.", "CONTENT_REFUSED"))
        if isinstance(body, dict) and not body.get("content") and not body.get("embeds"):
            return send(400, {"message": "Cannot send an empty message", "code": 50006}, rate)
        if errors:
            return send(400, {"message": "Invalid Form Body", "code": 50035, "errors": _nest(errors)}, rate)
        message = {"id": str(1_000_000_000 + len(self.received)), "type": 0, "channel_id": "998877",
                   "webhook_id": WEBHOOK_ID, "content": body.get("content", ""), "embeds": body.get("embeds", []),
                   "allowed_mentions": body.get("allowed_mentions")}
        wait = query.get("wait", "").lower() == "true"
        if not (self.drop_without_wait and not wait):
            self.received.append(message)
        if kind == "slow":  # stored, but the answer comes after `arg` seconds (a client may give up first)
            self._lock.release()  # other requests go on meanwhile
            try:
                time.sleep(arg)
            finally:
                self._lock.acquire()
        if kind == "drop_after_store":
            h.close_connection = True
            h.connection.close()
            return
        if wait:
            return send(200, message, rate)
        return send(204, None, rate)

    # -- for assertions -------------------------------------------------------------------

    def embeds(self) -> list[dict]:
        return [e for m in self.received for e in m["embeds"]]


import pytest  # noqa: E402  (the fixture below is imported by the tests that use it)


@pytest.fixture
def discord_api():
    """A running DiscordWebhook; set `.clock` to a FakeClock's monotonic for its bucket."""
    webhook = DiscordWebhook().start()
    try:
        yield webhook
    finally:
        webhook.stop()
