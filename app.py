"""labeltool's Streamlit entry point: page setup, the shared sidebar, and navigation.

Each screen lives in app_pages/; they are thin over the labeltool core. The database comes
from $LABELTOOL_DB (set by `labeltool serve` / `make run`), migrated once per process.
"""

import streamlit as st

from app_pages.common import (
    database,
    needs_sign_in,
    sidebar_project_and_reviewer,
    sign_in_screen,
)
from app_pages.navigation import note_page

st.set_page_config(page_title="labeltool: error analysis", page_icon="🔎", layout="wide")

database()  # connect and migrate before any page runs (cached for the process)

pages = [
    st.Page("app_pages/review.py", title="Review", icon="🏷️", default=True),
    st.Page("app_pages/gallery.py", title="Gallery", icon="🖼️", url_path="gallery"),
    st.Page("app_pages/categories.py", title="Categories", icon="🗂️", url_path="categories"),
    st.Page("app_pages/report.py", title="Ceiling report", icon="📊", url_path="report"),
    st.Page("app_pages/adjudicate.py", title="Adjudicate", icon="🧑‍⚖️", url_path="adjudicate"),
    st.Page("app_pages/compare.py", title="Compare runs", icon="⚖️", url_path="compare"),
    st.Page("app_pages/history.py", title="History", icon="🕘", url_path="history"),
    st.Page("app_pages/projects.py", title="Projects", icon="📁", url_path="projects"),
]
signed_out = needs_sign_in()  # sign-in is configured and nobody is signed in
page = st.navigation(pages, position="hidden" if signed_out else "sidebar")
if signed_out:  # the sign-in screen and nothing else, whichever page the URL names
    sign_in_screen()
    st.stop()
note_page(page.url_path)
sidebar_project_and_reviewer()
page.run()
