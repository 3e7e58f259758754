"""The review screen's actions in the core: each lands on the example it names, in order,
applying the same list twice changes nothing, a bad action is refused alone, and the window
of next examples follows the queue (SQLite and PostgreSQL)."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from labeltool import labeling
from labeltool.categories import create_category, update_category
from labeltool.db import Database
from labeltool.errors import InvalidInput
from labeltool.eyeball import set_eyeball_fraction
from labeltool.models import Dismissal, Example, ReachedBy, Review, Signal, Tag
from labeltool.review_actions import (
    ActionKind,
    ActionResult,
    ReviewAction,
    Standing,
    apply_actions,
    parse_actions,
    reached_by,
    similar_requested,
    standings,
    window,
)
from labeltool.review_queue import QueueFilter, queue_ids
from tests.review_scenario import REVIEWED, SKIPPED, UNREVIEWED, Run


@pytest.fixture
def blurry(db: Database, run: Run) -> int:
    with db.begin() as session:
        return create_category(session, project_id=run.id, name="blurry").id


@pytest.fixture
def dark(db: Database, run: Run) -> int:
    with db.begin() as session:
        return create_category(session, project_id=run.id, name="dark").id


def tag(seq: int, pk: int, category: int, on: bool = True, who: str = "ann") -> ReviewAction:
    return ReviewAction(seq, ActionKind.TAG, pk, who, category_id=category, on=on)


def save(seq: int, pk: int, who: str = "ann") -> ReviewAction:
    return ReviewAction(seq, ActionKind.SAVE, pk, who)


def tags(db: Database) -> set[tuple[int, int, str]]:
    with db.begin() as session:
        return set(session.execute(select(Tag.example_pk, Tag.category_id, Tag.reviewer)).all())


def states(db: Database, run: Run, *ids: str) -> list[str]:
    with db.begin() as session:
        return [session.get(Example, run.pk[i]).review_state for i in ids]


def test_each_action_lands_on_the_example_it_names_in_order(
    db: Database, run: Run, blurry: int, dark: int
) -> None:
    """Tags, saves and a tag taken off again apply to their own examples, in order."""
    e0, e1 = run.pk["e00"], run.pk["e01"]
    actions = [tag(1, e0, blurry), save(2, e0), tag(3, e1, dark), tag(4, e1, blurry)]
    actions += [tag(5, e1, dark, on=False), save(6, e1)]

    with db.begin() as session:
        results = apply_actions(session, project_id=run.id, actions=actions)

    assert [r.seq for r in results if r.applied] == [1, 2, 3, 4, 5, 6]
    assert tags(db) == {(e0, blurry, "ann"), (e1, blurry, "ann")}
    assert states(db, run, "e00", "e01") == [REVIEWED, REVIEWED]


def test_applying_the_same_actions_twice_changes_nothing(
    db: Database, run: Run, blurry: int
) -> None:
    """Actions say the result ("on", "off"), so a list applied again, as a browser that never
    heard the server's answer sends it, leaves the same tags."""
    e0 = run.pk["e00"]
    actions = [tag(1, e0, blurry), tag(2, e0, blurry, on=False), tag(3, e0, blurry), save(4, e0)]

    for _ in range(2):
        with db.begin() as session:
            apply_actions(session, project_id=run.id, actions=actions)

    assert tags(db) == {(e0, blurry, "ann")}
    assert states(db, run, "e00") == [REVIEWED]


