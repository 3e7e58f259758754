"""Gallery: a dense grid of the queue's errors with their tags, to scan many at once and tag a
selection together, by mouse or keyboard (the keys are listed above the tiles).

Three views of the same grid:
- *Queue*: the sidebar filter's errors, a page at a time;
- *Clusters*: the untagged errors the filter matches, grouped by look (their embeddings,
  labeltool.similar), each group drawn as a sheet of its members; open one to tag it, or name
  it as a new category and tag all its members at once;
- *More like this* (`?similar=<example id>`, from a tile, the review screen or a link): the
  errors nearest to one example.
Whatever the view, tagging from the grid never marks an example reviewed by itself; marking
reviewed here counts as a targeted look ("by hand"), and an example first reached through the
random queue keeps counting as random, so the report's estimate stays honest.
"""

from __future__ import annotations

import dataclasses
import io

import numpy as np
import streamlit as st
from PIL import Image
from sqlalchemy import func, select

from app_pages.common import (
    ProjectInfo,
    action,
    database,
    flash,
    queue_filter_widgets,
    require_project,
    reviewer,
    run_caption,
    show_flash,
    sign_in_configured,
    transaction,
)
from app_pages.text import plain
from app_pages.widgets.gallery_grid import GridAction, gallery_grid, new_actions
from labeltool import labeling, review_actions, review_queue, similar
from labeltool.categories import create_category, list_categories
from labeltool.errors import InvalidInput, UnknownCategory, UnknownExample
from labeltool.images import ImageUnavailable
from labeltool.models import Embedding, Example, ReachedBy
from labeltool.renditions import cached_rendition
from labeltool.review_queue import NO_CATEGORY, QueueFilter
from labeltool.thumbnails import contact_sheet

PAGE_SIZES = [48, 96, 200]
GRID_KEY = "gallery_grid"
#: {browser client id: the highest action number applied}, so no action applies twice.
ACKNOWLEDGED_KEY = "_gallery_acknowledged"
#: How many browser clients' numbers are remembered (one per mount of the grid).
REMEMBERED_CLIENTS = 8
#: What the last actions did, for the grid's status line: {"id": n, "text": ...}.
NOTICE_KEY = "_gallery_notice"
#: {(project id, run id): the clustering shown: {"clusters": [...], "of": n, "asked": k}}.
CLUSTERS_KEY = "_gallery_clusters"
#: The cluster open in the Clusters view (its number), or absent for the overview.
OPEN_CLUSTER_KEY = "g_cluster"
QUEUE, CLUSTERS = "Queue", "Clusters"
#: Members drawn on a cluster's sheet (the representative first).
SHEET_MEMBERS = 9

project: ProjectInfo = require_project()
with transaction() as session:
    categories = list_categories(session, project_id=project.id)
    pairs = review_queue.confusion_pairs(session, project_id=project.id, run_id=project.run_id)
queue = queue_filter_widgets(project, pairs=pairs, categories=categories)
by_id = {c.id: c for c in categories}


def _apply(session, *, act: GridAction) -> str:
    """Apply one action from the grid to exactly the examples it names; say what it did."""
    if act.kind == "accept":
        return _accept(session, pks=act.pks, reviewer=act.reviewer)
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


def _accept(session, *, pks, reviewer: str) -> str:
    """Tag each example with the categories suggested for it now (read again here: the
    browser's list may be stale), recorded as accepted suggestions."""
    suggested = labeling.suggested_categories(session, pks=list(pks), reviewer=reviewer)
    by_category: dict[int, list[int]] = {}
    for pk in pks:
        for suggestion in suggested.get(pk, []):
            by_category.setdefault(suggestion.category_id, []).append(pk)
    changed = sum(
        labeling.set_tag(
            session,
            example_pks=members,
            category_id=category_id,
            reviewer=reviewer,
            suggested=True,
        )
        for category_id, members in by_category.items()
    )
    return f"{changed} suggested tag{'' if changed == 1 else 's'} accepted"


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


def _apply_new_actions() -> tuple[str, int] | None:
    """Apply the grid's actions not applied yet, one transaction each; return the example to
    open, ("open", pk), or to show the errors like, ("similar", pk).

    What they did goes to the grid's status line (plain text); a refused one leaves its
    st.error for this run, as every page's actions do.
    """
    acknowledged: dict[str, int] = st.session_state.setdefault(ACKNOWLEDGED_KEY, {})
    client, actions = new_actions(GRID_KEY, acknowledged)
    if client is None or not actions:
        return None
    if sign_in_configured():  # signed in, the session's identity is the only reviewer
        actions = [dataclasses.replace(a, reviewer=reviewer()) for a in actions]
    done, to_open = [], None
    for act in actions:
        acknowledged[client] = act.seq
        if act.kind == "open":
            to_open = ("open", act.pks[0])
        elif act.kind == "similar":
            to_open = ("similar", act.pks[0])
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


