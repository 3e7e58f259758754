"""The review queue: which misclassified dev examples a reviewer sees, in what order, and how
far the review has got.

A `QueueFilter` selects the project's dev errors by review state, confusion pair, category and
confidence, in a fair random order or by the model's confidence. A reviewer's own unreviewed
queue also holds the double review's overlap errors waiting for a second reviewer
(labeltool.double_review). Every function here answers
from small queries (a count, one page of ids, the next or previous id by keyset pagination, one
GROUP BY), never by loading the project's examples, so the review screen stays instant on a
large dev set. Functions take the session first and never commit.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
from sqlalchemy import (
    ColumnElement,
    Select,
    and_,
    exists,
    false,
    func,
    or_,
    select,
    true,
    tuple_,
)
from sqlalchemy.orm import Session, aliased

from labeltool.config import DEFAULT_SPLIT
from labeltool.double_review import in_overlap, reviewers_of
from labeltool.models import Example, Review, ReviewState, Run, Tag, confusion_pair_name
from labeltool.report_cache import keep
from labeltool.runs import latest_run_id
from labeltool.sample import REVIEWED_STATES, errors_that_count

#: Queue orders: a fair random sample of the errors, or by the model's confidence.
ORDERS = ("random", "most confident first", "least confident first")
#: `QueueFilter.category_id` value meaning "errors with no category yet".
NO_CATEGORY = 0
#: `QueueFilter.change` values: how an error stands against the run before the queue's run.
#: "new": misclassified in this run, correct in the previous one; "still wrong": misclassified
#: in both; "fixed": misclassified in the previous run and correct in this one (the queue then
#: holds the previous run's rows of those examples, since this run has no error to show).
CHANGES = ("new", "still wrong", "fixed")

#: The method's guide to how many reviewed errors a sample needs (Machine Learning Yearning).
SAMPLE_GUIDE = ((10, "very few"), (20, "a rough sense"), (50, "good"), (100, "very good"))
#: Below this many reviewed errors the shares are too noisy to rank categories.
TOO_FEW_TO_RANK = 20


@dataclass(frozen=True)
class QueueFilter:
    """Which misclassified dev examples the queue shows, and in what order."""

    #: Review states to show; empty means all.
    states: tuple[str, ...] = (ReviewState.UNREVIEWED.value,)
    #: (true label, predicted label), e.g. ("dog", "cat") for dog-as-cat.
    confusion_pair: tuple[str, str] | None = None
    #: Only errors tagged with this category (by anyone); NO_CATEGORY for untagged ones.
    category_id: int | None = None
    min_confidence: float = 0.0
    max_confidence: float = 1.0
    order: str = "random"
    #: The run whose errors are queued (labeltool.runs); None: the latest.
    run_id: int | None = None
    #: Only errors that changed against the previous run (one of CHANGES); None: all.
    change: str | None = None
    #: Whose queue it is. With an overlap share (labeltool.double_review), their unreviewed
    #: queue also holds the overlap errors one other reviewer has reviewed, and never an error
    #: they reviewed themselves; None: the queue of nobody in particular.
    reviewer: str | None = None


@dataclass(frozen=True)
class ReviewProgress:
    """How far the review of a project's dev errors has got."""

    misclassified: int
    by_state: dict[str, int]

    @property
    def reviewed(self) -> int:
        """Errors in the reviewed sample (the states of `labeltool.sample`'s rule)."""
        return sum(self.by_state.get(state, 0) for state in REVIEWED_STATES)

    @property
    def needs_rereview(self) -> int:
        return self.by_state.get(ReviewState.NEEDS_REREVIEW.value, 0)

    @property
    def guidance(self) -> str:
        return sample_guidance(self.reviewed)


def sample_guidance(reviewed: int) -> str:
    """Say what a sample of `reviewed` errors supports, using the method's guide.

    About 10 reviewed errors is very few, 20 gives a rough sense, 50 is good, 100 very good.
    """
    noun = "error" if reviewed == 1 else "errors"
    if reviewed < TOO_FEW_TO_RANK:
        few = "very few, " if reviewed >= 10 else ""
        return (
            f"{reviewed} {noun} reviewed: {few}too few to rank categories yet "
            "(about 20 give a rough sense)"
        )
    if reviewed < 50:
        return f"{reviewed} errors reviewed: a rough sense (50 would be good)"
    if reviewed < 100:
        return f"{reviewed} errors reviewed: good (100 would be very good)"
    return f"{reviewed} errors reviewed: very good"


