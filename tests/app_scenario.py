"""The project the page tests open in the app, built by one factory; each page's test module
makes its `project` fixture a one-line variant of it. Loaded by tests/conftest.py as a plugin,
so `fresh_streamlit_caches` is a fixture every test may use.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import streamlit as st
from sqlalchemy import select

from labeltool import labeling, review_queue
from labeltool.categories import create_category
from labeltool.config import DB_ENV_VAR
from labeltool.db import Database
from labeltool.importing import import_predictions
from labeltool.models import Example, Project, Review, Tag
from labeltool.review_queue import QueueFilter
from tests.conftest import make_rows


@dataclass
class AppProject:
    """The project the app opens: its database, id and two categories, and what tests ask of
    it afterwards."""

    db: Database
    id: int
    blurry: int
    mislabeled: int

    def queue(self, queue: QueueFilter | None = None) -> list[int]:
        with self.db.begin() as session:
            return review_queue.queue_ids(
                session, project_id=self.id, queue=queue or QueueFilter(), limit=1000
            )

    def example(self, pk: int) -> Example:
        with self.db.begin() as session:
            return session.get(Example, pk)

    def example_id(self, pk: int) -> str:
        return self.example(pk).example_id

    def tags(self) -> set[tuple[int, int, str]]:
        with self.db.begin() as session:
            rows = session.execute(select(Tag.example_pk, Tag.category_id, Tag.reviewer))
            return {tuple(r) for r in rows}

    def states(self) -> dict[int, str]:
        with self.db.begin() as session:
            return dict(session.execute(select(Example.id, Example.review_state)).all())

    def reviews(self) -> set[tuple[int, str]]:
        with self.db.begin() as session:
            return {tuple(r) for r in session.execute(select(Review.example_pk, Review.reviewer))}

    def mark_reviewed(self, pks: list[int]) -> None:
        with self.db.begin() as session:
            labeling.mark_reviewed(session, example_pks=pks, reviewer="ann")


def open_app_project(
    db: Database,
    write_predictions,
    monkeypatch: pytest.MonkeyPatch,
    *,
    examples: int,
    errors: int,
    blurry: dict | None = None,
    mislabeled: dict | None = None,
) -> AppProject:
    """Project "run1" (`examples` dev examples, the first `errors` misclassified, real PNGs)
    with the categories "blurry" and "incorrectly labeled" (extra create_category fields in
    `blurry` / `mislabeled`), in the database the app opens."""
    path = write_predictions(make_rows(examples, errors=errors))
    with db.begin() as session:
        import_predictions(session, path, project="run1")
        project_id = session.scalar(select(Project.id))
        blurry_id = create_category(
            session, project_id=project_id, name="blurry", **(blurry or {})
        ).id
        mislabeled_id = create_category(
            session, project_id=project_id, name="incorrectly labeled", **(mislabeled or {})
        ).id
    monkeypatch.setenv(DB_ENV_VAR, db.engine.url.render_as_string(hide_password=False))
    return AppProject(db=db, id=project_id, blurry=blurry_id, mislabeled=mislabeled_id)


def large_project(tmp_path: Path, write_predictions, *, examples: int, reviewed: int) -> Database:
    """A SQLite project of `examples` rows (four fifths misclassified, no image files), every
    error tagged "blurry" by bob and the first `reviewed` reviewed: for counting what one rerun
    of a page asks of the database as the project grows."""
    st.cache_resource.clear()
    database = Database.open(f"sqlite:///{tmp_path / f'n{examples}.db'}")
    rows = make_rows(examples, errors=examples * 4 // 5)
    path = write_predictions(rows, name=f"n{examples}.csv", images=False)
    with database.begin() as session:
        import_predictions(session, path, project="run1", check_images=False)
        project_id = session.scalar(select(Project.id))
        blurry = create_category(session, project_id=project_id, name="blurry").id
        pks = review_queue.queue_ids(
            session, project_id=project_id, queue=QueueFilter(), limit=examples
        )
        labeling.set_tag(session, example_pks=pks, category_id=blurry, reviewer="bob")
        if reviewed:
            labeling.mark_reviewed(session, example_pks=pks[:reviewed], reviewer="bob")
    return database


def rerun_cost(at) -> tuple[int, int]:
    """(SQL statements, examples loaded) of one more run of the AppTest `at`."""
    from tests.conftest import loaded_examples, recorded_statements

    with recorded_statements() as seen, loaded_examples() as examples:
        at.run()
    assert not at.exception, at.exception
    return len(seen), len(examples)


@pytest.fixture
def fresh_streamlit_caches() -> Iterator[None]:
    """Each test gets its own cached database and images (the caches are process-wide)."""
    st.cache_resource.clear()
    st.cache_data.clear()
    yield
    st.cache_resource.clear()
    st.cache_data.clear()
