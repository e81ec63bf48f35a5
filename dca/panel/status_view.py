"""Pure helpers for the Status page: the worker's heartbeat and the versions, in words."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

NO_WORKER = "No worker has ever run on this ledger: nothing buys on schedule until `dca worker` runs."
PACKAGES = ("dca", "streamlit", "ibind", "gspread")


def _when(stamp: str | None) -> str:
    return stamp[:16].replace("T", " ") if stamp else "—"


def heartbeat_lines(hb: dict | None) -> list[tuple[str, str]]:
    """(label, value) pairs a person reads: state, last tick, last run, next run, last error."""
    if hb is None:
        return []
    error = hb.get("last_error")
    return [
        ("State", hb.get("state") or "unknown"),
        ("Last tick", _when(hb.get("last_tick"))),
        ("Last run", _when(hb.get("last_run")) + (f" — {hb['last_run_result']}" if hb.get("last_run_result") else "")),
        ("Next run", _when(hb.get("next_run"))),
        ("Last error", f"{_when(hb.get('last_error_at'))}: {error}" if error else "none"),
    ]


def versions(packages: tuple[str, ...] = PACKAGES) -> dict[str, str]:
    out = {}
    for name in packages:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "not installed"
    return out
