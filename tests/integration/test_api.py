"""The HTTP API over the embedded default (CSV plan, SIMULATED broker, SQLite ledger, file
notifier): auth, bad bodies, idempotent one-off buys, TradingView alerts, health, and the
execute endpoint racing another run. The framework's test client for most; real HTTP to
uvicorn for the rest (test_api_server.py)."""

from __future__ import annotations

import json
import sqlite3
from collections import Counter
from decimal import Decimal
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from dca.api import RateLimit, create_app
from dca.bootstrap import build
from dca.settings import load_settings
from tests.conftest import HEADER, ny

TOKEN = "t" * 32
SECRET = "s3cret-for-tradingview-alerts"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
AFTERNOON = ny(2027, 3, 1, 14, 0)  # a Monday
PLAN = "Active,QQQ,700,Daily,,q1\nActive,VOO,800,Weekly,,v1\nInactive,TSLA,10,Daily,,t1\n"


class Clock:
    def __init__(self, now):
        self.now = now
        self.ticks = 0.0

    def __call__(self):
        return self.now

    def monotonic(self):
        return self.ticks


def services_for(base: Path, plan: str = PLAN, **env):
    (base / "plan.csv").write_text(HEADER + plan)
    environ = {"DCA_HOME": str(base / "home"), "DCA_PLAN": str(base / "plan.csv"), "DCA_DB": str(base / "ledger.sqlite3"),
               "DCA_SIM_BOOK": str(base / "book.sqlite3"), "DCA_NOTIFY_FILE": str(base / "notifications.log"),
               "DCA_SIM_FRACTIONAL": "true", **env}
    return build(load_settings(environ=environ, dotenv=None))


@pytest.fixture
def api(tmp_path):
    """api(**env) -> (client, services, clock)."""

    def make(plan: str = PLAN, limit: int = 100, **env):
        env.setdefault("DCA_TRADINGVIEW_SECRET", SECRET)
        services = services_for(tmp_path, plan, **env)
        clock = Clock(AFTERNOON)
        app = create_app(services, TOKEN, now=clock, order_limit=RateLimit(limit, 60, clock.monotonic))
        return TestClient(app, raise_server_exceptions=False), services, clock

    return make


def orders_at_broker(services) -> Counter:
    return Counter(o.order_ref for o in services.broker.orders())


# -- auth ------------------------------------------------------------------------------------

GUARDED = [("get", "/recurring/status"), ("get", "/recurring/orders"), ("post", "/recurring/execute"),
           ("post", "/recurring/test-notification"), ("get", "/recurring/history"), ("post", "/orders"),
           ("get", "/account")]


@pytest.mark.parametrize("method,path", GUARDED)
@pytest.mark.parametrize("auth", [None, "Bearer wrong-token-wrong-token-wrong", "Basic dXNlcjpwYXNz", f"Bearer {TOKEN}x"])
def test_every_endpoint_but_health_refuses_a_missing_or_wrong_token_and_does_nothing(api, method, path, auth):
    client, services, _ = api()
    headers = {"Authorization": auth} if auth else {}
    response = getattr(client, method)(path, headers={**headers, "Idempotency-Key": "k"},
                                       **({"json": {"symbol": "AAPL", "amount_usd": 50}} if path == "/orders" else {}))
    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"] == "Bearer"
    assert TOKEN not in response.text
    assert services.broker.orders() == [] and services.ledger.history() == []
    assert not services.notifier.path.exists()


def test_health_needs_no_token_and_says_each_part(api):
    client, _, _ = api()
    response = client.get("/health")
    assert response.status_code == 200
    body = response.json()
    assert body["ok"] is True and body["mode"] == "SIMULATED"
    assert set(body["parts"]) == {"ledger", "plan", "broker", "notifier", "worker"}
    assert body["parts"]["worker"] == {"ok": True, "detail": "no worker has ever run"}


