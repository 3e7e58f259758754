"""The reviewer's loop: the queue's filters and orders, keyset next/previous, tagging per
reviewer, marking reviewed, confusion pairs, progress wording, and a constant query count."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine, event, func, insert, select
from sqlalchemy.exc import IntegrityError

from labeltool import labeling
from labeltool.categories import create_category
from labeltool.db import Database
from labeltool.errors import InvalidInput, UnknownCategory
from labeltool.importing import import_predictions, shuffle_key
from labeltool.labeling import NO_CATEGORY, ORDERS, QueueFilter
from labeltool.models import Category, Example, Review, ReviewState, Tag
from tests.conftest import make_rows

ALL = QueueFilter(states=())
UNREVIEWED = ReviewState.UNREVIEWED.value
REVIEWED = ReviewState.REVIEWED.value
SKIPPED = ReviewState.SKIPPED.value
NEEDS_REREVIEW = ReviewState.NEEDS_REREVIEW.value

#: (example_id, label, prediction, confidence, split). e00-e08 are the dev errors.
ROWS = [
    ("e00", "cat", "dog", "0.90", "dev"),
    ("e01", "cat", "dog", "0.70", "dev"),
    ("e02", "cat", "dog", "0.70", "dev"),  # ties with e01
    ("e03", "cat", "dog", "", "dev"),  # no confidence
    ("e04", "cat", "dog", "0.55", "dev"),
    ("e05", "dog", "fox", "0.95", "dev"),
    ("e06", "dog", "fox", "0.60", "dev"),
    ("e07", "dog", "fox", "0.40", "dev"),
    ("e08", "fox", "cat", "0.80", "dev"),
    ("c00", "cat", "cat", "0.99", "dev"),
    ("c01", "dog", "dog", "0.98", "dev"),
    ("c02", "fox", "fox", "0.97", ""),  # empty split means dev
    ("t00", "cat", "dog", "0.50", "test"),  # an error, but not in the dev set
    ("r00", "dog", "fox", "0.45", "train"),
]
DEV_ERRORS = [f"e{i:02d}" for i in range(9)]
CONFIDENCE = {r[0]: (float(r[3]) if r[3] else None) for r in ROWS}


@dataclass
class Run:
    """An imported project: its id and its examples' pks by example_id."""

    id: int
    pk: dict[str, int]

    def ids(self, pks: list[int]) -> list[str]:
        by_pk = {v: k for k, v in self.pk.items()}
        return [by_pk[p] for p in pks]


@pytest.fixture
def run(db: Database, write_predictions) -> Run:
    """Project "run1": 9 dev errors in three confusion pairs, 3 correct, 2 non-dev errors."""
    return _import(db, write_predictions, "run1", "run1.csv")


@pytest.fixture
def other(db: Database, write_predictions, run: Run) -> Run:
    """Project "run2" with the same rows, to check nothing leaks across projects."""
    return _import(db, write_predictions, "run2", "run2.csv")


# --- the queue ---------------------------------------------------------------------------


def test_only_dev_errors_are_ever_in_the_queue(db: Database, run: Run, other: Run) -> None:
    """The queue holds the project's misclassified dev examples: no correct, test, train or
    other-project examples, whatever the order."""
    with db.begin() as session:
        for order in ORDERS:
            queue = QueueFilter(states=(), order=order)
            pks = labeling.queue_ids(session, project_id=run.id, queue=queue, limit=100)
            assert sorted(run.ids(pks)) == DEV_ERRORS
            assert labeling.queue_count(session, project_id=run.id, queue=queue) == 9


def test_the_default_queue_shows_unreviewed_errors(db: Database, run: Run) -> None:
    """A new QueueFilter shows unreviewed errors only; reviewed and skipped ones leave it."""
    with db.begin() as session:
        labeling.mark_reviewed(session, example_pks=[run.pk["e00"]], reviewer="ann")
        labeling.skip_example(session, example_pk=run.pk["e01"])

    with db.begin() as session:
        pks = labeling.queue_ids(session, project_id=run.id, queue=QueueFilter(), limit=100)
        assert sorted(run.ids(pks)) == DEV_ERRORS[2:]
        assert labeling.queue_count(session, project_id=run.id, queue=QueueFilter()) == 7


