"""The panel's charts are hand-written Vega-Lite (dca.panel.charts, to spare the pages
Altair's import): each must be a valid specification by Vega-Lite's own JSON schema (the
one Altair ships), and encode the columns the pages give it."""

from __future__ import annotations

import json
from importlib.resources import files

import jsonschema
import pytest

from dca.panel import charts

SCHEMA = json.loads(files("altair.vegalite.v6.schema").joinpath("vega-lite-schema.json").read_text())
COLUMNS = {
    "invested_over_time": {"Day": "2027-03-01", "Symbol": "SPY", "USD": 700.0},
    "bought_per_month": {"Month": "2027-03", "Symbol": "SPY", "USD": 700.0},
    "prices_paid": {"Day": "2027-03-01", "Price": "Paid", "USD": 512.34},
    "outcome_counts": {"Outcome": "filled", "Executions": 3},
    "dollars_per_day": {"Day": "Mon 03-01", "USD": 700.0},
}


@pytest.mark.parametrize("name", sorted(COLUMNS))
def test_each_chart_is_valid_vega_lite_over_the_pages_columns(name):
    spec = getattr(charts, name)()
    jsonschema.validate({**spec, "data": {"values": [COLUMNS[name]]}}, SCHEMA)
    fields = {e["field"] for e in spec["encoding"].values() if isinstance(e, dict) and "field" in e}
    assert fields <= set(COLUMNS[name]) and fields, fields


def test_an_invalid_spec_is_caught_by_the_schema():
    bad = {**charts.dollars_per_day(), "mark": {"type": "bars"}}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**bad, "data": {"values": [COLUMNS["dollars_per_day"]]}}, SCHEMA)


def test_the_days_keep_the_frames_order():
    """The Upcoming chart once lost its day order after the start date changed: the x axis
    is ordinal with no sort of its own, so the bars follow the frame (date order)."""
    assert charts.dollars_per_day()["encoding"]["x"]["sort"] is None
