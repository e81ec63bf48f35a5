"""Builds the adapters from Settings. Every face (CLI, worker, panel, API) starts here."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from dca.engine import Checkpoint, Engine, RunOptions
from dca.ledger import Ledger
from dca.ports import Broker, Notifier, PlanSource
from dca.schedule_rules import Schedule
from dca.settings import Settings

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


def build_plan_source(settings: Settings) -> PlanSource:
    from dca.plans.csv_file import CsvPlanSource, write_example_plan

    if settings.default_plan:
        # First start: give people a plan to look at rather than an error.
        write_example_plan(settings.plan_path)
    return CsvPlanSource(settings.plan_path)


def build_schedule(settings: Settings) -> Schedule:
    from dca.trading_calendar import NyseCalendar

    return Schedule(NyseCalendar(), settings.run_time)


def build_broker(settings: Settings) -> Broker:
    """The broker the settings name; each adapter is imported only when chosen, so the
    embedded default never loads a network client."""
    if settings.broker == "simulated":
        from dca.brokers.simulated import RealisticWorld, SimulatedBroker

        world = RealisticWorld() if settings.sim_realistic else None
        return SimulatedBroker(settings.sim_book_path, settings.sim_fractional, settings.sim_faults, world)
    raise AssertionError(f"settings allowed an unknown broker {settings.broker!r}")  # _broker() validates


def build_notifier(settings: Settings) -> Notifier:
    from dca.notify.log_notifier import FileNotifier

    return FileNotifier(settings.notify_file)


def run_options(settings: Settings) -> RunOptions:
    return RunOptions(
        grace=settings.grace,
        max_lateness=settings.max_lateness,
        max_order_usd=settings.max_order_usd,
        max_daily_usd=settings.max_daily_usd,
        price_margin=settings.price_margin_percent / 100,
    )


def build(settings: Settings, checkpoint: Checkpoint | None = None) -> Services:
    plan_source = build_plan_source(settings)
    broker = build_broker(settings)
    logger.info("settings in effect: %s", settings.describe())  # describe() masks secrets
    if broker.simulated:
        logger.info("Running with the %s: no real orders are placed", broker.name)
    ledger = Ledger(settings.db_path, lock_timeout=settings.lock_timeout_seconds)
    notifier = build_notifier(settings)
    schedule = build_schedule(settings)
    engine = Engine(plan_source, broker, ledger, notifier, schedule, run_options(settings), checkpoint)
    return Services(settings, plan_source, broker, ledger, notifier, schedule, engine)