def test_filter_by_several_states(db: Database, run: Run) -> None:
    """Several states select the union of their examples."""
    with db.begin() as session:
        labeling.mark_reviewed(session, example_pks=[run.pk["e00"]], reviewer="ann")
        labeling.skip_example(session, example_pk=run.pk["e01"])

    assert _queue(db, run, QueueFilter(states=(REVIEWED, SKIPPED))) == {"e00", "e01"}
    assert _queue(db, run, QueueFilter(states=(SKIPPED,))) == {"e01"}


def test_filter_by_confusion_pair(db: Database, run: Run) -> None:
    """A confusion pair selects its dev errors only (not the same pair in the test split)."""
    queue = QueueFilter(states=(), confusion_pair=("cat", "dog"))

    assert _queue(db, run, queue) == {"e00", "e01", "e02", "e03", "e04"}
    with db.begin() as session:
        assert labeling.queue_count(session, project_id=run.id, queue=queue) == 5
    assert _queue(db, run, QueueFilter(states=(), confusion_pair=("dog", "cat"))) == set()


def test_filter_by_category_and_by_no_category(db: Database, run: Run) -> None:
    """A category selects the errors anyone tagged with it; NO_CATEGORY the untagged ones."""
    with db.begin() as session:
        blurry = create_category(session, project_id=run.id, name="blurry").id
        dark = create_category(session, project_id=run.id, name="dark").id
        labeling.toggle_tag(session, example_pk=run.pk["e00"], category_id=blurry, reviewer="ann")
        labeling.toggle_tag(session, example_pk=run.pk["e05"], category_id=blurry, reviewer="bob")
        labeling.toggle_tag(session, example_pk=run.pk["e06"], category_id=dark, reviewer="ann")

    assert _queue(db, run, QueueFilter(states=(), category_id=blurry)) == {"e00", "e05"}
    assert _queue(db, run, QueueFilter(states=(), category_id=dark)) == {"e06"}
    assert _queue(db, run, QueueFilter(states=(), category_id=NO_CATEGORY)) == set(DEV_ERRORS) - {
        "e00",
        "e05",
        "e06",
    }


def test_filter_by_confidence_range_keeps_examples_without_confidence(
    db: Database, run: Run
) -> None:
    """A confidence range selects errors within it (ends included); an error with no
    confidence is not hidden by it."""
    queue = QueueFilter(states=(), min_confidence=0.6, max_confidence=0.9)

    assert _queue(db, run, queue) == {"e00", "e01", "e02", "e03", "e06", "e08"}


def test_filters_combine(db: Database, run: Run) -> None:
    """State, pair and confidence filters narrow the queue together."""
    with db.begin() as session:
        labeling.mark_reviewed(session, example_pks=[run.pk["e01"]], reviewer="ann")
    queue = QueueFilter(confusion_pair=("cat", "dog"), min_confidence=0.65)

    assert _queue(db, run, queue) == {"e00", "e02", "e03"}


def test_random_order_is_a_fixed_shuffle(db: Database, run: Run) -> None:
    """Random order is the same every time, follows the fixed shuffle key, and is not the
    example_id order."""
    with db.begin() as session:
        first = labeling.queue_ids(session, project_id=run.id, queue=ALL, limit=100)
    with db.begin() as session:
        second = labeling.queue_ids(session, project_id=run.id, queue=ALL, limit=100)

    assert first == second
    assert run.ids(first) == sorted(DEV_ERRORS, key=shuffle_key)
    assert run.ids(first) != DEV_ERRORS


def test_most_confident_first_puts_missing_confidence_last(db: Database, run: Run) -> None:
    """ "most confident first" sorts by confidence, highest first, ties by import order, and
    puts an error with no confidence at the end."""
    queue = QueueFilter(states=(), order="most confident first")
    with db.begin() as session:
        ids = run.ids(labeling.queue_ids(session, project_id=run.id, queue=queue, limit=100))

    assert ids == ["e05", "e00", "e08", "e01", "e02", "e06", "e04", "e07", "e03"]


