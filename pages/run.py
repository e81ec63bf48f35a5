"""Run now: preview what a run would do at this moment, then run it.

The run is the same engine run as the worker's and the command line's: the same lock
(a run-now during the worker's run waits for it, then finds nothing left), the same
exactly-once key. The page waits for another run only briefly, then says so.
"""

from __future__ import annotations

from datetime import datetime

import pandas as pd
import streamlit as st

from dca.bootstrap import Services
from dca.engine import RunReport
from dca.errors import DcaError
from dca.panel.frame import page_frame
from dca.schedule_rules import NEW_YORK

# A person is looking at the page: wait for another run (e.g. the worker's) only briefly.
WAIT_FOR_ANOTHER_RUN_S = 20

services: Services = page_frame()
st.title("Run now")
st.caption("A run buys what is due at this moment, exactly once; a second run finds nothing left to do. "
           "Preview first: it records and orders nothing.")


def show(report: RunReport) -> None:
    if report.executions:
        st.dataframe(pd.DataFrame([
            {
                "Symbol": e.symbol,
                "Scheduled (ET)": f"{e.scheduled_at:%Y-%m-%d %H:%M}",
                "Outcome": str(e.status) + (" (late)" if e.late else ""),
                "Quantity": None if e.quantity is None else float(e.quantity),
                "Price": None if e.price is None else float(e.price),
                "Cost": None if e.cost is None else float(e.cost),
                "Message": e.message,
            }
            for e in report.executions
        ]), hide_index=True, width="stretch", column_config={
            "Price": st.column_config.NumberColumn(format="dollar"),
            "Cost": st.column_config.NumberColumn(format="dollar"),
        })
    for d in report.deferred:
        st.warning(f"Not attempted: row {d['row']} {d['symbol']}: {d['message']}", icon=":material/schedule:")
    for issue in report.errors:
        st.error(issue.message, icon=":material/error:")
    summary = report.summary()
    counts = ", ".join(f"{v} {k}" for k, v in summary["counts"].items()) or "nothing due"
    st.markdown(f"**{'Would do' if report.dry_run else 'Done'}:** {counts}; total ${summary['total_spent']}")


now = datetime.now(NEW_YORK)
preview, run = st.columns(2)
if preview.button("Preview", icon=":material/visibility:", key="run_preview"):
    try:
        st.session_state["run_result"] = services.engine.run(now, dry_run=True)
    except DcaError as e:
        st.session_state["run_result"] = str(e)
if run.button("Run now", type="primary", icon=":material/play_arrow:", key="run_now"):
    with st.spinner("Running…"):
        try:
            wait = min(WAIT_FOR_ANOTHER_RUN_S, services.settings.lock_timeout_seconds)
            st.session_state["run_result"] = services.engine.run(now, lock_timeout=wait)
        except DcaError as e:
            st.session_state["run_result"] = str(e)

result = st.session_state.get("run_result")
if isinstance(result, str):
    st.error(result, icon=":material/error:")
elif result is not None:
    st.subheader(f"{'Preview' if result.dry_run else 'Run'} as of {result.as_of.astimezone(NEW_YORK):%Y-%m-%d %H:%M} ET")
    show(result)
