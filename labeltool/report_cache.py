"""Keep a project's report numbers between reruns for as long as its data is unchanged.

At a million examples the ceiling report's queries take about two seconds on SQLite, and the
report page reruns on every click (a reviewer filter, an effort typed in). The numbers only
change when the data under them does, so each result is kept under the project's **data
version** and reused while the version holds:

- on SQLite, database triggers (migration 0007) give `projects.data_version` a fresh random
  value whenever a row the report reads changes: an example's labels, split or review state,
  a tag, a review, a category's name, archive flag or incorrect-label mark, or the project's
  eyeball share. A comment, a colour or an effort estimate leaves it alone, so typing an
  effort reruns the page from the kept numbers. The value is random rather than counted so
  that a rolled-back change can never leave behind a version a later change reuses;
- on PostgreSQL, where a per-project counter row would make every reviewer's write wait on
  the others', the version is the database's current snapshot (`pg_current_snapshot()`),
  which changes whenever any transaction commits a write; nothing is kept for a transaction
  that has itself written, since its numbers include what it may still roll back.

The version is read before the numbers are computed, so a change that lands in between can
only make kept numbers newer than their version says, never older. Kept values are shared
between sessions: callers get copies of DataFrames, and everything else is immutable.
"""

from __future__ import annotations

import functools
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import TypeVar

import pandas as pd
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from labeltool.models import Project

T = TypeVar("T")

#: Results kept, over all projects and slices (a report page rerun uses about eight).
MAX_ENTRIES = 256

_kept: OrderedDict[Hashable, object] = OrderedDict()
_lock = threading.Lock()


def data_version(session: Session, project_id: int) -> Hashable | None:
    """The project's data version, or None when nothing may be kept (see the module doc)."""
    bind = session.get_bind()
    if bind.dialect.name == "sqlite":
        return session.scalar(select(Project.data_version).where(Project.id == project_id))
    if bind.dialect.name == "postgresql":
        snapshot, writing = session.execute(
            text("SELECT pg_current_snapshot()::text, pg_current_xact_id_if_assigned()")
        ).one()
        return None if writing is not None else snapshot
    return None


def kept(session: Session, *, project_id: int, key: tuple, compute: Callable[[], T]) -> T:
    """`compute()`, or the result kept for `key` while the project's data is unchanged."""
    version = data_version(session, project_id)
    if version is None:
        return compute()
    full_key = (_database(session), project_id, version, key)
    with _lock:
        if full_key in _kept:
            _kept.move_to_end(full_key)
            return _copy(_kept[full_key])
    value = compute()
    with _lock:
        _kept[full_key] = _copy(value)
        while len(_kept) > MAX_ENTRIES:
            _kept.popitem(last=False)
    return value


def touch(session: Session, project_id: int) -> None:
    """Give the project a new data version after a write the triggers do not see (signals
    stored by `labeltool analyze`). On PostgreSQL the commit itself moves the snapshot."""
    if session.get_bind().dialect.name == "sqlite":
        session.execute(
            text("UPDATE projects SET data_version = random() WHERE id = :id"), {"id": project_id}
        )


def forget() -> None:
    """Drop every kept result (tests; a process that wants a cold start)."""
    with _lock:
        _kept.clear()


def _database(session: Session) -> str:
    """Which database: two databases' projects may share an id."""
    return session.get_bind().url.render_as_string(hide_password=True)


def _copy(value):
    if isinstance(value, pd.DataFrame):
        return value.copy()
    return value


def keep(function: Callable[..., T]) -> Callable[..., T]:
    """Decorate a report function `f(session, *, project_id, ...)` so its result is kept
    per data version and per keyword arguments (lists are taken as tuples)."""

    @functools.wraps(function)
    def wrapper(session: Session, **kwargs) -> T:
        key = (
            function.__module__,
            function.__qualname__,
            *sorted((name, _hashable(value)) for name, value in kwargs.items()),
        )
        return kept(
            session,
            project_id=kwargs["project_id"],
            key=key,
            compute=lambda: function(session, **kwargs),
        )

    wrapper.uncached = function  # type: ignore[attr-defined]
    return wrapper


def _hashable(value):
    if isinstance(value, list | tuple | set | frozenset):
        return tuple(_hashable(v) for v in value)
    return value