def test_least_confident_first_sorts_upwards(db: Database, run: Run) -> None:
    """ "least confident first" sorts the known confidences lowest first."""
    queue = QueueFilter(states=(), order="least confident first")
    with db.begin() as session:
        ids = run.ids(labeling.queue_ids(session, project_id=run.id, queue=queue, limit=100))

    known = [CONFIDENCE[i] for i in ids if CONFIDENCE[i] is not None]
    assert known == sorted(known)
    assert known[0] == 0.40
    assert sorted(ids) == DEV_ERRORS


def test_an_unknown_order_is_refused(db: Database, run: Run) -> None:
    """An order name that is not one of ORDERS raises ValueError naming the valid ones."""
    with db.begin() as session, pytest.raises(ValueError, match="most confident first"):
        labeling.queue_ids(session, project_id=run.id, queue=QueueFilter(order="newest"))


def test_queue_pages_follow_the_order(db: Database, run: Run) -> None:
    """queue_ids' offset and limit cut the same ordered list into pages."""
    with db.begin() as session:
        whole = labeling.queue_ids(session, project_id=run.id, queue=ALL, limit=100)
        pages = [
            labeling.queue_ids(session, project_id=run.id, queue=ALL, offset=o, limit=4)
            for o in (0, 4, 8)
        ]

    assert [len(p) for p in pages] == [4, 4, 1]
    assert pages[0] + pages[1] + pages[2] == whole


@pytest.mark.parametrize("order", ORDERS)
def test_next_and_previous_walk_the_whole_queue(db: Database, run: Run, order: str) -> None:
    """next_in_queue from the first example visits every queue example once, in queue order,
    and previous_in_queue walks the same list backwards (ties in confidence included)."""
    queue = QueueFilter(states=(), order=order)
    with db.begin() as session:
        expected = labeling.queue_ids(session, project_id=run.id, queue=queue, limit=100)
        forward = [labeling.first_in_queue(session, project_id=run.id, queue=queue)]
        while (step := _next(session, run, queue, forward[-1])) is not None:
            forward.append(step)
            assert len(forward) <= len(expected)
        backward = [expected[-1]]
        while (
            step := labeling.previous_in_queue(
                session, project_id=run.id, queue=queue, before=backward[-1]
            )
        ) is not None:
            backward.append(step)
            assert len(backward) <= len(expected)

    assert forward == expected
    assert backward == expected[::-1]


@pytest.mark.parametrize("order", ORDERS)
def test_queue_position_counts_the_examples_before(db: Database, run: Run, order: str) -> None:
    """queue_position of each queue example is its 0-based index in queue order."""
    queue = QueueFilter(states=(), order=order)
    with db.begin() as session:
        pks = labeling.queue_ids(session, project_id=run.id, queue=queue, limit=100)
        positions = [
            labeling.queue_position(session, project_id=run.id, queue=queue, pk=pk) for pk in pks
        ]

    assert positions == list(range(9))


def test_next_works_after_the_current_example_leaves_the_queue(db: Database, run: Run) -> None:
    """Marking the current example reviewed (so it leaves an "unreviewed" queue) still lets
    next_in_queue find the example that followed it."""
    queue = QueueFilter()
    with db.begin() as session:
        order = labeling.queue_ids(session, project_id=run.id, queue=queue, limit=100)
    visited = []
    current = order[0]
    with db.begin() as session:
        while current is not None:
            visited.append(current)
            labeling.mark_reviewed(session, example_pks=[current], reviewer="ann")
            current = _next(session, run, queue, current)
            assert len(visited) <= len(order)

    assert visited == order
    with db.begin() as session:
        assert labeling.queue_count(session, project_id=run.id, queue=queue) == 0
        assert labeling.first_in_queue(session, project_id=run.id, queue=queue) is None


