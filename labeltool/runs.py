"""Runs: each model version's predictions over the project's examples.

The method is a loop: analyse the errors, fix the biggest category, retrain, analyse again.
A *run* is one turn of it. Every query about "the errors" is about one run; `in_run` is the
condition that picks it, the latest run (highest id) unless one is named. What belongs to the
example rather than to one model's mistake (its corrected label, its image-scope tags) is
kept the same on each run's row of it (labeltool.labeling); a new run starts with what the
previous run knew of its still-misclassified examples (`carry_over`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import pandas as pd
from sqlalchemy import ColumnElement, Integer, and_, cast, func, insert, select, true, update
from sqlalchemy.orm import Session, aliased

from labeltool import audit
from labeltool.config import DEFAULT_SPLIT
from labeltool.errors import InvalidInput
from labeltool.limits import MAX_PROJECT_NAME, check_text, shown
from labeltool.models import (
    REVIEWED_STATES,
    Category,
    Example,
    Review,
    ReviewState,
    Run,
    Scope,
    Tag,
)

#: The name a project's first run gets when none is given.
FIRST_RUN = "1"


@dataclass(frozen=True)
class DevErrorRate:
    """The dev set's size, how many it got wrong, and so the dev error rate."""

    dev_examples: int
    misclassified: int

    @property
    def dev_error(self) -> float:
        return self.misclassified / self.dev_examples if self.dev_examples else 0.0


@dataclass(frozen=True)
class RunInfo(DevErrorRate):
    """A run as the pages and the CLI list it: its dev examples, errors and dev error, too."""

    id: int
    name: str
    note: str
    target_category: str | None
    imported_at: datetime


def latest_run_id(project_id: int):
    """A scalar subquery: the id of the project's latest run."""
    return select(func.max(Run.id)).where(Run.project_id == project_id).scalar_subquery()


def in_run(project_id: int, run_id: int | None = None) -> list[ColumnElement[bool]]:
    """WHERE conditions on Example keeping one run of the project: `run_id`, or the latest."""
    return [
        Example.project_id == project_id,
        Example.run_id == (run_id if run_id is not None else latest_run_id(project_id)),
    ]


def list_runs(session: Session, *, project_id: int) -> list[RunInfo]:
    """The project's runs, oldest first, each with its dev examples and errors (one query)."""
    counts = {
        run_id: (int(n), int(errors or 0))
        for run_id, n, errors in session.execute(
            select(Example.run_id, func.count(), func.sum(cast(Example.is_error, Integer)))
            .where(Example.project_id == project_id, Example.split == DEFAULT_SPLIT)
            .group_by(Example.run_id)
        )
    }
    return [
        RunInfo(
            id=run.id,
            name=run.name,
            note=run.note,
            target_category=run.target_category,
            imported_at=run.imported_at,
            dev_examples=counts.get(run.id, (0, 0))[0],
            misclassified=counts.get(run.id, (0, 0))[1],
        )
        for run in session.scalars(select(Run).where(Run.project_id == project_id).order_by(Run.id))
    ]


def runs_table(session: Session, *, project_id: int) -> pd.DataFrame:
    """`list_runs` as a table: run, note, target, imported_at, dev_examples, misclassified,
    dev_error (oldest first)."""
    rows = [
        {
            "run": r.name,
            "note": r.note,
            "target": r.target_category or "",
            "imported_at": r.imported_at,
            "dev_examples": r.dev_examples,
            "misclassified": r.misclassified,
            "dev_error": r.dev_error,
        }
        for r in list_runs(session, project_id=project_id)
    ]
    columns = ["run", "note", "target", "imported_at", "dev_examples", "misclassified", "dev_error"]
    return pd.DataFrame(rows, columns=columns)


def find_run(session: Session, *, project_id: int, name: str | None = None) -> Run | None:
    """The run called `name` (the latest without one), or None."""
    if name is None:
        return session.scalar(
            select(Run).where(Run.project_id == project_id).order_by(Run.id.desc()).limit(1)
        )
    return session.scalar(select(Run).where(Run.project_id == project_id, Run.name == name))


def get_run(session: Session, *, project_id: int, name: str | None = None) -> Run:
    """The run called `name` (the latest without one); InvalidInput naming the runs there are."""
    run = find_run(session, project_id=project_id, name=name)
    if run is None and name is None:
        raise InvalidInput("the project has no run yet: import a predictions file first")
    if run is None:
        names = session.scalars(
            select(Run.name).where(Run.project_id == project_id).order_by(Run.id)
        ).all()
        listed = ", ".join(shown(n) for n in names) or "none"
        raise InvalidInput(f"no run {shown(name)} in this project (runs: {listed})")
    return run


def previous_run_id(session: Session, *, run_id: int) -> int | None:
    """The run before `run_id` in its project (by id), or None for the first."""
    project_id = select(Run.project_id).where(Run.id == run_id).scalar_subquery()
    return session.scalar(
        select(func.max(Run.id)).where(Run.project_id == project_id, Run.id < run_id)
    )


