"""IBKR over OAuth 1.0a: the real ibind client shakes hands with the emulator playing IBKR
(tests/fakes/ibkr_oauth.py) over real HTTP and signs every request; nothing is mocked.
The consumer's RSA keys are made once per test session and live only in tmp files."""

from __future__ import annotations

import base64
import json
import logging
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import requests
import time_machine
from Crypto.Cipher import PKCS1_v1_5
from Crypto.PublicKey import RSA

from dca.brokers.ibkr import IbkrBroker, IbkrConfig, build_client
from dca.cli import main
from dca.domain import Outcome
from tests.conftest import HEADER
from tests.fakes.ibkr_gateway import IbkrGateway
from tests.fakes.ibkr_oauth import DH_PRIME

from tests.fakes.ibkr_fixtures import (  # noqa: F401 (fixtures)
    ACCOUNT, TUESDAY, clock, consumer, no_ibind_environment, oauth_environ, oauth_gateway)

REPO = Path(__file__).resolve().parents[2]
NOW = "2026-12-01T09:00:30"


@pytest.fixture
def connect(oauth_gateway, oauth_environ, clock):
    """connect(environ=None) -> a fresh OAuth adapter on the fake clock (a new process)."""

    def make(environ: dict | None = None) -> IbkrBroker:
        config = IbkrConfig(account_id=ACCOUNT, use_oauth=True, timeout_seconds=2.0)
        return IbkrBroker(build_client(config, environ or oauth_environ), config, clock)

    return make


@pytest.fixture
def now():
    return datetime.now(timezone.utc)


def signed_requests(gw) -> list[str]:
    return [p for _, p, _ in gw.requests if p != "oauth/live_session_token"]


# -- the handshake and signed requests -----------------------------------------------------------------


def test_the_client_is_built_without_a_request_and_shakes_hands_at_the_first_readiness(connect, oauth_gateway,
                                                                                        now):
    broker = connect()
    assert oauth_gateway.requests == []  # no handshake inside ibind's constructor
    ready = broker.readiness(now)
    assert ready.ready, ready.message
    assert ready.message == f"IBKR paper account {ACCOUNT} over OAuth"
    assert [p for _, p, _ in oauth_gateway.requests][:4] == [
        "oauth/live_session_token", "iserver/auth/ssodh/init", "iserver/auth/status", "iserver/accounts"]
    assert oauth_gateway.oauth.handshakes == 1 and oauth_gateway.oauth.refusals == []
    assert broker.quotes(["AAPL"], now)["AAPL"].price is not None  # signed GETs with query parameters pass
    assert broker.login_url is None  # nobody logs in in a browser


def test_the_emulator_refuses_what_is_unsigned_replayed_or_stale(connect, oauth_gateway, now):
    broker = connect()
    broker.readiness(now)
    url = oauth_gateway.url + "iserver/accounts"
    unsigned = requests.get(url, timeout=5)
    assert unsigned.status_code == 401 and unsigned.json()["statusCode"] == 401
    headers = broker.client._get_headers("GET", url)  # exactly what ibind sends
    assert requests.get(url, headers=headers, timeout=5).status_code == 200
    replayed = requests.get(url, headers=headers, timeout=5)
    assert (replayed.status_code, replayed.json()["error"]) == (401, "nonce already used")
    with time_machine.travel(datetime.now(timezone.utc) - timedelta(minutes=10)):
        stale = broker.client._get_headers("GET", url)
    assert requests.get(url, headers=stale, timeout=5).json()["error"] == "timestamp out of range"
    forged = {**broker.client._get_headers("GET", url)}
    forged["Authorization"] = forged["Authorization"].replace('oauth_signature="', 'oauth_signature="x')
    assert requests.get(url, headers=forged, timeout=5).json()["error"] == "invalid signature"


