"""Builds the adapters from Settings. Every face (CLI, worker, panel, API) starts here."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from dca.brokers.simulated import SimulatedBroker
from dca.engine import Checkpoint, Engine, RunOptions
from dca.ledger import Ledger
from dca.notify.log_notifier import FileNotifier
from dca.plans.csv_file import CsvPlanSource, write_example_plan
from dca.schedule_rules import Schedule
from dca.settings import Settings
from dca.trading_calendar import NyseCalendar

logger = logging.getLogger(__name__)


@dataclass
class Services:
    settings: Settings
    plan_source: CsvPlanSource
    broker: SimulatedBroker
    ledger: Ledger
    notifier: FileNotifier
    schedule: Schedule
    engine: Engine


def build_plan_source(settings: Settings) -> CsvPlanSource:
    if settings.default_plan:
        # First start: give people a plan to look at rather than an error.
        write_example_plan(settings.plan_path)
    return CsvPlanSource(settings.plan_path)


def build_schedule(settings: Settings) -> Schedule:
    return Schedule(NyseCalendar(), settings.run_time)


def build_broker(settings: Settings) -> SimulatedBroker:
    return SimulatedBroker(settings.sim_book_path, settings.sim_fractional, settings.sim_faults)


def build(settings: Settings, checkpoint: Checkpoint | None = None) -> Services:
    plan_source = build_plan_source(settings)
    broker = build_broker(settings)
    logger.info("settings in effect: %s", settings.describe())  # describe() masks secrets
    if broker.simulated:
        logger.info("Running with the SIMULATED broker: no real orders are placed")
    ledger = Ledger(settings.db_path, lock_timeout=settings.lock_timeout_seconds)
    notifier = FileNotifier(settings.notify_file)
    schedule = build_schedule(settings)
    options = RunOptions(
        grace=settings.grace,
        max_lateness=settings.max_lateness,
        max_order_usd=settings.max_order_usd,
        max_daily_usd=settings.max_daily_usd,
    )
    engine = Engine(plan_source, broker, ledger, notifier, schedule, options, checkpoint)
    return Services(settings, plan_source, broker, ledger, notifier, schedule, engine)
