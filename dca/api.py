"""The HTTP API: the original system's REST paths on FastAPI, for scripts (`curl`) and
TradingView alerts. Thin: every endpoint reads its input, calls one `dca` function and
returns its answer; no business rule lives here.

Every endpoint but `/health` (and the docs, open on localhost only) needs the bearer
token. `/webhooks/tradingview` takes none, since TradingView cannot send headers: the
alert's body carries a shared secret instead, checked in constant time. Errors are one
sentence for the person, never a traceback or a secret.
"""

from __future__ import annotations

import hmac
import json
import logging
import os
import secrets
import stat
import threading
import time
from collections import deque
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Callable, Optional

import anyio.to_thread
from fastapi import Depends, FastAPI, Header, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from dca import queries
from dca.bootstrap import Services
from dca.clock_guard import TimeRefused
from dca.errors import ConfigError, DcaError, PlanError
from dca.ledger import LedgerBusy, LedgerReadOnly
from dca.one_off import (
    KeyReused,
    OneOffRefused,
    alert_row_id,
    check_key,
    manual_row_id,
    parse_amount_usd,
    parse_symbol,
    place_one_off,
)
from dca.ports import AccountView
from dca.schedule_rules import NEW_YORK

logger = logging.getLogger(__name__)

TOKEN_FILE = "api-token"
LOOPBACK = ("127.0.0.1", "localhost", "::1")
MAX_ALERT_BYTES = 16 * 1024


# -- the token ------------------------------------------------------------------------------


def ensure_token(configured: str | None, home: Path) -> tuple[str, Path | None]:
    """The API's bearer token: DCA_API_TOKEN if set, else the one kept in the data
    directory (created on first use, readable only by its owner). Returns the token and
    the file it is kept in (None when it came from the configuration)."""
    if configured:
        return configured, None
    path = home / TOKEN_FILE
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            os.chmod(path, 0o600)  # someone loosened it: others must not read the token
            logger.warning("the API token file %s was readable by others; made it readable only by you", path)
        token = path.read_text(encoding="utf-8").strip()
        if len(token) < 16:
            raise ConfigError(f"the API token file {path} holds no usable token; delete it and a new one is made")
        return token, path
    except OSError as e:
        raise ConfigError(f"the API token file {path} cannot be created ({(e.strerror or str(e)).lower()}); "
                          "set DCA_API_TOKEN or make the data folder writable") from e
    token = secrets.token_urlsafe(32)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(token + "\n")
    return token, path


# -- request and response shapes ------------------------------------------------------------


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class OrderIn(Strict):
    symbol: str = Field(description="ticker, e.g. AAPL", max_length=20)
    amount_usd: Decimal = Field(description="dollars to buy, more than 0, at most two decimals")
    dry_run: bool = Field(False, description="show what would be ordered; record and order nothing")


class AlertIn(BaseModel):
    """A TradingView alert's message. Paste this into the alert (see README)."""

    model_config = ConfigDict(extra="ignore")  # TradingView templates often carry more
    secret: str = Field(max_length=500)
    symbol: str = Field(max_length=40, description="{{ticker}}; an exchange prefix (NASDAQ:AAPL) is dropped")
    amount_usd: Decimal
    alert_id: str = Field(min_length=1, max_length=200, description="{{timenow}}: the idempotency key")


class ExecutionOut(BaseModel):
    row_id: str
    row: Optional[int] = None
    symbol: str
    frequency: str
    scheduled_at: str
    status: str
    late: bool
    quantity: Optional[str] = None
    price: Optional[str] = None
    price_source: Optional[str] = None
    amount_usd: Optional[str] = None
    cost: Optional[str] = None
    commission: Optional[str] = None
    carry: Optional[str] = None
    order_ref: Optional[str] = None
    broker_order_id: Optional[str] = None
    broker_status: Optional[str] = None
    message: str = ""
    simulated: bool
    recorded_at: Optional[str] = None
    updated_at: Optional[str] = None
    source: Optional[str] = None  # for one-off buys: manual | tradingview
    key: Optional[str] = None  # ...and the Idempotency-Key or alert id it came with


class OneOffOut(BaseModel):
    execution: Optional[ExecutionOut]
    deferred: Optional[str] = Field(None, description="why nothing was attempted; send the same key again later")
    replayed: bool = Field(description="the key was used before: this is the answer recorded then")
    dry_run: bool
    simulated: bool
    broker: str


