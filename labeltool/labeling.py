"""The reviewer's loop: the queue of misclassified dev examples, tagging, reviewing.

Every function here answers from small queries (counts, one page, one example, the next id by
keyset), never by loading the project's examples, so the review screen stays instant on a
large dev set. Functions take the session first and never commit: one user action is one
transaction, owned by the caller.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import pandas as pd
from sqlalchemy import (
    ColumnElement,
    Select,
    and_,
    delete,
    exists,
    func,
    insert,
    or_,
    select,
    tuple_,
)
from sqlalchemy.orm import Session

from labeltool.categories import create_category
from labeltool.config import DEFAULT_SPLIT
from labeltool.errors import InvalidInput, UnknownCategory, UnknownExample
from labeltool.models import (
    Category,
    Example,
    Project,
    Review,
    ReviewState,
    Tag,
    confusion_pair_name,
    utcnow,
)

#: Queue orders: a fair random sample of the errors, or by the model's confidence.
ORDERS = ("random", "most confident first", "least confident first")
#: `QueueFilter.category_id` value meaning "errors with no category yet".
NO_CATEGORY = 0

#: Below this many reviewed errors the shares are too noisy to rank categories (the method's
#: guide: about 10 is very few, 20 a rough sense, 50 good, 100 very good).
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


@dataclass
class ExampleView:
    """Everything the review screen shows about one example."""

    pk: int
    example_id: str
    image: str
    label: str
    prediction: str
    confidence: float | None
    #: The three most probable classes, most probable first: [(class, probability)].
    top_probabilities: list[tuple[str, float]]
    comment: str
    corrected_label: str | None
    review_state: str
    #: {reviewer: {category id, ...}}
    tags_by_reviewer: dict[str, set[int]] = field(default_factory=dict)

    @property
    def confusion_pair(self) -> str:
        return confusion_pair_name(self.label, self.prediction)

    def tags_of(self, reviewer: str) -> set[int]:
        return self.tags_by_reviewer.get(reviewer, set())

    def tagged_by_others(self, reviewer: str) -> dict[int, list[str]]:
        """{category id: [other reviewers who tagged it]}"""
        others: dict[int, list[str]] = {}
        for name, ids in sorted(self.tags_by_reviewer.items()):
            if name != reviewer:
                for category_id in ids:
                    others.setdefault(category_id, []).append(name)
        return others


@dataclass(frozen=True)
class ReviewProgress:
    """How far the review of a project's dev errors has got."""

    misclassified: int
    by_state: dict[str, int]

    @property
    def reviewed(self) -> int:
        return self.by_state.get(ReviewState.REVIEWED.value, 0) + self.by_state.get(
            ReviewState.NEEDS_REREVIEW.value, 0
        )

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


# --- the queue -------------------------------------------------------------------------


def queue_count(session: Session, *, project_id: int, queue: QueueFilter) -> int:
    """How many errors the filter selects."""
    return session.scalar(
        select(func.count()).select_from(Example).where(*_conditions(project_id, queue))
    )


