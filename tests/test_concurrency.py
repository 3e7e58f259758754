"""Two reviewers writing at the same moment: the schema, not luck, keeps the data right.

Each test runs two threads, each with its own engine (as two app processes would have), on a
SQLite file and on PostgreSQL. A barrier holds both threads just before the write that races,
after each has done its own checks, so the race happens on every run instead of now and then.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from sqlalchemy import event, func, select
from sqlalchemy.orm import Session

from labeltool.categories import create_category
from labeltool.db import Database
from labeltool.errors import DuplicateCategory
from labeltool.labeling import mark_reviewed, set_tag, toggle_tag
from labeltool.models import Category, Example, Project, Review, Run, Tag

#: Seconds a thread waits for the other at the barrier before the test fails.
MEET_TIMEOUT = 10


def test_two_categories_named_alike_at_once_one_is_refused(db: Database) -> None:
    """ "blurry" and "BLURRY" added at the same moment: one is created, the other gets
    DuplicateCategory, and the project has one category of that name."""
    project_id = _add_project(db)

    outcomes = _at_once(
        db,
        "INSERT INTO categories",
        lambda session: create_category(session, project_id=project_id, name="blurry"),
        lambda session: create_category(session, project_id=project_id, name="BLURRY"),
    )

    assert sorted(type(outcome).__name__ for outcome in outcomes) == [
        "Category",
        "DuplicateCategory",
    ]
    refusal = next(o for o in outcomes if isinstance(o, DuplicateCategory))
    assert "already exists" in str(refusal)
    assert _names(db) == [next(o.name for o in outcomes if isinstance(o, Category))]


def test_two_live_categories_given_one_key_at_once_one_is_refused(db: Database) -> None:
    """Two categories given the key "k" at the same moment: one gets it, the other is refused
    with a message about the key, so a key never toggles two live categories."""
    project_id = _add_project(db)

    outcomes = _at_once(
        db,
        "INSERT INTO categories",
        lambda session: create_category(session, project_id=project_id, name="dark", shortcut="k"),
        lambda session: create_category(session, project_id=project_id, name="tiny", shortcut="K"),
    )

    refusals = [o for o in outcomes if isinstance(o, DuplicateCategory)]
    assert len(refusals) == 1
    assert "key 'k' already toggles another category" in str(refusals[0])
    assert _keys(db) == ["k"]


def test_two_categories_added_at_once_without_a_key_get_different_keys(db: Database) -> None:
    """Without a chosen key both categories are created, and the one that lost the race for
    the default key gets the next free one."""
    project_id = _add_project(db)

    outcomes = _at_once(
        db,
        "INSERT INTO categories",
        lambda session: create_category(session, project_id=project_id, name="dark"),
        lambda session: create_category(session, project_id=project_id, name="tiny"),
    )

    assert all(isinstance(o, Category) for o in outcomes), outcomes
    assert sorted(_names(db)) == ["dark", "tiny"]
    assert sorted(_keys(db)) == ["1", "2"]


def test_the_same_reviewer_marking_an_example_reviewed_twice_at_once(db: Database) -> None:
    """A double submit of "reviewed" by one reviewer raises nothing and leaves one Review row."""
    project_id = _add_project(db)
    (pk,) = _add_errors(db, project_id, 1, reviewed_by="bob")

    def mark(session: Session) -> None:
        mark_reviewed(session, example_pks=[pk], reviewer="ann", project_id=project_id)

    outcomes = _at_once(db, "INSERT INTO reviews", mark, mark)

    assert outcomes == [None, None]
    with db.begin() as session:
        reviewers = session.scalars(select(Review.reviewer).order_by(Review.reviewer)).all()
    assert reviewers == ["ann", "bob"]


def test_simultaneous_toggles_of_the_same_tag_raise_nothing(db: Database) -> None:
    """The same reviewer toggling the same tag twice at once raises nothing and never leaves
    two tags (the second toggle either finds nothing new to add or takes the first back)."""
    project_id = _add_project(db)
    (pk,) = _add_errors(db, project_id, 1)
    category_id = _add_category(db, project_id)

    def toggle(session: Session) -> bool:
        return toggle_tag(session, example_pk=pk, category_id=category_id, reviewer="ann")

    outcomes = _at_once(db, "DELETE FROM tags", toggle, toggle)

    assert sorted(outcomes) in ([False, True], [True, True]), outcomes
    assert _tag_count(db) == (1 if all(outcomes) else 0)


def test_simultaneous_bulk_tagging_of_the_same_examples_raises_nothing(db: Database) -> None:
    """Two set_tag calls tagging the same examples at once raise nothing and leave one tag
    per example for the reviewer."""
    project_id = _add_project(db)
    pks = _add_errors(db, project_id, 3)
    category_id = _add_category(db, project_id)

    def tag(session: Session) -> int:
        return set_tag(session, example_pks=pks, category_id=category_id, reviewer="ann")

    outcomes = _at_once(db, "INSERT INTO tags", tag, tag)

    assert all(isinstance(o, int) for o in outcomes), outcomes
    assert _tag_count(db) == 3


# --- helpers ----------------------------------------------------------------------------


def _at_once(db: Database, statement: str, *actions: Callable[[Session], object]) -> list:
    """Run each action in its own thread, engine and transaction; each thread waits for the
    others just before it first sends `statement`. Returns each result or exception."""
    barrier = threading.Barrier(len(actions), timeout=MEET_TIMEOUT)
    outcomes: list = [None] * len(actions)

    def run(index: int, action: Callable[[Session], object]) -> None:
        with _own_database(db) as database, _meeting_before(database, statement, barrier):
            try:
                with database.begin() as session:
                    outcomes[index] = action(session)
            except Exception as exc:  # noqa: BLE001 - the test inspects what each thread got
                outcomes[index] = exc

    threads = [
        threading.Thread(target=run, args=(index, action)) for index, action in enumerate(actions)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=4 * MEET_TIMEOUT)
    assert not any(thread.is_alive() for thread in threads)
    assert not any(isinstance(o, threading.BrokenBarrierError) for o in outcomes), outcomes
    return outcomes


@contextmanager
def _own_database(db: Database) -> Iterator[Database]:
    """A second connection pool on the same database, as another app process would have."""
    database = Database.open(db.engine.url.render_as_string(hide_password=False), migrate=False)
    try:
        yield database
    finally:
        database.dispose()


@contextmanager
def _meeting_before(database: Database, statement: str, barrier: threading.Barrier):
    """Hold this engine's first `statement` until every thread has reached its own."""
    waited = False

    def wait(_conn, _cursor, sql, *_args) -> None:
        nonlocal waited
        if not waited and sql.lstrip().upper().startswith(statement):
            waited = True
            barrier.wait()

    event.listen(database.engine, "before_cursor_execute", wait)
    try:
        yield
    finally:
        event.remove(database.engine, "before_cursor_execute", wait)


