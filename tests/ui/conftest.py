"""AppTest runs in the tests' temporary folder, where .streamlit/config.toml is not read: set
the one option the pages decide on (`server.address`) as the repo's config file does."""

from __future__ import annotations

import pytest
from streamlit import config


@pytest.fixture(autouse=True)
def loopback_address():
    before = config.get_option("server.address")
    config.set_option("server.address", "127.0.0.1")
    yield
    config.set_option("server.address", before)
