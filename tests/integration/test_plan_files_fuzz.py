"""Random plan files, as spreadsheet apps and people make them, against the CSV source and
the engine: never a traceback, every problem on its own row or for the whole plan, a
refused plan left byte for byte, an accepted one changed only in its ID and Log cells.

The generator knows what it wrote (which rows are valid, which carry one problem, which
make the whole plan unreadable), and the file is checked afterwards with Python's csv
module, an independent reader, rather than with the code under test.
"""

from __future__ import annotations

import csv
import re
import sys
import tempfile
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from dca.domain import parse_amount, parse_plan
from dca.errors import PlanError
from dca.plans.csv_file import CsvPlanSource
from tests.conftest import ny

MONDAY = ny(2027, 5, 3, 9, 0, 20)


def fuzz(examples: int) -> settings:
    # Derandomized and bounded, so the suite stays fast and every run tries the same files.
    return settings(derandomize=True, deadline=None, max_examples=examples, suppress_health_check=list(HealthCheck))


HUGE = 128 * 1024 + 1

KNOWN = {  # header spellings -> the column they mean (the README's list)
    "Status": "status", "status ": "status",
    "Stock Symbol": "symbol", "Symbol": "symbol", "TICKER": "symbol", "stock": "symbol",
    "Amount (USD)": "amount", "amount": "amount", "Amount USD": "amount", "amount ($)": "amount",
    "Frequency": "frequency", " FREQUENCY": "frequency",
    "Log": "log", "log": "log",
    "ID": "id", "id": "id",
}
ALIASES = {k.strip().lower() for k in KNOWN} | {"stock symbol", "ticker", "amount (usd)"}
REQUIRED = ("status", "symbol", "amount", "frequency")
SYMBOL = re.compile(r"[A-Z][A-Z0-9]{0,5}([.\-][A-Z0-9]{1,3})?")

any_text = st.text(max_size=12)  # any Unicode, NUL and line breaks included
formula = st.sampled_from(['=HYPERLINK("http://x","AAPL")', "=1+1", "+cmd|' /C calc'!A0", "@SUM(A1)", "-2+3"])
note = st.one_of(any_text, formula, st.just(""))


@dataclass
class Row:
    cells: dict[str, str]  # column key -> value
    valid: bool
    blank: bool = False
    after_quote: str | None = None  # column key whose cell gets text after its closing quote
    symbol: str = ""
    amount: Decimal | None = None


@dataclass
class PlanFile:
    header: list[tuple[str, str]]  # (text, column key); unknown columns get a key of their own
    rows: list[Row]
    separator: str
    endings: list[str]
    final_newline: bool
    encoding: str
    leading_blank: int
    unterminated: bool
    quote_all: bool
    whole_plan_error: bool = field(init=False)

    def __post_init__(self):
        keys = [k for _, k in self.header if k in KNOWN.values()]
        self.whole_plan_error = (
            self.unterminated or len(keys) != len(set(keys)) or not set(REQUIRED) <= set(keys)
        )


def valid_row(index: int, draw) -> Row:
    symbol = draw(st.sampled_from(["AAPL", "spy", "BRK.B", " vti ", "QQQ"]))
    amount_text, amount = draw(st.sampled_from([
        ("10", "10"), ("$1,000.50", "1000.50"), ("1 000", "1000"), ("1\u00a0000.5", "1000.5"),
        ("USD 25", "25"), ("25 USD", "25"), ("0.01", "0.01"), ("999,999.99", "999999.99"), ("$ 7.5", "7.5"),
    ]))
    return Row(
        cells={
            "status": draw(st.sampled_from(["Active", "active ", "INACTIVE", "Inactive"])),
            "symbol": symbol,
            "amount": amount_text,
            "frequency": draw(st.sampled_from(["Daily", "weekly", " Monthly "])),
            "log": draw(note),
            "id": draw(st.sampled_from([f"id{index}", ""])),
        },
        valid=True,
        symbol=symbol.strip().upper(),
        amount=Decimal(amount),
    )


