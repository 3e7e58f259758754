"""Gallery: a grid of the queue's errors with their tags, to scan many at once and tag a
selection together."""

import html

import streamlit as st

from app_pages.common import (
    ProjectInfo,
    action,
    queue_filter_widgets,
    require_project,
    reviewer,
    show_flash,
    show_image,
    transaction,
)
from labeltool import labeling, review_queue
from labeltool.categories import list_categories

COLUMNS = 4

project: ProjectInfo = require_project()
with transaction() as session:
    categories = list_categories(session, project_id=project.id)
    pairs = review_queue.confusion_pairs(session, project_id=project.id)
queue = queue_filter_widgets(project, pairs=pairs, categories=categories)
by_id = {c.id: c for c in categories}

top = st.columns([1, 1, 4])
page_size = top[0].selectbox("Per page", [24, 48, 96], key="g_page_size")
with transaction() as session:
    total = review_queue.queue_count(session, project_id=project.id, queue=queue)
pages = max(1, -(-total // page_size))
page = top[1].number_input("Page", 1, pages, 1, key="g_page")
top[2].markdown(f"**{total}** errors match the filter · page {page} of {pages}")

with transaction() as session:
    pks = review_queue.queue_ids(
        session,
        project_id=project.id,
        queue=queue,
        offset=(page - 1) * page_size,
        limit=page_size,
    )
    views = labeling.example_views(session, pks=pks)


def _selected() -> list[int]:
    return [v.pk for v in views if st.session_state.get(f"sel_{v.pk}")]


def _select_all(value: bool) -> None:
    for v in views:
        st.session_state[f"sel_{v.pk}"] = value


def _bulk(session, *, category_id: int, tagged: bool, who: str) -> None:
    changed = labeling.set_tag(
        session, example_pks=_selected(), category_id=category_id, reviewer=who, tagged=tagged
    )
    verb = "tagged" if tagged else "untagged"
    st.session_state["_flash"] = (
        "success",
        f"{changed} examples {verb} '{by_id[category_id].name}'",
    )


def _bulk_reviewed(session, *, who: str) -> None:
    chosen = _selected()
    labeling.mark_reviewed(session, example_pks=chosen, reviewer=who)
    _select_all(False)
    st.session_state["_flash"] = ("success", f"{len(chosen)} examples marked reviewed")


def _open(pk: int, example_id: str) -> None:
    st.session_state["current_pk"] = pk
    st.session_state["linked_example"] = example_id
    # The review page starts its queue afresh when the filter differs from the one it last
    # saw; the filter set here is the one it will use, so it keeps the example opened.
    st.session_state["queue"] = queue


show_flash()
who = reviewer()
with st.container(border=True):
    bar = st.columns([2, 1, 1, 1, 1, 1])
    names = {c.name: c.id for c in categories}
    chosen_name = bar[0].selectbox(
        "Category for the selection",
        list(names) or ["(none yet)"],
        key="g_category",
        label_visibility="collapsed",
    )
    ready = bool(who and names)
    bar[1].button(
        "Tag selected",
        key="g_tag",
        type="primary",
        disabled=not ready,
        on_click=action,
        args=(_bulk,),
        kwargs={"category_id": names.get(chosen_name), "tagged": True, "who": who},
    )
    bar[2].button(
        "Untag selected",
        key="g_untag",
        disabled=not ready,
        on_click=action,
        args=(_bulk,),
        kwargs={"category_id": names.get(chosen_name), "tagged": False, "who": who},
    )
    bar[3].button(
        "Mark reviewed",
        key="g_reviewed",
        disabled=not who,
        on_click=action,
        args=(_bulk_reviewed,),
        kwargs={"who": who},
    )
    bar[4].button("Select page", key="g_all", on_click=_select_all, args=(True,))
    bar[5].button("Clear", key="g_none", on_click=_select_all, args=(False,))
    if not who:
        st.caption("Enter your name as **Reviewer** in the sidebar to tag.")

for start in range(0, len(views), COLUMNS):
    for column, view in zip(st.columns(COLUMNS), views[start : start + COLUMNS], strict=False):
        with column, st.container(border=True):
            show_image(project, view.image, min_side=128, width="stretch")
            confidence = f" · {view.confidence:.0%}" if view.confidence is not None else ""
            st.markdown(f"`{view.example_id}`  \n**{view.confusion_pair}**{confidence}")
            chips = [
                f'<span style="background:{by_id[c].colour};color:white;border-radius:0.5rem;'
                f'padding:0 0.4rem;margin-right:0.2rem;font-size:0.8rem">'
                f"{html.escape(by_id[c].name)}</span>"
                for c in sorted({c for ids in view.tags_by_reviewer.values() for c in ids})
                if c in by_id
            ]
            st.markdown(
                " ".join(chips) or "<span style='opacity:0.5'>no tags</span>",
                unsafe_allow_html=True,
            )
            pick, go = st.columns(2)
            pick.checkbox("Select", key=f"sel_{view.pk}")
            if go.button(
                "Open", key=f"open_{view.pk}", on_click=_open, args=(view.pk, view.example_id)
            ):
                # switch_page drops the URL's query, so pass the deep link along.
                st.switch_page(
                    "app_pages/review.py",
                    query_params={"project": project.name, "example": view.example_id},
                )