def test_a_live_session_token_near_its_expiry_is_renewed_before_it_is_used(connect, oauth_gateway, now):
    broker = connect()
    broker.readiness(now)
    with time_machine.travel(datetime.now(timezone.utc) + timedelta(hours=23, minutes=59, seconds=30)):
        assert broker.quotes(["SPY"], now)["SPY"].price is not None
    assert oauth_gateway.oauth.handshakes == 2
    assert oauth_gateway.oauth.refusals == []  # renewed in time: IBKR never refused a request


def test_a_read_refused_401_renews_the_token_once_and_asks_again(connect, oauth_gateway, now):
    broker = connect()
    broker.readiness(now)
    oauth_gateway.oauth.expire_all()  # IBKR ended the token early (or another process revoked it)
    assert broker.cash_balance() is not None
    assert oauth_gateway.oauth.refusals == ["live session token expired"]
    assert oauth_gateway.oauth.handshakes == 2
    assert oauth_gateway.count("GET", r"portfolio/.*/ledger") == 2


def test_a_token_that_expires_after_a_few_requests_is_renewed_on_the_first_refusal(connect, oauth_gateway, now):
    broker = connect()
    broker.readiness(now)
    oauth_gateway.oauth.expire_after(2)
    for _ in range(4):
        assert broker.cash_balance() is not None
    assert oauth_gateway.oauth.refusals == ["live session token expired"]  # the third, then renewed
    assert oauth_gateway.count("GET", r"portfolio/.*/ledger") == 5


def test_a_token_refused_again_after_renewal_is_a_clear_unavailability(connect, oauth_gateway, now):
    from dca.errors import BrokerUnavailable

    broker = connect()
    broker.readiness(now)
    oauth_gateway.oauth.bad_signatures = 100
    with pytest.raises(BrokerUnavailable, match="401"):
        broker.cash_balance()
    assert oauth_gateway.oauth.handshakes == 2  # one renewal, not a loop
    assert oauth_gateway.count("GET", r"portfolio/.*/ledger") == 1


def test_a_new_token_elsewhere_revoking_ours_is_survived(connect, oauth_gateway, now):
    oauth_gateway.oauth.revoke_on_new = True
    worker, panel = connect(), connect()
    worker.readiness(now)
    panel.readiness(now)  # its handshake revokes the worker's token
    assert worker.positions() == []
    assert panel.positions() == []
    assert oauth_gateway.oauth.handshakes == 4 and oauth_gateway.oauth.refusals == ["live session token expired"] * 2


# -- what dca does about ibind's own OAuth side effects -------------------------------------------------


def test_no_tickler_thread_and_one_keep_alive_that_also_renews(connect, oauth_gateway, clock, now):
    broker = connect()
    broker.readiness(now)
    assert broker.client._tickler is None  # ibind's Tickler would be a second keep-alive
    clock.now += 61
    assert broker.keep_alive() is True
    assert oauth_gateway.count("POST", "tickle") == 1
    oauth_gateway.oauth.expire_all()
    clock.now += 61
    assert broker.keep_alive() is True  # renewed on the 401 and tickled again
    assert oauth_gateway.oauth.handshakes == 2


def test_closing_a_client_does_not_log_out_the_session_others_share(connect, oauth_gateway, now):
    worker, panel = connect(), connect()
    worker.readiness(now)
    panel.readiness(now)
    panel.client.close()  # ibind's close() would call logout with shutdown_oauth on
    assert oauth_gateway.count("POST", "logout") == 0
    assert worker.positions() == [] and oauth_gateway.authenticated


def test_a_closed_brokerage_session_is_reopened_without_a_login(connect, oauth_gateway, now):
    broker = connect()
    broker.readiness(now)
    oauth_gateway.authenticated = False  # e.g. IBKR's nightly restart, or a logout elsewhere
    ready = broker.readiness(now)
    assert ready.ready, ready.message
    assert oauth_gateway.count("POST", r"iserver/auth/ssodh/init") == 2


