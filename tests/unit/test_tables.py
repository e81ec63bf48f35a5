"""Table heights in whole rows (dca.panel.tables): Streamlit's grid is a 35-pixel header
and 35-pixel rows inside a 3-pixel border."""

from dca.panel.tables import whole_rows


def test_a_short_table_is_exactly_as_tall_as_its_rows():
    assert whole_rows(4) == 5 * 35 + 3
    assert whole_rows(0) == 2 * 35 + 3  # an empty table keeps one row's room for "empty"


def test_a_long_table_shows_whole_rows_only():
    for count in (16, 17, 2_000):
        height = whole_rows(count, most=15)
        assert height == 16 * 35 + 3 and (height - 3) % 35 == 0


def test_a_data_editor_keeps_its_add_row_line():
    assert whole_rows(4, extra=1) == 6 * 35 + 3
    assert whole_rows(500, most=20, extra=1) == 22 * 35 + 3