def queue_conditions(project_id: int, queue: QueueFilter) -> list[ColumnElement[bool]]:
    """The WHERE conditions that select the queue's examples: the errors that count
    (`labeltool.sample.errors_that_count`: the project's dev errors in its eyeball part) that
    pass the filter (its order plays no part). For queries of your own over the same examples.
    """
    conditions: list[ColumnElement[bool]] = (
        _change_conditions(project_id, queue)
        if queue.change is not None
        else errors_that_count(project_id, queue.run_id)
    )
    if queue.states:
        state = Example.review_state.in_(queue.states)
        if queue.reviewer and ReviewState.UNREVIEWED.value in queue.states:
            state = or_(state, _second_look(project_id, queue.reviewer))
        conditions.append(state)
    if queue.confusion_pair is not None:
        label, prediction = queue.confusion_pair
        conditions += [Example.label == label, Example.prediction == prediction]
    if queue.category_id is not None:
        tagged = exists().where(Tag.example_pk == Example.id)
        if queue.category_id == NO_CATEGORY:
            conditions.append(~tagged)
        else:
            conditions.append(tagged.where(Tag.category_id == queue.category_id))
    if queue.min_confidence > 0.0 or queue.max_confidence < 1.0:
        confidence = Example.confidence
        conditions.append(
            or_(
                confidence.is_(None),
                and_(confidence >= queue.min_confidence, confidence <= queue.max_confidence),
            )
        )
    return conditions


def queue_run_id(session: Session, *, project_id: int, queue: QueueFilter) -> int | None:
    """The run whose rows the queue holds: its run (the latest by default), or the run before
    it for the "fixed" queue (None when there is no such run)."""
    run_id = queue.run_id
    if run_id is None:
        run_id = session.scalar(select(func.max(Run.id)).where(Run.project_id == project_id))
    if queue.change != "fixed" or run_id is None:
        return run_id
    return session.scalar(
        select(func.max(Run.id)).where(Run.project_id == project_id, Run.id < run_id)
    )


def queue_count(session: Session, *, project_id: int, queue: QueueFilter) -> int:
    """How many errors the filter selects."""
    return session.scalar(
        select(func.count()).select_from(Example).where(*queue_conditions(project_id, queue))
    )


def queue_ids(
    session: Session, *, project_id: int, queue: QueueFilter, offset: int = 0, limit: int = 50
) -> list[int]:
    """One page of the queue's example pks, in queue order."""
    key = _order_key(queue.order)
    return list(
        session.scalars(
            select(Example.id)
            .where(*queue_conditions(project_id, queue))
            .order_by(key, Example.id)
            .offset(offset)
            .limit(limit)
        )
    )


def queue_all_ids(session: Session, *, project_id: int, queue: QueueFilter) -> list[int]:
    """Every example pk the queue matches, in pk order (one indexed query: for the gallery's
    clusters and "more like this", which compare the matches with each other)."""
    return list(
        session.scalars(
            select(Example.id).where(*queue_conditions(project_id, queue)).order_by(Example.id)
        )
    )


def queue_ids_after(
    session: Session, *, project_id: int, queue: QueueFilter, after: int, limit: int = 20
) -> list[int]:
    """Up to `limit` queue example pks that follow `after` in queue order (keyset pagination:
    one indexed query, even when `after` itself has left the queue)."""
    key = _order_key(queue.order)
    current = _key_of(session, after, key)
    if current is None:
        return []
    return list(
        session.scalars(
            select(Example.id)
            .where(
                *queue_conditions(project_id, queue),
                tuple_(key, Example.id) > tuple_(*current),
            )
            .order_by(key, Example.id)
            .limit(limit)
        )
    )


def first_in_queue(session: Session, *, project_id: int, queue: QueueFilter) -> int | None:
    """The first example of the queue, or None when the queue is empty."""
    ids = queue_ids(session, project_id=project_id, queue=queue, limit=1)
    return ids[0] if ids else None


def next_in_queue(
    session: Session, *, project_id: int, queue: QueueFilter, after: int
) -> int | None:
    """The example that follows `after` in queue order (even if `after` has left the queue)."""
    return _neighbour(session, project_id, queue, after, forward=True)


def previous_in_queue(
    session: Session, *, project_id: int, queue: QueueFilter, before: int
) -> int | None:
    """The example that comes before `before` in queue order."""
    return _neighbour(session, project_id, queue, before, forward=False)


def queue_position(session: Session, *, project_id: int, queue: QueueFilter, pk: int) -> int:
    """How many queue examples come before `pk` (0-based position, if `pk` is in the queue)."""
    key = _order_key(queue.order)
    current = _key_of(session, pk, key)
    if current is None:
        return 0
    return session.scalar(
        select(func.count())
        .select_from(Example)
        .where(*queue_conditions(project_id, queue), tuple_(key, Example.id) < tuple_(*current))
    )


