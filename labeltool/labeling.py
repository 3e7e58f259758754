"""Labeling the dev errors: tagging one example or many, comments, corrected labels, reviewing.

The review and gallery screens call these to show an example (or a page of them) and record
what a reviewer decided; which examples they show, and in what order, is `labeltool.review_queue`.
Every function answers from small queries (one example, one page, one bulk insert), never by
loading the project's examples. Functions take the session first and never commit: one user
action is one transaction, owned by the caller.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from sqlalchemy import and_, delete, func, or_, select, update
from sqlalchemy.orm import Session, aliased

from labeltool import audit
from labeltool.categories import create_category
from labeltool.config import DEFAULT_SPLIT
from labeltool.errors import InvalidInput, UnknownCategory, UnknownExample
from labeltool.models import (
    Category,
    Dismissal,
    Example,
    Project,
    ReachedBy,
    Review,
    ReviewState,
    Scope,
    Signal,
    Tag,
    confusion_pair_name,
    utcnow,
)
from labeltool.review_queue import QueueFilter, queue_conditions
from labeltool.roles import Role, require
from labeltool.runs import in_run
from labeltool.signals import category_for_kind


@dataclass(frozen=True)
class SuggestedCategory:
    """A category `labeltool analyze` suggests for an example: the signal's kind and its
    reason, in the method's words. Never a tag until the reviewer accepts it."""

    category_id: int
    kind: str
    reason: str


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
    split: str = "dev"
    #: {reviewer: {category id, ...}}
    tags_by_reviewer: dict[str, set[int]] = field(default_factory=dict)
    #: The project's live categories its signals suggest, in the order of the kinds.
    suggestions: list[SuggestedCategory] = field(default_factory=list)

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


# --- one example or many ---------------------------------------------------------------


def get_example_view(session: Session, *, pk: int, reviewer: str | None = None) -> ExampleView:
    """One example with its tags, from a few small queries; its suggestions leave out those
    `reviewer` dismissed (suggested_categories)."""
    example = session.get(Example, pk)
    if example is None:
        raise UnknownExample(f"no example with id {pk}")
    tags: dict[str, set[int]] = {}
    for reviewer, category_id in session.execute(
        select(Tag.reviewer, Tag.category_id).where(Tag.example_pk == pk)
    ):
        tags.setdefault(reviewer, set()).add(category_id)
    suggested = suggested_categories(session, pks=[pk], reviewer=reviewer)
    return _view(example, tags, suggested.get(pk, []))


def example_views(
    session: Session, *, pks: Sequence[int], reviewer: str | None = None
) -> list[ExampleView]:
    """Views of many examples (a gallery page, the review screen's window), in the order of
    `pks`, from at most five queries whatever their number: tags, examples, signals,
    categories and, with a `reviewer`, the suggestions they dismissed (left out)."""
    if not pks:
        return []
    tags: dict[int, dict[str, set[int]]] = {}
    for example_pk, who, category_id in session.execute(
        select(Tag.example_pk, Tag.reviewer, Tag.category_id).where(Tag.example_pk.in_(pks))
    ):
        tags.setdefault(example_pk, {}).setdefault(who, set()).add(category_id)
    examples = {e.id: e for e in session.scalars(select(Example).where(Example.id.in_(pks)))}
    suggested = suggested_categories(session, pks=pks, reviewer=reviewer)
    return [
        _view(examples[pk], tags.get(pk, {}), suggested.get(pk, [])) for pk in pks if pk in examples
    ]


