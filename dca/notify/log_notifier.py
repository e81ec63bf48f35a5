"""The embedded default notifier: appends each message to a local file and the log."""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from pathlib import Path
from typing import Sequence

from dca.ports import Notification

logger = logging.getLogger(__name__)

TITLES = {"SIMULATED": "Recurring investments — SIMULATED broker, no real money",
          "PAPER": "Recurring investments — PAPER account, no real money",
          "LIVE": "Recurring investments — LIVE account"}


class FileNotifier:
    def __init__(self, path: Path, rules=None):
        self.path = Path(path)
        self.rules = rules
        self.description = f"notification file {self.path}"
        self.identity = f"file:{self.path}"

    def pack(self, notifications: Sequence[Notification]) -> int:
        """Everything about one account goes in one message: a file has no limits."""
        first = notifications[0].account
        return next((i for i, n in enumerate(notifications) if n.account != first), len(notifications))

    def send(self, notifications: Sequence[Notification]) -> float:
        account = notifications[0].account
        text = TITLES.get(account, f"Recurring investments — {account}") + "\n"
        text += "\n".join(n.text for n in notifications)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(timezone.utc).isoformat(timespec="seconds")
        with self.path.open("a", encoding="utf-8") as f:
            f.write(f"--- {stamp}\n{text}\n")
        logger.info("notification: %s", text)
        return 0.0
