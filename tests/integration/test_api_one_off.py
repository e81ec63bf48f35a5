"""One-off buys (manual orders, TradingView alerts) through the engine's own path:
idempotent by key, guarded like the plan, and settled by a normal run after a crash."""

from __future__ import annotations

from decimal import Decimal

import pytest

from dca.domain import Outcome
from dca.errors import PlanError
from dca.one_off import KeyReused, OneOffRefused, alert_row_id, manual_row_id, parse_amount_usd, parse_symbol, place_one_off
from tests.conftest import ny
from tests.fakes import FakeBroker

MONDAY_AFTERNOON = ny(2027, 3, 1, 14, 0)


def _raise_at(step_name):
    def checkpoint(step, execution):
        if step == step_name:
            raise KeyboardInterrupt  # like Ctrl-C: not an Exception, so nothing catches it
    return checkpoint


def buy(rig, key="k1", symbol="AAPL", amount="50", now=MONDAY_AFTERNOON, dry_run=False, source="manual"):
    row_id = manual_row_id(key) if source == "manual" else alert_row_id(key, symbol)
    return place_one_off(rig.engine, source, key, row_id, symbol, Decimal(amount), now, dry_run=dry_run)


def test_a_one_off_is_an_execution_once_today_and_a_replay_sends_nothing(make_rig):
    rig = make_rig("Active,QQQ,50,Daily,,q1\n", fractional=True)
    first = buy(rig)
    e = first.execution
    assert (e.status, e.frequency, e.scheduled_date, e.row_id) == (Outcome.FILLED, "Once", MONDAY_AFTERNOON.date(),
                                                                    manual_row_id("k1"))
    assert e.late is False and e.row_number is None and e.cost == Decimal("50.00")
    assert first.replayed is False
    again = buy(rig, now=ny(2027, 3, 1, 15, 0))
    assert again.replayed is True and again.execution.id == e.id and again.execution.status is Outcome.FILLED
    # ...also on a later day: the key keeps the answer, it does not buy again.
    later = buy(rig, now=ny(2027, 3, 2, 10, 0))
    assert later.replayed is True and later.execution.id == e.id
    assert len(rig.broker.orders()) == 1
    assert "AAPL" in rig.notifications()


def test_a_key_reused_for_another_order_is_refused_and_nothing_is_sent(make_rig):
    rig = make_rig("", fractional=True)
    buy(rig)
    with pytest.raises(KeyReused, match="already used for AAPL \\$50.00"):
        buy(rig, amount="60")
    assert len(rig.broker.orders()) == 1


def test_a_one_off_meets_the_per_order_maximum_and_the_days_total(make_rig):
    rig = make_rig("", fractional=True, max_order_usd=Decimal("100"), max_daily_usd=Decimal("150"))
    over = buy(rig, key="big", amount="100.01")
    assert over.execution.status is Outcome.SKIPPED and "over the maximum per order" in over.execution.message
    assert buy(rig, key="a", amount="100").execution.status is Outcome.FILLED  # exactly the maximum
    second = buy(rig, key="b", amount="60")
    assert second.execution.status is Outcome.SKIPPED and "maximum per day" in second.execution.message
    assert [o.cash_amount for o in rig.broker.orders()] == [Decimal("100.00")]


def test_one_offs_count_in_the_days_total_of_the_plan(make_rig):
    rig = make_rig("Active,QQQ,100,Daily,,q1\n", fractional=True, max_daily_usd=Decimal("150"))
    buy(rig, amount="100", now=ny(2027, 3, 1, 8, 0))
    run = rig.run(ny(2027, 3, 1, 9, 0))
    qqq = [e for e in run.executions if e.symbol == "QQQ"][0]
    assert qqq.status is Outcome.SKIPPED and "maximum per day" in qqq.message


def test_a_one_off_too_small_for_a_whole_share_carries_nothing(make_rig):
    rig = make_rig("")  # whole shares only
    answer = buy(rig, amount="5")
    assert answer.execution.status is Outcome.SKIPPED
    assert answer.execution.message.endswith("does not buy one share at "
                                             f"${answer.execution.price:,.2f}; nothing bought")
    assert rig.broker.orders() == []


def test_a_dry_run_one_off_records_and_sends_nothing(make_rig):
    rig = make_rig("", fractional=True)
    answer = buy(rig, dry_run=True)
    assert answer.dry_run and answer.execution.status is Outcome.PLANNED
    assert rig.broker.orders() == [] and rig.ledger.history() == []
    # The key is still free: the real order goes through.
    assert buy(rig).execution.status is Outcome.FILLED


def test_the_broker_down_defers_a_one_off_and_the_same_key_buys_later(make_rig):
    rig = make_rig("", fractional=True, faults={"*": "logged_out:1"})
    answer = buy(rig)
    assert answer.execution is None and "logged out" in answer.deferred
    assert rig.ledger.history() == []
    assert buy(rig, now=ny(2027, 3, 2, 10)).execution.status is Outcome.FILLED
    assert len(rig.broker.orders()) == 1


