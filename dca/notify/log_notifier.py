"""The embedded default notifier: appends each message to a local file and the log."""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from pathlib import Path

logger = logging.getLogger(__name__)


class FileNotifier:
    def __init__(self, path: Path):
        self.path = Path(path)
        self.description = f"notification file {self.path}"

    def send(self, text: str) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(timezone.utc).isoformat(timespec="seconds")
        with self.path.open("a", encoding="utf-8") as f:
            f.write(f"--- {stamp}\n{text}\n")
        logger.info("notification: %s", text)
