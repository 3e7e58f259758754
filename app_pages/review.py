"""Review: one misclassified dev example at a time, tagged from the keyboard.

The screen itself is a component (app_pages/widgets/review_screen): each key press is bound in
the browser to the example on screen and sent here as a numbered action; this page applies the
actions not applied yet, each to its own example, then sends the example on screen and the
queue's next ones back. The categories `labeltool analyze` suggests for the example show
pre-marked, never on; Enter accepts them, Backspace dismisses them for this reviewer. Keys:
each category's key toggles it, n saves and moves on, s skips, p goes back, m (unless a
category has it) or the "More like this" button opens the Gallery on the errors most like
this one, once every key before it is saved; / comments, = sets the corrected label, ? shows
the keys; the image tools (zoom, brightness, contrast, auto-contrast, smooth or pixelated)
have keys of their own that only change how the browser draws the image.
"""

import dataclasses

import streamlit as st
from sqlalchemy.exc import SQLAlchemyError

from app_pages.common import (
    ProjectInfo,
    action,
    add_category,
    queue_filter_widgets,
    require_project,
    reviewer,
    run_caption,
    show_flash,
    sign_in_configured,
    transaction,
)
from app_pages.navigation import arrived_on_page
from app_pages.text import plain
from app_pages.widgets.review_screen import review_screen, screen_state
from labeltool import labeling, review_actions, review_queue
from labeltool.categories import list_categories
from labeltool.errors import InvalidInput, UnknownExample
from labeltool.models import confusion_pair_name
from labeltool.review_queue import QueueFilter

#: How many refused actions each browser is told about (the newest).
REFUSALS_KEPT = 20

project: ProjectInfo = require_project()
who = reviewer()

with transaction() as session:
    categories = list_categories(session, project_id=project.id)
    pairs = review_queue.confusion_pairs(session, project_id=project.id, run_id=project.run_id)
queue: QueueFilter = queue_filter_widgets(project, pairs=pairs, categories=categories)
overlap = project.overlap_fraction
if overlap:
    # The reviewer's own queue: with double review, it holds the overlap errors waiting for a
    # second reviewer, and never an error they reviewed themselves. (Without an overlap share
    # the reviewer changes nothing, so the queue's queries stay as lean as they were.)
    queue = dataclasses.replace(queue, reviewer=who or None)
if queue.confusion_pair is not None:
    pair_name = confusion_pair_name(*queue.confusion_pair)
    if all(c.name.lower() != pair_name.lower() for c in categories):
        st.sidebar.button(
            f"Make '{plain(pair_name)}' a category",
            key="pair_to_category",
            disabled=not who,
            help="Creates the category and tags every error of this pair with it.",
            on_click=action,
            args=(labeling.category_from_confusion_pair,),
            kwargs={
                "project_id": project.id,
                "label": queue.confusion_pair[0],
                "prediction": queue.confusion_pair[1],
                "reviewer": who,
                "run_id": project.run_id,
                "success": f"'{pair_name}' is now a category; its errors are tagged",
            },
        )

# --- 1. what the reviewer did since the last rerun, each on the example they saw ----------
SCREEN_KEY = f"review_screen_{project.id}"
screen = screen_state(SCREEN_KEY)
acked: dict[str, int] = st.session_state.setdefault("review_acked", {})
refused: dict[str, list[dict]] = st.session_state.setdefault("review_refused", {})
problem = None
similar = None  # the example whose like the reviewer asked to see in the Gallery
if screen.client:
    try:
        actions = review_actions.parse_actions(screen.actions, after=acked.get(screen.client, 0))
    except InvalidInput as exc:
        actions, problem = [], str(exc)
    if sign_in_configured():
        # The browser names the reviewer on each action (a typed name may change between
        # keys); signed in, the only reviewer this session can be is its identity.
        actions = [dataclasses.replace(a, reviewer=who) for a in actions]
    if actions:
        try:
            with transaction() as session:
                results = review_actions.apply_actions(
                    session,
                    project_id=project.id,
                    actions=actions,
                    # What the saved examples are a sample of: the queue's design, except the
                    # example a link opened, which was picked by hand.
                    reached=review_actions.reached_by(queue),
                    by_hand=st.session_state.get("review_linked", ()),
                )
        except SQLAlchemyError as exc:  # e.g. the database is busy: the browser sends again
            problem = f"Could not save just now ({type(exc).__name__}); retrying."
        else:
            # Plain dict updates, no Streamlit call between the commit and the acknowledgement.
            acked[screen.client] = actions[-1].seq
            mine = refused.setdefault(screen.client, [])
            mine += [{"seq": r.seq, "message": r.error} for r in results if not r.applied]
            del mine[:-REFUSALS_KEPT]
            similar = review_actions.similar_requested(actions, results)
if similar is not None:
    # Every action before it is saved (a refused one keeps the reviewer here, to read why).
    with transaction() as session:
        similar_id = labeling.get_example_view(session, pk=similar).example_id
    # switch_page drops the URL's query, so the project goes along; the reviewer's name stays
    # in the session, as the Gallery's Open does the other way.
    st.switch_page(
        "app_pages/gallery.py", query_params={"project": project.name, "similar": similar_id}
    )

