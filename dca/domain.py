"""Plan rows, their parsing and validation, sizing and outcomes: plain data, no I/O."""

from __future__ import annotations

import enum
import re
import secrets
from dataclasses import dataclass, field, replace
from datetime import date
from decimal import ROUND_DOWN, Decimal
from typing import Mapping

from dca.errors import PlanError

CENT = Decimal("0.01")
# Money larger than this in one row is almost certainly a typo (an extra zero, a pasted
# account number); the guards would stop it too, but the row should say why.
ABSURD_AMOUNT = Decimal("1000000")
FRACTION_STEP = Decimal("0.0001")


class Frequency(enum.StrEnum):
    DAILY = "Daily"
    WEEKLY = "Weekly"
    MONTHLY = "Monthly"


class RowStatus(enum.StrEnum):
    ACTIVE = "Active"
    INACTIVE = "Inactive"


class Outcome(enum.StrEnum):
    """Where an execution stands. Every status but PENDING is final."""

    PENDING = "pending"  # intent recorded; the broker's answer is not known yet
    PLANNED = "planned"  # dry runs only: what a run would order; never stored
    FILLED = "filled"
    SUBMITTED = "submitted"  # accepted by the broker, fill not yet known
    FAILED = "failed"  # the broker said no
    SKIPPED = "skipped"  # a guard or rule stopped it; nothing was ordered
    MISSED = "missed"  # its time passed without an order
    ERROR = "error"  # something broke; the message says what

    @property
    def is_final(self) -> bool:
        return self not in (Outcome.PENDING, Outcome.PLANNED)


PLAN_COLUMNS = ("Status", "Stock Symbol", "Amount (USD)", "Frequency", "Log", "ID")

_HEADER_ALIASES = {
    "status": "Status",
    "stock symbol": "Stock Symbol",
    "symbol": "Stock Symbol",
    "ticker": "Stock Symbol",
    "stock": "Stock Symbol",
    "amount (usd)": "Amount (USD)",
    "amount": "Amount (USD)",
    "amount usd": "Amount (USD)",
    "amount ($)": "Amount (USD)",
    "frequency": "Frequency",
    "log": "Log",
    "id": "ID",
}
REQUIRED_COLUMNS = ("Status", "Stock Symbol", "Amount (USD)", "Frequency")

_SYMBOL = re.compile(r"^[A-Z][A-Z0-9]{0,5}([.\-][A-Z0-9]{1,3})?$")
_ROW_ID = re.compile(r"^[A-Za-z0-9_-]{1,40}$")


@dataclass(frozen=True)
class PlanRow:
    """A valid plan row. `row_number` is the line as the person sees it (header is 1)."""

    row_number: int
    row_id: str | None
    status: RowStatus
    symbol: str
    amount: Decimal
    frequency: Frequency
    log: str = ""

    @property
    def active(self) -> bool:
        return self.status is RowStatus.ACTIVE


@dataclass(frozen=True)
class RowIssue:
    row_number: int
    message: str
    is_error: bool
    row_id: str | None = None
    symbol: str | None = None
    log: str = ""

    def as_dict(self) -> dict:
        return {
            "row": self.row_number,
            "row_id": self.row_id,
            "symbol": self.symbol,
            "severity": "error" if self.is_error else "warning",
            "message": self.message,
        }


@dataclass
class ParsedPlan:
    rows: list[PlanRow] = field(default_factory=list)
    issues: list[RowIssue] = field(default_factory=list)
    # Row numbers of non-blank rows, valid or not, that have no usable ID yet.
    unidentified: list[int] = field(default_factory=list)
    # Which state of the source this was read from; a write by row number takes it, so a
    # plan that changed since is refused rather than written by position (set by sources).
    version: str | None = None

    @property
    def errors(self) -> list[RowIssue]:
        return [i for i in self.issues if i.is_error]

    @property
    def warnings(self) -> list[RowIssue]:
        return [i for i in self.issues if not i.is_error]

    @property
    def active_rows(self) -> list[PlanRow]:
        return [r for r in self.rows if r.active]


def new_row_id() -> str:
    return "r" + secrets.token_hex(5)


def canonical_header(cell: object) -> str | None:
    return _HEADER_ALIASES.get(_clean(cell).lower())


def _clean(cell: object) -> str:
    if cell is None:
        return ""
    return str(cell).replace("\u00a0", " ").strip()


