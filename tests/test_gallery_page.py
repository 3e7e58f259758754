"""The Gallery page, driven with AppTest: the grid component gets a page of the queue with the
categories' colours and keys, and the actions the browser sends (as the component's state)
apply to exactly the examples they name, once each, with refusals shown as st.error.

The browser side (clicks, keys, what is on screen) is tests/e2e/test_gallery.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import select
from streamlit.testing.v1 import AppTest

from labeltool import double_review, labeling
from labeltool.categories import create_category
from labeltool.config import APP_PATH, DB_ENV_VAR
from labeltool.db import Database
from labeltool.importing import import_predictions
from labeltool.models import Example, Project, Review, ReviewState
from tests.app_scenario import AppProject, large_project, open_app_project, rerun_cost
from tests.conftest import make_rows

GALLERY = "app_pages/gallery.py"
GRID = "gallery_grid"
#: make_rows(EXAMPLES, errors=ERRORS): more errors than the default page of 96 holds.
EXAMPLES, ERRORS = 120, 110
DEFAULT_PAGE = 96


pytestmark = pytest.mark.usefixtures("fresh_streamlit_caches")


@pytest.fixture
def project(db: Database, write_predictions, monkeypatch: pytest.MonkeyPatch) -> AppProject:
    """Project "run1" (120 dev examples, 110 misclassified, real PNGs) with "blurry" (key b,
    red) and "incorrectly labeled" (key 2, green), in the database the app opens (SQLite, and
    PostgreSQL when configured)."""
    return open_app_project(
        db,
        write_predictions,
        monkeypatch,
        examples=EXAMPLES,
        errors=ERRORS,
        blurry={"shortcut": "b", "colour": "#e15759"},
        mislabeled={"shortcut": "2", "colour": "#59a14f"},
    )


# --- what the grid is given ----------------------------------------------------------------


def test_the_grid_shows_the_first_page_of_the_queue(project: AppProject) -> None:
    """The grid gets the queue's first 96 errors in queue order, each with its id, confusion
    pair, confidence and a thumbnail, and the page says how many errors match."""
    at = _gallery(reviewer="ann")

    tiles = _grid(at)["tiles"]
    first = project.queue()[0]
    assert [t["pk"] for t in tiles] == project.queue()[:DEFAULT_PAGE]
    assert tiles[0]["id"] == project.example_id(first)
    assert tiles[0]["pair"].count("-as-") == 1
    assert 0.5 <= tiles[0]["confidence"] <= 1
    assert all(t["src"].startswith("data:image/png;base64,") for t in tiles)
    assert any(
        f"**{ERRORS}** errors match the filter · page 1 of 2" in m.value for m in at.markdown
    )


def test_the_grid_pages_through_the_queue(project: AppProject) -> None:
    """Page 2 holds the errors after the first 96; a page of 48 holds the first 48."""
    at = _gallery(reviewer="ann")

    at.number_input(key="g_page").set_value(2).run()
    assert [t["pk"] for t in _grid(at)["tiles"]] == project.queue()[DEFAULT_PAGE:]

    at.number_input(key="g_page").set_value(1)
    at.selectbox(key="g_page_size").select(48).run()
    assert [t["pk"] for t in _grid(at)["tiles"]] == project.queue()[:48]
    assert any("page 1 of 3" in m.value for m in at.markdown)


def test_the_grid_gets_the_categories_colours_and_keys(project: AppProject) -> None:
    """Each category travels with its name, key and colour, in the project's order."""
    at = _gallery(reviewer="ann")

    assert _grid(at)["categories"] == [
        {"id": project.blurry, "name": "blurry", "key": "b", "colour": "#e15759"},
        {"id": project.mislabeled, "name": "incorrectly labeled", "key": "2", "colour": "#59a14f"},
    ]