def test_previous_of_the_first_and_next_of_the_last_are_none(db: Database, run: Run) -> None:
    """The queue has ends: nothing before its first example, nothing after its last."""
    with db.begin() as session:
        pks = labeling.queue_ids(session, project_id=run.id, queue=ALL, limit=100)

        assert (
            labeling.previous_in_queue(session, project_id=run.id, queue=ALL, before=pks[0]) is None
        )
        assert _next(session, run, ALL, pks[-1]) is None


# --- tagging -------------------------------------------------------------------------------


def test_toggle_tag_tags_then_untags(db: Database, run: Run) -> None:
    """toggle_tag adds the reviewer's tag and returns True, then removes it and returns False."""
    pk = run.pk["e00"]
    with db.begin() as session:
        blurry = create_category(session, project_id=run.id, name="blurry").id

    with db.begin() as session:
        assert labeling.toggle_tag(session, example_pk=pk, category_id=blurry, reviewer="ann")
    assert _tags(db) == {(pk, blurry, "ann")}
    with db.begin() as session:
        view = labeling.get_example_view(session, pk=pk)
        assert view.tags_of("ann") == {blurry}
        assert view.tags_of("bob") == set()

    with db.begin() as session:
        assert not labeling.toggle_tag(session, example_pk=pk, category_id=blurry, reviewer="ann")
    assert _tags(db) == set()


def test_two_reviewers_tag_the_same_example_independently(db: Database, run: Run) -> None:
    """Each reviewer has their own tag on an example; one untagging leaves the other's."""
    pk = run.pk["e00"]
    with db.begin() as session:
        blurry = create_category(session, project_id=run.id, name="blurry").id
        labeling.toggle_tag(session, example_pk=pk, category_id=blurry, reviewer="ann")
        labeling.toggle_tag(session, example_pk=pk, category_id=blurry, reviewer="  bob ")

    assert _tags(db) == {(pk, blurry, "ann"), (pk, blurry, "bob")}
    with db.begin() as session:
        view = labeling.get_example_view(session, pk=pk)
        assert view.tagged_by_others("ann") == {blurry: ["bob"]}
        labeling.toggle_tag(session, example_pk=pk, category_id=blurry, reviewer="ann")
    assert _tags(db) == {(pk, blurry, "bob")}


def test_a_tag_is_unique_per_example_category_and_reviewer(db: Database, run: Run) -> None:
    """The database refuses a second identical tag (example x category x reviewer)."""
    pk = run.pk["e00"]
    with db.begin() as session:
        blurry = create_category(session, project_id=run.id, name="blurry").id
        labeling.toggle_tag(session, example_pk=pk, category_id=blurry, reviewer="ann")

    with pytest.raises(IntegrityError), db.begin() as session:
        session.execute(
            insert(Tag).values(
                example_pk=pk, category_id=blurry, reviewer="ann", tagged_at=datetime.now(UTC)
            )
        )
    assert _tags(db) == {(pk, blurry, "ann")}


def test_set_tag_tags_and_untags_many_and_counts_changes(db: Database, run: Run) -> None:
    """set_tag tags the examples not yet tagged by this reviewer and counts only those;
    untagging counts the tags it removed."""
    with db.begin() as session:
        blurry = create_category(session, project_id=run.id, name="blurry").id
        labeling.toggle_tag(session, example_pk=run.pk["e00"], category_id=blurry, reviewer="ann")
    chosen = [run.pk[i] for i in ("e00", "e01", "e02", "e02")]

    with db.begin() as session:
        assert (
            labeling.set_tag(session, example_pks=chosen, category_id=blurry, reviewer="ann") == 2
        )
        assert (
            labeling.set_tag(session, example_pks=chosen, category_id=blurry, reviewer="bob") == 3
        )
    assert len(_tags(db)) == 6

    with db.begin() as session:
        assert (
            labeling.set_tag(
                session,
                example_pks=[run.pk["e01"], run.pk["e05"]],
                category_id=blurry,
                reviewer="ann",
                tagged=False,
            )
            == 1
        )
        assert labeling.set_tag(session, example_pks=[], category_id=blurry, reviewer="ann") == 0
    assert {(pk, who) for pk, _, who in _tags(db) if who == "ann"} == {
        (run.pk["e00"], "ann"),
        (run.pk["e02"], "ann"),
    }


