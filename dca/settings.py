"""One typed, frozen Settings object, loaded once: defaults < dca.toml < environment < flags.

With no file and no variables at all, the embedded default runs: a CSV plan, the
SIMULATED broker, a SQLite ledger and a local notification file, all under DCA_HOME.
Secrets (later: webhook URLs, broker credentials) are read only from the environment or
a git-ignored `.env`, never from dca.toml, and never printed.
"""

from __future__ import annotations

import difflib
import logging
import os
import re
import tomllib
from dataclasses import dataclass, field, fields
from datetime import time, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Callable, Mapping

from dca.brokers.simulated import FAULTS
from dca.errors import ConfigError

logger = logging.getLogger(__name__)


def default_home(env: Mapping[str, str] | None = None) -> Path:
    """DCA_HOME's default: a fixed per-user place, so every face finds the same ledger
    whatever directory it was started from (two ledgers could mean two orders)."""
    base = (os.environ if env is None else env).get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "dca"


BROKERS = ("simulated", "ibkr")


@dataclass(frozen=True)
class Settings:
    home: Path
    plan_path: Path
    db_path: Path
    run_time: time = time(9, 0)
    grace: timedelta = timedelta(minutes=5)
    max_lateness: timedelta | None = None
    max_order_usd: Decimal = Decimal("5000")
    max_daily_usd: Decimal = Decimal("10000")
    price_margin_percent: Decimal = Decimal("5")
    broker: str = "simulated"
    sim_fractional: bool = False
    sim_realistic: bool = False
    sim_book_path: Path | None = None
    sim_faults: Mapping[str, str] = field(default_factory=dict)
    notify_file: Path | None = None
    lock_timeout_seconds: float = 900.0
    # The plan as a Google Sheet: set by a sheet's address in DCA_PLAN (or DCA_SHEET_ID).
    sheet_id: str | None = None
    sheet_gid: int | None = None
    sheet_worksheet: str | None = None
    google_credentials: Path | None = None
    sheets_api_url: str = "https://sheets.googleapis.com"
    # The HTTP API (`dca api`): its bearer token, and the shared secret TradingView alerts carry.
    api_token: str | None = field(default=None, repr=False, metadata={"secret": True})
    tradingview_secret: str | None = field(default=None, repr=False, metadata={"secret": True})
    # Interactive Brokers (broker.kind = "ibkr"); the IBIND_* variables are ibind's own.
    ibkr_url: str | None = None
    ibkr_account: str | None = None
    ibkr_allow_live: bool = False
    ibkr_use_oauth: bool = False
    ibkr_answers: tuple[str, ...] = ("o354",)
    ibkr_fractional: bool = False
    ibkr_timeout_seconds: float = 10.0
    ibkr_max_price_move_percent: Decimal = Decimal("10")
    # Notifications (dca/notify/) and logs (dca/logs.py).
    discord_webhook_url: str | None = field(default=None, repr=False, metadata={"secret": True})
    notify_preset: str = "default"
    notify_rules: Mapping[str, str] = field(default_factory=dict)
    notify_mention: str = ""
    log_level: str = "INFO"
    log_file: Path | None = None
    # The worker (dca/worker.py): its morning check, and how often it tries again a run
    # that could not reach the broker, until the close.
    preflight_time: time = time(8, 30)
    retry_minutes: timedelta = timedelta(minutes=15)
    config_file: Path | None = None
    # Which settings came from where, for `dca status`.
    sources: Mapping[str, str] = field(default_factory=dict, compare=False)

    @property
    def simulated(self) -> bool:
        return self.broker == "simulated"

    @property
    def default_plan(self) -> bool:
        return self.sheet_id is None and self.plan_path == self.home / "plan.csv"

    @property
    def uses_sheet(self) -> bool:
        return self.sheet_id is not None

    def describe(self) -> dict[str, Any]:
        """Everything in effect, safe to print (secret values are masked)."""
        out = {}
        for f in fields(self):
            if f.name == "sources":
                continue
            value = getattr(self, f.name)
            if f.metadata.get("secret") and value:
                value = "****"
            elif isinstance(value, timedelta):
                value = f"{int(value.total_seconds() // 60)} min"
            elif isinstance(value, (Path, Decimal, time)):
                value = str(value)[:5] if isinstance(value, time) else str(value)
            elif isinstance(value, Mapping):
                value = dict(value)
            elif isinstance(value, tuple):
                value = ",".join(map(str, value))
            out[f.name] = value
        return out