def review_progress(
    session: Session, *, project_id: int, run_id: int | None = None
) -> ReviewProgress:
    """Counts of the project's dev errors per review state, from one GROUP BY."""
    rows = session.execute(
        select(Example.review_state, func.count())
        .where(*queue_conditions(project_id, QueueFilter(states=(), run_id=run_id)))
        .group_by(Example.review_state)
    ).all()
    by_state = {state: int(n) for state, n in rows}
    return ReviewProgress(misclassified=sum(by_state.values()), by_state=by_state)


@keep
def confusion_pairs(
    session: Session, *, project_id: int, run_id: int | None = None
) -> pd.DataFrame:
    """The dev errors' confusion pairs: `label, prediction, confusion_pair, errors`, most first."""
    rows = session.execute(
        select(Example.label, Example.prediction, func.count().label("errors"))
        .where(*queue_conditions(project_id, QueueFilter(states=(), run_id=run_id)))
        .group_by(Example.label, Example.prediction)
        .order_by(func.count().desc(), Example.label, Example.prediction)
    ).all()
    frame = pd.DataFrame(rows, columns=["label", "prediction", "errors"])
    frame.insert(
        2,
        "confusion_pair",
        [
            confusion_pair_name(a, b)
            for a, b in zip(frame["label"], frame["prediction"], strict=True)
        ],
    )
    return frame


# --- private helpers -------------------------------------------------------------------


def _second_look(project_id: int, reviewer: str) -> ColumnElement[bool]:
    """An overlap error that exactly one reviewer, not `reviewer`, has reviewed: it waits in
    every other reviewer's unreviewed queue for its second review (labeltool.double_review).
    Cheap per row: the overlap test is arithmetic on the row, and the counts use the reviews'
    (example, reviewer) index only for the overlap's reviewed errors."""
    mine = exists().where(Review.example_pk == Example.id, Review.reviewer == reviewer)
    return and_(
        in_overlap(project_id),
        Example.review_state.in_(REVIEWED_STATES),
        reviewers_of() == 1,
        ~mine,
    )


def _change_conditions(project_id: int, queue: QueueFilter) -> list[ColumnElement[bool]]:
    """The errors that count, compared with the same example in the run before the queue's
    run (matched by example id). Before the first run there is nothing to compare with, so
    "new" keeps every error and "still wrong" and "fixed" keep none."""
    if queue.change not in CHANGES:
        raise ValueError(f"unknown change '{queue.change}' (use one of: {', '.join(CHANGES)})")
    this_run = queue.run_id if queue.run_id is not None else latest_run_id(project_id)
    previous = (
        select(func.max(Run.id))
        .where(Run.project_id == project_id, Run.id < this_run)
        .scalar_subquery()
    )
    other = aliased(Example)

    def misclassified_in(run, *, wrong: bool) -> ColumnElement[bool]:
        """The same dev example is (`wrong`) or is not misclassified in run `run`."""
        return exists().where(
            other.run_id == run,
            other.example_id == Example.example_id,
            other.split == DEFAULT_SPLIT,
            other.is_error == (true() if wrong else false()),
        )

    if queue.change == "fixed":
        return [*errors_that_count(project_id, previous), misclassified_in(this_run, wrong=False)]
    conditions = errors_that_count(project_id, queue.run_id)
    if queue.change == "new":
        return [*conditions, ~misclassified_in(previous, wrong=True)]
    return [*conditions, misclassified_in(previous, wrong=True)]


def _order_key(order: str):
    if order == "random":
        return Example.shuffle_key
    confidence = func.coalesce(Example.confidence, 0.0)
    if order == "most confident first":
        return -confidence
    if order == "least confident first":
        return confidence
    raise ValueError(f"unknown queue order '{order}' (use one of: {', '.join(ORDERS)})")


def _key_of(session: Session, pk: int, key) -> tuple | None:
    row = session.execute(select(key, Example.id).where(Example.id == pk)).first()
    return tuple(row) if row else None


def _neighbour(
    session: Session, project_id: int, queue: QueueFilter, pk: int, *, forward: bool
) -> int | None:
    key = _order_key(queue.order)
    current = _key_of(session, pk, key)
    if current is None:
        return None
    position = tuple_(key, Example.id)
    query: Select = select(Example.id).where(*queue_conditions(project_id, queue))
    if forward:
        query = query.where(position > tuple_(*current)).order_by(key, Example.id)
    else:
        query = query.where(position < tuple_(*current)).order_by(key.desc(), Example.id.desc())
    return session.scalar(query.limit(1))
