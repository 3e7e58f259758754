"""The Gallery's "more like this", its clusters of untagged errors and its suggestions, driven
with AppTest on both databases: which errors each view shows, in what order, and what tagging
a whole cluster writes (each member still counted random or targeted by how it was reached).

The vectors are planted: three tight groups of errors in known directions, so the nearest
errors and the clusters have one right answer.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from sqlalchemy import select
from streamlit.testing.v1 import AppTest

from labeltool import embeddings, labeling
from labeltool.config import APP_PATH
from labeltool.db import Database
from labeltool.models import Category, Review, ReviewState, Signal, Tag
from tests.app_scenario import AppProject, open_app_project

GALLERY = "app_pages/gallery.py"
GRID = "gallery_grid"
#: 30 errors in three groups of ten (error i is in group i % 3).
EXAMPLES, ERRORS, GROUPS = 40, 30, 3

pytestmark = pytest.mark.usefixtures("fresh_streamlit_caches")


@pytest.fixture
def project(db: Database, write_predictions, monkeypatch: pytest.MonkeyPatch) -> AppProject:
    return open_app_project(
        db,
        write_predictions,
        monkeypatch,
        examples=EXAMPLES,
        errors=ERRORS,
        blurry={"shortcut": "b"},
        mislabeled={"shortcut": "2"},
    )


def _errors(project: AppProject) -> list[int]:
    """The errors' pks in example order (error i is ex{i:04d})."""
    return sorted(project.queue(), key=project.example_id)


def _plant(project: AppProject, *, source: str = "model") -> list[int]:
    """Give error i a vector in group i % 3's direction, a little further out the larger i
    is; returns the errors' pks in example order."""
    pks = _errors(project)
    vectors = np.zeros((len(pks), 8), dtype=np.float32)
    for i in range(len(pks)):
        vectors[i, i % GROUPS] = 1.0
        vectors[i, 3 + i % GROUPS] = 0.01 * i  # farther from the group's centre as i grows
    with project.db.begin() as session:
        embeddings.save(session, pks=pks, vectors=vectors, source=source)
    return pks


def _gallery(*, reviewer: str = "ann", **query: str) -> AppTest:
    at = AppTest.from_file(str(APP_PATH), default_timeout=60)
    at.query_params["project"] = "run1"
    for name, value in query.items():
        at.query_params[name] = value
    at.session_state["reviewer"] = reviewer
    at.switch_page(GALLERY)
    at.run()
    assert not at.exception, at.exception
    return at


def _grid(at: AppTest) -> dict:
    (grid,) = [e for e in at.get("bidi_component") if e.key == GRID]
    return json.loads(grid.proto.json)


def _send(at: AppTest, *actions: dict, who: str = "ann") -> AppTest:
    at.session_state[GRID] = {
        "grid": {"client": "test-client", "actions": [{"reviewer": who, **a} for a in actions]}
    }
    at.run()
    assert not at.exception, at.exception
    return at


# --- more like this ----------------------------------------------------------------------


def test_more_like_this_shows_the_example_then_its_group_nearest_first(
    project: AppProject,
) -> None:
    """?similar=ex0003 shows ex0003 first ("this one"), then the other errors of its group
    (3, 6, 9, ...: 0, 6, 9 nearest as their offsets are), then the rest, with distances."""
    pks = _plant(project)

    at = _gallery(similar="ex0003")

    tiles = _grid(at)["tiles"]
    ids = [t["id"] for t in tiles]
    assert ids[0] == "ex0003" and tiles[0]["note"] == "this one"
    group = [f"ex{i:04d}" for i in range(0, ERRORS, GROUPS) if i != 3]
    assert sorted(ids[1:10]) == sorted(group)
    assert ids[1] in ("ex0000", "ex0006")  # the two whose offsets are nearest 3's
    assert len(tiles) == len(pks)  # 48 asked: every other error, the other groups last
    assert tiles[1]["note"].startswith("distance 0.0")
    assert tiles[-1]["note"] == "distance 1.000"
    assert any("the errors most like ex0003" in m.value for m in at.markdown)
    assert any("by the model's own features" in c.value for c in at.caption)


