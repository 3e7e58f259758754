"""User text on the page as text: ids, labels, names and comments are never Markdown or HTML.

Streamlit reads Markdown (with GitHub's extensions and its own `:colour[…]` and `:emoji:`
directives) in st.markdown, st.error and friends and in widget labels. `plain` escapes every
character that could start markup there, so a category named `**x**`, an example id
`[x](https://…)` or a reviewer called `<b>` shows exactly as typed, and no link is made.
"""

from __future__ import annotations

import re

#: Characters that start inline markup anywhere in a line.
_INLINE = re.compile(r"([\\`*_\[\]<>|~$&])")
#: `:` before a letter or `/` starts a directive (`:red[`, `:smile:`) or a bare URL (`https:/`).
_COLON = re.compile(r":(?=[A-Za-z/])")
#: What a linkifier turns into a link even with Markdown escaped (Streamlit's widget labels
#: link bare URLs after resolving escapes): `scheme://`, `www.` and `name@host`. An invisible
#: WORD JOINER (U+2060) keeps them from being read as addresses.
_LINKABLE = re.compile(r"(?i)(://|\bwww(?=\.)|@(?=\w))")
JOINER = "\u2060"
#: What makes a line a heading, quote, list item, rule or setext underline.
_LINE_START = re.compile(r"(?m)^(\s*)([#>+\-=])")
#: What makes a line an ordered list item ("1." or "1)").
_ORDERED = re.compile(r"(?m)^(\s*\d+)([.)])")


def plain(text: object) -> str:
    """`text` escaped so that st.markdown, st.error and widget labels show it as written."""
    escaped = _LINKABLE.sub(lambda m: m.group(0)[0] + JOINER + m.group(0)[1:], str(text))
    escaped = _INLINE.sub(r"\\\1", escaped)
    escaped = _COLON.sub(r"\\:", escaped)
    escaped = _LINE_START.sub(lambda m: m.group(1) + "\\" + m.group(2), escaped)
    escaped = _ORDERED.sub(lambda m: m.group(1) + "\\" + m.group(2), escaped)
    return escaped.replace("\n", "  \n")
