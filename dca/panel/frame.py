"""The frame every panel page starts with.

Each page calls `page_frame()` itself, rather than relying on app.py to have run first:
Streamlit runs a file in `pages/` on its own in some cases (legacy multipage mode right
after a restart, AppTest.switch_page), and a page must never appear without the settings
check or the SIMULATED banner. In the legacy mode the page also sends itself through
app.py (`_route_through_app`), so its menu and error guard are the panel's.
"""

from __future__ import annotations

import runpy
import sqlite3
from dataclasses import replace
from pathlib import Path

import streamlit as st

from dca.account_view import broker_mode
from dca.bootstrap import Services, attach_ledger, build, build_plan_source
from dca.engine import Engine
from dca.errors import ConfigError, DcaError
from dca.settings import Settings, load_settings


@st.cache_resource(show_spinner=False)
def cached_settings() -> Settings:
    # Once per process and shared by every session: Settings is frozen, so sharing it
    # across threads is safe. A ConfigError is not cached, so fixing dca.toml or .env
    # and reloading the page is enough; environment changes need a restart.
    return load_settings()


@st.cache_resource(show_spinner=False)
def cached_services() -> Services:
    # Once per process, shared by every session and rerun, like the settings they are
    # built from. What is shared is safe between the sessions' threads: SQLite
    # connections are per thread (dca.sqlite_conn), the Schedule's and the calendar's
    # caches are replaced whole under a lock. The plan source is not shared (see
    # `for_this_rerun`). A failure is not cached: the next rerun tries again.
    return build(cached_settings())


def for_this_rerun(shared: Services) -> Services:
    """The shared services with a plan source (and an engine using it) of this rerun's
    own: a plan source remembers the file it last read, to refuse writing IDs into a file
    that changed since, and another session's read must not stand in for this one's."""
    plan_source = build_plan_source(shared.settings)
    attach_ledger(plan_source, shared.ledger)
    engine = Engine(plan_source, shared.broker, shared.ledger, shared.notifier, shared.schedule, shared.engine.options)
    return replace(shared, plan_source=plan_source, engine=engine)


APP = Path(__file__).resolve().parents[2] / "app.py"


def _route_through_app() -> None:
    """Streamlit decides per process, at the first session, whether the app uses the
    legacy `pages/` folder mode: it does (the folder exists) until app.py's
    `st.navigation` has run once. So right after a restart the first visitor at, say,
    /history gets the page run directly: Streamlit's own menu (with an "app" entry, every
    file name) and none of app.py's error guard. Here the question is settled as
    st.navigation would, and app.py runs in this same run (not a rerun, which would drop
    the click that started it); app.py runs this page again, and the direct run stops."""
    from streamlit.runtime.pages_manager import PagesManager

    if PagesManager.uses_pages_directory:
        PagesManager.uses_pages_directory = False
        runpy.run_path(str(APP), run_name="__main__")
        st.stop()


def page_frame() -> Services:
    """Settings and services for this rerun, with the banner drawn; stops on bad config.
    Checked on every rerun of every page, though built once per process."""
    _route_through_app()
    try:
        settings = cached_settings()
    except ConfigError as e:
        st.error(str(e), icon=":material/settings_alert:")
        st.stop()
    try:
        services = for_this_rerun(cached_services())
    except (DcaError, OSError, sqlite3.Error) as e:
        st.error(f"Cannot start the services: {e}", icon=":material/error:")
        st.stop()
    mode = broker_mode(settings.simulated, services.broker)
    # Shown above every page: nobody should mistake the simulation for real trading, or a
    # live account for a paper one.
    if mode.label == "SIMULATED":
        st.warning(
            "**SIMULATED broker — no real money.** Orders go to a local simulated book, "
            "never to Interactive Brokers.",
            icon=":material/science:",
        )
    elif mode.label == "PAPER":
        st.info(f"**PAPER account {mode.account} at Interactive Brokers — no real money.**", icon=":material/school:")
    elif mode.label == "LIVE":
        st.error(f"**LIVE account {mode.account} at Interactive Brokers — real money.** Orders placed here are real.",
                 icon=":material/payments:")
    else:
        st.error("**Interactive Brokers — the account is not known yet.** The gateway's login picks it; it may be "
                 "a LIVE account with real money.", icon=":material/payments:")
    st.sidebar.markdown(f"Broker: **{mode.label}**" + (f" `{mode.account}`" if mode.account else ""))
    st.sidebar.caption(f"Buys run at {settings.run_time:%H:%M} New York time on NYSE trading days.")
    return services


UNEXPECTED = ("Something went wrong on this page that the panel did not expect, so it stopped drawing it. "
              "Reload the page to try again; if it stays, the details are in the panel's log (the terminal or "
              "service running `streamlit run app.py`, and the log file of the Status page's settings).")


def show_unexpected_error() -> None:
    st.error(UNEXPECTED, icon=":material/report:")
