"""The plan, editable: the cells as written (bad ones too, each row's errors beside the
table), saved back cell by cell through the plan source (`dca.plan_editing`)."""

from __future__ import annotations

from datetime import datetime

import pandas as pd
import streamlit as st

from dca.bootstrap import Services
from dca.domain import RowIssue
from dca.errors import PlanError
from dca.panel.carry_panel import show_carry_notes
from dca.panel.frame import page_frame
from dca.schedule_rules import NEW_YORK
from dca.panel.tables import show_table, whole_rows
from dca.panel.text import escape_markdown
from dca.plan_editing import (
    EDITOR_COLUMNS,
    READ_ONLY,
    FREQUENCY_OPTIONS,
    MIN_AMOUNT,
    STATUS_OPTIONS,
    check_edits,
    collect_edits,
    editor_rows,
    save_edits,
    source_cells,
)

EDITOR_KEY = "plan_editor"

services: Services = page_frame()
settings = services.settings
source = services.plan_source

st.title("Plan")
if settings.uses_sheet:
    url = getattr(getattr(source, "ref", None), "url", None)
    st.markdown(f"Plan: the Google Sheet [{source.description}]({url})" if url else f"Plan: {source.description}")
else:
    where = f"Plan: `{settings.plan_path}`"
    if settings.default_plan:
        where += " (the default plan in DCA_HOME; set DCA_PLAN to use another file)"
    st.markdown(f"{where}  \nLedger: `{settings.db_path}`")


def issue_text(issue: RowIssue) -> str:
    # The domain already starts its messages with "Row N: "; never show one without it.
    prefix = f"Row {issue.row_number}"
    return issue.message if issue.message.startswith(prefix) else f"{prefix}: {issue.message}"


LOADED_KEY = "plan_loaded"
pending = st.session_state.get(EDITOR_KEY) or {}
if (st.session_state.get(LOADED_KEY, {}).get("where") != source.description
        or not any(pending.get(k) for k in ("edited_rows", "added_rows", "deleted_rows"))):
    # Nothing unsaved: show the plan as it is now (a run may have given rows their IDs).
    st.session_state.pop(LOADED_KEY, None)
try:
    # The plan as loaded when editing began: the editor's changes are positions in it, and
    # each saved cell is checked against it, so a change made meanwhile is refused, not lost.
    if LOADED_KEY not in st.session_state:
        st.session_state[LOADED_KEY] = {"where": source.description, "plan": source.load(),
                                        "cells": source_cells(source), "at": datetime.now(NEW_YORK)}
    loaded = st.session_state[LOADED_KEY]
    plan, cells = loaded["plan"], loaded["cells"]
except PlanError as e:
    kept = source.kept_plan() if hasattr(source, "kept_plan") else None
    st.error(str(e), icon=":material/error:")
    if kept is None:
        st.stop()
    kept_plan, at = kept
    st.warning(f"The sheet cannot be read now. This is the plan as last read, at {at[:16].replace('T', ' ')} UTC, "
               "read-only; runs use it only as the engine's rules allow (see Safety in the README).",
               icon=":material/cloud_off:")
    show_table(pd.DataFrame([{"Row": r.row_number, "Status": str(r.status), "Stock Symbol": r.symbol,
                                "Amount (USD)": float(r.amount), "Frequency": str(r.frequency), "ID": r.row_id or "",
                                "Log": r.log} for r in kept_plan.rows]),
                 hide_index=True, width="stretch",
                 column_config={"Amount (USD)": st.column_config.NumberColumn(format="dollar")})
    st.stop()

for issue in plan.errors:
    st.error(issue_text(issue), icon=":material/error:")
for issue in plan.warnings:
    st.warning(issue_text(issue), icon=":material/warning:")



def reload() -> None:
    st.session_state.pop(EDITOR_KEY, None)
    st.session_state.pop(LOADED_KEY, None)
    st.rerun()