def test_a_refused_action_is_reported_and_the_others_apply(
    db: Database, run: Run, blurry: int, dark: int
) -> None:
    """A tag with an archived category, a save without a reviewer and a save of a correctly
    classified example are refused with reasons; the actions between them still apply."""
    e0, correct = run.pk["e00"], run.pk["c00"]
    with db.begin() as session:
        update_category(session, category_id=blurry, archived=True)
    actions = [
        tag(1, e0, blurry),
        tag(2, e0, dark),
        save(3, e0, who=""),
        save(4, correct),
        tag(5, correct, dark),
        save(6, e0),
    ]

    with db.begin() as session:
        results = apply_actions(session, project_id=run.id, actions=actions)

    refused = {r.seq: r.error for r in results if not r.applied}
    assert sorted(refused) == [1, 3, 4, 5]
    assert "archived" in refused[1]
    assert "reviewer name" in refused[3]
    assert "not a misclassified dev example" in refused[4]
    assert tags(db) == {(e0, dark, "ann")}
    assert states(db, run, "e00", "c00") == [REVIEWED, UNREVIEWED]


def test_actions_on_another_projects_examples_are_refused(
    db: Database, run: Run, other: Run, blurry: int
) -> None:
    """An action naming an example of another project changes nothing there."""
    with db.begin() as session:
        (result,) = apply_actions(session, project_id=run.id, actions=[save(1, other.pk["e00"])])

    assert "no example" in result.error
    assert states(db, other, "e00") == [UNREVIEWED]


def test_skip_comment_and_corrected_label(db: Database, run: Run) -> None:
    """Skip puts an unreviewed example aside, a comment is saved trimmed, a corrected label
    must be one of the project's classes."""
    e0 = run.pk["e00"]
    actions = [
        ReviewAction(1, ActionKind.SKIP, e0, "ann"),
        ReviewAction(2, ActionKind.COMMENT, e0, "ann", text="  looks dark "),
        ReviewAction(3, ActionKind.CORRECTED_LABEL, e0, "ann", text="dog"),
        ReviewAction(4, ActionKind.CORRECTED_LABEL, e0, "ann", text="zebra"),
    ]

    with db.begin() as session:
        results = apply_actions(session, project_id=run.id, actions=actions)

    assert [r.applied for r in results] == [True, True, True, False]
    assert "unknown label 'zebra'" in results[3].error
    with db.begin() as session:
        example = session.get(Example, e0)
        assert (example.review_state, example.comment, example.corrected_label) == (
            SKIPPED,
            "looks dark",
            "dog",
        )


@pytest.mark.parametrize(
    "raw",
    [
        "not a list",
        [1],
        [{"seq": "x", "kind": "tag", "pk": 1}],
        [{"seq": 1, "kind": "delete everything", "pk": 1}],
        [{"seq": 1, "kind": "save", "pk": 1.5}],
        [{"seq": 1, "kind": "save", "pk": True}],
        [{"seq": 1, "kind": "tag", "pk": 1, "category": [2]}],
    ],
)
def test_malformed_actions_from_the_browser_are_refused(raw: object) -> None:
    """The browser is not trusted: a list that is not well formed is refused as a whole."""
    with pytest.raises(InvalidInput, match="review screen sent"):
        parse_actions(raw)


def test_parse_keeps_only_actions_after_the_acknowledged_one() -> None:
    """Actions numbered at or below the last acknowledged one are dropped; the rest come back
    in sequence order."""
    raw = [
        {"seq": 3, "kind": "save", "pk": 7, "reviewer": "ann"},
        {"seq": 1, "kind": "tag", "pk": 7, "category": 2, "on": True, "reviewer": "ann"},
        {"seq": 2, "kind": "tag", "pk": 7, "category": 2, "on": False, "reviewer": "ann"},
    ]

    actions = parse_actions(raw, after=1)

    assert [(a.seq, a.kind, a.on) for a in actions] == [
        (2, ActionKind.TAG, False),
        (3, ActionKind.SAVE, True),
    ]


def test_parse_reads_an_accept_actions_categories_and_refuses_malformed_ones() -> None:
    """An accept action carries the suggested categories the screen showed, as whole numbers;
    anything else from the browser is refused before anything is applied."""
    raw = [{"seq": 1, "kind": "accept", "pk": 7, "categories": [2, "3"], "reviewer": "ann"}]

    (action,) = parse_actions(raw)

    assert (action.kind, action.categories) == (ActionKind.ACCEPT, (2, 3))
    for bad in ("2", [1.5], [True], {"id": 2}):
        with pytest.raises(InvalidInput, match="malformed"):
            parse_actions([{**raw[0], "categories": bad}])


