"""Stored embeddings: one float32 vector per example, on both backends."""

from __future__ import annotations

import numpy as np
import pandas as pd
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


# --- embeddings that come in with a predictions file -----------------------------------


def _with_vectors(rows: list[dict], vectors: np.ndarray) -> list[dict]:
    """`rows` with emb_0..emb_k columns holding `vectors` (6 significant digits, as written
    by `labeltool predict`)."""
    return [
        {**row, **{f"emb_{j}": f"{v:.6g}" for j, v in enumerate(vector)}}
        for row, vector in zip(rows, vectors, strict=True)
    ]


def _stored(session, project: str = "p", run: str | None = None) -> dict[str, np.ndarray]:
    """example_id -> stored vector, for the project's run."""
    from labeltool.runs import get_run

    run_id = get_run(session, project_id=get_project(session, project).id, name=run).id
    ids = dict(
        session.execute(
            Example.__table__.select()
            .with_only_columns(Example.id, Example.example_id)
            .where(Example.run_id == run_id)
        ).all()
    )
    pks, matrix, _ = embeddings.load(session, pks=ids)
    return {ids[int(pk)]: row for pk, row in zip(pks, matrix, strict=True)}


@pytest.mark.parametrize("chunk_rows", [2, 100])
def test_emb_columns_are_stored_as_the_models_vectors(
    db: Database, write_predictions, chunk_rows: int
) -> None:
    """A predictions file's emb_ columns become each example's "model" vector, in column
    order, however the file is chunked."""
    vectors = np.random.default_rng(1).normal(size=(5, 3)).astype(np.float32)
    rows = _with_vectors(make_rows(5, errors=2), vectors)
    # Columns in any order: the vector follows the numbers in their names.
    rows = [{k: row[k] for k in sorted(row, reverse=True)} for row in rows]
    path = write_predictions(rows)
    with db.begin() as session:
        summary = import_predictions(
            session, path, project="p", check_images="none", chunk_rows=chunk_rows
        )
    with db.begin() as session:
        stored = _stored(session)
    assert summary.embeddings == 5
    assert "embeddings for 5 of 5 examples" in str(summary)
    np.testing.assert_allclose(
        np.vstack([stored[f"ex{i:04d}"] for i in range(5)]), vectors, rtol=1e-5
    )


def test_a_reimport_replaces_the_vectors(db: Database, write_predictions) -> None:
    """Importing the file again with new emb_ values leaves only the new vectors."""
    rows = make_rows(4, errors=1)
    write_predictions(_with_vectors(rows, np.zeros((4, 2))))
    with db.begin() as session:
        import_predictions(
            session, write_predictions(_with_vectors(rows, np.zeros((4, 2)))), project="p"
        )
    path = write_predictions(_with_vectors(rows, np.full((4, 2), 0.5)))
    with db.begin() as session:
        import_predictions(session, path, project="p")
    with db.begin() as session:
        stored = _stored(session)
    assert np.vstack(list(stored.values())).tolist() == [[0.5, 0.5]] * 4


def test_a_file_without_emb_columns_keeps_no_vectors(db: Database, write_predictions) -> None:
    """Without emb_ columns nothing is stored, and the summary says nothing of embeddings."""
    with db.begin() as session:
        summary = import_predictions(
            session, write_predictions(make_rows(3, errors=1)), project="p"
        )
        assert _stored(session) == {}
    assert summary.embeddings == 0
    assert "embeddings" not in str(summary)


@pytest.mark.parametrize(
    ("columns", "column", "words"),
    [
        (["emb_0", "emb_2"], "emb_1", "without a gap"),
        (["emb_1", "emb_2"], "emb_0", "without a gap"),
        (["emb_0", "emb_01"], "emb_01", "position from 0"),
        (["emb_0", "emb_x"], "emb_x", "position from 0"),
    ],
)
def test_emb_columns_must_run_from_emb_0_without_a_gap(
    db: Database, write_predictions, columns: list[str], column: str, words: str
) -> None:
    """A gap, a missing emb_0 or a name that is not emb_<position> is refused naming the
    file and the column, and nothing is imported."""
    rows = [{**row, **dict.fromkeys(columns, "0.5")} for row in make_rows(3, errors=1)]
    path = write_predictions(rows)
    with db.begin() as session, pytest.raises(InvalidInput, match=words) as caught:
        import_predictions(session, path, project="p")
    assert caught.value.file == "predictions.csv"
    assert caught.value.column == column
    with db.begin() as session:
        assert session.query(Example).count() == 0


def test_more_columns_than_kept_are_refused(db: Database, write_predictions) -> None:
    """A vector wider than MAX_DIMENSIONS is refused from the header."""
    width = embeddings.MAX_DIMENSIONS + 1
    rows = _with_vectors(make_rows(2, errors=1), np.zeros((2, width)))
    with db.begin() as session, pytest.raises(InvalidInput, match="at most 4,096"):
        import_predictions(session, write_predictions(rows), project="p")


