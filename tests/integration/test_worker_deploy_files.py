"""The Dockerfile and compose.yaml, read as text (no Docker daemon in the test run): what
they run, what they copy, what they keep out, and where they listen."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_the_image_runs_the_worker_as_a_user_on_the_data_volume():
    text = (REPO / "Dockerfile").read_text()
    assert 'CMD ["dca", "worker"]' in text and "STOPSIGNAL SIGTERM" in text
    assert "USER dca" in text and "ENV DCA_HOME=/data XDG_CACHE_HOME=/data/cache" in text
    assert "uv sync --frozen --no-dev" in text
    for source in re.findall(r"^COPY (.+) \S+$", text, re.M):
        for name in source.split():
            assert (REPO / name).exists(), f"the Dockerfile copies {name}, which does not exist"


def test_secrets_and_local_data_stay_out_of_the_image():
    ignored = (REPO / ".dockerignore").read_text().split()
    assert {".env", ".venv/", "*.sqlite3", "data/", ".git/"} <= set(ignored)
    assert "!uv.lock" in ignored  # `*.lock` keeps ledger locks out, not the lock file the build needs


def test_compose_runs_worker_and_panel_on_one_volume_and_ibeam_only_on_request():
    text = (REPO / "compose.yaml").read_text()
    services = dict(re.findall(r"^  (\w+):\n((?:    .*\n|\n)+)", text, re.M))
    assert set(services) == {"worker", "panel", "ibeam"}
    assert 'command: ["dca", "worker"]' in services["worker"]
    assert "stop_grace_period: 2m" in services["worker"]  # time for the run in flight after SIGTERM
    for name in ("worker", "panel"):
        assert "- dca-data:/data" in services[name]
    assert '- "127.0.0.1:8501:8501"' in services["panel"]  # the panel has no login: loopback only
    assert 'profiles: ["ibeam"]' in services["ibeam"] and '- "127.0.0.1:5000:5000"' in services["ibeam"]
    assert "SECURITY TRADE-OFF" in text and "IBEAM_PASSWORD" in text