class RunOut(BaseModel):
    as_of: str
    broker: str
    simulated: bool
    dry_run: bool
    ok: bool
    executions: list[ExecutionOut]
    errors: list[dict[str, Any]]
    warnings: list[dict[str, Any]]
    deferred: list[dict[str, Any]]
    summary: dict[str, Any]
    delivery: dict[str, Any]


class HistoryOut(BaseModel):
    total: int
    limit: int
    offset: int
    items: list[ExecutionOut]


class PartOut(BaseModel):
    ok: bool
    detail: str


class HealthOut(BaseModel):
    ok: bool
    mode: str
    parts: dict[str, PartOut]


class StatusOut(BaseModel):
    broker: str
    mode: str = Field(description="SIMULATED, PAPER or LIVE")
    simulated: bool
    plan: str
    last_run: Optional[dict[str, Any]]
    counts: dict[str, int]
    outbox: dict[str, int] = Field(description="Log writes and notifications waiting to be delivered")
    worker: Optional[dict[str, Any]]
    next_executions: list[dict[str, Any]]
    done_today: list[dict[str, Any]]
    plan_errors: list[dict[str, Any]]


class PlanOut(BaseModel):
    source: str
    rows: list[dict[str, Any]]
    errors: list[dict[str, Any]]
    warnings: list[dict[str, Any]]


class PositionOut(BaseModel):
    symbol: str
    quantity: str
    cost: Optional[str]
    market_value: Optional[str]


class AccountOut(BaseModel):
    broker: str
    mode: str
    cash: Optional[str]
    net_liquidation: Optional[str]
    currency: str
    positions: list[PositionOut]
    note: str


class NotificationOut(BaseModel):
    sent: bool
    notifier: str


# -- rate limiting --------------------------------------------------------------------------


class RateLimit:
    """At most `count` calls per `seconds`, over all callers (one person's system: the
    point is to stop a runaway script or page, not to share fairly)."""

    def __init__(self, count: int, seconds: float, monotonic: Callable[[], float] = time.monotonic):
        self.count, self.seconds, self.monotonic = count, seconds, monotonic
        self._calls: deque[float] = deque()
        self._lock = threading.Lock()

    def check(self) -> None:
        with self._lock:
            now = self.monotonic()
            while self._calls and now - self._calls[0] >= self.seconds:
                self._calls.popleft()
            if len(self._calls) >= self.count:
                wait = max(1, int(self.seconds - (now - self._calls[0])) + 1)
                raise HTTPException(429, f"too many order requests: at most {self.count} per {self.seconds:g} s; "
                                         f"try again in {wait} s", headers={"Retry-After": str(wait)})
            self._calls.append(now)


# -- the app --------------------------------------------------------------------------------

_STATUS_OF = [  # the most specific first
    (OneOffRefused, 422), (KeyReused, 409), (TimeRefused, 409), (LedgerBusy, 503), (LedgerReadOnly, 503),
    (PlanError, 503), (ConfigError, 500), (DcaError, 400),
]