def _show_similar(pk: int) -> None:
    """Switch to "more like this" for example `pk` (its id goes into the URL, to share)."""
    example_id = action(_example_id, pk=pk)
    if example_id is not None:
        st.query_params["similar"] = example_id


# --- embeddings: one space per run, kept while its vectors stay the same ---------------


def _space() -> similar.Space | None:
    """The run's errors in embedding space, or None (with a note saying how to get one)."""
    run_id = project.run_id
    with transaction() as session:
        signature = tuple(
            session.execute(
                select(func.count(), func.min(Embedding.example_pk), func.max(Embedding.example_pk))
                .join(Example, Example.id == Embedding.example_pk)
                .where(Example.run_id == run_id)
            ).one()
        )
    if not signature[0]:
        st.info(
            "This run has no embeddings yet, so similar errors cannot be found. Run "
            f"`labeltool analyze --project {plain(project.name)}` (it describes each image by its "
            "pixels), or import the model's own features (`labeltool embeddings`, or emb_ "
            "columns in the predictions file; `labeltool predict` writes them)."
        )
        return None
    return _cached_space(database().url, run_id, signature)


@st.cache_resource(max_entries=4, show_spinner="Loading the run's embeddings…")
def _cached_space(_url: str, run_id: int, _signature: tuple) -> similar.Space:
    with transaction() as session:
        return similar.space(session, run_id=run_id)


def _source_caption(space: similar.Space) -> str:
    return (
        "by the model's own features"
        if space.source == "model"
        else "by the images' pixels (no model features imported for this run)"
    )


# --- the views -------------------------------------------------------------------------


def _page_size_and_page(
    total: int, *, key: str = "g_page", what: str = "errors match the filter"
) -> tuple[int, int]:
    """The page-size and page pickers in one short row; returns (page size, page)."""
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
    if st.session_state.get(key, 1) > pages:  # the filter or page size shrank the list
        st.session_state[key] = pages
    page = top[1].number_input("Page", 1, pages, 1, key=key, label_visibility="collapsed")
    top[2].markdown(f"**{total}** {what} · page {page} of {pages}")
    return page_size, page


def _views(session, pks, who: str):
    """The tiles' examples as `who` may see them: on a double-reviewed error neither reviewer
    has seen the other's tags until both are done (labeltool.double_review)."""
    views = labeling.example_views(session, pks=pks, reviewer=who)
    shown, _blind = review_actions.hide_others_while_blind(
        session, project_id=project.id, views=views, reviewer=who
    )
    return shown


def _grid(views, who: str, notes: dict[int, str] | None = None) -> None:
    gallery_grid(
        key=GRID_KEY,
        project=project,
        views=views,
        categories=categories,
        reviewer=who,
        acknowledged=st.session_state.get(ACKNOWLEDGED_KEY, {}),
        notice=st.session_state.get(NOTICE_KEY),
        notes=notes,
    )


def _queue_view(who: str) -> None:
    with transaction() as session:
        total = review_queue.queue_count(session, project_id=project.id, queue=queue)
    page_size, page = _page_size_and_page(total)
    with transaction() as session:
        pks = review_queue.queue_ids(
            session,
            project_id=project.id,
            queue=queue,
            offset=(page - 1) * page_size,
            limit=page_size,
        )
        views = _views(session, pks, who)
    _grid(views, who)


def _similar_view(example_id: str, who: str) -> None:
    """The errors nearest to one example in embedding space, nearest first."""
    head = st.columns([5, 1], vertical_alignment="center")
    head[0].markdown(f"**More like this:** the errors most like {plain(example_id)}")
    if head[1].button("Back to the gallery", key="g_similar_back"):
        del st.query_params["similar"]
        st.rerun()
    with transaction() as session:
        try:
            pk = labeling.find_example(
                session, project_id=project.id, example_id=example_id, run_id=project.run_id
            )
        except UnknownExample:
            st.error(f"No example {plain(example_id)} in this run of {plain(project.name)}.")
            return
    space = _space()
    if space is None:
        return
    controls = st.columns([1, 2, 4], vertical_alignment="center")
    count = controls[0].selectbox(
        "How many",
        PAGE_SIZES,
        index=0,
        key="g_similar_count",
        label_visibility="collapsed",
        format_func=lambda n: f"{n} nearest",
    )
    in_filter = controls[1].toggle(
        "Only errors the queue filter matches",
        key="g_similar_in_filter",
        help="Off: every error of the run. On: only those the sidebar's queue filter matches.",
    )
    among = None
    if in_filter:
        with transaction() as session:
            among = set(review_queue.queue_all_ids(session, project_id=project.id, queue=queue))
    try:
        found = similar.neighbours(space, pk, k=count, among=among)
    except similar.NoEmbedding:
        st.warning(
            f"{plain(example_id)} has no embedding (its image could not be read, or it was "
            "imported after the last `labeltool analyze`): nothing can be said to look like it."
        )
        return
    controls[2].caption(
        f"Nearest first, {_source_caption(space)}. Distance: 0 is the same picture, 1 unrelated."
    )
    with transaction() as session:
        views = _views(session, [pk, *(n for n, _ in found)], who)
    notes = {pk: "this one"} | {n: f"distance {d:.3f}" for n, d in found}
    _grid(views, who, notes)


