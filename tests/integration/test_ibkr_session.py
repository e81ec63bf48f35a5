"""The IBKR adapter's surroundings: pacing, the order list's honesty, keep-alive, the
account view, configuration (paper/live, OAuth) and the `dca` command against the emulator."""

from __future__ import annotations

import json
import threading
from datetime import timedelta
from decimal import Decimal

import pytest

from dca.brokers.ibkr import IbkrBroker, IbkrConfig, Pacer, RateLimited, build_client
from dca.cli import main
from dca.errors import ConfigError
from dca.ports import Found, LookupQuery, OrderRequest
from dca.settings import load_settings
from tests.conftest import HEADER, ny
from tests.fakes import FakeClock
from tests.fakes.ibkr_gateway import IbkrGateway

from tests.fakes.ibkr_fixtures import ACCOUNT, TUESDAY, clock, gateway, no_ibind_environment  # noqa: F401 (fixtures)


@pytest.fixture
def broker(gateway, clock):
    config = IbkrConfig(url=gateway.url, account_id=ACCOUNT, timeout_seconds=2.0)
    return IbkrBroker(build_client(config), config, clock)


# -- pacing ---------------------------------------------------------------------------------------


def test_the_pacer_keeps_one_budget_and_the_slow_endpoints_to_one_per_five_seconds():
    clock = FakeClock()
    pacer = Pacer(clock)
    for _ in range(3):
        pacer.wait("iserver/marketdata/snapshot")
    assert clock.slept == pytest.approx([0.1, 0.1])  # 10 per second
    pacer.wait("iserver/account/orders")
    first = clock.now
    pacer.wait("iserver/account/trades")  # another slow endpoint: its own 5 s, not the orders'
    assert clock.now - first == pytest.approx(0.1)
    pacer.wait("iserver/account/orders")
    assert clock.now - first == pytest.approx(5.0)


def test_after_a_429_nothing_is_sent_until_the_back_off_ends():
    clock = FakeClock()
    pacer = Pacer(clock, backoff_seconds=60)
    pacer.wait("tickle")
    pacer.penalise()
    clock.now += 59
    with pytest.raises(RateLimited, match="429"):
        pacer.wait("tickle")
    clock.now += 1
    pacer.wait("tickle")


def test_a_429_on_the_order_list_leaves_only_the_order_list_alone():
    clock = FakeClock()
    pacer = Pacer(clock, backoff_seconds=60)
    pacer.wait("iserver/account/orders")
    pacer.penalise("iserver/account/orders")
    with pytest.raises(RateLimited, match="iserver/account/orders"):
        pacer.wait("iserver/account/orders")
    pacer.wait("iserver/marketdata/snapshot")  # the rest goes on


def test_many_lookups_never_trip_the_gateways_pacing(broker, gateway):
    gateway.global_rate = 10  # the gateway also refuses more than 10 requests a second
    broker.readiness(TUESDAY)
    for _ in range(5):
        lookups = broker.find_orders([LookupQuery("dca-x-20261201", TUESDAY)], TUESDAY + timedelta(minutes=1))
        assert lookups["dca-x-20261201"].found is Found.ABSENT
    statuses = [s for s in gateway.requests if s[1] == "iserver/account/orders"]
    assert len(statuses) == 10  # forced, then read, each time; none refused


def test_the_adapter_is_safe_to_share_between_threads(broker, gateway):
    gateway.global_rate = 10
    broker.readiness(TUESDAY)
    errors = []

    def work():
        try:
            for _ in range(5):
                broker.positions()
                broker.quotes(["AAPL"], TUESDAY)
        except Exception as e:  # pragma: no cover - the assertion below reports it
            errors.append(e)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def test_every_adapter_of_a_process_for_one_gateway_shares_one_budget(gateway):
    config = IbkrConfig(url=gateway.url, account_id=ACCOUNT)
    worker, panel = (IbkrBroker(build_client(config), config) for _ in range(2))
    assert worker.pacer is panel.pacer
    other = IbkrConfig(url="http://127.0.0.1:9/v1/api/", account_id=ACCOUNT)
    assert IbkrBroker(build_client(other), other).pacer is not worker.pacer


def test_a_429_on_a_read_backs_off_and_says_so(broker, gateway, caplog):
    broker.readiness(TUESDAY)
    gateway.fail("portfolio/.*/ledger", 429)
    with pytest.raises(RateLimited, match="429"):
        broker.cash_balance()
    with pytest.raises(RateLimited):
        broker.cash_balance()  # not even sent: backing off
    assert gateway.count("GET", "portfolio/.*/ledger") == 1
    assert "backing off" in caplog.text


# -- what the order list can prove ------------------------------------------------------------------


