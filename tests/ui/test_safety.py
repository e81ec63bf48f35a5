"""The panel's safety settings and its answer to an unexpected error."""

from __future__ import annotations

import tomllib
from pathlib import Path

from streamlit.testing.v1 import AppTest

from dca import plan_editing
from dca.panel.frame import UNEXPECTED

REPO = Path(__file__).resolve().parents[2]
APP = REPO / "app.py"



def test_the_config_listens_on_loopback_sends_no_statistics_and_hides_error_details():
    config = tomllib.loads((REPO / ".streamlit" / "config.toml").read_text())
    assert config["server"]["address"] == "127.0.0.1"
    assert config["server"]["headless"] is True
    assert config["browser"]["gatherUsageStats"] is False
    assert config["client"]["showErrorDetails"] == "none"


def test_an_unexpected_error_shows_a_sentence_of_ours_not_a_traceback(monkeypatch, caplog):
    def broken(*args, **kwargs):
        raise RuntimeError("boom at /very/secret/path")

    # A fault the Plan page (the default page, reached through app.py's navigation) does not expect.
    monkeypatch.setattr(plan_editing, "source_cells", broken)
    at = AppTest.from_file(str(APP), default_timeout=30).run()
    assert not at.exception  # Streamlit's own error page is not shown
    assert UNEXPECTED in [e.value for e in at.error]
    assert not any("boom" in e.value for e in at.error)
    assert "boom at /very/secret/path" in caplog.text  # the details go to the server's log