# name: (toml section.key, environment variable, parser)
def _path(v: Any) -> Path:
    return Path(os.path.expanduser(str(v)))


def _plan_location(v: Any):
    """A path, or a Google Sheet's address (recognised before any path handling, which
    would turn `https://` into `https:/`)."""
    from dca.plans.sheets import looks_like_url, parse_sheet_url

    if looks_like_url(v):
        return parse_sheet_url(str(v))
    return _path(v)


def _sheet_id(v: Any) -> str:
    from dca.plans.sheets import looks_like_url, parse_sheet_id

    if looks_like_url(v):
        raise ValueError("this takes the bare spreadsheet id; put the sheet's address in DCA_PLAN instead")
    return parse_sheet_id(str(v))


def _worksheet(v: Any) -> str:
    text = str(v).strip()
    if not text or len(text) > 100:
        raise ValueError(f"'{text[:100]}' is not a worksheet name (the tab's name at the bottom of the sheet)")
    return text


def _api_url(v: Any) -> str:
    text = str(v).strip().rstrip("/")
    if not re.fullmatch(r"https?://[^\s/]+(:\d+)?", text):
        raise ValueError(f"'{text[:80]}' is not a base address like https://sheets.googleapis.com")
    return text


def _run_time(v: Any) -> time:
    m = re.fullmatch(r"(\d{1,2}):(\d{2})", str(v).strip())
    if not m or int(m[1]) > 23 or int(m[2]) > 59:
        raise ValueError(f"'{v}' is not a time of day like 09:00")
    return time(int(m[1]), int(m[2]))


def _minutes(v: Any) -> timedelta:
    return timedelta(minutes=_bounded(v, 60 * 24 * 366, "minutes"))


def _optional_minutes(v: Any) -> timedelta | None:
    if str(v).strip().lower() in ("", "none", "off", "0"):
        return None
    return _minutes(v)


def _usd(v: Any) -> Decimal:
    try:
        d = Decimal(str(v).replace("$", "").replace(",", "").strip())
    except InvalidOperation:
        raise ValueError(f"'{v}' is not an amount of dollars") from None
    if not d.is_finite() or d <= 0:
        raise ValueError(f"{v} must be a positive amount of dollars")
    return d


def _percent(v: Any) -> Decimal:
    try:
        d = Decimal(str(v).replace("%", "").strip())
    except InvalidOperation:
        raise ValueError(f"'{v}' is not a percentage like 5") from None
    if not d.is_finite() or not 0 <= d <= 50:
        raise ValueError(f"{v} must be a percentage from 0 to 50")
    return d


def _bool(v: Any) -> bool:
    if isinstance(v, bool):
        return v
    text = str(v).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"'{v}' is not true or false")


def _broker(v: Any) -> str:
    kind = str(v).strip().lower()
    if kind not in BROKERS:
        raise ValueError(f"'{v}' is not a broker this version supports (choose from: {', '.join(BROKERS)})")
    return kind


def _faults(v: Any) -> dict[str, str]:
    """'AAPL=reject,SPY=timeout_after_accept:1' or a TOML table."""
    if isinstance(v, Mapping):
        items = list(v.items())
    else:
        items = []
        for part in (p.strip() for p in str(v).split(",") if p.strip()):
            symbol, sep, spec = part.partition("=")
            if not sep:
                raise ValueError(f"'{part}' should be SYMBOL=fault, e.g. AAPL=reject or *=unavailable")
            items.append((symbol, spec))
    faults = {}
    for symbol, spec in items:
        name = str(spec).strip().split(":")[0]
        if name not in FAULTS:
            raise ValueError(f"unknown fault '{name}' (choose from: {', '.join(FAULTS)})")
        faults[str(symbol).strip().upper()] = str(spec).strip()
    return faults


def _text(v: Any) -> str:
    return str(v).strip()


def _url(v: Any) -> str:
    text = str(v).strip()
    if not re.fullmatch(r"https?://[^\s/]+(/\S*)?", text):
        raise ValueError(f"'{v}' is not a URL like https://localhost:5000/v1/api/")
    return text