def test_tiles_carry_every_reviewers_tags_and_mark_the_reviewers_own(
    project: AppProject,
) -> None:
    """A tile lists each category someone tagged it with, who did, and whether the reviewer
    at the keyboard is among them."""
    first, second = project.queue()[:2]
    with project.db.begin() as session:
        labeling.set_tag(session, example_pks=[first], category_id=project.blurry, reviewer="ann")
        labeling.set_tag(
            session, example_pks=[first, second], category_id=project.mislabeled, reviewer="bob"
        )

    tiles = {t["pk"]: t for t in _grid(_gallery(reviewer="ann"))["tiles"]}

    assert tiles[first]["tags"] == [
        {"id": project.blurry, "mine": True, "by": ["ann"]},
        {"id": project.mislabeled, "mine": False, "by": ["bob"]},
    ]
    assert tiles[second]["tags"] == [{"id": project.mislabeled, "mine": False, "by": ["bob"]}]


def test_without_a_reviewer_the_grid_cannot_tag(project: AppProject) -> None:
    """With no reviewer name the grid is told so (it disables tagging) and the page says
    where to enter one."""
    at = _gallery()

    assert _grid(at)["reviewer"] == ""
    assert any("Reviewer" in c.value for c in at.caption)


# --- actions from the grid -----------------------------------------------------------------


def test_a_tag_action_tags_exactly_the_examples_it_names(project: AppProject) -> None:
    """Tagging three scattered tiles tags those three for the reviewer, and no others; the
    grid's status line says how many."""
    queue = project.queue()
    chosen = [queue[1], queue[4], queue[40]]
    at = _gallery(reviewer="ann")

    _send(at, {"seq": 1, "kind": "tag", "pks": chosen, "category": project.blurry})

    assert not at.exception
    assert project.tags() == {(pk, project.blurry, "ann") for pk in chosen}
    assert _grid(at)["notice"]["text"] == "3 examples tagged 'blurry'"
    tagged = [t["pk"] for t in _grid(at)["tiles"] if t["tags"]]
    assert sorted(tagged) == sorted(chosen)


def test_an_untag_action_untags_only_the_reviewers_own_tags(project: AppProject) -> None:
    """Untagging two tiles removes the reviewer's tag from those two; another reviewer's tag
    and the reviewer's tag elsewhere stay."""
    queue = project.queue()
    with project.db.begin() as session:
        labeling.set_tag(session, example_pks=queue[:3], category_id=project.blurry, reviewer="ann")
        labeling.set_tag(session, example_pks=queue[:1], category_id=project.blurry, reviewer="bob")
    at = _gallery(reviewer="ann")

    _send(at, {"seq": 1, "kind": "untag", "pks": queue[:2], "category": project.blurry})

    assert project.tags() == {(queue[2], project.blurry, "ann"), (queue[0], project.blurry, "bob")}
    assert _grid(at)["notice"]["text"] == "2 examples untagged 'blurry'"


def test_mark_reviewed_marks_exactly_the_examples_it_names(project: AppProject) -> None:
    """Marking two tiles reviewed records the reviewer's review of those two only, and they
    leave the unreviewed queue the grid shows."""
    queue = project.queue()
    chosen = [queue[0], queue[7]]
    at = _gallery(reviewer="ann")

    _send(at, {"seq": 1, "kind": "reviewed", "pks": chosen})

    states = project.states()
    assert {pk for pk, state in states.items() if state == ReviewState.REVIEWED} == set(chosen)
    assert project.reviews() == {(pk, "ann") for pk in chosen}
    with project.db.begin() as session:  # picked from the grid: a targeted look
        assert set(session.scalars(select(Review.reached))) == {"by hand"}
    assert not set(chosen) & {t["pk"] for t in _grid(at)["tiles"]}
    assert _grid(at)["notice"]["text"] == "2 examples marked reviewed"


