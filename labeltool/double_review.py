"""Double review: a share of the random queue's errors is reviewed by two reviewers, each blind
to the other's tags until both are done; a lead settles the errors they disagree on.

**The overlap.** A lead sets the project's overlap share (`set_overlap_fraction`, e.g. 20%).
An error is in the overlap when its fixed random `shuffle_key`, taken modulo a prime, falls in
the lowest share of that range (`in_overlap`). The eyeball part (labeltool.eyeball) takes the
keys' lowest range instead, so the two choices are independent: the overlap is a random 20%
of the eyeball part as of the blackbox part. Like the eyeball split it survives re-imports,
and raising the share adds errors to the overlap without taking any out.

**The queue.** An overlap error stays in the unreviewed queue of every *other* reviewer until
two reviewers have reviewed it (labeltool.review_queue, with the queue's reviewer); nobody
gets back an error they reviewed themselves. Until two are done, the review screen shows each
reviewer only their own tags on it (`blind_pks`).

**Disagreements.** An error two or more reviewers reviewed is a disagreement when their tags
differ on a category every one of them could have used: the report's and labeltool.agreement's
rule (a review could use a category made before it, or re-made after it; for an error-scope
category, not carried over from the previous run; a tag is always a yes). A lead decides its
categories (`adjudicate`); the report can then count by the lead's decision (labeltool.report).

Functions take the session first and never commit.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime

import pandas as pd
from sqlalchemy import ColumnElement, Float, cast, delete, func, insert, literal, select
from sqlalchemy.orm import Session

from labeltool import audit
from labeltool.agreement import shared_examples
from labeltool.config import DEFAULT_SPLIT
from labeltool.errors import InvalidInput, UnknownCategory, UnknownExample, UnknownProject
from labeltool.models import (
    AdjudicatedTag,
    Adjudication,
    Category,
    Example,
    Project,
    Review,
    Scope,
    Tag,
    confusion_pair_name,
    utcnow,
)
from labeltool.report_cache import touch
from labeltool.roles import Role, require
from labeltool.sample import errors_that_count

#: The overlap takes shuffle_key modulo this prime: independent of the key's range, which the
#: eyeball split uses.
OVERLAP_MODULUS = 1_000_003
#: Reviewers an overlap error needs before it leaves the queue and everyone sees all its tags.
REVIEWERS_NEEDED = 2


@dataclass(frozen=True)
class Status:
    """How far the double review has got."""

    #: The project's overlap share (None: one reviewer each).
    fraction: float | None
    #: The errors that count in the overlap, and how many reviewers reviewed each of them.
    in_overlap: int
    unreviewed: int
    one_reviewer: int
    #: Overlap errors that two or more reviewers reviewed: done by both.
    done: int
    #: Of the errors two or more reviewers reviewed (in the overlap or not): those whose tags
    #: agree, those that disagree, and of these the ones a lead decided.
    agreeing: int
    disagreeing: int
    adjudicated: int

    @property
    def awaiting_adjudication(self) -> int:
        """Disagreements no lead has decided yet."""
        return self.disagreeing - self.adjudicated

    @property
    def sentence(self) -> str:
        """e.g. "12 of 40 double-reviewed errors done by both (5 by one reviewer so far);
        3 disagree, 1 of them adjudicated"."""
        if not self.fraction:
            text = "No overlap share: each error is reviewed once"
        else:
            errors = "error" if self.in_overlap == 1 else "errors"
            text = (
                f"{self.done} of {self.in_overlap} double-reviewed {errors} "
                f"({self.fraction:.0%} of the random queue) done by both"
            )
            if self.one_reviewer:
                text += f" ({self.one_reviewer} by one reviewer so far)"
        shared = self.agreeing + self.disagreeing
        if shared:
            text += (
                f"; of the {shared} reviewed by two or more, {self.disagreeing} disagree, "
                f"{self.adjudicated} of them adjudicated"
            )
        return text


@dataclass(frozen=True)
class Disagreement:
    """An error two or more reviewers tagged differently, and what each of them said."""

    example_pk: int
    example_id: str
    image: str
    label: str
    prediction: str
    #: {reviewer: the names of the categories they tagged}, by reviewer name.
    tags: dict[str, list[str]]
    #: The categories every reviewer tagged (the decision's natural starting point).
    consensus: list[str]
    #: The categories they differ on.
    differing: list[str]
    #: The lead's decision (category names) and who made it, or None while undecided.
    decided: list[str] | None = None
    lead: str | None = None
    decided_at: datetime | None = None
    category_ids: dict[str, int] = field(default_factory=dict, repr=False)

    @property
    def adjudicated(self) -> bool:
        return self.decided is not None

    @property
    def confusion_pair(self) -> str:
        return confusion_pair_name(self.label, self.prediction)