def _clusters_view(who: str) -> None:
    """The untagged errors the filter matches, in groups of look-alikes; one group open."""
    space = _space()
    if space is None:
        return
    untagged = QueueFilter(**{**queue.__dict__, "category_id": NO_CATEGORY})
    with transaction() as session:
        now_untagged = review_queue.queue_all_ids(session, project_id=project.id, queue=untagged)
    remembered = st.session_state.setdefault(CLUSTERS_KEY, {})
    key = (project.id, project.run_id, repr(untagged))
    controls = st.columns([1, 1, 4], vertical_alignment="center")
    asked = controls[0].number_input(
        "Clusters",
        min_value=0,
        max_value=200,
        value=0,
        key="g_cluster_count",
        help="How many groups to make; 0 picks a number from the errors' count.",
    )
    again = controls[1].button("Cluster again", key="g_recluster")
    stored = remembered.get(key)
    if stored is None or again or stored["asked"] != asked:
        pks = np.intersect1d(np.asarray(now_untagged, dtype=np.int64), space.pks)
        with st.spinner(f"Grouping {len(pks):,} untagged errors…"):
            found = similar.clusters(space, pks=pks, n_clusters=asked or None)
        stored = {
            "asked": asked,
            "of": len(pks),
            "clusters": [(c.number, list(map(int, c.members)), c.spread) for c in found],
        }
        remembered.clear()  # one clustering kept per session: it can be large
        remembered[key] = stored
        st.session_state.pop(OPEN_CLUSTER_KEY, None)
    left = set(now_untagged)
    clusters = [
        (number, [m for m in members if m in left], len(members), spread)
        for number, members, spread in stored["clusters"]
    ]
    clusters = [c for c in clusters if c[1]]
    controls[2].caption(
        f"{len(clusters)} groups of the {stored['of']:,} errors that were untagged and matched "
        f"the queue filter when grouped, {_source_caption(space)}. Tagged members leave their "
        "group; Cluster again regroups what is left."
    )
    opened = st.session_state.get(OPEN_CLUSTER_KEY)
    chosen = next((c for c in clusters if c[0] == opened), None)
    if chosen is None:
        _cluster_overview(clusters)
    else:
        _cluster_detail(chosen, who)


def _cluster_overview(clusters) -> None:
    if not clusters:
        st.success("No untagged errors left to group.")
        return
    firsts = [members[:SHEET_MEMBERS] for _, members, _, _ in clusters]
    with transaction() as session:
        images = dict(
            session.execute(
                select(Example.id, Example.image).where(
                    Example.id.in_([pk for members in firsts for pk in members])
                )
            ).all()
        )
    for row_start in range(0, len(clusters), 3):
        columns = st.columns(3)
        for column, (number, members, size, spread) in zip(
            columns, clusters[row_start : row_start + 3], strict=False
        ):
            with column.container(border=True):
                sheet = _sheet(
                    project.images_root, tuple(images[pk] for pk in members[:SHEET_MEMBERS])
                )
                st.image(sheet, width="stretch")
                left = f"{len(members)} untagged" if len(members) != size else f"{size} errors"
                st.markdown(f"**Cluster {number}** · {left} · spread {spread:.3f}")
                if st.button(f"Open cluster {number}", key=f"g_open_cluster_{number}"):
                    st.session_state[OPEN_CLUSTER_KEY] = number
                    st.rerun()


@st.cache_data(max_entries=512, show_spinner=False)
def _sheet(images_root: str, images: tuple[str, ...]) -> bytes:
    """A cluster's members on one picture, the representative first (framed)."""
    pictures = []
    for image in images:
        try:
            data = cached_rendition(images_root, image, "thumb").data
            pictures.append(Image.open(io.BytesIO(data)))
        except (ImageUnavailable, OSError):
            pictures.append(None)
    return contact_sheet(pictures, columns=3, cell=96)


