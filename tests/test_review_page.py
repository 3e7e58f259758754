"""The review page through AppTest: what the review screen is sent, and what the actions it
sends back do, over a real project (SQLite, and PostgreSQL when configured).

AppTest runs no JavaScript, so `Screen` plays the browser's half: it reads the data the page
gives the component and sends numbered actions the way review_screen.js does.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import pytest
from sqlalchemy import select
from streamlit.testing.v1 import AppTest

from labeltool import labeling
from labeltool.categories import update_category
from labeltool.config import APP_PATH
from labeltool.db import Database
from labeltool.models import Category, Dismissal, Example, Review, ReviewState, Signal, Tag
from labeltool.review_queue import QueueFilter
from tests.app_scenario import AppProject, open_app_project

#: make_rows(36, errors=30): 30 dev errors, 10 in each of cat-as-dog, dog-as-fox, fox-as-cat.
EXAMPLES, ERRORS = 36, 30


@dataclass
class Screen:
    """The browser's half of the review screen, for AppTest: reads what the page sent the
    component and answers with numbered actions, as review_screen.js does."""

    at: AppTest
    key: str
    client: str = "test-client"
    seq: int = 0
    pending: list[dict] = field(default_factory=list)
    showing: int | None = None

    @property
    def data(self) -> dict:
        elements = [e for e in self.at.main if type(e).__name__ == "UnknownElement"]
        screens = [e.proto for e in elements if e.proto.component_name.endswith("review_screen")]
        assert len(screens) == 1, [e.proto.component_name for e in elements]
        return json.loads(screens[0].json)

    def example(self, pk: int | None = None) -> dict:
        pk = self.data["anchor"] if pk is None else pk
        return next(e for e in self.data["examples"] if e["pk"] == pk)

    @property
    def shown_id(self) -> str:
        return self.example()["id"]

    def send(self, **fields) -> Screen:
        """Record an action on the example on screen (or `pk`) and rerun, like a key press."""
        data = self.data
        if self.showing is None:
            self.showing = data["anchor"]
        self.seq += 1
        pk = fields.pop("pk", self.showing)
        self.pending.append({"seq": self.seq, "pk": pk, "reviewer": "ann", **fields})
        return self.rerun()

    def next(self) -> Screen:
        """Show the example after the one on screen in the last window (what `n` shows)."""
        order = self.data["order"]
        self.showing = order[order.index(self.showing or order[0]) + 1]
        return self.rerun()

    def rerun(self) -> Screen:
        acked = self.data["acked"].get(self.client, 0)
        self.pending = [a for a in self.pending if a["seq"] > acked]
        self.at.session_state[self.key] = {
            "screen": {
                "client": self.client,
                "epoch": self.data["epoch"],
                "showing": self.showing,
                "actions": self.pending,
            }
        }
        self.at.run()
        assert not self.at.exception, self.at.exception
        return self


pytestmark = pytest.mark.usefixtures("fresh_streamlit_caches")


@pytest.fixture
def project(db: Database, write_predictions, monkeypatch: pytest.MonkeyPatch) -> AppProject:
    """Project "run1": 36 dev examples, 30 misclassified, "blurry" and "incorrectly labeled"."""
    return open_app_project(db, write_predictions, monkeypatch, examples=EXAMPLES, errors=ERRORS)


def test_the_screen_opens_on_the_queue_with_the_next_examples_ready(project: AppProject) -> None:
    """The component gets the queue's first error and the 20 after it, in queue order, each
    with its image, labels and confusion pair, so `n` needs no round trip."""
    screen = _screen(project, reviewer="ann")

    data = screen.data
    assert data["order"] == project.queue()[:21]
    first = screen.example()
    example = project.example(data["order"][0])
    assert (first["id"], first["label"], first["prediction"]) == (
        example.example_id,
        example.label,
        example.prediction,
    )
    assert first["pair"] == f"{example.label}-as-{example.prediction}"
    assert all(e["src"].startswith("data:image/png;base64,") for e in data["examples"])
    assert first["standing"] == "in the queue" and first["reviewable"] is True
    assert data["queueCount"] == ERRORS and data["reviewer"] == "ann"


def test_without_a_reviewer_the_page_asks_for_one(project: AppProject) -> None:
    """Before a reviewer name is given the page asks for one, and the screen is told none is
    set (it then refuses keys with the same message)."""
    screen = _screen(project)

    assert any("Reviewer" in w.value for w in screen.at.warning)
    assert screen.data["reviewer"] == ""


def test_tag_actions_land_on_the_example_they_name_and_are_acknowledged(
    project: AppProject,
) -> None:
    """A tag action names its example: it is saved for that example and that reviewer even when
    the screen has already moved on, and the page acknowledges it by number."""
    first, second = project.queue()[:2]
    screen = _screen(project, reviewer="ann")

    screen.next()  # the screen shows the second example before the tag reaches the server
    screen.send(kind="tag", pk=first, category=project.blurry, on=True)

    assert project.tags() == {(first, project.blurry, "ann")}
    assert screen.data["acked"] == {screen.client: 1}
    assert screen.data["anchor"] == second
    assert screen.example(first)["tags"] == {"ann": [project.blurry]}


def test_actions_sent_twice_change_nothing_the_second_time(project: AppProject) -> None:
    """Actions say the result ("tag on"), and the page skips those it acknowledged, so a
    browser that sends the same list again cannot undo a tag."""
    first = project.queue()[0]
    screen = _screen(project, reviewer="ann")
    screen.send(kind="tag", category=project.blurry, on=True)
    resent = [{"seq": 1, "kind": "tag", "pk": first, "category": project.blurry, "on": True}]

    screen.pending = [{**a, "reviewer": "ann"} for a in resent]
    screen.at.session_state[f"review_screen_{project.id}"] = {
        "screen": {"client": screen.client, "epoch": 0, "showing": first, "actions": resent}
    }
    screen.at.run()

    assert project.tags() == {(first, project.blurry, "ann")}


def test_save_marks_reviewed_and_the_window_moves_on(project: AppProject) -> None:
    """Save marks the example reviewed by its reviewer; the next window starts at the example
    the screen shows and the saved one has left the queue."""
    first, second = project.queue()[:2]
    screen = _screen(project, reviewer="ann")

    screen.send(kind="save")
    screen.next()

    assert project.example(first).review_state == ReviewState.REVIEWED.value
    with project.db.begin() as session:
        assert session.execute(select(Review.example_pk, Review.reviewer)).all() == [(first, "ann")]
    assert screen.data["anchor"] == second
    assert screen.data["previous"] is None  # the saved example is no longer in the queue


def test_skip_comment_and_corrected_label_are_saved(project: AppProject) -> None:
    """Skip marks the example skipped; a comment and a corrected label are saved as sent."""
    first = project.queue()[0]
    screen = _screen(project, reviewer="ann")

    screen.send(kind="comment", text="edges look blurred")
    screen.send(kind="corrected_label", text=project.example(first).label)
    screen.send(kind="skip")

    example = project.example(first)
    assert example.review_state == ReviewState.SKIPPED.value
    assert example.comment == "edges look blurred"
    assert example.corrected_label == example.label


def test_a_refused_action_is_reported_and_the_rest_still_apply(project: AppProject) -> None:
    """A tag with a category archived meanwhile is refused with its reason, told to this
    browser, and the actions around it still apply."""
    first = project.queue()[0]
    screen = _screen(project, reviewer="ann")
    with project.db.begin() as session:
        update_category(session, category_id=project.blurry, archived=True)

    screen.pending = [
        {"seq": 1, "kind": "tag", "pk": first, "category": project.blurry, "on": True},
        {"seq": 2, "kind": "tag", "pk": first, "category": project.mislabeled, "on": True},
    ]
    for action in screen.pending:
        action["reviewer"] = "ann"
    screen.seq = 2
    screen.rerun()

    assert project.tags() == {(first, project.mislabeled, "ann")}
    (refusal,) = screen.data["refused"][screen.client]
    assert refusal["seq"] == 1 and "archived" in refusal["message"]
    assert screen.data["acked"][screen.client] == 2


def test_the_screen_lists_every_key_including_the_reserved_ones(project: AppProject) -> None:
    """The key legend the screen shows names the category keys, the screen's own keys and the
    keys no category may take (r and c are Streamlit's)."""
    screen = _screen(project, reviewer="ann")

    data = screen.data
    keys = [k for k, _ in data["screenKeys"]]
    assert keys == ["Enter", "Backspace", "n", "s", "p", "m", "/", "=", "Esc", "?"]
    assert dict(data["screenKeys"])["Enter"] == "accept the suggestions"
    assert dict(data["screenKeys"])["Backspace"] == "dismiss the suggestions"
    assert data["similarKey"] == "m"
    assert [c["key"] for c in data["categories"]] == ["1", "2"]
    assert "r and c are Streamlit's" in data["reservedNote"]


def test_a_deep_link_opens_that_example(project: AppProject) -> None:
    """?example=ID opens the example with that id as the screen's anchor, with a new epoch so
    the browser jumps to it."""
    target = project.queue()[7]
    screen = _screen(project, example=project.example(target).example_id)

    assert screen.data["anchor"] == target
    assert screen.data["order"][1:] == project.queue()[8:28]


def test_a_deep_link_to_an_unknown_example_says_so(project: AppProject) -> None:
    """?example= with an id the project does not have shows an error (as text) with the
    queue's first example, until the reviewer moves on."""
    screen = _screen(project, example="no*pe")

    errors = [e.value for e in screen.at.error]
    assert any("no example 'no\\*pe'" in e for e in errors), errors
    assert screen.data["anchor"] == project.queue()[0]

    screen.rerun()  # the screen's first message: the message stays while the example does
    assert [e.value for e in screen.at.error] == errors
    screen.next()  # the reviewer moves on: it goes
    assert [e.value for e in screen.at.error] == []


def test_a_deep_link_to_a_correct_example_shows_it_as_such_and_refuses_saving(
    project: AppProject,
) -> None:
    """A link to a correctly classified dev example shows it as "correctly classified", not
    reviewable, and a save sent for it is refused: it never becomes a reviewed error."""
    with project.db.begin() as session:
        correct = session.scalars(
            select(Example).where(Example.is_error.is_(False)).order_by(Example.id)
        ).first()
        correct_pk, correct_id = correct.id, correct.example_id
    screen = _screen(project, reviewer="ann", example=correct_id)

    shown = screen.example()
    assert (shown["pk"], shown["standing"], shown["reviewable"]) == (
        correct_pk,
        "correctly classified",
        False,
    )

    screen.send(kind="save")

    assert project.example(correct_pk).review_state == ReviewState.UNREVIEWED.value
    (refusal,) = screen.data["refused"][screen.client]
    assert "not a misclassified dev example" in refusal["message"]


def test_a_deep_link_to_a_reviewed_example_says_it_is_not_in_this_queue(
    project: AppProject,
) -> None:
    """A link to an error already reviewed shows it as "reviewed, not in this queue"; tags on
    it still save (a re-review)."""
    target = project.queue()[3]
    with project.db.begin() as session:
        labeling.mark_reviewed(session, example_pks=[target], reviewer="bob")
    screen = _screen(project, reviewer="ann", example=project.example(target).example_id)

    assert screen.example()["standing"] == "reviewed, not in this queue"
    screen.send(kind="tag", category=project.blurry, on=True)
    assert project.tags() == {(target, project.blurry, "ann")}


def test_two_reviewers_see_each_others_tags_on_their_next_rerun(project: AppProject) -> None:
    """Ann and Bob review the same example in two sessions: Bob's next rerun carries Ann's tag
    under her name, and his own tag is recorded separately."""
    ann, bob = _screen(project, reviewer="ann"), _screen(project, reviewer="bob")
    pk = ann.data["anchor"]
    assert bob.data["anchor"] == pk  # the same fixed random order for everyone

    ann.send(kind="tag", category=project.blurry, on=True)
    bob.rerun()

    assert bob.example(pk)["tags"] == {"ann": [project.blurry]}
    tag = {"seq": 1, "kind": "tag", "pk": pk, "category": project.blurry, "on": True}
    bob.pending.append({**tag, "reviewer": "bob"})
    bob.seq = 1
    bob.rerun()
    assert project.tags() == {(pk, project.blurry, "ann"), (pk, project.blurry, "bob")}


def test_a_category_added_on_the_review_screen_reaches_the_screen(project: AppProject) -> None:
    """The "New category" form adds the category with its key, marks the reviewed examples for
    re-review, and the screen is sent the new category and key at once."""
    with project.db.begin() as session:
        labeling.mark_reviewed(session, example_pks=project.queue()[:2], reviewer="ann")
    screen = _screen(project, reviewer="ann")

    screen.at.text_input(key="quick_name").input("instagram filter")
    screen.at.text_input(key="quick_key").input("4")
    next(b for b in screen.at.button if b.label == "Add category").click().run()

    assert not screen.at.exception
    assert any("2 reviewed examples now need re-review" in m.value for m in screen.at.success)
    assert [(c["name"], c["key"]) for c in screen.data["categories"]][-1] == (
        "instagram filter",
        "4",
    )


def test_progress_is_shown_against_the_methods_guide(project: AppProject) -> None:
    """With 12 errors reviewed, the 10 milestone is reached and 20, 50 and 100 are not."""
    with project.db.begin() as session:
        labeling.mark_reviewed(session, example_pks=project.queue()[:12], reviewer="ann")

    screen = _screen(project, reviewer="ann")

    guide = next(c.value for c in screen.at.caption if c.value.startswith("The method's guide"))
    assert "✅ 10 very few" in guide
    assert "⬜ 20 a rough sense" in guide and "⬜ 100 very good" in guide


def test_changing_the_filter_starts_the_new_queue(project: AppProject) -> None:
    """After moving on, choosing a confusion pair sends that pair's queue with a new epoch, so
    the browser leaves the example it showed for the pair's first error."""
    screen = _screen(project, reviewer="ann")
    screen.send(kind="save")
    screen.next()
    epoch = screen.data["epoch"]

    screen.at.sidebar.selectbox(key="q_pair").select("dog-as-fox (10)").run()

    first_pair = project.queue(QueueFilter(confusion_pair=("dog", "fox")))
    assert screen.data["order"] == first_pair[:21]
    assert screen.data["epoch"] == epoch + 1
    assert screen.data["queueCount"] == 10


def test_the_review_screen_turns_the_filtered_pair_into_a_category(project: AppProject) -> None:
    """Filtering the queue by a pair offers "Make 'dog-as-fox' a category", which tags exactly
    that pair's errors for the reviewer; the offer then disappears."""
    screen = _screen(project, reviewer="ann")
    at = screen.at
    assert "pair_to_category" not in {b.key for b in at.sidebar.button}
    at.sidebar.selectbox(key="q_pair").select("dog-as-fox (10)").run()

    at.sidebar.button(key="pair_to_category").click().run()

    assert not at.exception
    with project.db.begin() as session:
        category_id = session.scalar(select(Category.id).where(Category.name == "dog-as-fox"))
        pair = session.scalars(
            select(Example.id).where(
                Example.label == "dog", Example.prediction == "fox", Example.is_error.is_(True)
            )
        ).all()
    assert category_id is not None and len(pair) == 10
    assert {t for t in project.tags() if t[1] == category_id} == {
        (pk, category_id, "ann") for pk in pair
    }
    assert "pair_to_category" not in {b.key for b in at.sidebar.button}


def test_an_empty_queue_sends_an_empty_window(project: AppProject) -> None:
    """When every error has been reviewed the screen gets no example and the end of the queue
    (it then says nothing is left)."""
    with project.db.begin() as session:
        labeling.mark_reviewed(session, example_pks=project.queue(), reviewer="ann")

    screen = _screen(project, reviewer="ann")

    assert (screen.data["order"], screen.data["end"], screen.data["queueCount"]) == ([], True, 0)


def test_an_archived_category_is_not_on_the_screen(project: AppProject) -> None:
    """An archived category is not sent to the screen, so it has no key or toggle."""
    with project.db.begin() as session:
        update_category(session, category_id=project.blurry, archived=True)

    screen = _screen(project, reviewer="ann")

    assert [c["id"] for c in screen.data["categories"]] == [project.mislabeled]


def test_images_the_browser_holds_are_not_sent_again(project: AppProject) -> None:
    """Examples the browser says it has the image of come without their image data."""
    screen = _screen(project, reviewer="ann")
    held = screen.data["order"][:5]
    key = f"review_screen_{project.id}"

    screen.at.session_state[key] = {
        "screen": {"client": "c", "epoch": 0, "showing": held[0], "actions": [], "have": held}
    }
    screen.at.run()

    sent = {e["pk"]: e["src"] for e in screen.data["examples"]}
    assert all(sent[pk] is None for pk in held)
    assert all(sent[pk] for pk in screen.data["order"][5:])


def _screen(project: AppProject, *, reviewer: str | None = None, **query: str) -> Screen:
    """The review page, run once (with the reviewer name typed and the URL's query when given),
    and the browser's half of its screen."""
    at = AppTest.from_file(str(APP_PATH), default_timeout=30)
    if reviewer is not None:
        at.session_state["reviewer"] = reviewer
    for name, value in query.items():
        at.query_params[name] = value
    at.run()
    assert not at.exception, at.exception
    return Screen(at, key=f"review_screen_{project.id}")


def test_each_save_records_how_its_example_was_reached(project: AppProject) -> None:
    """A save from one pair's random queue is "random in pair", from the confidence order
    "confidence order", and the example a link opened "by hand"."""
    linked = project.queue()[5]
    screen = _screen(project, reviewer="ann", example=project.example_id(linked))
    screen.send(kind="save")  # the linked example
    screen.at.sidebar.selectbox(key="q_pair").select("dog-as-fox (10)").run()
    screen.showing = None
    screen.send(kind="save")  # the pair's first
    in_pair = screen.data["anchor"]
    screen.at.sidebar.radio(key="q_order").set_value("least confident first").run()
    screen.showing = None
    screen.send(kind="save")
    by_confidence = screen.data["anchor"]

    with project.db.begin() as session:
        found = dict(session.execute(select(Review.example_pk, Review.reached)).all())
    assert found == {
        linked: "by hand",
        in_pair: "random in pair",
        by_confidence: "confidence order",
    }


# --- suggestions: shown, never applied on their own ----------------------------------------

BLUR_REASON = "blur 3.2, sharper than <b>only</b> 2% of the project's images"


def test_a_stored_signal_is_shown_as_a_suggestion_and_nothing_is_tagged(
    project: AppProject,
) -> None:
    """An example with a stored blurry signal comes to the screen with "blurry" suggested and
    the signal's reason (as the text it is); no tag is made by showing it."""
    first, second = project.queue()[:2]
    _signal(project, first, "blurry", BLUR_REASON)

    screen = _screen(project, reviewer="ann")

    assert screen.example(first)["suggestions"] == [
        {"category": project.blurry, "kind": "blurry", "reason": BLUR_REASON}
    ]
    assert screen.example(second)["suggestions"] == []
    assert project.tags() == set()


def test_the_accept_action_tags_exactly_the_suggested_categories_on_its_example(
    project: AppProject,
) -> None:
    """Accepting, sent after the screen has moved on, tags the example that was on screen with
    exactly its suggested categories (a likely label error suggests the incorrect-label
    category), each recorded as an accepted suggestion; the next example stays untagged."""
    first, second = project.queue()[:2]
    _signal(project, first, "blurry", BLUR_REASON)
    _signal(project, first, "likely label error", "the model gives 0.97 to cat")
    _signal(project, second, "blurry", "blur 1.0")
    screen = _screen(project, reviewer="ann")
    shown = screen.example(first)["suggestions"]
    assert {s["category"] for s in shown} == {project.blurry, project.mislabeled}

    screen.next()  # the screen shows the second example before the accept reaches the server
    screen.send(kind="accept", pk=first, categories=[s["category"] for s in shown])

    assert _tags_with_origin(project) == {
        (first, project.blurry, "ann", True),
        (first, project.mislabeled, "ann", True),
    }
    assert screen.data["acked"] == {screen.client: 1}
    assert project.example(first).corrected_label == project.example(first).prediction


def test_a_tag_toggled_by_its_own_key_stays_a_choice_when_suggestions_are_accepted(
    project: AppProject,
) -> None:
    """A suggested category the reviewer turned on with its own key keeps suggested=False
    when the rest of the suggestions are accepted; the others are marked suggested."""
    first = project.queue()[0]
    _signal(project, first, "blurry", BLUR_REASON)
    _signal(project, first, "likely label error", "the model gives 0.97 to cat")
    screen = _screen(project, reviewer="ann")

    screen.send(kind="tag", category=project.blurry, on=True)
    screen.send(kind="accept", categories=[project.blurry, project.mislabeled])

    assert _tags_with_origin(project) == {
        (first, project.blurry, "ann", False),
        (first, project.mislabeled, "ann", True),
    }


def test_an_archived_category_is_never_suggested(project: AppProject) -> None:
    """A signal whose category is archived suggests nothing, and accepting it is refused with
    its reason: no tag is made."""
    first = project.queue()[0]
    _signal(project, first, "blurry", BLUR_REASON)
    with project.db.begin() as session:
        update_category(session, category_id=project.blurry, archived=True)

    screen = _screen(project, reviewer="ann")
    assert screen.example(first)["suggestions"] == []
    screen.send(kind="accept", categories=[project.blurry])

    assert project.tags() == set()
    (refusal,) = screen.data["refused"][screen.client]
    assert "archived" in refusal["message"]


def test_accepting_a_category_that_is_not_suggested_is_refused(project: AppProject) -> None:
    """The browser is not trusted: an accept naming a category the example's signals do not
    suggest tags nothing and says why."""
    first = project.queue()[0]
    _signal(project, first, "blurry", BLUR_REASON)
    screen = _screen(project, reviewer="ann")

    screen.send(kind="accept", categories=[project.blurry, project.mislabeled])

    assert project.tags() == set()
    (refusal,) = screen.data["refused"][screen.client]
    assert "no longer suggested" in refusal["message"]


def test_dismissed_suggestions_vanish_for_their_reviewer_and_stay_for_another(
    project: AppProject,
) -> None:
    """Dismissing, sent after the screen has moved on, records the kinds for that reviewer on
    the example that was on screen and tags nothing: their screen no longer suggests them,
    while another reviewer's screen still does (each judges on their own)."""
    first, second = project.queue()[:2]
    _signal(project, first, "blurry", BLUR_REASON)
    _signal(project, first, "likely label error", "the model gives 0.97 to cat")
    _signal(project, second, "blurry", "blur 1.0")
    screen = _screen(project, reviewer="ann")
    kinds = [s["kind"] for s in screen.example(first)["suggestions"]]

    screen.next()
    screen.send(kind="dismiss", pk=first, kinds=kinds)

    assert screen.data["acked"] == {screen.client: 1}
    assert screen.example(first)["suggestions"] == []
    assert [s["kind"] for s in screen.example(second)["suggestions"]] == ["blurry"]
    assert project.tags() == set()
    with project.db.begin() as session:
        rows = session.execute(select(Dismissal.example_pk, Dismissal.kind, Dismissal.reviewer))
        assert {tuple(r) for r in rows} == {
            (first, "blurry", "ann"),
            (first, "likely label error", "ann"),
        }
    other = _screen(project, reviewer="bob")
    assert [s["kind"] for s in other.example(first)["suggestions"]] == kinds


def test_dismissing_a_kind_the_example_has_no_signal_of_is_refused(project: AppProject) -> None:
    """The browser is not trusted: a dismiss naming a kind nothing suggests for the example
    dismisses nothing and says why; the example's real suggestion stays."""
    first = project.queue()[0]
    _signal(project, first, "blurry", BLUR_REASON)
    screen = _screen(project, reviewer="ann")

    screen.send(kind="dismiss", kinds=["blurry", "dark"])

    (refusal,) = screen.data["refused"][screen.client]
    assert "nothing suggests 'dark'" in refusal["message"]
    assert [s["kind"] for s in screen.example(first)["suggestions"]] == ["blurry"]


def test_more_like_this_saves_the_keys_before_it_then_opens_the_gallery_on_the_example(
    project: AppProject,
) -> None:
    """A tag and then "more like this", sent together: the tag is saved on its example, then
    the page switches to the Gallery with the project and the example on screen in its URL;
    the reviewer's name stays."""
    first = project.queue()[0]
    screen = _screen(project, reviewer="ann")
    screen.pending = [
        {"seq": 1, "kind": "tag", "pk": first, "category": project.blurry, "on": True},
        {"seq": 2, "kind": "similar", "pk": first},
    ]
    screen.seq = 2
    screen.pending = [{**a, "reviewer": "ann"} for a in screen.pending]
    screen.showing = first

    screen.rerun()

    assert project.tags() == {(first, project.blurry, "ann")}
    assert screen.at.query_params["similar"] == project.example_id(first)
    assert screen.at.query_params["project"] == "run1"
    assert screen.at.session_state["reviewer"] == "ann"
    shown = [e.proto.component_name for e in screen.at.main if hasattr(e.proto, "component_name")]
    assert not [name for name in shown if name.endswith("review_screen")], shown


def test_more_like_this_stays_when_a_key_before_it_was_refused(project: AppProject) -> None:
    """A refused action before "more like this" keeps the reviewer on the review page, where
    the refusal is told to the screen, instead of leaving it unseen."""
    first = project.queue()[0]
    with project.db.begin() as session:
        update_category(session, category_id=project.blurry, archived=True)
    screen = _screen(project, reviewer="ann")

    screen.pending = [
        {"seq": 1, "kind": "tag", "pk": first, "category": project.blurry, "reviewer": "ann"},
        {"seq": 2, "kind": "similar", "pk": first, "reviewer": "ann"},
    ]
    screen.seq, screen.showing = 2, first
    screen.rerun()

    assert "similar" not in screen.at.query_params
    assert screen.data["acked"][screen.client] == 2
    (refusal,) = screen.data["refused"][screen.client]
    assert refusal["seq"] == 1 and "archived" in refusal["message"]


def test_a_category_on_the_more_like_this_key_keeps_it(project: AppProject) -> None:
    """A project whose category already has the key m keeps it: the key toggles the category,
    the legend does not offer m for "more like this" (its button still does)."""
    with project.db.begin() as session:
        update_category(session, category_id=project.blurry, shortcut="m")
    screen = _screen(project, reviewer="ann")

    data = screen.data
    assert data["similarKey"] is None
    assert "m" not in [k for k, _ in data["screenKeys"]]
    assert [c["key"] for c in data["categories"]] == ["m", "2"]


def _signal(project: AppProject, pk: int, kind: str, reason: str) -> None:
    with project.db.begin() as session:
        session.add(Signal(example_pk=pk, kind=kind, score=0.9, reason=reason))


def _tags_with_origin(project: AppProject) -> set[tuple[int, int, str, bool]]:
    with project.db.begin() as session:
        rows = session.execute(
            select(Tag.example_pk, Tag.category_id, Tag.reviewer, Tag.suggested)
        ).all()
        return {tuple(r) for r in rows}