# --- 2. which example: a link opened just now, a new queue, else the one on screen ----------
# The screen keeps the URL's ?example= on the example it shows (so the link can be shared),
# in the browser, as it moves; the server follows the URL only when the page is opened (from
# outside, or from another page such as the Gallery's Open), never on a rerun.
epoch = st.session_state.setdefault("review_epoch", 0)
current = st.session_state.get("current_pk")
requested = st.query_params.get("example") if arrived_on_page() else None
reset = False
if requested:
    with transaction() as session:
        try:
            current = labeling.find_example(
                session,
                project_id=project.id,
                example_id=requested,
                # the run whose rows the queue holds (the previous run's for "fixed")
                run_id=review_queue.queue_run_id(session, project_id=project.id, queue=queue),
            )
            reset = True
            st.session_state["review_linked"] = (current,)
        except UnknownExample as exc:
            # Kept until the reviewer moves on: the screen's first message reruns the page.
            st.session_state["review_link_problem"] = (str(exc), None)
if st.session_state.get("review_queue") != queue:  # the filter changed: start its queue afresh
    if "review_queue" in st.session_state and not reset:
        current, reset = None, True
    st.session_state["review_queue"] = queue
if reset:
    epoch += 1
    st.session_state["review_epoch"] = epoch
elif screen.client and screen.epoch == epoch:
    current = screen.showing  # None: the reviewer reached the end of the queue

with transaction() as session:
    order = review_actions.window(session, project_id=project.id, queue=queue, anchor=current)
    previous = (
        review_queue.previous_in_queue(session, project_id=project.id, queue=queue, before=order[0])
        if order
        else None
    )
    views = labeling.example_views(
        session, pks=order + ([previous] if previous else []), reviewer=who
    )
    # Double review: on an overlap error not yet done by two, the reviewer sees only their tags.
    views, blind = (
        review_actions.hide_others_while_blind(
            session, project_id=project.id, views=views, reviewer=who
        )
        if overlap
        else (views, frozenset())
    )
    standings = review_actions.standings(
        session, project_id=project.id, queue=queue, views=views, blind=blind
    )
    progress = review_queue.review_progress(session, project_id=project.id, run_id=project.run_id)
    in_queue = review_queue.queue_count(session, project_id=project.id, queue=queue)
current = order[0] if order else None
st.session_state["current_pk"] = current
# A bad link's message stays until the reviewer moves on from the example shown instead.
link_problem, shown_with = st.session_state.get("review_link_problem") or (None, None)
if link_problem and shown_with is not None and shown_with != current:
    del st.session_state["review_link_problem"]
    link_problem = None
elif link_problem:
    st.session_state["review_link_problem"] = (link_problem, current)
run = st.session_state["review_run"] = st.session_state.get("review_run", 0) + 1

# --- 3. the screen -------------------------------------------------------------------------
show_flash()
run_caption(project, queue)
for message in (link_problem, problem):
    if message:
        st.error(plain(message))
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
    + f" · {in_queue} in this queue"
)
if project.eyeball_fraction is not None:
    st.caption(
        f"👁️ Reviewing the eyeball part of the dev set ({project.eyeball_fraction:.0%} of it); "
        "the rest is the blackbox part (see the Ceiling report)."
    )
if overlap:
    st.caption(
        f"👥 Double review: {overlap:.0%} of the random queue's errors are reviewed by two "
        "reviewers. On those, the other reviewer's tags are hidden until you both finish; a lead "
        "settles the disagreements (Adjudicate)."
    )
if progress.needs_rereview:
    st.caption(
        f"🔁 {progress.needs_rereview} reviewed examples need re-review since a category was "
        "added: choose *needs re-review* in the queue's review state to go over them."
    )
if not who:
    st.warning("Enter your name as **Reviewer** in the sidebar: every tag records who made it.")
if progress.misclassified == 0:
    st.success("This project has no misclassified dev examples.")

review_screen(
    key=SCREEN_KEY,
    project=project,
    reviewer=who,
    categories=categories,
    order=order,
    previous=previous,
    views=views,
    standings=standings,
    acked=acked,
    refused=refused,
    epoch=epoch,
    run=run,
    nonce=screen.nonce,
    have=screen.have,
    original=screen.original,
    queue_count=in_queue,
    end_of_queue=len(order) <= review_actions.AHEAD,
)


def _add_category(session) -> None:
    add_category(
        session,
        project_id=project.id,
        name=st.session_state["quick_name"],
        shortcut=st.session_state["quick_key"] or None,
        user=reviewer() or None,
    )


with st.popover("➕ New category"), st.form("quick_category", border=False):
    st.text_input("Name", key="quick_name", placeholder="e.g. Instagram filter")
    st.text_input("Key", key="quick_key", max_chars=1, help="One letter or digit (optional)")
    st.form_submit_button(
        "Add category",
        on_click=action,
        args=(_add_category,),
        help="Examples already reviewed will be marked 'needs re-review'.",
    )