def queue_ids(
    session: Session, *, project_id: int, queue: QueueFilter, offset: int = 0, limit: int = 50
) -> list[int]:
    """One page of the queue's example pks, in queue order."""
    key = _order_key(queue.order)
    return list(
        session.scalars(
            select(Example.id)
            .where(*_conditions(project_id, queue))
            .order_by(key, Example.id)
            .offset(offset)
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
        .where(*_conditions(project_id, queue), tuple_(key, Example.id) < tuple_(*current))
    )


def review_progress(session: Session, *, project_id: int) -> ReviewProgress:
    """Counts of the project's dev errors per review state, from one GROUP BY."""
    rows = session.execute(
        select(Example.review_state, func.count())
        .where(*_conditions(project_id, QueueFilter(states=())))
        .group_by(Example.review_state)
    ).all()
    by_state = {state: int(n) for state, n in rows}
    return ReviewProgress(misclassified=sum(by_state.values()), by_state=by_state)


def confusion_pairs(session: Session, *, project_id: int) -> pd.DataFrame:
    """The dev errors' confusion pairs: `label, prediction, confusion_pair, errors`, most first."""
    rows = session.execute(
        select(Example.label, Example.prediction, func.count().label("errors"))
        .where(*_conditions(project_id, QueueFilter(states=())))
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


# --- one example -----------------------------------------------------------------------


def get_example_view(session: Session, *, pk: int) -> ExampleView:
    """One example with its tags, from two small queries."""
    example = session.get(Example, pk)
    if example is None:
        raise UnknownExample(f"no example with id {pk}")
    tags: dict[str, set[int]] = {}
    for reviewer, category_id in session.execute(
        select(Tag.reviewer, Tag.category_id).where(Tag.example_pk == pk)
    ):
        tags.setdefault(reviewer, set()).add(category_id)
    return _view(example, tags)


def example_views(session: Session, *, pks: Sequence[int]) -> list[ExampleView]:
    """Views of many examples (a gallery page) from two queries, in the order of `pks`."""
    if not pks:
        return []
    tags: dict[int, dict[str, set[int]]] = {}
    for example_pk, who, category_id in session.execute(
        select(Tag.example_pk, Tag.reviewer, Tag.category_id).where(Tag.example_pk.in_(pks))
    ):
        tags.setdefault(example_pk, {}).setdefault(who, set()).add(category_id)
    examples = {e.id: e for e in session.scalars(select(Example).where(Example.id.in_(pks)))}
    return [_view(examples[pk], tags.get(pk, {})) for pk in pks if pk in examples]


def find_example(session: Session, *, project_id: int, example_id: str) -> int:
    """The pk of the project's example with the user's `example_id` (for deep links)."""
    pk = session.scalar(
        select(Example.id).where(Example.project_id == project_id, Example.example_id == example_id)
    )
    if pk is None:
        raise UnknownExample(f"no example '{example_id}' in this project")
    return pk


def toggle_tag(session: Session, *, example_pk: int, category_id: int, reviewer: str) -> bool:
    """Tag the example with the category for this reviewer, or untag it; return the new state."""
    reviewer = _reviewer(reviewer)
    _check_same_project(session, example_pk, category_id)
    removed = session.execute(
        delete(Tag).where(
            Tag.example_pk == example_pk, Tag.category_id == category_id, Tag.reviewer == reviewer
        )
    ).rowcount
    if removed:
        return False
    session.add(Tag(example_pk=example_pk, category_id=category_id, reviewer=reviewer))
    session.flush()
    return True


def set_tag(
    session: Session,
    *,
    example_pks: Iterable[int],
    category_id: int,
    reviewer: str,
    tagged: bool = True,
) -> int:
    """Tag (or untag) many examples at once for this reviewer; return how many changed."""
    reviewer = _reviewer(reviewer)
    pks = sorted(set(example_pks))
    if not pks:
        return 0
    category = session.get(Category, category_id)
    if category is None:
        raise UnknownCategory(f"no category with id {category_id}")
    already = set(
        session.scalars(
            select(Tag.example_pk).where(
                Tag.example_pk.in_(pks), Tag.category_id == category_id, Tag.reviewer == reviewer
            )
        )
    )
    if not tagged:
        if already:
            session.execute(
                delete(Tag).where(
                    Tag.example_pk.in_(already),
                    Tag.category_id == category_id,
                    Tag.reviewer == reviewer,
                )
            )
        return len(already)
    valid = set(
        session.scalars(
            select(Example.id).where(Example.id.in_(pks), Example.project_id == category.project_id)
        )
    )
    new = [pk for pk in pks if pk in valid and pk not in already]
    if new:
        now = utcnow()
        session.execute(
            insert(Tag),
            [
                {
                    "example_pk": pk,
                    "category_id": category_id,
                    "reviewer": reviewer,
                    "tagged_at": now,
                }
                for pk in new
            ],
        )
    return len(new)


def set_comment(session: Session, *, example_pk: int, comment: str) -> None:
    """Save the example's comment."""
    _example(session, example_pk).comment = comment.strip()


def set_corrected_label(session: Session, *, example_pk: int, corrected_label: str | None) -> None:
    """Save (or clear, with None) the right label of an incorrectly labeled example."""
    example = _example(session, example_pk)
    if corrected_label:
        classes = session.scalar(
            select(Project.class_names).where(Project.id == example.project_id)
        )
        if classes and corrected_label not in classes:
            raise InvalidInput(
                f"unknown label '{corrected_label}' (known classes: {', '.join(classes)})"
            )
    example.corrected_label = corrected_label or None


def mark_reviewed(session: Session, *, example_pks: Sequence[int], reviewer: str) -> None:
    """Record that `reviewer` finished these examples: state "reviewed" and a Review row each."""
    reviewer = _reviewer(reviewer)
    pks = sorted(set(example_pks))
    if not pks:
        return
    examples = list(session.scalars(select(Example).where(Example.id.in_(pks))))
    if len(examples) != len(pks):
        missing = sorted(set(pks) - {e.id for e in examples})
        raise UnknownExample(f"no example with id {missing[0]}")
    for example in examples:
        example.review_state = ReviewState.REVIEWED.value
    now = utcnow()
    seen = set(
        session.scalars(
            select(Review.example_pk).where(Review.example_pk.in_(pks), Review.reviewer == reviewer)
        )
    )
    for review in session.scalars(
        select(Review).where(Review.example_pk.in_(seen), Review.reviewer == reviewer)
    ):
        review.reviewed_at = now
    new = [pk for pk in pks if pk not in seen]
    if new:
        session.execute(
            insert(Review),
            [{"example_pk": pk, "reviewer": reviewer, "reviewed_at": now} for pk in new],
        )
    session.flush()


def skip_example(session: Session, *, example_pk: int) -> None:
    """Put the example aside as "skipped" (it does not count as reviewed)."""
    example = _example(session, example_pk)
    if example.review_state == ReviewState.UNREVIEWED.value:
        example.review_state = ReviewState.SKIPPED.value


def category_from_confusion_pair(
    session: Session, *, project_id: int, label: str, prediction: str, reviewer: str
) -> tuple[Category, int]:
    """Turn a confusion pair into a category (e.g. "dog-as-cat") and tag its errors with it.

    Returns the category and how many errors were newly tagged. Reviewed examples need no
    re-review: membership in a pair is a fact, so every example of the pair is tagged now.
    """
    name = confusion_pair_name(label, prediction)
    category = session.scalar(
        select(Category).where(
            Category.project_id == project_id, func.lower(Category.name) == name.lower()
        )
    )
    if category is None:
        category = create_category(
            session,
            project_id=project_id,
            name=name,
            description=f"true label {label}, predicted {prediction}",
            mark_rereview=False,
        )
    elif category.archived:
        category.archived = False
    pks = session.scalars(
        select(Example.id).where(
            *_conditions(project_id, QueueFilter(states=(), confusion_pair=(label, prediction)))
        )
    ).all()
    return category, set_tag(session, example_pks=pks, category_id=category.id, reviewer=reviewer)


def last_activity(session: Session, *, project_id: int) -> datetime | None:
    """When anyone last tagged an example of the project (to show reviewers it is live)."""
    return session.scalar(
        select(func.max(Tag.tagged_at)).join(Example).where(Example.project_id == project_id)
    )


# --- private helpers -------------------------------------------------------------------


def _conditions(project_id: int, queue: QueueFilter) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = [
        Example.project_id == project_id,
        Example.split == DEFAULT_SPLIT,
        Example.is_error.is_(True),
    ]
    if queue.states:
        conditions.append(Example.review_state.in_(queue.states))
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
    query: Select = select(Example.id).where(*_conditions(project_id, queue))
    if forward:
        query = query.where(position > tuple_(*current)).order_by(key, Example.id)
    else:
        query = query.where(position < tuple_(*current)).order_by(key.desc(), Example.id.desc())
    return session.scalar(query.limit(1))


def _example(session: Session, pk: int) -> Example:
    example = session.get(Example, pk)
    if example is None:
        raise UnknownExample(f"no example with id {pk}")
    return example


def _check_same_project(session: Session, example_pk: int, category_id: int) -> None:
    example = _example(session, example_pk)
    category = session.get(Category, category_id)
    if category is None or category.project_id != example.project_id:
        raise UnknownCategory(f"no category with id {category_id} in this project")


def _reviewer(reviewer: str) -> str:
    reviewer = " ".join((reviewer or "").split())
    if not reviewer:
        raise InvalidInput("enter a reviewer name first: every tag records who made it")
    if len(reviewer) > 100:
        raise InvalidInput("a reviewer name has at most 100 characters")
    return reviewer


def _view(example: Example, tags: dict[str, set[int]]) -> ExampleView:
    probabilities = example.probabilities or {}
    top = sorted(probabilities.items(), key=lambda item: (-item[1], item[0]))[:3]
    return ExampleView(
        pk=example.id,
        example_id=example.example_id,
        image=example.image,
        label=example.label,
        prediction=example.prediction,
        confidence=example.confidence,
        top_probabilities=[(name, float(p)) for name, p in top],
        comment=example.comment or "",
        corrected_label=example.corrected_label,
        review_state=example.review_state,
        tags_by_reviewer=tags,
    )