def test_set_tag_ignores_examples_of_another_project(db: Database, run: Run, other: Run) -> None:
    """Bulk tagging with a category skips examples that belong to another project."""
    with db.begin() as session:
        blurry = create_category(session, project_id=run.id, name="blurry").id
        changed = labeling.set_tag(
            session,
            example_pks=[run.pk["e00"], other.pk["e00"], other.pk["e01"]],
            category_id=blurry,
            reviewer="ann",
        )

    assert changed == 1
    assert _tags(db) == {(run.pk["e00"], blurry, "ann")}


def test_a_category_of_another_project_is_refused(db: Database, run: Run, other: Run) -> None:
    """toggle_tag refuses a category that belongs to another project, and an unknown one."""
    with db.begin() as session:
        theirs = create_category(session, project_id=other.id, name="blurry").id

    with db.begin() as session, pytest.raises(UnknownCategory, match="in this project"):
        labeling.toggle_tag(session, example_pk=run.pk["e00"], category_id=theirs, reviewer="ann")
    with db.begin() as session, pytest.raises(UnknownCategory):
        labeling.toggle_tag(session, example_pk=run.pk["e00"], category_id=9999, reviewer="ann")
    with db.begin() as session, pytest.raises(UnknownCategory):
        labeling.set_tag(session, example_pks=[run.pk["e00"]], category_id=9999, reviewer="ann")
    assert _tags(db) == set()


@pytest.mark.parametrize("name", ["", "   ", "\t"])
def test_an_empty_reviewer_name_is_refused(db: Database, run: Run, name: str) -> None:
    """Tagging, bulk tagging and marking reviewed all need a reviewer name."""
    pk = run.pk["e00"]
    with db.begin() as session:
        blurry = create_category(session, project_id=run.id, name="blurry").id

    with db.begin() as session, pytest.raises(InvalidInput, match="reviewer name"):
        labeling.toggle_tag(session, example_pk=pk, category_id=blurry, reviewer=name)
    with db.begin() as session, pytest.raises(InvalidInput, match="reviewer name"):
        labeling.set_tag(session, example_pks=[pk], category_id=blurry, reviewer=name)
    with db.begin() as session, pytest.raises(InvalidInput, match="reviewer name"):
        labeling.mark_reviewed(session, example_pks=[pk], reviewer=name)
    assert _tags(db) == set()
    assert _states(db, run)["e00"] == UNREVIEWED


# --- reviewing -----------------------------------------------------------------------------


