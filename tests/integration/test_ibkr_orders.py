"""The engine placing orders at IBKR through the real ibind client, over real HTTP, against
the local gateway emulator (tests/fakes/ibkr_gateway.py). Nothing in the adapter is mocked;
the emulator and the adapter share a fake clock, so pacing and settling cost no real time.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from dca.brokers.ibkr import IbkrBroker, IbkrConfig, build_client
from dca.domain import Outcome
from dca.ports import OrderRequest
from tests.conftest import ny
from tests.fakes.ibkr_gateway import DROP, IbkrGateway

from tests.fakes.ibkr_fixtures import ACCOUNT, TUESDAY, clock, gateway, no_ibind_environment  # noqa: F401 (fixtures)


def crash_at(step_name):
    def checkpoint(step, execution):
        if step == step_name:
            raise KeyboardInterrupt  # like a kill: not an Exception, so nothing catches it
    return checkpoint


@pytest.fixture
def connect(gateway, clock):
    """connect(**config) -> a fresh adapter (a new process, as after a restart)."""

    def make(**overrides) -> IbkrBroker:
        config = IbkrConfig(**{"url": gateway.url, "account_id": ACCOUNT, "timeout_seconds": 2.0, **overrides})
        return IbkrBroker(build_client(config), config, clock)

    return make


@pytest.fixture
def rig(make_rig, connect, clock):
    """rig(rows_csv, broker=None, **options): the engine on the adapter, sharing the clock."""

    def make(rows_csv: str, broker: IbkrBroker | None = None, **options):
        r = make_rig(rows_csv, broker=broker or connect(), **options)
        r.engine.clock = r.clock = clock
        return r

    return make


def order_posts(gw) -> int:
    return gw.count("POST", r"iserver/account/[^/]+/orders")


def only(report, symbol):
    [execution] = [e for e in report.executions if e.symbol == symbol]
    return execution


# -- the ordinary buy ------------------------------------------------------------------------------


def test_a_due_row_becomes_one_market_day_order_with_its_client_order_id_and_fill(rig, gateway):
    gateway.prices["AAPL"].update(last=Decimal("101.50"), prior=Decimal("100.00"))
    r = rig("Active,AAPL,350,Daily,,a1\n")
    report = r.run(TUESDAY)
    e = only(report, "AAPL")
    assert e.status is Outcome.FILLED
    [order] = gateway.orders
    assert order.body == {"acctId": ACCOUNT, "conid": 265598, "cOID": e.order_ref, "orderType": "MKT",
                          "side": "BUY", "tif": "DAY", "quantity": 3}
    assert e.order_ref == "dca-a1-20261201"
    assert (e.quantity, e.price, e.cost) == (Decimal("3"), Decimal("101.50"), Decimal("304.50"))
    assert e.broker_order_id == str(order.order_id)
    assert not e.simulated and not report.simulated
    assert report.broker == f"IBKR paper account {ACCOUNT}"


def test_contracts_and_prices_are_asked_in_one_batch_per_run(rig, gateway):
    r = rig("Active,AAPL,350,Daily,,a1\nActive,SPY,350,Daily,,s1\nActive,VTI,350,Daily,,v1\n")
    r.run(TUESDAY)
    assert gateway.count("GET", "trsrv/stocks") == 1
    [(_, _, params)] = [q for q in gateway.requests if q[1] == "trsrv/stocks"]
    assert params["symbols"] == ["AAPL,SPY,VTI"]
    # the first snapshot is the preflight without fields; one retry, for all three at once
    assert gateway.count("GET", "iserver/marketdata/snapshot") == 2
    assert order_posts(gateway) == 3


def test_a_price_before_the_open_is_the_previous_close_and_is_used(rig, gateway):
    gateway.prices["AAPL"].update(prefix="C", last=Decimal("99.00"), prior=Decimal("99.00"))
    e = only(rig("Active,AAPL,200,Daily,,a1\n").run(TUESDAY), "AAPL")
    assert e.status is Outcome.FILLED
    assert e.price_source == "previous close"


# -- never a second order --------------------------------------------------------------------------


def test_a_timeout_after_acceptance_gives_one_order_and_a_recorded_fill(rig, gateway, connect):
    gateway.slow_after_accept = [1.5]  # the gateway places the order, then answers too late
    r = rig("Active,AAPL,350,Daily,,a1\n", broker=connect(timeout_seconds=0.3))
    e = only(r.run(TUESDAY), "AAPL")
    assert order_posts(gateway) == 1  # ibind did not resend it
    assert len(gateway.orders) == 1
    assert e.status is Outcome.FILLED
    assert e.quantity == Decimal("3") and e.broker_order_id == str(gateway.orders[0].order_id)
    assert e.commission == Decimal("1.00")  # from today's trades: the order list has none


@pytest.mark.parametrize("step", ["intent_recorded", "broker_returned"])
def test_a_crash_between_submit_and_outcome_then_a_restart_places_no_second_order(rig, gateway, connect, step):
    r = rig("Active,AAPL,350,Daily,,a1\n", checkpoint=crash_at(step))
    with pytest.raises(KeyboardInterrupt):
        r.run(TUESDAY)
    [pending] = r.ledger.with_status(Outcome.PENDING)
    assert pending.attempts == 1
    # restart: a new process, a new adapter, a little later the same day
    again = rig("Active,AAPL,350,Daily,,a1\n", broker=connect())
    report = again.run(ny(2026, 12, 1, 9, 20))
    assert only(report, "AAPL").status is Outcome.FILLED
    assert order_posts(gateway) == 1 and len(gateway.orders) == 1


def test_a_list_lagging_longer_than_the_settle_time_still_gives_one_order(rig, gateway, connect, clock):
    # The worst case: the order list lags far longer than IBKR's usual few seconds, so it
    # looks settled and empty. The resend it justifies carries the same cOID, which IBKR
    # refuses as already registered: the execution stays in doubt, and settles later.
    gateway.order_list_lag = 600.0
    gateway.slow_after_accept = [1.0]
    r = rig("Active,AAPL,350,Daily,,a1\n", broker=connect(timeout_seconds=0.3))
    first = only(r.run(TUESDAY), "AAPL")
    assert len(gateway.orders) == 1
    assert first.status is Outcome.PENDING and "already" in first.message
    gateway.order_list_lag = 0.0
    clock.now += 30 * 60  # half an hour later (sooner, IBKR would refuse the new process's first list: 429)
    later = only(rig("Active,AAPL,350,Daily,,a1\n", broker=connect()).run(ny(2026, 12, 1, 9, 30)), "AAPL")
    assert later.status is Outcome.FILLED and len(gateway.orders) == 1


def test_a_500_on_the_order_post_is_never_retried_blindly(rig, gateway):
    gateway.fail(r"iserver/account/[^/]+/orders", 500, method="POST")
    e = only(rig("Active,AAPL,350,Daily,,a1\n").run(TUESDAY), "AAPL")
    # in doubt: the order list was read (forced, then settled) before the only resend
    trail = [(m, p) for m, p, _ in gateway.requests if p.startswith("iserver/account/")]
    assert trail[:4] == [("POST", f"iserver/account/{ACCOUNT}/orders"), ("GET", "iserver/account/orders"),
                         ("GET", "iserver/account/orders"), ("POST", f"iserver/account/{ACCOUNT}/orders")]
    assert len(gateway.orders) == 1 and e.status is Outcome.FILLED


def test_a_429_storm_ends_without_a_duplicate(rig, gateway, connect):
    gateway.fail(r"iserver/account/[^/]+/orders", 429, method="POST")
    gateway.fail(r"iserver/account/orders", 429, times=3)
    r = rig("Active,AAPL,350,Daily,,a1\n")
    first = only(r.run(TUESDAY), "AAPL")
    assert first.status is Outcome.PENDING and "429" in first.message
    assert order_posts(gateway) == 1  # backed off: not even the lookups went on while penalised
    for minute in (10, 20, 30, 40):
        r = rig("Active,AAPL,350,Daily,,a1\n", broker=connect())
        r.run(ny(2026, 12, 1, 9, minute))
    assert len(gateway.orders) == 1
    assert order_posts(gateway) == 2  # the refused one, and the one sent after IBKR showed it had none
    [done] = r.ledger.history()
    assert done.status is Outcome.FILLED


def test_a_401_on_the_order_post_is_doubt_settled_by_the_order_list_not_a_blind_resend(rig, gateway):
    gateway.fail(r"iserver/account/[^/]+/orders", 401, method="POST")
    e = only(rig("Active,AAPL,350,Daily,,a1\n").run(TUESDAY), "AAPL")
    posts = [i for i, (m, p, _) in enumerate(gateway.requests) if m == "POST" and p.endswith("/orders")]
    lists = [i for i, (m, p, _) in enumerate(gateway.requests) if p == "iserver/account/orders"]
    assert len(posts) == 2 and any(posts[0] < i < posts[1] for i in lists)
    assert len(gateway.orders) == 1 and e.status is Outcome.FILLED


def test_a_401_when_listing_accounts_means_not_ready_and_nothing_is_sent(rig, gateway):
    gateway.fail("iserver/accounts", 401)
    report = rig("Active,AAPL,350,Daily,,a1\n").run(TUESDAY)
    assert report.executions == [] and "401" in report.deferred[0]["message"]
    assert order_posts(gateway) == 0


def test_a_500_after_the_order_was_placed_gives_one_order(rig, gateway):
    gateway.fail(r"iserver/account/[^/]+/orders", 500, method="POST", after=True)
    e = only(rig("Active,AAPL,350,Daily,,a1\n").run(TUESDAY), "AAPL")
    assert order_posts(gateway) == 1 and len(gateway.orders) == 1
    assert e.status is Outcome.FILLED


def test_a_connection_dropped_after_the_order_was_placed_gives_one_order(rig, gateway):
    gateway.fail(r"iserver/account/[^/]+/orders", DROP, method="POST", after=True)
    e = only(rig("Active,AAPL,350,Daily,,a1\n").run(TUESDAY), "AAPL")
    assert order_posts(gateway) == 1 and len(gateway.orders) == 1
    assert e.status is Outcome.FILLED


def test_a_gateway_that_refuses_the_connection_provably_got_no_order(connect, gateway):
    from dca.errors import BrokerUnavailable

    broker = connect()
    broker.readiness(TUESDAY)
    broker.resolve(["AAPL"])
    broker.client.base_url = "http://127.0.0.1:9/v1/api/"  # nothing listens there
    with pytest.raises(BrokerUnavailable, match="could not be reached"):
        broker.submit(OrderRequest("dca-a1-20261201", "AAPL", Decimal(3)), TUESDAY)


def test_a_duplicate_client_order_id_is_looked_up_not_failed(rig, gateway):
    r = rig("Active,AAPL,350,Daily,,a1\n")
    # Another process already placed it; this one never heard back.
    gateway.questions = []
    gateway.handle("POST", f"iserver/account/{ACCOUNT}/orders", {},
                   {"orders": [{"conid": 265598, "cOID": "dca-a1-20261201", "quantity": 3, "side": "BUY",
                                "orderType": "MKT", "tif": "DAY"}]})
    e = only(r.run(TUESDAY), "AAPL")
    assert e.status is Outcome.FILLED
    assert len(gateway.orders) == 1


def test_a_rejection_with_http_200_is_a_failure_with_ibkrs_words(rig, gateway):
    gateway.reject_next = ["Order rejected - reason: insufficient permissions for this exchange"]
    e = only(rig("Active,AAPL,350,Daily,,a1\n").run(TUESDAY), "AAPL")
    assert e.status is Outcome.FAILED
    assert "insufficient permissions" in e.message
    assert gateway.orders == []


# -- questions -------------------------------------------------------------------------------------


def test_an_allowed_question_is_confirmed_once_and_places_the_order(rig, gateway):
    gateway.questions = [["o354"]]
    e = only(rig("Active,AAPL,350,Daily,,a1\n").run(TUESDAY), "AAPL")
    assert e.status is Outcome.FILLED
    replies = [b for m, p, b in gateway.requests if p.startswith("iserver/reply/")]
    assert replies == [{"confirmed": True}]
    assert len(gateway.orders) == 1


def test_an_unknown_question_is_answered_no_and_places_no_order(rig, gateway):
    gateway.questions = [["o999"]]
    r = rig("Active,AAPL,350,Daily,,a1\n")
    e = only(r.run(TUESDAY), "AAPL")
    assert gateway.orders == []
    assert [b for m, p, b in gateway.requests if p.startswith("iserver/reply/")] == [{"confirmed": False}]
    assert e.status is Outcome.FAILED
    assert "o999" in e.message and "DCA_IBKR_ANSWERS" in e.message
    assert "o999" in r.notifications()


def test_a_timeout_on_the_confirming_reply_is_not_resent(rig, gateway, connect):
    gateway.questions = [["o354"]]
    gateway.slow_after_accept = [1.0]
    r = rig("Active,AAPL,350,Daily,,a1\n", broker=connect(timeout_seconds=0.3))
    e = only(r.run(TUESDAY), "AAPL")
    assert gateway.count("POST", r"iserver/reply/.*") == 1
    assert len(gateway.orders) == 1 and e.status is Outcome.FILLED


# -- before a run: login, account, paper ------------------------------------------------------------


def test_not_logged_in_defers_without_ordering_says_how_to_log_in_and_a_later_run_buys(rig, gateway):
    gateway.authenticated = False
    r = rig("Active,AAPL,350,Daily,,a1\n")
    report = r.run(TUESDAY)
    assert report.executions == [] and len(report.deferred) == 1
    assert "log in" in report.deferred[0]["message"]
    assert order_posts(gateway) == 0
    assert "log in" in r.notifications()
    gateway.authenticated = True  # the person logged in
    later = r.run(ny(2026, 12, 1, 10, 15))
    assert only(later, "AAPL").status is Outcome.FILLED
    assert len(gateway.orders) == 1


def test_a_competing_session_is_not_ready(connect, gateway):
    gateway.competing = True
    ready = connect().readiness(TUESDAY)
    assert not ready.ready and "competes" in ready.message


def test_an_account_the_login_does_not_have_is_not_ready(connect):
    ready = connect(account_id="DU7654321").readiness(TUESDAY)
    assert not ready.ready and "DU7654321" in ready.message and ACCOUNT in ready.message


def test_a_live_account_is_refused_unless_allowed(clock):
    gw = IbkrGateway(clock=clock, account="U7654321")
    running = gw.serve()
    try:
        config = IbkrConfig(url=running.url, account_id="U7654321")
        refused = IbkrBroker(build_client(config), config, clock)
        ready = refused.readiness(TUESDAY)
        assert not ready.ready and "LIVE" in ready.message and "DCA_IBKR_ALLOW_LIVE" in ready.message
        assert refused.name == "IBKR LIVE account U7654321" and not refused.live_possible
        config = IbkrConfig(url=running.url, account_id="U7654321", allow_live=True)
        allowed = IbkrBroker(build_client(config), config, clock)
        assert allowed.readiness(TUESDAY).ready and allowed.live_possible
    finally:
        running.stop()


def test_without_a_configured_account_the_only_one_is_used(connect):
    broker = connect(account_id=None)
    assert broker.readiness(TUESDAY).ready
    assert broker.name == f"IBKR paper account {ACCOUNT}"


# -- contracts and prices -------------------------------------------------------------------------


def test_an_unknown_symbol_is_an_error_on_its_row_and_orders_nothing(rig, gateway):
    r = rig("Active,NOSUCH,350,Daily,,n1\nActive,AAPL,350,Daily,,a1\n")
    report = r.run(TUESDAY)
    [error] = report.errors
    assert error.row_id == "n1" and "knows no US stock with the symbol NOSUCH" in error.message
    assert not report.ok and report.deferred == []
    assert [o.symbol for o in gateway.orders] == ["AAPL"]
    assert "knows no US stock" in r.plan_lines()[1]  # its Log cell
    assert "knows no US stock" in r.notifications()


def test_an_ambiguous_symbol_is_not_guessed(connect, gateway):
    gateway.stocks["AAPL"].append({"name": "OTHER AAPL", "assetClass": "STK",
                                   "contracts": [{"conid": 999, "exchange": "NYSE", "isUS": True}]})
    quote = connect().quotes(["AAPL"], TUESDAY)["AAPL"]
    assert quote.price is None and "ambiguous" in quote.problem


def test_a_snapshot_that_never_has_fields_is_no_price(connect, gateway):
    gateway.snapshot_missing = {"AAPL"}
    quote = connect().quotes(["AAPL", "SPY"], TUESDAY)
    assert quote["AAPL"].price is None and "no last price" in quote["AAPL"].problem
    assert quote["SPY"].price == Decimal("100.00")
    assert gateway.count("GET", "iserver/marketdata/snapshot") == 2  # the preflight retried once, not more


def test_a_halted_stock_and_a_price_far_from_the_close_are_not_bought(rig, gateway):
    gateway.prices["AAPL"].update(prefix="H", last=Decimal("100"))
    gateway.prices["SPY"].update(last=Decimal("150"), prior=Decimal("100"))
    report = rig("Active,AAPL,350,Daily,,a1\nActive,SPY,350,Daily,,s1\n").run(TUESDAY)
    messages = {d["symbol"]: d["message"] for d in report.deferred}
    assert "halted" in messages["AAPL"]
    assert "50.0% from the previous close" in messages["SPY"]
    assert gateway.orders == []


def test_delayed_data_is_recorded_as_delayed(rig, gateway):
    gateway.prices["AAPL"]["availability"] = "DpB"
    e = only(rig("Active,AAPL,350,Daily,,a1\n").run(TUESDAY), "AAPL")
    assert e.price_source == "delayed"


# -- sizing --------------------------------------------------------------------------------------


def test_whole_shares_by_default_even_where_ibkr_takes_cash_amounts(rig, gateway):
    gateway.acct_props = {"supportsCashQty": True, "supportsFractions": True}
    gateway.fractional_symbols = {"AAPL"}
    e = only(rig("Active,AAPL,350,Daily,,a1\n").run(TUESDAY), "AAPL")
    assert gateway.orders[0].body["quantity"] == 3 and "cashQty" not in gateway.orders[0].body
    assert e.carry_out == Decimal("50.00")  # the remainder is carried to the next buy


def test_a_cash_amount_order_only_when_configured_and_the_account_and_contract_allow(rig, gateway, connect):
    gateway.acct_props = {"supportsCashQty": True, "supportsFractions": True}
    gateway.fractional_symbols = {"AAPL"}
    r = rig("Active,AAPL,350,Daily,,a1\nActive,SPY,350,Daily,,s1\n", broker=connect(fractional=True))
    report = r.run(TUESDAY)
    bodies = {o.symbol: o.body for o in gateway.orders}
    assert bodies["AAPL"]["cashQty"] == 350.0 and "quantity" not in bodies["AAPL"]
    assert bodies["SPY"]["quantity"] == 3  # its contract rules do not allow it
    aapl = only(report, "AAPL")
    assert aapl.status is Outcome.FILLED and aapl.quantity == Decimal("3.5")


def test_no_cash_amount_orders_when_the_account_does_not_support_them(rig, gateway, connect):
    gateway.fractional_symbols = {"AAPL"}  # the contract would, the account does not
    rig("Active,AAPL,350,Daily,,a1\n", broker=connect(fractional=True)).run(TUESDAY)
    assert gateway.orders[0].body["quantity"] == 3


# -- fills ----------------------------------------------------------------------------------------


def test_a_partial_fill_is_followed_to_its_final_state_at_the_next_run(rig, gateway):
    gateway.fill_mode = "partial"
    r = rig("Active,AAPL,400,Daily,,a1\n")
    first = only(r.run(TUESDAY), "AAPL")
    assert first.status is Outcome.SUBMITTED and first.filled_quantity == Decimal("2")
    assert "partly filled" in first.message
    gateway.fill("dca-a1-20261201", price=Decimal("100"))
    later = only(r.run(ny(2026, 12, 1, 11, 0)), "AAPL")
    assert later.status is Outcome.FILLED and later.quantity == Decimal("4")
    assert len(gateway.orders) == 1


def test_an_order_that_fills_after_the_run_is_recorded_the_next_day_from_the_trades(rig, gateway):
    gateway.fill_mode = "working"
    r = rig("Active,AAPL,350,Daily,,a1\n")
    assert only(r.run(TUESDAY), "AAPL").status is Outcome.SUBMITTED
    gateway.fill("dca-a1-20261201", price=Decimal("99"))
    gateway.today = date(2026, 12, 2)  # the order list now covers Wednesday only
    report = r.run(ny(2026, 12, 2, 9, 0, 30))
    [tuesday] = [e for e in report.executions if e.scheduled_date == date(2026, 12, 1)]
    assert tuesday.status is Outcome.FILLED and tuesday.price == Decimal("99")
    assert tuesday.commission == Decimal("1.00")
    assert tuesday.carry_out == Decimal("53.00")  # settled from the fill: $350 - 3 x $99
    assert len(gateway.orders) == 2  # Tuesday's, and Wednesday's own


def test_a_working_order_from_yesterday_with_no_trades_expired(rig, gateway):
    gateway.fill_mode = "working"
    r = rig("Active,AAPL,350,Daily,,a1\n")
    r.run(TUESDAY)
    gateway.today = date(2026, 12, 2)
    gateway.fill_mode = "fill"
    report = r.run(ny(2026, 12, 2, 9, 0, 30))
    [tuesday] = [e for e in report.executions if e.scheduled_date == date(2026, 12, 1)]
    assert tuesday.status is Outcome.FAILED and "expires" in tuesday.message


# -- funding ---------------------------------------------------------------------------------------


def test_when_cash_is_short_rows_are_bought_in_plan_order_while_it_lasts_and_the_rest_skipped(rig, gateway):
    gateway.cash = Decimal("500.00")
    r = rig("Active,AAPL,350,Daily,,a1\nActive,SPY,350,Daily,,s1\nActive,VTI,150,Daily,,v1\n")
    report = r.run(TUESDAY)
    assert only(report, "AAPL").status is Outcome.FILLED  # 3 shares: $300
    spy, vti = only(report, "SPY"), only(report, "VTI")
    assert spy.status is Outcome.SKIPPED and "insufficient cash: $200.00 available" in spy.message
    assert vti.status is Outcome.SKIPPED and "insufficient cash" in vti.message  # the rest, though it fits
    assert [o.symbol for o in gateway.orders] == ["AAPL"]
    assert "insufficient cash" in r.notifications()


def test_resolved_contracts_are_cached_in_the_ledger_file_for_the_next_process(connect, gateway, tmp_path):
    from dca.brokers.ibkr import ContractCache

    cache = ContractCache(tmp_path / "ledger.sqlite3")
    first = connect()
    first.contracts = cache
    first.readiness(TUESDAY)
    assert first.resolve(["AAPL"]) == {"AAPL": 265598}
    asked = gateway.count("GET", "trsrv/stocks")
    again = connect()  # a new process
    again.contracts = cache
    assert again.resolve(["AAPL"]) == {"AAPL": 265598}
    assert gateway.count("GET", "trsrv/stocks") == asked  # from the cache, not asked again


# -- commissions of fills reported at submission ---------------------------------------------------


def test_a_fill_reported_at_submission_gets_its_commission_from_the_trades(rig, gateway, clock):
    gateway.commission = Decimal("1.25")
    gateway.fail(r"iserver/account/trades/?", 503, times=2)  # not known yet in the first run
    r = rig("Active,AAPL,350,Daily,,a1\n")
    first = only(r.run(TUESDAY), "AAPL")
    assert first.status is Outcome.FILLED and first.commission is None
    assert r.ledger.get("a1", TUESDAY.date()).commission is None
    said = (r.dir / "notifications.log").read_text()
    clock.now += 60
    r.run(TUESDAY.replace(hour=10))  # a later run (the worker's next) asks the trades again
    e = r.ledger.get("a1", TUESDAY.date())
    assert (e.status, e.commission) == (Outcome.FILLED, Decimal("1.25"))
    assert len(gateway.orders) == 1
    assert (r.dir / "notifications.log").read_text() == said  # quietly: the outcome is not said twice


def test_a_run_records_the_commission_of_its_immediate_fills(rig, gateway):
    r = rig("Active,AAPL,350,Daily,,a1\nActive,SPY,250,Daily,,s1\n")
    report = r.run(TUESDAY)
    assert {e.symbol: e.commission for e in report.executions} == {"AAPL": Decimal("1.00"), "SPY": Decimal("1.00")}
    assert r.ledger.get("s1", TUESDAY.date()).commission == Decimal("1.00")
    assert gateway.count("GET", r"iserver/account/trades/?") == 1  # one batch for the run
