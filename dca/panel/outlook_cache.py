"""What the Calendar and the carry notes compute, kept until something they depend on
changes: the plan as read this rerun, the ledger (its write counter), the minute, the
range. A person changing the weeks, the month or a filter on a plan of a thousand rows
does not wait for the schedule to be worked out again for what did not change.

Kept with `st.cache_resource`: one shared object, not a copy per rerun (copying 8,000
upcoming executions of a big plan cost more than working them out). So what is returned
is read, never changed: filter into a new Outlook. The plan and the services are passed
unhashed (`_plan`, `_services`): Streamlit's hashing of a thousand rows is slow, so the
key holds a digest of the rows instead, and the ledger's path and write counter."""

from __future__ import annotations

import hashlib
import pickle
from datetime import date, datetime

import streamlit as st

from dca.bootstrap import Services
from dca.domain import ParsedPlan, PlanRow
from dca.panel.carry_view import CarryNote, carry_notes
from dca.panel.history_cache import ledger_stamp
from dca.queries import Outlook, next_executions


def this_minute(now: datetime) -> datetime:
    """`now` to the minute: the key (and the moment computed for) of one minute's reruns."""
    return now.replace(second=0, microsecond=0)


def digest(rows) -> str:
    """Tells one set of plan rows from another (frozen dataclasses: pickled the same way
    each time they are equal; at worst a miss, never a wrong answer)."""
    return hashlib.blake2b(pickle.dumps(list(rows), protocol=pickle.HIGHEST_PROTOCOL), digest_size=16).hexdigest()


@st.cache_resource(max_entries=32, show_spinner=False)
def _outlook(_services: Services, _plan: ParsedPlan, ledger_path: str, stamp: tuple, rows: str, now: datetime,
             start: date, end: date) -> Outlook:
    s = _services
    return next_executions(_plan, s.schedule, s.ledger, now, start, end, s.engine.options)


def outlook(services: Services, plan: ParsedPlan, now: datetime, start: date, end: date) -> Outlook:
    """`dca.queries.next_executions`, as of `now`'s minute. Shared: read it, don't change it."""
    path = services.ledger.path
    return _outlook(services, plan, str(path), ledger_stamp(path), digest(plan.rows), this_minute(now), start, end)


@st.cache_resource(max_entries=32, show_spinner=False)
def _notes(_services: Services, _rows: tuple[PlanRow, ...], ledger_path: str, stamp: tuple, rows: str, today: date,
           fractional: bool) -> tuple[CarryNote, ...]:
    return tuple(carry_notes(_rows, _services.ledger, _services.schedule, today, fractional))


def cached_carry_notes(services: Services, rows, today: date, fractional: bool) -> tuple[CarryNote, ...]:
    rows = tuple(rows)
    path = services.ledger.path
    return _notes(services, rows, str(path), ledger_stamp(path), digest(rows), today, fractional)