# The amount forms a person means unambiguously, and nothing else. ASCII digits only
# ([0-9], not \d, which also matches Arabic-Indic and full-width digits). Thousands are
# grouped in threes by one kind of separator: a comma, a space or a no-break space
# (U+00A0, or U+202F as French spreadsheets write it). A point is always the decimal
# point, with at most two decimals: a decimal comma is never guessed, so `10,5` or
# `1.000,00` are errors, not $105 or $1.
_GROUPED = r"[1-9][0-9]{0,2}(?P<sep>[, \u00a0\u202f])[0-9]{3}(?:(?P=sep)[0-9]{3})*"
_NUMBER = re.compile(rf"(?P<int>{_GROUPED}|[0-9]+)(?:\.(?P<dec>[0-9]+))?")
# Optional currency words around it: `$` before the number (after a minus sign too),
# `USD` before or after it; spaces between are fine.
_AMOUNT = re.compile(
    r"(?i:usd)?[ \u00a0\u202f]*(?:(?P<minus>-)[ \u00a0\u202f]*\$?|\$?[ \u00a0\u202f]*(?P<minus_after>-)?)"
    r"[ \u00a0\u202f]*(?P<number>[0-9][0-9, \u00a0\u202f.]*?)[ \u00a0\u202f]*(?i:usd)?"
)
# Longer than any amount a person writes; also keeps the regex above from scanning a
# pasted megabyte.
_AMOUNT_MAX_CHARS = 40
AMOUNT_FORMS = "1000, 1000.50, $1,000.50, 1 000.50 or USD 25"


def quote_cell(text: object, limit: int = 40) -> str:
    """A cell as messages show it: in quotes, control characters escaped, cut to `limit`
    characters with an ellipsis, so a pasted megabyte never fills a Log cell or a terminal."""
    text = "" if text is None else str(text)
    shown = "".join(c if c.isprintable() or c == " " else repr(c)[1:-1] for c in text[: limit + 1])
    if len(text) > limit or len(shown) > limit:
        shown = shown[:limit] + "…"
    return f"'{shown}'"


def parse_amount(text: str) -> Decimal:
    """'$1,000.50', '1000', '1 000.50', 'USD 25', '25 USD' -> Decimal; ValueError with a reason.

    Only forms a person means unambiguously are read (see `_NUMBER`); anything else is an
    error that quotes the cell and shows the accepted forms."""
    stripped = text.strip()
    if not stripped:
        raise ValueError("the amount is empty")
    shape = _AMOUNT.fullmatch(stripped) if len(stripped) <= _AMOUNT_MAX_CHARS else None
    number = _NUMBER.fullmatch(shape["number"]) if shape else None
    if number is None:
        raise ValueError(
            f"{quote_cell(text)} is not an amount in dollars; write it like {AMOUNT_FORMS} "
            "(a point before the cents; commas or spaces only between groups of three digits)"
        )
    decimals = number["dec"]
    if decimals is not None and len(decimals) > 2:
        raise ValueError(
            f"the amount {quote_cell(text)} has {len(decimals)} decimals; use at most 2 (cents), "
            f"and for thousands a comma or a space, not a point (e.g. {AMOUNT_FORMS})"
        )
    digits = re.sub(r"[^0-9]", "", number["int"])
    amount = Decimal(digits + ("." + decimals if decimals else ""))
    if shape["minus"] or shape["minus_after"] or amount == 0:
        raise ValueError(f"the amount must be more than $0 (it is {quote_cell(text)})")
    if amount >= ABSURD_AMOUNT:
        raise ValueError(f"the amount {quote_cell(text)} is implausibly large (limit ${ABSURD_AMOUNT:,})")
    return amount.quantize(CENT)


# csv's own field limit; far more than any plan cell (a Log line is ~150 characters), so a
# longer cell is a paste gone wrong, and its row is not trusted.
MAX_CELL_CHARS = 128 * 1024


def column_letter(position: int) -> str:
    """0 -> 'A', 25 -> 'Z', 26 -> 'AA': the column as a spreadsheet shows it."""
    letters = ""
    position += 1
    while position:
        position, rest = divmod(position - 1, 26)
        letters = chr(ord("A") + rest) + letters
    return letters


