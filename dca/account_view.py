"""What the panel shows about the broker: which kind of account it is (SIMULATED, PAPER,
LIVE) and the account itself (positions, cash, net liquidation) next to what the plan
spends per symbol each month. No Streamlit."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Sequence

from dca.domain import Frequency, PlanRow
from dca.ports import Account, AccountView, Position

# A month's executions per frequency, on average: 252 NYSE trading days, 52 weeks a year.
PER_MONTH = {Frequency.DAILY: Decimal(252) / 12, Frequency.WEEKLY: Decimal(52) / 12, Frequency.MONTHLY: Decimal(1)}


@dataclass(frozen=True)
class BrokerMode:
    label: str  # SIMULATED, PAPER, LIVE, or IBKR while the account is not known yet
    account: str | None = None

    @property
    def real_money(self) -> bool:
        return self.label in ("LIVE", "IBKR")


def broker_mode(simulated: bool, broker: object) -> BrokerMode:
    if simulated:
        return BrokerMode("SIMULATED")
    from dca.brokers.ibkr import is_paper

    account = getattr(broker, "account_id", None)
    if not account:
        return BrokerMode("IBKR")
    return BrokerMode("PAPER" if is_paper(account) else "LIVE", account)


def account_of(broker: object, at: datetime) -> Account | None:
    """The broker's account view, or None when it offers none. Raises BrokerError."""
    if isinstance(broker, AccountView):
        return broker.account(at)
    if all(hasattr(broker, name) for name in ("positions", "cash_balance", "net_liquidation")):
        # IBKR: its positions already carry their market value and average cost.
        positions = tuple(
            Position(p.symbol, p.quantity,
                     None if p.average_cost is None else (p.average_cost * p.quantity).quantize(Decimal("0.01")),
                     p.market_value)
            for p in broker.positions())
        return Account(broker.cash_balance(), broker.net_liquidation(), positions)
    return None


def monthly_spend(rows: Sequence[PlanRow]) -> dict[str, Decimal]:
    """Dollars the Active rows spend per symbol in an average month."""
    spend: dict[str, Decimal] = {}
    for row in rows:
        if row.active:
            spend[row.symbol] = spend.get(row.symbol, Decimal(0)) + row.amount * PER_MONTH[row.frequency]
    return {k: v.quantize(Decimal("0.01")) for k, v in sorted(spend.items())}


def portfolio_rows(account: Account, spend: dict[str, Decimal]) -> list[dict]:
    """One row per symbol held or planned: quantity, cost, market value, weight in the
    positions' market value, and the plan's monthly spend with its share of the plan."""
    held = {p.symbol: p for p in account.positions}
    valued = sum((p.market_value for p in account.positions if p.market_value is not None), Decimal(0))
    planned = sum(spend.values(), Decimal(0))
    out = []
    for symbol in sorted(set(held) | set(spend)):
        p = held.get(symbol)
        value = p.market_value if p else None
        out.append({
            "Symbol": symbol,
            "Quantity": float(p.quantity) if p else 0.0,
            "Cost": None if p is None or p.cost is None else float(p.cost),
            "Market value": None if value is None else float(value),
            "Weight": float(value / valued) if value is not None and valued else None,
            "Plan per month": float(spend.get(symbol, 0)),
            "Plan share": float(spend.get(symbol, 0) / planned) if planned else None,
        })
    return out