def test_more_like_this_from_a_tile_puts_the_id_in_the_url(project: AppProject) -> None:
    """The grid's "similar" action (M on a tile) switches to the view and names the example
    in the URL, so the view can be shared; Back returns to the queue."""
    pks = _plant(project)
    at = _gallery()

    _send(at, {"seq": 1, "kind": "similar", "pks": [pks[4]]})

    assert at.query_params["similar"] == "ex0004"
    assert _grid(at)["tiles"][0]["id"] == "ex0004"
    at.button(key="g_similar_back").click().run()
    assert "similar" not in at.query_params
    assert len(_grid(at)["tiles"]) == ERRORS


def test_more_like_this_can_keep_to_the_queue_filter(project: AppProject) -> None:
    """With the toggle on, only errors the sidebar's queue matches are candidates: reviewed
    ones drop out of the default (unreviewed) queue."""
    pks = _plant(project)
    project.mark_reviewed([pks[0], pks[6]])
    at = _gallery(similar="ex0003")

    at.toggle(key="g_similar_in_filter").set_value(True).run()

    ids = [t["id"] for t in _grid(at)["tiles"]]
    assert "ex0000" not in ids and "ex0006" not in ids
    assert ids[0] == "ex0003" and ids[1] == "ex0009"


def test_without_embeddings_the_page_says_how_to_get_them(project: AppProject) -> None:
    at = _gallery(similar="ex0003")

    assert any("labeltool analyze" in i.value for i in at.info)
    assert not at.get("bidi_component")


def test_an_unknown_example_is_named_not_a_traceback(project: AppProject) -> None:
    _plant(project)
    at = _gallery(similar="<b>nope</b>")

    assert any("No example" in e.value and "nope" in e.value for e in at.error)


# --- clusters --------------------------------------------------------------------------


def _clusters(at: AppTest, count: int = GROUPS) -> AppTest:
    at.session_state["g_view"] = "Clusters"
    at.run()
    at.number_input(key="g_cluster_count").set_value(count).run()
    assert not at.exception, at.exception
    return at


def test_clusters_group_the_untagged_errors_by_look(project: AppProject) -> None:
    """Three planted groups come back as three clusters of ten, each opened to its members,
    nearest the centre first; an error already tagged is left out of the grouping."""
    pks = _plant(project)
    with project.db.begin() as session:
        labeling.set_tag(session, example_pks=[pks[0]], category_id=project.blurry, reviewer="bo")

    at = _clusters(_gallery())

    headings = [m.value for m in at.markdown if m.value.startswith("**Cluster")]
    assert [h.split(" · ")[1] for h in headings] == ["10 errors", "10 errors", "9 errors"]
    assert len(at.get("image")) == GROUPS  # one sheet of members per cluster
    at.button(key="g_open_cluster_3").click().run()
    members = [t["id"] for t in _grid(at)["tiles"]]
    assert sorted(members) == [f"ex{i:04d}" for i in range(3, ERRORS, GROUPS)]
    assert members[0] == "ex0015"  # offsets 0.03..0.27: the middle one is nearest the centre