@pytest.mark.parametrize(
    ("cell", "words"),
    [("abc", "'abc' is not a finite number"), ("inf", "not a finite number"), ("", "is empty")],
)
def test_a_bad_embedding_cell_is_refused_naming_row_and_column(
    db: Database, write_predictions, cell: str, words: str
) -> None:
    """A cell that is not a finite number is refused naming its file, row and column, with
    how many more rows share the problem; nothing is imported."""
    rows = _with_vectors(make_rows(5, errors=1), np.ones((5, 3)))
    rows[2]["emb_1"] = cell
    rows[4]["emb_1"] = cell
    with db.begin() as session, pytest.raises(InvalidInput, match=words) as caught:
        import_predictions(
            session, write_predictions(rows), project="p", check_images="none", chunk_rows=2
        )
    assert (caught.value.file, caught.value.row, caught.value.column) == (
        "predictions.csv",
        4,
        "emb_1",
    )
    assert caught.value.more == 1
    with db.begin() as session:
        assert session.query(Example).count() == 0


def test_blanks_around_a_number_are_read(db: Database, write_predictions) -> None:
    """' 1.5' (a spreadsheet's padding) is read as 1.5, as in the other number columns."""
    rows = _with_vectors(make_rows(2, errors=1), np.ones((2, 2)))
    rows[1]["emb_0"] = " 1.5 "
    with db.begin() as session:
        import_predictions(session, write_predictions(rows), project="p")
        assert _stored(session)["ex0001"].tolist() == [1.5, 1.0]


def test_a_parquet_predictions_file_brings_its_vectors(db: Database, tmp_path) -> None:
    """emb_ float columns of a Parquet predictions file are read like the CSV's."""
    frame = pd.DataFrame(make_rows(3, errors=1))
    vectors = np.arange(6, dtype=np.float32).reshape(3, 2) / 7
    for j in range(2):
        frame[f"emb_{j}"] = vectors[:, j]
    path = tmp_path / "predictions.parquet"
    frame.to_parquet(path)
    with db.begin() as session:
        import_predictions(session, path, project="p", check_images="none")
        stored = _stored(session)
    np.testing.assert_array_equal(np.vstack([stored[f"ex{i:04d}"] for i in range(3)]), vectors)


# --- side files ------------------------------------------------------------------------


def _side_file(tmp_path, kind: str, ids: list[str], vectors: np.ndarray):
    path = tmp_path / f"embeddings.{kind}"
    if kind == "npz":
        np.savez(path, example_id=np.array(ids), embeddings=vectors)
    elif kind == "npy":
        np.save(path, vectors)
    else:
        frame = pd.DataFrame({"example_id": ids})
        for j in range(vectors.shape[1]):
            frame[f"emb_{j}"] = vectors[:, j]
        if kind == "parquet":
            frame.to_parquet(path)
        else:
            frame.to_csv(path, index=False)
    return path


@pytest.mark.parametrize("kind", ["parquet", "csv", "npz", "npy"])
def test_a_side_file_brings_the_vectors_with_the_import(
    db: Database, write_predictions, tmp_path, kind: str
) -> None:
    """import_predictions(embeddings_file=...) stores a side file's vectors in the same
    transaction; a .npy's rows follow the predictions file's."""
    path = write_predictions(make_rows(4, errors=1))
    ids = [f"ex{i:04d}" for i in range(4)]
    vectors = np.random.default_rng(2).normal(size=(4, 3)).astype(np.float32)
    side = _side_file(tmp_path, kind, ids, vectors)
    with db.begin() as session:
        summary = import_predictions(
            session, path, project="p", check_images="none", embeddings_file=side
        )
        stored = _stored(session)
    assert str(summary).endswith(f"; embeddings for 4 of 4 examples (from embeddings.{kind})")
    np.testing.assert_allclose(np.vstack([stored[i] for i in ids]), vectors, rtol=1e-6)


def test_a_side_file_may_leave_examples_out_and_says_so(
    db: Database, run_pks: list[int], tmp_path
) -> None:
    """Examples the side file lacks get no vector; the summary counts them against the run."""
    side = _side_file(tmp_path, "csv", ["ex0005", "ex0000"], np.ones((2, 4)))
    with db.begin() as session:
        run_id = session.get(Example, run_pks[0]).run_id
        summary = embeddings.import_file(session, side, run_id=run_id)
        assert embeddings.count(session, run_id=run_id, source="model") == 2
    assert str(summary) == "embeddings.csv: embeddings for 2 of 6 examples (4 dimensions)"


