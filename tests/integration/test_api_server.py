"""The HTTP API over real HTTP: uvicorn on a free 127.0.0.1 port (in a thread, or started
by `dca api` as a person would), the execute endpoint racing another process's run, and
TradingView alerts delivered at once several times."""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
import uvicorn

from dca.api import RateLimit, create_app, server_config
from dca.settings import load_settings
from tests.conftest import ny
from tests.integration.test_api import AUTH, SECRET, TOKEN, services_for

REPO = Path(__file__).resolve().parents[2]
PLAN = "Active,QQQ,700,Daily,,q1\nActive,VOO,800,Weekly,,v1\nActive,IWM,900,Monthly,,i1\n"
DUE_REFS = {"dca-q1-20270301", "dca-v1-20270301", "dca-i1-20270301"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Served:
    def __init__(self, app):
        self.port = free_port()
        self.server = uvicorn.Server(server_config(app, "127.0.0.1", self.port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self):
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.01)  # waiting for a real server to bind, not for a schedule
        return self

    def __exit__(self, *exc):
        self.server.should_exit = True
        self.thread.join(timeout=20)


def test_over_real_http_auth_bad_bodies_and_an_order(tmp_path):
    services = services_for(tmp_path, DCA_TRADINGVIEW_SECRET=SECRET)
    app = create_app(services, TOKEN, now=lambda: ny(2027, 3, 1, 14, 0))
    with Served(app) as served, httpx.Client(base_url=served.url, timeout=30) as http:
        assert http.get("/health").status_code == 200
        assert http.get("/recurring/status").status_code == 401
        assert http.get("/recurring/status", headers={"Authorization": "Bearer nope"}).status_code == 401
        assert http.get("/recurring/status", headers=AUTH).json()["mode"] == "SIMULATED"
        bad = http.post("/orders", headers={**AUTH, "Idempotency-Key": "k"}, content=b"{not json")
        assert bad.status_code == 422
        ok = http.post("/orders", headers={**AUTH, "Idempotency-Key": "k"}, json={"symbol": "AAPL", "amount_usd": 50})
        assert ok.status_code == 200 and ok.json()["execution"]["status"] == "filled"
        assert "server" not in ok.headers  # uvicorn's banner is not sent
    assert len(services.broker.orders()) == 1


def test_an_alert_delivered_several_times_at_once_buys_once_and_a_wrong_secret_buys_nothing(tmp_path):
    services = services_for(tmp_path, DCA_TRADINGVIEW_SECRET=SECRET)
    app = create_app(services, TOKEN, now=lambda: ny(2027, 3, 1, 14, 0), order_limit=RateLimit(100, 60))
    alert = {"secret": SECRET, "symbol": "AAPL", "amount_usd": 50, "alert_id": "2027-03-01T19:00:00Z"}
    with Served(app) as served, httpx.Client(base_url=served.url, timeout=60) as http:
        with ThreadPoolExecutor(6) as pool:
            answers = list(pool.map(lambda _: http.post("/webhooks/tradingview", content=json.dumps(alert)), range(6)))
        wrong = http.post("/webhooks/tradingview", json={**alert, "secret": "guess", "alert_id": "other"})
    assert [a.status_code for a in answers] == [200] * 6, [a.text for a in answers]
    assert sorted(a.json()["replayed"] for a in answers) == [False] + [True] * 5
    assert wrong.status_code == 401
    assert Counter(o.symbol for o in services.broker.orders()) == {"AAPL": 1}
    assert len(services.ledger.history()) == 1


def _paused_run(base: Path) -> subprocess.Popen:
    """Another process's engine run (the worker, the panel), paused while it holds the
    run lock with its first intent recorded: a deterministic overlap."""
    spec = {"dir": str(base), "now": "2027-03-01T09:00:30-05:00", "pause_step": "intent_recorded"}
    run = subprocess.Popen([sys.executable, "-m", "tests.crash_runner", json.dumps(spec)], cwd=REPO,
                           stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert run.stdout.readline().strip() == "PAUSED", run.stderr.read()
    return run


@pytest.mark.slow
def test_execute_racing_another_processs_run_orders_each_execution_once(tmp_path):
    # The same files the other process uses (tests.crash_runner's layout).
    services = services_for(tmp_path, PLAN, DCA_SIM_BOOK=str(tmp_path / "book.sqlite3"), DCA_SIM_FRACTIONAL="false")
    app = create_app(services, TOKEN, now=lambda: ny(2027, 3, 1, 9, 0, 31), order_limit=RateLimit(100, 60))
    with Served(app) as served, httpx.Client(base_url=served.url, timeout=120) as http:
        other = _paused_run(tmp_path)
        with ThreadPoolExecutor(2) as pool:
            posts = [pool.submit(http.post, "/recurring/execute", headers=AUTH) for _ in range(2)]
            time.sleep(0.3)  # let both requests reach the lock; correctness does not depend on it
            assert not any(p.done() for p in posts), "the API's runs must wait for the other run's lock"
            out, err = other.communicate("go\n", timeout=60)
            answers = [p.result() for p in posts]
    assert other.returncode == 0, err
    assert [a.status_code for a in answers] == [200, 200], [a.text for a in answers]
    assert len(json.loads(out)["executions"]) == 3
    assert [a.json()["executions"] for a in answers] == [[], []]  # nothing left to do once it got the lock
    book = Counter(o.order_ref for o in services.broker.orders())
    assert set(book) == DUE_REFS and all(n == 1 for n in book.values()), book


# -- `dca api`, as a person starts it ------------------------------------------------------------


def _start_dca_api(home: Path, port: int, **env) -> subprocess.Popen:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("DCA_")}
    environ.update({"DCA_HOME": str(home), **env})
    return subprocess.Popen([sys.executable, "-m", "dca.cli", "api", "--port", str(port)], cwd=home.parent,
                            env=environ, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for(url: str, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + 60
    while True:
        assert process.poll() is None, process.stderr.read()
        try:
            httpx.get(url + "/health", timeout=2)
            return
        except httpx.TransportError:
            assert time.monotonic() < deadline, "dca api did not start"
            time.sleep(0.05)  # a real process starting, not a schedule


@pytest.mark.slow
def test_dca_api_generates_a_token_file_readable_only_by_its_owner_and_prints_its_path_never_the_token(tmp_path):
    home, port = tmp_path / "home", free_port()
    server = _start_dca_api(home, port)
    try:
        _wait_for(f"http://127.0.0.1:{port}", server)
        token_file = home / "api-token"
        token = token_file.read_text().strip()
        assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
        assert len(token) >= 32
        status = httpx.get(f"http://127.0.0.1:{port}/recurring/status", headers={"Authorization": f"Bearer {token}"})
        assert status.status_code == 200 and status.json()["mode"] == "SIMULATED"
        assert httpx.get(f"http://127.0.0.1:{port}/recurring/status").status_code == 401
        assert httpx.get(f"http://127.0.0.1:{port}/docs").status_code == 200  # open on localhost
    finally:
        server.terminate()
        out, err = server.communicate(timeout=30)
    assert str(token_file) in out and "SIMULATED" in out
    assert token not in out and token not in err
    # Started again, it keeps the same token.
    server = _start_dca_api(home, port)
    try:
        _wait_for(f"http://127.0.0.1:{port}", server)
        assert token_file.read_text().strip() == token
    finally:
        server.terminate()
        server.communicate(timeout=30)


@pytest.mark.slow
def test_dca_api_with_a_configured_token_writes_no_file_and_prints_no_token(tmp_path):
    home, port = tmp_path / "home", free_port()
    configured = "configured-token-" + "x" * 20
    server = _start_dca_api(home, port, DCA_API_TOKEN=configured)
    try:
        _wait_for(f"http://127.0.0.1:{port}", server)
        ok = httpx.get(f"http://127.0.0.1:{port}/account", headers={"Authorization": f"Bearer {configured}"})
        assert ok.status_code == 200
    finally:
        server.terminate()
        out, err = server.communicate(timeout=30)
    assert not (home / "api-token").exists()
    assert configured not in out and configured not in err


def test_the_api_settings_are_secrets(tmp_path):
    settings = load_settings(environ={"DCA_HOME": str(tmp_path), "DCA_API_TOKEN": "a" * 20,
                                      "DCA_TRADINGVIEW_SECRET": "b" * 20}, dotenv=None)
    assert settings.api_token == "a" * 20 and settings.tradingview_secret == "b" * 20
    described = settings.describe()
    assert described["api_token"] == "****" and described["tradingview_secret"] == "****"
    assert "a" * 20 not in repr(settings) and "b" * 20 not in repr(settings)


def test_a_short_api_token_is_refused_without_showing_it(tmp_path):
    from dca.errors import ConfigError

    with pytest.raises(ConfigError, match="DCA_API_TOKEN: is shorter than 16 characters") as caught:
        load_settings(environ={"DCA_HOME": str(tmp_path), "DCA_API_TOKEN": "short-tok"}, dotenv=None)
    assert "short-tok" not in str(caught.value)


def test_an_api_token_in_dca_toml_is_refused(tmp_path):
    from dca.errors import ConfigError

    config = tmp_path / "dca.toml"
    config.write_text('[api]\ntoken = "' + "x" * 20 + '"\n')
    with pytest.raises(ConfigError, match="looks like a secret"):
        load_settings(config, environ={"DCA_HOME": str(tmp_path)}, dotenv=None)