# -- wrong credentials: a clear word, nothing ordered, nothing lost ----------------------------------------


def _wrong_signature_key(environ, consumer, tmp_path):
    path = tmp_path / "other_signature.pem"
    path.write_bytes(RSA.generate(2048).export_key())
    return {**environ, "IBIND_OAUTH1A_SIGNATURE_KEY_FP": str(path)}


def _wrong_consumer_key(environ, consumer, tmp_path):
    return {**environ, "IBIND_OAUTH1A_CONSUMER_KEY": "NOTOURS42"}


def _wrong_secret(environ, consumer, tmp_path):
    # a well-formed secret for the right key, but not the one IBKR issued
    cipher = PKCS1_v1_5.new(consumer.encryption_key.publickey())
    return {**environ, "IBIND_OAUTH1A_ACCESS_TOKEN_SECRET": base64.b64encode(cipher.encrypt(b"x" * 32)).decode()}


def _undecryptable_secret(environ, consumer, tmp_path):
    return {**environ, "IBIND_OAUTH1A_ACCESS_TOKEN_SECRET": base64.b64encode(b"garbage" * 20).decode()}


def _wrong_prime(environ, consumer, tmp_path):
    return {**environ, "IBIND_OAUTH1A_DH_PRIME": DH_PRIME[:-2] + "61"}  # another odd number


def _not_a_key(environ, consumer, tmp_path):
    path = tmp_path / "not_a_key.pem"
    path.write_text("this is not a key\n")
    return {**environ, "IBIND_OAUTH1A_ENCRYPTION_KEY_FP": str(path)}


WRONG = {
    "signature key": (_wrong_signature_key, "invalid signature", "IBIND_OAUTH1A_SIGNATURE_KEY_FP"),
    "consumer key": (_wrong_consumer_key, "invalid consumer", "start with IBIND_OAUTH1A_CONSUMER_KEY"),
    "access token secret": (_wrong_secret, "invalid signature", "IBIND_OAUTH1A_ACCESS_TOKEN_SECRET"),
    "undecryptable secret": (_undecryptable_secret, None, "cannot be decrypted with the key in "
                             "IBIND_OAUTH1A_ENCRYPTION_KEY_FP"),
    "DH prime": (_wrong_prime, None, "check IBIND_OAUTH1A_DH_PRIME"),
    "not a key": (_not_a_key, None, "IBIND_OAUTH1A_ENCRYPTION_KEY_FP (or IBIND_OAUTH1A_ENCRYPTION_KEY) does not "
                  "hold an RSA private key"),
}


@pytest.fixture
def real_oauth_gateway(consumer):
    gw = IbkrGateway(account=ACCOUNT, oauth=consumer.server())  # the real clock: the command paces itself
    gw.today = TUESDAY.date()
    gw.preflight = False
    running = gw.serve()
    yield gw
    running.stop()


@pytest.fixture
def oauth_command(monkeypatch, consumer, real_oauth_gateway, tmp_path):
    """The person's shell: DCA_BROKER=ibkr, IBIND_USE_OAUTH=true and the consumer's variables."""
    environ = {**consumer.write(tmp_path / "oauth"), "IBIND_OAUTH1A_REST_URL": real_oauth_gateway.url,
               "IBIND_USE_OAUTH": "true", "IBIND_ACCOUNT_ID": ACCOUNT, "DCA_BROKER": "ibkr"}
    for key, value in environ.items():
        monkeypatch.setenv(key, value)
    plan = tmp_path / "plan.csv"
    plan.write_text(HEADER + "Active,AAPL,350,Daily,,a1\nActive,SPY,250,Daily,,s1\n")
    return environ, plan


