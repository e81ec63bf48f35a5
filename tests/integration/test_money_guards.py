"""Money rules at their edges: each test here fails when its rule is broken by one token.

(Kept from hand-made mutations of the money paths that the foundation's suite let
survive: the intent's fsync, the guards' boundaries, the daily total across runs.)

The rule, documented in README: exactly the maximum is allowed, a cent over is refused.
Cash (fractional) orders count their cash amount; whole-share orders count their
estimate plus the price margin (5% unless configured).
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from dca.domain import Outcome
from tests.conftest import ny
from tests.fakes import FakeBroker

MONDAY = ny(2027, 3, 1, 9, 0, 30)


def only(report, symbol):
    [execution] = [e for e in report.executions if e.symbol == symbol]
    return execution


def test_the_intent_is_fsynced_before_the_broker_hears_of_the_order(make_rig):
    statements: list[str] = []

    class Watching(FakeBroker):
        def submit(self, order, at):
            statements.append("SUBMIT")
            return super().submit(order, at)

    rig = make_rig("Active,SPY,700,Weekly,,s1\n", broker=Watching())
    rig.ledger._connections.get().set_trace_callback(statements.append)
    rig.run(MONDAY)
    submit = statements.index("SUBMIT")
    insert = max(i for i, s in enumerate(statements[:submit]) if s.startswith("INSERT INTO executions"))
    pragma = max(i for i, s in enumerate(statements[:insert]) if s.startswith("PRAGMA synchronous"))
    assert statements[pragma] == "PRAGMA synchronous=FULL"
    assert any(s == "COMMIT" for s in statements[insert:submit])


@pytest.mark.parametrize("maximum, status", [("700.00", Outcome.FILLED), ("699.99", Outcome.SKIPPED)])
def test_the_per_order_maximum_allows_exactly_the_maximum_for_a_cash_order(make_rig, maximum, status):
    rig = make_rig("Active,SPY,700,Weekly,,s1\n", broker=FakeBroker(fractional=True),
                   max_order_usd=Decimal(maximum))
    assert only(rig.run(MONDAY), "SPY").status is status


@pytest.mark.parametrize("maximum, status", [("735.00", Outcome.FILLED), ("734.99", Outcome.SKIPPED)])
def test_the_per_order_maximum_counts_the_margin_on_whole_shares(make_rig, maximum, status):
    # 7 shares at $100 = $700, plus 5% = $735.
    rig = make_rig("Active,SPY,700,Weekly,,s1\n", broker=FakeBroker(), max_order_usd=Decimal(maximum))
    assert only(rig.run(MONDAY), "SPY").status is status


@pytest.mark.parametrize("maximum, status", [("100.00", Outcome.FILLED), ("99.99", Outcome.SKIPPED)])
def test_the_per_order_maximum_applies_to_an_order_reached_through_carry(make_rig, maximum, status):
    # $60 a week does not buy a $100 share; the second week's $120 budget buys one.
    rig = make_rig("Active,SPY,60,Weekly,,s1\n", broker=FakeBroker(), max_order_usd=Decimal(maximum),
                   price_margin=Decimal("0"))
    assert only(rig.run(MONDAY), "SPY").status is Outcome.SKIPPED
    second = only(rig.run(ny(2027, 3, 8, 9, 1)), "SPY")
    assert second.status is status
    if status is Outcome.FILLED:
        assert second.carry_in == Decimal("60") and second.cost == Decimal("100.00")


@pytest.mark.parametrize("maximum, status", [("1500.00", Outcome.FILLED), ("1499.99", Outcome.SKIPPED)])
def test_the_daily_maximum_allows_exactly_the_maximum(make_rig, maximum, status):
    rig = make_rig("Active,AAA,700,Daily,,a1\nActive,BBB,800,Daily,,b1\n", broker=FakeBroker(fractional=True),
                   max_daily_usd=Decimal(maximum))
    report = rig.run(MONDAY)
    assert only(report, "AAA").status is Outcome.FILLED
    assert only(report, "BBB").status is status


@pytest.mark.parametrize("maximum, status", [("1500.00", Outcome.FILLED), ("1499.99", Outcome.SKIPPED)])
def test_the_daily_maximum_counts_what_an_earlier_run_the_same_day_spent(make_rig, maximum, status):
    broker = FakeBroker(fractional=True)
    rig = make_rig("Active,AAA,700,Daily,,a1\n", broker=broker, max_daily_usd=Decimal(maximum))
    assert only(rig.run(MONDAY), "AAA").status is Outcome.FILLED
    rig.plan_path.write_text(rig.plan_path.read_text() + "Active,BBB,800,Daily,,b1\n")
    later = only(rig.run(ny(2027, 3, 1, 11)), "BBB")
    assert later.status is status
    if status is Outcome.SKIPPED:
        assert "($1,499.99; $700.00 already)" in later.message


def test_the_daily_maximum_counts_actual_costs_once_filled(make_rig):
    # The quote said $100; the fill was $110: today's total is the actual $770.
    broker = FakeBroker(fill_price_factor=Decimal("1.10"))
    rig = make_rig("Active,AAA,700,Daily,,a1\n", broker=broker, max_daily_usd=Decimal("1469.99"),
                   price_margin=Decimal("0"))
    rig.run(MONDAY)
    assert rig.ledger.committed_on(MONDAY.date()) == Decimal("770.00")
    broker.fill_price_factor = Decimal("1")
    rig.plan_path.write_text(rig.plan_path.read_text() + "Active,BBB,700,Daily,,b1\n")
    bbb = only(rig.run(ny(2027, 3, 1, 11)), "BBB")
    # $770 + $700 is over; the estimates ($700 + $700) would have fitted.
    assert bbb.status is Outcome.SKIPPED and "$770.00 already" in bbb.message


def test_the_daily_maximum_reserves_the_margin_for_orders_still_working(make_rig):
    broker = FakeBroker(fill="working")
    rig = make_rig("Active,AAA,700,Daily,,a1\nActive,BBB,700,Daily,,b1\n", broker=broker,
                   max_daily_usd=Decimal("1469.99"))
    report = rig.run(MONDAY)
    # AAA: 7 x $100 working, counted as $735; BBB's $735 would make $1,470.
    assert only(report, "AAA").status is Outcome.SUBMITTED
    assert only(report, "BBB").status is Outcome.SKIPPED