def _cluster_detail(cluster, who: str) -> None:
    number, members, size, spread = cluster
    head = st.columns([5, 1], vertical_alignment="center")
    head[0].markdown(
        f"**Cluster {number}**: {len(members)} untagged errors (of {size} when grouped), "
        f"nearest the centre first · spread {spread:.3f}"
    )
    if head[1].button("All clusters", key="g_cluster_back"):
        st.session_state.pop(OPEN_CLUSTER_KEY, None)
        st.rerun()
    _name_cluster_form(number, members, who)
    page_size, page = _page_size_and_page(
        len(members), key="g_cluster_page", what="untagged errors in this cluster"
    )
    shown = members[(page - 1) * page_size : page * page_size]
    with transaction() as session:
        views = _views(session, shown, who)
    _grid(views, who, {shown[0]: "nearest the centre"} if page == 1 and shown else None)


NEW_CATEGORY = "(a new category)"


def _name_cluster_form(number: int, members: list[int], who: str) -> None:
    """Tag every member at once: with a new category named here, or an existing one."""
    live = [c for c in categories if not c.archived]
    with st.form(f"g_name_cluster_{number}", border=True):
        st.markdown(f"**Tag all {len(members)} members of cluster {number}**")
        row = st.columns([2, 2, 2], vertical_alignment="bottom")
        existing = row[0].selectbox(
            "Category", [NEW_CATEGORY, *(c.name for c in live)], key=f"g_cluster_cat_{number}"
        )
        name = row[1].text_input(
            "New category's name", key=f"g_cluster_name_{number}", placeholder="e.g. foggy"
        )
        reviewed = row[2].checkbox(
            "and mark them reviewed",
            value=True,
            key=f"g_cluster_reviewed_{number}",
            help="A group picked by look is a targeted look: counted, not used for the "
            "estimate. Errors first reached through the random queue keep counting as random.",
        )
        submitted = st.form_submit_button(
            f"Tag all {len(members)}", type="primary", disabled=not who
        )
    if not who:
        st.caption("Enter your name as **Reviewer** in the sidebar to tag.")
    if submitted:
        chosen = None if existing == NEW_CATEGORY else next(c for c in live if c.name == existing)
        done = action(
            _tag_cluster,
            pks=members,
            category_id=chosen.id if chosen else None,
            new_name=name,
            reviewer=who,
            mark_reviewed=reviewed,
        )
        if done:
            st.session_state[NOTICE_KEY] = {
                "id": st.session_state.get(NOTICE_KEY, {}).get("id", 0) + 1,
                "text": done,
            }
            st.session_state.pop(OPEN_CLUSTER_KEY, None)
            flash("success", done)
        st.rerun()


def _tag_cluster(
    session,
    *,
    pks: list[int],
    category_id: int | None,
    new_name: str,
    reviewer: str,
    mark_reviewed: bool,
) -> str:
    """Tag all `pks` with one category (made here when `category_id` is None), in one
    transaction; optionally mark them reviewed as a targeted look."""
    if category_id is None:
        if not new_name.strip():
            raise InvalidInput("name the new category first")
        category = create_category(
            session, project_id=project.id, name=new_name, user=reviewer or None
        )
        category_id, name = category.id, category.name
    else:
        name = by_id[category_id].name
    changed = labeling.set_tag(session, example_pks=pks, category_id=category_id, reviewer=reviewer)
    text = f"{_examples(changed)} tagged '{name}'"
    if mark_reviewed:
        labeling.mark_reviewed(
            session,
            example_pks=pks,
            reviewer=reviewer,
            project_id=project.id,
            reached=ReachedBy.BY_HAND,
        )
        text += " and marked reviewed (by hand)"
    return text


# --- the page --------------------------------------------------------------------------

to_open = _apply_new_actions()
if to_open is not None:
    kind, pk = to_open
    if kind == "open":
        _open(pk)
    else:
        _show_similar(pk)

show_flash()
run_caption(project, queue)
who = reviewer()
if not who:
    st.caption("Enter your name as **Reviewer** in the sidebar to tag.")

similar_to = st.query_params.get("similar")
if similar_to:
    _similar_view(similar_to, who)
else:
    view = st.segmented_control(
        "View",
        [QUEUE, CLUSTERS],
        default=QUEUE,
        key="g_view",
        label_visibility="collapsed",
        help="Queue: the filter's errors, page by page. Clusters: the untagged ones, grouped "
        "by look, to tag a group at once.",
    )
    if view == CLUSTERS:
        _clusters_view(who)
    else:
        _queue_view(who)
