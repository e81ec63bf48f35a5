"""A local stand-in for the IBKR Client Portal gateway, scriptable by tests.

Same paths, JSON shapes and status codes as IBKR documents for the endpoints dca uses
(`/v1/api/...`): auth status, tickle, accounts, `trsrv/stocks`, the market-data snapshot
(with its first-call preflight that carries no fields), order POST with confirmation
questions and `iserver/reply/{id}`, the order list (current day only, lagging after a
submit, empty on the first call and after `force=true`, 1 request per 5 s), trades (up to
7 days, 1 per 5 s), order status, and the portfolio (positions, ledger, summary).

OAuth 1.0a mode (`IbkrGateway(oauth=consumer.server())`, see tests/fakes/ibkr_oauth.py):
`POST oauth/live_session_token` is IBKR's handshake, every other request must be signed
with a live session token (else 401 in IBKR's shape), and the brokerage session opens only
with `POST iserver/auth/ssodh/init` (closed again by `POST logout`).

Tests script it through attributes and `fail(...)`: not authenticated, competing session,
401/429/500 on any path, a slow answer after an order was accepted, questions (known or
not), a rejection with HTTP 200 `{"error": ...}`, a duplicate `cOID`, unknown symbols,
missing snapshot fields, partial fills, fills that come later. Time for pacing and lag is
read from an injectable clock (`monotonic()`), so tests that share a fake clock with the
adapter never sleep; the trading day is `today` (default: today in New York).

Run by hand:  python -m tests.fakes.ibkr_gateway --port 5055
then          IBIND_REST_URL=http://127.0.0.1:5055/v1/api/ DCA_BROKER=ibkr dca run
In OAuth mode: python -m tests.fakes.ibkr_gateway --port 5055 --oauth /tmp/dca-oauth
(writes the consumer's key files there and prints the IBIND_* variables to export).
"""

from __future__ import annotations

import argparse
import json
import re
import threading
import time
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import ROUND_DOWN, Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable
from urllib.parse import parse_qs, urlparse
from zoneinfo import ZoneInfo

from tests.fakes.ibkr_oauth import LST_PATH, OAuthRefused, OAuthServer

NEW_YORK = ZoneInfo("America/New_York")
BASE = "/v1/api/"
DROP = -1  # a scripted "status" that closes the connection without answering

# symbol -> (conid, exchange, company) : a small US universe
UNIVERSE = {
    "AAPL": (265598, "NASDAQ", "APPLE INC"),
    "SPY": (756733, "ARCA", "SPDR S&P 500 ETF TRUST"),
    "VTI": (12340, "ARCA", "VANGUARD TOTAL STOCK MKT ETF"),
    "QQQ": (320227571, "NASDAQ", "INVESCO QQQ TRUST SERIES 1"),
    "VOO": (136155102, "ARCA", "VANGUARD S&P 500 ETF"),
    "IWM": (9579970, "ARCA", "ISHARES RUSSELL 2000 ETF"),
    "TSLA": (76792991, "NASDAQ", "TESLA INC"),
    "MSFT": (272093, "NASDAQ", "MICROSOFT CORP"),
}

KNOWN_QUESTIONS = {
    "o163": "The following order exceeds the price percentage limit",
    "o354": "You are submitting an order without market data. We strongly recommend against this as it may "
            "result in erroneous and unexpected trades. Are you sure you want to submit this order?",
    "o383": "The following order size exceeds the Size Limit of 500. Are you sure you want to submit this order?",
    "o10153": "Order price exceeds the Percentage constraint of 3%.",
}


class RealClock:
    def monotonic(self) -> float:
        return time.monotonic()


@dataclass
class GatewayOrder:
    order_id: int
    order_ref: str
    acct: str
    conid: int
    symbol: str
    quantity: Decimal
    cash_qty: Decimal | None
    tif: str
    order_type: str
    day: date
    accepted_at: float  # on the gateway's clock
    status: str = "PreSubmitted"
    filled: Decimal = Decimal("0")
    avg_price: Decimal | None = None
    executions: list[dict] = field(default_factory=list)
    body: dict = field(default_factory=dict)

    @property
    def remaining(self) -> Decimal:
        return self.quantity - self.filled


