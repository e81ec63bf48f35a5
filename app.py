"""The Streamlit control panel: `streamlit run app.py`.

This file is the router: it lists the pages with `st.navigation` (so Streamlit's automatic
`pages/` discovery is not what builds the menu). Each page draws the shared frame itself
(`dca.panel.frame.page_frame`), so it is complete however Streamlit reaches it.
"""

import logging
from pathlib import Path

import streamlit as st

from dca.panel.frame import show_unexpected_error

logger = logging.getLogger("dca.panel")

# A local image: a `:material/...:` or emoji icon makes the browser fetch the favicon from
# an outside server, and the panel makes no outside request (offline, nothing leaked).
ICON = Path(__file__).parent / "dca" / "panel" / "favicon.png"
st.set_page_config(page_title="DCA control panel", page_icon=str(ICON), layout="wide")

page = st.navigation(
    [
        st.Page("pages/plan.py", title="Plan", icon=":material/list_alt:", default=True),
        st.Page("pages/calendar.py", title="Calendar", icon=":material/calendar_month:"),
        st.Page("pages/history.py", title="History", icon=":material/history:"),
        st.Page("pages/run.py", title="Run now", icon=":material/play_circle:"),
        st.Page("pages/portfolio.py", title="Portfolio", icon=":material/account_balance:"),
        st.Page("pages/status.py", title="Status", icon=":material/monitor_heart:"),
    ]
)
try:
    page.run()
except Exception:  # Streamlit's stop and rerun are BaseExceptions: they pass through
    # A sentence of ours instead of Streamlit's generic page; the traceback (which may
    # hold paths or URLs) goes to the server's log only.
    logger.exception("the %s page failed", page.title)
    show_unexpected_error()
