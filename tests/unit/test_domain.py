"""Plan parsing (lenient where a person would be, strict where money is at stake) and sizing."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from dca.domain import MAX_CELL_CHARS, Frequency, RowStatus, client_order_id, column_letter, parse_plan, size_order
from dca.errors import PlanError

HEADER = ["Status", "Stock Symbol", "Amount (USD)", "Frequency", "Log", "ID"]


def table(*rows: list[object], header: list[object] = HEADER) -> list[list[object]]:
    return [list(header), *[list(r) for r in rows]]


def only_issue(plan, row_number: int):
    found = [i for i in plan.issues if i.row_number == row_number]
    assert len(found) == 1, plan.issues
    return found[0]


# -- lenient: messy but valid ----------------------------------------------------------


def test_headers_match_ignoring_case_and_surrounding_spaces():
    plan = parse_plan(table(
        ["Active", "AAPL", "10", "Weekly", "", "a1"],
        header=["  status ", "STOCK SYMBOL", " amount (usd)", "FREQUENCY  ", " log", "id "],
    ))
    assert plan.issues == []
    (row,) = plan.rows
    assert (row.row_number, row.row_id, row.status, row.symbol, row.amount, row.frequency) == (
        2, "a1", RowStatus.ACTIVE, "AAPL", Decimal("10.00"), Frequency.WEEKLY,
    )


@pytest.mark.parametrize("symbol_header", ["Symbol", " ticker ", "TICKER", "symbol"])
def test_symbol_and_ticker_are_accepted_for_stock_symbol(symbol_header):
    plan = parse_plan(table(
        ["Active", "spy", "500", "Weekly"],
        header=["Status", symbol_header, "Amount", "Frequency"],
    ))
    assert plan.issues == []
    assert [(r.symbol, r.amount) for r in plan.rows] == [("SPY", Decimal("500.00"))]


@pytest.mark.parametrize(
    "text, expected",
    [
        ("$1,000.50", "1000.50"),
        ("1000", "1000.00"),
        ("1 000.5", "1000.50"),
        (" usd 25", "25.00"),
        ("USD 25", "25.00"),
        ("  $ 7.5 ", "7.50"),
        ("0.01", "0.01"),
        ("999999.99", "999999.99"),
        ("25 USD", "25.00"),
        ("25usd", "25.00"),
        ("USD $25", "25.00"),
        ("1,000", "1000.00"),
        ("123,456.78", "123456.78"),
        ("1\u00a0000", "1000.00"),  # a no-break space, as a spreadsheet groups thousands
        ("1\u202f000", "1000.00"),  # a narrow no-break space (French locale)
        ("$ 1 000.50", "1000.50"),
        ("10.5", "10.50"),
        ("007", "7.00"),
    ],
)
def test_amounts_are_read_the_way_a_person_writes_them(text, expected):
    plan = parse_plan(table(["Active", "AAPL", text, "Daily", "", "a1"]))
    assert plan.issues == []
    (row,) = plan.rows
    assert isinstance(row.amount, Decimal)
    assert row.amount == Decimal(expected)
    assert str(row.amount) == expected  # exactly two decimals, no float noise


def test_values_match_ignoring_case_and_spaces_and_symbols_are_cleaned():
    plan = parse_plan(table(
        [" ACTIVE ", " aapl ", "10", " weekly", "", "a1"],
        ["inactive", "brk.b", "20", "MONTHLY ", "", "b1"],
        ["aCtIvE", " b r k . b ", "30", "daily", "", "b2"],
        ["Active", "\u00a0vti\u00a0", "40", "Monthly", "", "v1"],
    ))
    assert plan.issues == []
    assert [(r.status, r.symbol, r.frequency) for r in plan.rows] == [
        (RowStatus.ACTIVE, "AAPL", Frequency.WEEKLY),
        (RowStatus.INACTIVE, "BRK.B", Frequency.MONTHLY),
        (RowStatus.ACTIVE, "BRK.B", Frequency.DAILY),
        (RowStatus.ACTIVE, "VTI", Frequency.MONTHLY),
    ]
    assert [r.active for r in plan.rows] == [True, False, True, True]
    assert [r.symbol for r in plan.active_rows] == ["AAPL", "BRK.B", "VTI"]


def test_blank_lines_are_ignored_and_row_numbers_stay_the_files_lines():
    plan = parse_plan([
        [],
        ["", " ", ""],
        HEADER,
        ["Active", "AAPL", "10", "Weekly", "", "a1"],
        [],
        ["", "", "", "", "", ""],
        ["Active", "SPY", "abc", "Weekly", "", "s1"],
        ["Active", "VTI", "1000", "Monthly", "", "v1"],
        [" ", "  "],
    ])
    assert [(r.row_number, r.symbol) for r in plan.rows] == [(4, "AAPL"), (8, "VTI")]
    assert [i.row_number for i in plan.issues] == [7]
    assert plan.issues[0].message.startswith("Row 7:")
    assert plan.unidentified == []


def test_extra_unknown_columns_are_ignored_and_missing_optional_columns_are_fine():
    plan = parse_plan(table(
        ["notes here", "Active", "AAPL", "10", "Weekly"],
        header=["Comment", "Status", "Stock Symbol", "Amount (USD)", "Frequency"],
    ))
    assert plan.issues == []
    (row,) = plan.rows
    assert (row.symbol, row.row_id, row.log) == ("AAPL", None, "")
    assert plan.unidentified == [2]


def test_a_short_line_is_read_as_empty_trailing_cells():
    plan = parse_plan(table(["Active", "AAPL", "10", "Weekly"]))  # no Log, no ID cells
    assert plan.issues == []
    assert plan.rows[0].row_id is None
    assert plan.unidentified == [2]


@pytest.mark.parametrize("blank", [[], [[]], [[], ["", " "], [" \u00a0"]]])
def test_a_table_without_a_header_row_is_a_plan_error(blank):
    with pytest.raises(PlanError, match=r"the plan has no header row; expected Status, Stock Symbol, Amount \(USD\)"):
        parse_plan(blank)


@pytest.mark.parametrize(
    "header, name, first, second",
    [
        (HEADER + ["Status"], "Status", "A 'Status'", "G 'Status'"),
        (["Status", "Symbol", "Amount", "Frequency", "Stock Symbol"], "Stock Symbol", "B 'Symbol'", "E 'Stock Symbol'"),
        (["Status", "Ticker", "Amount", "Frequency", "ID", "Log", "id"], "ID", "E 'ID'", "G 'id'"),
        (["Log", "Status", "Symbol", "Amount", "Frequency", " LOG "], "Log", "A 'Log'", "F 'LOG'"),
        (["Status", "Symbol", "Amount (USD)", "Frequency", "amount"], "Amount (USD)", "C 'Amount (USD)'", "E 'amount'"),
        (["Frequency", "Status", "Symbol", "Amount"] + [""] * 24 + ["frequency"], "Frequency", "A 'Frequency'",
         "AC 'frequency'"),
    ],
)
def test_a_known_column_given_twice_is_a_plan_error_naming_both(header, name, first, second):
    with pytest.raises(PlanError) as raised:
        parse_plan(table(["Active", "AAPL", "10", "Weekly", "", "a1", "Inactive"], header=header))
    message = str(raised.value)
    assert f"the {name} column twice: column {first} and column {second}" in message


def test_a_cell_over_the_size_limit_is_an_error_on_its_row_and_not_echoed():
    huge = "x" * (MAX_CELL_CHARS + 1)
    plan = parse_plan(table(
        ["Active", "AAPL", "10", "Weekly", "", "a1", huge],
        ["Active", "SPY", "100", "Daily", huge, "s1"],
        ["Active", "QQQ", "100", "Daily", "", "q1"],
        header=HEADER + ["Notes"],
    ))
    assert [r.symbol for r in plan.rows] == ["QQQ"]
    assert [(i.row_number, i.is_error) for i in plan.issues] == [(2, True), (3, True)]
    assert "column G holds 131,073 characters" in plan.issues[0].message
    assert "column E holds" in plan.issues[1].message
    assert all(len(i.message) < 300 for i in plan.issues)


def test_a_cell_exactly_at_the_size_limit_is_fine():
    plan = parse_plan(table(["Active", "AAPL", "10", "Weekly", "x" * MAX_CELL_CHARS, "a1"]))
    assert plan.issues == [] and [r.symbol for r in plan.rows] == ["AAPL"]


def test_problems_the_reader_found_in_a_rows_cells_make_it_an_error_on_that_row():
    plan = parse_plan(
        table(["Active", "AAPL", "10", "Weekly", "", "a1"], ["Active", "SPY", "100", "Daily", "", "s1"]),
        cell_problems={2: ["column B has text after its closing quote"]},
    )
    assert [r.symbol for r in plan.rows] == ["AAPL"]
    assert only_issue(plan, 3).message == "Row 3: column B has text after its closing quote"


def test_a_header_only_gives_an_empty_plan():
    header_only = parse_plan([HEADER])
    assert (header_only.rows, header_only.issues, header_only.unidentified) == ([], [], [])


def test_log_text_is_kept_on_the_row():
    plan = parse_plan(table(["Active", "AAPL", "10", "Weekly", "2027-05-03 09:00 ET · filled", "a1"]))
    assert plan.rows[0].log == "2027-05-03 09:00 ET · filled"


# -- strict: problems on Active rows are errors on that row only -----------------------


@pytest.mark.parametrize(
    "amount, words",
    [
        ("0", ["more than $0"]),
        ("0.00", ["more than $0"]),
        ("-5", ["more than $0"]),
        ("$-5", ["more than $0"]),
        ("abc", ["'abc' is not an amount"]),
        ("", ["empty"]),
        ("1.234", ["3 decimals", "at most 2"]),
        ("1e9", ["'1e9' is not an amount"]),
        ("1000000", ["implausibly large"]),
        ("1,000,000", ["implausibly large"]),
        ("NaN", ["not an amount"]),
        ("Infinity", ["not an amount"]),
        ("-Infinity", ["not an amount"]),
        ("12 apples", ["not an amount"]),
    ],
)
def test_a_bad_amount_on_an_active_row_is_an_error_naming_the_row(amount, words):
    plan = parse_plan(table(
        ["Active", "AAPL", "10", "Weekly", "", "a1"],
        ["Active", "SPY", amount, "Weekly", "", "s1"],
        ["Active", "VTI", "1000", "Monthly", "", "v1"],
    ))
    assert [r.symbol for r in plan.rows] == ["AAPL", "VTI"]
    issue = only_issue(plan, 3)
    assert issue.is_error
    assert plan.errors == [issue] and plan.warnings == []
    assert issue.message.startswith("Row 3:")
    assert "Amount (USD)" in issue.message
    for word in words:
        assert word in issue.message
    assert (issue.row_id, issue.symbol) == ("s1", "SPY")


@pytest.mark.parametrize(
    "amount",
    [
        "10,5",  # a decimal comma: $10.50 to a European, $105 if the comma were dropped
        "1,00",
        "1,0000",
        "10,00,000",  # Indian grouping: not groups of three
        "1.000,00",  # a European one thousand
        "1.000.000",
        "1,000 000",  # two kinds of separator in one number
        "0,500",
        "1e3",
        "1E3",
        "1_000",
        "\u0661\u0660",  # Arabic-Indic digits
        "\uff11\uff10",  # full-width digits
        "--5",
        "+5",
        "-$-5",
        "$$5",
        "5$",
        "USD USD 5",
        ".5",
        "10.",
        "1.5.5",
        "0x10",
        "=10*2",
        "10 dollars",
        "\u22125",  # a Unicode minus sign
        "1.230",  # three decimals, even if the last is 0: 1.23 or one thousand two hundred thirty?
    ],
)
def test_an_amount_that_is_not_unambiguous_is_an_error_quoting_it_and_showing_the_forms(amount):
    plan = parse_plan(table(
        ["Active", "AAPL", "10", "Weekly", "", "a1"],
        ["Active", "SPY", amount, "Weekly", "", "s1"],
    ))
    assert [r.symbol for r in plan.rows] == ["AAPL"]
    issue = only_issue(plan, 3)
    assert issue.is_error and issue.message.startswith("Row 3: Amount (USD): ")
    assert f"'{amount}'" in issue.message
    assert "1000.50" in issue.message and "$1,000.50" in issue.message


def test_a_huge_amount_cell_is_quoted_cut_short():
    plan = parse_plan(table(["Active", "SPY", "9" * 100_000, "Weekly", "", "s1"]))
    issue = only_issue(plan, 2)
    assert "'" + "9" * 40 + "…'" in issue.message
    assert len(issue.message) < 400


def test_control_characters_in_a_quoted_cell_are_shown_escaped():
    plan = parse_plan(table(["Active\x00", "SPY", "1\n0", "Weekly", "", "s1"]))
    issue = only_issue(plan, 2)
    assert "'Active\\x00'" in issue.message and "'1\\n0'" in issue.message
    assert "\x00" not in issue.message and "\n" not in issue.message


def test_an_astronomically_large_amount_is_a_row_error_not_a_crash():
    """'1e30' is an absurd amount like '1e9': it must be an error on its row while the
    other rows still parse. (Decimal.quantize cannot represent it at 28 digits.)"""
    plan = parse_plan(table(
        ["Active", "AAPL", "10", "Weekly", "", "a1"],
        ["Active", "SPY", "1e30", "Weekly", "", "s1"],
    ))
    assert [r.symbol for r in plan.rows] == ["AAPL"]
    issue = only_issue(plan, 3)
    assert issue.is_error and "Row 3" in issue.message and "Amount (USD)" in issue.message


@pytest.mark.parametrize(
    "frequency, words",
    [("Hourly", ["Frequency 'Hourly'", "Daily, Weekly or Monthly"]), ("", ["Frequency is empty"]),
     ("Bi-weekly", ["Frequency 'Bi-weekly'"])],
)
def test_an_unknown_frequency_on_an_active_row_is_an_error(frequency, words):
    plan = parse_plan(table(
        ["Active", "AAPL", "10", frequency, "", "a1"],
        ["Active", "SPY", "100", "Daily", "", "s1"],
    ))
    assert [r.symbol for r in plan.rows] == ["SPY"]
    issue = only_issue(plan, 2)
    assert issue.is_error and issue.message.startswith("Row 2:")
    for word in words:
        assert word in issue.message


@pytest.mark.parametrize("status", ["Paused", "Actve", "yes", ""])
def test_an_unknown_status_is_an_error_because_it_may_be_a_mistyped_active(status):
    plan = parse_plan(table(
        [status, "AAPL", "10", "Weekly", "", "a1"],
        ["Active", "SPY", "100", "Daily", "", "s1"],
    ))
    assert [r.symbol for r in plan.rows] == ["SPY"]
    issue = only_issue(plan, 2)
    assert issue.is_error
    assert issue.message.startswith("Row 2:")
    assert "Status" in issue.message and "Active or Inactive" in issue.message
    if status:
        assert f"'{status}'" in issue.message


@pytest.mark.parametrize(
    "symbol, words",
    [
        ("", ["Stock Symbol is empty"]),
        ("   ", ["Stock Symbol is empty"]),
        ("AAPL!", ["'AAPL!'", "not a ticker"]),
        ("TOOLONGSYMBOL", ["'TOOLONGSYMBOL'", "not a ticker"]),
        ("1ABC", ["not a ticker"]),
        ("BRK..B", ["not a ticker"]),
        ("$SPY", ["not a ticker"]),
    ],
)
def test_an_empty_or_malformed_symbol_on_an_active_row_is_an_error(symbol, words):
    plan = parse_plan(table(
        ["Active", "AAPL", "10", "Weekly", "", "a1"],
        ["Active", symbol, "100", "Daily", "", "s1"],
    ))
    assert [r.symbol for r in plan.rows] == ["AAPL"]
    issue = only_issue(plan, 3)
    assert issue.is_error and issue.message.startswith("Row 3:")
    for word in words:
        assert word in issue.message


def test_several_problems_on_one_row_are_all_named_in_one_issue():
    plan = parse_plan(table(["Active", "AAPL!", "-5", "Hourly", "", "a1"]))
    issue = only_issue(plan, 2)
    assert issue.is_error
    assert "Stock Symbol 'AAPL!'" in issue.message
    assert "Amount (USD)" in issue.message
    assert "Frequency 'Hourly'" in issue.message
    assert plan.rows == []


def test_a_malformed_id_is_reported_and_the_row_counts_as_unidentified():
    plan = parse_plan(table(["Active", "AAPL", "10", "Weekly", "", "has space!"]))
    issue = only_issue(plan, 2)
    assert issue.is_error and "ID 'has space!'" in issue.message
    assert issue.row_id is None
    assert plan.unidentified == [2]


def test_every_bad_row_is_reported_and_every_good_row_still_parses():
    plan = parse_plan(table(
        ["Active", "AAPL", "10", "Weekly", "", "a1"],
        ["Active", "", "10", "Weekly", "", "e1"],
        ["Active", "SPY", "0", "Weekly", "", "e2"],
        ["Active", "QQQ", "50", "Daily", "", "q1"],
        ["Paused", "IWM", "300", "Monthly", "", "e3"],
        ["Active", "VTI", "1000", "Monthly", "", "v1"],
    ))
    assert [(r.row_number, r.symbol) for r in plan.rows] == [(2, "AAPL"), (5, "QQQ"), (7, "VTI")]
    assert [(i.row_number, i.is_error) for i in plan.issues] == [(3, True), (4, True), (6, True)]
    for issue in plan.issues:
        assert issue.message.startswith(f"Row {issue.row_number}:")


# -- Inactive rows: the same problems are warnings --------------------------------------


@pytest.mark.parametrize(
    "symbol, amount, frequency, word",
    [
        ("AAPL", "0", "Weekly", "Amount (USD)"),
        ("AAPL", "-5", "Weekly", "Amount (USD)"),
        ("AAPL", "abc", "Weekly", "Amount (USD)"),
        ("AAPL", "", "Weekly", "Amount (USD)"),
        ("AAPL", "1.234", "Weekly", "Amount (USD)"),
        ("AAPL", "1e9", "Weekly", "Amount (USD)"),
        ("AAPL", "NaN", "Weekly", "Amount (USD)"),
        ("AAPL", "10", "Hourly", "Frequency"),
        ("", "10", "Weekly", "Stock Symbol"),
        ("AAPL!", "10", "Weekly", "Stock Symbol"),
        ("TOOLONGSYMBOL", "10", "Weekly", "Stock Symbol"),
    ],
)
def test_the_same_problems_on_an_inactive_row_are_warnings(symbol, amount, frequency, word):
    plan = parse_plan(table(
        ["Inactive", symbol, amount, frequency, "", "t1"],
        ["Active", "SPY", "100", "Daily", "", "s1"],
    ))
    assert [r.symbol for r in plan.rows] == ["SPY"]
    issue = only_issue(plan, 2)
    assert not issue.is_error
    assert plan.errors == [] and plan.warnings == [issue]
    assert issue.message.startswith("Row 2:")
    assert word in issue.message
    assert "Inactive" in issue.message


def test_a_valid_inactive_row_is_parsed_but_not_active():
    plan = parse_plan(table(["Inactive", "TSLA", "10", "Daily", "", "t1"]))
    assert plan.issues == []
    assert [(r.symbol, r.active) for r in plan.rows] == [("TSLA", False)]
    assert plan.active_rows == []


# -- IDs --------------------------------------------------------------------------------


def test_a_copied_row_with_the_same_id_flags_both_rows_and_neither_runs():
    plan = parse_plan(table(
        ["Active", "AAPL", "10", "Weekly", "", "dup1"],
        ["Active", "SPY", "100", "Daily", "", "s1"],
        ["Active", "AAPL", "10", "Weekly", "", "dup1"],
    ))
    assert [r.symbol for r in plan.rows] == ["SPY"]
    assert [(i.row_number, i.is_error, i.row_id) for i in plan.issues] == [(2, True, "dup1"), (4, True, "dup1")]
    # Both rows' Log cells are written by ID, so they say the same, naming both rows.
    assert plan.issues[0].message == plan.issues[1].message
    assert plan.issues[0].message.startswith("Rows 2 and 4 have the same ID dup1")
    assert "clear the ID" in plan.issues[0].message


def test_a_copied_row_names_every_copy_and_an_invalid_copy_stops_the_valid_one():
    plan = parse_plan(table(
        ["Active", "AAPL", "10", "Weekly", "", "dup1"],
        ["Active", "AAPL", "abc", "Weekly", "", "dup1"],
        ["Active", "AAPL", "10", "Weekly", "", "dup1"],
    ))
    assert plan.rows == []
    assert [(i.row_number, i.is_error) for i in plan.issues] == [(2, True), (3, True), (4, True)]
    for issue in plan.issues:
        assert issue.message.startswith("Rows 2, 3 and 4 have the same ID dup1")
    assert "row 3 also: Amount (USD): 'abc'" in plan.issues[1].message


def test_a_duplicate_id_on_an_inactive_copy_is_a_warning_there_and_an_error_on_the_active_row():
    plan = parse_plan(table(
        ["Active", "AAPL", "10", "Weekly", "", "dup1"],
        ["Inactive", "AAPL", "10", "Weekly", "", "dup1"],
    ))
    assert plan.rows == []
    assert [(i.row_number, i.is_error) for i in plan.issues] == [(2, True), (3, False)]


def test_unidentified_lists_rows_without_ids_valid_or_not_and_skips_blank_lines():
    plan = parse_plan(table(
        ["Active", "AAPL", "10", "Weekly", "", "a1"],
        ["Active", "SPY", "100", "Daily", "", ""],
        [],
        ["Active", "QQQ", "abc", "Daily", "", "  "],
        ["Inactive", "TSLA", "10", "Daily"],
        ["", "", "", "", "only a log", ""],
        ["Active", "VTI", "1000", "Monthly", "", "v1"],
    ))
    assert plan.unidentified == [3, 5, 6]
    assert {r.row_number: r.row_id for r in plan.rows} == {2: "a1", 3: None, 6: None, 8: "v1"}


# -- the header -------------------------------------------------------------------------


@pytest.mark.parametrize("missing", ["Status", "Stock Symbol", "Amount (USD)", "Frequency"])
def test_a_missing_required_column_raises_plan_error_naming_it(missing):
    header = [c for c in HEADER if c != missing]
    with pytest.raises(PlanError) as raised:
        parse_plan([header, ["x"] * len(header)])
    message = str(raised.value)
    assert f"lacks {missing}" in message
    assert "line 1" in message


def test_the_missing_column_message_names_the_header_line_it_read():
    with pytest.raises(PlanError, match=r"line 3\) lacks Amount \(USD\), Frequency"):
        parse_plan([[], [], ["Status", "Symbol", "Price"], ["Active", "AAPL", "10"]])


# -- sizing -----------------------------------------------------------------------------


def D(text: str) -> Decimal:
    return Decimal(text)


def test_whole_shares_leave_a_remainder_that_is_carried_forward():
    first = size_order(D("100"), D("0"), D("30"), fractional=False)
    assert (first.quantity, first.cost, first.carry_out, first.cash_amount) == (D("3"), D("90.00"), D("10.00"), None)
    second = size_order(D("100"), first.carry_out, D("30"), fractional=False)
    assert (second.quantity, second.cost, second.carry_out) == (D("3"), D("90.00"), D("20.00"))
    third = size_order(D("100"), second.carry_out, D("30"), fractional=False)
    assert (third.quantity, third.cost, third.carry_out) == (D("4"), D("120.00"), D("0.00"))


def test_a_budget_below_the_price_buys_nothing_and_carries_all_of_it():
    sizing = size_order(D("50"), D("5.25"), D("60"), fractional=False)
    assert sizing.quantity == 0
    assert sizing.cost == 0
    assert sizing.carry_out == D("55.25")


def test_the_carry_is_spent_once_it_reaches_a_share():
    sizing = size_order(D("50"), D("50.00"), D("60"), fractional=False)
    assert (sizing.quantity, sizing.cost, sizing.carry_out) == (D("1"), D("60.00"), D("40.00"))


def test_fractional_orders_spend_the_whole_budget_as_a_cash_amount():
    sizing = size_order(D("100"), D("0"), D("30"), fractional=True)
    assert sizing.quantity == D("3.3333")
    assert sizing.cost == D("100")
    assert sizing.cash_amount == D("100")
    assert sizing.carry_out == 0


def test_fractional_orders_also_spend_any_carry_left_from_whole_share_days():
    sizing = size_order(D("100"), D("20.00"), D("30"), fractional=True)
    assert (sizing.quantity, sizing.cash_amount, sizing.carry_out) == (D("4.0000"), D("120.00"), 0)


def test_sizing_is_exact_decimal_arithmetic_not_float():
    # 0.30 / 0.10 is 2.9999999999999996 in float, which would buy 2 shares.
    sizing = size_order(D("0.30"), D("0"), D("0.10"), fractional=False)
    assert sizing.quantity == 3 and sizing.carry_out == 0
    sizing = size_order(D("100"), D("0"), D("33.33"), fractional=False)
    assert (sizing.quantity, sizing.cost, sizing.carry_out) == (D("3"), D("99.99"), D("0.01"))
    for value in (sizing.quantity, sizing.cost, sizing.carry_out):
        assert isinstance(value, Decimal)
    assert str(sizing.cost) == "99.99" and str(sizing.carry_out) == "0.01"
    fractional = size_order(D("10.10"), D("0.20"), D("3"), fractional=True)
    assert fractional.cash_amount == D("10.30")
    assert isinstance(fractional.quantity, Decimal) and fractional.quantity == D("3.4333")


def test_the_cost_of_whole_shares_never_exceeds_the_budget():
    for cents in range(1, 2000, 37):
        budget = D(cents) / 100
        for price in (D("0.07"), D("1.01"), D("3.333"), D("12.3456")):
            sizing = size_order(budget, D("0"), price, fractional=False)
            assert sizing.cost <= budget
            assert sizing.cost + sizing.carry_out == budget


@pytest.mark.parametrize("price", [D("0"), D("-1")])
def test_a_non_positive_price_is_refused(price):
    with pytest.raises(ValueError, match="price must be positive"):
        size_order(D("100"), D("0"), price, fractional=False)


def test_client_order_id_is_deterministic_per_row_and_date():
    first = client_order_id("r0a1b2c3d4e", date(2027, 5, 3))
    assert first == "dca-r0a1b2c3d4e-20270503"
    assert client_order_id("r0a1b2c3d4e", date(2027, 5, 3)) == first
    assert client_order_id("r0a1b2c3d4e", date(2027, 5, 4)) != first
    assert client_order_id("other", date(2027, 5, 3)) != first


@pytest.mark.parametrize("position, letters", [(0, "A"), (25, "Z"), (26, "AA"), (51, "AZ"), (52, "BA"), (701, "ZZ"), (702, "AAA")])
def test_column_letters_are_the_spreadsheets(position, letters):
    assert column_letter(position) == letters