def _add_project(db: Database) -> int:
    with db.begin() as session:
        project = Project(name="run1", class_names=["cat", "dog"], images_root="/data")
        session.add(project)
        session.flush()
        session.add(Run(project_id=project.id, name="1"))
        return project.id


def _add_errors(db: Database, project_id: int, n: int, *, reviewed_by: str | None = None):
    with db.begin() as session:
        examples = [
            Example(
                project_id=project_id,
                run_id=session.scalar(select(Run.id).where(Run.project_id == project_id)),
                example_id=f"ex{i}",
                image=f"images/ex{i}.png",
                label="cat",
                prediction="dog",
                split="dev",
                is_error=True,
                shuffle_key=i,
                review_state="reviewed" if reviewed_by else "unreviewed",
            )
            for i in range(n)
        ]
        session.add_all(examples)
        session.flush()
        if reviewed_by:
            session.add_all(Review(example_pk=e.id, reviewer=reviewed_by) for e in examples)
        return [e.id for e in examples]


def _add_category(db: Database, project_id: int) -> int:
    with db.begin() as session:
        return create_category(session, project_id=project_id, name="blurry").id


def _names(db: Database) -> list[str]:
    with db.begin() as session:
        return list(session.scalars(select(Category.name).order_by(Category.id)))


def _keys(db: Database) -> list[str]:
    with db.begin() as session:
        return list(session.scalars(select(Category.shortcut).order_by(Category.id)))


def _tag_count(db: Database) -> int:
    with db.begin() as session:
        return session.scalar(select(func.count()).select_from(Tag))


def test_a_write_the_database_refuses_is_shown_as_an_error_not_a_traceback(
    sqlite_db: Database, monkeypatch
) -> None:
    """A page action whose write the database refuses (here a project name taken meanwhile)
    shows the "someone else changed this" error on screen, with no exception and no row."""
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    from labeltool.config import DB_ENV_VAR

    _add_project(sqlite_db)
    monkeypatch.setenv(DB_ENV_VAR, sqlite_db.engine.url.render_as_string(hide_password=False))
    st.cache_resource.clear()

    def page() -> None:
        import streamlit as st

        from app_pages.common import action, show_flash
        from labeltool.models import Project

        def add_taken_project(session) -> None:
            session.add(Project(name="run1", class_names=["cat"], images_root="/data"))
            session.flush()

        st.button("Add", key="add", on_click=lambda: action(add_taken_project))
        show_flash()

    app = AppTest.from_function(page, default_timeout=30).run()
    app.button(key="add").click().run()
    st.cache_resource.clear()

    assert not app.exception, app.exception
    assert [e.value for e in app.error] == [
        "Nothing was saved: someone else changed this at the same moment (or the database was "
        "busy). Try again."
    ]
    with sqlite_db.begin() as session:
        assert session.scalar(select(func.count()).select_from(Project)) == 1
