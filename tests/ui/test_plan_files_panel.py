"""Hostile plan files in the control panel: the same messages as the CLI, no traceback."""

from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

from tests.conftest import HEADER

APP = Path(__file__).resolve().parents[2] / "app.py"



def panel_with(tmp_path, monkeypatch, content: str) -> AppTest:
    path = tmp_path / "my-plan.csv"
    path.write_text(content)
    monkeypatch.setenv("DCA_PLAN", str(path))
    return AppTest.from_file(str(APP), default_timeout=30).run()


def test_a_huge_cell_is_an_error_on_its_row_in_the_panel(tmp_path, monkeypatch):
    at = panel_with(tmp_path, monkeypatch, HEADER + f"Active,SPY,1000,Weekly,,s1\nActive,VTI,1000,Monthly,{'x' * 1_048_576},v1\n")
    assert not at.exception
    (error,) = [e.value for e in at.error]
    assert error.startswith("Row 3: the cell in column E holds 1,048,576 characters") and len(error) < 300
    shown = at.dataframe[0].value
    assert list(shown["Stock Symbol"]) == ["SPY", "VTI"]
    assert shown["Log"][1].endswith("… (1,048,576 characters)") and len(shown["Log"][1]) < 600


def test_an_unterminated_quote_is_a_plan_error_in_the_panel(tmp_path, monkeypatch):
    at = panel_with(tmp_path, monkeypatch, HEADER + 'Active,"SPY,1000,Weekly,,\nActive,VTI,1000,Monthly,,v1\n')
    assert not at.exception
    (error,) = [e.value for e in at.error]
    assert "the quote that opens on line 2 (row 2, column B) is never closed" in error
    assert not at.dataframe
