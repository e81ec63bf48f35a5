"""Fixtures shared by the IBKR tests: a clean ibind environment, a fake clock and the
gateway emulator on it (import them into a test module to use them)."""

from __future__ import annotations

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
