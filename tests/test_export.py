"""Exports and the wide table's import: contents of each table, CSV cells made safe for
spreadsheets, and a wide table that survives export -> import-tags -> export byte for byte."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner
from sqlalchemy import select

from labeltool.categories import create_category, update_category
from labeltool.cli import cli
from labeltool.db import Database
from labeltool.errors import InvalidInput
from labeltool.export import (
    corrections_table,
    long_table,
    neutralise_cell,
    restore_cell,
    to_csv,
    wide_table,
)
from labeltool.models import Category, Example, Review, ReviewState, Tag
from labeltool.tags_import import import_tags
from tests.conftest import table_contents
from tests.test_report import PROJECT, error_ids, make_project, review

HEADER = "example_id,image,label,prediction,confidence"


def set_example(db: Database, example_id: str, **values) -> None:
    with db.begin() as session:
        example = session.scalars(select(Example).where(Example.example_id == example_id)).one()
        for name, value in values.items():
            setattr(example, name, value)


def export_wide(db: Database, project_id: int, path: Path) -> bytes:
    with db.begin() as session:
        to_csv(wide_table(session, project_id=project_id), path)
    return path.read_bytes()


def run_import(db: Database, path: Path, project_id: int, **options):
    with db.begin() as session:
        return import_tags(session, path, project_id=project_id, **options)


@pytest.fixture
def tagged_project(db: Database, write_predictions) -> int:
    """20 dev examples, 5 errors: ex0000-ex0003 reviewed by ann and/or bob, ex0004 skipped."""
    project_id = make_project(db, write_predictions, dev=20, errors=5)
    review(db, project_id, {"ex0000": ["blurry"], "ex0001": ["blurry", "dark"], "ex0002": []})
    review(db, project_id, {"ex0001": ["old"], "ex0003": ["dark"]}, reviewer="bob")
    review(db, project_id, {"ex0004": ["blurry"]}, state=ReviewState.SKIPPED)
    set_example(db, "ex0001", comment='=HYPERLINK("x")', corrected_label="cat")
    with db.begin() as session:
        old = session.scalars(select(Category).where(Category.name == "old")).one()
        update_category(session, category_id=old.id, archived=True)
    return project_id


# --- the tables -------------------------------------------------------------------------------


def test_wide_table_is_the_methods_spreadsheet(db: Database, tagged_project: int) -> None:
    """One row per reviewed dev error, a 0/1 column per category (archived too), who reviewed."""
    with db.begin() as session:
        wide = wide_table(session, project_id=tagged_project)
    assert wide.columns.tolist() == [
        *HEADER.split(","),
        "blurry",
        "dark",
        "old",
        "comment",
        "corrected_label",
        "reviewer",
    ]
    assert wide["example_id"].tolist() == ["ex0000", "ex0001", "ex0002", "ex0003"]
    assert wide[["blurry", "dark", "old"]].values.tolist() == [
        [1, 0, 0],
        [1, 1, 1],
        [0, 0, 0],
        [0, 1, 0],
    ]
    assert wide["reviewer"].tolist() == ["ann", "ann;bob", "ann", "bob"]
    first = wide.iloc[1]
    assert (first["label"], first["prediction"], first["confidence"]) == ("dog", "fox", 0.51)
    assert first["comment"] == '=HYPERLINK("x")' and first["corrected_label"] == "cat"


def test_long_table_has_one_row_per_tag(db: Database, tagged_project: int) -> None:
    """Every tag on a reviewed error, with its reviewer and an ISO 8601 UTC time."""
    with db.begin() as session:
        long = long_table(session, project_id=tagged_project)
    assert long.columns.tolist() == [
        "example_id",
        "category",
        "reviewer",
        "tagged_at",
        "suggested",
    ]
    assert long[["example_id", "category", "reviewer"]].values.tolist() == [
        ["ex0000", "blurry", "ann"],
        ["ex0001", "blurry", "ann"],
        ["ex0001", "dark", "ann"],
        ["ex0001", "old", "bob"],
        ["ex0003", "dark", "bob"],
    ]
    moment = datetime.fromisoformat(long["tagged_at"].iloc[0])
    assert moment.utcoffset().total_seconds() == 0
    assert abs((datetime.now(UTC) - moment).total_seconds()) < 3600


def test_long_table_says_which_tags_came_from_an_accepted_suggestion(
    db: Database, tagged_project: int
) -> None:
    """A tag made by accepting a suggestion is "true" in the long table's `suggested` column;
    tags chosen by hand are "false"."""
    with db.begin() as session:
        tag = session.scalars(
            select(Tag)
            .join(Example, Example.id == Tag.example_pk)
            .join(Category, Category.id == Tag.category_id)
            .where(Example.example_id == "ex0001", Category.name == "dark")
        ).one()
        tag.suggested = True

    with db.begin() as session:
        long = long_table(session, project_id=tagged_project)

    assert long[["example_id", "category", "suggested"]].values.tolist() == [
        ["ex0000", "blurry", "false"],
        ["ex0001", "blurry", "false"],
        ["ex0001", "dark", "true"],
        ["ex0001", "old", "false"],
        ["ex0003", "dark", "false"],
    ]


def test_corrections_table_lists_corrected_labels(db: Database, tagged_project: int) -> None:
    """Only examples given a corrected label, with the label they had."""
    with db.begin() as session:
        corrections = corrections_table(session, project_id=tagged_project)
    assert corrections.values.tolist() == [["ex0001", "dog", "cat"]]
    assert corrections.columns.tolist() == ["example_id", "label", "corrected_label"]


# --- safe CSV -----------------------------------------------------------------------------


def test_formula_cells_are_neutralised_but_numbers_stay(tmp_path: Path) -> None:
    """=, +, -, @, tab and CR text gets a leading '; "-0.5" and real numbers stay as they are."""
    frame = pd.DataFrame(
        {
            "comment": ['=HYPERLINK("x")', "+1", "-cmd", "@SUM(A1)", "\tx", "-0.5", "fine"],
            "number": [-0.5, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
        }
    )
    path = tmp_path / "out.csv"
    to_csv(frame, path)
    rows = list(csv.reader(io.StringIO(path.read_text(encoding="utf-8"))))
    assert [r[0] for r in rows[1:]] == [
        '\'=HYPERLINK("x")',
        "'+1",
        "'-cmd",
        "'@SUM(A1)",
        "'\tx",
        "-0.5",
        "fine",
    ]
    assert rows[1][1] == "-0.5"


def test_neutralising_is_undone_exactly() -> None:
    """restore_cell gives back every text, even ones that already start with a quote."""
    texts = ["=1+1", "'=x", "''@y", "'plain", "-0.5", "-", "", "'", "+", "normal", "\rcr"]
    assert [restore_cell(neutralise_cell(t)) for t in texts] == texts
    assert neutralise_cell("'=x") == "''=x"
    assert neutralise_cell("-") == "'-"


def test_headers_that_look_like_formulas_are_neutralised() -> None:
    """A category named like a formula is neutralised in the header too."""
    text = to_csv(pd.DataFrame({"=bad": [1]}))
    assert text.splitlines()[0] == "'=bad"


# --- wide table round trips ---------------------------------------------------------------


def test_wide_export_import_export_is_identical(
    db: Database, tagged_project: int, tmp_path, write_predictions
):
    """Exporting, importing into a fresh project with the same predictions, and exporting again
    gives the same bytes."""
    first = export_wide(db, tagged_project, tmp_path / "first.csv")
    assert b"'=HYPERLINK" in first
    fresh = make_project(db, write_predictions, dev=20, errors=5, project="fresh")
    summary = run_import(db, tmp_path / "first.csv", fresh)
    assert summary.categories_added == ["blurry", "dark", "old"]
    assert summary.reviewers == ["ann", "bob"]
    second = export_wide(db, fresh, tmp_path / "second.csv")
    assert second == first


def test_hand_made_spreadsheet_imports_and_exports_identical(
    db: Database, tmp_path, write_predictions
):
    """A spreadsheet typed by hand in the documented format, with a new category, round-trips."""
    project_id = make_project(db, write_predictions, dev=20, errors=5)
    with db.begin() as session:
        create_category(session, project_id=project_id, name="blurry")
    sheet = (
        f"{HEADER},blurry,dark,comment,corrected_label,reviewer\n"
        "ex0000,images/ex0000.png,cat,dog,0.5,1,0,too dark to tell,,ann\n"
        'ex0001,images/ex0001.png,dog,fox,0.51,1,1,"blurry, and dark",,ann;bob\n'
        "ex0002,images/ex0002.png,fox,cat,0.52,0,0,label is wrong,dog,bob\n"
    )
    path = tmp_path / "sheet.csv"
    path.write_text(sheet, encoding="utf-8")
    summary = run_import(db, path, project_id)
    assert summary.categories_added == ["dark"]
    assert (summary.rows, summary.tags_added, summary.corrections) == (3, 5, 1)
    assert export_wide(db, project_id, tmp_path / "out.csv").decode() == sheet


def test_accepted_cell_spellings(db: Database, tmp_path, write_predictions) -> None:
    """x, yes and true tick a category; blank, no and false do not."""
    project_id = make_project(db, write_predictions, dev=20, errors=5)
    path = tmp_path / "sheet.csv"
    path.write_text("example_id,a,b,c\nex0000,x,YES,\nex0001,no,false,True\n", encoding="utf-8")
    run_import(db, path, project_id, reviewer="cy")
    with db.begin() as session:
        wide = wide_table(session, project_id=project_id)
    assert wide[["a", "b", "c"]].values.tolist() == [[1, 1, 0], [0, 0, 1]]
    assert wide["reviewer"].tolist() == ["cy", "cy"]


def test_an_empty_trailing_column_is_ignored(db: Database, tmp_path, write_predictions) -> None:
    """A spreadsheet's empty unnamed last column (a trailing comma) is not a category."""
    project_id = make_project(db, write_predictions, dev=20, errors=5)
    path = tmp_path / "sheet.csv"
    path.write_text("example_id,blurry,\nex0000,1,\n", encoding="utf-8")
    assert run_import(db, path, project_id, reviewer="ann").categories_added == ["blurry"]


def test_a_zero_removes_only_that_reviewers_tag(db: Database, tmp_path, write_predictions) -> None:
    """Importing a 0 for ann removes ann's tag and leaves bob's; the row becomes reviewed."""
    project_id = make_project(db, write_predictions, dev=20, errors=5)
    review(db, project_id, {"ex0000": ["blurry"]}, reviewer="ann")
    review(db, project_id, {"ex0000": ["blurry"]}, reviewer="bob", state=ReviewState.NEEDS_REREVIEW)
    path = tmp_path / "sheet.csv"
    path.write_text("example_id,blurry\nex0000,0\n", encoding="utf-8")
    summary = run_import(db, path, project_id, reviewer="ann")
    assert summary.tags_removed == 1
    with db.begin() as session:
        taggers = session.scalars(select(Tag.reviewer)).all()
        state = session.scalar(select(Example.review_state).where(Example.example_id == "ex0000"))
        reviews = sorted(session.scalars(select(Review.reviewer)).all())
    assert taggers == ["bob"]
    assert state == ReviewState.REVIEWED.value
    assert reviews == ["ann", "bob"]


def test_rows_without_reviewer_are_recorded_as_import(db: Database, tmp_path, write_predictions):
    """With no --reviewer and an empty reviewer cell, the reviewer is "import"."""
    project_id = make_project(db, write_predictions, dev=20, errors=5)
    path = tmp_path / "sheet.csv"
    path.write_text("example_id,blurry,reviewer\nex0000,1,\n", encoding="utf-8")
    assert run_import(db, path, project_id).reviewers == ["import"]


@pytest.mark.parametrize(
    ("sheet", "row", "column", "words"),
    [
        ("example_id,blurry\nex0000,1\nex0001,2\n", 3, "blurry", "'2' is not 0 or 1"),
        ("example_id,blurry\nex0000,1\nnope,1\n", 3, "example_id", "unknown example_id 'nope'"),
        ("example_id,blurry\nex0010,1\n", 2, "example_id", "not a misclassified dev example"),
        ("example_id,blurry\nex0000,1\nex0000,0\n", 3, "example_id", "appears twice"),
        (
            "example_id,blurry,corrected_label\nex0000,1,\nex0001,0,wolf\n",
            3,
            "corrected_label",
            "unknown label 'wolf'",
        ),
        ("blurry\n1\n", 1, "example_id", "required column is missing"),
        ("example_id,blurry,\nex0000,1,5\n", 1, None, "column 3 has values but no name"),
    ],
)
def test_bad_files_are_refused_and_change_nothing(
    db: Database, tmp_path, write_predictions, sheet: str, row: int, column: str, words: str
) -> None:
    """A bad cell or id is refused naming file, row and column; the database is unchanged."""
    project_id = make_project(db, write_predictions, dev=20, errors=5)
    review(db, project_id, {"ex0002": ["dark"]})
    before = table_contents(db)
    path = tmp_path / "bad.csv"
    path.write_text(sheet, encoding="utf-8")
    with pytest.raises(InvalidInput) as caught:
        run_import(db, path, project_id)
    assert (caught.value.file, caught.value.row, caught.value.column) == ("bad.csv", row, column)
    assert words in str(caught.value)
    assert table_contents(db) == before


# --- the commands ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("table", "first_line", "rows"),
    [
        ("wide", f"{HEADER},blurry,dark,old,comment,corrected_label,reviewer", 4),
        ("long", "example_id,category,reviewer,tagged_at,suggested", 5),
        # blurry, dark and "(no category)": "old" is archived, so left out
        (
            "report",
            "category,errors,reviewed,share,ci_low,ci_high,ceiling,ceiling_low,ceiling_high,"
            "error_after_fix,error_after_fix_low,error_after_fix_high,too_few,archived,"
            "targeted_errors",
            3,
        ),
        ("corrections", "example_id,label,corrected_label", 1),
    ],
)
def test_export_command_writes_each_table(
    tagged_project: int, db_url: str, tmp_path: Path, table: str, first_line: str, rows: int
) -> None:
    """`export --table T --out FILE` writes the table and says what it wrote in one line."""
    out = tmp_path / f"{table}.csv"
    result = CliRunner().invoke(
        cli, ["--db", db_url, "export", "--project", PROJECT, "--table", table, "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    counted = ", counting: adjudicated" if table == "report" else ""  # the report says how
    assert (
        result.output
        == f"wrote the {table} table of project '{PROJECT}' ({rows} row{'' if rows == 1 else 's'}"
        f"{counted}) to {out}\n"
    )
    lines = out.read_text(encoding="utf-8").splitlines()
    assert lines[0] == first_line
    assert len(pd.read_csv(out)) == rows


def test_import_tags_command_round_trip_between_two_databases(tmp_path: Path, write_predictions):
    """export wide from one SQLite file, import-tags into another with the same predictions,
    export again: identical files."""
    runner = CliRunner()
    urls = [f"sqlite:///{tmp_path / name}" for name in ("one.db", "two.db")]
    for url in urls:
        db = Database.open(url)
        make_project(db, write_predictions, dev=20, errors=5)
        db.dispose()
    db = Database.open(urls[0])
    project_id = 1
    review(db, project_id, {"ex0000": ["blurry"], "ex0001": ["blurry", "dark"]})
    set_example(db, "ex0001", comment="-starts with a dash", corrected_label="cat")
    db.dispose()
    first, second = tmp_path / "first.csv", tmp_path / "second.csv"
    export = ["export", "--project", PROJECT, "--table", "wide", "--out"]
    assert runner.invoke(cli, ["--db", urls[0], *export, str(first)]).exit_code == 0
    result = runner.invoke(cli, ["--db", urls[1], "import-tags", str(first), "--project", PROJECT])
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"project '{PROJECT}': 2 rows imported as reviewed by ann;")
    assert runner.invoke(cli, ["--db", urls[1], *export, str(second)]).exit_code == 0
    assert second.read_bytes() == first.read_bytes()


def test_import_tags_command_bad_file_is_one_line(tagged_project: int, db_url: str, tmp_path):
    """A bad file is one line naming the file, row and column, with exit code 1."""
    path = tmp_path / "bad.csv"
    path.write_text("example_id,blurry\nex0000,maybe\n", encoding="utf-8")
    result = CliRunner().invoke(
        cli, ["--db", db_url, "import-tags", str(path), "--project", PROJECT, "--reviewer", "ann"]
    )
    assert result.exit_code == 1
    assert "bad.csv, row 2, column 'blurry': 'maybe' is not 0 or 1" in result.output
    assert len(result.output.strip().splitlines()) == 1


@pytest.mark.parametrize("command", ["report", "export", "import-tags"])
def test_report_and_export_commands_have_help_on_every_option(command: str) -> None:
    """Each of these commands, and each of its options, has help text."""
    group = cli
    sub = group.commands[command]
    assert sub.help and sub.help.strip()
    for param in sub.params:
        if param.param_type_name == "option":
            assert param.help, f"{command} {param.opts} has no help"
    result = CliRunner().invoke(cli, [command, "--help"])
    assert result.exit_code == 0 and "--project" in result.output


def test_export_skips_errors_not_reviewed(db: Database, tagged_project: int) -> None:
    """The skipped example ex0004 (tagged before it was skipped) is not in the wide table."""
    with db.begin() as session:
        ids = wide_table(session, project_id=tagged_project)["example_id"].tolist()
    assert "ex0004" not in ids and error_ids(4) == ids