def bad_row(index: int, draw, present: list[str]) -> Row:
    """A row with one problem, in a column the header has."""
    row = valid_row(index, draw)
    row.valid = False
    problem = draw(st.sampled_from(["amount", "status", "symbol", "frequency", "huge", "after_quote", "nul"]
                                   + (["id"] if "id" in present else [])))
    if problem == "amount":
        row.cells["amount"] = draw(st.sampled_from([
            "10,5", "1,00", "1,0000", "1.000,00", "1e3", "1_000", "\u0661\u0660", "\uff11\uff10", "--5", "+5",
            "0", "-5", "1.234", "1000000", "NaN", "", "=10*2", "1,000 000",
        ]) | any_text.map(lambda t: "=" + t))
    elif problem == "status":
        row.cells["status"] = draw(st.sampled_from(["Actve", "yes", "=TRUE()", "", "Active Active"])
                                   | any_text.map(lambda t: "=" + t))
    elif problem == "symbol":
        row.cells["symbol"] = draw(st.sampled_from(["=HYPERLINK(\"x\",\"AAPL\")", "ＡＡＰＬ", "TOOLONGSYM", ""])
                                   | any_text.map(lambda t: "=" + t))
    elif problem == "frequency":
        row.cells["frequency"] = draw(st.sampled_from(["Hourly", "", "Bi-weekly"]) | any_text.map(lambda t: "=" + t))
    elif problem == "id":
        row.cells["id"] = draw(st.sampled_from(["bad id!", "x" * 41, "r\u00e9"]))
    elif problem == "huge":
        key = draw(st.sampled_from(present))
        row.cells[key] = draw(st.sampled_from(["x", "\u00e9"])) * draw(st.sampled_from([HUGE, 1024 * 1024]))
    elif problem == "after_quote":
        row.after_quote = draw(st.sampled_from(present))
    elif problem == "nul":
        row.cells["status"] = "Act\x00ive"
    return row


@st.composite
def plan_files(draw) -> PlanFile:
    known = draw(st.permutations(list(KNOWN.items())))
    # Mostly a usable header; sometimes one required column missing or one known column twice.
    fault = draw(st.sampled_from([None] * 8 + ["missing", "twice"]))
    faulty = draw(st.sampled_from(REQUIRED if fault == "missing" else (*REQUIRED, "log", "id")))
    chosen: list[tuple[str, str]] = []
    for key in ("status", "symbol", "amount", "frequency", "log", "id"):
        spellings = [text for text, k in known if k == key]
        present = 1 if key in REQUIRED else draw(st.sampled_from([0, 1, 1]))
        if key == faulty:
            present = {None: present, "missing": 0, "twice": 2}[fault]
        chosen += [(spellings[i % len(spellings)], key) for i in range(present)]
    extra = draw(st.lists(note.filter(lambda t: t.strip().lower() not in ALIASES), max_size=2))
    chosen += [(text, f"extra{i}") for i, text in enumerate(extra)]
    header = draw(st.permutations(chosen))
    unknown_keys = [k for _, k in header if k.startswith("extra")]
    rows: list[Row] = []
    for index in range(draw(st.integers(0, 8))):
        kind = draw(st.sampled_from(["valid", "valid", "valid", "bad", "bad", "blank"]))
        if kind == "blank":
            rows.append(Row(cells={}, valid=False, blank=True))
            continue
        row = valid_row(index, draw) if kind == "valid" else bad_row(index, draw, [k for _, k in header])
        for key in unknown_keys:
            row.cells[key] = draw(note)
        rows.append(row)
    separator = draw(st.sampled_from([",", ",", ";", "\t"]))
    ending = draw(st.sampled_from(["\n", "\r\n", "\r", "mixed"]))
    count = len(rows) + 3
    endings = ([draw(st.sampled_from(["\n", "\r\n"])) for _ in range(count)] if ending == "mixed"
               else [ending] * count)
    return PlanFile(
        header=header, rows=rows, separator=separator, endings=endings,
        final_newline=draw(st.booleans()),
        encoding=draw(st.sampled_from(["utf-8", "utf-8", "utf-8-sig", "utf-16", "latin-1"])),
        leading_blank=draw(st.sampled_from([0, 0, 1, 2])),
        unterminated=draw(st.sampled_from([False] * 9 + [True])),
        quote_all=draw(st.booleans()),
    )