def _message_ids(v: Any) -> tuple[str, ...]:
    """IBKR question ids to confirm: 'o354,o163' or a TOML list; 'none' for none."""
    items = v if isinstance(v, (list, tuple)) else str(v).split(",")
    ids = tuple(str(i).strip().lower() for i in items if str(i).strip())
    if ids == ("none",):
        return ()
    for i in ids:
        if not re.fullmatch(r"[a-z]\d+", i):
            raise ValueError(f"'{i}' is not an IBKR message id like o354")
    return ids


def _seconds(v: Any) -> float:
    return _bounded(v, 86400, "seconds")


def _bounded(v: Any, most: float, unit: str) -> float:
    n = float(v)
    if n < 0:
        raise ValueError(f"{v} is negative")
    if not n <= most:  # also catches nan and inf
        raise ValueError(f"{v} is not a number of {unit} from 0 to {most:g}")
    return n


def _secret_text(v: Any) -> str | None:
    text = str(v).strip()
    if not text:
        return None  # set but empty: as if unset
    if len(text) < 16:
        raise ValueError("is shorter than 16 characters; use a long random value (e.g. `openssl rand -hex 32`)")
    return text
def _webhook_url(v: Any) -> str:
    from dca.notify.discord import check_webhook_url

    return check_webhook_url(v)


def _notify_preset(v: Any) -> str:
    from dca.notify.rules import parse_preset

    return parse_preset(v)


def _notify_rules(v: Any) -> dict[str, str]:
    from dca.notify.rules import parse_rules

    return parse_rules(v)


def _notify_mention(v: Any) -> str:
    from dca.notify.rules import parse_mention

    return parse_mention(v)


def _log_level(v: Any) -> str:
    level = str(v).strip().upper()
    if level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise ValueError(f"'{v}' is not a log level (choose from: DEBUG, INFO, WARNING, ERROR)")
    return level
def _positive_minutes(v: Any) -> timedelta:
    minutes = _minutes(v)
    if minutes < timedelta(minutes=1):
        raise ValueError(f"{v} must be at least 1 minute")
    return minutes