def test_health_is_503_with_the_reasons_when_a_part_does_not_answer(api, tmp_path):
    client, _, _ = api(DCA_SIM_FAULTS="*=logged_out")
    (tmp_path / "plan.csv").write_text('Status,Stock Symbol,Amount (USD),Frequency\nActive,"AAPL,10,Weekly\n')
    response = client.get("/health")
    assert response.status_code == 503
    parts = response.json()["parts"]
    assert parts["broker"] == {"ok": False, "detail": "SIMULATED: not ready"}
    assert parts["plan"]["ok"] is False and "cannot be read (PlanError)" in parts["plan"]["detail"]
    assert parts["ledger"]["ok"] is True


def _beat(services, state: str, last_tick: str):
    # The worker's heartbeat table as the worker writes it (one row, id 1).
    with sqlite3.connect(services.ledger.path) as db:
        db.execute("CREATE TABLE IF NOT EXISTS worker_heartbeat (id INTEGER PRIMARY KEY CHECK (id = 1), pid INTEGER,"
                   " host TEXT, state TEXT, started_at TEXT, last_tick TEXT, last_run TEXT, last_run_result TEXT,"
                   " next_run TEXT, last_error TEXT, last_error_at TEXT)")
        db.execute("INSERT OR REPLACE INTO worker_heartbeat(id, state, last_tick) VALUES (1, ?, ?)", (state, last_tick))


def test_health_follows_the_workers_heartbeat_once_one_has_run(api):
    client, services, clock = api()
    _beat(services, "idle", ny(2027, 3, 1, 13, 58).isoformat())
    assert client.get("/health").json()["parts"]["worker"] == {"ok": True, "detail": "alive"}
    clock.now = ny(2027, 3, 1, 14, 10)
    response = client.get("/health")
    assert response.status_code == 503
    assert "last heartbeat is 12 minutes old" in response.json()["parts"]["worker"]["detail"]
    _beat(services, "stopped", ny(2027, 3, 1, 14, 9).isoformat())
    assert "the worker stopped" in client.get("/health").json()["parts"]["worker"]["detail"]


# -- manual orders -----------------------------------------------------------------------------


def test_an_order_with_an_idempotency_key_buys_once_and_a_replay_gives_the_same_answer(api):
    client, services, clock = api()
    first = client.post("/orders", headers={**AUTH, "Idempotency-Key": "buy-1"}, json={"symbol": "aapl", "amount_usd": 50})
    assert first.status_code == 200, first.text
    e = first.json()["execution"]
    assert (e["symbol"], e["status"], e["frequency"], e["cost"], e["simulated"]) == ("AAPL", "filled", "Once", "50.00", True)
    assert first.json()["replayed"] is False
    clock.now = ny(2027, 3, 3, 11, 0)  # days later, the same request again
    again = client.post("/orders", headers={**AUTH, "Idempotency-Key": "buy-1"}, json={"symbol": "AAPL", "amount_usd": "50.00"})
    assert again.status_code == 200
    assert again.json()["execution"] == e
    assert again.json()["replayed"] is True
    assert list(orders_at_broker(services).values()) == [1]
    # Recorded in the ledger with its key, and notified.
    history = client.get("/recurring/history", headers=AUTH, params={"kind": "manual"}).json()
    assert [(i["symbol"], i["key"], i["source"]) for i in history["items"]] == [("AAPL", "buy-1", "manual")]
    assert "AAPL" in services.notifier.path.read_text()


def test_an_order_key_reused_for_another_order_is_409_and_buys_nothing(api):
    client, services, _ = api()
    client.post("/orders", headers={**AUTH, "Idempotency-Key": "k"}, json={"symbol": "AAPL", "amount_usd": 50})
    response = client.post("/orders", headers={**AUTH, "Idempotency-Key": "k"}, json={"symbol": "MSFT", "amount_usd": 50})
    assert response.status_code == 409
    assert "already used for AAPL $50.00" in response.json()["detail"]
    assert len(services.broker.orders()) == 1


def test_an_order_without_an_idempotency_key_is_refused_but_a_dry_run_needs_none(api):
    client, services, _ = api()
    response = client.post("/orders", headers=AUTH, json={"symbol": "AAPL", "amount_usd": 50})
    assert response.status_code == 400 and "Idempotency-Key header is required" in response.json()["detail"]
    dry = client.post("/orders", headers=AUTH, json={"symbol": "AAPL", "amount_usd": 50, "dry_run": True})
    assert dry.status_code == 200
    assert dry.json()["dry_run"] is True and dry.json()["execution"]["status"] == "planned"
    assert services.broker.orders() == [] and services.ledger.history() == []