@dataclass
class Fault:
    method: str | None
    path: re.Pattern
    status: int
    body: Any
    times: int  # -1: always
    after: bool = False


class IbkrGateway:
    """The state and rules of the emulated gateway; `serve()` puts it on a port."""

    def __init__(self, clock=None, account: str = "DU1234567", accounts: tuple[str, ...] | None = None,
                 oauth: OAuthServer | None = None):
        self.clock = clock or RealClock()
        self.lock = threading.RLock()
        self.accounts = list(accounts or (account,))
        self.oauth = oauth  # None: a gateway someone logged in to in a browser
        self.url = ""  # set by serve(); the signed URLs are checked against it
        self.authenticated = oauth is None  # with OAuth: once ssodh/init opened the brokerage session
        self.connected = True
        self.competing = False
        self.today: date | None = None
        self.stocks: dict[str, list[dict]] = {s: [self._stock_entry(s, *v)] for s, v in UNIVERSE.items()}
        self.prices: dict[str, dict] = {s: {"last": Decimal("100.00"), "prior": Decimal("100.00"), "prefix": "",
                                             "availability": "DpB"} for s in UNIVERSE}
        self.acct_props = {"supportsCashQty": False, "supportsFractions": False}
        self.fractional_symbols: set[str] = set()  # contracts whose rules allow cash-quantity orders
        self.cash = Decimal("100000.00")
        self.positions: dict[str, Decimal] = {}
        self.commission = Decimal("1.00")
        self.preflight = True  # first snapshot for a conid has no fields
        self.snapshot_missing: set[str] = set()  # symbols whose snapshot never has fields
        self.fill_mode = "fill"  # fill | working | partial
        self.partial_fraction = Decimal("0.5")
        self.order_list_lag = 0.0  # seconds after acceptance during which the list omits an order
        self.pace_seconds = 5.0  # /iserver/account/orders and /trades
        self.global_rate: float | None = None  # requests per second; None: unlimited
        self.questions: list[list[str]] = []  # per order POST, the message ids to ask (in turn)
        self.reject_next: list[str] = []  # per order POST: reply 200 {"error": text}
        self.slow_after_accept: list[float] = []  # per order POST: stall this long after accepting
        self.faults: list[Fault] = []
        self.requests: list[tuple[str, str, dict]] = []  # (method, path, body/params)
        self.refused = 0  # requests answered 429
        self.orders: list[GatewayOrder] = []
        self._replies: dict[str, dict] = {}
        self._seen_conids: set[int] = set()
        self._last_paced: dict[str, float] = {}
        self._order_cache_warm = False
        self._last_request_at: float | None = None
        self._tokens = 10.0
        self._next_order_id = 1000
        self._next_reply = 1

    # -- scripting -----------------------------------------------------------------------

    def fail(self, path: str, status: int, times: int = 1, body: Any = None, method: str | None = None,
             after: bool = False) -> None:
        """The next `times` requests whose path (after /v1/api/) matches the regex get
        this status (`times` -1: every one; status DROP: the connection closes unanswered).
        `after`: the request is handled first (an order is placed), then the fault."""
        with self.lock:
            self.faults.append(Fault(method, re.compile(path), status, body, times, after))

    def day(self) -> date:
        return self.today or datetime.now(NEW_YORK).date()

    def order(self, order_ref: str) -> GatewayOrder:
        return next(o for o in self.orders if o.order_ref == order_ref)

    def orders_for(self, order_ref: str) -> list[GatewayOrder]:
        return [o for o in self.orders if o.order_ref == order_ref]

    def fill(self, order_ref: str, quantity: Decimal | None = None, price: Decimal | None = None) -> None:
        """Fill (part of) a working order now, as the market would later."""
        with self.lock:
            o = self.order(order_ref)
            self._execute(o, o.remaining if quantity is None else Decimal(quantity), price)

    def cancel(self, order_ref: str) -> None:
        with self.lock:
            self.order(order_ref).status = "Cancelled"

    def count(self, method: str, pattern: str) -> int:
        return sum(1 for m, p, _ in self.requests if m == method and re.fullmatch(pattern, p))

    @staticmethod
    def _stock_entry(symbol, conid, exchange, name):
        return {"name": name, "chineseName": "", "assetClass": "STK",
                "contracts": [{"conid": conid, "exchange": exchange, "isUS": True}]}

    # -- request dispatch ----------------------------------------------------------------

    def handle(self, method: str, path: str, query: dict, body: Any, authorization: str | None = None,
               raw_query: str = "") -> tuple[int, Any, float]:
        """(status, JSON body, seconds to stall after the state change)."""
        with self.lock:
            answer = self._handle(method, path, query, body, authorization, raw_query)
            if answer[0] == 429:
                self.refused += 1
            return answer

    def _handle(self, method: str, path: str, query: dict, body: Any, authorization: str | None = None,
                raw_query: str = "") -> tuple[int, Any, float]:
        self.requests.append((method, path, body if method == "POST" else query))
        now = self.clock.monotonic()
        for fault in self.faults:
            if fault.times != 0 and (fault.method in (None, method)) and fault.path.fullmatch(path):
                fault.times -= 1 if fault.times > 0 else 0
                if fault.after:
                    self._route(method, path, query, body)
                return fault.status, fault.body or {"error": f"scripted {fault.status}"}, 0.0
        if self.oauth is not None:
            try:
                if method == "POST" and path == LST_PATH:
                    return 200, self.oauth.live_session_token(method, self.url + path, authorization), 0.0
                self.oauth.check(method, self.url + path, raw_query, authorization)
            except OAuthRefused as refused:
                return refused.status, refused.body, 0.0
        if self.global_rate:
            # a token bucket: `global_rate` a second, bursts of as many
            if self._last_request_at is not None:
                self._tokens = min(self.global_rate,
                                   self._tokens + (now - self._last_request_at) * self.global_rate)
            self._last_request_at = now
            if self._tokens < 1 - 1e-9:
                return 429, {"error": "Too many requests"}, 0.0
            self._tokens -= 1
        return self._route(method, path, query, body)

    def _route(self, method: str, path: str, query: dict, body: Any) -> tuple[int, Any, float]:
        for pattern, fn in self._routes:
            m = re.fullmatch(pattern, path)
            if m and fn.__name__.split("_")[0] == method.lower():
                return fn(self, query, body, *m.groups())
        return 404, {"error": f"no such endpoint {method} {path}"}, 0.0

    def _paced(self, key: str) -> bool:
        now = self.clock.monotonic()
        last = self._last_paced.get(key)
        if last is not None and now - last < self.pace_seconds - 1e-9:
            return False
        self._last_paced[key] = now
        return True

    def _needs_auth(self):
        if not self.authenticated:
            return 401, {"error": "not authenticated", "statusCode": 401}, 0.0
        return None

    def post_auth_status(self, q, b):
        return 200, {"authenticated": self.authenticated, "connected": self.connected,
                     "competing": self.competing, "established": self.authenticated,
                     "message": "", "MAC": "00:00:00:00:00:00", "serverInfo": {"serverName": "emulator"}}, 0.0

    def post_ssodh_init(self, q, b):
        """OAuth: open the brokerage session (`compete` takes it over from TWS or the app)."""
        if (b or {}).get("compete", True):
            self.competing = False
        self.authenticated = True
        return 200, {"authenticated": True, "competing": self.competing, "connected": self.connected,
                     "message": "", "MAC": "00:00:00:00:00:00", "serverInfo": {"serverName": "emulator"}}, 0.0

    def post_logout(self, q, b):
        """Ends the brokerage session of this user: every client of it is logged out."""
        self.authenticated = False
        return 200, {"status": True}, 0.0

    def post_tickle(self, q, b):
        return 200, {"session": "emulator-session", "ssoExpires": 0, "collission": False, "userId": 1,
                     "iserver": {"authStatus": {"authenticated": self.authenticated, "competing": self.competing,
                                                "connected": self.connected}}}, 0.0

    def get_accounts(self, q, b):
        if (r := self._needs_auth()):
            return r
        return 200, {"accounts": self.accounts, "acctProps": {a: dict(self.acct_props) for a in self.accounts},
                     "aliases": {a: a for a in self.accounts}, "selectedAccount": self.accounts[0],
                     "isPaper": self.accounts[0].startswith("DU")}, 0.0

    def get_stocks(self, q, b):
        symbols = [s for s in q.get("symbols", [""])[0].split(",") if s]
        return 200, {s: self.stocks[s] for s in symbols if s in self.stocks}, 0.0

    def _conid_symbol(self, conid: int) -> str | None:
        for symbol, entries in self.stocks.items():
            for e in entries:
                if any(c["conid"] == conid for c in e["contracts"]):
                    return symbol
        return None

    def get_snapshot(self, q, b):
        if (r := self._needs_auth()):
            return r
        out = []
        for text in q.get("conids", [""])[0].split(","):
            if not text:
                continue
            conid = int(text)
            item: dict = {"conid": conid, "conidEx": str(conid), "_updated": int(time.time() * 1000)}
            symbol = self._conid_symbol(conid)
            first = conid not in self._seen_conids
            self._seen_conids.add(conid)
            if symbol and not (first and self.preflight) and symbol not in self.snapshot_missing:
                p = self.prices[symbol]
                if p["last"] is not None:
                    item["31"] = f"{p['prefix']}{p['last']}"
                    item["84"] = str(p["last"])
                    item["86"] = str(p["last"])
                if p["prior"] is not None:
                    item["7741"] = str(p["prior"])
                item["6509"] = p["availability"]
                item["55"] = symbol
            out.append(item)
        return 200, out, 0.0

    def get_rules(self, q, b, conid):
        if (r := self._needs_auth()):
            return r
        symbol = self._conid_symbol(int(conid))
        if symbol is None:
            return 400, {"error": f"Invalid conid {conid}"}, 0.0
        types = ["MKT", "LMT"] if symbol in self.fractional_symbols else []
        return 200, {"conid": int(conid), "symbol": symbol, "secType": "STK", "currency": "USD",
                     "rules": {"orderTypes": ["MKT", "LMT", "STP"], "cqtTypes": types, "fraqTypes": types,
                               "defaultSize": 100, "sizeIncrement": 1 if not types else 0.0001,
                               "tifTypes": ["DAY/o,a", "GTC/o,a"]}}, 0.0

    def post_orders(self, q, b, acct):
        if (r := self._needs_auth()):
            return r
        if acct not in self.accounts:
            return 400, {"error": f"Account {acct} is not valid"}, 0.0
        orders = (b or {}).get("orders") or []
        if len(orders) != 1:
            return 400, {"error": "one order per request in this emulator"}, 0.0
        spec = orders[0]
        if self.reject_next:
            return 200, {"error": self.reject_next.pop(0)}, 0.0
        ref = spec.get("cOID")
        if ref and any(o.order_ref == ref and o.day == self.day() for o in self.orders):
            return 400, {"error": f"Local order ID={ref} is already registered."}, 0.0
        symbol = self._conid_symbol(int(spec["conid"]))
        if symbol is None:
            return 200, {"error": f"No trading permissions or unknown contract {spec['conid']}"}, 0.0
        asks = self.questions.pop(0) if self.questions else []
        if asks:
            return 200, self._ask(spec, acct, asks), 0.0
        return self._accept(spec, acct)

    def _ask(self, spec, acct, asks):
        reply_id = f"q{self._next_reply}-{int(self.clock.monotonic() * 1000)}"
        self._next_reply += 1
        self._replies[reply_id] = {"spec": spec, "acct": acct, "rest": asks[1:]}
        mid = asks[0]
        return [{"id": reply_id, "message": [KNOWN_QUESTIONS.get(mid, f"Unscripted question {mid}")],
                 "isSuppressed": False, "messageIds": [mid]}]

    def post_reply(self, q, b, reply_id):
        pending = self._replies.pop(reply_id, None)
        if pending is None:
            return 400, {"error": f"Reply id {reply_id} not found or already answered"}, 0.0
        if not (b or {}).get("confirmed"):
            return 200, {"error": "Order not confirmed; nothing was placed"}, 0.0
        if pending["rest"]:
            return 200, self._ask(pending["spec"], pending["acct"], pending["rest"]), 0.0
        return self._accept(pending["spec"], pending["acct"])

    def _accept(self, spec, acct):
        symbol = self._conid_symbol(int(spec["conid"]))
        price = self.prices[symbol]["last"] or Decimal("100")
        cash = Decimal(str(spec["cashQty"])) if spec.get("cashQty") is not None else None
        quantity = Decimal(str(spec.get("quantity", 0) or 0))
        if cash is not None:
            quantity = (cash / price).quantize(Decimal("0.0001"), rounding=ROUND_DOWN)
        self._next_order_id += 1
        o = GatewayOrder(self._next_order_id, spec.get("cOID") or f"auto{self._next_order_id}", acct,
                         int(spec["conid"]), symbol, quantity, cash, spec.get("tif", "GTC"),
                         spec.get("orderType", ""), self.day(), self.clock.monotonic(), body=dict(spec))
        self.orders.append(o)
        if self.fill_mode == "fill":
            self._execute(o, o.quantity, None)
        elif self.fill_mode == "partial":
            part = (o.quantity * self.partial_fraction).to_integral_value(rounding=ROUND_DOWN) or Decimal("1")
            self._execute(o, min(part, o.quantity), None)
        stall = self.slow_after_accept.pop(0) if self.slow_after_accept else 0.0
        status = "PreSubmitted" if o.status == "Filled" else o.status
        return 200, [{"order_id": str(o.order_id), "order_status": status, "encrypt_message": "1"}], stall

    def _execute(self, o: GatewayOrder, quantity: Decimal, price: Decimal | None) -> None:
        price = Decimal(price) if price is not None else self.prices[o.symbol]["last"] or Decimal("100")
        total = o.filled + quantity
        o.avg_price = ((o.avg_price or Decimal(0)) * o.filled + price * quantity) / total if total else None
        o.filled = total
        o.status = "Filled" if o.filled >= o.quantity else "Submitted"
        self.cash -= price * quantity + self.commission
        self.positions[o.symbol] = self.positions.get(o.symbol, Decimal(0)) + quantity
        moment = datetime.combine(o.day, datetime.now(NEW_YORK).time(), NEW_YORK)
        o.executions.append({
            "execution_id": f"0000e0d5.{o.order_id}.{len(o.executions) + 1:02d}", "symbol": o.symbol, "side": "B",
            "order_description": f"Bot {quantity} @ {price} on ISLAND", "trade_time": f"{moment:%Y%m%d-%H:%M:%S}",
            "trade_time_r": int(moment.timestamp() * 1000), "size": float(quantity), "price": str(price),
            "order_ref": o.order_ref, "submitter": "dca", "exchange": "ISLAND", "commission": str(self.commission),
            "net_amount": float(price * quantity), "account": o.acct, "accountCode": o.acct,
            "company_name": UNIVERSE.get(o.symbol, (0, "", o.symbol))[2], "sec_type": "STK",
            "conid": o.conid, "conidex": str(o.conid), "order_id": o.order_id, "day": o.day.isoformat(),
        })

    def get_live_orders(self, q, b):
        if (r := self._needs_auth()):
            return r
        if not self._paced("orders"):
            return 429, {"error": "Too many requests"}, 0.0
        if q.get("force", ["false"])[0] == "true" or not self._order_cache_warm:
            self._order_cache_warm = True
            return 200, {"orders": [], "snapshot": False}, 0.0
        now = self.clock.monotonic()
        items = [self._list_item(o) for o in self.orders
                 if o.day == self.day() and now - o.accepted_at >= self.order_list_lag - 1e-9]
        return 200, {"orders": items, "snapshot": True}, 0.0

    def _list_item(self, o: GatewayOrder) -> dict:
        return {"acct": o.acct, "conidex": str(o.conid), "conid": o.conid, "orderId": o.order_id,
                "cashCcy": "USD", "sizeAndFills": f"{o.filled}/{o.quantity}", "orderDesc": f"Buy {o.quantity} MKT DAY",
                "description1": o.symbol, "ticker": o.symbol, "secType": "STK", "listingExchange": "NASDAQ.NMS",
                "remainingQuantity": float(o.remaining), "filledQuantity": float(o.filled),
                "totalSize": float(o.quantity), "companyName": UNIVERSE.get(o.symbol, (0, "", o.symbol))[2],
                "status": o.status, "order_ccp_status": o.status,
                "avgPrice": None if o.avg_price is None else str(o.avg_price.quantize(Decimal("0.0001"))),
                "origOrderType": "MARKET", "orderType": "Market", "order_ref": o.order_ref,
                "timeInForce": o.tif, "side": "BUY", "lastExecutionTime_r": int(time.time() * 1000)}

    def get_trades(self, q, b):
        if (r := self._needs_auth()):
            return r
        if not self._paced("trades"):
            return 429, {"error": "Too many requests"}, 0.0
        days = min(int(q.get("days", ["1"])[0]), 7)
        since = self.day() - timedelta(days=days - 1)
        return 200, [e for o in self.orders for e in o.executions if date.fromisoformat(e["day"]) >= since], 0.0

    def get_order_status(self, q, b, order_id):
        if (r := self._needs_auth()):
            return r
        o = next((o for o in self.orders if str(o.order_id) == order_id), None)
        if o is None:
            return 503, {"error": "order not found"}, 0.0  # IBKR answers 503 for an unknown id
        return 200, {"order_id": o.order_id, "conid": o.conid, "symbol": o.symbol, "side": "B",
                     "size": str(o.remaining), "total_size": str(o.quantity), "cum_fill": str(o.filled),
                     "order_status": o.status, "tif": o.tif, "order_type": "MKT", "account": o.acct,
                     "average_price": None if o.avg_price is None else str(o.avg_price.quantize(Decimal("0.0001"))),
                     "order_ref": o.order_ref}, 0.0

    def get_positions(self, q, b, acct, page):
        out = []
        for symbol, qty in self.positions.items():
            conid = UNIVERSE.get(symbol, (0,))[0]
            price = self.prices[symbol]["last"] or Decimal(0)
            out.append({"acctId": acct, "conid": conid, "contractDesc": symbol, "ticker": symbol,
                        "position": float(qty), "mktPrice": float(price), "mktValue": float(price * qty),
                        "currency": "USD", "avgCost": float(price), "avgPrice": float(price), "assetClass": "STK"})
        return 200, out if page == "0" else [], 0.0

    def get_ledger(self, q, b, acct):
        value = sum((self.prices[s]["last"] or 0) * q_ for s, q_ in self.positions.items())
        base = {"currency": "USD", "cashbalance": float(self.cash), "settledcash": float(self.cash),
                "netliquidationvalue": float(self.cash + value), "stockmarketvalue": float(value)}
        return 200, {"USD": {**base, "key": "LedgerList"}, "BASE": {**base, "key": "LedgerList"}}, 0.0

    def get_summary(self, q, b, acct):
        value = sum((self.prices[s]["last"] or 0) * q_ for s, q_ in self.positions.items())
        def amount(v):
            return {"amount": float(v), "currency": "USD", "isNull": False, "timestamp": int(time.time() * 1000)}
        return 200, {"availablefunds": amount(self.cash), "totalcashvalue": amount(self.cash),
                     "netliquidation": amount(self.cash + value), "buyingpower": amount(self.cash * 4)}, 0.0

    _routes: list[tuple[str, Callable]] = [
        (r"iserver/auth/status", post_auth_status),
        (r"iserver/auth/ssodh/init", post_ssodh_init),
        (r"logout", post_logout),
        (r"tickle", post_tickle),
        (r"iserver/accounts", get_accounts),
        (r"trsrv/stocks", get_stocks),
        (r"iserver/marketdata/snapshot", get_snapshot),
        (r"iserver/contract/(\d+)/info-and-rules", get_rules),
        (r"iserver/account/([^/]+)/orders", post_orders),
        (r"iserver/reply/([^/]+)", post_reply),
        (r"iserver/account/orders", get_live_orders),
        (r"iserver/account/trades/?", get_trades),
        (r"iserver/account/order/status/([^/]+)", get_order_status),
        (r"portfolio/([^/]+)/positions/(\d+)", get_positions),
        (r"portfolio/([^/]+)/ledger", get_ledger),
        (r"portfolio/([^/]+)/summary", get_summary),
    ]

    # -- serving -------------------------------------------------------------------------

    def serve(self, port: int = 0) -> "RunningGateway":
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # else each answer waits ~40 ms for a delayed ACK

            def log_message(self, *args):  # quiet in tests
                pass

            def _do(self, method):
                parsed = urlparse(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(raw) if raw else None
                except json.JSONDecodeError:
                    body = None
                if not parsed.path.startswith(BASE):
                    status, payload, stall = 404, {"error": "not under /v1/api/"}, 0.0
                else:
                    status, payload, stall = gateway.handle(method, parsed.path[len(BASE):],
                                                            parse_qs(parsed.query), body,
                                                            self.headers.get("Authorization"), parsed.query)
                if stall:
                    time.sleep(stall)  # real time: it is the client's real timeout it outlasts
                if status == DROP:  # the connection breaks before any answer
                    self.close_connection = True
                    return
                data = json.dumps(payload, default=str).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def do_GET(self):
                self._do("GET")

            def do_POST(self):
                self._do("POST")

        server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        server.daemon_threads = True
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        thread.start()
        running = RunningGateway(self, server, thread)
        self.url = running.url
        return running


@dataclass
class RunningGateway:
    gateway: IbkrGateway
    server: ThreadingHTTPServer
    thread: threading.Thread

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{BASE}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description="IBKR Client Portal gateway emulator (for trying dca by hand)")
    parser.add_argument("--port", type=int, default=5055)
    parser.add_argument("--account", default="DU1234567")
    parser.add_argument("--fill", choices=["fill", "working", "partial"], default="fill")
    parser.add_argument("--lag", type=float, default=2.0, help="seconds a new order is missing from the order list")
    parser.add_argument("--oauth", metavar="DIR", help="OAuth 1.0a mode: the consumer's key files go (or are) in DIR")
    args = parser.parse_args(argv)
    oauth = None
    if args.oauth:
        from tests.fakes.ibkr_oauth import OAuthConsumer

        folder = Path(args.oauth)
        if not (folder / "consumer.json").is_file():  # else the same consumer as last time
            OAuthConsumer.generate().save(folder)
        consumer = OAuthConsumer.load(folder)
        environ = dict(line.split("=", 1) for line in (folder / "oauth.env").read_text().splitlines() if line)
        oauth = consumer.server()
    gateway = IbkrGateway(account=args.account, oauth=oauth)
    gateway.fill_mode = args.fill
    gateway.order_list_lag = args.lag
    running = gateway.serve(args.port)
    print(f"IBKR gateway emulator on {running.url} (account {args.account}); Ctrl-C to stop", flush=True)
    if oauth is not None:
        # Throwaway credentials made for this emulator; the private keys stay in their files.
        print(f"OAuth 1.0a mode. Export these ({Path(args.oauth) / 'oauth.env'} keeps the credentials; "
              "DCA_BROKER and the URL, which changes with the port, are only here):", flush=True)
        for key, value in {"DCA_BROKER": "ibkr", **environ,
                           "IBIND_OAUTH1A_REST_URL": running.url}.items():
            print(f"export {key}={value}", flush=True)
    try:
        running.thread.join()
    except KeyboardInterrupt:
        running.stop()


if __name__ == "__main__":
    main()