def create_app(services: Services, token: str, *, now: Callable[[], datetime] | None = None,
               order_limit: RateLimit | None = None, docs: bool = True) -> FastAPI:
    """The API over `services`. `now` gives the moment each request acts as of (tests
    travel in time with it); `order_limit` paces the order-placing endpoints."""
    clock = now or (lambda: datetime.now(NEW_YORK))
    limit = order_limit or RateLimit(10, 60.0)
    secret = services.settings.tradingview_secret
    app = FastAPI(title="dca", description="Recurring investments (dollar-cost averaging) for Interactive Brokers.",
                  version="1", docs_url="/docs" if docs else None, redoc_url=None,
                  openapi_url="/openapi.json" if docs else None)
    bearer = HTTPBearer(auto_error=False, description="DCA_API_TOKEN, or the token file `dca api` names")

    def authorized(credentials: HTTPAuthorizationCredentials | None = Depends(bearer)) -> None:
        given = credentials.credentials.encode("utf-8") if credentials else b""
        if not credentials or not hmac.compare_digest(given, token.encode("utf-8")):
            raise HTTPException(401, "a valid bearer token is required (Authorization: Bearer <token>); it is "
                                     "DCA_API_TOKEN, or kept in the file `dca api` printed",
                                headers={"WWW-Authenticate": "Bearer"})

    @app.exception_handler(RequestValidationError)
    def invalid_request(request: Request, error: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": _problems(error.errors())}, status_code=422)

    @app.exception_handler(DcaError)
    def dca_error(request: Request, error: DcaError) -> JSONResponse:
        code = next(c for kind, c in _STATUS_OF if isinstance(error, kind))
        return JSONResponse({"detail": str(error)}, status_code=code)

    @app.exception_handler(Exception)
    def unexpected(request: Request, error: Exception) -> JSONResponse:
        logger.exception("%s %s failed", request.method, request.url.path)
        return JSONResponse({"detail": "internal error; the server's log has the details"}, status_code=500)

    s = services

    @app.get("/health", response_model=HealthOut, tags=["health"],
             responses={503: {"model": HealthOut, "description": "a part does not answer"}})
    def health() -> JSONResponse:
        """Liveness and each part's state; no token needed, no secrets."""
        answer = queries.health(s.plan_source, s.broker, s.ledger, s.notifier, clock())
        return JSONResponse(answer, status_code=200 if answer["ok"] else 503)

    guarded = [Depends(authorized)]

    @app.get("/recurring/status", response_model=StatusOut, dependencies=guarded, tags=["recurring"])
    def status() -> dict:
        """Last run, next executions, counts, outbox backlog, broker mode, worker heartbeat."""
        return queries.status_overview(s.plan_source, s.schedule, s.ledger, s.broker, clock(), s.engine.options)

    @app.get("/recurring/orders", response_model=PlanOut, dependencies=guarded, tags=["recurring"])
    def plan_rows() -> dict:
        """The plan's rows with their parsed values, validation errors and next execution."""
        plan = s.plan_source.load()
        overview = queries.plan_overview(plan, s.schedule, s.ledger, clock(), s.engine.options)
        return {"source": s.plan_source.description, **overview}

    @app.post("/recurring/execute", response_model=RunOut, dependencies=guarded, tags=["recurring"])
    def execute(dry_run: bool = Query(False, description="preview: record and order nothing")) -> dict:
        """Run the engine now: the same lock and exactly-once as every face."""
        if not dry_run:
            limit.check()
        report = s.engine.run(clock(), dry_run=dry_run)
        return {**report.as_dict(), "ok": report.ok}

    @app.post("/recurring/test-notification", response_model=NotificationOut, dependencies=guarded,
              tags=["recurring"])
    def test_notification() -> dict:
        """Send a test notification through the configured notifier."""
        from dca.delivery import account_label, send_test_notification

        error = send_test_notification(s.notifier, account_label(s.broker), clock())
        if error is not None:
            logger.warning("test notification failed: %s", error)
            raise HTTPException(502, f"the notifier ({type(error).__name__}) did not deliver it; "
                                     "the server's log has the details")
        return {"sent": True, "notifier": s.notifier.description}

    @app.get("/recurring/history", response_model=HistoryOut, dependencies=guarded, tags=["recurring"])
    def history(limit_: int = Query(50, alias="limit", ge=1, le=queries.HISTORY_MAX_PAGE),
                offset: int = Query(0, ge=0),
                symbol: Optional[str] = Query(None, max_length=20),
                status: Optional[str] = Query(None, pattern="^(pending|filled|submitted|failed|skipped|missed|error)$"),
                row_id: Optional[str] = Query(None, max_length=40),
                start: Optional[date] = Query(None, description="first scheduled date, YYYY-MM-DD"),
                end: Optional[date] = Query(None, description="last scheduled date, inclusive"),
                kind: Optional[str] = Query(None, pattern="^(plan|manual|tradingview)$")) -> dict:
        """The ledger, newest first, paginated and filterable."""
        return queries.history_page(s.ledger, limit_, offset, symbol, status, row_id, start, end, kind)

    @app.post("/orders", response_model=OneOffOut, dependencies=guarded, tags=["orders"],
              responses={409: {"description": "the Idempotency-Key was used for another order"},
                         503: {"description": "deferred: the broker cannot be used now; nothing was sent"}})
    def order(body: OrderIn, idempotency_key: Optional[str] = Header(None, max_length=200)) -> JSONResponse:
        """A one-off buy, under the plan's guards; the same Idempotency-Key gives the same answer."""
        symbol, amount = parse_symbol(body.symbol), parse_amount_usd(body.amount_usd)
        if idempotency_key is None and not body.dry_run:
            raise HTTPException(400, "an Idempotency-Key header is required (any unique text, e.g. a UUID), "
                                     "so that sending the request again never buys twice")
        key = check_key(idempotency_key or secrets.token_hex(8), "the Idempotency-Key header")
        if not body.dry_run:
            limit.check()
        answer = place_one_off(s.engine, "manual", key, manual_row_id(key), symbol, amount, clock(), body.dry_run)
        return _one_off_response(answer)

    @app.post("/webhooks/tradingview", response_model=OneOffOut, tags=["orders"],
              openapi_extra={"requestBody": {"required": True, "content": {
                  "application/json": {"schema": AlertIn.model_json_schema()}}}},
              responses={401: {"description": "wrong or missing secret: nothing happened"},
                         404: {"description": "off: DCA_TRADINGVIEW_SECRET is not set"}})
    async def tradingview(request: Request) -> JSONResponse:
        """A TradingView alert as a one-off buy; its secret is in the body, not a header."""
        if not secret:
            raise HTTPException(404, "TradingView alerts are off: set DCA_TRADINGVIEW_SECRET to turn them on")
        raw = b""
        async for chunk in request.stream():  # bounded: an alert is a few hundred bytes
            raw += chunk
            if len(raw) > MAX_ALERT_BYTES:
                raise HTTPException(413, f"the body is over {MAX_ALERT_BYTES // 1024} KiB; an alert is a short JSON object")
        try:
            data = json.loads(raw)  # TradingView sends JSON as text/plain: the type is not checked
        except (ValueError, UnicodeDecodeError):
            raise HTTPException(422, "the body is not JSON; paste README's alert message template") from None
        if not isinstance(data, dict):
            raise HTTPException(422, "the body must be a JSON object; paste README's alert message template")
        given = data.get("secret")
        given_bytes = given.encode("utf-8") if isinstance(given, str) else b""
        if not hmac.compare_digest(given_bytes, secret.encode("utf-8")):
            raise HTTPException(401, "wrong or missing secret")
        try:
            alert = AlertIn.model_validate(data)
        except ValidationError as error:
            return JSONResponse({"detail": _problems(error.errors())}, status_code=422)
        symbol = parse_symbol(alert.symbol.rpartition(":")[2])
        amount = parse_amount_usd(alert.amount_usd)
        key = check_key(alert.alert_id, "alert_id")
        limit.check()
        # The engine blocks (the run lock, the broker): off the event loop, as sync endpoints are.
        answer = await anyio.to_thread.run_sync(
            lambda: place_one_off(s.engine, "tradingview", key, alert_row_id(key, symbol), symbol, amount, clock()))
        return _one_off_response(answer)

    @app.get("/account", response_model=AccountOut, dependencies=guarded, tags=["orders"],
             responses={501: {"description": "the broker offers no account view"}})
    def account() -> dict:
        """Cash, net liquidation and positions, as far as the broker tells them."""
        if not isinstance(s.broker, AccountView):
            raise HTTPException(501, f"{s.broker.name} offers no account view")
        view = s.broker.account(clock())

        def text(v):
            return None if v is None else str(v)

        return {"broker": s.broker.name, "mode": queries.broker_mode(s.broker), "cash": text(view.cash),
                "net_liquidation": text(view.net_liquidation), "currency": view.currency, "note": view.note,
                "positions": [{"symbol": p.symbol, "quantity": str(p.quantity), "cost": text(p.cost),
                               "market_value": text(p.market_value)} for p in view.positions]}

    return app


def _one_off_response(answer) -> JSONResponse:
    payload = answer.as_dict()
    if answer.execution is not None and answer.execution.row_id:
        payload["execution"]["source"] = "tradingview" if answer.execution.row_id.startswith("tv-") else "manual"
    # Deferred: nothing was recorded or sent; the same key may be sent again later.
    return JSONResponse(payload, status_code=503 if answer.deferred and answer.execution is None else 200)


def _problems(errors) -> list[dict]:
    """Validation errors without the input they were given (it may be a secret)."""
    return [{"loc": [str(p) for p in e.get("loc", ())], "msg": e.get("msg", ""), "type": e.get("type", "")}
            for e in errors]


def server_config(app: FastAPI, host: str, port: int, log_level: str = "info"):
    import uvicorn

    # No Server banner; uvicorn's access log shows method and path, never a header or body.
    return uvicorn.Config(app, host=host, port=port, log_level=log_level, server_header=False)


def serve(app: FastAPI, host: str, port: int) -> None:
    import uvicorn

    uvicorn.Server(server_config(app, host, port)).run()
