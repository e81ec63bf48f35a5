"""Builds the adapters from Settings. Every face (CLI, worker, panel, API) starts here."""

from __future__ import annotations

import logging
import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from dca.engine import Checkpoint, Engine, RunOptions
from dca.errors import ConfigError
from dca.ledger import Ledger
from dca.ports import Broker, Notifier, PlanSource
from dca.schedule_rules import Schedule
from dca.settings import Settings, read_dotenv
from dca.sqlite_conn import is_writable

logger = logging.getLogger(__name__)


@dataclass
class Services:
    settings: Settings
    plan_source: PlanSource
    broker: Broker
    ledger: Ledger
    notifier: Notifier
    schedule: Schedule
    engine: Engine


def _where(settings: Settings, name: str) -> str:
    """Which setting to change, as the person set it (a path derived from home: DCA_HOME)."""
    source = settings.sources.get(name)
    flag = {"plan_path": "--plan", "db_path": "--db"}.get(name)
    if source == "command line" and flag:
        return flag
    return source.lstrip("$") if source else "DCA_HOME"


def ensure_folder(folder: Path, setting: str) -> None:
    """Create a data folder if missing, or raise ConfigError in one sentence saying
    what is wrong and what to do (never an OSError, whose text may name a temp file)."""
    fix = f"set {setting} to a folder you can write (it is created if missing)"
    if folder.is_dir():
        return
    # The nearest part of the path that exists: a file there, or a read-only folder,
    # means the folder cannot be made. Checked by us, as root ignores permission bits.
    existing = next((p for p in folder.parents if p.exists()), None)
    if folder.exists() or (existing is not None and not existing.is_dir()):
        raise ConfigError(f"data folder {folder} cannot be used: {existing if not folder.exists() else folder} "
                          f"is a file, not a folder; {fix}")
    if existing is not None and not is_writable(existing):
        raise ConfigError(f"data folder {folder} cannot be created: {existing} is read-only; {fix}")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ConfigError(f"data folder {folder} cannot be created ({(e.strerror or str(e)).lower()}); {fix}") from e


def prepare_folders(settings: Settings) -> None:
    """Every folder the embedded default writes to, before anything opens a file there."""
    names = ("db_path", "sim_book_path", "notify_file") + (("plan_path",) if settings.default_plan else ())
    for name in names:
        path = getattr(settings, name)
        if path is not None:
            ensure_folder(path.parent, _where(settings, name))


def build_plan_source(settings: Settings) -> PlanSource:
    if settings.uses_sheet:
        from dca.plans.sheets import SheetError, SheetRef, build_sheet_source

        ref = SheetRef(settings.sheet_id, settings.sheet_gid, settings.sheet_worksheet)
        try:
            return build_sheet_source(ref, settings.google_credentials, settings.sheets_api_url)
        except SheetError as e:
            raise ConfigError(str(e)) from None
    from dca.plans.csv_file import CsvPlanSource, write_example_plan

    if settings.default_plan and not settings.plan_path.exists():
        # First start: give people a plan to look at rather than an error.
        if not is_writable(settings.plan_path.parent):
            raise ConfigError(
                f"there is no plan at {settings.plan_path} and its folder is read-only, so the example "
                f"plan cannot be created; make {settings.plan_path.parent} writable, set DCA_HOME to a folder "
                "you can write, or point DCA_PLAN or --plan at your plan")
        try:
            write_example_plan(settings.plan_path)
        except OSError as e:
            raise ConfigError(f"the example plan {settings.plan_path} cannot be created "
                              f"({(e.strerror or str(e)).lower()}); set DCA_HOME to a folder you can write") from e
    return CsvPlanSource(settings.plan_path)


def attach_ledger(plan_source: PlanSource, ledger: Ledger) -> None:
    """A Google Sheet keeps its last plan read in the ledger, for when it is unreachable."""
    if hasattr(plan_source, "use_memory"):
        plan_source.use_memory(ledger)


def build_schedule(settings: Settings) -> Schedule:
    from dca.trading_calendar import NyseCalendar

    return Schedule(NyseCalendar(), settings.run_time)


def build_broker(settings: Settings) -> Broker:
    """The broker the settings name; each adapter is imported only when chosen, so the
    embedded default never loads a network client."""
    if settings.broker == "simulated":
        from dca.brokers.simulated import RealisticWorld, SimulatedBroker

        world = RealisticWorld() if settings.sim_realistic else None
        try:
            return SimulatedBroker(settings.sim_book_path, settings.sim_fractional, settings.sim_faults, world)
        except sqlite3.Error as e:
            raise ConfigError(f"the simulated broker's order book {settings.sim_book_path} cannot be opened ({e}); "
                              f"point {_where(settings, 'sim_book_path')} at a file in a folder you can write") from e
    if settings.broker == "ibkr":
        from dca.brokers.ibkr import ContractCache, IbkrBroker, IbkrConfig, build_client

        config = IbkrConfig(
            url=settings.ibkr_url, account_id=settings.ibkr_account, allow_live=settings.ibkr_allow_live,
            use_oauth=settings.ibkr_use_oauth, answers=settings.ibkr_answers, fractional=settings.ibkr_fractional,
            timeout_seconds=settings.ibkr_timeout_seconds,
            max_price_move=settings.ibkr_max_price_move_percent / 100)
        # OAuth credentials are secrets: from the environment or `.env` (the environment
        # wins, as for every setting), read here rather than kept in Settings.
        environ = {**read_dotenv(Path(".env")), **os.environ} if settings.ibkr_use_oauth else None
        return IbkrBroker(build_client(config, environ), config, contracts=ContractCache(settings.db_path))
    raise AssertionError(f"settings allowed an unknown broker {settings.broker!r}")  # _broker() validates


def build_notifier(settings: Settings) -> Notifier:
    """Discord when a webhook URL is set, else the local notification file; both with the
    notification rules of the settings."""
    from dca.notify.rules import Rules

    rules = Rules.from_settings(settings)
    if settings.discord_webhook_url:
        from dca.notify.discord import DiscordNotifier

        return DiscordNotifier(settings.discord_webhook_url, rules)
    from dca.notify.log_notifier import FileNotifier

    return FileNotifier(settings.notify_file, rules)


def run_options(settings: Settings) -> RunOptions:
    return RunOptions(
        grace=settings.grace,
        max_lateness=settings.max_lateness,
        max_order_usd=settings.max_order_usd,
        max_daily_usd=settings.max_daily_usd,
        price_margin=settings.price_margin_percent / 100,
    )


def build(settings: Settings, checkpoint: Checkpoint | None = None) -> Services:
    from dca import logs

    logs.register_settings(settings)  # before anything could log a secret value
    prepare_folders(settings)
    plan_source = build_plan_source(settings)
    broker = build_broker(settings)
    logger.info("settings in effect: %s", settings.describe())  # describe() masks secrets
    if broker.simulated:
        logger.info("Running with the %s: no real orders are placed", broker.name)
    ledger = Ledger(settings.db_path, lock_timeout=settings.lock_timeout_seconds)
    attach_ledger(plan_source, ledger)
    notifier = build_notifier(settings)
    schedule = build_schedule(settings)
    engine = Engine(plan_source, broker, ledger, notifier, schedule, run_options(settings), checkpoint)
    return Services(settings, plan_source, broker, ledger, notifier, schedule, engine)