def parse_plan(table: list[list[object]], cell_problems: Mapping[int, list[str]] | None = None) -> ParsedPlan:
    """Parse a plan table whose first non-blank line is the header.

    Lenient where a person would be (case, spaces, '$1,000'), strict where money is at
    stake: a problem on an Active row is an error on that row only; on an Inactive row it
    is a warning. Row numbers are 1-based lines of the table as given. `cell_problems`
    (table index -> messages) carries what the file's reader found wrong inside a row's
    cells (e.g. text after a closing quote); such a row is not trusted either.

    Raises PlanError for what makes the whole table untrustworthy: no header row, a
    header without a required column, or a known column given twice.
    """
    cell_problems = cell_problems or {}
    plan = ParsedPlan()
    header_index = next((i for i, line in enumerate(table) if any(_clean(c) for c in line)), None)
    if header_index is None:
        raise PlanError(f"the plan has no header row; expected {', '.join(PLAN_COLUMNS)}")
    header = table[header_index]
    columns = _header_columns(header, header_index + 1)

    def cell(line: list[object], name: str) -> str:
        position = columns.get(name)
        if position is None or position >= len(line):
            return ""
        return _clean(line[position])

    for index in range(header_index + 1, len(table)):
        line = table[index]
        row_number = index + 1
        values = {name: cell(line, name) for name in PLAN_COLUMNS}
        if not any(values[c] for c in REQUIRED_COLUMNS):
            continue  # a blank line, or one holding only a Log, an ID or notes: nothing to buy
        problems = list(cell_problems.get(index, []))
        for position, text in enumerate(line):
            if isinstance(text, str) and len(text) > MAX_CELL_CHARS:
                problems.append(
                    f"the cell in column {column_letter(position)} holds {len(text):,} characters "
                    f"(more than {MAX_CELL_CHARS:,}), which is no plan entry; shorten it"
                )
                if columns.get("ID") == position:
                    values["ID"] = ""  # not echoed, and a new ID replaces it
        _parse_row(plan, row_number, values, problems)
        if not _ROW_ID.match(values["ID"]):
            plan.unidentified.append(row_number)
    _flag_duplicate_ids(plan)
    return plan


def _header_columns(header: list[object], line_number: int) -> dict[str, int]:
    columns: dict[str, int] = {}
    for position, cell in enumerate(header):
        name = canonical_header(cell)
        if name is None:
            continue
        if name in columns:
            # Which one would the person expect to win? Neither: with two Status columns
            # a row marked Inactive in one of them must not be bought because of the other.
            first = columns[name]
            raise PlanError(
                f"the plan's header (line {line_number}) has the {name} column twice: column "
                f"{column_letter(first)} {quote_cell(_clean(header[first]))} and column "
                f"{column_letter(position)} {quote_cell(_clean(cell))}; delete or rename one of them"
            )
        columns[name] = position
    missing = [c for c in REQUIRED_COLUMNS if c not in columns]
    if missing:
        found = ", ".join(quote_cell(_clean(c)) for c in header[:20] if _clean(c)) or "nothing"
        if sum(1 for c in header if _clean(c)) > 20:
            found += ", …"
        raise PlanError(
            f"the plan's header (line {line_number}) lacks {', '.join(missing)}; "
            f"it has {found}. Expected columns: {', '.join(PLAN_COLUMNS)}"
        )
    return columns


def _parse_row(plan: ParsedPlan, row_number: int, values: dict[str, str], problems: list[str]) -> None:
    problems = list(problems)
    status_text = values["Status"]
    status = {"active": RowStatus.ACTIVE, "inactive": RowStatus.INACTIVE}.get(status_text.lower())
    if status is None:
        problems.append(
            f"Status {quote_cell(status_text)} is not Active or Inactive"
            if status_text
            else "Status is empty; write Active or Inactive"
        )
    symbol = values["Stock Symbol"].upper().replace(" ", "")
    if not symbol:
        problems.append("Stock Symbol is empty")
    elif not _SYMBOL.match(symbol):
        problems.append(f"Stock Symbol {quote_cell(values['Stock Symbol'])} is not a ticker like AAPL or BRK.B")
        symbol = quote_cell(symbol, 12)[1:-1]  # shown in reports: keep it short and printable
    amount = None
    try:
        amount = parse_amount(values["Amount (USD)"])
    except ValueError as e:
        problems.append(f"Amount (USD): {e}")
    frequency_text = values["Frequency"]
    frequency = {f.value.lower(): f for f in Frequency}.get(frequency_text.lower())
    if frequency is None:
        problems.append(
            f"Frequency {quote_cell(frequency_text)} is not Daily, Weekly or Monthly"
            if frequency_text
            else "Frequency is empty; write Daily, Weekly or Monthly"
        )
    row_id = values["ID"] or None
    if row_id is not None and not _ROW_ID.match(row_id):
        problems.append(f"ID {quote_cell(row_id)} is malformed (letters, digits, - and _ only); a new ID replaces it")
        row_id = None

    if problems:
        # An unreadable status might be a mistyped Active: treat it as money at stake.
        is_error = status is not RowStatus.INACTIVE
        prefix = f"Row {row_number}: "
        suffix = "" if is_error else " (row is Inactive, so nothing is bought)"
        plan.issues.append(
            RowIssue(row_number, prefix + "; ".join(problems) + suffix, is_error, row_id, symbol or None, values["Log"])
        )
        return
    plan.rows.append(PlanRow(row_number, row_id, status, symbol, amount, frequency, values["Log"]))