def test_the_window_follows_the_queue_after_an_anchor_that_left_it(db: Database, run: Run) -> None:
    """The window is the anchor and the queue's next examples; once the anchor is reviewed (so
    out of the queue) the examples after it are still the same ones."""
    queue = QueueFilter()
    with db.begin() as session:
        ids = queue_ids(session, project_id=run.id, queue=queue, limit=100)
        first = window(session, project_id=run.id, queue=queue, anchor=None, ahead=3)
        labeling.mark_reviewed(session, example_pks=[ids[0]], reviewer="ann")
    with db.begin() as session:
        after = window(session, project_id=run.id, queue=queue, anchor=ids[0], ahead=3)
        at_end = window(session, project_id=run.id, queue=queue, anchor=ids[-1], ahead=3)

    assert first == ids[:4]
    assert after == ids[:4]
    assert at_end == [ids[-1]]


def test_an_anchor_from_another_project_is_ignored(db: Database, run: Run, other: Run) -> None:
    """A stale anchor from another project does not leak into this project's window."""
    with db.begin() as session:
        shown = window(
            session, project_id=run.id, queue=QueueFilter(), anchor=other.pk["e00"], ahead=2
        )
        expected = queue_ids(session, project_id=run.id, queue=QueueFilter(), limit=3)

    assert shown == expected


def test_standings_say_where_each_example_stands(db: Database, run: Run) -> None:
    """In the queue, correctly classified, not in the dev set, reviewed (not in this queue),
    filtered out, and in the blackbox part: each named in the method's words."""
    queue = QueueFilter(confusion_pair=("cat", "dog"))
    with db.begin() as session:
        labeling.mark_reviewed(session, example_pks=[run.pk["e01"]], reviewer="ann")
    names = ["e00", "e01", "e05", "c00", "t00"]
    with db.begin() as session:
        views = labeling.example_views(session, pks=[run.pk[n] for n in names])
        found = standings(session, project_id=run.id, queue=queue, views=views)

    assert [found[run.pk[n]] for n in names] == [
        Standing.IN_QUEUE,
        Standing.REVIEWED_ELSEWHERE,
        Standing.OUTSIDE_FILTER,
        Standing.CORRECT,
        Standing.NOT_DEV,
    ]
    assert [found[run.pk[n]].reviewable for n in names] == [True, True, True, False, False]

    with db.begin() as session:
        set_eyeball_fraction(session, project_id=run.id, fraction=0.01)
    with db.begin() as session:
        views = labeling.example_views(session, pks=list(run.pk.values()))
        found = standings(session, project_id=run.id, queue=QueueFilter(states=()), views=views)
    assert Standing.BLACKBOX in found.values()


# --- how each reviewed example was reached --------------------------------------------------


def reached(db: Database) -> dict[int, str]:
    with db.begin() as session:
        return dict(session.execute(select(Review.example_pk, Review.reached)).all())


@pytest.mark.parametrize(
    ("queue", "expected"),
    [
        (QueueFilter(), ReachedBy.RANDOM),
        (QueueFilter(states=()), ReachedBy.RANDOM),
        (QueueFilter(confusion_pair=("cat", "dog")), ReachedBy.RANDOM_IN_PAIR),
        (QueueFilter(category_id=3), ReachedBy.FILTERED),
        (QueueFilter(min_confidence=0.5), ReachedBy.FILTERED),
        (QueueFilter(confusion_pair=("cat", "dog"), max_confidence=0.9), ReachedBy.FILTERED),
        (QueueFilter(order="least confident first"), ReachedBy.CONFIDENCE_ORDER),
    ],
)
def test_a_queue_says_what_its_examples_are_a_sample_of(
    queue: QueueFilter, expected: ReachedBy
) -> None:
    """The random queue (any review state) is random; one pair's random queue is random in
    that pair; any other filter, or the confidence order, is a targeted look."""
    assert reached_by(queue) is expected
    assert expected.is_random == (expected in (ReachedBy.RANDOM, ReachedBy.RANDOM_IN_PAIR))