#: The columns of `to_frame`, in order (the CLI's CSV and JSON).
COLUMNS = (
    "example_id",
    "label",
    "prediction",
    "reviewers",
    "tags",
    "consensus",
    "differing",
    "adjudicated",
    "decided",
    "lead",
)


def in_overlap(project_id: int) -> ColumnElement[bool]:
    """True for the project's examples in its overlap (none without an overlap share).

    The share is read from the project inside the query, so queue queries follow the
    project's current setting.
    """
    fraction = select(Project.overlap_fraction).where(Project.id == project_id).scalar_subquery()
    return cast(Example.shuffle_key % literal(OVERLAP_MODULUS), Float) < func.coalesce(
        fraction, 0.0
    ) * literal(float(OVERLAP_MODULUS), Float)


def reviewers_of():
    """Correlated count of the Review rows of the Example in the enclosing query."""
    return (
        select(func.count())
        .where(Review.example_pk == Example.id)
        .correlate(Example)
        .scalar_subquery()
    )


def set_overlap_fraction(
    session: Session, *, project_id: int, fraction: float | None, user: str | None
) -> None:
    """Have `fraction` of the random queue's errors reviewed by two reviewers (0 or None:
    one reviewer each). Only a lead may, once the project has members; the audit trail keeps
    the change."""
    project = session.get(Project, project_id)
    if project is None:
        raise UnknownProject(str(project_id))
    require(
        session,
        project_id=project_id,
        user=user,
        needs=Role.LEAD,
        action="setting the overlap share",
    )
    if fraction is not None and (math.isnan(fraction) or not 0.0 <= fraction <= 1.0):
        raise InvalidInput("the overlap share must be between 0% and 100%")
    new = None if not fraction else float(fraction)
    old = project.overlap_fraction
    project.overlap_fraction = new
    audit.setting(session, project_id=project_id, user=user, name="overlap share", old=old, new=new)
    touch(session, project_id)  # the double review's progress depends on it


def blind_pks(session: Session, *, project_id: int, pks: Iterable[int]) -> set[int]:
    """Of these examples, the overlap errors fewer than REVIEWERS_NEEDED reviewers have
    reviewed: a reviewer sees only their own tags on them (one query)."""
    pks = list(pks)
    if not pks:
        return set()
    return set(
        session.scalars(
            select(Example.id).where(
                Example.id.in_(pks),
                Example.project_id == project_id,
                in_overlap(project_id),
                reviewers_of() < REVIEWERS_NEEDED,
            )
        )
    )


def status(
    session: Session,
    *,
    project_id: int,
    run_id: int | None = None,
    found: list[Disagreement] | None = None,
) -> Status:
    """The overlap's progress and the disagreements' (see Status). `found`: the run's
    disagreements with the adjudicated ones, when the caller has them already."""
    fraction = session.scalar(select(Project.overlap_fraction).where(Project.id == project_id))
    counted = reviewers_of()
    unreviewed = one = done = 0
    if fraction:
        row = session.execute(
            select(
                func.count().filter(counted == 0),
                func.count().filter(counted == 1),
                func.count().filter(counted >= REVIEWERS_NEEDED),
            ).where(*errors_that_count(project_id, run_id), in_overlap(project_id))
        ).one()
        unreviewed, one, done = (int(n or 0) for n in row)
    if found is None:
        found = disagreements(
            session, project_id=project_id, run_id=run_id, include_adjudicated=True
        )
    shared = _shared_count(session, project_id=project_id, run_id=run_id)
    return Status(
        fraction=fraction,
        in_overlap=unreviewed + one + done,
        unreviewed=unreviewed,
        one_reviewer=one,
        done=done,
        agreeing=shared - len(found),
        disagreeing=len(found),
        adjudicated=sum(d.adjudicated for d in found),
    )