def suggested_categories(
    session: Session, *, pks: Sequence[int], reviewer: str | None = None
) -> dict[int, list[SuggestedCategory]]:
    """{example pk: the live categories its signals suggest} for these examples, from one
    query for their signals and one for their projects' live categories (a kind suggests the
    category labeltool.signals.category_for_kind names; archived categories are never
    suggested). With a `reviewer`, one more query leaves out the kinds that reviewer
    dismissed on each example (dismiss_suggestions); other reviewers still see them, since
    each judges on their own. Examples with no suggestion are left out."""
    if not pks:
        return {}
    signals = session.execute(
        select(Signal.example_pk, Example.project_id, Signal.kind, Signal.reason)
        .join(Example, Example.id == Signal.example_pk)
        .where(Signal.example_pk.in_(list(pks)))
        .order_by(Signal.example_pk, Signal.id)
    ).all()
    if not signals:
        return {}
    categories = session.scalars(
        select(Category).where(
            Category.project_id.in_({row.project_id for row in signals}),
            Category.archived.is_(False),
        )
    ).all()
    by_project: dict[int, dict[str, int]] = {}
    for project_id in {c.project_id for c in categories}:
        theirs = [c for c in categories if c.project_id == project_id]
        ids = {c.name: c.id for c in theirs}
        by_project[project_id] = {k: ids[name] for k, name in category_for_kind(theirs).items()}
    dismissed: set[tuple[int, str]] = set()
    if reviewer:
        dismissed = {
            (pk, kind)
            for pk, kind in session.execute(
                select(Dismissal.example_pk, Dismissal.kind).where(
                    Dismissal.example_pk.in_({row.example_pk for row in signals}),
                    Dismissal.reviewer == reviewer,
                )
            )
        }
    found: dict[int, list[SuggestedCategory]] = {}
    for pk, project_id, kind, reason in signals:
        category_id = by_project.get(project_id, {}).get(kind)
        if category_id is not None and (pk, kind) not in dismissed:
            found.setdefault(pk, []).append(SuggestedCategory(category_id, kind, reason))
    return found


def dismiss_suggestions(
    session: Session, *, example_pk: int, kinds: Iterable[str], reviewer: str
) -> int:
    """Record that `reviewer` said no to the suggestions of these signal `kinds` on the
    example; return how many were not dismissed already (dismissing again changes nothing).

    Only that reviewer stops seeing them (suggested_categories). The signals stay: the
    suggesters' precision counts a dismissed suggestion as not confirmed. A kind the example
    has no signal of is refused (InvalidInput), and then nothing is dismissed.
    """
    reviewer = _reviewer(reviewer)
    _may_review(
        session,
        _example(session, example_pk).project_id,
        reviewer,
        action="dismissing a suggestion",
    )
    kinds = list(dict.fromkeys(kinds))
    if not kinds:
        raise InvalidInput("name the suggestions to dismiss")
    signalled = set(
        session.scalars(
            select(Signal.kind).where(Signal.example_pk == example_pk, Signal.kind.in_(kinds))
        )
    )
    missing = [kind for kind in kinds if kind not in signalled]
    if missing:
        raise InvalidInput(
            f"nothing suggests '{missing[0]}' for this example; nothing was dismissed"
        )
    already = set(
        session.scalars(
            select(Dismissal.kind).where(
                Dismissal.example_pk == example_pk,
                Dismissal.reviewer == reviewer,
                Dismissal.kind.in_(kinds),
            )
        )
    )
    new = [kind for kind in kinds if kind not in already]
    if new:
        now = utcnow()
        session.execute(
            _insert_unless_present(session, Dismissal),
            [
                {"example_pk": example_pk, "kind": kind, "reviewer": reviewer, "dismissed_at": now}
                for kind in new
            ],
        )
    return len(new)


def find_example(
    session: Session, *, project_id: int, example_id: str, run_id: int | None = None
) -> int:
    """The pk of the example with the user's `example_id` in one run of the project (the
    latest unless `run_id` names another), for deep links."""
    pk = session.scalar(
        select(Example.id).where(*in_run(project_id, run_id), Example.example_id == example_id)
    )
    if pk is None:
        raise UnknownExample(f"no example '{example_id}' in this project")
    return pk


