"""Table heights in whole rows. Streamlit's own choice for a table of more than ten rows
is a fixed box that cuts the last visible row in half, which reads as a cut-off table
rather than one to scroll. Its grid draws 35-pixel rows under a 35-pixel header inside a
3-pixel border, so a height of whole rows is (rows + 1) * 35 + 3."""

from __future__ import annotations

import streamlit as st

ROW_PX = 35
BORDER_PX = 3
MOST_ROWS = 15  # taller tables scroll, their box showing exactly this many


def whole_rows(count: int, most: int = MOST_ROWS, extra: int = 0) -> int:
    """The height of a table of `count` rows (plus `extra`: a data editor's add-row line),
    showing at most `most` of them."""
    return (min(max(count, 1) + extra, most + extra) + 1) * ROW_PX + BORDER_PX


def show_table(frame, *, where=None, most: int = MOST_ROWS, **options):
    """`st.dataframe` (in `where`, a column or container, else the page) with a height of
    whole rows."""
    return (where or st).dataframe(frame, height=whole_rows(len(frame), most), **options)
