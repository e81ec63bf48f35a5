"""Problems a person must hear of once: when they appear, change and are resolved.

Each problem has a stable key (a row's plan error, a deferred execution, an order in
doubt, the plan unreadable). A run says which problems are open now; comparing with the
ones the ledger holds open gives what to notify, so a worker running every few minutes
does not repeat the same message hundreds of times a day.
"""

from __future__ import annotations

from typing import Iterable

from dca.ledger import Ledger


class Notices:
    def __init__(self, ledger: Ledger, scope: Iterable[str] | None = None):
        """`scope`: the kinds of problem (key prefixes) this run could see; others are
        left as they are (a run that could not read the plan knows nothing of its rows)."""
        self.ledger = ledger
        self.scope = None if scope is None else set(scope)
        self.current: dict[str, str] = {}

    def open(self, key: str, text: str) -> None:
        self.current[key] = text

    def settle(self) -> None:
        before = self.ledger.open_notices()
        opened = {k: v for k, v in self.current.items() if before.get(k) != v}
        closed = [k for k in before if self._in_scope(k) and k not in self.current]
        messages = [("Update: " if k in before else "") + v for k, v in opened.items()]
        messages += [f"Resolved: {before[k]}" for k in closed]
        self.ledger.settle_notices(opened, closed, messages)

    def _in_scope(self, key: str) -> bool:
        return self.scope is None or key.split(":", 1)[0] in self.scope