def test_naming_a_cluster_tags_every_member_and_keeps_random_reviews_random(
    project: AppProject,
) -> None:
    """Tag all with a new category: every member is tagged by the reviewer and marked
    reviewed by hand, except that one reviewed earlier from the random queue keeps counting
    as random; the category exists and the cluster leaves the overview."""
    pks = _plant(project)
    group = [pks[i] for i in range(1, ERRORS, GROUPS)]
    with project.db.begin() as session:  # ex0001 came up in the random queue earlier
        labeling.mark_reviewed(session, example_pks=[group[0]], reviewer="ann")
    at = _gallery()
    at.session_state["q_states"] = []  # every error, reviewed or not
    at = _clusters(at)
    number = next(
        int(b.key.rsplit("_", 1)[1])
        for b in at.button
        if b.key
        and b.key.startswith("g_open_cluster_")
        and sorted(_members_after_open(at, b.key)) == sorted(group)
    )
    at.button(key=f"g_open_cluster_{number}").click().run()
    at.text_input(key=f"g_cluster_name_{number}").input("thin strokes")
    at.button(key=f"FormSubmitter:g_name_cluster_{number}-Tag all {len(group)}").click().run()

    assert not at.exception, at.exception
    with project.db.begin() as session:
        category = session.scalars(select(Category).where(Category.name == "thin strokes")).one()
        tagged = set(session.scalars(select(Tag.example_pk).where(Tag.category_id == category.id)))
        reached = dict(session.execute(select(Review.example_pk, Review.reached)).all())
    assert tagged == set(group)
    assert reached[group[0]] == "random"
    assert {reached[pk] for pk in group[1:]} == {"by hand"}
    assert {project.states()[pk] for pk in group} == {ReviewState.REVIEWED.value}
    assert any("10 examples tagged 'thin strokes'" in s.value for s in at.success)
    remaining = [m.value for m in at.markdown if m.value.startswith("**Cluster")]
    assert len(remaining) == GROUPS - 1


def _members_after_open(at: AppTest, key: str) -> list[int]:
    """Open the cluster behind button `key`, read its members, go back to the overview."""
    at.button(key=key).click().run()
    members = [t["pk"] for t in _grid(at)["tiles"]]
    at.button(key="g_cluster_back").click().run()
    return members


def test_a_cluster_cannot_be_named_without_a_name(project: AppProject) -> None:
    _plant(project)
    at = _clusters(_gallery())
    at.button(key="g_open_cluster_1").click().run()

    at.button(key="FormSubmitter:g_name_cluster_1-Tag all 10").click().run()

    assert any("name the new category first" in e.value for e in at.error)
    assert not project.tags()


# --- suggestions on the tiles ----------------------------------------------------------------


def test_tiles_show_suggestions_and_accept_tags_them_as_suggested(project: AppProject) -> None:
    """A signal's category travels with the tile (with its reason); "accept" on a selection
    tags each example with its own suggestions, recorded as accepted suggestions."""
    pks = _errors(project)
    with project.db.begin() as session:
        session.add(Signal(example_pk=pks[2], kind="blurry", score=9.0, reason="blur in 5%"))
    at = _gallery()
    tiles = {t["pk"]: t for t in _grid(at)["tiles"]}
    assert tiles[pks[2]]["suggestions"] == [{"id": project.blurry, "reason": "blur in 5%"}]
    assert tiles[pks[3]]["suggestions"] == []

    _send(at, {"seq": 1, "kind": "accept", "pks": [pks[2], pks[3]]})

    with project.db.begin() as session:
        rows = session.execute(select(Tag.example_pk, Tag.category_id, Tag.suggested)).all()
    assert [tuple(r) for r in rows] == [(pks[2], project.blurry, True)]
    assert _grid(at)["notice"]["text"] == "1 suggested tag accepted"


def test_a_reviewers_dismissed_suggestions_leave_their_tiles_only(project: AppProject) -> None:
    """bob dismissed the suggestion on the review screen: his tiles no longer show it, and
    accepting on his selection tags nothing; ann still sees it."""
    pks = _errors(project)
    with project.db.begin() as session:
        session.add(Signal(example_pk=pks[2], kind="blurry", score=9.0, reason="blur in 5%"))
        session.flush()
        labeling.dismiss_suggestions(session, example_pk=pks[2], kinds=["blurry"], reviewer="bob")

    bobs = _gallery(reviewer="bob")
    assert {t["pk"]: t for t in _grid(bobs)["tiles"]}[pks[2]]["suggestions"] == []
    _send(bobs, {"seq": 1, "kind": "accept", "pks": [pks[2]]}, who="bob")
    assert not project.tags()
    anns = {t["pk"]: t for t in _grid(_gallery(reviewer="ann"))["tiles"]}
    assert anns[pks[2]]["suggestions"] == [{"id": project.blurry, "reason": "blur in 5%"}]