def encode_cell(value: str, separator: str, quote: bool) -> str:
    if quote or any(c in value for c in (separator, '"', "\r", "\n")):
        return '"' + value.replace('"', '""') + '"'
    return value


def render(plan: PlanFile) -> tuple[bytes, list[int]]:
    """The file's bytes and, per generated row, its row number as the person sees it."""
    sep = plan.separator
    lines = [""] * plan.leading_blank
    lines.append(sep.join(encode_cell(text, sep, plan.quote_all) for text, _ in plan.header))
    numbers = []
    for row in plan.rows:
        numbers.append(len(lines) + 1)
        if row.blank:
            lines.append(sep * len(plan.header) if len(lines) % 2 else "")
            continue
        cells = []
        for _, key in plan.header:
            value = row.cells.get(key, "")
            cell = encode_cell(value, sep, plan.quote_all)
            if key == row.after_quote:
                cell = encode_cell(value, sep, True) + "x"
            cells.append(cell)
        lines.append(sep.join(cells))
    if plan.unterminated:
        lines.append(sep.join(["Active", '"AAPL', "10", "Weekly", "", ""]))
    text = "".join(line + plan.endings[i % len(plan.endings)] for i, line in enumerate(lines))
    if not plan.final_newline:
        text = text.rstrip("\r\n") if text.strip("\r\n") else text
    encoding = plan.encoding
    if encoding == "latin-1":
        try:
            return text.encode("latin-1"), numbers
        except UnicodeEncodeError:
            encoding = "utf-8"
    return text.encode(encoding), numbers


def decoded(data: bytes, encoding: str) -> str:
    if encoding == "utf-16":
        return data.decode("utf-16")
    return data.decode("utf-8").removeprefix("\ufeff")