def test_mark_reviewed_keeps_one_review_row_per_reviewer(
    db: Database, run: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    """mark_reviewed sets "reviewed" and records one Review per reviewer, refreshing its time
    when the same reviewer marks the example again."""
    pk = run.pk["e00"]
    monday, tuesday = datetime(2025, 1, 6, tzinfo=UTC), datetime(2025, 1, 7, tzinfo=UTC)
    monkeypatch.setattr(labeling, "utcnow", lambda: monday)
    with db.begin() as session:
        labeling.mark_reviewed(session, example_pks=[pk, pk], reviewer="ann")
    monkeypatch.setattr(labeling, "utcnow", lambda: tuesday)
    with db.begin() as session:
        labeling.mark_reviewed(session, example_pks=[pk], reviewer="ann")
        labeling.mark_reviewed(session, example_pks=[pk, run.pk["e01"]], reviewer="bob")

    with db.begin() as session:
        reviews = session.execute(
            select(Review.example_pk, Review.reviewer, Review.reviewed_at).order_by(
                Review.reviewer, Review.example_pk
            )
        ).all()
    assert [(r.example_pk, r.reviewer) for r in reviews] == [
        (pk, "ann"),
        (pk, "bob"),
        (run.pk["e01"], "bob"),
    ]
    assert [_utc(r.reviewed_at) for r in reviews] == [tuesday, tuesday, tuesday]
    assert _states(db, run)["e00"] == REVIEWED
    assert _states(db, run)["e01"] == REVIEWED


def test_skip_puts_an_unreviewed_example_aside_only(db: Database, run: Run) -> None:
    """skip_example marks an unreviewed example "skipped" but leaves a reviewed one reviewed."""
    with db.begin() as session:
        labeling.mark_reviewed(session, example_pks=[run.pk["e01"]], reviewer="ann")
        labeling.skip_example(session, example_pk=run.pk["e00"])
        labeling.skip_example(session, example_pk=run.pk["e01"])

    states = _states(db, run)
    assert (states["e00"], states["e01"]) == (SKIPPED, REVIEWED)


def test_set_comment_saves_the_trimmed_text(db: Database, run: Run) -> None:
    """set_comment stores the comment without surrounding whitespace."""
    with db.begin() as session:
        labeling.set_comment(session, example_pk=run.pk["e00"], comment="  looks like a fox \n")

    with db.begin() as session:
        assert labeling.get_example_view(session, pk=run.pk["e00"]).comment == "looks like a fox"


def test_set_corrected_label_accepts_only_the_projects_classes(db: Database, run: Run) -> None:
    """A corrected label must be one of the project's classes; None clears it."""
    pk = run.pk["e00"]
    with db.begin() as session, pytest.raises(InvalidInput, match="unknown label 'wolf'"):
        labeling.set_corrected_label(session, example_pk=pk, corrected_label="wolf")
    with db.begin() as session:
        assert labeling.get_example_view(session, pk=pk).corrected_label is None
        labeling.set_corrected_label(session, example_pk=pk, corrected_label="dog")
    with db.begin() as session:
        assert labeling.get_example_view(session, pk=pk).corrected_label == "dog"
        labeling.set_corrected_label(session, example_pk=pk, corrected_label=None)
    with db.begin() as session:
        assert labeling.get_example_view(session, pk=pk).corrected_label is None


def test_example_view_shows_the_top_three_probabilities(db: Database, write_predictions) -> None:
    """get_example_view lists the three most probable classes, most probable first."""
    path = write_predictions(
        [
            {
                "example_id": "x1",
                "image": "images/x1.png",
                "label": "cat",
                "prediction": "dog",
                "prob_cat": "0.2",
                "prob_dog": "0.5",
                "prob_fox": "0.25",
                "prob_owl": "0.05",
            }
        ],
        name="probs.csv",
    )
    with db.begin() as session:
        import_predictions(session, path, project="probs")
    with db.begin() as session:
        pk = session.scalar(select(Example.id).where(Example.example_id == "x1"))
        view = labeling.get_example_view(session, pk=pk)

    assert view.top_probabilities == [("dog", 0.5), ("fox", 0.25), ("cat", 0.2)]
    assert (view.confidence, view.confusion_pair) == (0.5, "cat-as-dog")


def test_a_category_added_mid_review_sends_reviewed_examples_to_re_review(
    db: Database, run: Run
) -> None:
    """Creating a category moves the reviewed examples to "needs re-review", and the queue
    filtered on that state shows exactly them."""
    done = ["e00", "e04", "e07"]
    with db.begin() as session:
        labeling.mark_reviewed(session, example_pks=[run.pk[i] for i in done], reviewer="ann")
        labeling.skip_example(session, example_pk=run.pk["e01"])
    with db.begin() as session:
        create_category(session, project_id=run.id, name="instagram filter")

    assert _queue(db, run, QueueFilter(states=(NEEDS_REREVIEW,))) == set(done)
    assert _queue(db, run, QueueFilter(states=(REVIEWED,))) == set()
    assert _states(db, run)["e01"] == SKIPPED
    with db.begin() as session:
        progress = labeling.review_progress(session, project_id=run.id)
    assert (progress.reviewed, progress.needs_rereview) == (3, 3)


def test_category_from_confusion_pair_tags_that_pairs_dev_errors(db: Database, run: Run) -> None:
    """category_from_confusion_pair creates "cat-as-dog" and tags exactly the pair's dev errors
    for the reviewer, without sending reviewed examples to re-review."""
    with db.begin() as session:
        labeling.mark_reviewed(session, example_pks=[run.pk["e00"], run.pk["e05"]], reviewer="ann")

    with db.begin() as session:
        category, tagged = labeling.category_from_confusion_pair(
            session, project_id=run.id, label="cat", prediction="dog", reviewer="ann"
        )
        category_id = category.id
        assert (category.name, tagged) == ("cat-as-dog", 5)

    assert _tags(db) == {
        (run.pk[i], category_id, "ann") for i in ("e00", "e01", "e02", "e03", "e04")
    }
    states = _states(db, run)
    assert (states["e00"], states["e05"]) == (REVIEWED, REVIEWED)


def test_category_from_confusion_pair_is_idempotent(db: Database, run: Run) -> None:
    """Making the same pair a category twice keeps one category and tags nothing new."""
    with db.begin() as session:
        first, _ = labeling.category_from_confusion_pair(
            session, project_id=run.id, label="dog", prediction="fox", reviewer="ann"
        )
        first_id = first.id
    with db.begin() as session:
        again, tagged = labeling.category_from_confusion_pair(
            session, project_id=run.id, label="dog", prediction="fox", reviewer="ann"
        )

        assert (again.id, tagged) == (first_id, 0)
        assert session.scalar(select(func.count()).select_from(Category)) == 1
    assert len(_tags(db)) == 3


def test_confusion_pairs_are_counted_most_frequent_first(db: Database, run: Run) -> None:
    """confusion_pairs counts the dev errors per (label, prediction), most frequent first."""
    with db.begin() as session:
        pairs = labeling.confusion_pairs(session, project_id=run.id)

    assert pairs.to_dict("records") == [
        {"label": "cat", "prediction": "dog", "confusion_pair": "cat-as-dog", "errors": 5},
        {"label": "dog", "prediction": "fox", "confusion_pair": "dog-as-fox", "errors": 3},
        {"label": "fox", "prediction": "cat", "confusion_pair": "fox-as-cat", "errors": 1},
    ]


def test_review_progress_counts_states(db: Database, run: Run) -> None:
    """review_progress counts the dev errors per state; reviewed includes needs re-review."""
    with db.begin() as session:
        labeling.mark_reviewed(session, example_pks=[run.pk["e00"]], reviewer="ann")
        create_category(session, project_id=run.id, name="blurry")
        labeling.mark_reviewed(session, example_pks=[run.pk["e01"]], reviewer="ann")
        labeling.skip_example(session, example_pk=run.pk["e02"])

    with db.begin() as session:
        progress = labeling.review_progress(session, project_id=run.id)

    assert progress.misclassified == 9
    assert progress.by_state == {
        UNREVIEWED: 6,
        REVIEWED: 1,
        SKIPPED: 1,
        NEEDS_REREVIEW: 1,
    }
    assert (progress.reviewed, progress.needs_rereview) == (2, 1)
    assert progress.guidance.startswith("2 errors reviewed: too few")


@pytest.mark.parametrize(
    ("reviewed", "wording"),
    [
        (0, "0 errors reviewed: too few to rank categories yet (about 20 give a rough sense)"),
        (1, "1 error reviewed: too few to rank categories yet (about 20 give a rough sense)"),
        (9, "9 errors reviewed: too few to rank categories yet (about 20 give a rough sense)"),
        (
            10,
            "10 errors reviewed: very few, too few to rank categories yet "
            "(about 20 give a rough sense)",
        ),
        (
            19,
            "19 errors reviewed: very few, too few to rank categories yet "
            "(about 20 give a rough sense)",
        ),
        (20, "20 errors reviewed: a rough sense (50 would be good)"),
        (49, "49 errors reviewed: a rough sense (50 would be good)"),
        (50, "50 errors reviewed: good (100 would be very good)"),
        (99, "99 errors reviewed: good (100 would be very good)"),
        (100, "100 errors reviewed: very good"),
        (1000, "1000 errors reviewed: very good"),
    ],
)
def test_sample_guidance_follows_the_10_20_50_100_guide(reviewed: int, wording: str) -> None:
    """The progress line says what the sample supports: 10 very few, 20 a rough sense, 50 good,
    100 very good."""
    assert labeling.sample_guidance(reviewed) == wording


# --- query counts --------------------------------------------------------------------------


def test_the_review_screens_queries_do_not_grow_with_the_project(
    db: Database, write_predictions
) -> None:
    """get_example_view, queue_count and next_in_queue each run the same small number of SQL
    statements on a 10-example and a 500-example project (nothing loads the whole table)."""
    counts = []
    for n, errors in ((10, 8), (500, 400)):
        path = write_predictions(make_rows(n, errors=errors), name=f"n{n}.csv", images=False)
        with db.begin() as session:
            import_predictions(session, path, project=f"n{n}", check_images=False)
            project_id = session.scalar(select(func.max(Example.project_id)))
            blurry = create_category(session, project_id=project_id, name="blurry").id
        with db.begin() as session:
            pks = labeling.queue_ids(session, project_id=project_id, queue=ALL, limit=n)
            labeling.set_tag(session, example_pks=pks, category_id=blurry, reviewer="ann")
            labeling.set_tag(session, example_pks=pks[:3], category_id=blurry, reviewer="bob")
        first = pks[0]
        per_call = {}
        with _statements(db.engine) as seen, db.begin() as session:
            labeling.get_example_view(session, pk=first)
        per_call["get_example_view"] = len(seen)
        with _statements(db.engine) as seen, db.begin() as session:
            labeling.queue_count(session, project_id=project_id, queue=QueueFilter())
        per_call["queue_count"] = len(seen)
        with _statements(db.engine) as seen, db.begin() as session:
            labeling.next_in_queue(session, project_id=project_id, queue=QueueFilter(), after=first)
        per_call["next_in_queue"] = len(seen)
        counts.append(per_call)

    small, large = counts
    assert small == large
    assert all(0 < n <= 2 for n in small.values()), small


# --- helpers -------------------------------------------------------------------------------


def _import(db: Database, write_predictions, project: str, file: str) -> Run:
    rows = [
        {
            "example_id": example_id,
            "image": f"images/{example_id}.png",
            "label": label,
            "prediction": prediction,
            "confidence": confidence,
            "split": split,
        }
        for example_id, label, prediction, confidence, split in ROWS
    ]
    path = write_predictions(rows, name=file)
    with db.begin() as session:
        import_predictions(session, path, project=project)
    with db.begin() as session:
        project_id = session.scalar(select(func.max(Example.project_id)))
        pks = dict(
            session.execute(
                select(Example.example_id, Example.id).where(Example.project_id == project_id)
            ).all()
        )
    return Run(id=project_id, pk=pks)


def _queue(db: Database, run: Run, queue: QueueFilter) -> set[str]:
    with db.begin() as session:
        pks = labeling.queue_ids(session, project_id=run.id, queue=queue, limit=1000)
    return set(run.ids(pks))


def _next(session, run: Run, queue: QueueFilter, after: int) -> int | None:
    return labeling.next_in_queue(session, project_id=run.id, queue=queue, after=after)


def _tags(db: Database) -> set[tuple[int, int, str]]:
    with db.begin() as session:
        return {
            tuple(r) for r in session.execute(select(Tag.example_pk, Tag.category_id, Tag.reviewer))
        }


def _states(db: Database, run: Run) -> dict[str, str]:
    with db.begin() as session:
        return dict(
            session.execute(
                select(Example.example_id, Example.review_state).where(Example.project_id == run.id)
            ).all()
        )


def _utc(moment: datetime) -> datetime:
    """SQLite hands back naive UTC times, PostgreSQL aware ones in the session's zone."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


@contextmanager
def _statements(engine: Engine) -> Iterator[list[str]]:
    seen: list[str] = []

    def record(_conn, _cursor, statement, _params, _context, _many) -> None:
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)