def test_each_action_applies_once(project: AppProject) -> None:
    """The browser resends actions until they are acknowledged: a list holding an applied
    action and a new one applies only the new one, and the grid learns the highest number."""
    queue = project.queue()
    at = _gallery(reviewer="ann")
    tag = {"seq": 1, "kind": "tag", "pks": queue[:2], "category": project.blurry}
    _send(at, tag)
    with project.db.begin() as session:  # someone else removes one tag in between
        labeling.set_tag(
            session, example_pks=queue[:1], category_id=project.blurry, reviewer="ann", tagged=False
        )

    untag = {"seq": 2, "kind": "untag", "pks": queue[1:2], "category": project.blurry}
    _send(at, tag, untag)

    assert project.tags() == set()  # the first action was not applied again
    assert _grid(at)["acked"] == {"test-client": 2}
    assert _grid(at)["notice"]["text"] == "1 example untagged 'blurry'"


def test_malformed_actions_are_ignored(project: AppProject) -> None:
    """Entries that are not well-formed actions (the list comes from the browser) change
    nothing and raise nothing; a well-formed one beside them still applies."""
    queue = project.queue()
    at = _gallery(reviewer="ann")

    _send(
        at,
        "tag everything",
        {"seq": "1", "kind": "tag", "pks": queue[:1], "category": project.blurry},
        {"seq": 2, "kind": "delete", "pks": queue[:1]},
        {"seq": 3, "kind": "tag", "pks": [True], "category": project.blurry},
        {"seq": 4, "kind": "tag", "pks": queue[:1]},
        {"seq": 5, "kind": "tag", "pks": queue[5:6], "category": project.blurry},
    )

    assert not at.exception
    assert project.tags() == {(queue[5], project.blurry, "ann")}


def test_a_refused_write_shows_an_error_and_changes_nothing(project: AppProject) -> None:
    """A tag the core refuses (a reviewer name over 100 characters) shows st.error, not a
    traceback, tags nothing, and is acknowledged so the browser stops sending it."""
    queue = project.queue()
    at = _gallery(reviewer="ann")

    _send(
        at, {"seq": 1, "kind": "tag", "pks": queue[:2], "category": project.blurry}, who="x" * 101
    )

    assert not at.exception
    assert any("at most 100 characters" in e.value for e in at.error)
    assert project.tags() == set()
    assert _grid(at)["acked"] == {"test-client": 1}


def test_a_category_of_another_project_is_refused(project: AppProject, write_predictions) -> None:
    """Tagging with a category id that is not this project's shows an error and tags nothing."""
    path = write_predictions(make_rows(4, errors=4), name="other.csv")
    with project.db.begin() as session:
        import_predictions(session, path, project="run2")
        other = session.scalar(select(Project.id).where(Project.name == "run2"))
        foreign = create_category(session, project_id=other, name="foreign").id
    at = _gallery(reviewer="ann")

    _send(at, {"seq": 1, "kind": "tag", "pks": project.queue()[:1], "category": foreign})

    assert any("no category with id" in e.value for e in at.error)
    assert project.tags() == set()


# --- Open ----------------------------------------------------------------------------------


def test_open_shows_that_example_on_the_review_page(project: AppProject) -> None:
    """Open switches to the review page with the example and project in the URL (its deep
    link), the review page shows that example, and the reviewer's name stays."""
    target = project.queue()[5]
    at = _gallery(reviewer="ann")

    _send(at, {"seq": 1, "kind": "open", "pks": [target]})

    assert not at.exception
    assert at.query_params["example"] == project.example_id(target)
    assert at.query_params["project"] == "run1"
    assert at.session_state["current_pk"] == target
    assert at.sidebar.text_input(key="reviewer").value == "ann"
    assert not at.get("bidi_component") or all(e.key != GRID for e in at.get("bidi_component")), (
        "still on the gallery"
    )


def test_open_after_changing_the_filter_keeps_the_example_opened(
    project: AppProject,
) -> None:
    """The review page was showing another example and the filter changed in the gallery:
    Open still shows the tile's example, not the first of the new queue."""
    at = AppTest.from_file(str(APP_PATH), default_timeout=60)
    at.query_params["project"] = "run1"
    at.session_state["reviewer"] = "ann"
    at.run()  # the review page, on the first example of the whole queue
    at.switch_page(GALLERY).run()
    pair = at.sidebar.selectbox(key="q_pair")
    pair.select(next(o for o in pair.options if o.startswith("dog-as-fox"))).run()
    target = [t["pk"] for t in _grid(at)["tiles"]][3]

    _send(at, {"seq": 1, "kind": "open", "pks": [target]})

    assert not at.exception
    assert at.session_state["current_pk"] == target
    assert at.query_params["example"] == project.example_id(target)