def records(text: str, separator: str) -> list[tuple[list[str], str]]:
    """Each record's cells (by Python's csv module) and its raw text."""
    lines = re.findall(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+$", text)
    reader = csv.reader(iter(lines), delimiter=separator)
    out, consumed = [], 0
    for cells in reader:
        out.append((cells, "".join(lines[consumed:reader.line_num])))
        consumed = reader.line_num
    return out


def expect_whole_plan_error(plan: PlanFile, data: bytes) -> bool:
    if plan.whole_plan_error:
        return True
    if plan.encoding == "latin-1":
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            return True
    # Documented rule: NUL bytes in a quarter of a file without a byte-order mark.
    return plan.encoding != "utf-16" and data.count(b"\x00") * 4 > len(data)


@pytest.fixture(autouse=True, scope="module")
def no_csv_field_limit():
    old = csv.field_size_limit(sys.maxsize)
    yield
    csv.field_size_limit(old)


@fuzz(120)
@given(plan=plan_files())
def test_random_plan_files_are_read_row_by_row_or_refused_whole(tmp_path_factory, plan):
    data, numbers = render(plan)
    path = Path(tempfile.mkdtemp(dir=tmp_path_factory.getbasetemp())) / "plan.csv"
    path.write_bytes(data)
    event(f"encoding {plan.encoding}, separator {plan.separator!r}")
    try:
        parsed = CsvPlanSource(path).load()
        event(f"read: {sum(not r.valid and not r.blank for r in plan.rows)} bad row(s)")
    except PlanError as error:
        event(f"refused: {str(error)[:30]}")
        assert expect_whole_plan_error(plan, data), f"refused a readable plan: {error}"
        assert len(str(error)) < 1000  # whole-plan messages never echo a cell in full
        return
    assert not expect_whole_plan_error(plan, data), "read a plan that should have been refused"
    by_row = {r.row_number: r for r in parsed.rows}
    issues = {i.row_number: i for i in parsed.issues}
    assert len(issues) == len(parsed.issues), "a row reported twice"
    for row, number in zip(plan.rows, numbers):
        if row.blank:
            assert number not in by_row and number not in issues
        elif row.valid:
            assert number not in issues, issues[number].message
            assert (by_row[number].symbol, by_row[number].amount) == (row.symbol, row.amount)
        else:
            assert number not in by_row and issues[number].message, f"row {number} not reported"
            assert len(issues[number].message) < 1000
    assert set(issues) <= set(numbers), "an issue on a row that is not one"


@fuzz(60)
@given(plan=plan_files())
def test_a_run_leaves_a_refused_plan_untouched_and_changes_only_id_and_log_cells(make_rig, tmp_path_factory, plan):
    data, _ = render(plan)
    rig = make_rig("", base=Path(tempfile.mkdtemp(dir=tmp_path_factory.getbasetemp())))
    rig.plan_path.write_bytes(data)
    try:
        report = rig.run(MONDAY)
        event(f"run: {len(report.executions)} execution(s), {len(report.errors)} row error(s)")
    except PlanError:
        event("run refused")
        assert rig.plan_path.read_bytes() == data
        assert rig.broker.orders() == []
        return
    after = rig.plan_path.read_bytes()
    assert CsvPlanSource(rig.plan_path).load().unidentified == []  # every row got its ID
    before_text, after_text = decoded(data, plan.encoding), decoded(after, plan.encoding)
    if plan.encoding in ("utf-8-sig", "utf-16"):
        assert after[:2] == data[:2] and after[:3] == data[:3]  # the byte-order mark is kept
    before_records, after_records = records(before_text, plan.separator), records(after_text, plan.separator)
    assert len(after_records) == len(before_records)
    header_at = plan.leading_blank
    header_before, header_after = before_records[header_at][0], after_records[header_at][0]
    assert header_after[: len(header_before)] == header_before
    assert [h for h in header_after[len(header_before):]] in ([], ["ID"], ["Log"], ["ID", "Log"])
    writable = {i for i, h in enumerate(header_after) if h.strip().lower() in ("id", "log")}
    for (cells_before, raw_before), (cells_after, raw_after) in zip(before_records, after_records):
        width = max(len(cells_before), len(cells_after))
        pad = lambda cells: cells + [""] * (width - len(cells))  # noqa: E731
        for column, (old, new) in enumerate(zip(pad(cells_before), pad(cells_after))):
            assert old == new or column in writable, f"column {column} changed: {old!r} -> {new!r}"
        if pad(cells_before) == pad(cells_after):
            assert raw_after == raw_before  # a row the run did not change keeps every byte
        else:  # and a changed one keeps its line ending
            assert re.search(r"(\r\n|\r|\n)?$", raw_after)[0] == re.search(r"(\r\n|\r|\n)?$", raw_before)[0]


@settings(derandomize=True, deadline=None, max_examples=300)
@given(table=st.lists(st.lists(st.one_of(any_text, formula, st.sampled_from(list(KNOWN))), max_size=8), max_size=6))
def test_any_table_parses_or_is_refused_whole_never_a_traceback(table):
    try:
        plan = parse_plan(table)
    except PlanError:
        return
    assert all(i.message for i in plan.issues)


@settings(derandomize=True, deadline=None, max_examples=300)
@given(text=st.text(max_size=30))
def test_an_amount_is_read_or_refused_with_a_reason(text):
    try:
        amount = parse_amount(text)
    except ValueError as error:
        assert str(error)
        return
    assert Decimal("0.01") <= amount < Decimal("1000000") and amount == amount.quantize(Decimal("0.01"))
    assert re.fullmatch(r"[0-9, \u00a0\u202f.$USDusd-]*", text.strip()), text


@settings(derandomize=True, deadline=None, max_examples=300)
@given(cents=st.integers(1, 99_999_999), grouping=st.sampled_from(["", ",", " ", "\u00a0"]),
       dollar=st.booleans(), decimals=st.sampled_from([0, 1, 2]))
def test_every_well_formed_amount_is_read_exactly(cents, grouping, dollar, decimals):
    whole, part = divmod(cents, 100)
    if decimals == 0:
        part = 0
    elif decimals == 1:
        part -= part % 10
    text = f"{whole:,}".replace(",", grouping)
    text += {0: "", 1: f".{part // 10}", 2: f".{part:02d}"}[decimals]
    text = ("$" if dollar else "") + text
    expected = Decimal(whole) + Decimal(part) / 100
    if expected == 0:
        return
    assert parse_amount(text) == expected
