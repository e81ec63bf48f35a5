"""The panel's charts as Vega-Lite specifications, for `st.vega_lite_chart`.

Plain dictionaries, not Altair: importing Altair takes about 0.7 s, which a person paid
on their first visit to a page with a chart; the specification is what Altair would have
sent the browser anyway. Each function names the chart it draws; the data frame's columns
are the ones the pages build.
"""

from __future__ import annotations

DOLLARS = "$,.0f"
CENTS = "$,.2f"


def _x_day(field: str = "Day") -> dict:
    return {"field": field, "type": "temporal", "title": None}


def invested_over_time() -> dict:
    """Cumulative dollars per symbol (columns Day, Symbol, USD), stepping at each buy."""
    return {
        "mark": {"type": "line", "point": True, "interpolate": "step-after"},
        "encoding": {
            "x": _x_day(),
            "y": {"field": "USD", "type": "quantitative", "title": "Cumulative USD", "axis": {"format": DOLLARS}},
            "color": {"field": "Symbol", "type": "nominal"},
            "tooltip": [{"field": "Day", "type": "temporal"}, {"field": "Symbol", "type": "nominal"},
                        {"field": "USD", "type": "quantitative", "format": CENTS}],
        },
    }


def bought_per_month() -> dict:
    """Dollars bought per month, stacked per symbol (columns Month, Symbol, USD)."""
    return {
        "mark": {"type": "bar"},
        "encoding": {
            "x": {"field": "Month", "type": "ordinal", "title": None},
            "y": {"aggregate": "sum", "field": "USD", "type": "quantitative", "title": "USD",
                  "axis": {"format": DOLLARS}},
            "color": {"field": "Symbol", "type": "nominal"},
            "tooltip": [{"field": "Month", "type": "ordinal"}, {"field": "Symbol", "type": "nominal"},
                        {"field": "USD", "type": "quantitative", "format": CENTS}],
        },
    }


def prices_paid() -> dict:
    """Price paid against the running average (columns Day, Price: Paid/Average, USD)."""
    return {
        "mark": {"type": "line", "point": True},
        "encoding": {
            "x": _x_day(),
            "y": {"field": "USD", "type": "quantitative", "title": "USD per share", "scale": {"zero": False}},
            "color": {"field": "Price", "type": "nominal", "title": None},
            "tooltip": [{"field": "Day", "type": "temporal"}, {"field": "Price", "type": "nominal"},
                        {"field": "USD", "type": "quantitative", "format": CENTS}],
        },
    }


def outcome_counts() -> dict:
    """Executions per outcome, the most frequent on top (columns Outcome, Executions)."""
    return {
        "mark": {"type": "bar"},
        "encoding": {
            "x": {"field": "Executions", "type": "quantitative"},
            "y": {"field": "Outcome", "type": "nominal", "sort": "-x", "title": None},
            "tooltip": [{"field": "Outcome", "type": "nominal"}, {"field": "Executions", "type": "quantitative"}],
        },
    }


def dollars_per_day() -> dict:
    """Dollars per day to come (columns Day, USD). Ordinal in the frame's order (date
    order): only days with a buy get a bar, weekends leave no gaps."""
    return {
        "mark": {"type": "bar"},
        "encoding": {
            "x": {"field": "Day", "type": "ordinal", "sort": None, "title": None, "axis": {"labelAngle": -45}},
            "y": {"field": "USD", "type": "quantitative", "title": "USD", "axis": {"format": DOLLARS}},
            "tooltip": [{"field": "Day", "type": "ordinal"}, {"field": "USD", "type": "quantitative", "format": CENTS}],
        },
    }