top_left, top_right = st.columns([4, 1])
top_left.caption(f"As loaded at {loaded['at']:%H:%M:%S} New York time.")
if top_right.button("Reload", icon=":material/refresh:", key="plan_reload", help="Read the plan again; "
                    "unsaved changes are dropped"):
    reload()

# Rows may be added and deleted in a CSV file; in a sheet, do that in the sheet itself.
rows_editable = hasattr(source, "add_rows")
shown = pd.DataFrame(editor_rows(cells), columns=list(EDITOR_COLUMNS))
st.data_editor(
    shown,
    key=EDITOR_KEY,
    hide_index=True,
    width="stretch",
    height=whole_rows(len(shown), most=20, extra=1 if rows_editable else 0),  # + the add-row line
    num_rows="dynamic" if rows_editable else "fixed",
    disabled=list(READ_ONLY),
    column_config={
        "Row": st.column_config.NumberColumn(help="Line in the plan (the header is line 1)", format="%d"),
        "Status": st.column_config.SelectboxColumn(options=STATUS_OPTIONS, required=True,
                                                   help="Inactive rows are kept but never bought"),
        "Stock Symbol": st.column_config.TextColumn(help="e.g. VTI, BRK.B", max_chars=10),
        "Amount (USD)": st.column_config.NumberColumn(min_value=MIN_AMOUNT, max_value=999_999.99, step=0.01,
                                                      format="dollar", help="Dollars per execution"),
        "Frequency": st.column_config.SelectboxColumn(options=FREQUENCY_OPTIONS, required=True),
        "Last outcome": st.column_config.TextColumn(help="What the last run did with the row (from its Log)"),
        "Log": st.column_config.TextColumn(help="Written by each run; every line in full below the table",
                                           width="large"),
        "ID": st.column_config.TextColumn(help="Assigned by the first run; keeps the row's identity"),
    },
)

edits = collect_edits(cells, st.session_state.get(EDITOR_KEY))
for message in edits.refused:
    st.warning(message, icon=":material/block:")
# The browser enforces the dropdowns and the minimum only in the browser: check again here,
# with the same rules as every run, before anything is written.
problems = check_edits(edits)
for issue in problems:
    (st.error if issue.is_error else st.warning)(f"Not saved yet — {issue_text(issue)}", icon=":material/edit_note:")

if edits.deleted:
    st.info("A deleted row is removed from the plan; what it bought stays in the ledger (History).",
            icon=":material/info:")
blocked = any(i.is_error for i in problems)
save, note = st.columns([1, 4])
if save.button("Save changes", type="primary", icon=":material/save:", key="plan_save",
               disabled=edits.empty or blocked):
    try:
        st.session_state["plan_saved"] = ("ok", f"Saved: {save_edits(source, edits)}.")
    except PlanError as e:
        st.session_state["plan_saved"] = ("error", str(e))
    reload()
if edits.empty:
    note.caption("Edit a cell, add a row at the bottom, or select rows to delete; then save.")
else:
    note.caption(f"Unsaved: {edits.describe()}." + (" Fix the errors above first." if blocked else ""))
saved = st.session_state.pop("plan_saved", None)
if saved:
    (st.success if saved[0] == "ok" else st.error)(saved[1])

active = len(plan.active_rows)
summary = f"{len(plan.rows)} valid rows, {active} Active."
if plan.errors:
    summary += " Rows with errors are not bought until mended."
if plan.unidentified:
    numbers = ", ".join(str(n) for n in plan.unidentified)
    summary += f" Rows without an ID yet ({numbers}) get one on the next run."
st.caption(summary)
logged = [r for r in shown.to_dict("records") if r["Log"]]
if logged:
    with st.expander(f"Log lines in full ({len(logged)})", icon=":material/notes:"):
        # The grid cuts a long line at its column's edge (the SIMULATED at the end, first).
        st.markdown("\n".join(f"- **Row {r['Row']} {escape_markdown(r['Stock Symbol'] or '')}**: {escape_markdown(r['Log'])}"
                               for r in logged))
show_carry_notes(services, plan.rows, datetime.now(NEW_YORK))