_KEYS: dict[str, tuple[str, str, Callable[[Any], Any]]] = {
    "home": ("data.home", "DCA_HOME", _path),
    "plan_path": ("plan.path", "DCA_PLAN", _plan_location),
    "db_path": ("ledger.path", "DCA_DB", _path),
    "run_time": ("schedule.run_time", "DCA_RUN_TIME", _run_time),
    "grace": ("schedule.grace_minutes", "DCA_GRACE_MINUTES", _minutes),
    "max_lateness": ("schedule.max_lateness_minutes", "DCA_MAX_LATENESS_MINUTES", _optional_minutes),
    "max_order_usd": ("guards.max_order_usd", "DCA_MAX_ORDER_USD", _usd),
    "max_daily_usd": ("guards.max_daily_usd", "DCA_MAX_DAILY_USD", _usd),
    "price_margin_percent": ("guards.price_margin_percent", "DCA_PRICE_MARGIN_PERCENT", _percent),
    "broker": ("broker.kind", "DCA_BROKER", _broker),
    "sim_fractional": ("broker.fractional", "DCA_SIM_FRACTIONAL", _bool),
    "sim_realistic": ("broker.realistic", "DCA_SIM_REALISTIC", _bool),
    "sim_book_path": ("broker.book", "DCA_SIM_BOOK", _path),
    "sim_faults": ("broker.faults", "DCA_SIM_FAULTS", _faults),
    "notify_file": ("notify.file", "DCA_NOTIFY_FILE", _path),
    "lock_timeout_seconds": ("ledger.lock_timeout_seconds", "DCA_LOCK_TIMEOUT", _seconds),
    "sheet_id": ("plan.sheet_id", "DCA_SHEET_ID", _sheet_id),
    "sheet_worksheet": ("plan.worksheet", "DCA_SHEET_WORKSHEET", _worksheet),
    "google_credentials": ("plan.credentials", "GOOGLE_APPLICATION_CREDENTIALS", _path),
    "sheets_api_url": ("plan.sheets_api_url", "DCA_SHEETS_API_URL", _api_url),
    "api_token": ("api.token", "DCA_API_TOKEN", _secret_text),
    "tradingview_secret": ("api.tradingview_secret", "DCA_TRADINGVIEW_SECRET", _secret_text),
    "ibkr_url": ("ibkr.url", "IBIND_REST_URL", _url),
    "ibkr_account": ("ibkr.account", "IBIND_ACCOUNT_ID", _text),
    "ibkr_allow_live": ("ibkr.allow_live", "DCA_IBKR_ALLOW_LIVE", _bool),
    "ibkr_use_oauth": ("ibkr.use_oauth", "IBIND_USE_OAUTH", _bool),
    "ibkr_answers": ("ibkr.answers", "DCA_IBKR_ANSWERS", _message_ids),
    "ibkr_fractional": ("ibkr.fractional", "DCA_IBKR_FRACTIONAL", _bool),
    "ibkr_timeout_seconds": ("ibkr.timeout_seconds", "DCA_IBKR_TIMEOUT", _seconds),
    "ibkr_max_price_move_percent": ("ibkr.max_price_move_percent", "DCA_IBKR_MAX_PRICE_MOVE_PERCENT", _percent),
    # Notifications and logs. The webhook URL is a secret: dca.toml refuses it (see _read_toml).
    "discord_webhook_url": ("notify.discord_webhook_url", "DCA_DISCORD_WEBHOOK_URL", _webhook_url),
    "notify_preset": ("notify.preset", "DCA_NOTIFY_PRESET", _notify_preset),
    "notify_rules": ("notify.rules", "DCA_NOTIFY_RULES", _notify_rules),
    "notify_mention": ("notify.mention", "DCA_NOTIFY_MENTION", _notify_mention),
    "log_level": ("logs.level", "DCA_LOG_LEVEL", _log_level),
    "log_file": ("logs.file", "DCA_LOG_FILE", _path),
    "preflight_time": ("worker.preflight_time", "DCA_PREFLIGHT_TIME", _run_time),
    "retry_minutes": ("worker.retry_minutes", "DCA_RETRY_MINUTES", _positive_minutes),
}
_SECRET_KEYS = re.compile(r"(?i)(secret|token|password|webhook|private|key)")


def read_dotenv(path: Path) -> dict[str, str]:
    """KEY=VALUE lines of a `.env` file (quotes stripped, # comments ignored)."""
    values = {}
    if not path.is_file():
        return values
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{path} is not UTF-8 text; save it as UTF-8") from None
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.removeprefix("export ").partition("=")
        if not sep:
            raise ConfigError(f"{path}, line {number}: expected KEY=VALUE")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key.strip()] = value
    return values


KNOWN_VARIABLES = frozenset({"DCA_CONFIG", *(env_key for _, env_key, _ in _KEYS.values())})


def unknown_variable_warnings(env: Mapping[str, str]) -> list[str]:
    """One warning per `DCA_…` variable this version does not read, naming the known one
    it is close to (a typo would otherwise be ignored without a word). Only names are
    shown, never values: the variable may hold a secret."""
    warnings = []
    for name in sorted(k for k in env if k.startswith("DCA_") and k not in KNOWN_VARIABLES):
        known = sorted(KNOWN_VARIABLES)
        close = difflib.get_close_matches(name, known, n=1, cutoff=0.75) or [
            k for k in known if k.startswith(name + "_") or name.startswith(k + "_")][:1]
        hint = f"did you mean {close[0]}?" if close else "see README's configuration table for the known ones"
        warnings.append(f"{name} (in the environment or .env) is not a dca setting and is ignored; {hint}")
    return warnings


