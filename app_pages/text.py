"""User text on the page as text: ids, labels, names and comments are never Markdown or HTML."""

from __future__ import annotations

import re

#: Every character Markdown (as Streamlit renders it) gives a meaning to.
_MARKDOWN = re.compile(r"([\\`*_{}\[\]()<>#+\-.!|~:$=])")


def plain(text: object) -> str:
    """`text` escaped so that st.markdown, st.error and friends show it exactly as written."""
    escaped = _MARKDOWN.sub(r"\\\1", str(text))
    return escaped.replace("\n", "  \n")