@pytest.mark.parametrize("body, where", [
    ({"symbol": "AAPL"}, ["body", "amount_usd"]),
    ({"amount_usd": 5}, ["body", "symbol"]),
    ({"symbol": "AAPL", "amount_usd": "lots"}, ["body", "amount_usd"]),
    ({"symbol": "AAPL", "amount_usd": 5, "extra": 1}, ["body", "extra"]),
    ({"symbol": "AAPL", "amount_usd": 5, "dry_run": "maybe"}, ["body", "dry_run"]),
])
def test_a_malformed_order_body_is_422_saying_where(api, body, where):
    client, services, _ = api()
    response = client.post("/orders", headers={**AUTH, "Idempotency-Key": "k"}, json=body)
    assert response.status_code == 422
    assert where in [d["loc"] for d in response.json()["detail"]]
    assert services.broker.orders() == []


@pytest.mark.parametrize("body, message", [
    ({"symbol": "AAPL", "amount_usd": 0}, "more than $0"),
    ({"symbol": "AAPL", "amount_usd": "10.001"}, "two decimals"),
    ({"symbol": "NOT A TICKER", "amount_usd": 5}, "not a ticker"),
])
def test_an_order_with_a_bad_value_is_422_with_a_sentence(api, body, message):
    client, services, _ = api()
    response = client.post("/orders", headers={**AUTH, "Idempotency-Key": "k"}, json=body)
    assert response.status_code == 422 and message in response.json()["detail"]
    assert services.broker.orders() == []


def test_an_order_over_the_maximum_is_skipped_and_nothing_bought(api):
    client, services, _ = api(DCA_MAX_ORDER_USD="100")
    response = client.post("/orders", headers={**AUTH, "Idempotency-Key": "k"}, json={"symbol": "AAPL", "amount_usd": "100.01"})
    assert response.status_code == 200
    e = response.json()["execution"]
    assert e["status"] == "skipped" and "over the maximum per order ($100.00)" in e["message"]
    assert services.broker.orders() == []


def test_an_order_with_the_broker_logged_out_is_503_and_the_same_key_buys_later(api):
    client, services, _ = api(DCA_SIM_FAULTS="*=logged_out:1")
    response = client.post("/orders", headers={**AUTH, "Idempotency-Key": "k"}, json={"symbol": "AAPL", "amount_usd": 50})
    assert response.status_code == 503
    assert response.json()["execution"] is None and "logged out" in response.json()["deferred"]
    again = client.post("/orders", headers={**AUTH, "Idempotency-Key": "k"}, json={"symbol": "AAPL", "amount_usd": 50})
    assert again.status_code == 200 and again.json()["execution"]["status"] == "filled"
    assert len(services.broker.orders()) == 1


def test_order_placing_endpoints_are_rate_limited(api):
    client, services, clock = api(limit=2)
    for n in range(2):
        assert client.post("/orders", headers={**AUTH, "Idempotency-Key": f"k{n}"},
                           json={"symbol": "AAPL", "amount_usd": 5}).status_code == 200
    refused = client.post("/orders", headers={**AUTH, "Idempotency-Key": "k3"}, json={"symbol": "AAPL", "amount_usd": 5})
    assert refused.status_code == 429 and int(refused.headers["retry-after"]) >= 1
    assert client.post("/recurring/execute", headers=AUTH).status_code == 429
    alert = {"secret": SECRET, "symbol": "AAPL", "amount_usd": 5, "alert_id": "a"}
    assert client.post("/webhooks/tradingview", json=alert).status_code == 429
    assert len(services.broker.orders()) == 2
    # Reading is not limited, nor is a dry run; the window moves on.
    assert client.get("/recurring/status", headers=AUTH).status_code == 200
    assert client.post("/recurring/execute", headers=AUTH, params={"dry_run": True}).status_code == 200
    clock.ticks += 61
    assert client.post("/orders", headers={**AUTH, "Idempotency-Key": "k3"},
                       json={"symbol": "AAPL", "amount_usd": 5}).status_code == 200


