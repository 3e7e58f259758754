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
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import event, insert
from sqlalchemy.orm import Session

from labeltool.models import AuditEvent, utcnow


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
    if _text(old) != _text(new):
        record(
            session,
            project_id=project_id,
            user=user,
            changes=[Change(Kind.SETTING, field=name, old=_text(old), new=_text(new))],
        )


def _text(value: object) -> str | None:
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


@event.listens_for(Session, "after_commit")
@event.listens_for(Session, "after_rollback")
def _new_change_next_time(session: Session) -> None:
    """A transaction is one change: the next one gets a new id."""
    session.info.pop(_CHANGE_KEY, None)
