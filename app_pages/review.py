"""Review: one misclassified dev example at a time, tagged from the keyboard.

Keys: each category's key toggles it, n saves and moves to the next example, p goes back,
s skips. Every change is saved the moment it is made.
"""

import streamlit as st

from app_pages.common import (
    ProjectInfo,
    action,
    add_category,
    queue_filter_widgets,
    require_project,
    reviewer,
    show_flash,
    show_image,
    transaction,
)
from labeltool import labeling, review_queue
from labeltool.categories import list_categories
from labeltool.errors import UnknownExample
from labeltool.models import confusion_pair_name
from labeltool.review_queue import QueueFilter

project: ProjectInfo = require_project()

with transaction() as session:
    categories = list_categories(session, project_id=project.id)
    pairs = review_queue.confusion_pairs(session, project_id=project.id)
queue: QueueFilter = queue_filter_widgets(project, pairs=pairs, categories=categories)
if queue.confusion_pair is not None:
    pair_name = confusion_pair_name(*queue.confusion_pair)
    if all(c.name.lower() != pair_name.lower() for c in categories):
        st.sidebar.button(
            f"Make '{pair_name}' a category",
            key="pair_to_category",
            disabled=not reviewer(),
            help="Creates the category and tags every error of this pair with it.",
            on_click=action,
            args=(labeling.category_from_confusion_pair,),
            kwargs={
                "project_id": project.id,
                "label": queue.confusion_pair[0],
                "prediction": queue.confusion_pair[1],
                "reviewer": reviewer(),
                "success": f"'{pair_name}' is now a category; its errors are tagged",
            },
        )

# --- which example: deep link first, then the one we were on, else the queue's first ----
with transaction() as session:
    linked = st.query_params.get("example")
    newly_linked = bool(linked) and st.session_state.get("linked_example") != linked
    if newly_linked:
        st.session_state["linked_example"] = linked
        try:
            st.session_state["current_pk"] = labeling.find_example(
                session, project_id=project.id, example_id=linked
            )
        except UnknownExample as exc:
            st.error(str(exc))
    if st.session_state.get("queue") != queue:  # the filter changed: start its queue afresh
        # The URL keeps the example we were on; only a link opened just now wins.
        if "queue" in st.session_state and not newly_linked:
            st.session_state.pop("current_pk", None)
            st.query_params.pop("example", None)
            st.session_state.pop("linked_example", None)
        st.session_state["queue"] = queue
    current_pk = st.session_state.get("current_pk")
    if current_pk is None:
        current_pk = review_queue.first_in_queue(session, project_id=project.id, queue=queue)
        st.session_state["current_pk"] = current_pk
    progress = review_queue.review_progress(session, project_id=project.id)
    in_queue = review_queue.queue_count(session, project_id=project.id, queue=queue)
    view = None
    if current_pk is not None:
        try:
            view = labeling.get_example_view(session, pk=current_pk)
            position = review_queue.queue_position(
                session, project_id=project.id, queue=queue, pk=current_pk
            )
        except UnknownExample:
            st.session_state.pop("current_pk", None)
            st.rerun()


def _go_to(session, pk: int | None) -> None:
    """Show example `pk` next, and put it in the URL so the link can be shared."""
    st.session_state["current_pk"] = pk
    if pk is not None:
        example_id = labeling.get_example_view(session, pk=pk).example_id
        st.query_params["example"] = example_id
        st.session_state["linked_example"] = example_id


def _advance(session, *, pk: int) -> None:
    following = review_queue.next_in_queue(session, project_id=project.id, queue=queue, after=pk)
    if following is None:  # wrap round to what is left at the start of the queue
        following = review_queue.first_in_queue(session, project_id=project.id, queue=queue)
        if following == pk:
            following = None
    st.session_state.setdefault("history", []).append(pk)
    _go_to(session, following)


def _save_and_next(session, *, pk: int, who: str) -> None:
    labeling.mark_reviewed(session, example_pks=[pk], reviewer=who)
    _advance(session, pk=pk)


def _skip(session, *, pk: int) -> None:
    labeling.skip_example(session, example_pk=pk)
    _advance(session, pk=pk)


def _previous(session) -> None:
    history = st.session_state.get("history", [])
    if history:
        _go_to(session, history.pop())
        return
    before = review_queue.previous_in_queue(
        session, project_id=project.id, queue=queue, before=st.session_state["current_pk"]
    )
    if before is not None:
        _go_to(session, before)


def _add_category(session) -> None:
    add_category(
        session,
        project_id=project.id,
        name=st.session_state["quick_name"],
        shortcut=st.session_state["quick_key"] or None,
    )


def _save_comment(session, *, pk: int) -> None:
    labeling.set_comment(session, example_pk=pk, comment=st.session_state[f"comment_{pk}"])


def _save_corrected(session, *, pk: int) -> None:
    choice = st.session_state[f"corrected_{pk}"]
    labeling.set_corrected_label(
        session, example_pk=pk, corrected_label=None if choice == "—" else choice
    )


