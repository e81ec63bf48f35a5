"""Interactive Brokers through the Client Portal Web API, with the `ibind` client.

The Broker port, honestly answered:

- **One HTTP attempt per submission.** ibind resends a request after a read timeout (and
  after connection errors); for an order POST that can place the order twice. Our client
  has `max_retries=0` for every call, and only reads are retried, by us, where a retry is
  harmless. The `iserver/reply/{id}` POST that confirms a question *is* the submission, and
  gets the same treatment. A timeout, a 5xx or a 429 on either is *in doubt*, never retried.
- **Questions** are confirmed only when every message id is on the configured allow-list;
  any other question is answered "no" (nothing is placed) and the order is refused with a
  message naming the id, so the person can decide.
- **Provably absent** only from the current day's order list, refreshed with `force=true`
  and read again (IBKR answers the forcing call with an empty, unsettled list), marked
  `snapshot: true`, and fetched at least `settle_seconds` after the attempt; for an attempt
  on an earlier day, from the trades of up to 7 days. Anything else is *unknown*.
- **Pacing**: every request goes through one budget (10 per second; the order list and the
  trades 1 per 5 s), measured on an injectable clock so tests never sleep. A 429 puts the
  adapter in a back-off during which nothing is sent, and says so.
- **Paper by default**: a live account (not `DU…`) is refused unless configuration allows it.
- **OAuth 1.0a** (no gateway): dca does the handshake itself, in `readiness()` and whenever
  the live session token is within a minute of its expiry, then opens the brokerage session
  (`iserver/auth/ssodh/init`). A refused handshake is a `Readiness` that says what to check,
  so the due executions are deferred as for a gateway nobody logged in to. A read answered
  401 renews the token once and asks again; an order POST answered 401 is never resent
  blindly: it is in doubt, and the engine proves through the order list that IBKR does not
  have it before it sends it again. ibind's own OAuth side effects are off: no Tickler
  thread (the worker calls `keep_alive()`, one keep-alive, not two), no handshake inside the
  client's constructor, and no `logout` when a client closes (IBKR's logout ends the user's
  brokerage session, which the worker shares with every panel and `dca run`).

ibind reads `IBIND_*` variables at import and logs to files by default; `build_client`
pins its logging before creating the client, never at dca's import time.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
import time
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from typing import Any, Mapping, Sequence

from dca.errors import BrokerUnavailable, ConfigError, DuplicateOrderRef, OrderInDoubt, OrderRejected
from dca.ports import (
    BrokerOrder,
    Clock,
    Found,
    LookupQuery,
    OrderLookup,
    OrderRequest,
    OrderState,
    PriceKind,
    Quote,
    Readiness,
)
from dca.schedule_rules import NEW_YORK

logger = logging.getLogger(__name__)

# Questions confirmed unless configured otherwise. o354 ("no market data"): paper accounts
# without a data subscription get it on every order. dca has already priced the order from
# a snapshot and passed it through its own guards (price sanity, per-order and daily
# maximums), so the missing live feed adds little risk to a small market buy.
DEFAULT_ANSWERS = ("o354",)
ORDERS_PATH = "iserver/account/orders"
TRADES_PATH = "iserver/account/trades"
SLOW_PATHS = (ORDERS_PATH, TRADES_PATH)
SNAPSHOT_FIELDS = "31,84,86,7741,6509,55"
LST_PATH = "oauth/live_session_token"
LST_MARGIN = 60.0  # seconds: a live session token this close to its expiry is renewed before use
OAUTH_HINT = ("check that IBIND_OAUTH1A_CONSUMER_KEY, IBIND_OAUTH1A_ACCESS_TOKEN, "
              "IBIND_OAUTH1A_ACCESS_TOKEN_SECRET, the key files in IBIND_OAUTH1A_SIGNATURE_KEY_FP and "
              "IBIND_OAUTH1A_ENCRYPTION_KEY_FP, IBIND_OAUTH1A_DH_PRIME and IBIND_OAUTH1A_REALM all come from the "
              "same OAuth registration in IBKR's self-service portal")
LOGIN_HINT = ("open the gateway's page (e.g. https://localhost:5000) in a browser and log in with your "
              "IBKR user and two-factor authentication (IBKR asks for this about once a day); what was due "
              "is bought by a later run the same trading day")


_CANCELLED = {"cancelled", "apicancelled"}


class RateLimited(BrokerUnavailable):
    """IBKR answered 429 recently: nothing is sent until the back-off ends."""


# -- pacing -------------------------------------------------------------------------------------


class Pacer:
    """One request budget for the whole process: at most `per_second` requests, and
    `SLOW_PATHS` at most once per `slow_interval`. Thread-safe; waits on the given clock."""

    def __init__(self, clock: Clock, per_second: float = 10.0, slow_interval: float = 5.0,
                 backoff_seconds: float = 60.0):
        self.clock = clock
        self.min_gap = 1.0 / per_second
        self.slow_interval = slow_interval
        self.backoff_seconds = backoff_seconds
        self._lock = threading.Lock()
        self._last: float | None = None
        self._last_slow: dict[str, float] = {}
        self._blocked_until: dict[str | None, float] = {}  # None: every request
        self.waited = 0.0  # total seconds spent waiting, for the benchmark
        self.last_request_at: float | None = None

    def wait(self, path: str) -> None:
        with self._lock:
            now = self.clock.monotonic()
            slow = _slow(path)
            for key in (None, slow) if slow else (None,):
                until = self._blocked_until.get(key)
                if until is not None and now < until:
                    what = "dca sends nothing" if key is None else f"dca does not ask {key}"
                    raise RateLimited(f"IBKR limited the request rate (HTTP 429); {what} for another "
                                      f"{until - now:.0f} s")
            due = now if self._last is None else max(now, self._last + self.min_gap)
            if slow is not None and slow in self._last_slow:
                due = max(due, self._last_slow[slow] + self.slow_interval)
            if due > now:
                self.waited += due - now
                self.clock.sleep(due - now)
            now = self.clock.monotonic()
            self._last = now
            self.last_request_at = now
            if slow is not None:
                self._last_slow[slow] = now

    def penalise(self, path: str = "") -> None:
        """After a 429: a paced endpoint (order list, trades) is left alone for the back-off;
        any other 429 stops every request for it."""
        slow = _slow(path)
        with self._lock:
            self._blocked_until[slow] = self.clock.monotonic() + self.backoff_seconds
        logger.warning("IBKR answered 429 (too many requests) to %s: backing off %s for %.0f s",
                       path or "a request", slow or "every request", self.backoff_seconds)


def _slow(path: str) -> str | None:
    return next((p for p in SLOW_PATHS if path.startswith(p)), None)


_PACERS: dict[str, Pacer] = {}
_PACERS_LOCK = threading.Lock()


def shared_pacer(url: str, clock: Clock) -> Pacer:
    with _PACERS_LOCK:
        return _PACERS.setdefault(url, Pacer(clock))


# -- configuration ------------------------------------------------------------------------------


@dataclass(frozen=True)
class IbkrConfig:
    url: str | None = None  # None: ibind's default, https://127.0.0.1:5000/v1/api/
    account_id: str | None = None
    allow_live: bool = False
    use_oauth: bool = False
    answers: tuple[str, ...] = DEFAULT_ANSWERS
    fractional: bool = False  # ask for cash-amount orders where account and contract allow
    timeout_seconds: float = 10.0
    max_price_move: Decimal = Decimal("0.10")  # a last price further than this from the prior close
    settle_seconds: float = 5.0
    preflight_wait: float = 1.0


def is_paper(account_id: str | None) -> bool:
    return bool(account_id) and account_id.upper().startswith("DU")


OAUTH_VARIABLES = {
    "access_token": "IBIND_OAUTH1A_ACCESS_TOKEN", "access_token_secret": "IBIND_OAUTH1A_ACCESS_TOKEN_SECRET",
    "consumer_key": "IBIND_OAUTH1A_CONSUMER_KEY", "dh_prime": "IBIND_OAUTH1A_DH_PRIME",
    "encryption_key_fp": "IBIND_OAUTH1A_ENCRYPTION_KEY_FP", "signature_key_fp": "IBIND_OAUTH1A_SIGNATURE_KEY_FP",
    "encryption_key": "IBIND_OAUTH1A_ENCRYPTION_KEY", "signature_key": "IBIND_OAUTH1A_SIGNATURE_KEY",
    "oauth_rest_url": "IBIND_OAUTH1A_REST_URL", "realm": "IBIND_OAUTH1A_REALM",
}


def oauth_config_from(environ: Mapping[str, str]):
    """ibind's OAuth 1.0a configuration from the `IBIND_OAUTH1A_*` variables, read now
    (not at ibind's import), refused with the names of what is missing. Values are
    never printed."""
    from pathlib import Path

    values = {attr: environ[var] for attr, var in OAUTH_VARIABLES.items() if environ.get(var)}
    missing = [OAUTH_VARIABLES[a] for a in ("access_token", "access_token_secret", "consumer_key", "dh_prime")
               if a not in values]
    for kind in ("encryption", "signature"):
        if not (values.get(f"{kind}_key_fp") or values.get(f"{kind}_key")):
            missing.append(f"IBIND_OAUTH1A_{kind.upper()}_KEY_FP (or IBIND_OAUTH1A_{kind.upper()}_KEY)")
        elif values.get(f"{kind}_key_fp") and not Path(values[f"{kind}_key_fp"]).is_file():
            raise ConfigError(f"IBIND_OAUTH1A_{kind.upper()}_KEY_FP names a file that does not exist")
    if missing:
        raise ConfigError(f"IBIND_USE_OAUTH is on but the OAuth 1.0a settings are incomplete: set "
                          f"{', '.join(missing)} (see README, Interactive Brokers, OAuth)")
    try:
        from ibind.oauth.oauth1a import OAuth1aConfig
    except ImportError as e:  # pycryptodome, ibind's "oauth" extra
        raise ConfigError(f"IBKR OAuth needs ibind's OAuth extra: install it with `uv add 'ibind[oauth]'` ({e})") from e
    # ibind's defaults (read from IBIND_* at its import) would shake hands inside the client's
    # constructor, start a Tickler thread, open the brokerage session unpaced and log out on
    # close. dca does the first three itself (see IbkrBroker) and never logs out.
    return OAuth1aConfig(**values, init_oauth=False, maintain_oauth=False, init_brokerage_session=False,
                         shutdown_oauth=False)


def build_client(config: IbkrConfig, environ: Mapping[str, str] | None = None):
    """An ibind client that never retries by itself, with its file logging switched off."""
    import os

    from ibind import IbkrClient, ibind_logs_initialize

    ibind_logs_initialize(log_to_console=False, log_to_file=False)
    _quiet_local_certificate_warnings(config.url)
    kwargs: dict[str, Any] = dict(account_id=config.account_id, timeout=config.timeout_seconds, max_retries=0,
                                  auto_register_shutdown=False, use_oauth=config.use_oauth)
    if config.url:
        kwargs["url"] = config.url
    if config.use_oauth:
        kwargs["oauth_config"] = oauth_config_from(os.environ if environ is None else environ)
    try:
        client = IbkrClient(**kwargs)
        if config.use_oauth:
            client.live_session_token = None  # none yet: IbkrBroker shakes hands before the first request
            client.live_session_token_expires_ms = None
        return client
    except ImportError as e:  # OAuth needs pycryptodome
        raise ConfigError(f"IBKR OAuth needs ibind's OAuth extra: {e}") from e
    except ValueError as e:
        raise ConfigError(f"IBKR client settings: {e}") from e


# -- the contract cache ---------------------------------------------------------------------------


class ContractCache:
    """Symbol -> conid, kept in the ledger's SQLite file (its own table) so a run asks
    `trsrv/stocks` only for symbols it has not resolved in the last `max_age`. Best effort:
    a cache that cannot be read or written only costs a lookup."""

    SCHEMA = """CREATE TABLE IF NOT EXISTS ibkr_contracts (
        symbol TEXT PRIMARY KEY, conid INTEGER NOT NULL, resolved_at TEXT NOT NULL)"""

    def __init__(self, path, max_age: timedelta = timedelta(days=30)):
        self.path = path
        self.max_age = max_age

    def _connect(self):
        import sqlite3

        db = sqlite3.connect(self.path, timeout=5)
        db.execute(self.SCHEMA)
        return db

    def load(self, now: datetime) -> dict[str, int]:
        import sqlite3

        try:
            db = self._connect()
            try:
                rows = db.execute("SELECT symbol, conid, resolved_at FROM ibkr_contracts").fetchall()
            finally:
                db.close()
        except sqlite3.Error as e:
            logger.warning("could not read the IBKR contract cache in %s: %s", self.path, e)
            return {}
        fresh = now - self.max_age
        return {s: int(c) for s, c, at in rows if datetime.fromisoformat(at) >= fresh}

    def store(self, conids: Mapping[str, int], now: datetime) -> None:
        import sqlite3

        try:
            db = self._connect()
            try:
                with db:
                    db.executemany("INSERT OR REPLACE INTO ibkr_contracts(symbol, conid, resolved_at) VALUES (?,?,?)",
                                   [(s, c, now.isoformat()) for s, c in conids.items()])
            finally:
                db.close()
        except sqlite3.Error as e:
            logger.warning("could not store the IBKR contract cache in %s: %s", self.path, e)


def _quiet_local_certificate_warnings(url: str | None) -> None:
    """The gateway on this machine serves a self-signed certificate, which ibind does not
    verify by default (IBIND_CACERT names one to verify); urllib3 would warn on every
    request. Silenced only for a gateway on this machine."""
    import warnings
    from urllib.parse import urlparse

    from urllib3.exceptions import InsecureRequestWarning

    if urlparse(url or "https://127.0.0.1:5000/").hostname in ("127.0.0.1", "localhost", "::1"):
        warnings.filterwarnings("ignore", category=InsecureRequestWarning)


# -- the account view ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Position:
    symbol: str
    conid: int
    quantity: Decimal
    market_price: Decimal | None
    market_value: Decimal | None
    average_cost: Decimal | None
    currency: str = "USD"


@dataclass(frozen=True)
class Trade:
    execution_id: str
    order_ref: str
    symbol: str
    side: str
    quantity: Decimal
    price: Decimal
    commission: Decimal | None
    traded_at: datetime | None


# -- the adapter --------------------------------------------------------------------------------


class IbkrBroker:
    simulated = False

    def __init__(self, client, config: IbkrConfig, clock: Clock | None = None,
                 contracts: ContractCache | None = None):
        from dca.clock import SystemClock

        self.client = client
        self.config = config
        self.clock = clock or SystemClock()
        # One budget per gateway for the whole process (worker and panel alike); a test
        # that brings its own clock gets its own, like a separate process.
        self.pacer = Pacer(self.clock) if clock is not None else shared_pacer(client.base_url, self.clock)
        self.settle_seconds = config.settle_seconds
        self.account_id = config.account_id
        self._io = threading.RLock()  # one request at a time: the session and the question loop
        self.contracts = contracts
        self._conids: dict[str, int] = {}
        self._cache_loaded = False
        self._acct_props: dict = {}
        self._cash_rules: dict[int, bool] = {}
        self._accounts_listed = False
        self.answers = frozenset(a.strip().lower() for a in config.answers)
        self._handshaking = False
        self._renew = False  # IBKR refused the token: a new one before the next request

    # -- labels ------------------------------------------------------------------------------

    @property
    def name(self) -> str:
        over = " over OAuth" if self.config.use_oauth else ""
        if not self.account_id:
            return f"IBKR{over} (the login's only account, not asked yet)"
        return f"IBKR {'paper' if is_paper(self.account_id) else 'LIVE'} account {self.account_id}{over}"

    @property
    def account_kind(self) -> str:
        """PAPER or LIVE, as every face and notification labels it (unknown: LIVE, the safe
        assumption when money may be real)."""
        return "PAPER" if is_paper(self.account_id) else "LIVE"

    @property
    def login_url(self) -> str | None:
        """Where the person logs the gateway in (in a browser, with 2FA, typically daily);
        None with OAuth, where nobody logs in."""
        if self.config.use_oauth:
            return None
        base = (self.config.url or "https://127.0.0.1:5000/v1/api/").split("/v1/api")[0]
        return base.rstrip("/") + "/"

    @property
    def live_possible(self) -> bool:
        """Whether orders could reach a live account: only when live is allowed and the
        account is not known to be paper. `dca run --now` is refused then."""
        return self.config.allow_live and not is_paper(self.account_id)

    # -- low level ---------------------------------------------------------------------------

    def _read(self, method: str, path: str, params: dict | None = None, retries: int = 1) -> Any:
        """A request that changes nothing at the broker: retried once on a timeout or 5xx.
        Raises BrokerUnavailable with the reason when there is no usable answer."""
        from ibind import ExternalBrokerError

        last: Exception | None = None
        renewed = False
        attempt = 0
        while attempt <= retries:
            attempt += 1
            with self._io:
                self._oauth_session()
                self.pacer.wait(path)
                try:
                    call = self.client.get if method == "GET" else self.client.post
                    return call(path, params=params, log=False).data
                except TimeoutError as e:
                    last = e
                except ExternalBrokerError as e:
                    if e.status_code == 429:
                        self.pacer.penalise(path)
                        raise RateLimited(f"IBKR limited the request rate (HTTP 429) on {path}; backing off") from e
                    if e.status_code == 401 and self.config.use_oauth and not renewed and not self._handshaking:
                        # The live session token expired or was revoked: a read may ask again.
                        logger.info("IBKR answered 401 to %s (%s): renewing the OAuth session", path, _error_text(e))
                        renewed, self._renew = True, True
                        attempt -= 1
                        continue
                    if e.status_code is not None and e.status_code < 500:
                        raise BrokerUnavailable(f"IBKR answered {e.status_code} to {path}: {_error_text(e)}") from e
                    last = e
        raise BrokerUnavailable(f"no usable answer from the IBKR gateway for {path} ({_short(last)})") from last

    def _send_once(self, path: str, body: dict) -> Any:
        """The one attempt of a request that may place an order. Raises BrokerUnavailable
        only when the request provably never left, OrderRejected when the gateway answered
        a 4xx (other than 429), and OrderInDoubt otherwise."""
        from ibind import ExternalBrokerError

        if self.config.use_oauth:  # BrokerUnavailable before anything is sent
            self._oauth_session()
            self._ensure_accounts()  # a renewed session wants the accounts listed again
        self.pacer.wait(path)  # RateLimited before anything is sent
        try:
            return self.client.post(path, params=body).data
        except TimeoutError as e:
            raise OrderInDoubt(f"no answer from IBKR within {self.config.timeout_seconds:g} s to {path}; "
                               "the order may have been placed") from e
        except ExternalBrokerError as e:
            status = e.status_code
            if status is None:
                if _never_connected(e):
                    raise BrokerUnavailable(f"the IBKR gateway could not be reached ({_short(e)})") from e
                raise OrderInDoubt(f"the connection to IBKR broke during {path} ({_short(e)})") from e
            text = _error_text(e)
            if status == 429:
                self.pacer.penalise(path)
                raise OrderInDoubt(f"IBKR answered 429 (too many requests) to {path}; not resent") from e
            if _duplicate(text):
                raise DuplicateOrderRef(text) from e
            if 400 <= status < 500 and status not in (401, 403, 408):
                raise OrderRejected(f"IBKR refused the order ({status}): {text}") from e
            if status == 401 and self.config.use_oauth:
                # IBKR takes no order it cannot authenticate, but dca does not rest a resend on
                # that: the engine looks the order up first, like after any doubt.
                self._renew = True
                raise OrderInDoubt(f"IBKR answered 401 to {path} ({text}); not resent: dca renews the OAuth "
                                   "session and checks IBKR's order list before it would send it again") from e
            raise OrderInDoubt(f"IBKR answered {status} to {path}: {text}; the order may have been placed") from e

    # -- OAuth 1.0a -------------------------------------------------------------------------

    def _oauth_session(self) -> None:
        """With OAuth: make sure a live session token is held that is not about to expire
        (by the wall clock, as IBKR states its expiry), shaking hands when not. Raises
        BrokerUnavailable, with what to check, when IBKR refuses."""
        if not self.config.use_oauth:
            return
        with self._io:  # another thread's handshake finishes first
            if self._handshaking:  # this thread's own handshake, asking IBKR
                return
            expires_ms = getattr(self.client, "live_session_token_expires_ms", None)
            fresh = (getattr(self.client, "live_session_token", None) and expires_ms
                     and expires_ms / 1000 - time.time() > LST_MARGIN)
            if fresh and not self._renew:
                return
            self._handshaking = True
            try:
                self._handshake()
                self._renew = False
            finally:
                self._handshaking = False

    def _handshake(self) -> None:
        from ibind import ExternalBrokerError
        from ibind.oauth.oauth1a import validate_live_session_token

        self._check_oauth_settings()
        self.client.live_session_token = None
        self.pacer.wait(LST_PATH)
        try:
            self.client.generate_live_session_token()
        except TimeoutError as e:
            raise BrokerUnavailable(f"IBKR did not answer the OAuth handshake within "
                                    f"{self.config.timeout_seconds:g} s; try again later") from e
        except ExternalBrokerError as e:
            raise self._handshake_refused(e) from e
        except Exception as e:  # an answer without the handshake's fields
            raise BrokerUnavailable(f"IBKR's answer to the OAuth handshake is not one dca understands "
                                    f"({type(e).__name__}); try again later") from e
        config = self.client.oauth_config
        if not validate_live_session_token(self.client.live_session_token, self.client.live_session_token_signature,
                                           config.consumer_key):
            self.client.live_session_token = None
            raise BrokerUnavailable("IBKR's live session token does not check out: dca and IBKR computed different "
                                    "tokens from the Diffie-Hellman exchange; check IBIND_OAUTH1A_DH_PRIME (and "
                                    f"IBIND_OAUTH1A_DH_GENERATOR) first, then: {OAUTH_HINT}")
        expires = datetime.fromtimestamp(self.client.live_session_token_expires_ms / 1000, timezone.utc)
        logger.info("IBKR OAuth: new live session token, valid until %s", f"{expires:%Y-%m-%d %H:%M} UTC")
        self._open_brokerage_session()

    def _open_brokerage_session(self) -> None:
        """IBKR wants `iserver/auth/ssodh/init` before any `iserver` call over OAuth. `compete`
        as ibind does: this session takes over from a TWS or mobile session of the user."""
        try:
            self._read("POST", "iserver/auth/ssodh/init", {"publish": True, "compete": True}, retries=0)
        except BrokerUnavailable as e:
            raise BrokerUnavailable(f"IBKR did not open the brokerage session over OAuth ({e}); try again later") from e
        self._accounts_listed = False  # a new session wants the accounts listed again

    def _check_oauth_settings(self) -> None:
        """The local half of the handshake, checked first so that each problem is named:
        the key files, the secret that only the encryption key decrypts, the prime."""
        from Crypto.Cipher import PKCS1_v1_5
        from ibind.oauth.oauth1a import read_private_key

        config = self.client.oauth_config
        keys = {}
        for kind in ("signature", "encryption"):
            try:
                keys[kind] = read_private_key(getattr(config, f"{kind}_key_fp"), getattr(config, f"{kind}_key"))
                if not keys[kind].has_private():
                    raise ValueError("a public key")
            except (OSError, ValueError, TypeError, IndexError) as e:
                what = "cannot be read" if isinstance(e, OSError) else "does not hold an RSA private key (PEM)"
                raise BrokerUnavailable(f"IBIND_OAUTH1A_{kind.upper()}_KEY_FP (or IBIND_OAUTH1A_{kind.upper()}_KEY) "
                                        f"{what}; it must be the private {kind} key you made for IBKR's "
                                        "OAuth registration") from None
        try:
            secret = base64.b64decode(config.access_token_secret or "", validate=True)
            plain = PKCS1_v1_5.new(keys["encryption"]).decrypt(secret, None) if secret else None
        except (ValueError, TypeError):
            plain = None
        if not plain:
            raise BrokerUnavailable("IBIND_OAUTH1A_ACCESS_TOKEN_SECRET cannot be decrypted with the key in "
                                    "IBIND_OAUTH1A_ENCRYPTION_KEY_FP: check that it is the access token secret "
                                    "exactly as IBKR's portal showed it (base64) and that the encryption key is "
                                    "the one of the same registration") from None
        try:
            int(config.dh_prime, 16)
        except (TypeError, ValueError):
            raise BrokerUnavailable("IBIND_OAUTH1A_DH_PRIME is not a hexadecimal number; it is the prime of the "
                                    "Diffie-Hellman parameters of your OAuth registration, in hex") from None

    def _handshake_refused(self, e: Exception) -> BrokerUnavailable:
        status = getattr(e, "status_code", None)
        text = _error_text(e)
        if status == 429:
            self.pacer.penalise(LST_PATH)
            return RateLimited("IBKR limited the request rate (HTTP 429) on the OAuth handshake; backing off")
        if status == 410:
            return BrokerUnavailable(f"IBKR answered 410 Gone to the OAuth handshake ({text}); try again later, or "
                                     "another of IBKR's servers, e.g. IBIND_OAUTH1A_REST_URL="
                                     "https://1.api.ibkr.com/v1/api/")
        if status in (400, 401, 403):
            lowered = text.lower()
            first = next((hint for word, hint in (
                ("consumer", "IBIND_OAUTH1A_CONSUMER_KEY"), ("token", "IBIND_OAUTH1A_ACCESS_TOKEN"),
                ("realm", "IBIND_OAUTH1A_REALM (limited_poa, or test_realm for IBKR's TESTCONS)"),
                ("signature", "the signature key (IBIND_OAUTH1A_SIGNATURE_KEY_FP) and the access token secret "
                              "(IBIND_OAUTH1A_ACCESS_TOKEN_SECRET)"),
                ("timestamp", "this computer's clock (IBKR refuses a request stamped minutes off)"),
            ) if word in lowered), None)
            lead = f"start with {first}; in general, " if first else ""
            return BrokerUnavailable(f"IBKR refused dca's OAuth credentials ({status}: {text}); {lead}{OAUTH_HINT}")
        if status is None or status >= 500:
            return BrokerUnavailable(f"IBKR's OAuth handshake at {self.client.base_url} failed "
                                     f"({'no connection' if status is None else status}); try again later")
        return BrokerUnavailable(f"IBKR answered {status} to the OAuth handshake ({text}); {OAUTH_HINT}")

    # -- the Broker port ---------------------------------------------------------------------

    def readiness(self, at: datetime) -> Readiness:
        if self.config.use_oauth:
            try:
                self._oauth_session()
            except BrokerUnavailable as e:
                return Readiness(False, str(e))
        try:
            status = self._read("POST", "iserver/auth/status", retries=0) or {}
            if self.config.use_oauth and not status.get("authenticated"):
                # Over OAuth nobody logs in: (re)open the brokerage session and ask again.
                self._open_brokerage_session()
                status = self._read("POST", "iserver/auth/status", retries=0) or {}
        except BrokerUnavailable as e:
            if self.config.use_oauth:
                return Readiness(False, f"IBKR does not answer over OAuth at {self.client.base_url} ({e}); "
                                 "try again later")
            return Readiness(False, f"the IBKR gateway at {self.client.base_url} does not answer ({e}); start it "
                             f"and log in: {LOGIN_HINT}")
        if not status.get("authenticated") and self.config.use_oauth:
            return Readiness(False, "IBKR's brokerage session did not open over OAuth (iserver/auth/ssodh/init); "
                             f"try again later, and if it lasts, {OAUTH_HINT}")
        if not status.get("authenticated"):
            return Readiness(False, f"the IBKR gateway is not logged in: {LOGIN_HINT}")
        if status.get("competing"):
            return Readiness(False, "another IBKR session (TWS, the mobile app or another gateway) competes with "
                             f"this one; log out there, then log in again here: {LOGIN_HINT}")
        if not status.get("connected"):
            return Readiness(False, "the IBKR gateway is logged in but not connected to IBKR's servers (they "
                             "restart around 01:00 and on Saturday evenings); try again later")
        try:
            accounts = self._read("GET", "iserver/accounts") or {}
        except BrokerUnavailable as e:
            return Readiness(False, f"could not list the IBKR accounts ({e})")
        listed = [str(a) for a in accounts.get("accounts") or []]
        if self.account_id is None:
            if len(listed) != 1:
                return Readiness(False, f"this IBKR login has accounts {', '.join(listed) or '(none)'}; set "
                                 "IBIND_ACCOUNT_ID to the one dca should use")
            self.account_id = listed[0]
        elif self.account_id not in listed:
            return Readiness(False, f"the configured account {self.account_id} (IBIND_ACCOUNT_ID) is not one of "
                             f"this login's accounts ({', '.join(listed) or 'none'})")
        if not is_paper(self.account_id) and not self.config.allow_live:
            return Readiness(False, f"{self.account_id} is a LIVE account and dca trades only paper accounts "
                             "(DU…) unless you allow live trading: set DCA_IBKR_ALLOW_LIVE=true "
                             "(or [ibkr] allow_live = true)")
        self._acct_props = (accounts.get("acctProps") or {}).get(self.account_id, {})
        self._accounts_listed = True
        return Readiness(True, self.name)

    def _ensure_accounts(self) -> None:
        """IBKR wants /iserver/accounts listed before other iserver calls."""
        if not self._accounts_listed:
            ready = self.readiness(datetime.now(timezone.utc))
            if not ready.ready:
                raise BrokerUnavailable(ready.message)

    def resolve(self, symbols: Sequence[str]) -> dict[str, int | str]:
        """Symbol -> conid, or the reason there is none (unknown, ambiguous). One batched
        `trsrv/stocks` call for the symbols not already known."""
        now = datetime.now(timezone.utc)
        if self.contracts is not None and not self._cache_loaded:
            self._conids.update(self.contracts.load(now))
            self._cache_loaded = True
        wanted = [s for s in dict.fromkeys(symbols) if s not in self._conids]
        out: dict[str, int | str] = {s: self._conids[s] for s in symbols if s in self._conids}
        if wanted:
            data = self._read("GET", "trsrv/stocks", {"symbols": ",".join(wanted)}) or {}
            for symbol in wanted:
                entries = data.get(symbol) or []
                conids = sorted({int(c["conid"]) for e in entries if e.get("assetClass", "STK") == "STK"
                                 for c in e.get("contracts") or [] if c.get("isUS")})
                if not conids:
                    out[symbol] = f"IBKR knows no US stock with the symbol {symbol}; check the plan's symbol"
                elif len(conids) > 1:
                    out[symbol] = (f"{symbol} is ambiguous at IBKR ({len(conids)} US listings: "
                                   f"{', '.join(map(str, conids))}); dca does not guess")
                else:
                    self._conids[symbol] = out[symbol] = conids[0]
            new = {s: c for s, c in out.items() if s in wanted and isinstance(c, int)}
            if new and self.contracts is not None:
                self.contracts.store(new, now)
        return out

    def quotes(self, symbols: Sequence[str], at: datetime) -> dict[str, Quote]:
        self._ensure_accounts()
        resolved = self.resolve(symbols)
        conids = {s: c for s, c in resolved.items() if isinstance(c, int)}
        snapshot: dict[int, dict] = {}
        if conids:
            params = {"conids": ",".join(str(c) for c in dict.fromkeys(conids.values())), "fields": SNAPSHOT_FIELDS}
            for attempt in range(2):  # the first call for a conid often has no fields: ask once more
                items = self._read("GET", "iserver/marketdata/snapshot", params) or []
                snapshot.update({int(i["conid"]): i for i in items if "conid" in i})
                if attempt == 0 and any("31" not in snapshot.get(c, {}) for c in conids.values()):
                    self.clock.sleep(self.config.preflight_wait)
                    continue
                break
        account_takes_cash = self.config.fractional and bool(self._acct_props.get("supportsCashQty")) \
            and bool(self._acct_props.get("supportsFractions"))
        out = {}
        for symbol in symbols:
            conid = resolved.get(symbol)
            if not isinstance(conid, int):
                out[symbol] = Quote(symbol, None, problem=str(conid or "not resolved"), unknown_symbol=True)
            else:
                fractional = account_takes_cash and self._takes_cash(conid)
                out[symbol] = self._quote(symbol, snapshot.get(conid, {}), at, fractional)
        return out

    def _takes_cash(self, conid: int) -> bool:
        """Whether the contract's rules allow a cash-amount market order (asked once per
        conid and process; a failure means whole shares)."""
        if conid not in self._cash_rules:
            try:
                data = self._read("GET", f"iserver/contract/{conid}/info-and-rules", {"isBuy": "true"}) or {}
            except BrokerUnavailable as e:
                logger.info("no contract rules for %s, so whole shares: %s", conid, e)
                return False
            rules = data.get("rules") or {}
            self._cash_rules[conid] = "MKT" in (rules.get("cqtTypes") or []) and "MKT" in (rules.get("fraqTypes") or [])
        return self._cash_rules[conid]

    def _quote(self, symbol: str, item: dict, at: datetime, fractional: bool) -> Quote:
        raw = str(item.get("31") or "")
        if not raw:
            return Quote(symbol, None, problem="IBKR's market-data snapshot has no last price for it (no data "
                         "permission, or the feed has not started)")
        prefix = raw[0] if raw[0].isalpha() else ""
        if prefix == "H":
            return Quote(symbol, None, problem="trading in it is halted")
        price = _decimal(raw[len(prefix):])
        if price is None or price <= 0:
            return Quote(symbol, None, problem=f"IBKR's last price {raw!r} is not a price")
        prior = _decimal(item.get("7741"))
        if prior and abs(price / prior - 1) > self.config.max_price_move:
            move = (abs(price / prior - 1) * 100).quantize(Decimal("0.1"))
            return Quote(symbol, None, problem=f"its price {price} is {move}% from the previous close {prior} "
                         f"(more than {self.config.max_price_move * 100:g}%); not trusted for sizing")
        availability = str(item.get("6509") or "")
        if prefix == "C":
            kind = PriceKind.PREVIOUS_CLOSE  # normal before the open
        elif availability.startswith("D"):
            kind = PriceKind.DELAYED  # paper accounts often have only delayed data
        else:
            kind = PriceKind.LAST
        return Quote(symbol, price, kind, at, fractional)

    def submit(self, order: OrderRequest, at: datetime) -> BrokerOrder:
        self._ensure_accounts()
        conid = self.resolve([order.symbol]).get(order.symbol)
        if not isinstance(conid, int):
            raise OrderRejected(str(conid))
        spec: dict[str, Any] = {"acctId": self.account_id, "conid": conid, "cOID": order.order_ref,
                                "orderType": "MKT", "side": "BUY", "tif": "DAY"}  # ibind's default tif is GTC
        if order.cash_amount is not None:
            spec["cashQty"] = float(order.cash_amount)
        else:
            whole = order.quantity == order.quantity.to_integral_value()
            spec["quantity"] = int(order.quantity) if whole else float(order.quantity)
        with self._io:
            answer = self._send_once(f"iserver/account/{self.account_id}/orders", {"orders": [spec]})
            for _ in range(10):  # IBKR may ask several questions in turn
                if isinstance(answer, dict) and "error" in answer:
                    text = str(answer["error"])
                    if _duplicate(text):
                        raise DuplicateOrderRef(text)
                    raise OrderRejected(f"IBKR refused the order: {text}")
                item = answer[0] if isinstance(answer, list) and answer else {}
                if "order_id" in item:
                    ack = BrokerOrder(order.order_ref, order.symbol, order.quantity, _state(item.get("order_status")),
                                      cash_amount=order.cash_amount, broker_order_id=str(item["order_id"]),
                                      broker_status=str(item.get("order_status") or ""), placed_at=at)
                    return self._after_ack(ack)
                if "id" in item and "message" in item:
                    answer = self._answer(item)
                    continue
                raise OrderInDoubt(f"IBKR gave an answer dca does not understand: {str(answer)[:200]}")
        raise OrderInDoubt("IBKR kept asking questions; the order may be waiting for a reply")

    def _answer(self, question: dict) -> Any:
        ids = [str(i).lower() for i in question.get("messageIds") or []]
        text = " ".join(str(m) for m in question.get("message") or [])
        reply = f"iserver/reply/{question['id']}"
        if ids and all(i in self.answers for i in ids):
            logger.info("confirming IBKR question %s (on the allow-list): %s", ",".join(ids), text[:200])
            return self._send_once(reply, {"confirmed": True})  # this POST places the order
        try:
            self._send_once(reply, {"confirmed": False})
        except Exception as e:  # an unanswered question places nothing either
            logger.warning("could not say no to IBKR question %s: %s", ",".join(ids) or "?", e)
        raise OrderRejected(f"IBKR asked a question dca is not allowed to confirm ({', '.join(ids) or 'no id'}: "
                            f"{text[:300]}); answered no, nothing was placed. To confirm it from now on, add "
                            f"{ids[0] if ids else 'its id'} to DCA_IBKR_ANSWERS")

    def _after_ack(self, ack: BrokerOrder) -> BrokerOrder:
        """One status read after the acknowledgement, so a market order that filled at once
        is recorded as filled; when it fails, the acknowledgement stands."""
        try:
            status = self._read("GET", f"iserver/account/order/status/{ack.broker_order_id}", retries=0) or {}
        except BrokerUnavailable as e:
            logger.info("order %s accepted; its status is read at the next lookup (%s)", ack.order_ref, e)
            return ack
        filled = _decimal(status.get("cum_fill")) or Decimal(0)
        total = _decimal(status.get("total_size")) or ack.quantity
        return BrokerOrder(ack.order_ref, ack.symbol, total, _state(status.get("order_status"), filled, total),
                           filled_quantity=filled, avg_price=_decimal(status.get("average_price")) if filled else None,
                           cash_amount=ack.cash_amount, broker_order_id=ack.broker_order_id,
                           broker_status=str(status.get("order_status") or ack.broker_status), placed_at=ack.placed_at)

    def find_orders(self, queries: Sequence[LookupQuery], at: datetime) -> dict[str, OrderLookup]:
        started = self.clock.monotonic()
        today = at.astimezone(NEW_YORK).date()
        out: dict[str, OrderLookup] = {}
        same_day = [q for q in queries if q.last_attempt_at.astimezone(NEW_YORK).date() == today]
        older = [q for q in queries if q not in same_day]
        try:
            self._ensure_accounts()
        except BrokerUnavailable as e:
            return {q.order_ref: OrderLookup(Found.UNKNOWN, reason=str(e)) for q in queries}
        if same_day:
            try:
                listed, settled, fetched = self._order_list(force=True)
                fetched_at = at + timedelta(seconds=fetched - started)
            except BrokerUnavailable as e:
                listed, settled, fetched_at, why = {}, False, at, str(e)
            else:
                why = "IBKR's order list has not settled yet (it lags after a submit)"
            for q in same_day:
                if q.order_ref in listed:
                    out[q.order_ref] = OrderLookup(Found.FOUND, listed[q.order_ref])
                elif settled and (fetched_at - q.last_attempt_at).total_seconds() >= self.settle_seconds:
                    out[q.order_ref] = OrderLookup(Found.ABSENT)
                elif settled:
                    out[q.order_ref] = OrderLookup(Found.UNKNOWN, reason="the attempt is too recent for IBKR's "
                                                   "order list to show it yet")
                else:
                    out[q.order_ref] = OrderLookup(Found.UNKNOWN, reason=why)
        self._add_commissions(out)
        if older:
            oldest = min(q.last_attempt_at.astimezone(NEW_YORK).date() for q in older)
            days = (today - oldest).days + 1
            try:
                trades = self._trades(min(days, 7))
            except BrokerUnavailable as e:
                trades = None
                why = str(e)
            for q in older:
                age = (today - q.last_attempt_at.astimezone(NEW_YORK).date()).days + 1
                if trades is not None and q.order_ref in trades:
                    out[q.order_ref] = OrderLookup(Found.FOUND, trades[q.order_ref])
                elif trades is not None and age <= 7:
                    # A DAY order from an earlier day is over: no execution in IBKR's
                    # trades for that day means nothing was bought.
                    out[q.order_ref] = OrderLookup(Found.ABSENT)
                elif trades is not None:
                    out[q.order_ref] = OrderLookup(Found.UNKNOWN, reason="the attempt is older than IBKR's 7 days "
                                                   "of trades; check the account's trade history")
                else:
                    out[q.order_ref] = OrderLookup(Found.UNKNOWN, reason=why)
        return out

    def _add_commissions(self, lookups: dict[str, OrderLookup]) -> None:
        """The order list has no commission; today's trades do. Best effort."""
        filled = [ref for ref, lk in lookups.items()
                  if lk.found is Found.FOUND and lk.order.filled_quantity > 0 and lk.order.commission is None]
        if not filled:
            return
        try:
            trades = self._trades(1)
        except BrokerUnavailable as e:
            logger.info("commissions not known yet (%s)", e)
            return
        for ref in filled:
            if ref in trades and trades[ref].commission is not None:
                lookups[ref] = replace(lookups[ref], order=replace(lookups[ref].order, commission=trades[ref].commission))

    def commissions(self, order_refs: Sequence[str], at: datetime) -> dict[str, Decimal]:
        """The commission of each order that IBKR's trades (up to 7 days) report one for:
        an order that filled at submission was recorded before its commission was known."""
        self._ensure_accounts()
        trades = self._trades(7)
        return {ref: trades[ref].commission for ref in order_refs
                if ref in trades and trades[ref].commission is not None}

    def _order_list(self, force: bool) -> tuple[dict[str, BrokerOrder], bool, float]:
        """(orders by order_ref, settled, when the list was read). With `force`, the gateway's
        cache is cleared first; its answer to the forcing call is never taken as the list."""
        if force:
            self._read("GET", ORDERS_PATH, {"force": "true"})
        data = self._read("GET", ORDERS_PATH) or {}
        fetched = self.clock.monotonic()
        items = data.get("orders") or [] if isinstance(data, dict) else data
        settled = bool(data.get("snapshot")) if isinstance(data, dict) else False
        by_ref: dict[str, BrokerOrder] = {}
        for item in items:
            ref = item.get("order_ref")
            if ref and (self.account_id is None or item.get("acct") in (None, self.account_id)):
                by_ref[str(ref)] = _listed(item)
        return by_ref, settled, fetched

    def _trades(self, days: int) -> dict[str, BrokerOrder]:
        """Executions of up to `days` days (IBKR keeps 7), summed per order_ref."""
        trades = self.recent_trades(days)
        by_ref: dict[str, list[Trade]] = {}
        for t in trades:
            if t.order_ref:
                by_ref.setdefault(t.order_ref, []).append(t)
        out = {}
        for ref, fills in by_ref.items():
            quantity = sum((f.quantity for f in fills), Decimal(0))
            avg = sum((f.quantity * f.price for f in fills), Decimal(0)) / quantity if quantity else None
            commissions = [f.commission for f in fills if f.commission is not None]
            out[ref] = BrokerOrder(ref, fills[0].symbol, quantity, OrderState.FILLED, filled_quantity=quantity,
                                   avg_price=avg, commission=sum(commissions, Decimal(0)) if commissions else None,
                                   broker_status="Filled (from trades)", placed_at=fills[0].traded_at)
        return out

    def orders(self) -> list[BrokerOrder]:
        self._ensure_accounts()
        listed, _, _ = self._order_list(force=True)  # the cached list may be empty on a first call
        return list(listed.values())

    # -- session -----------------------------------------------------------------------------

    def tickle(self) -> bool:
        """Keep the gateway session alive; True when it says it is still authenticated."""
        try:
            data = self._read("POST", "tickle", retries=0) or {}
        except BrokerUnavailable as e:
            logger.warning("IBKR keep-alive failed: %s", e)
            return False
        auth = ((data.get("iserver") or {}).get("authStatus") or {})
        return bool(auth.get("authenticated"))

    def tickle_if_due(self, interval: float = 60.0) -> bool | None:
        """Tickle when no request went out for `interval` seconds; None when not due."""
        last = self.pacer.last_request_at
        if last is not None and self.clock.monotonic() - last < interval:
            return None
        return self.tickle()

    def keep_alive(self) -> bool | None:
        """What the worker calls about once a minute while idle: a tickle when due."""
        return self.tickle_if_due()

    def keep_alive_in_background(self, stop: threading.Event, interval: float = 60.0) -> threading.Thread:
        """A daemon thread that tickles about once a `interval` until `stop` is set (the
        worker starts it; every request already keeps the session alive on its own)."""
        def loop():
            while not stop.wait(interval):
                self.tickle_if_due(interval)

        thread = threading.Thread(target=loop, name="ibkr-keep-alive", daemon=True)
        thread.start()
        return thread

    # -- account view ------------------------------------------------------------------------

    def positions(self) -> list[Position]:
        self._ensure_accounts()
        out = []
        for page in range(10):
            items = self._read("GET", f"portfolio/{self.account_id}/positions/{page}") or []
            for p in items:
                out.append(Position(str(p.get("ticker") or p.get("contractDesc") or ""), int(p.get("conid") or 0),
                                    _decimal(p.get("position")) or Decimal(0), _decimal(p.get("mktPrice")),
                                    _decimal(p.get("mktValue")), _decimal(p.get("avgCost")),
                                    str(p.get("currency") or "USD")))
            if len(items) < 100:  # IBKR pages hold up to 100 positions
                break
        return out

    def _ledger(self) -> dict:
        self._ensure_accounts()
        data = self._read("GET", f"portfolio/{self.account_id}/ledger") or {}
        return data.get("USD") or data.get("BASE") or {}

    def cash_balance(self) -> Decimal | None:
        return _decimal(self._ledger().get("cashbalance"))

    def net_liquidation(self) -> Decimal | None:
        return _decimal(self._ledger().get("netliquidationvalue"))

    def available_cash(self, at: datetime | None = None) -> Decimal | None:
        """Funds available for trading (the funding check before a run's orders)."""
        self._ensure_accounts()
        data = self._read("GET", f"portfolio/{self.account_id}/summary") or {}
        entry = data.get("availablefunds") or data.get("totalcashvalue") or {}
        return _decimal(entry.get("amount") if isinstance(entry, dict) else entry)

    def recent_trades(self, days: int = 7) -> list[Trade]:
        self._ensure_accounts()
        items = self._read("GET", TRADES_PATH, {"days": str(days)}) or []
        out = []
        for t in items:
            stamp = t.get("trade_time_r")
            when = datetime.fromtimestamp(int(stamp) / 1000, timezone.utc) if stamp else None
            out.append(Trade(str(t.get("execution_id") or ""), str(t.get("order_ref") or ""), str(t.get("symbol") or ""),
                             str(t.get("side") or ""), _decimal(t.get("size")) or Decimal(0),
                             _decimal(t.get("price")) or Decimal(0), _decimal(t.get("commission")), when))
        return out


