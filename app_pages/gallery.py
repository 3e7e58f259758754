"""Gallery: a dense grid of the queue's errors with their tags, to scan many at once and tag a
selection together, by mouse or keyboard (the keys are listed above the tiles)."""

import streamlit as st

from app_pages.common import (
    ProjectInfo,
    action,
    queue_filter_widgets,
    require_project,
    reviewer,
    run_caption,
    show_flash,
    transaction,
)
from app_pages.widgets.gallery_grid import GridAction, gallery_grid, new_actions
from labeltool import labeling, review_queue
from labeltool.categories import list_categories
from labeltool.errors import UnknownCategory, UnknownExample
from labeltool.models import ReachedBy

PAGE_SIZES = [48, 96, 200]
GRID_KEY = "gallery_grid"
#: {browser client id: the highest action number applied}, so no action applies twice.
ACKNOWLEDGED_KEY = "_gallery_acknowledged"
#: How many browser clients' numbers are remembered (one per mount of the grid).
REMEMBERED_CLIENTS = 8
#: What the last actions did, for the grid's status line: {"id": n, "text": ...}.
NOTICE_KEY = "_gallery_notice"

project: ProjectInfo = require_project()
with transaction() as session:
    categories = list_categories(session, project_id=project.id)
    pairs = review_queue.confusion_pairs(session, project_id=project.id, run_id=project.run_id)
queue = queue_filter_widgets(project, pairs=pairs, categories=categories)
by_id = {c.id: c for c in categories}


def _apply(session, *, act: GridAction) -> str:
    """Apply one action from the grid to exactly the examples it names; say what it did."""
    if act.kind == "reviewed":
        labeling.mark_reviewed(
            session,
            example_pks=list(act.pks),
            reviewer=act.reviewer,
            project_id=project.id,
            reached=ReachedBy.BY_HAND,  # picked from the grid: a targeted look
        )
        return f"{_examples(len(act.pks))} marked reviewed"
    if act.category_id not in by_id:
        raise UnknownCategory(f"no category with id {act.category_id} in this project")
    tagged = act.kind == "tag"
    changed = labeling.set_tag(
        session,
        example_pks=act.pks,
        category_id=act.category_id,
        reviewer=act.reviewer,
        tagged=tagged,
    )
    verb = "tagged" if tagged else "untagged"
    return f"{_examples(changed)} {verb} '{by_id[act.category_id].name}'"


def _examples(count: int) -> str:
    return f"{count} example{'' if count == 1 else 's'}"


def _example_id(session, *, pk: int) -> str:
    """The user's id of example `pk`, which must be in the run this queue draws from (the
    review page looks the id up there)."""
    example_id = labeling.get_example_view(session, pk=pk).example_id
    run_id = review_queue.queue_run_id(session, project_id=project.id, queue=queue)
    found = labeling.find_example(
        session, project_id=project.id, example_id=example_id, run_id=run_id
    )
    if found != pk:
        raise UnknownExample(f"example {pk} is not in project '{project.name}'")
    return example_id


def _apply_new_actions() -> int | None:
    """Apply the grid's actions not applied yet, one transaction each; return the pk to open.

    What they did goes to the grid's status line (plain text); a refused one leaves its
    st.error for this run, as every page's actions do.
    """
    acknowledged: dict[str, int] = st.session_state.setdefault(ACKNOWLEDGED_KEY, {})
    client, actions = new_actions(GRID_KEY, acknowledged)
    if client is None or not actions:
        return None
    done, to_open = [], None
    for act in actions:
        acknowledged[client] = act.seq
        if act.kind == "open":
            to_open = act.pks[0]
        else:
            done.append(action(_apply, act=act))
    for stale in list(acknowledged)[:-REMEMBERED_CLIENTS]:
        del acknowledged[stale]
    if any(done):
        number = st.session_state.get(NOTICE_KEY, {}).get("id", 0) + 1
        st.session_state[NOTICE_KEY] = {"id": number, "text": " · ".join(filter(None, done))}
    return to_open


def _open(pk: int) -> None:
    """Show example `pk` on the review page of this project (the reviewer's name stays)."""
    example_id = action(_example_id, pk=pk)
    if example_id is None:
        return  # refused: the flash says why
    # The review page shows the example its URL names (a deep link); switch_page drops the
    # URL's query, so the link goes along.
    st.switch_page(
        "app_pages/review.py", query_params={"project": project.name, "example": example_id}
    )


to_open = _apply_new_actions()
if to_open is not None:
    _open(to_open)

show_flash()
run_caption(project, queue)
who = reviewer()

with transaction() as session:
    total = review_queue.queue_count(session, project_id=project.id, queue=queue)
# One short row (the labels are in the values and the text beside them), so the tiles
# start high on the screen.
top = st.columns([1, 1, 5], vertical_alignment="center")
page_size = top[0].selectbox(
    "Per page",
    PAGE_SIZES,
    index=1,
    key="g_page_size",
    label_visibility="collapsed",
    format_func=lambda n: f"{n} per page",
)
pages = max(1, -(-total // page_size))
if st.session_state.get("g_page", 1) > pages:  # the filter or page size shrank the queue
    st.session_state["g_page"] = pages
page = top[1].number_input("Page", 1, pages, 1, key="g_page", label_visibility="collapsed")
top[2].markdown(f"**{total}** errors match the filter · page {page} of {pages}")
if not who:
    st.caption("Enter your name as **Reviewer** in the sidebar to tag.")

with transaction() as session:
    pks = review_queue.queue_ids(
        session,
        project_id=project.id,
        queue=queue,
        offset=(page - 1) * page_size,
        limit=page_size,
    )
    views = labeling.example_views(session, pks=pks)

gallery_grid(
    key=GRID_KEY,
    project=project,
    views=views,
    categories=categories,
    reviewer=who,
    acknowledged=st.session_state.get(ACKNOWLEDGED_KEY, {}),
    notice=st.session_state.get(NOTICE_KEY),
)
