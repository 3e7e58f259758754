"""The review queue: its filters and orders, pages, keyset next/previous and position,
confusion pairs, progress counts and wording, and a constant query count."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from labeltool import labeling, review_queue
from labeltool.categories import create_category
from labeltool.db import Database
from labeltool.importing import import_predictions, shuffle_key
from labeltool.models import Example
from labeltool.review_queue import NO_CATEGORY, ORDERS, QueueFilter
from tests.conftest import make_rows, recorded_statements
from tests.review_scenario import (
    ALL,
    CONFIDENCE,
    DEV_ERRORS,
    NEEDS_REREVIEW,
    REVIEWED,
    SKIPPED,
    UNREVIEWED,
    Run,
    queue_examples,
)

# --- filters and orders --------------------------------------------------------------------


def test_only_dev_errors_are_ever_in_the_queue(db: Database, run: Run, other: Run) -> None:
    """The queue holds the project's misclassified dev examples: no correct, test, train or
    other-project examples, whatever the order."""
    with db.begin() as session:
        for order in ORDERS:
            queue = QueueFilter(states=(), order=order)
            pks = review_queue.queue_ids(session, project_id=run.id, queue=queue, limit=100)
            assert sorted(run.ids(pks)) == DEV_ERRORS
            assert review_queue.queue_count(session, project_id=run.id, queue=queue) == 9


def test_the_default_queue_shows_unreviewed_errors(db: Database, run: Run) -> None:
    """A new QueueFilter shows unreviewed errors only; reviewed and skipped ones leave it."""
    with db.begin() as session:
        labeling.mark_reviewed(session, example_pks=[run.pk["e00"]], reviewer="ann")
        labeling.skip_example(session, example_pk=run.pk["e01"])

    with db.begin() as session:
        pks = review_queue.queue_ids(session, project_id=run.id, queue=QueueFilter(), limit=100)
        assert sorted(run.ids(pks)) == DEV_ERRORS[2:]
        assert review_queue.queue_count(session, project_id=run.id, queue=QueueFilter()) == 7


def test_filter_by_several_states(db: Database, run: Run) -> None:
    """Several states select the union of their examples."""
    with db.begin() as session:
        labeling.mark_reviewed(session, example_pks=[run.pk["e00"]], reviewer="ann")
        labeling.skip_example(session, example_pk=run.pk["e01"])

    assert queue_examples(db, run, QueueFilter(states=(REVIEWED, SKIPPED))) == {"e00", "e01"}
    assert queue_examples(db, run, QueueFilter(states=(SKIPPED,))) == {"e01"}


def test_filter_by_confusion_pair(db: Database, run: Run) -> None:
    """A confusion pair selects its dev errors only (not the same pair in the test split)."""
    queue = QueueFilter(states=(), confusion_pair=("cat", "dog"))

    assert queue_examples(db, run, queue) == {"e00", "e01", "e02", "e03", "e04"}
    with db.begin() as session:
        assert review_queue.queue_count(session, project_id=run.id, queue=queue) == 5
    assert queue_examples(db, run, QueueFilter(states=(), confusion_pair=("dog", "cat"))) == set()


def test_filter_by_category_and_by_no_category(db: Database, run: Run) -> None:
    """A category selects the errors anyone tagged with it; NO_CATEGORY the untagged ones."""
    with db.begin() as session:
        blurry = create_category(session, project_id=run.id, name="blurry").id
        dark = create_category(session, project_id=run.id, name="dark").id
        labeling.toggle_tag(session, example_pk=run.pk["e00"], category_id=blurry, reviewer="ann")
        labeling.toggle_tag(session, example_pk=run.pk["e05"], category_id=blurry, reviewer="bob")
        labeling.toggle_tag(session, example_pk=run.pk["e06"], category_id=dark, reviewer="ann")

    assert queue_examples(db, run, QueueFilter(states=(), category_id=blurry)) == {"e00", "e05"}
    assert queue_examples(db, run, QueueFilter(states=(), category_id=dark)) == {"e06"}
    untagged = set(DEV_ERRORS) - {"e00", "e05", "e06"}
    assert queue_examples(db, run, QueueFilter(states=(), category_id=NO_CATEGORY)) == untagged


def test_filter_by_confidence_range_keeps_examples_without_confidence(
    db: Database, run: Run
) -> None:
    """A confidence range selects errors within it (ends included); an error with no
    confidence is not hidden by it."""
    queue = QueueFilter(states=(), min_confidence=0.6, max_confidence=0.9)

    assert queue_examples(db, run, queue) == {"e00", "e01", "e02", "e03", "e06", "e08"}


def test_filters_combine(db: Database, run: Run) -> None:
    """State, pair and confidence filters narrow the queue together."""
    with db.begin() as session:
        labeling.mark_reviewed(session, example_pks=[run.pk["e01"]], reviewer="ann")
    queue = QueueFilter(confusion_pair=("cat", "dog"), min_confidence=0.65)

    assert queue_examples(db, run, queue) == {"e00", "e02", "e03"}


def test_random_order_is_a_fixed_shuffle(db: Database, run: Run) -> None:
    """Random order is the same every time, follows the fixed shuffle key, and is not the
    example_id order."""
    with db.begin() as session:
        first = review_queue.queue_ids(session, project_id=run.id, queue=ALL, limit=100)
    with db.begin() as session:
        second = review_queue.queue_ids(session, project_id=run.id, queue=ALL, limit=100)

    assert first == second
    assert run.ids(first) == sorted(DEV_ERRORS, key=shuffle_key)
    assert run.ids(first) != DEV_ERRORS


def test_most_confident_first_puts_missing_confidence_last(db: Database, run: Run) -> None:
    """ "most confident first" sorts by confidence, highest first, ties by import order, and
    puts an error with no confidence at the end."""
    queue = QueueFilter(states=(), order="most confident first")
    with db.begin() as session:
        ids = run.ids(review_queue.queue_ids(session, project_id=run.id, queue=queue, limit=100))

    assert ids == ["e05", "e00", "e08", "e01", "e02", "e06", "e04", "e07", "e03"]


def test_least_confident_first_sorts_upwards(db: Database, run: Run) -> None:
    """ "least confident first" sorts the known confidences lowest first."""
    queue = QueueFilter(states=(), order="least confident first")
    with db.begin() as session:
        ids = run.ids(review_queue.queue_ids(session, project_id=run.id, queue=queue, limit=100))

    known = [CONFIDENCE[i] for i in ids if CONFIDENCE[i] is not None]
    assert known == sorted(known)
    assert known[0] == 0.40
    assert sorted(ids) == DEV_ERRORS


def test_an_unknown_order_is_refused(db: Database, run: Run) -> None:
    """An order name that is not one of ORDERS raises ValueError naming the valid ones."""
    with db.begin() as session, pytest.raises(ValueError, match="most confident first"):
        review_queue.queue_ids(session, project_id=run.id, queue=QueueFilter(order="newest"))


def test_queue_pages_follow_the_order(db: Database, run: Run) -> None:
    """queue_ids' offset and limit cut the same ordered list into pages."""
    with db.begin() as session:
        whole = review_queue.queue_ids(session, project_id=run.id, queue=ALL, limit=100)
        pages = [
            review_queue.queue_ids(session, project_id=run.id, queue=ALL, offset=o, limit=4)
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
        expected = review_queue.queue_ids(session, project_id=run.id, queue=queue, limit=100)
        forward = [review_queue.first_in_queue(session, project_id=run.id, queue=queue)]
        while (step := _next(session, run, queue, forward[-1])) is not None:
            forward.append(step)
            assert len(forward) <= len(expected)
        backward = [expected[-1]]
        while (
            step := review_queue.previous_in_queue(
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
        pks = review_queue.queue_ids(session, project_id=run.id, queue=queue, limit=100)
        positions = [
            review_queue.queue_position(session, project_id=run.id, queue=queue, pk=pk)
            for pk in pks
        ]

    assert positions == list(range(9))


def test_next_works_after_the_current_example_leaves_the_queue(db: Database, run: Run) -> None:
    """Marking the current example reviewed (so it leaves an "unreviewed" queue) still lets
    next_in_queue find the example that followed it."""
    queue = QueueFilter()
    with db.begin() as session:
        order = review_queue.queue_ids(session, project_id=run.id, queue=queue, limit=100)
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
        assert review_queue.queue_count(session, project_id=run.id, queue=queue) == 0
        assert review_queue.first_in_queue(session, project_id=run.id, queue=queue) is None


def test_previous_of_the_first_and_next_of_the_last_are_none(db: Database, run: Run) -> None:
    """The queue has ends: nothing before its first example, nothing after its last."""
    with db.begin() as session:
        pks = review_queue.queue_ids(session, project_id=run.id, queue=ALL, limit=100)

        assert (
            review_queue.previous_in_queue(session, project_id=run.id, queue=ALL, before=pks[0])
            is None
        )
        assert _next(session, run, ALL, pks[-1]) is None


# --- confusion pairs and progress ----------------------------------------------------------


def test_confusion_pairs_are_counted_most_frequent_first(db: Database, run: Run) -> None:
    """confusion_pairs counts the dev errors per (label, prediction), most frequent first."""
    with db.begin() as session:
        pairs = review_queue.confusion_pairs(session, project_id=run.id)

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
        progress = review_queue.review_progress(session, project_id=run.id)

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
    assert review_queue.sample_guidance(reviewed) == wording


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
            pks = review_queue.queue_ids(session, project_id=project_id, queue=ALL, limit=n)
            labeling.set_tag(session, example_pks=pks, category_id=blurry, reviewer="ann")
            labeling.set_tag(session, example_pks=pks[:3], category_id=blurry, reviewer="bob")
        first = pks[0]
        per_call = {}
        with recorded_statements(db.engine) as seen, db.begin() as session:
            labeling.get_example_view(session, pk=first)
        per_call["get_example_view"] = len(seen)
        with recorded_statements(db.engine) as seen, db.begin() as session:
            review_queue.queue_count(session, project_id=project_id, queue=QueueFilter())
        per_call["queue_count"] = len(seen)
        with recorded_statements(db.engine) as seen, db.begin() as session:
            review_queue.next_in_queue(
                session, project_id=project_id, queue=QueueFilter(), after=first
            )
        per_call["next_in_queue"] = len(seen)
        counts.append(per_call)

    small, large = counts
    assert small == large
    # get_example_view: the example and its tags, then its suggestions (signals, one query).
    assert all(0 < n <= 3 for n in small.values()), small


# --- helpers -------------------------------------------------------------------------------


def _next(session, run: Run, queue: QueueFilter, after: int) -> int | None:
    return review_queue.next_in_queue(session, project_id=run.id, queue=queue, after=after)