def load_settings(
    config: Path | str | None = None,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
    dotenv: Path | None = Path(".env"),
) -> Settings:
    """Build the Settings; raises ConfigError naming the key and what to write instead."""
    env = dict(read_dotenv(dotenv)) if dotenv else {}
    env.update(os.environ if environ is None else environ)  # the real environment wins over .env
    config_path = config or env.get("DCA_CONFIG")
    for warning in unknown_variable_warnings(env):
        logger.warning("%s", warning)
    file_values: dict[str, Any] = {}
    if config_path:
        file_values = _read_toml(Path(config_path))

    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for name, (toml_key, env_key, parse) in _KEYS.items():
        raw, where = None, None
        if toml_key in file_values:
            raw, where = file_values.pop(toml_key), f"{config_path} [{toml_key}]"
        if env.get(env_key, "") != "":
            raw, where = env[env_key], f"${env_key}"
        if overrides and overrides.get(name) is not None:
            raw, where = overrides[name], "command line"
        if where is None:
            continue
        try:
            values[name] = parse(raw)
        except (ValueError, TypeError, OverflowError) as e:
            which = f" ({name.replace('_', '-')})" if where == "command line" else ""
            raise ConfigError(f"{where}{which}: {e}") from None
        sources[name] = where
    if file_values:
        unknown = ", ".join(sorted(file_values))
        known = ", ".join(k for k, _, _ in _KEYS.values())
        raise ConfigError(f"{config_path}: unknown setting(s) {unknown}; known settings are {known}")

    _sheet_settings(values, sources)
    home = values.setdefault("home", default_home(env))
    values.setdefault("plan_path", home / "plan.csv")
    values.setdefault("db_path", home / "ledger.sqlite3")
    values.setdefault("sim_book_path", home / "simulated-broker.sqlite3")
    values.setdefault("notify_file", home / "notifications.log")
    values.setdefault("log_file", home / "logs" / "dca.log")
    values["config_file"] = Path(config_path) if config_path else None
    if values.get("sim_faults") and values.get("broker", "simulated") != "simulated":
        raise ConfigError("broker.faults only applies to the simulated broker; remove it")
    ibkr_set = sorted(where for name, where in sources.items() if name.startswith("ibkr_"))
    if ibkr_set and values.get("broker", "simulated") == "simulated":
        # Not an error (a person may keep the IBKR settings while trying the simulation),
        # but said: someone who meant to trade would otherwise see only the SIMULATED label.
        logger.warning("Interactive Brokers settings are given (%s) but the broker is the simulated one: nothing "
                       "reaches IBKR; set DCA_BROKER=ibkr (or [broker] kind = \"ibkr\" in dca.toml) to trade there",
                       ", ".join(ibkr_set))
    return Settings(**values, sources=sources)


def _sheet_settings(values: dict[str, Any], sources: dict[str, str]) -> None:
    """A sheet's address given as the plan becomes the sheet settings (its id, its gid)."""
    from dca.plans.sheets import SheetRef

    location = values.get("plan_path")
    if isinstance(location, SheetRef):
        where = sources.pop("plan_path")
        del values["plan_path"]
        if values.get("sheet_id") not in (None, location.spreadsheet_id):
            raise ConfigError(f"{where} names spreadsheet {location.spreadsheet_id} but {sources['sheet_id']} "
                              f"names {values['sheet_id']}; keep one of them")
        values["sheet_id"], values["sheet_gid"] = location.spreadsheet_id, location.gid
        sources["sheet_id"] = where
    if values.get("sheet_worksheet") and values.get("sheet_gid") is not None:
        raise ConfigError(f"{sources['sheet_worksheet']} names worksheet '{values['sheet_worksheet']}' but the "
                          f"address in {sources['sheet_id']} names gid {values['sheet_gid']}; keep one of them")
    if values.get("sheet_worksheet") and not values.get("sheet_id"):
        raise ConfigError(f"{sources['sheet_worksheet']} names a worksheet, but no Google Sheet is set; put the "
                          "sheet's address in DCA_PLAN")


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist (from --config or $DCA_CONFIG)") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"config file {path} is not valid TOML: {e}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"config file {path} is not UTF-8 text; save it as UTF-8") from None
    except OSError as e:  # a folder, or no permission to read it
        raise ConfigError(f"config file {path} cannot be read ({(e.strerror or str(e)).lower()}); "
                          "point --config or $DCA_CONFIG at a readable dca.toml") from None
    flat: dict[str, Any] = {}
    for section, table in data.items():
        if not isinstance(table, dict):
            raise ConfigError(f"{path}: '{section}' must be a [section]; see README for the layout")
        for key, value in table.items():
            if _SECRET_KEYS.search(key) and key != "faults":
                raise ConfigError(
                    f"{path}: [{section}] {key} looks like a secret; put it in the environment or a "
                    "git-ignored .env file, not in dca.toml"
                )
            flat[f"{section}.{key}"] = value
    return flat
