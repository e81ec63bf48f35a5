"""What the panel's plan editor computes: the table it shows, what the person changed,
whether the result still reads as a plan, and the writes that save it. No Streamlit.

The editor works on the cells as written (bad ones too, so they can be mended), and a
save writes only what changed: cell edits by row ID with the value as loaded (so the
source refuses a cell someone changed meanwhile), added rows without an ID (the next run
gives one, as for a typed row), deleted rows found by ID.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Mapping, Sequence

from dca.domain import PLAN_COLUMNS, Frequency, Outcome, RowIssue, RowStatus, parse_amount, parse_plan
from dca.errors import PlanError

EDITABLE = ("Status", "Stock Symbol", "Amount (USD)", "Frequency")
EDITOR_COLUMNS = ("Row", *EDITABLE, "Last outcome", "Log", "ID")
READ_ONLY = ("Row", "Last outcome", "Log", "ID")
OUTCOMES = frozenset(str(o) for o in Outcome)
STATUS_OPTIONS = tuple(str(s) for s in RowStatus)
FREQUENCY_OPTIONS = tuple(str(f) for f in Frequency)
MIN_AMOUNT = 0.01


def amount_number(text: str) -> float | None:
    """The editor's number for an Amount cell, or None when the cell does not read as one
    (the row's error says why; the person types a number to mend it)."""
    try:
        return float(parse_amount(text))
    except (PlanError, ValueError, ArithmeticError):
        return None


SHOWN_CHARS = 500  # read-only cells are shown cut to this, so a pasted megabyte never reaches the browser


def _shortened(text: str) -> str:
    return text if len(text) <= SHOWN_CHARS else text[:SHOWN_CHARS] + f"… ({len(text):,} characters)"


def last_outcome(log: str) -> str:
    """The outcome a Log line names ("2026-11-30 09:01 ET · skipped · ..." -> "skipped"),
    so it reads at a glance in its own column however narrow the Log's; "" when the line
    is not one a run wrote (empty, or typed by a person)."""
    parts = [p.strip() for p in log.split(" · ")]
    if len(parts) >= 2 and parts[0].endswith(" ET") and parts[1].split(" ")[0] in OUTCOMES:
        return f"{parts[1]} ({parts[0].removesuffix(' ET')[:10]})"
    return ""


def editor_rows(cells: Sequence[Mapping[str, str]]) -> list[dict[str, Any]]:
    """The rows the editor shows, in file order, from the source's cells."""
    return [
        {
            "Row": int(c["Row"]),
            "Status": c.get("Status", ""),
            "Stock Symbol": c.get("Stock Symbol", ""),
            "Amount (USD)": amount_number(c.get("Amount (USD)", "")),
            "Frequency": c.get("Frequency", ""),
            "Last outcome": last_outcome(c.get("Log", "")),
            "Log": _shortened(c.get("Log", "")),
            "ID": _shortened(c.get("ID", "")),
        }
        for c in cells
    ]


def cell_text(column: str, value: Any) -> str:
    """What a value from the editor is written as in the plan."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if column == "Amount (USD)":
        number = Decimal(str(value)).quantize(Decimal("0.01"))
        return str(int(number)) if number == number.to_integral() else str(number)
    return str(value).strip()


@dataclass
class PlanEdits:
    cells: dict[tuple[str, str], tuple[str, str]] = field(default_factory=dict)  # (id, col) -> (loaded, new)
    added: list[dict[str, str]] = field(default_factory=list)
    deleted: dict[str, dict[str, str]] = field(default_factory=dict)  # id -> cells as loaded
    refused: list[str] = field(default_factory=list)  # changes that cannot be saved, and why
    # Row number -> the row as it would read after the save (for checking it).
    result: dict[int, dict[str, str]] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return not (self.cells or self.added or self.deleted)

    def describe(self) -> str:
        parts = []
        if self.cells:
            parts.append(f"{len(self.cells)} changed cell(s)")
        if self.added:
            parts.append(f"{len(self.added)} new row(s)")
        if self.deleted:
            parts.append(f"{len(self.deleted)} deleted row(s)")
        return ", ".join(parts) or "no change"


def collect_edits(cells: Sequence[Mapping[str, str]], state: Mapping[str, Any] | None) -> PlanEdits:
    """The person's changes from `st.data_editor`'s state (edited_rows by position,
    added_rows, deleted_rows by position) against the cells as loaded."""
    state = state or {}
    edits = PlanEdits()
    loaded = {int(c["Row"]): {n: c.get(n, "") for n in PLAN_COLUMNS} for c in cells}
    numbers = [int(c["Row"]) for c in cells]
    edits.result = {n: dict(v) for n, v in loaded.items()}
    shown = editor_rows(cells)
    for position, changed in sorted((int(k), v) for k, v in (state.get("edited_rows") or {}).items()):
        if position >= len(cells):
            continue
        number = numbers[position]
        row_id = loaded[number]["ID"].strip()
        for column, value in changed.items():
            if column not in EDITABLE:
                continue  # Log and ID are the system's; the editor shows them read-only
            if column == "Amount (USD)" and value == shown[position]["Amount (USD)"]:
                continue
            new = cell_text(column, value)
            if new == loaded[number][column]:
                continue
            if not row_id:
                edits.refused.append(f"Row {number} has no ID yet (it gets one at the next run), so it cannot be "
                                     "edited here yet; edit the file, or run first")
                continue
            edits.cells[(row_id, column)] = (loaded[number][column], new)
            edits.result[number][column] = new
    for position in sorted(int(p) for p in state.get("deleted_rows") or []):
        if position >= len(cells):
            continue
        number = numbers[position]
        row_id = loaded[number]["ID"].strip()
        if not row_id:
            edits.refused.append(f"Row {number} has no ID yet, so it cannot be deleted here; delete it in the file")
            continue
        edits.cells = {k: v for k, v in edits.cells.items() if k[0] != row_id}
        edits.deleted[row_id] = {n: loaded[number][n] for n in EDITABLE}
        edits.result.pop(number, None)
    next_number = (max(numbers) if numbers else 1) + 1
    for row in state.get("added_rows") or []:
        new = {n: cell_text(n, row.get(n)) for n in EDITABLE}
        if not any(new.values()):
            continue
        edits.added.append(new)
        edits.result[next_number] = {**{n: "" for n in PLAN_COLUMNS}, **new}
        next_number += 1
    return edits


def check_edits(edits: PlanEdits) -> list[RowIssue]:
    """The errors and warnings the plan would have after the save, for the rows the person
    touched (changed or added): the same rules as every run (`parse_plan`)."""
    if not edits.result:
        return []
    last = max(edits.result)
    table: list[list[str]] = [list(PLAN_COLUMNS)] + [[""] * len(PLAN_COLUMNS) for _ in range(1, last)]
    for number, row in edits.result.items():
        table[number - 1] = [row.get(n, "") for n in PLAN_COLUMNS]
    plan = parse_plan(table)
    touched_ids = {row_id for row_id, _ in edits.cells}
    added_from = last - len(edits.added) + 1
    return [i for i in plan.issues
            if (i.row_id and i.row_id in touched_ids) or i.row_number >= added_from and edits.added]


def save_edits(source, edits: PlanEdits) -> str:
    """Write the edits through the plan source; raises PlanError (a conflict included)."""
    done = []
    if edits.cells:
        done.append(f"{source.write_cells(edits.cells)} cell(s) written")
    if edits.deleted:
        done.append(f"{source.delete_rows(edits.deleted)} row(s) deleted")
    if edits.added:
        done.append(f"{source.add_rows(edits.added)} row(s) added")
    return ", ".join(done) or "nothing to save"


def cells_of_table(rows: Sequence[Sequence[object]]) -> list[dict[str, str]]:
    """A raw plan table (header first, as a sheet holds it) as the editor's cells."""
    from dca.domain import canonical_header

    header_index = next((i for i, r in enumerate(rows) if any(str(c or "").strip() for c in r)), None)
    if header_index is None:
        return []
    columns: dict[str, int] = {}
    for position, cell in enumerate(rows[header_index]):
        name = canonical_header(cell)
        if name is not None:
            columns.setdefault(name, position)
    out = []
    for index in range(header_index + 1, len(rows)):
        line = rows[index]
        values = {n: (str(line[columns[n]] or "") if n in columns and columns[n] < len(line) else "")
                  for n in PLAN_COLUMNS}
        if any(v.strip() for v in values.values()):
            out.append({"Row": str(index + 1), **values})
    return out


def source_cells(source) -> list[dict[str, str]]:
    """The cells of the plan as its source holds them now (raises PlanError)."""
    if hasattr(source, "cells"):
        return source.cells()
    # The Google Sheet: its reader's table (the same read `load()` makes).
    table, _ = source._read()
    return cells_of_table(table.rows)