def _flag_duplicate_ids(plan: ParsedPlan) -> None:
    """A copied row copies its ID; both would share executions, so neither may run.

    Rows with other problems count too: their Log cell is written by the same ID. Every
    row with the ID gets the same Log text, so the message names all of them alike, and
    each row's Log names itself and the others."""
    numbers_by_id: dict[str, list[int]] = {}
    for row_number, row_id in sorted([(r.row_number, r.row_id) for r in plan.rows if r.row_id]
                                     + [(i.row_number, i.row_id) for i in plan.issues if i.row_id]):
        numbers_by_id.setdefault(row_id, []).append(row_number)

    def duplicate(row_id: str) -> str:
        numbers = [str(n) for n in numbers_by_id[row_id]]
        listed = ", ".join(numbers[:-1]) + " and " + numbers[-1]
        return (f"Rows {listed} have the same ID {row_id}, so none of them is bought; "
                "clear the ID cell of the copied row so it gets its own")

    duplicated = {row_id for row_id, numbers in numbers_by_id.items() if len(numbers) > 1}
    for index, issue in enumerate(plan.issues):
        if issue.row_id in duplicated:
            plan.issues[index] = replace(issue, message=f"{duplicate(issue.row_id)}; row {issue.row_number} also: "
                                         + issue.message.removeprefix(f"Row {issue.row_number}: "))
    for row in [r for r in plan.rows if r.row_id in duplicated]:
        plan.rows.remove(row)
        plan.issues.append(RowIssue(row.row_number, duplicate(row.row_id), row.active, row.row_id, row.symbol, row.log))
    plan.issues.sort(key=lambda i: i.row_number)


@dataclass(frozen=True)
class Sizing:
    """What to order for one execution, and the cash carried to the next one."""

    quantity: Decimal
    cost: Decimal  # estimated: quantity x price
    carry_out: Decimal
    cash_amount: Decimal | None = None  # set when the order is for a cash amount


def size_order(amount: Decimal, carry_in: Decimal, price: Decimal, fractional: bool) -> Sizing:
    """Turn a dollar amount (plus any carried remainder) into an order.

    With fractional/cash orders the whole budget is spent. With whole shares the unspent
    remainder is carried to the row's next execution, so over time the row invests its
    full amount. A quantity of 0 means the budget does not yet buy one share.
    """
    if price <= 0:
        raise ValueError(f"price must be positive, got {price}")
    budget = amount + carry_in
    if fractional:
        quantity = (budget / price).quantize(FRACTION_STEP, rounding=ROUND_DOWN)
        return Sizing(quantity, budget, Decimal("0.00"), cash_amount=budget)
    quantity = (budget / price).to_integral_value(rounding=ROUND_DOWN)
    cost = (quantity * price).quantize(CENT)
    carry_out = max(budget - cost, Decimal("0")).quantize(CENT, rounding=ROUND_DOWN)
    return Sizing(quantity, cost, carry_out)


def client_order_id(row_id: str, scheduled: date) -> str:
    """The broker-side key of an execution: the same (row, date) always gives the same id."""
    return f"dca-{row_id}-{scheduled:%Y%m%d}"


def format_money(value: Decimal | None) -> str:
    return "" if value is None else f"${value:,.2f}"


def format_quantity(value: Decimal | None) -> str:
    if value is None:
        return ""
    text = f"{value.normalize():f}"
    return text