def toggle_tag(session: Session, *, example_pk: int, category_id: int, reviewer: str) -> bool:
    """Tag the example with the category for this reviewer, or untag it; return the new state.

    Tagging an incorrect-label category fills in the corrected label with the model's
    prediction (the usual right answer) when the example has none yet.
    """
    reviewer = _reviewer(reviewer)
    category = _check_same_project(session, example_pk, category_id)
    _may_review(session, category.project_id, reviewer)
    # The audit trail records what each statement really changed (its RETURNING rows): the
    # same toggle from another tab may land at the same moment and change nothing.
    removed = session.execute(
        delete(Tag)
        .where(
            Tag.example_pk == example_pk, Tag.category_id == category_id, Tag.reviewer == reviewer
        )
        .returning(Tag.example_pk)
    ).all()
    if removed:
        audit.tags_changed(
            session, user=reviewer, category_id=category_id, pks=[example_pk], tagged=False
        )
        tag_in_other_runs(session, category, [example_pk], reviewer, tagged=False)
        return False
    # Nothing to delete: tag it.
    added = session.execute(
        _insert_unless_present(session, Tag)
        .values(
            example_pk=example_pk, category_id=category_id, reviewer=reviewer, tagged_at=utcnow()
        )
        .returning(Tag.example_pk)
    ).all()
    if added:
        audit.tags_changed(
            session, user=reviewer, category_id=category_id, pks=[example_pk], tagged=True
        )
    _prefill_corrected_labels(session, category, [example_pk], user=reviewer)
    tag_in_other_runs(session, category, [example_pk], reviewer, tagged=True)
    return True


def set_tag(
    session: Session,
    *,
    example_pks: Iterable[int],
    category_id: int,
    reviewer: str,
    tagged: bool = True,
    suggested: bool = False,
) -> int:
    """Tag (or untag) many examples at once for this reviewer; return how many changed.

    Like toggle_tag, tagging an incorrect-label category prefills missing corrected labels,
    and an image-scope category's tag is put on (or taken off) the same examples in the
    project's other runs too (they are the same images). New tags record whether they come
    from an accepted suggestion (`suggested`); a tag already there is left as it is.

    Once the project has members, `reviewer` must be one of its reviewers or leads
    (labeltool.roles), as for every labeling function that records a reviewer's work.
    """
    category = session.get(Category, category_id)
    if category is not None:  # else _set_tag says the category is unknown
        _may_review(session, category.project_id, _reviewer(reviewer))
    changed = _set_tag(
        session,
        example_pks=example_pks,
        category_id=category_id,
        reviewer=reviewer,
        tagged=tagged,
        suggested=suggested,
    )
    tag_in_other_runs(
        session,
        category,
        sorted(set(example_pks)),
        reviewer,
        tagged=tagged,
        suggested=suggested,
    )
    return changed