def test_saves_record_how_the_example_was_reached_and_a_re_review_keeps_it(
    db: Database, run: Run
) -> None:
    """A save records the queue's design, or "by hand" for an example a link opened; saving
    the example again from another queue keeps the way it was first reached."""
    e0, e1 = run.pk["e00"], run.pk["e01"]
    with db.begin() as session:
        apply_actions(
            session,
            project_id=run.id,
            actions=[save(1, e0), save(2, e1)],
            reached=ReachedBy.RANDOM_IN_PAIR,
            by_hand=(e1,),
        )
    with db.begin() as session:
        apply_actions(
            session, project_id=run.id, actions=[save(3, e0)], reached=ReachedBy.CONFIDENCE_ORDER
        )

    assert reached(db) == {e0: ReachedBy.RANDOM_IN_PAIR, e1: ReachedBy.BY_HAND}


# --- dismissing a suggestion, and "more like this" --------------------------------------


def dismiss(seq: int, pk: int, *kinds: str, who: str = "ann") -> ReviewAction:
    return ReviewAction(seq, ActionKind.DISMISS, pk, who, kinds=kinds)


def signal(db: Database, pk: int, kind: str) -> None:
    with db.begin() as session:
        session.add(Signal(example_pk=pk, kind=kind, score=0.9, reason=f"{kind} reason"))


def dismissals(db: Database) -> set[tuple[int, str, str]]:
    with db.begin() as session:
        rows = session.execute(select(Dismissal.example_pk, Dismissal.kind, Dismissal.reviewer))
        return {tuple(row) for row in rows}


def suggested_to(db: Database, pk: int, reviewer: str | None) -> list[str]:
    with db.begin() as session:
        found = labeling.suggested_categories(session, pks=[pk], reviewer=reviewer)
    return [s.kind for s in found.get(pk, [])]


def test_a_dismissal_hides_the_suggestion_from_its_reviewer_only_and_once(
    db: Database, run: Run, blurry: int, dark: int
) -> None:
    """A dismiss action records one Dismissal per kind for its reviewer, tags nothing, and
    sent again changes nothing; the reviewer is no longer shown those suggestions, another
    reviewer (who judges on their own) still is, and the signal itself stays."""
    e0 = run.pk["e00"]
    signal(db, e0, "blurry")
    signal(db, e0, "dark")

    for _ in range(2):
        with db.begin() as session:
            (result,) = apply_actions(
                session, project_id=run.id, actions=[dismiss(1, e0, "blurry", "dark")]
            )
        assert result.applied, result.error

    assert dismissals(db) == {(e0, "blurry", "ann"), (e0, "dark", "ann")}
    assert tags(db) == set()
    assert suggested_to(db, e0, "ann") == []
    assert suggested_to(db, e0, "bob") == ["blurry", "dark"]
    assert suggested_to(db, e0, None) == ["blurry", "dark"]
    with db.begin() as session:
        (view,) = labeling.example_views(session, pks=[e0], reviewer="ann")
        assert view.suggestions == []
        assert labeling.get_example_view(session, pk=e0, reviewer="bob").suggestions != []
        assert session.scalar(select(func.count()).select_from(Signal)) == 2


def test_dismissing_one_kind_leaves_the_others_suggested(
    db: Database, run: Run, blurry: int, dark: int
) -> None:
    """A dismissal names its kinds: the example's other suggestions stay for that reviewer."""
    e0 = run.pk["e00"]
    signal(db, e0, "blurry")
    signal(db, e0, "dark")

    with db.begin() as session:
        apply_actions(session, project_id=run.id, actions=[dismiss(1, e0, "dark")])

    assert suggested_to(db, e0, "ann") == ["blurry"]