# --- the screen --------------------------------------------------------------------------
show_flash()
who = reviewer()
reviewed_share = progress.reviewed / progress.misclassified if progress.misclassified else 0.0
st.progress(
    reviewed_share,
    text=f"**{progress.reviewed} of {progress.misclassified}** misclassified dev examples "
    f"reviewed · {progress.guidance}",
)
st.caption(
    "The method's guide: "
    + " · ".join(
        f"{'✅' if progress.reviewed >= size else '⬜'} {size} {words}"
        for size, words in review_queue.SAMPLE_GUIDE
    )
)
if project.eyeball_fraction is not None:
    st.caption(
        f"👁️ Reviewing the eyeball part of the dev set ({project.eyeball_fraction:.0%} of it); "
        "the rest is the blackbox part (see the Ceiling report)."
    )
if progress.needs_rereview:
    st.caption(
        f"🔁 {progress.needs_rereview} reviewed examples need re-review since a category was "
        "added: choose *needs re-review* in the queue's review state to go over them."
    )
if not who:
    st.warning("Enter your name as **Reviewer** in the sidebar: every tag records who made it.")

if view is None:
    if progress.misclassified == 0:
        st.success("This project has no misclassified dev examples.")
    else:
        st.success(
            f"Nothing left in this queue ({in_queue} examples match the filter). "
            "Change the filter in the sidebar to see others, or read the **Ceiling report**."
        )
    st.stop()

st.markdown(
    f"#### Example `{view.example_id}` · {position + 1 if in_queue else '–'} of {in_queue} "
    f"in the queue · *{view.review_state}*"
)
left, right = st.columns([1, 1], gap="large")
with left:
    show_image(project, view.image, min_side=384, caption=view.image)

with right:
    st.markdown(
        f"**True label** `{view.label}` → **predicted** `{view.prediction}` ({view.confusion_pair})"
    )
    if view.confidence is not None:
        st.markdown(f"**Confidence** {view.confidence:.1%}")
    if view.top_probabilities:
        st.dataframe(
            {
                "class": [c for c, _ in view.top_probabilities],
                "probability": [p for _, p in view.top_probabilities],
            },
            column_config={
                "probability": st.column_config.ProgressColumn(
                    "probability", format="percent", min_value=0.0, max_value=1.0
                )
            },
            hide_index=True,
            key="top3",
        )

    st.markdown("**Error categories** (press the key to toggle)")
    mine = view.tags_of(who)
    others = view.tagged_by_others(who)
    label_category_on = False
    for category in categories:
        on = category.id in mine
        label_category_on |= on and category.marks_incorrect_label
        extra = f" · also {', '.join(others[category.id])}" if category.id in others else ""
        st.button(
            f"{'✅' if on else '⬜'} {category.name}{extra}",
            key=f"cat_{category.id}",
            shortcut=category.shortcut or None,
            type="primary" if on else "secondary",
            help=category.description or None,
            disabled=not who,
            width="stretch",
            on_click=action,
            args=(labeling.toggle_tag,),
            kwargs={"example_pk": view.pk, "category_id": category.id, "reviewer": who},
        )
    if not categories:
        st.info("No categories yet: add one here or on the **Categories** page.")
    with st.popover("➕ New category", width="stretch"), st.form("quick_category", border=False):
        st.text_input("Name", key="quick_name", placeholder="e.g. Instagram filter")
        st.text_input("Key", key="quick_key", max_chars=1, help="One letter or digit (optional)")
        st.form_submit_button(
            "Add category",
            on_click=action,
            args=(_add_category,),
            help="Examples already reviewed will be marked 'needs re-review'.",
        )

    if label_category_on or view.corrected_label:
        options = ["—"] + [c for c in project.class_names if c != view.label]
        current = view.corrected_label if view.corrected_label in options else "—"
        st.selectbox(
            "Corrected label (the right label for this incorrectly labeled example)",
            options,
            index=options.index(current),
            key=f"corrected_{view.pk}",
            on_change=action,
            args=(_save_corrected,),
            kwargs={"pk": view.pk},
        )
    st.text_area(
        "Comment",
        value=view.comment,
        key=f"comment_{view.pk}",
        placeholder="What do you notice? (saved when you leave the box)",
        height=80,
        on_change=action,
        args=(_save_comment,),
        kwargs={"pk": view.pk},
    )
    back, skip, forward = st.columns(3)
    back.button(
        "← Back", key="previous", shortcut="p", on_click=action, args=(_previous,), width="stretch"
    )
    skip.button(
        "Skip",
        key="skip",
        shortcut="s",
        on_click=action,
        args=(_skip,),
        kwargs={"pk": view.pk},
        width="stretch",
    )
    forward.button(
        "Save & next",
        key="save_next",
        shortcut="n",
        type="primary",
        disabled=not who,
        on_click=action,
        args=(_save_and_next,),
        kwargs={"pk": view.pk, "who": who},
        width="stretch",
    )
    keys = " · ".join(f"**{c.shortcut}** {c.name}" for c in categories if c.shortcut)
    st.caption(f"Keys: {keys} · **n** save & next · **p** previous · **s** skip")