def create_run(
    session: Session,
    *,
    project_id: int,
    name: str,
    note: str = "",
    target_category: str | None = None,
) -> Run:
    """A new, empty run of the project (the importer fills it)."""
    name = check_text(name.strip(), what="a run name", limit=MAX_PROJECT_NAME)
    if not name:
        raise InvalidInput("a run needs a name")
    if session.scalar(select(Run.id).where(Run.project_id == project_id, Run.name == name)):
        raise InvalidInput(f"run '{name}' already exists in this project")
    run = Run(project_id=project_id, name=name, note=note or "", target_category=target_category)
    session.add(run)
    session.flush()
    return run


def carry_over(session: Session, *, run_id: int, previous_id: int, user: str | None = None) -> int:
    """Start run `run_id` with what run `previous_id` knew of the examples misclassified in
    both: their image-scope tags, their reviews (marked `carried`: they looked at the
    image-scope categories only) and review state, their comments and corrected labels.
    Error-scope tags stay in their run. Returns how many reviewed errors were carried over.
    The audit trail records all of it as `user`'s change (the import), each tag and review
    under the reviewer who made it."""
    new, old = aliased(Example), aliased(Example)
    pairs = session.execute(
        select(new.id, old.id, old.review_state, old.comment, old.corrected_label)
        .join(old, and_(old.example_id == new.example_id, old.run_id == previous_id))
        .where(
            new.run_id == run_id,
            new.split == DEFAULT_SPLIT,
            new.is_error == true(),
            old.split == DEFAULT_SPLIT,
            old.is_error == true(),
        )
    ).all()
    if not pairs:
        return 0
    by_old = {old_pk: new_pk for new_pk, old_pk, *_ in pairs}
    reviewed = [(n, o) for n, o, state, *_ in pairs if state in REVIEWED_STATES]
    for chunk in _chunks(pairs, 2_000):  # ORM bulk UPDATE by primary key: one executemany
        session.execute(
            update(Example),
            [
                {
                    "id": new_pk,
                    "comment": comment or "",
                    "corrected_label": corrected,
                    "review_state": (
                        ReviewState.REVIEWED.value
                        if state in REVIEWED_STATES
                        else ReviewState.UNREVIEWED.value
                    ),
                }
                for new_pk, _, state, comment, corrected in chunk
            ],
        )
    # Image tags of every example still wrong (an image tag applies in every run: see
    # labeltool.labeling); reviews only of those the previous run counted as reviewed.
    tags, reviews = [], []
    for chunk in _chunks(list(by_old)):
        tags += session.execute(
            select(Tag.example_pk, Tag.category_id, Tag.reviewer, Tag.tagged_at, Tag.suggested)
            .join(Category, Category.id == Tag.category_id)
            .where(Tag.example_pk.in_(chunk), Category.scope == Scope.IMAGE.value)
        ).all()
    for chunk in _chunks([o for _, o in reviewed]):
        reviews += session.execute(
            select(Review.example_pk, Review.reviewer, Review.reviewed_at, Review.reached)
            .where(Review.example_pk.in_(chunk))
            .order_by(Review.id)
        ).all()
    if tags:
        session.execute(
            insert(Tag),
            [
                {
                    "example_pk": by_old[pk],
                    "category_id": c,
                    "reviewer": r,
                    "tagged_at": at,
                    "suggested": suggested,
                }
                for pk, c, r, at, suggested in tags
            ],
        )
    if reviews:
        session.execute(
            insert(Review),
            [
                {
                    "example_pk": by_old[pk],
                    "reviewer": r,
                    "reviewed_at": at,
                    "reached": reached,
                    "carried": True,
                }
                for pk, r, at, reached in reviews
            ],
        )
    session.flush()
    _record_carried(session, user, pairs, by_old, tags, reviews)
    return len(reviewed)


def _record_carried(session: Session, user, pairs, by_old, tags, reviews) -> None:
    """The carried values, tags and reviews, in the audit trail (labeltool.audit)."""
    kind = audit.Kind
    for field, index in ((kind.COMMENT, 3), (kind.CORRECTED_LABEL, 4)):
        audit.example_changes(
            session,
            user=user,
            kind=field,
            values={
                row[0]: (None if field is kind.CORRECTED_LABEL else "", row[index] or None)
                for row in pairs
                if row[index]
            },
        )
    audit.example_changes(
        session,
        user=user,
        kind=kind.REVIEW_STATE,
        values={
            row[0]: (ReviewState.UNREVIEWED.value, ReviewState.REVIEWED.value)
            for row in pairs
            if row[2] in REVIEWED_STATES
        },
    )
    by_key: dict[tuple[int, str], list[int]] = {}
    for pk, category_id, reviewer, _at, _suggested in tags:
        by_key.setdefault((category_id, reviewer), []).append(by_old[pk])
    for (category_id, reviewer), pks in by_key.items():
        audit.tags_changed(
            session,
            user=user,
            category_id=category_id,
            pks=pks,
            tagged=True,
            reviewer=reviewer,
        )
    by_reviewer: dict[str, list[tuple[int, str]]] = {}
    for pk, reviewer, _at, reached in reviews:
        by_reviewer.setdefault(reviewer, []).append((by_old[pk], reached))
    for reviewer, rows in by_reviewer.items():
        audit.example_changes(
            session,
            user=user,
            kind=kind.REVIEW,
            values={pk: (None, reached) for pk, reached in rows},
            reviewer=reviewer,
        )


def _chunks(items: Sequence, size: int = 500):
    for start in range(0, len(items), size):
        yield items[start : start + size]
