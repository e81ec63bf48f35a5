"""Is everything all right? Open problems, orders in doubt, what waits to be delivered,
the last run, and the configuration in effect (secrets masked)."""

from __future__ import annotations

from datetime import datetime, timezone

import pandas as pd
import streamlit as st

from dca.bootstrap import Services
from dca.delivery import account_label, send_test_notification
from dca.domain import Outcome, format_money
from dca.errors import DcaError
from dca.panel.frame import page_frame
from dca.panel.status_view import NO_WORKER, heartbeat_lines, versions
from dca.panel.tables import show_table

services: Services = page_frame()
settings = services.settings
ledger = services.ledger
st.title("Status")

problems = ledger.open_notices()
in_doubt = ledger.with_status(Outcome.PENDING)
working = ledger.with_status(Outcome.SUBMITTED)
waiting = {kind: ledger.undelivered(kind) for kind in ("log", "notify")}

if not problems and not in_doubt:
    st.success("No open problems.", icon=":material/check_circle:")
for key, text in sorted(problems.items()):
    st.error(text, icon=":material/error:")
for e in in_doubt:
    st.warning(f"In doubt: {e.symbol} {format_money(e.amount_usd)} for {e.scheduled_date} (reference "
               f"{e.order_ref}): {e.message}", icon=":material/help:")
if working:
    st.info("Working at the broker: " + ", ".join(f"{e.symbol} ({e.order_ref}, {e.broker_status or 'submitted'})"
                                                  for e in working), icon=":material/hourglass_top:")

last = ledger.last_run()
a, b, c = st.columns(3)
a.metric("Last run (as of)", last["as_of"][:16].replace("T", " ") if last else "never")
b.metric("Log writes waiting", len(waiting["log"]))
c.metric("Notifications waiting", len(waiting["notify"]))
for kind, items in waiting.items():
    errors = {i.last_error for i in items if i.last_error}
    if errors:
        st.warning(f"{len(items)} {'Log writes' if kind == 'log' else 'notifications'} wait to be delivered: "
                   + "; ".join(sorted(errors)), icon=":material/outbox:")
if last and last.get("summary"):
    counts = ", ".join(f"{v} {k}" for k, v in last["summary"]["counts"].items()) or "nothing due"
    st.caption(f"Last run: {counts}; total ${last['summary']['total_spent']}.")

st.subheader("Worker")
heartbeat = ledger.heartbeat()
if heartbeat is None:
    st.warning(NO_WORKER, icon=":material/power_off:")
else:
    show_table(pd.DataFrame(heartbeat_lines(heartbeat), columns=["Worker", "Value"]), hide_index=True,
                 width="stretch", key="status_worker")

st.subheader("Notifications")
dead = ledger.given_up("notify")
if dead:
    st.error(f"{len(dead)} notification(s) were given up on and will not be sent again by themselves; latest "
             f"reason: {dead[-1]['last_error'] or 'none recorded'}", icon=":material/mail_off:")
for key, problem in sorted(ledger.notify_problems().items()):
    st.error(f"Notifier problem since {problem['since'][:16].replace('T', ' ')}: {problem['body']}",
             icon=":material/notifications_off:")
if st.button("Send test notification", icon=":material/send:", key="status_test_notification"):
    now = datetime.now(timezone.utc)
    error = send_test_notification(services.notifier, account_label(services.broker), now)
    st.session_state["status_test_result"] = (
        f"The test notification was sent to {services.notifier.description}." if error is None
        else f"The test notification did NOT arrive: {error}")
test_result = st.session_state.get("status_test_result")
if test_result:
    (st.success if test_result.startswith("The test notification was sent") else st.error)(test_result)

st.subheader("Connections")
now = datetime.now(timezone.utc)
try:
    ready = services.broker.readiness(now)
    broker_text = "ready" if ready.ready else f"not ready: {ready.message}"
except Exception as e:  # the page must show the broker's trouble, not fail with it
    ready = None
    broker_text = f"cannot be reached: {e}"
try:
    services.plan_source.load()
    plan_text = "reachable"
except (DcaError, OSError) as e:
    plan_text = f"cannot be read: {e}"
st.markdown(
    f"- Broker connection: **{broker_text}**; account type **{account_label(services.broker)}**\n"
    f"- Plan source: **{plan_text}**"
)

st.subheader("Where things are")
st.markdown(
    f"- Broker: **{services.broker.name}**\n"
    f"- Plan: `{services.plan_source.description}`\n"
    f"- Ledger: `{settings.db_path}`\n"
    f"- Notifications: {services.notifier.description}\n"
    f"- Settings file: `{settings.config_file or '(none: defaults and environment)'}`"
)
st.subheader("Settings in effect")
described = settings.describe()  # secret values are masked here, never shown
show_table(pd.DataFrame([
    {"Setting": k, "Value": str(v), "From": settings.sources.get(k, "default")} for k, v in described.items()
]), hide_index=True, width="stretch")
st.subheader("Versions")
show_table(pd.DataFrame(list(versions().items()), columns=["Package", "Version"]), hide_index=True,
             key="status_versions")
