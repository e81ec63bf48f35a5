"""The frame every panel page starts with.

Each page calls `page_frame()` itself, rather than relying on app.py to have run first:
Streamlit runs a file in `pages/` on its own in some cases (legacy multipage mode right
after a restart, AppTest.switch_page), and a page must never appear without the settings
check or the SIMULATED banner.
"""

from __future__ import annotations

import sqlite3

import streamlit as st

from dca.bootstrap import Services, build
from dca.errors import ConfigError, DcaError
from dca.settings import Settings, load_settings


@st.cache_resource(show_spinner=False)
def cached_settings() -> Settings:
    # Once per process and shared by every session: Settings is frozen, so sharing it
    # across threads is safe. A ConfigError is not cached, so fixing dca.toml or .env
    # and reloading the page is enough; environment changes need a restart.
    return load_settings()


def page_frame() -> Services:
    """Settings and services for this rerun, with the banner drawn; stops on bad config."""
    try:
        settings = cached_settings()
    except ConfigError as e:
        st.error(str(e), icon=":material/settings_alert:")
        st.stop()
    # Built on every rerun rather than cached: it is cheap (the NYSE calendar is cached
    # inside dca), and the Schedule keeps a mutable window cache that must not be shared
    # between concurrent sessions.
    try:
        services = build(settings)
    except (DcaError, OSError, sqlite3.Error) as e:
        st.error(f"Cannot start the services: {e}", icon=":material/error:")
        st.stop()
    if settings.simulated:
        # Shown above every page: nobody should mistake the simulation for real trading.
        st.warning(
            "**SIMULATED broker — no real money.** Orders go to a local simulated book, "
            "never to Interactive Brokers.",
            icon=":material/science:",
        )
    st.sidebar.caption(f"Buys run at {settings.run_time:%H:%M} New York time on NYSE trading days.")
    return services