def test_a_dismissal_naming_a_kind_without_a_signal_is_refused_whole(
    db: Database, run: Run, blurry: int, dark: int
) -> None:
    """The browser is not trusted: a dismiss naming a kind the example has no signal of (or
    no kind at all, or no reviewer, or a correctly classified example) is refused with its
    reason and dismisses nothing, not even the kinds that were signalled."""
    e0, correct = run.pk["e00"], run.pk["c00"]
    signal(db, e0, "blurry")
    signal(db, correct, "blurry")
    actions = [
        dismiss(1, e0, "blurry", "dark"),
        dismiss(2, e0),
        dismiss(3, e0, "blurry", who=""),
        dismiss(4, correct, "blurry"),
    ]

    with db.begin() as session:
        results = apply_actions(session, project_id=run.id, actions=actions)

    errors = [r.error for r in results]
    assert all(errors), errors
    assert "nothing suggests 'dark'" in errors[0]
    assert "kinds" in errors[1]
    assert "reviewer name" in errors[2]
    assert "not a misclassified dev example" in errors[3]
    assert dismissals(db) == set()


def test_a_dismissed_suggestion_can_no_longer_be_accepted_by_that_reviewer(
    db: Database, run: Run, blurry: int
) -> None:
    """Accept is checked against what the reviewer is still shown: once they dismissed a
    suggestion, accepting it is refused; another reviewer can still accept it."""
    e0 = run.pk["e00"]
    signal(db, e0, "blurry")
    actions = [
        dismiss(1, e0, "blurry"),
        ReviewAction(2, ActionKind.ACCEPT, e0, "ann", categories=(blurry,)),
        ReviewAction(3, ActionKind.ACCEPT, e0, "bob", categories=(blurry,)),
    ]

    with db.begin() as session:
        results = apply_actions(session, project_id=run.id, actions=actions)

    assert [r.applied for r in results] == [True, False, True]
    assert "no longer suggested" in results[1].error
    assert tags(db) == {(e0, blurry, "bob")}


def test_parse_reads_a_dismiss_actions_kinds_and_refuses_malformed_ones() -> None:
    """A dismiss action carries the kinds of the suggestions said no to, as short names;
    anything else is refused before anything is applied."""
    raw = [{"seq": 1, "kind": "dismiss", "pk": 7, "kinds": ["blurry", "dark"], "reviewer": "a"}]

    (action,) = parse_actions(raw)

    assert (action.kind, action.kinds) == (ActionKind.DISMISS, ("blurry", "dark"))
    for bad in ("blurry", [3], [""], ["x" * 33], {"kind": "blurry"}):
        with pytest.raises(InvalidInput, match="malformed"):
            parse_actions([{**raw[0], "kinds": bad}])


def test_more_like_this_saves_nothing_and_waits_for_the_actions_before_it(
    db: Database, run: Run, blurry: int
) -> None:
    """A "similar" action changes nothing in the database and names its example; the page
    may leave for the Gallery only when it and every action before it were applied."""
    e0, e1 = run.pk["e00"], run.pk["e01"]
    before = [tag(1, e0, blurry), ReviewAction(2, ActionKind.SIMILAR, e1, "ann")]

    with db.begin() as session:
        results = apply_actions(session, project_id=run.id, actions=before)

    assert [r.applied for r in results] == [True, True]
    assert similar_requested(before, results) == e1
    assert tags(db) == {(e0, blurry, "ann")}
    assert states(db, run, "e00", "e01") == [UNREVIEWED, UNREVIEWED]
    refused_first = [ActionResult(1, e0, "archived"), ActionResult(2, e1)]
    assert similar_requested(before, refused_first) is None
    assert similar_requested(before[:1], results[:1]) is None
