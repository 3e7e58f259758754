"""Importing predictions: good CSV and Parquet files land with the right numbers, re-imports are
idempotent, and every kind of bad file is refused with its file, row and column named while the
database stays exactly as it was."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from PIL import Image
from sqlalchemy import select

from labeltool.db import Database
from labeltool.errors import InvalidInput, UnsafePath
from labeltool.importing import ImportSummary, import_predictions, shuffle_key
from labeltool.models import Category, Example, Project, ReviewState, Tag
from labeltool.storage import safe_image_path
from tests.conftest import make_rows, table_contents

PROJECT = "run1"


def import_file(db: Database, path: Path, *, project: str = PROJECT, **options) -> ImportSummary:
    """Import `path` in one transaction, as the CLI and the import page do."""
    with db.begin() as session:
        return import_predictions(session, path, project=project, **options)


def examples_by_id(db: Database, project: str = PROJECT) -> dict[str, Example]:
    with db.begin() as session:
        rows = session.scalars(
            select(Example).join(Project).where(Project.name == project).order_by(Example.id)
        )
        return {example.example_id: example for example in rows}


def get_project(db: Database, project: str = PROJECT) -> Project:
    with db.begin() as session:
        return session.scalars(select(Project).where(Project.name == project)).one()


# --- good files ---------------------------------------------------------------------------


def test_csv_import_stores_every_example_and_the_dev_error(db: Database, write_predictions) -> None:
    """A good CSV imports every row, counts the misclassified ones and gives the dev error."""
    path = write_predictions(make_rows(10, errors=3))

    summary = import_file(db, path)

    assert (summary.rows, summary.inserted, summary.updated, summary.unchanged) == (10, 10, 0, 0)
    assert (summary.dev_examples, summary.misclassified) == (10, 3)
    assert summary.dev_error == pytest.approx(0.3)
    assert "10 rows read" in str(summary) and "dev error 30.0%" in str(summary)
    examples = examples_by_id(db)
    assert len(examples) == 10
    assert sorted(e.example_id for e in examples.values() if e.is_error) == [
        "ex0000",
        "ex0001",
        "ex0002",
    ]
    first = examples["ex0000"]
    assert (first.image, first.label, first.prediction) == ("images/ex0000.png", "cat", "dog")
    assert first.confidence == pytest.approx(0.5)
    assert first.split == "dev"
    assert first.review_state == ReviewState.UNREVIEWED.value
    project = get_project(db)
    assert project.images_root == str(path.parent.resolve())
    assert project.class_names == ["cat", "dog", "fox"]


def test_parquet_import_matches_csv_and_takes_class_order_from_prob_columns(
    db: Database, write_predictions
) -> None:
    """A Parquet file imports like a CSV; its prob_ columns give the classes in model order."""
    csv_path = write_predictions(make_rows(4, errors=2))  # writes the images too
    frame = pd.DataFrame(
        {
            "example_id": ["007", "010", "ex0002", "ex0003"],
            "image": [f"images/ex000{i}.png" for i in range(4)],
            "label": ["cat", "dog", "fox", "cat"],
            "prediction": ["dog", "dog", "cat", "cat"],
            "prob_fox": [0.1, 0.1, 0.6, 0.0],
            "prob_cat": [0.2, 0.1, 0.3, 0.9],
            "prob_dog": [0.7, 0.8, 0.1, 0.1],
        }
    )
    path = csv_path.with_name("predictions.parquet")
    frame.to_parquet(path)

    summary = import_file(db, path)

    assert (summary.rows, summary.dev_examples, summary.misclassified) == (4, 4, 2)
    assert get_project(db).class_names == ["fox", "cat", "dog"]
    examples = examples_by_id(db)
    assert sorted(examples) == ["007", "010", "ex0002", "ex0003"]
    assert examples["007"].probabilities == pytest.approx({"fox": 0.1, "cat": 0.2, "dog": 0.7})
    assert examples["007"].confidence == pytest.approx(0.7)


def test_class_names_come_from_the_classes_option_in_the_given_order(
    db: Database, write_predictions
) -> None:
    """An explicit class list is kept in its order, classes never seen in the file included."""
    path = write_predictions(make_rows(3, errors=1))

    summary = import_file(db, path, class_names=["fox", "owl", "dog", "cat"])

    assert summary.class_names == ["fox", "owl", "dog", "cat"]
    assert get_project(db).class_names == ["fox", "owl", "dog", "cat"]


def test_class_names_from_labels_seen_sort_naturally_and_grow_on_reimport(
    db: Database, write_predictions
) -> None:
    """Without prob_ columns or a list, classes are the labels seen ("2" before "10"), and a
    re-import with a new label appends it after the known ones."""
    rows = [
        {"example_id": "a", "image": "a.png", "label": "10", "prediction": "2"},
        {"example_id": "b", "image": "b.png", "label": "1", "prediction": "1"},
    ]
    import_file(db, write_predictions(rows))
    assert get_project(db).class_names == ["1", "2", "10"]

    rows.append({"example_id": "c", "image": "c.png", "label": "0", "prediction": "0"})
    import_file(db, write_predictions(rows), allow_different_examples=True)
    assert get_project(db).class_names == ["1", "2", "10", "0"]


def test_example_ids_keep_leading_zeros(db: Database, write_predictions) -> None:
    """Example ids are text: "007" stays "007" and is not confused with "7"."""
    rows = [
        {"example_id": "007", "image": "a.png", "label": "cat", "prediction": "dog"},
        {"example_id": "7", "image": "b.png", "label": "cat", "prediction": "cat"},
        {"example_id": "0.50", "image": "c.png", "label": "cat", "prediction": "cat"},
    ]

    import_file(db, write_predictions(rows))

    assert sorted(examples_by_id(db)) == ["0.50", "007", "7"]


def test_confidence_falls_back_to_the_predicted_class_probability(
    db: Database, write_predictions
) -> None:
    """A missing or empty confidence is the prob_ of the predicted class; a given one is kept."""
    base = {"label": "cat", "prob_cat": "0.25", "prob_dog": "0.75"}
    rows = [
        {**base, "example_id": "given", "image": "a.png", "prediction": "dog", "confidence": "0.6"},
        {**base, "example_id": "empty", "image": "b.png", "prediction": "dog", "confidence": ""},
        {**base, "example_id": "as-cat", "image": "c.png", "prediction": "cat", "confidence": ""},
    ]

    import_file(db, write_predictions(rows))

    examples = examples_by_id(db)
    assert examples["given"].confidence == pytest.approx(0.6)
    assert examples["empty"].confidence == pytest.approx(0.75)
    assert examples["as-cat"].confidence == pytest.approx(0.25)
    assert examples["given"].probabilities == pytest.approx({"cat": 0.25, "dog": 0.75})


def test_confidence_without_a_column_or_probabilities_is_empty(
    db: Database, write_predictions
) -> None:
    """With neither a confidence column nor prob_ columns, confidence is left empty."""
    rows = [{"example_id": "a", "image": "a.png", "label": "cat", "prediction": "dog"}]

    import_file(db, write_predictions(rows))

    example = examples_by_id(db)["a"]
    assert example.confidence is None
    assert example.probabilities is None


def test_split_column_is_stored_and_only_dev_counts_towards_dev_error(
    db: Database, write_predictions
) -> None:
    """Rows keep their split (empty means dev); the dev error counts dev examples only."""
    splits = ["dev", "dev", "", "train", "train", "train-dev", "test", "test"]
    errors = [True, False, False, True, True, True, True, False]
    rows = [
        {
            "example_id": f"e{i}",
            "image": f"e{i}.png",
            "label": "cat",
            "prediction": "dog" if wrong else "cat",
            "split": split,
        }
        for i, (split, wrong) in enumerate(zip(splits, errors, strict=True))
    ]

    summary = import_file(db, write_predictions(rows))

    assert (summary.rows, summary.dev_examples, summary.misclassified) == (8, 3, 1)
    stored = {e.example_id: e.split for e in examples_by_id(db).values()}
    assert stored == {
        "e0": "dev",
        "e1": "dev",
        "e2": "dev",
        "e3": "train",
        "e4": "train",
        "e5": "train-dev",
        "e6": "test",
        "e7": "test",
    }


def test_importing_the_same_file_twice_changes_nothing(db: Database, write_predictions) -> None:
    """A second import of the same file reports every row unchanged and changes no row."""
    path = write_predictions(make_rows(6, errors=2))
    import_file(db, path)
    before = table_contents(db)

    summary = import_file(db, path)

    assert (summary.inserted, summary.updated, summary.unchanged) == (0, 0, 6)
    assert table_contents(db) == before


def test_changed_prediction_updates_the_example_and_keeps_its_tags(
    db: Database, write_predictions
) -> None:
    """Re-importing with changed predictions updates those examples in place (flipping is_error)
    and keeps their tags and comment."""
    rows = make_rows(4, errors=1)
    import_file(db, write_predictions(rows))
    with db.begin() as session:
        project = session.scalars(select(Project)).one()
        example = session.scalars(select(Example).where(Example.example_id == "ex0000")).one()
        example.comment = "blurry, and the dog is tiny"
        category = Category(project_id=project.id, name="blurry")
        session.add(category)
        session.flush()
        session.add(Tag(example_pk=example.id, category_id=category.id, reviewer="ann"))
    before = examples_by_id(db)

    rows[0]["prediction"] = rows[0]["label"]  # the error is fixed
    rows[3]["prediction"] = "fox" if rows[3]["label"] != "fox" else "cat"  # a new error
    summary = import_file(db, write_predictions(rows))

    assert (summary.inserted, summary.updated, summary.unchanged) == (0, 2, 2)
    assert (summary.dev_examples, summary.misclassified) == (4, 1)
    after = examples_by_id(db)
    assert {k: e.id for k, e in after.items()} == {k: e.id for k, e in before.items()}
    assert (after["ex0000"].prediction, after["ex0000"].is_error) == ("cat", False)
    assert after["ex0003"].is_error is True
    assert after["ex0000"].comment == "blurry, and the dog is tiny"
    assert after["ex0000"].shuffle_key == before["ex0000"].shuffle_key
    with db.begin() as session:
        tags = session.execute(select(Tag.example_pk, Tag.reviewer)).all()
    assert tags == [(before["ex0000"].id, "ann")]


def test_hostile_spreadsheet_cells_are_stored_verbatim(db: Database, write_predictions) -> None:
    """Formula-like cells are kept as plain text on import (export is what neutralises them)."""
    hostile = ['=HYPERLINK("http://evil.example","click")', "@SUM(1+1)", "+1-1", "-2+3"]
    rows = [
        {"example_id": cell, "image": f"img{i}.png", "label": "cat", "prediction": "dog"}
        for i, cell in enumerate(hostile)
    ]

    import_file(db, write_predictions(rows))

    assert sorted(examples_by_id(db)) == sorted(hostile)


def test_missing_image_is_imported_when_image_checks_are_off(
    db: Database, write_predictions
) -> None:
    """With check_images=False a row whose image file does not exist is imported anyway."""
    rows = [{"example_id": "a", "image": "images/gone.png", "label": "cat", "prediction": "dog"}]
    path = write_predictions(rows, images=False)

    with pytest.raises(InvalidInput, match="image file not found"):
        import_file(db, path)
    summary = import_file(db, path, check_images=False)

    assert summary.inserted == 1
    assert examples_by_id(db)["a"].image == "images/gone.png"


def test_images_root_other_than_the_file_folder(
    db: Database, write_predictions, tmp_path: Path
) -> None:
    """Image paths are resolved against images_root when one is given."""
    root = tmp_path / "elsewhere"
    (root / "pics").mkdir(parents=True)
    Image.new("L", (4, 4)).save(root / "pics" / "a.png")
    rows = [{"example_id": "a", "image": "pics/a.png", "label": "cat", "prediction": "dog"}]
    path = write_predictions(rows, images=False)

    import_file(db, path, images_root=root)

    assert get_project(db).images_root == str(root.resolve())


# --- bad files ----------------------------------------------------------------------------

HEADER = "example_id,image,label,prediction,confidence"
OK_2 = "ex0000,images/ex0000.png,cat,dog,0.9"
OK_3 = "ex0001,images/ex0001.png,dog,fox,0.8"
PROB_HEADER = "example_id,image,label,prediction,prob_cat,prob_dog,prob_fox"


def lines(*rows: str, header: str = HEADER) -> bytes:
    return "\n".join([header, *rows, ""]).encode()


BAD_FILES = [
    # (file bytes, spreadsheet row, column, error class, words in the message)
    pytest.param(
        lines("ex0000,images/ex0000.png,dog", header="example_id,image,prediction"),
        1,
        "label",
        InvalidInput,
        "required column is missing",
        id="missing required column",
    ),
    pytest.param(
        lines(OK_2 + ",dog", OK_3 + ",fox", header=HEADER + ",label"),
        1,
        "label",
        InvalidInput,
        "more than once",
        id="repeated column",
    ),
    pytest.param(
        lines(OK_2, "ex0001,images/ex0001.png,,fox,0.8"),
        3,
        "label",
        InvalidInput,
        "is empty",
        id="empty cell",
    ),
    pytest.param(
        lines(OK_2, OK_3, "ex0002,   ,fox,cat,0.7"),
        4,
        "image",
        InvalidInput,
        "is empty",
        id="blank cell",
    ),
    pytest.param(
        lines(OK_2, "ex0001,images/ex0001.png,dog"),
        3,
        "prediction",
        InvalidInput,
        "is empty",
        id="too few fields",
    ),
    pytest.param(
        lines(OK_2, OK_3, "ex0000,images/ex0002.png,fox,cat,0.7"),
        4,
        "example_id",
        InvalidInput,
        "'ex0000' appears twice",
        id="duplicate example_id",
    ),
    pytest.param(
        lines(
            "ex0000,images/ex0000.png,cat,dog,0.2,0.7,0.1",
            "ex0001,images/ex0001.png,wolf,dog,0.2,0.7,0.1",
            header=PROB_HEADER,
        ),
        3,
        "label",
        InvalidInput,
        "unknown label 'wolf'",
        id="unknown label with prob columns",
    ),
    pytest.param(
        lines(
            "ex0000,images/ex0000.png,cat,dog,0.2,0.7,0.1",
            "ex0001,images/ex0001.png,cat,wolf,0.2,0.7,0.1",
            header=PROB_HEADER,
        ),
        3,
        "prediction",
        InvalidInput,
        "unknown label 'wolf'",
        id="unknown prediction with prob columns",
    ),
    pytest.param(
        lines(
            "ex0000,images/ex0000.png,cat,dog,0.2,0.7,0.1",
            "ex0001,images/ex0001.png,cat,dog,1.2,0.7,0.1",
            header=PROB_HEADER,
        ),
        3,
        "prob_cat",
        InvalidInput,
        "not a probability",
        id="probability above 1",
    ),
    pytest.param(
        lines(OK_2, "", "ex0001,images/ex0001.png,,fox,0.5"),
        4,
        "label",
        InvalidInput,
        "is empty",
        id="row after a blank line keeps its line number",
    ),
    pytest.param(
        lines(OK_2, "ex0001,images/ex0001.png,dog,fox,high"),
        3,
        "confidence",
        InvalidInput,
        "'high' is not a probability",
        id="confidence not a number",
    ),
    pytest.param(
        lines(OK_2, "ex0001,images/ex0001.png,dog,fox,1.5"),
        3,
        "confidence",
        InvalidInput,
        "'1.5' is not a probability",
        id="confidence above 1",
    ),
    pytest.param(
        lines(OK_2, "ex0001,images/ex0001.png,dog,fox,-0.1"),
        3,
        "confidence",
        InvalidInput,
        "'-0.1' is not a probability",
        id="confidence below 0",
    ),
    pytest.param(
        lines(OK_2, "ex0001,images/ex0001.png,dog,fox,nan"),
        3,
        "confidence",
        InvalidInput,
        "'nan' is not a probability",
        id="confidence nan",
    ),
    pytest.param(
        lines(
            "ex0000,images/ex0000.png,cat,dog,dev",
            "ex0001,images/ex0001.png,dog,fox,validation",
            header="example_id,image,label,prediction,split",
        ),
        3,
        "split",
        InvalidInput,
        "unknown split 'validation'",
        id="unknown split",
    ),
    pytest.param(
        lines(OK_2, "ex0001,images/nowhere.png,dog,fox,0.8"),
        3,
        "image",
        InvalidInput,
        "image file not found",
        id="missing image file",
    ),
    pytest.param(
        lines(OK_2, "ex0001,../x.png,dog,fox,0.8"),
        3,
        "image",
        UnsafePath,
        "outside the images root",
        id="parent directory",
    ),
    pytest.param(
        lines(OK_2, "ex0001,images/../../x.png,dog,fox,0.8"),
        3,
        "image",
        UnsafePath,
        "outside the images root",
        id="parent directory after a folder",
    ),
    pytest.param(
        lines(OK_2, "ex0001,/etc/passwd,dog,fox,0.8"),
        3,
        "image",
        UnsafePath,
        "absolute path",
        id="absolute posix path",
    ),
    pytest.param(
        lines(OK_2, "ex0001,C:\\x.png,dog,fox,0.8"),
        3,
        "image",
        UnsafePath,
        "absolute path",
        id="windows drive path",
    ),
    pytest.param(
        lines(OK_2, OK_3 + ",surplus"),
        3,
        None,
        InvalidInput,
        "expected 5 fields",
        id="too many fields",
    ),
    pytest.param(
        lines(OK_2 + ",surplus", OK_3),
        2,
        None,
        InvalidInput,
        "more fields than the 5 in the header",
        id="too many fields in the first row",
    ),
    pytest.param(
        lines(OK_2 + ",", OK_3 + ","),
        2,
        None,
        InvalidInput,
        "more fields than the 5 in the header",
        id="trailing comma on every row",
    ),
    pytest.param(
        lines(OK_2, 'ex0001,"images/ex0001.png,dog,fox,0.8', OK_3),
        3,
        None,
        InvalidInput,
        "quoted field is never closed",
        id="unbalanced quotes",
    ),
    pytest.param(
        lines(OK_2) + b"ex0001,images/ex0001.png,caf\xe9,fox,0.8\n",
        3,
        "label",
        InvalidInput,
        "not UTF-8",
        id="latin-1 bytes",
    ),
    pytest.param(b"", None, None, InvalidInput, "empty", id="empty file"),
    pytest.param(b"\n\n", None, None, InvalidInput, "empty", id="blank lines only"),
    pytest.param(lines(), None, None, InvalidInput, "no rows", id="header only"),
]


@pytest.fixture
def project_folder(db: Database, write_predictions) -> Path:
    """Project "run1" imported from a good file; its folder holds images/ex0000.png and up."""
    path = write_predictions(make_rows(6, errors=2))
    import_file(db, path)
    return path.parent


@pytest.mark.parametrize(("content", "row", "column", "error", "words"), BAD_FILES)
def test_bad_file_is_refused_with_its_place_named_and_nothing_written(
    db: Database,
    project_folder: Path,
    content: bytes,
    row: int | None,
    column: str | None,
    error: type[InvalidInput],
    words: str,
) -> None:
    """A bad file raises an error naming file, row and column, and writes nothing at all."""
    path = project_folder / "bad.csv"
    path.write_bytes(content)

    _assert_refused(db, path, error=error, row=row, column=column, words=words)


def test_image_symlink_leading_outside_the_root_is_refused(
    db: Database, project_folder: Path, tmp_path: Path
) -> None:
    """An image that is a symlink inside the root pointing outside it is an UnsafePath."""
    secret = tmp_path / "outside" / "secret.png"
    secret.parent.mkdir()
    Image.new("L", (4, 4)).save(secret)
    (project_folder / "images" / "link.png").symlink_to(secret)
    path = project_folder / "bad.csv"
    path.write_bytes(lines(OK_2, OK_3, "ex0002,images/link.png,fox,cat,0.7"))

    _assert_refused(db, path, error=UnsafePath, row=4, column="image", words="leads outside")


def test_an_image_file_that_is_not_an_image_is_refused(db: Database, project_folder: Path) -> None:
    """A corrupt image (text saved as .png) is refused naming its row, column and path."""
    (project_folder / "images" / "broken.png").write_text("this is not a PNG")
    path = project_folder / "bad.csv"
    path.write_bytes(lines(OK_2, OK_3, "ex0002,images/broken.png,fox,cat,0.7"))

    _assert_refused(
        db,
        path,
        error=InvalidInput,
        row=4,
        column="image",
        words="cannot be read",
        check_images="open",
    )


def test_the_default_check_finds_missing_images_without_opening_any(
    db: Database, project_folder: Path
) -> None:
    """`exists`, the default, only asks whether each image is there: a file that is not an
    image imports (the review screen says so when it is shown), a missing one is refused."""
    (project_folder / "images" / "broken.png").write_text("this is not a PNG")
    path = project_folder / "more.csv"
    path.write_bytes(lines(OK_2, OK_3, "ex0002,images/broken.png,fox,cat,0.7"))
    with db.begin() as session:
        import_predictions(session, path, project="default-check")

    path.write_bytes(lines(OK_2, OK_3, "ex0002,images/gone.png,fox,cat,0.7"))
    with db.begin() as session, pytest.raises(InvalidInput, match="image file not found"):
        import_predictions(session, path, project="default-check-2")


def test_bad_file_under_a_new_project_name_creates_no_project(
    db: Database, project_folder: Path
) -> None:
    """A refused file does not leave an empty project behind."""
    path = project_folder / "bad.csv"
    path.write_bytes(lines(OK_2, "ex0001,images/ex0001.png,dog,fox,high"))
    with db.begin() as session, pytest.raises(InvalidInput):
        import_predictions(session, path, project="brand-new")

    with db.begin() as session:
        assert session.scalars(select(Project.name)).all() == [PROJECT]


def test_error_counts_the_other_rows_with_the_same_problem(
    db: Database, project_folder: Path
) -> None:
    """The message names the first bad row and says how many more rows share the problem."""
    path = project_folder / "bad.csv"
    path.write_bytes(
        lines(
            "ex0000,images/ex0000.png,cat,dog,high",
            "ex0001,images/ex0001.png,dog,fox,0.5",
            "ex0002,images/ex0002.png,dog,fox,low",
            "ex0003,images/ex0003.png,dog,fox,2",
        )
    )

    with pytest.raises(InvalidInput) as caught:
        import_file(db, path)

    assert caught.value.row == 2
    assert str(caught.value).endswith("(and 2 more rows like it)")


def test_missing_predictions_file_is_refused(db: Database, tmp_path: Path) -> None:
    """A path with no file behind it is an InvalidInput naming the path."""
    path = tmp_path / "nope.csv"

    with pytest.raises(InvalidInput, match="nope.csv.*file not found"):
        import_file(db, path)


# --- safe_image_path and shuffle_key --------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("a.png", "a.png"),
        ("images/a.png", "images/a.png"),
        ("images\\cats\\a.png", "images/cats/a.png"),
        ("./images/a.png", "images/a.png"),
        ("images//a.png", "images/a.png"),
        ("images/tmp/../a.png", "images/a.png"),
        ("  images/a.png  ", "images/a.png"),
        ("..a.png", "..a.png"),
    ],
)
def test_safe_image_path_normalises_relative_paths(given: str, stored: str) -> None:
    """Relative paths inside the root come back normalised with forward slashes."""
    assert safe_image_path(given) == stored


@pytest.mark.parametrize(
    ("given", "reason"),
    [
        ("../x.png", "outside"),
        ("images/../../x.png", "outside"),
        ("..\\x.png", "outside"),
        ("/etc/passwd", "absolute"),
        ("C:\\x.png", "absolute"),
        ("c:x.png", "absolute"),
        ("\\\\server\\share\\x.png", "absolute"),
        ("", "empty"),
        ("   ", "empty"),
        ("a\x00.png", "NUL"),
    ],
)
def test_safe_image_path_refuses_paths_that_escape_the_root(given: str, reason: str) -> None:
    """Absolute, drive, UNC, parent-escaping, empty and NUL paths are refused."""
    with pytest.raises(ValueError, match=reason):
        safe_image_path(given)


def test_shuffle_key_is_stable_across_processes() -> None:
    """The key depends only on the id (not on per-process hash seeds), so the order never moves."""
    assert shuffle_key("ex0001") == shuffle_key("ex0001")
    assert shuffle_key("ex0001") == 2757112604467841000


def test_shuffle_key_differs_per_id_and_fits_a_signed_bigint() -> None:
    """Different ids get different keys, all within PostgreSQL's BIGINT."""
    keys = [shuffle_key(f"ex{i:05d}") for i in range(5000)]

    assert len(set(keys)) == len(keys)
    assert all(0 <= key < 2**63 for key in keys)
    assert keys != sorted(keys)  # not just the id order


# --- helpers ----------------------------------------------------------------------------


def _assert_refused(
    db: Database,
    path: Path,
    *,
    error: type[InvalidInput],
    row: int | None,
    column: str | None,
    words: str,
    **options,
) -> None:
    """Importing `path` raises `error` at row/column, and commits nothing even if the caller
    swallows the error and commits its transaction."""
    before = table_contents(db)
    assert before["examples"], "a good file should have been imported first"

    with db.begin() as session, pytest.raises(error) as caught:
        import_predictions(session, path, project=PROJECT, **options)

    message = str(caught.value)
    where = ", ".join(
        part
        for part in (
            path.name,
            f"row {row}" if row is not None else "",
            f"column '{column}'" if column is not None else "",
        )
        if part
    )
    assert message.startswith(f"{where}: "), message
    assert words in message
    assert (caught.value.row, caught.value.column) == (row, column)
    assert "\n" not in message
    assert table_contents(db) == before