@pytest.mark.parametrize(
    ("kind", "ids", "words", "row"),
    [
        ("csv", ["ex0000", "nope", "ex0002"], "'nope' is not an example of the run", 3),
        ("parquet", ["ex0000", "ex0001", "ex0000"], "given twice (first in row 2)", 4),
        ("npz", ["ex0000", "ex0001", "nope"], "example_id[2]: example_id 'nope' is not", None),
    ],
    ids=["unknown", "duplicate", "unknown-npz"],
)
def test_unknown_or_repeated_ids_refuse_the_whole_file(
    db: Database, run_pks: list[int], tmp_path, kind: str, ids: list[str], words: str, row
) -> None:
    """An id the run lacks, or one given twice, is refused naming file and row (a table's
    spreadsheet row, an array's index); no vector of the file is kept."""
    side = _side_file(tmp_path, kind, ids, np.ones((3, 2)))
    with db.begin() as session, pytest.raises(InvalidInput) as caught:
        embeddings.import_file(session, side, run_id=session.get(Example, run_pks[0]).run_id)
    assert caught.value.file == side.name
    assert words in str(caught.value)
    assert caught.value.row == row
    with db.begin() as session:
        assert embeddings.load(session, pks=run_pks)[0].size == 0


def test_a_failing_side_file_rolls_the_import_back(db: Database, write_predictions, tmp_path):
    """All or nothing: a bad side file leaves no example of the predictions file behind."""
    path = write_predictions(make_rows(3, errors=1))
    side = _side_file(tmp_path, "csv", ["ex0000", "ex9999"], np.ones((2, 2)))
    with db.begin() as session, pytest.raises(InvalidInput, match="not an example of the run"):
        import_predictions(session, path, project="p", embeddings_file=side)
    with db.begin() as session:
        assert session.query(Example).count() == 0


def test_columns_and_a_side_file_together_are_refused(
    db: Database, write_predictions, tmp_path
) -> None:
    """Two sources of the same vectors is a mistake, said before anything is read."""
    path = write_predictions(_with_vectors(make_rows(2, errors=1), np.ones((2, 2))))
    side = _side_file(tmp_path, "csv", ["ex0000"], np.ones((1, 2)))
    with db.begin() as session, pytest.raises(InvalidInput, match="give them one way"):
        import_predictions(session, path, project="p", embeddings_file=side)


def test_an_object_array_is_refused_without_unpickling(
    db: Database, run_pks: list[int], tmp_path
) -> None:
    """A .npz whose arrays hold Python objects is refused from its header: nothing in it is
    unpickled."""
    side = tmp_path / "embeddings.npz"
    np.savez(
        side,
        example_id=np.array(["ex0000"], dtype=object),
        embeddings=np.ones((1, 2)),
        allow_pickle=True,
    )
    with db.begin() as session, pytest.raises(InvalidInput, match="never unpickles"):
        embeddings.import_file(session, side, run_id=session.get(Example, run_pks[0]).run_id)


def test_a_npz_claiming_more_rows_than_the_run_is_refused_before_reading(
    db: Database, run_pks: list[int], tmp_path
) -> None:
    """A .npz's declared shape is checked before its data is read: a file cannot ask for
    more memory than the run's examples need."""
    side = _side_file(tmp_path, "npz", [f"x{i}" for i in range(7)], np.ones((7, 2)))
    with db.begin() as session, pytest.raises(InvalidInput, match="7 embeddings for a run of 6"):
        embeddings.import_file(session, side, run_id=session.get(Example, run_pks[0]).run_id)


def test_a_npy_needs_the_predictions_file(db: Database, run_pks: list[int], tmp_path) -> None:
    """A .npy has no ids: alone it is refused, saying how to use it."""
    side = _side_file(tmp_path, "npy", [], np.ones((6, 2)))
    with db.begin() as session, pytest.raises(InvalidInput, match="labeltool import --embeddings"):
        embeddings.import_file(session, side, run_id=session.get(Example, run_pks[0]).run_id)


def test_a_npy_with_a_different_row_count_is_refused(
    db: Database, write_predictions, tmp_path
) -> None:
    """A .npy must have one row per row of the predictions file."""
    path = write_predictions(make_rows(3, errors=1))
    side = _side_file(tmp_path, "npy", [], np.ones((2, 2)))
    with db.begin() as session, pytest.raises(InvalidInput, match="2 rows of embeddings"):
        import_predictions(session, path, project="p", embeddings_file=side)


def test_a_side_file_with_nan_is_refused_naming_the_row(
    db: Database, run_pks: list[int], tmp_path
) -> None:
    """NaN in a side file's vector is refused naming its row."""
    vectors = np.ones((2, 2))
    vectors[1, 0] = np.nan
    side = _side_file(tmp_path, "parquet", ["ex0000", "ex0001"], vectors)
    with db.begin() as session, pytest.raises(InvalidInput) as caught:
        embeddings.import_file(session, side, run_id=session.get(Example, run_pks[0]).run_id)
    assert (caught.value.row, caught.value.column) == (3, "emb_0")