def dca(capsys, *args) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("wrong", list(WRONG))
def test_wrong_credentials_defer_the_run_with_what_to_check_and_order_nothing(
        wrong, capsys, monkeypatch, consumer, oauth_command, real_oauth_gateway, tmp_path):
    environ, plan = oauth_command
    make, refusal, hint = WRONG[wrong]
    for key, value in make(environ, consumer, tmp_path).items():
        monkeypatch.setenv(key, value)
    code, out, err = dca(capsys, "run", "--plan", str(plan), "--now", NOW)
    assert real_oauth_gateway.orders == []
    assert signed_requests(real_oauth_gateway) == []  # nothing got past the handshake
    if refusal:
        assert real_oauth_gateway.oauth.refusals == [refusal]
    elif wrong != "DH prime":  # found out on this side: nothing was even sent
        assert real_oauth_gateway.requests == []
    deferred = [line for line in out.splitlines() if line.startswith("DEFERRED")]
    assert len(deferred) == 2 and all(hint in line for line in deferred), out
    assert "Traceback" not in out + err
    for secret in (consumer.access_token, consumer.secret.hex(), environ["IBIND_OAUTH1A_ACCESS_TOKEN_SECRET"]):
        assert secret not in out + err
    code, out, _ = dca(capsys, "history", "--plan", str(plan), "--json")
    assert json.loads(out) == []  # deferred, not recorded: nothing is lost
    for key, value in environ.items():  # the person corrects the setting; a later run buys
        monkeypatch.setenv(key, value)
    code, out, err = dca(capsys, "run", "--plan", str(plan), "--now", "2026-12-01T10:00:00")
    assert code == 0, out + err
    assert sorted(o.order_ref for o in real_oauth_gateway.orders) == ["dca-a1-20261201", "dca-s1-20261201"]


def test_410_gone_on_the_handshake_says_to_try_later_or_another_server(connect, oauth_gateway, now):
    oauth_gateway.fail("oauth/live_session_token", 410, body={"error": "gone"})
    ready = connect().readiness(now)
    assert not ready.ready
    assert "410 Gone" in ready.message and "IBIND_OAUTH1A_REST_URL=https://1.api.ibkr.com/v1/api/" in ready.message
    assert oauth_gateway.orders == []


# -- a whole run over OAuth ---------------------------------------------------------------------------------


def test_dca_run_over_oauth_places_one_order_per_due_row_and_records_the_fills(
        capsys, oauth_command, real_oauth_gateway):
    environ, plan = oauth_command
    code, out, err = dca(capsys, "run", "--plan", str(plan), "--now", NOW)
    assert code == 0, out + err
    assert f"Broker: IBKR paper account {ACCOUNT} over OAuth" in out
    assert sorted(o.order_ref for o in real_oauth_gateway.orders) == ["dca-a1-20261201", "dca-s1-20261201"]
    assert real_oauth_gateway.oauth.handshakes == 1 and real_oauth_gateway.oauth.refusals == []
    assert real_oauth_gateway.count("POST", "logout") == 0  # a short run does not end the worker's session
    code, out, _ = dca(capsys, "history", "--plan", str(plan), "--json")
    assert sorted((e["symbol"], e["status"], e["quantity"]) for e in json.loads(out)) == [
        ("AAPL", "filled", "3"), ("SPY", "filled", "2")]
    code, out, _ = dca(capsys, "run", "--plan", str(plan), "--now", "2026-12-01T11:00:00")
    assert len(real_oauth_gateway.orders) == 2  # bought once per row and day
    code, out, _ = dca(capsys, "status")
    assert f"IBKR paper account {ACCOUNT} over OAuth" in out


