"""History: the project's audit trail. Who changed which tag, comment, corrected label, review
state, category or setting, when, from what to what; filtered by example, user and kind,
downloadable as CSV, and an undo of one's own last change."""

import streamlit as st

from app_pages.common import (
    ProjectInfo,
    action,
    flash,
    require_project,
    reviewer,
    show_flash,
    transaction,
)
from app_pages.text import plain
from labeltool import audit
from labeltool.export import to_csv

#: Rows the page shows at most (the CSV has them all).
SHOWN = 1_000

project: ProjectInfo = require_project()
show_flash()
st.header("History")
st.caption(
    "Every change to tags, reviews, review states, comments, corrected labels, categories and "
    "settings, newest first: who made it, when, the old and the new value. Nothing here is ever "
    "changed or removed; an undo is a change of its own that names the change it undoes."
)

with transaction() as session:
    users = audit.users(session, project_id=project.id)
left, middle, right = st.columns([2, 2, 3])
example_id = left.text_input("Example id", key="h_example", help="Its changes in every run.")
by = middle.selectbox("User", ["everyone", *users], key="h_user")
kinds = right.multiselect("Kind of change", [k.value for k in audit.Kind], key="h_kinds")

filters = {
    "project_id": project.id,
    "example_id": example_id.strip() or None,
    "user": None if by == "everyone" else by,
    "kinds": kinds,
}
with transaction() as session:
    table = audit.history(session, **filters, limit=SHOWN + 1)

# --- undo ----------------------------------------------------------------------------------
me = reviewer()
with transaction() as session:
    last = audit.last_change(session, project_id=project.id, user=me) if me else None
    mine = audit.history(session, project_id=project.id, change=last) if last else None
undo_box = st.container(border=True)
if not me:
    undo_box.caption("Enter your name in the sidebar to undo your own last change.")
elif last is None:
    undo_box.caption(plain(f"{me} has no change to undo in this project."))
else:
    first = mine.iloc[-1]
    what = "" if first["what"] == first["change"] else f" {first['what']}"
    where = f" on example {first['example_id']} (run {first['run']})" if first["example_id"] else ""
    undo_box.write(
        plain(
            f"Your last change: {first['change']}{what}{where}, "
            f"{len(mine)} value{'s' if len(mine) != 1 else ''}, at {first['at']:%Y-%m-%d %H:%M:%S}."
        )
    )

    def _undo() -> None:
        undone = action(audit.undo_last, project_id=project.id, user=me)
        if undone is not None:
            flash("success", f"Undid {undone.summary}.")

    undo_box.button("Undo my last change", key="h_undo", on_click=_undo, shortcut="ctrl+z")

# --- the trail -----------------------------------------------------------------------------
if table.empty:
    st.info("No changes recorded" + (" for these filters." if example_id or kinds else " yet."))
    st.stop()
st.caption(
    f"The latest {SHOWN:,} changes are shown; the CSV has them all."
    if len(table) > SHOWN
    else f"{len(table):,} change{'s' if len(table) != 1 else ''} of one value."
)
st.dataframe(
    table.head(SHOWN),
    hide_index=True,
    width="stretch",
    column_config={
        "at": st.column_config.DatetimeColumn("at", format="YYYY-MM-DD HH:mm:ss"),
        "change_id": None,
        "undoes": st.column_config.TextColumn("undoes", help="The change this one undoes."),
        "whose": st.column_config.TextColumn(
            "whose", help="Whose tag or review, if not the user's."
        ),
    },
)


def _whole_csv() -> str:
    with transaction() as session:
        whole = audit.history(session, **filters)
    return to_csv(whole.assign(at=whole["at"].map(lambda at: at.isoformat())))


st.download_button(
    "Download CSV",
    data=_whole_csv,  # made when clicked: the whole trail, not on every rerun
    file_name=f"{project.name}-history.csv",
    mime="text/csv",
    key="h_csv",
)
