"""The audit trail: every change to a project's reviewed data, who made it, when, old and new.

Each core function that changes tags, comments, corrected labels, review states, reviews,
categories, adjudications or a project's settings (its eyeball and overlap shares, human-level
error, members) calls `record` in the same transaction, so the trail holds a change exactly
when the change itself was committed. Rows are only ever added (`AuditEvent`): an undo is a
new change that names the one it undoes.

The rows one transaction writes share a `change_id`: one action of a person (a key press, a
form, an import), which `undo_last` takes back as a whole.

**Replay.** The trail alone rebuilds the project's reviewed data (`replay`): start from a fresh
import (no tags or reviews, empty comments, no corrected labels, every error unreviewed) and
apply each row in order of its id. `differences` compares that with the database. Rows are
numbered in the order their transactions wrote them; two transactions that change the same
value are ordered by the database's row lock on it (PostgreSQL) or its single writer (SQLite),
and each takes that lock before it reads the old value and writes its row, so the order of
ids is the order of the changes.
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import delete, event, func, insert, or_, select, text, update
from sqlalchemy.orm import Session

from labeltool.models import (
    AdjudicatedTag,
    Adjudication,
    AuditEvent,
    Category,
    Example,
    Project,
    ProjectMember,
    Review,
    ReviewState,
    Run,
    Tag,
    utcnow,
)

if TYPE_CHECKING:
    import pandas as pd


class Kind(enum.StrEnum):
    """What an audit row changed."""

    #: A reviewer's tag: `field` is the category's name; new "tagged" (on) or None (off).
    TAG = "tag"
    #: A reviewer's review of an example: new is how it was reached (on) or None (taken back).
    REVIEW = "review"
    #: The example's review state ("unreviewed", "reviewed", "skipped", "needs re-review").
    REVIEW_STATE = "review state"
    COMMENT = "comment"
    CORRECTED_LABEL = "corrected label"
    #: A category: `field` is what changed ("created", "name", "archived", "effort"...).
    CATEGORY = "category"
    #: A project setting: `field` is its name ("eyeball share", "overlap share"...).
    SETTING = "setting"
    #: A member's role: `field` is the user; new is the role, or None when removed.
    MEMBER = "member"
    #: A lead's decision on a disagreement: `field` is the category; new "tagged" or None.
    ADJUDICATION = "adjudication"


#: Kinds that describe one example (they carry its pk, id and run).
EXAMPLE_KINDS = frozenset(
    {Kind.TAG, Kind.REVIEW, Kind.REVIEW_STATE, Kind.COMMENT, Kind.CORRECTED_LABEL}
)
#: The `new` value of a tag (or adjudicated category) that is on.
TAGGED = "tagged"
#: The field and `new` value of an example's first adjudication (its categories follow).
DECIDED = "decided"


@dataclass(frozen=True)
class Change:
    """One row to record: what changed, from what, to what."""

    kind: Kind
    field: str = ""
    old: str | None = None
    new: str | None = None
    example_pk: int | None = None
    example_id: str | None = None
    run_id: int | None = None
    category_id: int | None = None
    #: Whose tag or review it is, when not the acting user's.
    reviewer: str | None = None


def change_id(session: Session) -> str:
    """The id shared by every row this transaction records (made on first use)."""
    found = session.info.get(_CHANGE_KEY)
    if found is None:
        found = session.info[_CHANGE_KEY] = uuid.uuid4().hex
    return found


def new_change(session: Session) -> None:
    """Start a new change within the transaction: what is recorded from here on is undone
    apart from what came before (the review screen applies several key presses at once)."""
    session.info.pop(_CHANGE_KEY, None)


def record(
    session: Session,
    *,
    project_id: int,
    user: str | None,
    changes: Iterable[Change],
    undoes: str | None = None,
) -> int:
    """Add `changes`, made by `user` in the project, to the trail; return how many rows.

    Call it in the transaction that makes the changes, after taking the lock on what changes
    (see the module's note on order). Nothing is recorded for an empty `changes`.
    """
    rows = [
        {
            "project_id": project_id,
            "change_id": change_id(session),
            "at": utcnow(),
            "user": _name(user),
            "kind": c.kind.value,
            "field": c.field,
            "old": c.old,
            "new": c.new,
            "example_pk": c.example_pk,
            "example_id": c.example_id,
            "run_id": c.run_id,
            "category_id": c.category_id,
            "reviewer": c.reviewer if c.reviewer and c.reviewer != _name(user) else None,
            "undoes": undoes,
        }
        for c in changes
    ]
    if rows:
        session.execute(insert(AuditEvent), rows)
    return len(rows)


def setting(
    session: Session,
    *,
    project_id: int,
    user: str | None,
    name: str,
    old: object,
    new: object,
) -> None:
    """Record that a project setting `name` went from `old` to `new` (when it changed)."""
    if as_text(old) != as_text(new):
        record(
            session,
            project_id=project_id,
            user=user,
            changes=[Change(Kind.SETTING, field=name, old=as_text(old), new=as_text(new))],
        )


def as_text(value: object) -> str | None:
    """A value as the trail keeps it: text, None for none."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def _name(user: str | None) -> str:
    return " ".join((user or "").split())


_CHANGE_KEY = "labeltool.audit.change_id"


@event.listens_for(Session, "after_transaction_end")
def _new_change_next_time(session: Session, transaction) -> None:
    """A transaction is one change: the next one gets a new id (a savepoint, as each of the
    review screen's actions has, stays part of its transaction's change)."""
    if transaction.parent is not None:
        return
    session.info.pop(_CHANGE_KEY, None)


# --- recording helpers for the core's write paths ------------------------------------------


def lock_examples(session: Session, pks: Iterable[int]) -> None:
    """Take the write lock on these examples before reading their old values: a row lock on
    PostgreSQL; SQLite has one writer at a time, and a write statement (here one that changes
    nothing) makes this transaction it, so later reads see every committed change."""
    pks = sorted(set(pks))
    if not pks:
        return
    if session.get_bind().dialect.name == "postgresql":
        for start in range(0, len(pks), _CHUNK):
            session.execute(
                select(Example.id)
                .where(Example.id.in_(pks[start : start + _CHUNK]))
                .with_for_update()
            ).all()
    else:
        session.execute(text("UPDATE examples SET id = id WHERE 0"))


def example_refs(session: Session, pks: Iterable[int]) -> dict[int, tuple[int, str, int]]:
    """{pk: (project id, the user's example id, run id)} of these examples."""
    pks = sorted(set(pks))
    found: dict[int, tuple[int, str, int]] = {}
    for start in range(0, len(pks), _CHUNK):
        for pk, project_id, example_id, run_id in session.execute(
            select(Example.id, Example.project_id, Example.example_id, Example.run_id).where(
                Example.id.in_(pks[start : start + _CHUNK])
            )
        ):
            found[pk] = (project_id, example_id, run_id)
    return found


def example_changes(
    session: Session,
    *,
    user: str | None,
    kind: Kind,
    values: Mapping[int, tuple[object, object]],
    field: str | None = None,
    category_id: int | None = None,
    reviewer: str | None = None,
) -> None:
    """Record one `kind` change per example: {pk: (old, new)}; unchanged ones are left out."""
    values = {pk: (as_text(o), as_text(n)) for pk, (o, n) in values.items()}
    values = {pk: on for pk, on in values.items() if on[0] != on[1]}
    if not values:
        return
    refs = example_refs(session, values)
    by_project: dict[int, list[Change]] = {}
    for pk, (old, new) in values.items():
        project_id, example_id, run_id = refs[pk]
        by_project.setdefault(project_id, []).append(
            Change(
                kind,
                field=field if field is not None else kind.value,
                old=old,
                new=new,
                example_pk=pk,
                example_id=example_id,
                run_id=run_id,
                category_id=category_id,
                reviewer=reviewer,
            )
        )
    for project_id, changes in by_project.items():
        record(session, project_id=project_id, user=user, changes=changes)


def tags_changed(
    session: Session,
    *,
    user: str | None,
    category_id: int,
    pks: Iterable[int],
    tagged: bool,
    reviewer: str | None = None,
) -> None:
    """Record that the category's tag by `reviewer` (default: `user`) went on (or off) these
    examples: the ones the INSERT or DELETE actually changed (its RETURNING rows)."""
    pks = list(pks)
    if not pks:
        return
    name = session.scalar(select(Category.name).where(Category.id == category_id))
    on, off = (None, TAGGED) if tagged else (TAGGED, None)
    example_changes(
        session,
        user=user,
        kind=Kind.TAG,
        values={pk: (on, off) for pk in pks},
        field=name or "",
        category_id=category_id,
        reviewer=reviewer or user,
    )


_CHUNK = 2_000


# --- replay --------------------------------------------------------------------------------


@dataclass(frozen=True)
class State:
    """A project's reviewed data: what the trail replays to, and what the database holds."""

    #: (example pk, category id, reviewer) of every tag.
    tags: frozenset[tuple[int, int, str]]
    #: (example pk, reviewer) of every review.
    reviews: frozenset[tuple[int, str]]
    #: {example pk: comment}, the non-empty ones.
    comments: dict[int, str]
    #: {example pk: corrected label}, where there is one.
    corrected_labels: dict[int, str]
    #: {example pk: review state}, where it is not "unreviewed".
    review_states: dict[int, str]


def replay(session: Session, *, project_id: int) -> State:
    """The project's reviewed data rebuilt from its audit trail alone, starting from a fresh
    import, applying each row in order. Rows of examples since deleted are left out."""
    tags: set[tuple[int, int, str]] = set()
    reviews: set[tuple[int, str]] = set()
    values: dict[Kind, dict[int, str | None]] = {
        Kind.COMMENT: {},
        Kind.CORRECTED_LABEL: {},
        Kind.REVIEW_STATE: {},
    }
    rows = session.execute(
        select(
            AuditEvent.kind,
            AuditEvent.example_pk,
            AuditEvent.category_id,
            func.coalesce(AuditEvent.reviewer, AuditEvent.user),
            AuditEvent.new,
        )
        .where(
            AuditEvent.project_id == project_id,
            AuditEvent.example_pk.is_not(None),
            AuditEvent.kind.in_([k.value for k in EXAMPLE_KINDS]),
        )
        .order_by(AuditEvent.id)
        .execution_options(yield_per=10_000)
    )
    for kind, pk, category_id, reviewer, new in rows:
        if kind == Kind.TAG:
            if category_id is not None:
                key = (pk, category_id, reviewer)
                (tags.add if new is not None else tags.discard)(key)
        elif kind == Kind.REVIEW:
            (reviews.add if new is not None else reviews.discard)((pk, reviewer))
        else:
            values[Kind(kind)][pk] = new
    return State(
        tags=frozenset(tags),
        reviews=frozenset(reviews),
        comments={pk: v for pk, v in values[Kind.COMMENT].items() if v},
        corrected_labels={pk: v for pk, v in values[Kind.CORRECTED_LABEL].items() if v},
        review_states={
            pk: v
            for pk, v in values[Kind.REVIEW_STATE].items()
            if v and v != ReviewState.UNREVIEWED.value
        },
    )


def current(session: Session, *, project_id: int) -> State:
    """The project's reviewed data as the database holds it now."""
    mine = Example.project_id == project_id
    tags = session.execute(
        select(Tag.example_pk, Tag.category_id, Tag.reviewer).join(Example).where(mine)
    ).all()
    reviews = session.execute(
        select(Review.example_pk, Review.reviewer).join(Example).where(mine)
    ).all()
    examples = session.execute(
        select(Example.id, Example.comment, Example.corrected_label, Example.review_state).where(
            mine,
            or_(
                Example.comment != "",
                Example.corrected_label.is_not(None),
                Example.review_state != ReviewState.UNREVIEWED.value,
            ),
        )
    ).all()
    return State(
        tags=frozenset(map(tuple, tags)),
        reviews=frozenset(map(tuple, reviews)),
        comments={pk: c for pk, c, _, _ in examples if c},
        corrected_labels={pk: label for pk, _, label, _ in examples if label},
        review_states={pk: s for pk, _, _, s in examples if s != ReviewState.UNREVIEWED.value},
    )


def differences(session: Session, *, project_id: int, limit: int = 20) -> list[str]:
    """Where the replay of the project's trail and the database disagree, a line each (at
    most `limit`, then a count); empty when they are the same. It holds for a project whose
    whole life is in the trail (created since the trail was kept)."""
    replayed, now = replay(session, project_id=project_id), current(session, project_id=project_id)
    lines: list[str] = []
    for what, trail, database in (
        ("tag (example pk, category id, reviewer)", replayed.tags, now.tags),
        ("review (example pk, reviewer)", replayed.reviews, now.reviews),
    ):
        lines += [f"{what} {key}: in the database, not in the trail" for key in database - trail]
        lines += [f"{what} {key}: in the trail, not in the database" for key in trail - database]
    for what, trail, database in (
        ("comment", replayed.comments, now.comments),
        ("corrected label", replayed.corrected_labels, now.corrected_labels),
        ("review state", replayed.review_states, now.review_states),
    ):
        for pk in sorted(trail.keys() | database.keys()):
            if trail.get(pk) != database.get(pk):
                lines.append(
                    f"{what} of example pk {pk}: the trail says {trail.get(pk)!r}, "
                    f"the database {database.get(pk)!r}"
                )
    if len(lines) > limit:
        lines = [*lines[:limit], f"... and {len(lines) - limit} more"]
    return lines


# --- history -------------------------------------------------------------------------------

#: The history's columns, in order.
HISTORY_COLUMNS = (
    "at",
    "user",
    "change",
    "run",
    "example_id",
    "what",
    "old",
    "new",
    "whose",
    "change_id",
    "undoes",
)


def history(
    session: Session,
    *,
    project_id: int,
    example_id: str | None = None,
    user: str | None = None,
    kinds: Iterable[str] = (),
    change: str | None = None,
    limit: int | None = None,
) -> pd.DataFrame:
    """The project's audit trail, newest first: one row per change of one value, with when,
    who, what kind of change, the run and example it touched, the old and new value, whose
    tag or review it was (when not the user's own), and the change it belongs to (and the one
    it undoes, for an undo). Filtered by the user's `example_id` (every run), `user` and
    `kinds`, or to one `change` (its change_id); at most `limit` rows."""
    import pandas as pd

    query = (
        select(
            AuditEvent.at,
            AuditEvent.user,
            AuditEvent.kind,
            Run.name,
            AuditEvent.example_id,
            AuditEvent.field,
            AuditEvent.old,
            AuditEvent.new,
            AuditEvent.reviewer,
            AuditEvent.change_id,
            AuditEvent.undoes,
        )
        .outerjoin(Run, Run.id == AuditEvent.run_id)
        .where(AuditEvent.project_id == project_id)
        .order_by(AuditEvent.id.desc())
    )
    if example_id is not None:
        query = query.where(AuditEvent.example_id == example_id)
    if user is not None:
        query = query.where(AuditEvent.user == _name(user))
    if change is not None:
        query = query.where(AuditEvent.change_id == change)
    kinds = [Kind(k).value for k in kinds]
    if kinds:
        query = query.where(AuditEvent.kind.in_(kinds))
    if limit is not None:
        query = query.limit(limit)
    frame = pd.DataFrame(session.execute(query).all(), columns=list(HISTORY_COLUMNS))
    for column in HISTORY_COLUMNS[1:]:  # text: a missing value is None, as in the database
        frame[column] = frame[column].astype(object).where(frame[column].notna(), None)
    return frame


def users(session: Session, *, project_id: int) -> list[str]:
    """Everyone who changed something in the project, by name."""
    return sorted(
        u
        for u in session.scalars(
            select(AuditEvent.user).where(AuditEvent.project_id == project_id).distinct()
        )
        if u
    )


# --- undo ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Undone:
    """What `undo_last` took back."""

    change_id: str
    #: How many values it set back.
    values: int
    #: One line for a person, e.g. "untagged blurry on example 17".
    summary: str


def last_change(session: Session, *, project_id: int, user: str) -> str | None:
    """The change_id of `user`'s latest change in the project that is not an undo and has not
    been undone, or None."""
    undone = select(AuditEvent.undoes).where(
        AuditEvent.project_id == project_id, AuditEvent.undoes.is_not(None)
    )
    return session.scalar(
        select(AuditEvent.change_id)
        .where(
            AuditEvent.project_id == project_id,
            AuditEvent.user == _name(user),
            AuditEvent.undoes.is_(None),
            AuditEvent.change_id.not_in(undone),
        )
        .order_by(AuditEvent.id.desc())
        .limit(1)
    )


def undo_last(session: Session, *, project_id: int, user: str | None) -> Undone:
    """Take back `user`'s own last change in the project (every value it set), recording the
    undo as a change of its own. Refused, with nothing written, when the user has nothing to
    undo or someone changed one of those values since (the message names who and when).
    It needs the role the change needed: a reviewer's for tags, comments, labels and reviews,
    the lead's for categories, settings, members and adjudications (labeltool.roles)."""
    from labeltool.errors import InvalidInput
    from labeltool.roles import Role, require

    name = _name(user)
    if not name:
        raise InvalidInput("say who you are first: an undo takes back your own last change")
    found = last_change(session, project_id=project_id, user=name)
    if found is None:
        raise InvalidInput(f"{name} has no change to undo in this project")
    rows = session.scalars(
        select(AuditEvent)
        .where(AuditEvent.project_id == project_id, AuditEvent.change_id == found)
        .order_by(AuditEvent.id.desc())
    ).all()
    needs = Role.REVIEWER if all(r.kind in EXAMPLE_KINDS for r in rows) else Role.LEAD
    require(session, project_id=project_id, user=name, needs=needs, action="undoing that change")
    lock_examples(session, [r.example_pk for r in rows if r.example_pk is not None])
    for row in rows:
        _check_unchanged_since(session, row)
    changes = [_revert(session, row) for row in rows]
    record(session, project_id=project_id, user=name, changes=changes, undoes=found)
    session.flush()
    return Undone(change_id=found, values=len(changes), summary=_summary(rows))


def _check_unchanged_since(session: Session, row: AuditEvent) -> None:
    """InvalidInput unless the value `row` set is still there (nobody changed it since)."""
    from labeltool.errors import InvalidInput

    if _value_now(session, row) == row.new:
        return
    later = session.scalar(
        select(AuditEvent)
        .where(*_same_target(row), AuditEvent.id > row.id)
        .order_by(AuditEvent.id.desc())
        .limit(1)
    )
    who = f"{later.user or 'someone'} changed it at {later.at:%Y-%m-%d %H:%M}" if later else ""
    where = f" of example {row.example_id}" if row.example_id else ""
    what = row.kind if row.field in ("", row.kind) else f"{row.kind} {row.field!r}"
    raise InvalidInput(
        f"cannot undo: the {what}{where} is no longer what you left it"
        + (f" ({who})" if who else "")
        + "; nothing was undone"
    )


def _same_target(row: AuditEvent) -> list:
    """Conditions for the trail's rows about the same value as `row`."""
    same = [
        AuditEvent.project_id == row.project_id,
        AuditEvent.kind == row.kind,
        AuditEvent.field == row.field,
    ]
    if row.example_pk is not None:
        same.append(AuditEvent.example_pk == row.example_pk)
    if row.category_id is not None:
        same.append(AuditEvent.category_id == row.category_id)
    if row.kind in (Kind.TAG, Kind.REVIEW):
        same.append(func.coalesce(AuditEvent.reviewer, AuditEvent.user) == _whose(row))
    return same


def _whose(row: AuditEvent) -> str:
    return row.reviewer or row.user


def _value_now(session: Session, row: AuditEvent) -> str | None:
    """The value `row` changed, as it is now, in the trail's text form."""
    kind = Kind(row.kind)
    if kind is Kind.TAG:
        there = session.scalar(
            select(Tag.id).where(
                Tag.example_pk == row.example_pk,
                Tag.category_id == row.category_id,
                Tag.reviewer == _whose(row),
            )
        )
        return TAGGED if there else None
    if kind is Kind.REVIEW:
        return session.scalar(
            select(Review.reached).where(
                Review.example_pk == row.example_pk, Review.reviewer == _whose(row)
            )
        )
    if kind in _EXAMPLE_COLUMNS:
        value = session.scalar(select(_EXAMPLE_COLUMNS[kind]).where(Example.id == row.example_pk))
        return value if value or kind is not Kind.CORRECTED_LABEL else None
    if kind is Kind.CATEGORY:
        category = session.get(Category, row.category_id)
        if category is None:
            return None
        if row.field == "created":
            return None if category.archived else row.new
        return as_text(getattr(category, row.field))
    if kind is Kind.SETTING:
        project = session.get(Project, row.project_id)
        return as_text(getattr(project, _SETTINGS[row.field]))
    if kind is Kind.MEMBER:
        return session.scalar(
            select(ProjectMember.role).where(
                ProjectMember.project_id == row.project_id, ProjectMember.user == row.field
            )
        )
    if kind is Kind.ADJUDICATION and row.category_id is None:  # the decision itself
        there = session.get(Adjudication, row.example_pk)
        return DECIDED if there is not None else None
    if kind is Kind.ADJUDICATION:
        there = session.scalar(
            select(AdjudicatedTag.category_id).where(
                AdjudicatedTag.example_pk == row.example_pk,
                AdjudicatedTag.category_id == row.category_id,
            )
        )
        return TAGGED if there else None
    raise AssertionError(f"unknown audit kind {row.kind!r}")  # pragma: no cover


def _revert(session: Session, row: AuditEvent) -> Change:
    """Set the value `row` changed back to its old value; return the trail's row for it."""
    kind, old = Kind(row.kind), row.old
    if kind is Kind.TAG:
        key = {"example_pk": row.example_pk, "category_id": row.category_id}
        if old is None:
            session.execute(
                delete(Tag).where(
                    Tag.example_pk == row.example_pk,
                    Tag.category_id == row.category_id,
                    Tag.reviewer == _whose(row),
                )
            )
        else:
            session.execute(insert(Tag).values(**key, reviewer=_whose(row), tagged_at=utcnow()))
    elif kind is Kind.REVIEW:
        if old is None:
            session.execute(
                delete(Review).where(
                    Review.example_pk == row.example_pk, Review.reviewer == _whose(row)
                )
            )
        else:
            session.execute(
                insert(Review).values(example_pk=row.example_pk, reviewer=_whose(row), reached=old)
            )
    elif kind in _EXAMPLE_COLUMNS:
        column = _EXAMPLE_COLUMNS[kind]
        value = (old or "") if kind is Kind.COMMENT else old
        session.execute(
            update(Example)
            .where(Example.id == row.example_pk)
            .values({column.key: value})
            .execution_options(synchronize_session="fetch")
        )
    elif kind is Kind.CATEGORY:
        category = session.get(Category, row.category_id)
        if row.field == "created":
            category.archived, category.shortcut = True, None
            return Change(
                Kind.CATEGORY, field="archived", old="false", new="true", category_id=category.id
            )
        setattr(category, row.field, _typed(getattr(Category, row.field), old))
    elif kind is Kind.SETTING:
        project = session.get(Project, row.project_id)
        setattr(project, _SETTINGS[row.field], None if old is None else float(old))
    elif kind is Kind.MEMBER:
        member = session.scalar(
            select(ProjectMember).where(
                ProjectMember.project_id == row.project_id, ProjectMember.user == row.field
            )
        )
        if old is None:
            session.delete(member)
        elif member is None:
            session.add(ProjectMember(project_id=row.project_id, user=row.field, role=old))
        else:
            member.role = old
    elif kind is Kind.ADJUDICATION and row.category_id is None:
        session.execute(delete(Adjudication).where(Adjudication.example_pk == row.example_pk))
    elif kind is Kind.ADJUDICATION:
        if old is None:
            session.execute(
                delete(AdjudicatedTag).where(
                    AdjudicatedTag.example_pk == row.example_pk,
                    AdjudicatedTag.category_id == row.category_id,
                )
            )
        else:
            session.execute(
                insert(AdjudicatedTag).values(
                    example_pk=row.example_pk, category_id=row.category_id
                )
            )
    return Change(
        kind,
        field=row.field,
        old=row.new,
        new=old,
        example_pk=row.example_pk,
        example_id=row.example_id,
        run_id=row.run_id,
        category_id=row.category_id,
        reviewer=row.reviewer,
    )


def _typed(attribute, text_value: str | None):
    """A category setting's value back from the trail's text."""
    if text_value is None:
        return None
    python_type = attribute.type.python_type
    if python_type is bool:
        return text_value == "true"
    return python_type(text_value)


def _summary(rows: list[AuditEvent]) -> str:
    """One line naming what an undo took back."""
    first = rows[-1]  # the change's first row (rows are newest first)
    where = f" on example {first.example_id}" if first.example_id else ""
    what = f"{first.kind} {first.field}".strip() if first.field != first.kind else first.kind
    more = f" and {len(rows) - 1} more value{'s' if len(rows) > 2 else ''}" if len(rows) > 1 else ""
    return f"{what}{where}{more}"


#: Example columns the trail follows, by kind.
_EXAMPLE_COLUMNS = {
    Kind.COMMENT: Example.comment,
    Kind.CORRECTED_LABEL: Example.corrected_label,
    Kind.REVIEW_STATE: Example.review_state,
}
#: Project settings the trail follows: their name in the trail, their column.
_SETTINGS = {
    "eyeball share": "eyeball_fraction",
    "overlap share": "overlap_fraction",
    "human-level error": "human_level_error",
}