def test_an_unsettled_order_list_is_unknown_never_absent(broker, gateway):
    broker.readiness(TUESDAY)
    gateway.fail("iserver/account/orders", 200, times=-1, body={"orders": [], "snapshot": False})
    [lookup] = broker.find_orders([LookupQuery("dca-a-20261201", TUESDAY)], TUESDAY + timedelta(minutes=5)).values()
    assert lookup.found is Found.UNKNOWN and "not settled" in lookup.reason


def test_an_attempt_more_recent_than_the_settle_time_is_unknown(broker, gateway, clock):
    broker.readiness(TUESDAY)
    broker.settle_seconds = 30
    [lookup] = broker.find_orders([LookupQuery("dca-a-20261201", TUESDAY)], TUESDAY).values()
    assert lookup.found is Found.UNKNOWN and "too recent" in lookup.reason


def test_a_lagging_list_settles_to_found(broker, gateway, clock):
    gateway.order_list_lag = 3.0
    broker.readiness(TUESDAY)
    gateway.fill_mode = "working"
    broker.submit(OrderRequest("dca-a-20261201", "AAPL", Decimal(2)), TUESDAY)
    [lookup] = broker.find_orders([LookupQuery("dca-a-20261201", TUESDAY)], TUESDAY).values()
    assert lookup.found is Found.FOUND and lookup.order.broker_status == "PreSubmitted"


def test_an_attempt_older_than_the_trades_reach_is_unknown(broker):
    broker.readiness(TUESDAY)
    old = LookupQuery("dca-a-20261120", ny(2026, 11, 20, 9, 0))
    [lookup] = broker.find_orders([old], TUESDAY).values()
    assert lookup.found is Found.UNKNOWN and "7 days" in lookup.reason


def test_the_lookup_when_the_gateway_is_down_is_unknown(broker, gateway):
    broker.readiness(TUESDAY)
    gateway.fail("iserver/account/orders", 503, times=-1)
    [lookup] = broker.find_orders([LookupQuery("dca-a-20261201", TUESDAY)], TUESDAY + timedelta(minutes=5)).values()
    assert lookup.found is Found.UNKNOWN


# -- session and account view -----------------------------------------------------------------------


def test_tickle_goes_out_only_after_a_quiet_minute(broker, gateway, clock):
    broker.readiness(TUESDAY)
    assert broker.tickle_if_due() is None
    clock.now += 61
    assert broker.tickle_if_due() is True
    assert gateway.count("POST", "tickle") == 1
    gateway.authenticated = False
    clock.now += 61
    assert broker.tickle_if_due() is False  # the session is gone: the person must log in


def test_the_worker_s_keep_alive_hook_tickles_the_gateway_when_due(broker, gateway, clock):
    broker.readiness(TUESDAY)
    assert broker.keep_alive() is None  # a request just went out: nothing to do
    clock.now += 61
    assert broker.keep_alive() is True and gateway.count("POST", "tickle") == 1


def test_every_face_labels_the_paper_account_and_says_where_to_log_in(broker, gateway):
    from dca.delivery import account_label
    from dca.queries import broker_mode

    broker.readiness(TUESDAY)
    assert broker.account_kind == "PAPER"
    assert account_label(broker) == broker_mode(broker) == "PAPER"
    assert broker.login_url.startswith("http://127.0.0.1:") and broker.login_url.endswith("/")
    assert "/v1/api" not in broker.login_url


def test_the_keep_alive_thread_stops_when_asked(broker):
    stop = threading.Event()
    thread = broker.keep_alive_in_background(stop, interval=0.01)
    stop.set()
    thread.join(1)
    assert not thread.is_alive()


def test_the_account_view_is_our_own_dataclasses(broker, gateway):
    broker.readiness(TUESDAY)
    broker.submit(OrderRequest("dca-a-20261201", "AAPL", Decimal(3)), TUESDAY)
    [position] = broker.positions()
    assert (position.symbol, position.conid, position.quantity) == ("AAPL", 265598, Decimal("3.0"))
    assert broker.cash_balance() == Decimal("99699.0")
    assert broker.net_liquidation() == Decimal("99999.0")
    assert broker.available_cash() == Decimal("99699.0")
    [order] = broker.orders()  # even on the gateway's first order-list call of the day
    assert (order.order_ref, order.state, order.filled_quantity) == ("dca-a-20261201", "filled", Decimal("3.0"))
    [trade] = broker.recent_trades()
    assert (trade.order_ref, trade.quantity, trade.price, trade.commission) == (
        "dca-a-20261201", Decimal("3.0"), Decimal("100.00"), Decimal("1.00"))


# -- configuration ---------------------------------------------------------------------------------


