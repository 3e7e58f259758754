"""Adjudicate: the errors two reviewers tagged differently, one at a time, for the lead to
settle. Each reviewer's categories side by side, the final ones prefilled with what they agreed
on; saving the decision moves on to the next. Others see the list, read-only."""

import streamlit as st

from app_pages.common import (
    ProjectInfo,
    action,
    flash,
    require_project,
    reviewer,
    run_caption,
    show_flash,
    show_image,
    transaction,
)
from app_pages.text import plain
from labeltool import double_review
from labeltool.categories import list_categories
from labeltool.roles import Role, is_open, role_of

#: The image's shorter side on this page, in pixels.
IMAGE_SIDE = 384
#: Session-state key of how many disagreements the lead has put off for now.
SKIPPED_KEY = "adjudicate_skipped"

project: ProjectInfo = require_project()
who = reviewer()
show_flash()

st.header("Adjudicate")
run_caption(project)
st.caption(
    "Errors two or more reviewers reviewed and tagged differently, on a category every one of "
    "them could have used. The lead decides each one's categories; the Ceiling report can then "
    "count by the lead's decisions (its default), by consensus or by any reviewer's tag."
)

with transaction() as session:
    # Worked out once a rerun: the status counts them too.
    found = double_review.disagreements(
        session, project_id=project.id, run_id=project.run_id, include_adjudicated=True
    )
    waiting = [d for d in found if not d.adjudicated]
    progress = double_review.status(
        session, project_id=project.id, run_id=project.run_id, found=found
    )
    categories = list_categories(session, project_id=project.id)
    may_decide = is_open(session, project_id=project.id) or (
        role_of(session, project.id, who) is Role.LEAD
    )
st.caption(plain(progress.sentence) + ".")

if not waiting:
    st.success("No disagreement awaits adjudication.")
    st.stop()

if not may_decide:
    st.info(
        "Adjudication is the lead's: this list is read-only. "
        + (
            f"{plain(who)} is not a lead of this project."
            if who
            else "Enter your name as **Reviewer** in the sidebar if you are its lead."
        )
    )
    st.dataframe(double_review.to_frame(waiting), key="disagreements", hide_index=True)
    st.stop()

# --- one disagreement at a time ----------------------------------------------------------------
skipped = st.session_state.get(SKIPPED_KEY, 0) % len(waiting)
current = waiting[skipped]
left, right = st.columns([1, 1])
with left:
    show_image(project, current.image, min_side=IMAGE_SIDE)
with right:
    st.markdown(
        f"**{plain(current.example_id)}** · {plain(current.confusion_pair)} · "
        f"{skipped + 1} of {len(waiting)} awaiting"
    )
    columns = st.columns(len(current.tags))
    for column, (name, tagged) in zip(columns, current.tags.items(), strict=True):
        column.markdown(f"**{plain(name)}**")
        column.text("\n".join(tagged) if tagged else "(no category)")
    st.caption(
        "They differ on: "
        + ", ".join(plain(name) for name in current.differing)
        + ". Agreed on: "
        + (", ".join(plain(name) for name in current.consensus) or "nothing")
        + "."
    )
    names = [c.name for c in categories]
    choice_key = f"adjudicate_{current.example_pk}"

    def _save(session) -> None:
        ids = {c.name: c.id for c in categories}
        chosen = st.session_state.get(choice_key) or []
        decided = double_review.adjudicate(
            session,
            example_pk=current.example_pk,
            category_ids=[ids[name] for name in chosen],
            lead=who or None,
        )
        flash(
            "success",
            f"Decided '{current.example_id}': {', '.join(decided) or 'no category'}",
        )

    with st.form("adjudicate_form", border=False):
        st.multiselect(
            "Final categories",
            names,
            default=[name for name in current.consensus if name in names],
            key=choice_key,
            help="Prefilled with what every reviewer agreed on. None is a decision too.",
        )
        st.form_submit_button("Save decision", type="primary", on_click=action, args=(_save,))
    if len(waiting) > 1 and st.button("Skip for now", key="adjudicate_skip"):
        st.session_state[SKIPPED_KEY] = skipped + 1
        st.rerun()

st.subheader("All awaiting adjudication")
st.dataframe(double_review.to_frame(waiting), key="disagreements", hide_index=True)