# -- TradingView -------------------------------------------------------------------------------


def alert(**changes):
    return {"secret": SECRET, "symbol": "AAPL", "amount_usd": 50, "alert_id": "2027-03-01T19:00:00Z", **changes}


def test_a_tradingview_alert_buys_once_however_often_it_is_delivered(api):
    client, services, _ = api()
    answers = [client.post("/webhooks/tradingview", content=json.dumps(alert()), headers={"Content-Type": "text/plain"})
               for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 200]
    assert [a.json()["replayed"] for a in answers] == [False, True, True]
    assert {a.json()["execution"]["order_ref"] for a in answers} == {answers[0].json()["execution"]["order_ref"]}
    assert answers[0].json()["execution"]["status"] == "filled"
    assert list(orders_at_broker(services).values()) == [1]
    history = client.get("/recurring/history", headers=AUTH, params={"kind": "tradingview"}).json()
    assert [(i["key"], i["source"]) for i in history["items"]] == [("2027-03-01T19:00:00Z", "tradingview")]
    assert "AAPL" in services.notifier.path.read_text()


def test_an_exchange_prefix_in_the_alerts_ticker_is_dropped(api):
    client, services, _ = api()
    assert client.post("/webhooks/tradingview", json=alert(symbol="NASDAQ:AAPL")).json()["execution"]["symbol"] == "AAPL"


@pytest.mark.parametrize("secret", [None, "", "wrong", SECRET + "x", SECRET[:-1], 12345])
def test_a_wrong_or_missing_secret_is_401_and_nothing_else_happens(api, secret):
    client, services, _ = api()
    body = alert(secret=secret) if secret is not None else {k: v for k, v in alert().items() if k != "secret"}
    response = client.post("/webhooks/tradingview", json=body)
    assert response.status_code == 401
    assert SECRET not in response.text
    assert services.broker.orders() == [] and services.ledger.history() == []
    assert not services.notifier.path.exists()


def test_a_wrong_secret_is_401_even_with_a_malformed_rest(api):
    client, services, _ = api()
    assert client.post("/webhooks/tradingview", json={"secret": "nope", "amount_usd": "x"}).status_code == 401


@pytest.mark.parametrize("body, where", [
    (alert(amount_usd="fifty"), ["amount_usd"]),
    ({k: v for k, v in alert().items() if k != "alert_id"}, ["alert_id"]),
    (alert(symbol=None), ["symbol"]),
    (alert(alert_id=""), ["alert_id"]),
])
def test_a_malformed_alert_with_the_right_secret_is_422_saying_where_and_never_echoing_the_secret(api, body, where):
    client, services, _ = api()
    response = client.post("/webhooks/tradingview", json=body)
    assert response.status_code == 422
    assert where in [d["loc"] for d in response.json()["detail"]]
    assert SECRET not in response.text
    assert services.broker.orders() == []


@pytest.mark.parametrize("raw", [b"not json", b"[1, 2]", b"\xff\xfe"])
def test_a_body_that_is_not_a_json_object_is_422(api, raw):
    client, services, _ = api()
    response = client.post("/webhooks/tradingview", content=raw)
    assert response.status_code == 422 and "README's alert message template" in response.json()["detail"]


def test_an_alert_over_the_maximum_per_order_is_refused_and_nothing_bought(api):
    client, services, _ = api(DCA_MAX_ORDER_USD="100")
    response = client.post("/webhooks/tradingview", json=alert(amount_usd=500))
    assert response.status_code == 200
    assert response.json()["execution"]["status"] == "skipped"
    assert "over the maximum per order" in response.json()["execution"]["message"]
    assert services.broker.orders() == []
    assert "skipped" in services.notifier.path.read_text()  # accepted, recorded and notified


def test_tradingview_alerts_are_off_while_the_secret_is_unset(api):
    client, services, _ = api(DCA_TRADINGVIEW_SECRET="")
    response = client.post("/webhooks/tradingview", json=alert(secret=""))
    assert response.status_code == 404 and "DCA_TRADINGVIEW_SECRET" in response.json()["detail"]
    assert services.broker.orders() == []


