"""Draws the carry notes (dca.panel.carry_view) on the Plan, Calendar and History pages."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import streamlit as st

from dca.bootstrap import Services
from dca.domain import PlanRow
from dca.execution import today_in_new_york
from dca.panel.outlook_cache import cached_carry_notes

SHOWN = 20  # a plan of a thousand small rows must not bury the page


def show_carry_notes(services: Services, rows: Sequence[PlanRow], now: datetime) -> None:
    s = services.settings
    fractional = s.sim_fractional if s.simulated else s.ibkr_fractional
    # Projected from the ledger's latest run when that is later than today (a run made
    # ahead with `--now`): its dates up to then are already recorded.
    last = services.ledger.last_run()
    today = today_in_new_york(now)
    if last and last.get("as_of"):
        today = max(today, today_in_new_york(datetime.fromisoformat(last["as_of"])))
    notes = cached_carry_notes(services, rows, today, fractional)
    for note in notes[:SHOWN]:
        st.info(note.text, icon=":material/savings:")
    if len(notes) > SHOWN:
        st.caption(f"…and {len(notes) - SHOWN} more rows saving up for a share.")