# -- translating IBKR's shapes ------------------------------------------------------------------


def _decimal(value: Any) -> Decimal | None:
    if value is None or value == "":
        return None
    try:
        d = Decimal(str(value).replace(",", ""))
    except InvalidOperation:
        return None
    return d if d.is_finite() else None


def _state(status: Any, filled: Decimal = Decimal(0), total: Decimal | None = None) -> OrderState:
    s = str(status or "").replace(" ", "").lower()
    if s == "filled" or (total is not None and total > 0 and filled >= total):
        return OrderState.FILLED
    if s in _CANCELLED:
        return OrderState.CANCELLED
    if s == "inactive":  # rejected for margin, permissions or hours; check the text
        return OrderState.REJECTED if not filled else OrderState.CANCELLED
    return OrderState.PARTIAL if filled > 0 else OrderState.WORKING


def _listed(item: dict) -> BrokerOrder:
    filled = _decimal(item.get("filledQuantity", item.get("filled_quantity"))) or Decimal(0)
    total = _decimal(item.get("totalSize"))
    if total is None:
        total = filled + (_decimal(item.get("remainingQuantity", item.get("remaining_quantity"))) or Decimal(0))
    stamp = item.get("lastExecutionTime_r")
    return BrokerOrder(
        order_ref=str(item.get("order_ref")), symbol=str(item.get("ticker") or ""), quantity=total,
        state=_state(item.get("status"), filled, total), filled_quantity=filled,
        avg_price=_decimal(item.get("avgPrice")) if filled else None,
        broker_order_id=str(item.get("orderId", item.get("order_id", ""))) or None,
        broker_status=str(item.get("status") or ""),
        placed_at=datetime.fromtimestamp(int(stamp) / 1000, timezone.utc) if stamp else None,
    )


def _duplicate(text: str) -> bool:
    return "already registered" in text.lower()


def _error_text(e: Exception) -> str:
    """The gateway's own words from an ibind error (its message ends with the body)."""
    text = str(e).rsplit(" :: ", 1)[-1]
    try:
        body = json.loads(text)
    except (json.JSONDecodeError, ValueError):
        return text[:300]
    if isinstance(body, dict) and body.get("error"):
        return str(body["error"])[:300]
    return text[:300]


def _short(e: Exception | None) -> str:
    return "no answer" if e is None else f"{type(e).__name__}: {str(e)[:200]}"


def _never_connected(e: Exception) -> bool:
    """Whether the request provably never reached the gateway: the connection was refused
    or could not be opened in time (nothing was sent)."""
    import requests
    from urllib3.exceptions import ConnectTimeoutError, NewConnectionError

    cause = e.__cause__
    if isinstance(cause, requests.exceptions.ConnectTimeout):
        return True
    if isinstance(cause, requests.exceptions.ConnectionError) and cause.args:
        reason = getattr(cause.args[0], "reason", cause.args[0])
        return isinstance(reason, (NewConnectionError, ConnectTimeoutError)) and not isinstance(
            reason, requests.exceptions.ReadTimeout)
    return False