def test_a_one_off_the_broker_provably_did_not_receive_is_sent_by_the_next_run(make_rig):
    rig = make_rig("", broker=FakeBroker(fractional=True, submit_faults=["unavailable"]))
    answer = buy(rig)
    assert answer.execution.status is Outcome.PENDING and rig.broker.orders() == []
    assert buy(rig, now=ny(2027, 3, 1, 14, 5)).replayed  # asked again: the recorded answer, nothing sent
    assert rig.broker.orders() == []
    rig.run(ny(2027, 3, 1, 14, 10))
    assert rig.ledger.get(manual_row_id("k1"), ny(2027, 3, 1).date()).status is Outcome.FILLED
    assert len(rig.broker.orders()) == 1


@pytest.mark.parametrize("crash_at, sent_before_crash", [("intent_recorded", False), ("broker_returned", True)])
def test_a_crash_after_a_one_offs_intent_is_settled_by_the_next_run_with_one_order(make_rig, crash_at,
                                                                                    sent_before_crash):
    rig = make_rig("Active,QQQ,50,Weekly,,q1\n", fractional=True)
    rig.engine._checkpoint = _raise_at(crash_at)
    with pytest.raises(KeyboardInterrupt):
        buy(rig, now=ny(2027, 3, 1, 8, 0))
    pending = rig.ledger.get(manual_row_id("k1"), ny(2027, 3, 1).date())
    assert pending.status is Outcome.PENDING
    assert len(rig.broker.orders()) == (1 if sent_before_crash else 0)
    rig.engine._checkpoint = lambda step, execution: None
    # The one-off has no plan row: the run must not take it for a removed row.
    run = rig.run(ny(2027, 3, 1, 9, 0))
    settled = rig.ledger.get(manual_row_id("k1"), ny(2027, 3, 1).date())
    assert settled.status is Outcome.FILLED, settled.message
    assert sorted(o.symbol for o in rig.broker.orders()) == ["AAPL", "QQQ"]
    assert {e.symbol for e in run.executions} == {"AAPL", "QQQ"}
    # Asking again gives the settled answer and sends nothing.
    assert buy(rig, now=ny(2027, 3, 1, 10)).execution.status is Outcome.FILLED
    assert len(rig.broker.orders()) == 2


def test_alerts_on_two_tickers_with_one_timenow_are_two_buys(make_rig):
    rig = make_rig("", fractional=True)
    buy(rig, key="2027-03-01T19:00:00Z", symbol="AAPL", source="tradingview")
    buy(rig, key="2027-03-01T19:00:00Z", symbol="MSFT", source="tradingview")
    buy(rig, key="2027-03-01T19:00:00Z", symbol="MSFT", source="tradingview")
    assert sorted(o.symbol for o in rig.broker.orders()) == ["AAPL", "MSFT"]


@pytest.mark.parametrize("text", ["", "aapl!", "TOO-LONG-X", "1AB"])
def test_bad_symbols_are_refused(text):
    with pytest.raises(OneOffRefused, match="not a ticker"):
        parse_symbol(text)


@pytest.mark.parametrize("value, match", [("0", "more than \\$0"), ("-5", "more than \\$0"), ("1.234", "two decimals"),
                                          ("nan", "more than"), ("1e7", "implausible"), ("abc", "not a number")])
def test_bad_amounts_are_refused(value, match):
    with pytest.raises(OneOffRefused, match=match):
        parse_amount_usd(value)


def test_amounts_are_kept_to_the_cent():
    assert str(parse_amount_usd(50)) == "50.00" and str(parse_amount_usd("12.5")) == "12.50"
    assert parse_symbol(" brk.b ") == "BRK.B"


def test_a_one_off_in_doubt_is_settled_even_while_the_plan_cannot_be_read(make_rig):
    rig = make_rig("Active,QQQ,50,Weekly,,q1\n", fractional=True)
    rig.engine._checkpoint = _raise_at("intent_recorded")
    with pytest.raises(KeyboardInterrupt):
        buy(rig, now=ny(2027, 3, 1, 8, 0))
    rig.engine._checkpoint = lambda step, execution: None
    rig.plan_path.write_text('Status,Stock Symbol,Amount (USD),Frequency\nActive,"QQQ,50,Weekly\n')  # unreadable
    with pytest.raises(PlanError):
        rig.run(ny(2027, 3, 1, 9, 0))
    assert rig.ledger.get(manual_row_id("k1"), ny(2027, 3, 1).date()).status is Outcome.FILLED
    assert [o.symbol for o in rig.broker.orders()] == ["AAPL"]


def test_a_whole_share_one_off_says_what_was_left_unspent_not_carried(make_rig):
    rig = make_rig("")  # whole shares only
    answer = buy(rig, amount="500")
    e = answer.execution
    assert e.status is Outcome.FILLED and e.quantity == 1
    note = rig.notifications()
    assert f"unspent ${Decimal('500') - e.cost:,.2f}" in note and "carry" not in note
