"""Run now: preview what a run would do at this moment, confirm, then run it; or buy one
row once, now, outside the schedule.

The run is the same engine run as the worker's and the command line's: the same lock
(a run-now during the worker's run waits for it, then finds nothing left), the same
exactly-once key. The page waits for another run only briefly, then says so. Nothing real
is sent before a confirmation that names the total and the account; the decisions live in
`dca.panel.run_flow` as plain functions.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import pandas as pd
import streamlit as st

from dca.account_view import broker_mode
from dca.bootstrap import Services
from dca.engine import RunReport
from dca.errors import DcaError
from dca.one_off import manual_row_id, place_one_off
from dca.panel.frame import page_frame
from dca.panel.run_flow import (
    confirmation_for,
    confirmation_text,
    new_one_off_key,
    one_off_confirmation_text,
    orders_blocked_reason,
    planned_count,
    still_confirmed,
)
from dca.schedule_rules import NEW_YORK
from dca.panel.tables import show_table

# A person is looking at the page: wait for another run (e.g. the worker's) only briefly.
WAIT_FOR_ANOTHER_RUN_S = 20

services: Services = page_frame()
mode = broker_mode(services.settings.simulated, services.broker)
st.title("Run now")
st.caption("A run buys what is due at this moment, exactly once; a second run finds nothing left to do. "
           "Preview first: it records and orders nothing.")


def auth_state() -> tuple[bool, bool]:
    """(login configured, this person logged in), from configuration: `[auth]` in secrets."""
    try:
        configured = "auth" in st.secrets
    except Exception:  # no secrets file at all
        configured = False
    logged_in = configured and bool(getattr(st.user, "is_logged_in", False))
    return configured, logged_in


configured, logged_in = auth_state()
blocked = orders_blocked_reason(st.get_option("server.address"), configured, logged_in)
if blocked:
    st.error(blocked, icon=":material/lock:")
    if configured and not logged_in:
        st.button("Log in", on_click=st.login, key="run_login")


def show(report: RunReport) -> None:
    if report.executions:
        show_table(pd.DataFrame([
            {
                "Row": e.row_number,
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


def preview(now: datetime) -> RunReport | str:
    try:
        return services.engine.run(now, dry_run=True)
    except DcaError as e:
        return str(e)


now = datetime.now(NEW_YORK)
left, right = st.columns(2)
if left.button("Preview", icon=":material/visibility:", key="run_preview"):
    st.session_state["run_result"] = preview(now)
    st.session_state.pop("run_pending", None)
if right.button("Run now…", type="primary", icon=":material/play_arrow:", key="run_now", disabled=bool(blocked),
                help=blocked):
    # The confirmation is made from a fresh preview, so it names what would really be bought.
    result = preview(now)
    st.session_state["run_result"] = result
    st.session_state["run_pending"] = confirmation_for(result) if isinstance(result, RunReport) else None

pending = st.session_state.get("run_pending")
if pending and not blocked:
    with st.container(border=True):
        if st.session_state.pop("run_changed", False):
            st.warning("What is due changed since you were asked, so nothing was bought. Look at the preview "
                       "below and confirm again.", icon=":material/update:")
        st.markdown("**" + confirmation_text(pending["total"], pending["buys"], mode) + "**")
        yes, no = st.columns(2)
        if no.button("Cancel", key="run_cancel"):
            st.session_state.pop("run_pending", None)
            st.rerun()
        if yes.button("Confirm and buy", type="primary", icon=":material/check:", key="run_confirm"):
            st.session_state.pop("run_pending", None)
            at = datetime.now(NEW_YORK)
            fresh = preview(at)
            if isinstance(fresh, RunReport) and planned_count(fresh) and not still_confirmed(pending, fresh):
                st.session_state["run_result"] = fresh
                st.session_state["run_pending"] = confirmation_for(fresh)
                st.session_state["run_changed"] = True
            else:
                with st.spinner("Running…"):
                    try:
                        wait = min(WAIT_FOR_ANOTHER_RUN_S, services.settings.lock_timeout_seconds)
                        st.session_state["run_result"] = services.engine.run(at, lock_timeout=wait)
                    except DcaError as e:
                        st.session_state["run_result"] = str(e)
            st.rerun()

result = st.session_state.get("run_result")
if isinstance(result, str):
    st.error(result, icon=":material/error:")
elif result is not None:
    st.subheader(f"{'Preview' if result.dry_run else 'Run'} as of {result.as_of.astimezone(NEW_YORK):%Y-%m-%d %H:%M} ET")
    show(result)
    if result.dry_run and not planned_count(result) and not st.session_state.get("run_pending"):
        st.info("Nothing is due to buy right now, so there is nothing to confirm.", icon=":material/event_available:")

st.divider()
st.subheader("Buy now, once")
st.caption("One order for one row, outside the schedule, under the same guards as a run. "
           "It does not change the plan or the row's carry.")
try:
    rows = [r for r in services.plan_source.load().rows if r.active]
except DcaError as e:
    rows = []
    st.error(f"The plan cannot be read: {e}", icon=":material/error:")
if rows:
    labels = {f"Row {r.row_number}: {r.symbol} (${r.amount:,.2f} {r.frequency})": r for r in rows}
    chosen = labels[st.selectbox("Row", list(labels), key="buy_row")]
    amount = st.number_input("Amount (USD)", min_value=1.0, max_value=999_999.0, step=1.0,
                             value=float(chosen.amount), key="buy_amount")
    if st.button("Buy now…", icon=":material/shopping_cart:", key="buy_now", disabled=bool(blocked), help=blocked):
        st.session_state["buy_pending"] = {"symbol": chosen.symbol, "amount": Decimal(str(amount)).quantize(Decimal("0.01")),
                                           "key": new_one_off_key()}
        st.session_state.pop("buy_result", None)
else:
    st.info("No active row to buy.", icon=":material/info:")

buy = st.session_state.get("buy_pending")
if buy and not blocked:
    with st.container(border=True):
        st.markdown("**" + one_off_confirmation_text(buy["symbol"], buy["amount"], mode) + "**")
        yes, no = st.columns(2)
        if no.button("Cancel", key="buy_cancel"):
            st.session_state.pop("buy_pending", None)
            st.rerun()
        if yes.button("Confirm and buy", type="primary", icon=":material/check:", key="buy_confirm"):
            st.session_state.pop("buy_pending", None)
            try:
                # Every click of this confirmation sends the same key: a double click is one order.
                st.session_state["buy_result"] = place_one_off(
                    services.engine, "manual", buy["key"], manual_row_id(buy["key"]), buy["symbol"], buy["amount"],
                    datetime.now(NEW_YORK))
            except DcaError as e:
                st.session_state["buy_result"] = str(e)
            st.rerun()

answer = st.session_state.get("buy_result")
if isinstance(answer, str):
    st.error(answer, icon=":material/error:")
elif answer is not None:
    e = answer.execution
    if answer.replayed:
        st.info("This buy was already placed; it was not bought again.", icon=":material/done_all:")
    if answer.deferred:
        st.warning(f"Not attempted: {answer.deferred}", icon=":material/schedule:")
    elif e is not None:
        got = f"{e.quantity} shares at ${e.price:,.2f}" if e.quantity is not None and e.price is not None else ""
        text = f"Buy now: {e.symbol} {e.status}" + (f", {got}" if got else "") + (f". {e.message}" if e.message else "")
        (st.success if str(e.status) in ("filled", "submitted") else st.warning)(text)