def disagreements(
    session: Session,
    *,
    project_id: int,
    run_id: int | None = None,
    include_adjudicated: bool = False,
) -> list[Disagreement]:
    """The run's reviewed errors that two or more reviewers tagged differently on a live
    category every one of them could have used, in the fair random order (the queue's);
    without `include_adjudicated`, only those no lead has decided yet."""
    categories = {
        pk: (name, created, scope)
        for pk, name, created, scope in session.execute(
            select(Category.id, Category.name, Category.created_at, Category.scope).where(
                Category.project_id == project_id, Category.archived.is_(False)
            )
        )
    }
    shared = shared_examples(project_id=project_id, run_id=run_id)
    reviews: dict[int, dict[str, tuple[datetime, bool]]] = {}
    for pk, who, at, carried in session.execute(
        select(Review.example_pk, Review.reviewer, Review.reviewed_at, Review.carried).where(
            Review.example_pk.in_(shared)
        )
    ):
        reviews.setdefault(pk, {})[who] = (at, bool(carried))
    if not reviews or not categories:
        return []
    tags: dict[int, dict[str, set[int]]] = {}
    for pk, who, category_id in session.execute(
        select(Tag.example_pk, Tag.reviewer, Tag.category_id).where(
            Tag.example_pk.in_(shared), Tag.category_id.in_(list(categories))
        )
    ):
        tags.setdefault(pk, {}).setdefault(who, set()).add(category_id)
    decisions = _decisions(session, pks=list(reviews))
    differing_by_pk = {}
    for pk, reviewed in reviews.items():
        given = tags.get(pk, {})
        differing = [
            category_id
            for category_id, (_, created, scope) in categories.items()
            if _differ(category_id, created, scope, reviewed, given)
        ]
        if differing and (include_adjudicated or pk not in decisions):
            differing_by_pk[pk] = differing
    if not differing_by_pk:
        return []
    examples = session.execute(
        select(Example.id, Example.example_id, Example.image, Example.label, Example.prediction)
        .where(Example.id.in_(list(differing_by_pk)))
        .order_by(Example.shuffle_key, Example.id)
    ).all()

    def names(ids: Iterable[int]) -> list[str]:
        return sorted((categories[i][0] for i in ids if i in categories), key=str.casefold)

    found = []
    for pk, example_id, image, label, prediction in examples:
        given = tags.get(pk, {})
        by_reviewer = {who: names(given.get(who, ())) for who in sorted(reviews[pk])}
        every = set.intersection(*(given.get(who, set()) for who in reviews[pk]))
        decision = decisions.get(pk)
        found.append(
            Disagreement(
                example_pk=pk,
                example_id=example_id,
                image=image,
                label=label,
                prediction=prediction,
                tags=by_reviewer,
                consensus=names(every),
                differing=names(differing_by_pk[pk]),
                decided=None if decision is None else names(decision[2]),
                lead=None if decision is None else decision[0],
                decided_at=None if decision is None else decision[1],
                category_ids={name: pk for pk, (name, *_) in categories.items()},
            )
        )
    return found


def awaiting_adjudication(session: Session, *, project_id: int, run_id: int | None = None) -> int:
    """How many disagreements of the run no lead has decided yet."""
    return len(disagreements(session, project_id=project_id, run_id=run_id))


def to_frame(rows: Iterable[Disagreement]) -> pd.DataFrame:
    """Disagreements as a table with the COLUMNS: `tags` as "reviewer: a, b; reviewer: c",
    the category lists joined with ", " (`decided` empty while undecided)."""
    records = [
        {
            "example_id": d.example_id,
            "label": d.label,
            "prediction": d.prediction,
            "reviewers": ", ".join(d.tags),
            "tags": "; ".join(f"{who}: {', '.join(names)}" for who, names in d.tags.items()),
            "consensus": ", ".join(d.consensus),
            "differing": ", ".join(d.differing),
            "adjudicated": d.adjudicated,
            "decided": "" if d.decided is None else ", ".join(d.decided),
            "lead": d.lead or "",
        }
        for d in rows
    ]
    return pd.DataFrame(records, columns=list(COLUMNS))


def to_records(rows: Iterable[Disagreement]) -> list[dict]:
    """Disagreements as JSON-ready dicts (each reviewer's categories as a list)."""
    shown = {f.name for f in fields(Disagreement)} - {"category_ids", "example_pk", "image"}
    return [
        {
            **{k: v for k, v in asdict(d).items() if k in shown and k != "decided_at"},
            "decided_at": d.decided_at.isoformat() if d.decided_at else None,
        }
        for d in rows
    ]


