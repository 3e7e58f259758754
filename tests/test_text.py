"""User text is shown as text: `plain` escapes what Markdown (as Streamlit renders it, with
GitHub's autolinks and Streamlit's `:colour[...]` and `:emoji:` directives) would read, checked
with a real CommonMark renderer as the oracle."""

from __future__ import annotations

import html
import re

import pytest
from markdown_it import MarkdownIt

from app_pages.text import JOINER, plain

#: CommonMark with GitHub's tables, strikethrough and bare-URL autolinks, as Streamlit uses.
RENDER = MarkdownIt("commonmark", {"linkify": True}).enable(["table", "strikethrough", "linkify"])

HOSTILE = [
    "[x](https://evil.example)",
    "**bold** _it_ `code` ~~gone~~",
    "<b>html</b> <img src=x onerror=alert(1)>",
    "https://evil.example/path and www.evil.example",
    ":red[coloured] :smile: :material/home:",
    "# heading",
    "- item",
    "1. first",
    "> quote",
    "a | b\n--|--\nc | d",
    "$x^2$ and $$y$$",
    "=cmd|' /C calc'!A0",
    "back\\slash \\*kept\\*",
    "&amp; &lt;b&gt;",
    "dog-as-cat 8-as-1 row 3: column 'x'",
    "![img](https://evil.example/a.png)",
    "ann@corp.example",
    "ftp://files.example/x",
]


def shown_text(markdown: str) -> str:
    """What a reader sees of `markdown`: rendered, tags and invisible word joiners dropped,
    white space folded; fails if the rendering has any markup (a link, emphasis, code,
    heading, list, quote, table...)."""
    rendered = RENDER.render(markdown)
    markup = re.search(r"<(a|strong|em|code|h\d|li|blockquote|table|img|del|s)\b", rendered)
    assert not markup, rendered
    text = html.unescape(re.sub(r"<[^>]+>", "", rendered)).replace(JOINER, "")
    return " ".join(text.split())


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_text_renders_exactly_as_written(text: str) -> None:
    """Escaped text renders to the same characters, with no link, emphasis, code, heading,
    list, quote, table or image."""
    assert shown_text(plain(text)) == " ".join(text.split())


def test_plain_text_stays_readable() -> None:
    """Ordinary names and sentences come through unchanged: only markup is escaped."""
    for text in [
        "blurry",
        "incorrectly labeled",
        "Ann Smith",
        "2 reviewed examples need re-review",
    ]:
        assert plain(text) == text