def test_ibkr_is_chosen_by_configuration_and_ibinds_variables_are_honoured(tmp_path):
    s = load_settings(environ={"DCA_BROKER": "ibkr", "IBIND_REST_URL": "http://127.0.0.1:5055/v1/api/",
                               "IBIND_ACCOUNT_ID": "DU1", "DCA_IBKR_ANSWERS": "o354, O163"}, dotenv=None)
    assert (s.broker, s.ibkr_url, s.ibkr_account, s.ibkr_answers) == (
        "ibkr", "http://127.0.0.1:5055/v1/api/", "DU1", ("o354", "o163"))
    assert not s.ibkr_allow_live
    with pytest.raises(ConfigError, match="IBIND_REST_URL"):
        load_settings(environ={"IBIND_REST_URL": "localhost:5000"}, dotenv=None)
    with pytest.raises(ConfigError, match="DCA_IBKR_ANSWERS"):
        load_settings(environ={"DCA_IBKR_ANSWERS": "yes please"}, dotenv=None)
    toml = tmp_path / "dca.toml"
    toml.write_text('[broker]\nkind = "ibkr"\n[ibkr]\naccount = "DU2"\nallow_live = false\nanswers = []\n')
    s = load_settings(toml, environ={}, dotenv=None)
    assert (s.broker, s.ibkr_account, s.ibkr_answers) == ("ibkr", "DU2", ())


def test_oauth_without_its_settings_names_what_is_missing_and_prints_no_secret():
    config = IbkrConfig(use_oauth=True)
    environ = {"IBIND_OAUTH1A_ACCESS_TOKEN": "tok-SECRET-123", "IBIND_OAUTH1A_CONSUMER_KEY": "KEYSECRET"}
    with pytest.raises(ConfigError) as raised:
        build_client(config, environ)
    message = str(raised.value)
    assert "IBIND_OAUTH1A_ACCESS_TOKEN_SECRET" in message and "IBIND_OAUTH1A_DH_PRIME" in message
    assert "IBIND_OAUTH1A_ACCESS_TOKEN," not in message  # given, so not named as missing
    assert "SECRET-123" not in message and "KEYSECRET" not in message


def test_oauth_credentials_may_come_from_dotenv_and_their_values_are_never_shown(tmp_path, monkeypatch, capsys):
    (tmp_path / ".env").write_text("IBIND_OAUTH1A_ACCESS_TOKEN=tok-SECRET-123\nIBIND_OAUTH1A_CONSUMER_KEY=KEYSECRET\n")
    monkeypatch.chdir(tmp_path)
    code = main(["plan", "--broker", "ibkr"])
    assert code == 0  # OAuth off: the credentials are not even read
    monkeypatch.setenv("IBIND_USE_OAUTH", "true")
    code = main(["plan", "--broker", "ibkr"])
    err = capsys.readouterr().err
    assert code == 2
    assert "IBIND_OAUTH1A_ACCESS_TOKEN_SECRET" in err and "IBIND_OAUTH1A_ACCESS_TOKEN," not in err
    assert "SECRET-123" not in err and "KEYSECRET" not in err


# -- the `dca` command against the emulator ---------------------------------------------------------


@pytest.fixture
def real_gateway():
    gw = IbkrGateway(account=ACCOUNT)  # the real clock: the command paces itself in real time
    gw.today = TUESDAY.date()
    gw.preflight = False
    running = gw.serve()
    gw.url = running.url
    yield gw
    running.stop()


def test_dca_run_now_with_a_paper_account_buys_at_the_emulator(capsys, monkeypatch, tmp_path, real_gateway):
    plan = tmp_path / "plan.csv"
    plan.write_text(HEADER + "Active,AAPL,350,Daily,,a1\n")
    monkeypatch.setenv("IBIND_REST_URL", real_gateway.url)  # no account configured: the login's only one
    code = main(["run", "--broker", "ibkr", "--plan", str(plan), "--now", "2026-12-01T09:00:30"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert f"Broker: IBKR paper account {ACCOUNT}" in out and "SIMULATED" not in out
    assert [o.order_ref for o in real_gateway.orders] == ["dca-a1-20261201"]
    code = main(["history", "--plan", str(plan), "--broker", "ibkr", "--json"])
    [e] = json.loads(capsys.readouterr().out)
    assert (e["status"], e["simulated"]) == ("filled", False)


def test_dca_run_now_is_refused_when_the_account_may_be_live(capsys, monkeypatch, tmp_path):
    plan = tmp_path / "plan.csv"
    plan.write_text(HEADER + "Active,AAPL,350,Daily,,a1\n")
    monkeypatch.setenv("IBIND_REST_URL", "http://127.0.0.1:9/v1/api/")  # never reached
    monkeypatch.setenv("IBIND_ACCOUNT_ID", "U7654321")
    monkeypatch.setenv("DCA_IBKR_ALLOW_LIVE", "true")
    code = main(["run", "--broker", "ibkr", "--plan", str(plan), "--now", "2026-12-01T09:00:30"])
    err = capsys.readouterr().err
    assert code == 2
    assert "--now is refused with IBKR LIVE account U7654321" in err
