"""Which page the reviewer is on, and whether they have just arrived on it.

A page that follows a link in the URL (the review page's ?example=) must follow it when the
page is opened, not on every rerun: while a reviewer races ahead, the browser sends back URLs
the page itself wrote a moment ago.
"""

from __future__ import annotations

import streamlit as st

_PAGE = "_page"
_ARRIVED = "_arrived_on_page"


def note_page(url_path: str) -> None:
    """Record the page this run shows (app.py calls this once per run, before the page)."""
    st.session_state[_ARRIVED] = st.session_state.get(_PAGE) != url_path
    st.session_state[_PAGE] = url_path


def arrived_on_page() -> bool:
    """Whether this run is the first of the current page: opened from outside (a link, a
    reload) or from another page, rather than a rerun of the same page."""
    return bool(st.session_state.get(_ARRIVED, True))
