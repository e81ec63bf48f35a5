from dca.panel.text import escape_markdown


def test_a_log_line_is_shown_as_written():
    line = "2026-11-30 09:01 ET · filled · 1 SPY @ $490.33 = $490.33 · ref dca-r4_9 · *SIMULATED*"
    escaped = escape_markdown(line)
    assert "\\$490.33 = \\$490.33" in escaped and "\\*SIMULATED\\*" in escaped and "r4\\_9" in escaped
    # Unescaping gives the line back: nothing was lost.
    assert escaped.replace("\\", "") == line


def test_a_cell_with_newlines_and_html_stays_one_literal_line():
    assert escape_markdown("a\n# b <script>") == "a \\# b \\<script\\>"


def test_the_last_outcome_is_read_from_a_runs_log_line_only():
    from dca.plan_editing import last_outcome

    assert last_outcome("2027-03-01 09:01 ET · filled · 1 SPY @ $5 · SIMULATED") == "filled (2027-03-01)"
    assert last_outcome("2027-03-08 09:01 ET · missed · not run") == "missed (2027-03-08)"
    for junk in ("", "typed by hand", "a · b · c", "2027-03-01 · filled", "x ET · bought · y", " · " * 1000):
        assert last_outcome(junk) == "", junk