def test_an_order_post_refused_401_is_proven_absent_before_it_is_sent_again(make_rig, connect, oauth_gateway,
                                                                            clock):
    def expire_before_the_order(step, execution):
        if step == "intent_recorded":
            oauth_gateway.oauth.expire_all()  # the client still believes its token good

    r = make_rig("Active,AAPL,350,Daily,,a1\n", broker=connect(), checkpoint=expire_before_the_order)
    r.engine.clock = r.clock = clock
    report = r.run(TUESDAY)
    [e] = report.executions
    assert e.status is Outcome.FILLED, e.message
    assert [o.order_ref for o in oauth_gateway.orders] == ["dca-a1-20261201"]
    posts = [i for i, (m, p, _) in enumerate(oauth_gateway.requests) if m == "POST" and p.endswith("/orders")]
    assert len(posts) == 2  # the refused one, and the one sent after the proof
    between = [p for _, p, _ in oauth_gateway.requests[posts[0]:posts[1]]]
    assert "iserver/account/orders" in between  # proven absent from the order list first
    assert oauth_gateway.oauth.refusals == ["live session token expired"]


def test_no_secret_reaches_logs_output_files_or_notifications(capsys, caplog, consumer, oauth_command,
                                                             real_oauth_gateway, monkeypatch, tmp_path):
    environ, plan = oauth_command
    caplog.set_level(logging.DEBUG)
    for name in ("ibind", "ibind_fh", "urllib3", "dca"):
        caplog.set_level(logging.DEBUG, logger=name)
    code, out, err = dca(capsys, "run", "--plan", str(plan), "--now", NOW)
    assert code == 0, out + err
    monkeypatch.setenv("IBIND_OAUTH1A_CONSUMER_KEY", "NOTOURS42")  # and a refused handshake, notified
    code, out2, err2 = dca(capsys, "run", "--plan", str(plan), "--now", "2026-12-01T12:00:00")
    pem = consumer.signature_key.export_key().decode().splitlines() + \
        consumer.encryption_key.export_key().decode().splitlines()
    secrets = [consumer.access_token, consumer.secret.hex(), base64.b64encode(consumer.secret).decode(),
               environ["IBIND_OAUTH1A_ACCESS_TOKEN_SECRET"], consumer.consumer_key] + \
        [base64.b64encode(t.value).decode() for t in real_oauth_gateway.oauth.tokens] + \
        [line for line in pem if "-----" not in line]
    assert len(real_oauth_gateway.oauth.tokens) == 1 and len(caplog.records) > 20
    files = b"".join(p.read_bytes() for p in (tmp_path / "home").rglob("*") if p.is_file())
    assert files  # the ledger, its outbox (notifications, Log cells) and the logs
    shown = out + err + out2 + err2 + caplog.text + "".join(str(r.args) for r in caplog.records)
    for secret in secrets:
        assert secret not in shown
        assert secret.encode() not in files


# -- the emulator started by hand -----------------------------------------------------------------------------


@pytest.mark.slow
def test_the_emulator_starts_by_hand_in_oauth_mode_and_prints_what_to_export(tmp_path, now):
    keys = tmp_path / "oauth"
    process = subprocess.Popen([sys.executable, "-m", "tests.fakes.ibkr_gateway", "--port", "0", "--oauth", str(keys)],
                               cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        lines = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not (lines and lines[-1].startswith("export IBIND_OAUTH1A_REST_URL")):
            lines.append(process.stdout.readline().strip())
        exported = dict(line.removeprefix("export ").split("=", 1) for line in lines if line.startswith("export "))
        config = IbkrConfig(use_oauth=True)
        ready = IbkrBroker(build_client(config, exported), config).readiness(now)  # what a person would run
    finally:
        process.terminate()
        process.wait(10)
    assert ready.ready, ready.message
    assert exported["IBIND_USE_OAUTH"] == "true" and exported["DCA_BROKER"] == "ibkr"
    assert Path(exported["IBIND_OAUTH1A_SIGNATURE_KEY_FP"]).is_file()
    assert Path(exported["IBIND_OAUTH1A_ENCRYPTION_KEY_FP"]).parent == keys
    printed = "\n".join(lines)
    assert "PRIVATE KEY" not in printed  # paths, never key text
    assert (keys / "private_signature.pem").stat().st_mode & 0o077 == 0
