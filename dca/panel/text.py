"""Text of ours or of the plan, shown through Streamlit's Markdown as written."""

from __future__ import annotations

import re

# Markdown's emphasis, code, link, table and strike marks, plus `$` (Streamlit reads
# $...$ as a formula) and `<` (HTML). Line-start marks (`-`, `1.`) need no escape: the
# text always follows a label on its line.
_SPECIAL = re.compile(r"([\\`*_{}\[\]()#|~>$<])")


def escape_markdown(text: str) -> str:
    """`text` shown literally, one line: a Log cell may hold a person's typing."""
    return _SPECIAL.sub(r"\\\1", " ".join(text.split()))
