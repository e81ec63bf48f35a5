"""Plan rows, their parsing and validation, sizing and outcomes: plain data, no I/O."""

from __future__ import annotations

import enum
import re
import secrets
from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_DOWN, Decimal, InvalidOperation

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


def parse_amount(text: str) -> Decimal:
    """'$1,000.50', '1000', '1 000.5', 'USD 25' -> Decimal; ValueError with a reason."""
    cleaned = re.sub(r"(?i)usd|\$|,|\s", "", text)
    if not cleaned:
        raise ValueError("the amount is empty")
    try:
        # Decimal() also takes '1_000'; a person writing that probably meant something else.
        amount = Decimal(cleaned) if "_" not in cleaned else None
    except InvalidOperation:
        amount = None
    if amount is None or not amount.is_finite():
        raise ValueError(f"'{text}' is not a number of dollars (e.g. 100 or $1,000.50)")
    if amount <= 0:
        raise ValueError(f"the amount must be more than $0 (it is {text})")
    # Checked before quantize(), which cannot represent amounts of 1e26 and more.
    if amount >= ABSURD_AMOUNT:
        raise ValueError(f"the amount {text} is implausibly large (limit ${ABSURD_AMOUNT:,})")
    if amount != amount.quantize(CENT):
        raise ValueError(f"the amount '{text}' has fractions of a cent; use at most 2 decimals")
    return amount.quantize(CENT)


def parse_plan(table: list[list[object]]) -> ParsedPlan:
    """Parse a plan table whose first non-blank line is the header.

    Lenient where a person would be (case, spaces, '$1,000'), strict where money is at
    stake: a problem on an Active row is an error on that row only; on an Inactive row it
    is a warning. Row numbers are 1-based lines of the table as given.
    """
    plan = ParsedPlan()
    header_index = next((i for i, line in enumerate(table) if any(_clean(c) for c in line)), None)
    if header_index is None:
        return plan
    header = table[header_index]
    columns: dict[str, int] = {}
    for position, cell in enumerate(header):
        name = canonical_header(cell)
        if name and name not in columns:
            columns[name] = position
    missing = [c for c in REQUIRED_COLUMNS if c not in columns]
    if missing:
        from dca.errors import PlanError

        found = ", ".join(repr(_clean(c)) for c in header if _clean(c)) or "nothing"
        raise PlanError(
            f"the plan's header (line {header_index + 1}) lacks {', '.join(missing)}; "
            f"it has {found}. Expected columns: {', '.join(PLAN_COLUMNS)}"
        )

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
            continue  # a blank line, or one holding only a Log or ID
        _parse_row(plan, row_number, values)
        if not _ROW_ID.match(values["ID"]):
            plan.unidentified.append(row_number)
    _flag_duplicate_ids(plan)
    return plan


def _parse_row(plan: ParsedPlan, row_number: int, values: dict[str, str]) -> None:
    problems: list[str] = []
    status_text = values["Status"]
    status = {"active": RowStatus.ACTIVE, "inactive": RowStatus.INACTIVE}.get(status_text.lower())
    if status is None:
        problems.append(
            f"Status '{status_text}' is not Active or Inactive" if status_text else "Status is empty; write Active or Inactive"
        )
    symbol = values["Stock Symbol"].upper().replace(" ", "")
    if not symbol:
        problems.append("Stock Symbol is empty")
    elif not _SYMBOL.match(symbol):
        problems.append(f"Stock Symbol '{values['Stock Symbol']}' is not a ticker like AAPL or BRK.B")
    amount = None
    try:
        amount = parse_amount(values["Amount (USD)"])
    except ValueError as e:
        problems.append(f"Amount (USD): {e}")
    frequency_text = values["Frequency"]
    frequency = {f.value.lower(): f for f in Frequency}.get(frequency_text.lower())
    if frequency is None:
        problems.append(
            f"Frequency '{frequency_text}' is not Daily, Weekly or Monthly"
            if frequency_text
            else "Frequency is empty; write Daily, Weekly or Monthly"
        )
    row_id = values["ID"] or None
    if row_id is not None and not _ROW_ID.match(row_id):
        problems.append(f"ID '{row_id}' is malformed (letters, digits, - and _ only); a new ID replaces it")
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
    """A copied row copies its ID; both would share executions, so neither may run."""
    by_id: dict[str, list[PlanRow]] = {}
    for row in plan.rows:
        if row.row_id:
            by_id.setdefault(row.row_id, []).append(row)
    for row_id, rows in by_id.items():
        if len(rows) < 2:
            continue
        numbers = ", ".join(str(r.row_number) for r in rows)
        for row in rows:
            plan.rows.remove(row)
            plan.issues.append(
                RowIssue(
                    row.row_number,
                    f"Row {row.row_number}: ID {row_id} appears on rows {numbers}; "
                    "clear the ID cell of the copied row so it gets its own",
                    row.active,
                    row_id,
                    row.symbol,
                    row.log,
                )
            )
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