def test_open_refuses_an_example_of_another_project(project: AppProject, write_predictions) -> None:
    """Opening a pk that belongs to another project shows an error and stays on the gallery."""
    path = write_predictions(make_rows(4, errors=4), name="other.csv")
    with project.db.begin() as session:
        import_predictions(session, path, project="run2")
        other = session.scalar(select(Project.id).where(Project.name == "run2"))
        foreign = session.scalar(select(Example.id).where(Example.project_id == other))
    at = _gallery(reviewer="ann")

    _send(at, {"seq": 1, "kind": "open", "pks": [foreign]})

    assert not at.exception
    assert any("not in project 'run1'" in e.value for e in at.error)
    assert _grid(at)["tiles"]


# --- cost ----------------------------------------------------------------------------------


def test_a_rerun_reads_one_page_whatever_the_project_size(
    tmp_path: Path, write_predictions, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One rerun runs the same number of SQL statements on a 20- and a 400-example project
    and loads at most one page of examples, so the gallery never reads the examples table."""
    counts, loaded = [], []
    for n in (20, 400):
        database = large_project(tmp_path, write_predictions, examples=n, reviewed=0)
        monkeypatch.setenv(DB_ENV_VAR, database.url)
        statements, examples = rerun_cost(_gallery(reviewer="ann"))
        counts.append(statements)
        loaded.append(examples)
        database.dispose()

    assert counts[0] == counts[1]
    assert 0 < counts[0] <= 20, counts
    assert loaded == [16, DEFAULT_PAGE]


# --- helpers -------------------------------------------------------------------------------


def _gallery(*, reviewer: str | None = None) -> AppTest:
    """The app on project run1's Gallery page, run once, with the reviewer name already typed
    if given."""
    at = AppTest.from_file(str(APP_PATH), default_timeout=60)
    at.query_params["project"] = "run1"
    if reviewer is not None:
        at.session_state["reviewer"] = reviewer
    at.switch_page(GALLERY)
    return at.run()


def _grid(at: AppTest) -> dict:
    """The data the page gave the grid component on its last run."""
    (grid,) = [e for e in at.get("bidi_component") if e.key == GRID]
    return json.loads(grid.proto.json)


def _send(at: AppTest, *actions: object, who: str = "ann") -> AppTest:
    """Do what the browser does: set the grid's state to its list of unacknowledged actions
    (each stamped with the reviewer name it showed), then rerun."""
    stamped = [{"reviewer": who, **a} if isinstance(a, dict) else a for a in actions]
    at.session_state[GRID] = {"grid": {"client": "test-client", "actions": stamped}}
    return at.run()


def test_tiles_hide_other_reviewers_tags_on_a_double_reviewed_error(
    project: AppProject,
) -> None:
    """With an overlap share, the Gallery is as blind as the review screen: on an overlap
    error fewer than two reviewers have finished, a reviewer sees only their own tags."""
    first, second = project.queue()[:2]
    with project.db.begin() as session:
        double_review.set_overlap_fraction(session, project_id=project.id, fraction=1.0, user="ann")
        labeling.set_tag(session, example_pks=[first], category_id=project.blurry, reviewer="ann")
        labeling.set_tag(
            session, example_pks=[first, second], category_id=project.mislabeled, reviewer="bob"
        )

    tiles = {t["pk"]: t for t in _grid(_gallery(reviewer="ann"))["tiles"]}

    assert tiles[first]["tags"] == [{"id": project.blurry, "mine": True, "by": ["ann"]}]
    assert tiles[second]["tags"] == []