def _set_tag(
    session: Session,
    *,
    example_pks: Iterable[int],
    category_id: int,
    reviewer: str,
    tagged: bool = True,
    suggested: bool = False,
) -> int:
    """set_tag on these examples only."""
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
            gone = session.scalars(
                delete(Tag)
                .where(
                    Tag.example_pk.in_(already),
                    Tag.category_id == category_id,
                    Tag.reviewer == reviewer,
                )
                .returning(Tag.example_pk)
            ).all()
            audit.tags_changed(
                session, user=reviewer, category_id=category_id, pks=gone, tagged=False
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
        added = session.scalars(
            _insert_unless_present(session, Tag).returning(Tag.example_pk),
            [
                {
                    "example_pk": pk,
                    "category_id": category_id,
                    "reviewer": reviewer,
                    "tagged_at": now,
                    "suggested": suggested,
                }
                for pk in new
            ],
        ).all()
        audit.tags_changed(session, user=reviewer, category_id=category_id, pks=added, tagged=True)
        _prefill_corrected_labels(session, category, new, user=reviewer)
    return len(new)


def set_comment(
    session: Session, *, example_pk: int, comment: str, user: str | None = None
) -> None:
    """Save the example's comment, written by `user` (a reviewer or lead once the project
    has members)."""
    example = _example(session, example_pk)
    _may_review(session, example.project_id, user, action="commenting")
    audit.lock_examples(session, [example_pk])
    old = session.scalar(select(Example.comment).where(Example.id == example_pk))
    example.comment = comment.strip()
    audit.example_changes(
        session,
        user=user,
        kind=audit.Kind.COMMENT,
        values={example_pk: (old or "", example.comment)},
    )


def set_corrected_label(
    session: Session, *, example_pk: int, corrected_label: str | None, user: str | None = None
) -> None:
    """Save (or clear, with None) the right label of an incorrectly labeled example, as
    `user` (a reviewer or lead once the project has members)."""
    example = _example(session, example_pk)
    _may_review(session, example.project_id, user, action="correcting a label")
    if corrected_label:
        classes = session.scalar(
            select(Project.class_names).where(Project.id == example.project_id)
        )
        if classes and corrected_label not in classes:
            raise InvalidInput(
                f"unknown label '{corrected_label}' (known classes: {', '.join(classes)})"
            )
    # The right label belongs to the example, whatever the run.
    same = (Example.project_id == example.project_id, Example.example_id == example.example_id)
    rows = session.scalars(select(Example.id).where(*same)).all()
    audit.lock_examples(session, rows)
    old = dict(session.execute(select(Example.id, Example.corrected_label).where(*same)).all())
    session.execute(
        update(Example)
        .where(*same)
        .values(corrected_label=corrected_label or None)
        .execution_options(synchronize_session="fetch")
    )
    audit.example_changes(
        session,
        user=user,
        kind=audit.Kind.CORRECTED_LABEL,
        values={pk: (label or None, corrected_label or None) for pk, label in old.items()},
    )


def mark_reviewed(
    session: Session,
    *,
    example_pks: Sequence[int],
    reviewer: str,
    project_id: int | None = None,
    reached: ReachedBy = ReachedBy.RANDOM,
) -> None:
    """Record that `reviewer` finished these examples: state "reviewed" and a Review row each,
    noting how they were `reached` (a re-review keeps the way the example was first reached).

    Only misclassified dev examples can be reviewed; with `project_id`, only that project's.
    """
    reviewer = _reviewer(reviewer)
    pks = sorted(set(example_pks))
    if not pks:
        return
    audit.lock_examples(session, pks)
    examples = list(
        session.scalars(
            select(Example)
            .where(Example.id.in_(pks))
            .execution_options(populate_existing=True)  # read after the lock
        )
    )
    if project_id is not None:
        examples = [e for e in examples if e.project_id == project_id]
    if len(examples) != len(pks):
        missing = sorted(set(pks) - {e.id for e in examples})
        raise UnknownExample(f"no example with id {missing[0]} in this project")
    for project in {e.project_id for e in examples}:
        _may_review(session, project, reviewer, action="marking examples reviewed")
    not_errors = [e for e in examples if not e.is_error or e.split != DEFAULT_SPLIT]
    if not_errors:
        raise InvalidInput(
            f"example '{not_errors[0].example_id}' is not a misclassified dev example: "
            "only dev errors are reviewed"
        )
    states = {e.id: (e.review_state, ReviewState.REVIEWED.value) for e in examples}
    for example in examples:
        example.review_state = ReviewState.REVIEWED.value
    audit.example_changes(session, user=reviewer, kind=audit.Kind.REVIEW_STATE, values=states)
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
        added = session.scalars(
            _insert_unless_present(session, Review).returning(Review.example_pk),
            [
                {"example_pk": pk, "reviewer": reviewer, "reviewed_at": now, "reached": reached}
                for pk in new
            ],
        ).all()
        audit.example_changes(
            session,
            user=reviewer,
            kind=audit.Kind.REVIEW,
            values={pk: (None, ReachedBy(reached).value) for pk in added},
        )
    session.flush()


def skip_example(session: Session, *, example_pk: int, user: str | None = None) -> None:
    """Put the example aside as "skipped" (it does not count as reviewed), as `user` (a
    reviewer or lead once the project has members)."""
    example = _example(session, example_pk)
    _may_review(session, example.project_id, user, action="skipping an example")
    audit.lock_examples(session, [example_pk])
    state = session.scalar(select(Example.review_state).where(Example.id == example_pk))
    if state == ReviewState.UNREVIEWED.value:
        example.review_state = ReviewState.SKIPPED.value
        audit.example_changes(
            session,
            user=user,
            kind=audit.Kind.REVIEW_STATE,
            values={example_pk: (state, ReviewState.SKIPPED.value)},
        )


def category_from_confusion_pair(
    session: Session,
    *,
    project_id: int,
    label: str,
    prediction: str,
    reviewer: str,
    run_id: int | None = None,
) -> tuple[Category, int]:
    """Turn a confusion pair into a category (e.g. "dog-as-cat") and tag its errors with it:
    the errors of run `run_id` (the latest by default), since a pair is one model's mistake.

    Returns the category and how many errors were newly tagged. Reviewed examples need no
    re-review: membership in a pair is a fact, so every example of the pair is tagged now.
    Once the project has members, only a lead may (it changes the taxonomy).
    """
    require(
        session,
        project_id=project_id,
        user=_reviewer(reviewer),
        needs=Role.LEAD,
        action="making a confusion pair a category",
    )
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
            user=reviewer,
        )
    elif category.archived:
        category.archived = False
    pair = QueueFilter(states=(), confusion_pair=(label, prediction), run_id=run_id)
    pks = session.scalars(select(Example.id).where(*queue_conditions(project_id, pair))).all()
    return category, set_tag(session, example_pks=pks, category_id=category.id, reviewer=reviewer)