def adjudicate(
    session: Session, *, example_pk: int, category_ids: Iterable[int], lead: str | None
) -> list[str]:
    """Record the lead's decision on an example: its categories are `category_ids` (live
    categories of its project; none is a decision too), replacing an earlier decision. Only
    a lead may, once the project has members. The audit trail gets a row per category whose
    decided state changed. Returns the decided categories' names."""
    example = session.scalar(select(Example).where(Example.id == example_pk).with_for_update())
    if example is None:
        raise UnknownExample(f"no example with id {example_pk}")
    project_id = example.project_id
    require(
        session,
        project_id=project_id,
        user=lead,
        needs=Role.LEAD,
        action="adjudicating a disagreement",
    )
    if not (example.is_error and example.split == DEFAULT_SPLIT):
        raise InvalidInput(
            f"example '{example.example_id}' is not a misclassified dev example: only dev "
            "errors are reviewed and adjudicated"
        )
    wanted = sorted(set(category_ids))
    live = {
        pk: (name, archived)
        for pk, name, archived in session.execute(
            select(Category.id, Category.name, Category.archived).where(
                Category.project_id == project_id
            )
        )
    }
    for category_id in wanted:
        if category_id not in live:
            raise UnknownCategory(f"no category with id {category_id} in this project")
        if live[category_id][1]:
            raise InvalidInput(
                f"category '{live[category_id][0]}' is archived: decide on live categories"
            )
    # Lock the decision before reading it, so two leads' decisions are recorded in order.
    decision = session.scalar(
        select(Adjudication).where(Adjudication.example_pk == example_pk).with_for_update()
    )
    old = (
        set()
        if decision is None
        else set(
            session.scalars(
                select(AdjudicatedTag.category_id).where(AdjudicatedTag.example_pk == example_pk)
            )
        )
    )
    name = " ".join((lead or "").split())
    now = utcnow()
    if decision is None:
        session.add(Adjudication(example_pk=example_pk, lead=name, decided_at=now))
        session.flush()
    else:
        decision.lead, decision.decided_at = name, now
        session.execute(delete(AdjudicatedTag).where(AdjudicatedTag.example_pk == example_pk))
    if wanted:
        session.execute(
            insert(AdjudicatedTag),
            [{"example_pk": example_pk, "category_id": pk} for pk in wanted],
        )
    changed = sorted(old ^ set(wanted), key=lambda pk: live[pk][0].casefold())
    audit.record(
        session,
        project_id=project_id,
        user=lead,
        changes=[
            # A first decision is a change even when it keeps no category at all.
            *(
                [
                    audit.Change(
                        audit.Kind.ADJUDICATION,
                        field=audit.DECIDED,
                        new=audit.DECIDED,
                        example_pk=example_pk,
                        example_id=example.example_id,
                        run_id=example.run_id,
                    )
                ]
                if decision is None
                else []
            ),
            *(
                audit.Change(
                    audit.Kind.ADJUDICATION,
                    field=live[pk][0],
                    old=audit.TAGGED if pk in old else None,
                    new=audit.TAGGED if pk in wanted else None,
                    example_pk=example_pk,
                    example_id=example.example_id,
                    run_id=example.run_id,
                    category_id=pk,
                )
                for pk in changed
            ),
        ],
    )
    touch(session, project_id)  # the report's adjudicated counts change (SQLite's version)
    return sorted((live[pk][0] for pk in wanted), key=str.casefold)


def category_ids_by_name(session: Session, *, project_id: int, names: Iterable[str]) -> list[int]:
    """The ids of the project's categories named `names` (case-insensitive); UnknownCategory
    names the first that is not one."""
    known = {
        name.casefold(): pk
        for pk, name in session.execute(
            select(Category.id, Category.name).where(Category.project_id == project_id)
        )
    }
    ids = []
    for name in names:
        found = known.get(name.strip().casefold())
        if found is None:
            raise UnknownCategory(
                f"no category '{name.strip()}' in this project (known: "
                f"{', '.join(sorted(known)) or 'none'})"
            )
        ids.append(found)
    return ids


# --- private helpers -------------------------------------------------------------------


def _shared_count(session: Session, *, project_id: int, run_id: int | None) -> int:
    shared = shared_examples(project_id=project_id, run_id=run_id).subquery()
    return int(session.scalar(select(func.count()).select_from(shared)) or 0)


def _decisions(session: Session, *, pks: list[int]) -> dict[int, tuple[str, datetime, set[int]]]:
    """{example pk: (lead, decided at, decided category ids)} of these examples' decisions."""
    found: dict[int, tuple[str, datetime, set[int]]] = {
        pk: (lead, at, set())
        for pk, lead, at in session.execute(
            select(Adjudication.example_pk, Adjudication.lead, Adjudication.decided_at).where(
                Adjudication.example_pk.in_(pks)
            )
        )
    }
    if found:
        for pk, category_id in session.execute(
            select(AdjudicatedTag.example_pk, AdjudicatedTag.category_id).where(
                AdjudicatedTag.example_pk.in_(list(found))
            )
        ):
            found[pk][2].add(category_id)
    return found


def _differ(
    category_id: int,
    created: datetime,
    scope: str,
    reviewed: dict[str, tuple[datetime, bool]],
    given: dict[str, set[int]],
) -> bool:
    """Whether the reviewers of one example differ on a category every one of them could have
    used (a tag is always a yes; else the review came at or after the category, and, for an
    error-scope category, was not carried over)."""
    answers = set()
    for who, (at, carried) in reviewed.items():
        tagged = category_id in given.get(who, ())
        could = tagged or (
            _comparable(at) >= _comparable(created) and not (scope == Scope.ERROR.value and carried)
        )
        if not could:
            return False
        answers.add(tagged)
    return len(answers) > 1


def _comparable(moment: datetime) -> datetime:
    """A naive UTC timestamp, whatever the driver gave (SQLite naive UTC, PostgreSQL aware)."""
    if moment.tzinfo is None:
        return moment
    return moment.astimezone(UTC).replace(tzinfo=None)