# -- the recurring endpoints ---------------------------------------------------------------------


def test_execute_runs_the_engine_and_a_second_call_finds_nothing(api):
    client, services, clock = api()
    clock.now = ny(2027, 3, 1, 9, 0, 30)
    preview = client.post("/recurring/execute", headers=AUTH, params={"dry_run": True}).json()
    assert preview["dry_run"] is True and preview["summary"]["counts"] == {"planned": 2}
    assert services.broker.orders() == []
    run = client.post("/recurring/execute", headers=AUTH)
    assert run.status_code == 200
    assert {e["symbol"]: e["status"] for e in run.json()["executions"]} == {"QQQ": "filled", "VOO": "filled"}
    assert run.json()["ok"] is True
    assert client.post("/recurring/execute", headers=AUTH).json()["executions"] == []
    assert all(n == 1 for n in orders_at_broker(services).values()) and len(services.broker.orders()) == 2


def test_execute_refuses_a_moment_earlier_than_the_ledger_has_run(api):
    client, services, clock = api()
    client.post("/recurring/execute", headers=AUTH)
    clock.now = ny(2027, 2, 26, 9, 0)
    response = client.post("/recurring/execute", headers=AUTH)
    assert response.status_code == 409 and "Traceback" not in response.text


def test_status_says_last_run_next_executions_counts_backlog_and_mode(api):
    client, _, clock = api()
    clock.now = ny(2027, 3, 1, 9, 0, 30)
    client.post("/recurring/execute", headers=AUTH)
    status = client.get("/recurring/status", headers=AUTH).json()
    assert status["mode"] == "SIMULATED" and status["simulated"] is True
    assert status["last_run"]["summary"]["counts"] == {"filled": 2}
    assert status["counts"] == {"filled": 2}
    assert status["outbox"] == {"log": 0, "notify": 0}
    assert status["worker"] is None
    assert [(i["symbol"], i["scheduled_at"]) for i in status["next_executions"][:2]] == [
        ("QQQ", "2027-03-02T09:00:00-05:00"), ("QQQ", "2027-03-03T09:00:00-05:00")]
    assert {i["symbol"] for i in status["done_today"]} == {"QQQ", "VOO"}


def test_recurring_orders_lists_the_rows_with_values_errors_and_next_execution(api):
    client, _, _ = api(plan=PLAN + "Active,BAD TICKER,5,Daily,,b1\nActive,SPY,-5,Weekly,,s1\n")
    body = client.get("/recurring/orders", headers=AUTH).json()
    rows = {r["symbol"]: r for r in body["rows"]}
    assert rows["QQQ"]["amount_usd"] == "700.00" and rows["QQQ"]["frequency"] == "Daily"
    assert rows["QQQ"]["next_execution"] == {"scheduled_at": "2027-03-01T09:00:00-05:00", "state": "due", "late": True}
    assert rows["VOO"]["next_execution"] == {"scheduled_at": "2027-03-01T09:00:00-05:00", "state": "due", "late": True}
    assert rows["TSLA"]["next_execution"] is None
    assert sorted(e["row"] for e in body["errors"]) == [5, 6]


def test_history_is_paginated_and_filterable(api):
    client, _, clock = api()
    for day in (1, 2, 3):
        clock.now = ny(2027, 3, day, 9, 0, 30)
        client.post("/recurring/execute", headers=AUTH)
    page = client.get("/recurring/history", headers=AUTH, params={"limit": 2}).json()
    assert page["total"] == 4 and len(page["items"]) == 2
    assert [i["scheduled_at"][:10] for i in page["items"]] == ["2027-03-03", "2027-03-02"]
    rest = client.get("/recurring/history", headers=AUTH, params={"limit": 2, "offset": 2}).json()
    assert [(i["symbol"], i["scheduled_at"][:10]) for i in rest["items"]] == [("VOO", "2027-03-01"), ("QQQ", "2027-03-01")]
    voo = client.get("/recurring/history", headers=AUTH, params={"symbol": "voo"}).json()
    assert voo["total"] == 1
    since = client.get("/recurring/history", headers=AUTH, params={"start": "2027-03-02", "status": "filled"}).json()
    assert since["total"] == 2
    assert client.get("/recurring/history", headers=AUTH, params={"limit": 0}).status_code == 422
    assert client.get("/recurring/history", headers=AUTH, params={"status": "bogus"}).status_code == 422
    assert client.get("/recurring/history", headers=AUTH, params={"start": "March"}).status_code == 422