# --- private helpers -------------------------------------------------------------------


#: The unique key of each table the labeling functions insert into.
_UNIQUE_KEYS = {
    Tag: ("example_pk", "category_id", "reviewer"),
    Review: ("example_pk", "reviewer"),
    Dismissal: ("example_pk", "kind", "reviewer"),
}


def _insert_unless_present(session: Session, model: type[Tag] | type[Review] | type[Dismissal]):
    """INSERT ... ON CONFLICT DO NOTHING on the model's unique key: a tag, review or dismissal
    that another transaction added since this one looked is left as it is instead of raising."""
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    else:
        from sqlalchemy.dialects.sqlite import insert as dialect_insert
    return dialect_insert(model).on_conflict_do_nothing(index_elements=list(_UNIQUE_KEYS[model]))


def tag_in_other_runs(
    session: Session,
    category: Category | None,
    pks: Sequence[int],
    reviewer: str,
    *,
    tagged: bool,
    suggested: bool = False,
) -> None:
    """Put (or take off) an image-scope category's tag on the same examples in the project's
    other runs: an image category describes the example, in every run."""
    if category is None or category.scope != Scope.IMAGE.value or not pks:
        return
    here, there = aliased(Example), aliased(Example)
    siblings = session.scalars(
        select(there.id)
        .join(
            here,
            and_(
                here.project_id == there.project_id,
                here.example_id == there.example_id,
                here.id != there.id,
            ),
        )
        .where(here.id.in_(list(pks)))
    ).all()
    if siblings:
        _set_tag(
            session,
            example_pks=siblings,
            category_id=category.id,
            reviewer=reviewer,
            tagged=tagged,
            suggested=suggested,
        )


def _example(session: Session, pk: int) -> Example:
    example = session.get(Example, pk)
    if example is None:
        raise UnknownExample(f"no example with id {pk}")
    return example


def _check_same_project(session: Session, example_pk: int, category_id: int) -> Category:
    example = _example(session, example_pk)
    category = session.get(Category, category_id)
    if category is None or category.project_id != example.project_id:
        raise UnknownCategory(f"no category with id {category_id} in this project")
    return category


def _may_review(
    session: Session, project_id: int, user: str | None, *, action: str = "tagging"
) -> None:
    """Forbidden unless `user` may do a reviewer's work in the project (labeltool.roles)."""
    require(session, project_id=project_id, user=user, needs=Role.REVIEWER, action=action)


def _reviewer(reviewer: str) -> str:
    from labeltool.limits import MAX_REVIEWER, check_name

    if not (reviewer or "").strip():
        raise InvalidInput("enter a reviewer name first: every tag records who made it")
    return check_name(reviewer, what="a reviewer name", limit=MAX_REVIEWER)


def _view(
    example: Example, tags: dict[str, set[int]], suggestions: list[SuggestedCategory]
) -> ExampleView:
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
        split=example.split,
        tags_by_reviewer=tags,
        suggestions=suggestions,
    )


def _prefill_corrected_labels(
    session: Session, category: Category, pks: Sequence[int], *, user: str | None
) -> None:
    """For an incorrect-label category, set each example's missing corrected label to its
    prediction (one UPDATE); other categories leave examples alone."""
    if not category.marks_incorrect_label or not pks:
        return
    filled = session.execute(
        update(Example)
        .where(
            Example.id.in_(pks),
            or_(Example.corrected_label.is_(None), Example.corrected_label == ""),
        )
        .values(corrected_label=Example.prediction)
        .returning(Example.id, Example.corrected_label)
        .execution_options(synchronize_session="fetch")
    ).all()
    audit.example_changes(
        session,
        user=user,
        kind=audit.Kind.CORRECTED_LABEL,
        values={pk: (None, label) for pk, label in filled},
    )
