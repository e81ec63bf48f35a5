"""The plan as the engine reads it: valid rows, each row's errors and warnings, and where
the plan file and the ledger are."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dca.bootstrap import Services
from dca.panel.frame import page_frame
from dca.domain import RowIssue
from dca.errors import PlanError

services: Services = page_frame()
settings = services.settings

st.title("Plan")
where = f"Plan: `{settings.plan_path}`"
if settings.default_plan:
    where += " (the default plan in DCA_HOME; set DCA_PLAN to use another file)"
st.markdown(f"{where}  \nLedger: `{settings.db_path}`")

try:
    plan = services.plan_source.load()
except PlanError as e:
    st.error(str(e), icon=":material/error:")
    st.stop()


def issue_text(issue: RowIssue) -> str:
    # The domain already starts its messages with "Row N: "; never show one without it.
    prefix = f"Row {issue.row_number}"
    return issue.message if issue.message.startswith(prefix) else f"{prefix}: {issue.message}"


for issue in plan.errors:
    st.error(issue_text(issue), icon=":material/error:")
for issue in plan.warnings:
    st.warning(issue_text(issue), icon=":material/warning:")

if not plan.rows:
    st.info("The plan has no valid rows yet, so nothing will be bought.")
    st.stop()

rows = pd.DataFrame(
    [
        {
            "Row": row.row_number,
            "Status": str(row.status),
            "Stock Symbol": row.symbol,
            "Amount (USD)": float(row.amount),  # display only; the engine keeps Decimal
            "Frequency": str(row.frequency),
            "ID": row.row_id or "",
            "Log": row.log,
        }
        for row in plan.rows
    ]
)
st.dataframe(
    rows,
    hide_index=True,
    width="stretch",
    column_config={
        "Row": st.column_config.NumberColumn(help="Line in the plan file (the header is line 1)", format="%d"),
        "Amount (USD)": st.column_config.NumberColumn(format="dollar"),
        "ID": st.column_config.TextColumn(help="Assigned by the first run; keep it when you edit a row"),
    },
)

active = len(plan.active_rows)
summary = f"{len(plan.rows)} valid rows, {active} Active."
if plan.errors:
    summary += " Rows with errors are not in the table and nothing is bought for them."
if plan.unidentified:
    numbers = ", ".join(str(n) for n in plan.unidentified)
    summary += f" Rows without an ID yet ({numbers}) get one on the next run."
st.caption(summary)