def test_test_notification_is_sent_through_the_notifier(api):
    client, services, _ = api()
    response = client.post("/recurring/test-notification", headers=AUTH)
    assert response.status_code == 200 and response.json()["sent"] is True
    assert "Test message from dca" in services.notifier.path.read_text()
    assert "the SIMULATED account" in services.notifier.path.read_text()


def test_a_failing_notifier_is_502_without_its_error_text(api):
    client, services, _ = api()

    class Broken:
        description = "broken"

        def send(self, text):
            raise RuntimeError("https://discord.com/api/webhooks/123/SECRET-TOKEN unreachable")

    services.notifier = Broken()
    client = TestClient(create_app(services, TOKEN, now=lambda: AFTERNOON), raise_server_exceptions=False)
    response = client.post("/recurring/test-notification", headers=AUTH)
    assert response.status_code == 502 and "SECRET-TOKEN" not in response.text


def test_account_shows_the_simulated_positions_and_says_cash_is_not_tracked(api):
    client, _, _ = api()
    client.post("/orders", headers={**AUTH, "Idempotency-Key": "a"}, json={"symbol": "AAPL", "amount_usd": 50})
    client.post("/orders", headers={**AUTH, "Idempotency-Key": "b"}, json={"symbol": "AAPL", "amount_usd": 25})
    account = client.get("/account", headers=AUTH).json()
    assert account["mode"] == "SIMULATED" and account["cash"] is None and account["net_liquidation"] is None
    assert "cash is not tracked" in account["note"]
    [position] = account["positions"]
    assert position["symbol"] == "AAPL" and Decimal(position["cost"]) == Decimal("75.00")
    assert Decimal(position["quantity"]) > 0


def test_account_of_a_broker_without_an_account_view_is_501(api):
    from tests.fakes import FakeBroker

    client, services, _ = api()
    services.broker = FakeBroker()
    client = TestClient(create_app(services, TOKEN, now=lambda: AFTERNOON), raise_server_exceptions=False)
    assert client.get("/account", headers=AUTH).status_code == 501


def test_an_unexpected_error_is_500_without_a_traceback(api):
    client, services, _ = api()

    def boom():
        raise RuntimeError(f"internal detail {TOKEN}")

    services.plan_source.load = boom
    response = client.get("/recurring/orders", headers=AUTH)
    assert response.status_code == 500
    assert response.json() == {"detail": "internal error; the server's log has the details"}


def test_the_docs_are_open_and_describe_the_endpoints(api):
    client, _, _ = api()
    spec = client.get("/openapi.json").json()
    assert {"/health", "/recurring/status", "/recurring/orders", "/recurring/execute", "/recurring/test-notification",
            "/recurring/history", "/orders", "/account", "/webhooks/tradingview"} <= set(spec["paths"])
    assert client.get("/docs").status_code == 200


def test_the_docs_are_off_when_not_served_on_localhost(api):
    _, services, _ = api()
    client = TestClient(create_app(services, TOKEN, docs=False))
    assert client.get("/docs").status_code == 404 and client.get("/openapi.json").status_code == 404
    assert client.get("/health").status_code == 200


def test_a_token_file_others_could_read_is_made_private_and_kept(tmp_path):
    import os
    import stat

    from dca.api import ensure_token

    token, path = ensure_token(None, tmp_path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    os.chmod(path, 0o644)
    assert ensure_token(None, tmp_path) == (token, path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert ensure_token("configured-" + "x" * 10, tmp_path) == ("configured-" + "x" * 10, None)


def test_an_oversized_alert_body_is_413_and_buys_nothing(api):
    client, services, _ = api()
    body = json.dumps(alert(padding="x" * 20000))
    response = client.post("/webhooks/tradingview", content=body)
    assert response.status_code == 413
    assert services.broker.orders() == []
