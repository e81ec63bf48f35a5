"""Shared by the panel's tests. AppTest runs the script in this process, so what
`st.cache_resource` holds (Settings and services built for another test's DCA_HOME) is
cleared around each test; and AppTest runs in the tests' temporary folder, where
.streamlit/config.toml is not read, so the one option the pages decide on
(`server.address`) is set as the repo's config file does."""

from __future__ import annotations

import pytest
import streamlit as st
from streamlit import config


@pytest.fixture(autouse=True)
def fresh_caches():
    st.cache_resource.clear()
    yield
    st.cache_resource.clear()


@pytest.fixture(autouse=True)
def loopback_address():
    before = config.get_option("server.address")
    config.set_option("server.address", "127.0.0.1")
    yield
    config.set_option("server.address", before)
