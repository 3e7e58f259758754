"""One set of limits, checked before the database and the same on SQLite and PostgreSQL.

Each hostile file in tests/hostile/ breaks one limit; importing it must be refused with one
line naming the file, row and column, and leave the database exactly as it was.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from labeltool.categories import create_category, load_categories_file, update_category
from labeltool.db import Database
from labeltool.errors import InvalidInput
from labeltool.importing import import_predictions
from labeltool.labeling import set_tag
from labeltool.limits import MAX_CELL, MAX_EXAMPLE_ID, check_name, shown
from labeltool.models import Example, Project
from labeltool.tags_import import import_tags
from tests.conftest import table_contents

HOSTILE = Path(__file__).parent / "hostile"


@pytest.fixture
def digits(db: Database) -> int:
    """Project "digits" (classes 0-9) from hostile/base_predictions.csv, with a "blurry"
    category and one tag; returns its id."""
    with db.begin() as session:
        import_predictions(
            session, HOSTILE / "base_predictions.csv", project="digits", check_images=False
        )
        project_id = session.query(Project.id).filter_by(name="digits").scalar()
        blurry = create_category(session, project_id=project_id, name="blurry")
        ex1 = session.query(Example).filter_by(project_id=project_id, example_id="ex1").one()
        set_tag(session, example_pks=[ex1.id], category_id=blurry.id, reviewer="bob")
    return project_id


def _import(kind: str, session, path: Path, project_id: int, **options):
    if kind == "predictions":
        return import_predictions(session, path, project="digits", check_images=False, **options)
    if kind == "tags":
        return import_tags(session, path, project_id=project_id, **options)
    return load_categories_file(session, path, project_id=project_id)


def _refused(db: Database, kind: str, path: Path, project_id: int, **options) -> InvalidInput:
    """Import `path`, expect InvalidInput, check the database did not change; the error."""
    before = table_contents(db)
    with pytest.raises(InvalidInput) as caught, db.begin() as session:
        _import(kind, session, path, project_id, **options)
    assert table_contents(db) == before
    assert "\n" not in str(caught.value) and "\r" not in str(caught.value)
    return caught.value


HOSTILE_FILES = [
    ("predictions", "pred_nul_in_id.csv", 3, "example_id", "NUL"),
    ("predictions", "pred_long_id.csv", 2, "example_id", "at most 255 characters"),
    ("predictions", "pred_long_label.csv", 3, "label", "at most 255 characters"),
    ("predictions", "pred_tab_in_label.csv", 4, "label", "U+0009 (tab)"),
    ("predictions", "pred_header_nul.csv", 1, "prob_9\\x00", "control character U+0000"),
    ("predictions", "pred_cut_last_row.csv", 5, "prob_4", "stops after 8 of the header's 14"),
    ("predictions", "pred_long_last_row.csv", 5, None, "expected 14 fields"),
    ("predictions", "pred_unnamed_column.csv", 1, None, "column 15 has values but no name"),
    ("predictions", "pred_other_classes.csv", 1, "prob_cat", "--replace-classes"),
    ("predictions", "pred_newline_in_image.csv", 3, "image", "U+000A (line feed)"),
    ("predictions", "pred_nul_in_split.csv", 2, "split", "NUL"),
    ("tags", "tags_cut_reviewer.csv", 3, "reviewer", "stops after 3 of the header's 4"),
    ("tags", "tags_cut_after_comma.csv", 3, "reviewer", "cut short"),
    ("tags", "tags_long_reviewer.csv", 3, "reviewer", "at most 100 characters"),
    ("tags", "tags_control_in_reviewer.csv", 2, "reviewer", "U+000A (line feed)"),
    ("tags", "tags_nul_in_comment.csv", 2, "comment", "NUL"),
    ("tags", "tags_long_category.csv", 1, "c" * 40 + "…", "at most 100 characters"),
    ("tags", "tags_tab_in_category.csv", 1, "blur\\x09ry", "U+0009 (tab)"),
    ("tags", "tags_long_id.csv", 2, "example_id", "at most 255 characters"),
    ("categories", "cats_long_name.csv", 3, "name", "at most 100 characters"),
    ("categories", "cats_nul_name.csv", 3, "name", "NUL"),
    ("categories", "cats_newline_name.csv", 3, "name", "U+000A (line feed)"),
    ("categories", "cats_cr_in_name.csv", 3, "name", "U+000D (carriage return)"),
]


@pytest.mark.parametrize(
    ("kind", "name", "row", "column", "words"),
    HOSTILE_FILES,
    ids=[case[1] for case in HOSTILE_FILES],
)
def test_hostile_file_is_refused_naming_its_place_and_changes_nothing(
    db: Database, digits: int, kind: str, name: str, row: int, column: str | None, words: str
) -> None:
    """Each hostile file is refused with one line naming file, row and column (a NUL, an
    over-long id, label, name or reviewer, a control character, a cut or long last row, an
    unnamed column with values, another class list), and the database is left as it was."""
    error = _refused(db, kind, HOSTILE / name, digits)

    assert (error.file, error.row, error.column) == (name, row, column)
    assert words in str(error)


def test_other_classes_replace_the_project_classes_only_when_asked(
    db: Database, digits: int
) -> None:
    """prob_cat,prob_dog into the digits project is refused by default and replaces the class
    list when replace_classes says it is meant."""
    _refused(db, "predictions", HOSTILE / "pred_other_classes.csv", digits)

    with db.begin() as session:
        summary = _import(
            "predictions",
            session,
            HOSTILE / "pred_other_classes.csv",
            digits,
            replace_classes=True,
            allow_different_examples=True,  # other rows than the project's: not the point here
        )
        assert session.get(Project, digits).class_names == ["cat", "dog"]
    assert summary.class_names == ["cat", "dog"]


def test_new_classes_after_the_project_own_are_still_added(
    db: Database, digits: int, tmp_path: Path
) -> None:
    """A file whose prob_ columns are the project's classes plus new ones at the end extends
    the class list without being asked: nothing the project had changes."""
    header = "example_id,image,label,prediction," + ",".join(f"prob_{d}" for d in range(11))
    path = tmp_path / "more.csv"
    path.write_text(f"{header}\nex9,images/ex9.png,10,3,{'0.0,' * 10}1.0\n", encoding="utf-8")

    with db.begin() as session:
        summary = _import("predictions", session, path, digits, allow_different_examples=True)

    assert summary.class_names == [str(d) for d in range(11)]


@pytest.mark.parametrize("size", [MAX_CELL + 1, 140_000], ids=["over the limit", "over 128 KB"])
def test_huge_header_cell_is_refused_naming_its_place(
    db: Database, digits: int, tmp_path: Path, size: int
) -> None:
    """A header cell over the limit, even one over the csv module's 128 KB field limit, is
    refused with its row and a shortened column name, not a traceback."""
    path = tmp_path / "huge_header.csv"
    text = (HOSTILE / "base_predictions.csv").read_text(encoding="utf-8")
    header, rest = text.split("\n", 1)
    path.write_text(f"{header},{'h' * size}\n" + rest.replace("\n", ",\n"), encoding="utf-8")

    error = _refused(db, "predictions", path, digits)

    assert (error.file, error.row, error.column) == ("huge_header.csv", 1, "h" * 40 + "…")
    assert "a column name has at most 1,000" in str(error)


@pytest.mark.parametrize("kind", ["predictions", "tags"])
def test_huge_cell_is_refused_naming_its_place(
    db: Database, digits: int, tmp_path: Path, kind: str
) -> None:
    """A cell over MAX_CELL (and over the csv module's 128 KB) is refused by row and column."""
    path = tmp_path / "huge_cell.csv"
    if kind == "predictions":
        path.write_text(
            "example_id,image,label,prediction,split\n"
            f"ex1,images/ex1.png,3,8,dev\nex2,images/ex2.png,1,7,{'d' * 140_000}\n",
            encoding="utf-8",
        )
        column = "split"
    else:
        path.write_text(f"example_id,comment\nex1,fine\nex2,{'c' * 140_000}\n", encoding="utf-8")
        column = "comment"

    error = _refused(db, kind, path, digits)

    assert (error.file, error.row, error.column) == ("huge_cell.csv", 3, column)
    assert f"at most {MAX_CELL:,} characters" in str(error)


@pytest.mark.parametrize("project", ["", "   ", "dig\x00its", "dig\nits", "p" * 201])
def test_bad_project_name_is_refused_before_the_file_is_read(
    db: Database, digits: int, project: str
) -> None:
    """An empty project name, one with a control character or over 200 characters is
    refused and creates nothing."""
    before = table_contents(db)

    with pytest.raises(InvalidInput, match="a project name") as caught, db.begin() as session:
        import_predictions(
            session, HOSTILE / "base_predictions.csv", project=project, check_images=False
        )

    assert "\n" not in str(caught.value)
    assert table_contents(db) == before


@pytest.mark.parametrize(
    "name",
    ["", " \t ", "blur\x00ry", "blur\try", "da\nrk", "x" * 101, "ab\ud800"],
    ids=["empty", "only spaces and a tab", "NUL", "tab", "line feed", "too long", "surrogate"],
)
def test_category_names_are_held_to_the_limits_everywhere(
    db: Database, digits: int, name: str
) -> None:
    """create_category and update_category refuse the names the files are refused for."""
    before = table_contents(db)
    with pytest.raises(InvalidInput, match="a category name"), db.begin() as session:
        create_category(session, project_id=digits, name=name)
    with pytest.raises(InvalidInput, match="a category name"), db.begin() as session:
        blurry = session.get(Project, digits).categories[0]
        update_category(session, category_id=blurry.id, name=name)
    assert table_contents(db) == before


@pytest.mark.parametrize("reviewer", ["al\x00ice", "al\tice", "r" * 101, "al\ud800"])
def test_reviewer_names_are_held_to_the_limits_when_tagging(
    db: Database, digits: int, reviewer: str
) -> None:
    """Tagging refuses a reviewer name with a control character or over 100 characters."""
    before = table_contents(db)
    with pytest.raises(InvalidInput, match="a reviewer name"), db.begin() as session:
        project = session.get(Project, digits)
        example = session.query(Example).filter_by(project_id=digits, example_id="ex2").one()
        set_tag(
            session,
            example_pks=[example.id],
            category_id=project.categories[0].id,
            reviewer=reviewer,
        )
    assert table_contents(db) == before


def test_longest_allowed_values_are_stored_whole(db: Database, digits: int, tmp_path) -> None:
    """An example_id of exactly the column's length is imported and read back unchanged."""
    longest = "i" * MAX_EXAMPLE_ID
    path = tmp_path / "longest.csv"
    shutil.copy(HOSTILE / "base_predictions.csv", path)
    with path.open("a", encoding="utf-8") as handle:
        handle.write(f"{longest},images/x.png,3,3,{'0.1,' * 9}0.1\n")

    with db.begin() as session:
        _import("predictions", session, path, digits, allow_different_examples=True)
        stored = session.query(Example.example_id).filter_by(example_id=longest).scalar()

    assert stored == longest


def test_shown_keeps_messages_on_one_short_line() -> None:
    """shown() escapes control characters and cuts long values, so a message stays one line."""
    assert shown("a\nb\x00c") == "'a\\x0ab\\x00c'"
    assert shown("x" * 100) == "'" + "x" * 40 + "…'"
    assert check_name("  two   words ", what="a name", limit=10) == "two words"
