"""Fixtures shared by the IBKR tests: a clean ibind environment, a fake clock and the
gateway emulator on it, and for OAuth 1.0a a consumer whose keys are made once per test
session (import them into a test module to use them)."""

from __future__ import annotations

import os

import pytest

from tests.conftest import ny
from tests.fakes import FakeClock
from tests.fakes.ibkr_gateway import IbkrGateway

TUESDAY = ny(2026, 12, 1, 9, 0, 30)
ACCOUNT = "DU1234567"


@pytest.fixture(autouse=True)
def no_ibind_environment(monkeypatch):
    for key in ("IBIND_REST_URL", "IBIND_ACCOUNT_ID", "IBIND_USE_OAUTH"):
        monkeypatch.delenv(key, raising=False)
    for key in [k for k in os.environ if k.startswith("IBIND_OAUTH1A_")]:
        monkeypatch.delenv(key)


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def gateway(clock):
    gw = IbkrGateway(clock=clock, account=ACCOUNT)
    gw.today = TUESDAY.date()
    running = gw.serve()
    gw.url = running.url
    yield gw
    running.stop()


@pytest.fixture(scope="session")
def consumer():
    """An OAuth registration's credentials, with 2048-bit RSA keys made now (never stored
    in the repository); IBKR's side of it is `consumer.server()`."""
    from tests.fakes.ibkr_oauth import OAuthConsumer

    return OAuthConsumer.generate()


@pytest.fixture
def oauth_gateway(consumer, clock):
    """The emulator in OAuth mode, on the fake clock; `oauth_gateway.oauth` is IBKR's side."""
    gw = IbkrGateway(clock=clock, account=ACCOUNT, oauth=consumer.server())
    gw.today = TUESDAY.date()
    running = gw.serve()
    yield gw
    running.stop()


@pytest.fixture
def oauth_environ(consumer, oauth_gateway, tmp_path):
    """The IBIND_OAUTH1A_* variables of `consumer`, its key files in tmp, pointing at the emulator."""
    return {**consumer.write(tmp_path / "oauth"), "IBIND_OAUTH1A_REST_URL": oauth_gateway.url}
