"""Categories: add, rename, recolour, re-key and archive error categories, even mid-review,
and turn frequent confusion pairs into categories with one click.

Once the project has members, only its leads may change its categories (labeltool.roles): the
core refuses anyone else, and the refusal shows here as an error naming the role needed.
"""

import pandas as pd
import streamlit as st

from app_pages.common import (
    ProjectInfo,
    action,
    add_category,
    flash,
    require_project,
    reviewer,
    show_flash,
    transaction,
)
from app_pages.text import plain
from labeltool import labeling, review_queue
from labeltool.categories import (
    PALETTE,
    list_categories,
    update_category,
)

#: The add form's scope choices: the label shown and the scope it sets (None: by its name).
SCOPES = {
    "by its name": None,
    "image: carries over to new runs": "image",
    "error: this run's mistake only": "error",
}
SCOPE_HELP = (
    "An *image* category (blurry, incorrectly labeled) describes the example, so its tags "
    "carry over to every run; an *error* category (dog-as-cat) describes one model's mistake "
    "and stays with its run. By its name: a confusion pair such as dog-as-cat is an error "
    "category, anything else an image category."
)

project: ProjectInfo = require_project()
show_flash()
who = reviewer()

with transaction() as session:
    categories = list_categories(session, project_id=project.id, include_archived=True)
    pairs = review_queue.confusion_pairs(session, project_id=project.id, run_id=project.run_id)
    progress = review_queue.review_progress(session, project_id=project.id, run_id=project.run_id)

st.header("Error categories")
st.caption(
    "Invent categories as you go. Adding one marks the examples already reviewed as "
    "*needs re-review*, because the method says to go back over them."
)


def _add(session) -> None:
    add_category(
        session,
        project_id=project.id,
        name=st.session_state["new_name"],
        description=st.session_state["new_description"],
        shortcut=st.session_state["new_shortcut"] or None,
        colour=st.session_state["new_colour"],
        marks_incorrect_label=st.session_state["new_label"] or None,
        scope=SCOPES[st.session_state["new_scope"]],
        user=reviewer() or None,
    )


with st.form("add_category", clear_on_submit=True, border=True):
    st.markdown("**Add a category**")
    cols = st.columns([3, 4, 1, 1])
    cols[0].text_input("Name", key="new_name", placeholder="e.g. Instagram filter")
    cols[1].text_input("Description", key="new_description")
    cols[2].text_input("Key", key="new_shortcut", max_chars=1, help="One letter or digit")
    cols[3].color_picker("Colour", PALETTE[len(categories) % len(PALETTE)], key="new_colour")
    cols = st.columns([3, 2])
    cols[0].checkbox(
        "Means the dataset's label is wrong (asks for the corrected label)", key="new_label"
    )
    cols[1].selectbox(
        "Scope",
        list(SCOPES),
        key="new_scope",
        help=SCOPE_HELP,
    )
    st.form_submit_button("Add category", type="primary", on_click=action, args=(_add,))

table = pd.DataFrame(
    [
        {
            "id": c.id,
            "name": c.name,
            "description": c.description,
            "key": c.shortcut or "",
            "colour": c.colour,
            "incorrect label": c.marks_incorrect_label,
            "scope": c.scope,
            "archived": c.archived,
        }
        for c in categories
    ],
    columns=["id", "name", "description", "key", "colour", "incorrect label", "scope", "archived"],
)


def _archive_message(name: str, key: str | None) -> str:
    """What archiving a category did: its tags stay, and its key toggles nothing now."""
    freed = f"; its key {key} is free again" if key else ""
    return f"Archived '{name}'{freed}"


def _archive(session) -> None:
    category = next(c for c in categories if c.name == st.session_state["archive_choice"])
    update_category(session, category_id=category.id, archived=True, user=reviewer() or None)
    st.session_state["archive_choice"] = None  # it is no longer one of the choices
    flash("success", _archive_message(category.name, category.shortcut))


def _apply_edits(session) -> None:
    edits = st.session_state["category_table"]["edited_rows"]
    messages = []
    for row, change in edits.items():
        category_id = int(table.iloc[int(row)]["id"])
        before = next(c for c in categories if c.id == category_id)
        key = change.get("key")
        after = update_category(
            session,
            category_id=category_id,
            name=change.get("name"),
            description=change.get("description"),
            shortcut=key or None,
            clear_shortcut=key == "",
            colour=change.get("colour"),
            archived=change.get("archived"),
            marks_incorrect_label=change.get("incorrect label"),
            scope=change.get("scope"),
            user=reviewer() or None,
        )
        if after.archived and not before.archived:
            messages.append(_archive_message(after.name, before.shortcut))
        elif before.archived and not after.archived:
            key_note = f"key {after.shortcut}" if after.shortcut else "no key yet: give it one"
            messages.append(f"Restored '{after.name}' ({key_note})")
    flash("success", "; ".join(messages) if messages else "Categories saved")


if categories:
    st.markdown("**Categories** (edit in place; changes are saved at once)")
    st.data_editor(
        table,
        key="category_table",
        hide_index=True,
        disabled=["id"],
        column_config={
            "id": None,
            "key": st.column_config.TextColumn("key", max_chars=1),
            "colour": st.column_config.TextColumn(
                "colour", help="#rrggbb", validate=r"^#[0-9a-fA-F]{6}$"
            ),
            "scope": st.column_config.SelectboxColumn(
                "scope", options=["image", "error"], required=True, help=SCOPE_HELP
            ),
        },
        on_change=action,
        args=(_apply_edits,),
        width="stretch",
    )
    live = [c.name for c in categories if not c.archived]
    if live:
        left, right = st.columns([3, 1], vertical_alignment="bottom")
        choice = left.selectbox(
            "Archive a category",
            live,
            index=None,
            placeholder="Choose one",
            key="archive_choice",
            help="Its tags stay in the report; its key is freed for another category. "
            "Untick 'archived' in the table to restore it.",
        )
        right.button(
            "Archive",
            key="archive_category",
            disabled=choice is None,
            on_click=action,
            args=(_archive,),
        )

st.subheader("Confusion pairs")
st.caption(
    "true label -as- predicted label, most frequent first. One click makes a pair a "
    "category and tags all its errors."
)
existing = {c.name for c in categories if not c.archived}
for row in pairs.head(12).itertuples(index=False):
    left, middle, right = st.columns([3, 1, 2])
    left.markdown(f"**{plain(row.confusion_pair)}**")
    middle.markdown(f"{row.errors} errors")
    if row.confusion_pair in existing:
        right.caption("already a category")
    else:
        right.button(
            f"Make '{plain(row.confusion_pair)}' a category",
            key=f"pair_{row.label}_{row.prediction}",
            disabled=not who,
            on_click=action,
            args=(labeling.category_from_confusion_pair,),
            kwargs={
                "project_id": project.id,
                "label": row.label,
                "prediction": row.prediction,
                "reviewer": who,
                "run_id": project.run_id,
                "success": f"'{row.confusion_pair}' is now a category; its errors are tagged",
            },
        )
if not who:
    st.caption("Enter your name as **Reviewer** in the sidebar to tag pairs.")
if progress.misclassified == 0:
    st.info("No misclassified dev examples in this project.")
