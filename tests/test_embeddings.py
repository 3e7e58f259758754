"""Stored embeddings: one float32 vector per example, on both backends."""

from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy import delete

from labeltool import embeddings
from labeltool.db import Database
from labeltool.errors import InvalidInput
from labeltool.importing import import_predictions
from labeltool.models import Example
from labeltool.projects import get_project
from tests.conftest import make_rows


@pytest.fixture
def run_pks(db: Database, write_predictions) -> list[int]:
    path = write_predictions(make_rows(6, errors=3))
    with db.begin() as session:
        import_predictions(session, path, project="p", check_images="none")
        project = get_project(session, "p")
        return sorted(
            session.scalars(
                Example.__table__.select()
                .with_only_columns(Example.id)
                .where(Example.project_id == project.id)
            )
        )


def test_vectors_come_back_as_saved_and_replace_older_ones(
    db: Database, run_pks: list[int]
) -> None:
    rng = np.random.default_rng(0)
    first = rng.normal(size=(len(run_pks), 5)).astype(np.float32)
    second = rng.normal(size=(2, 5)).astype(np.float32)
    with db.begin() as session:
        embeddings.save(session, pks=run_pks, vectors=first, source="pixels")
        embeddings.save(session, pks=run_pks[:2], vectors=second, source="model")
    with db.begin() as session:
        pks, matrix, source = embeddings.load(session, pks=reversed(run_pks))
        run_id = session.get(Example, run_pks[0]).run_id
        assert embeddings.run_source(session, run_id=run_id) == "model"
        assert embeddings.count(session, run_id=run_id, source="pixels") == len(run_pks) - 2
    assert pks.tolist() == run_pks
    assert source == "model"
    np.testing.assert_array_equal(matrix[:2], second)
    np.testing.assert_array_equal(matrix[2:], first[2:])


def test_an_example_deleted_takes_its_vector_along(db: Database, run_pks: list[int]) -> None:
    with db.begin() as session:
        embeddings.save(session, pks=run_pks, vectors=np.ones((len(run_pks), 3)), source="model")
        session.execute(delete(Example).where(Example.id == run_pks[0]))
    with db.begin() as session:
        pks, _, _ = embeddings.load(session, pks=run_pks)
    assert pks.tolist() == run_pks[1:]


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_vectors_are_refused(db: Database, run_pks: list[int], bad: float) -> None:
    vectors = np.ones((len(run_pks), 3))
    vectors[1, 2] = bad
    with db.begin() as session, pytest.raises(InvalidInput, match="finite"):
        embeddings.save(session, pks=run_pks, vectors=vectors, source="model")
