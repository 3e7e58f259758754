"""Exports are safe in every spreadsheet and lose nothing: no cell runs as a formula (also after
leading whitespace or with a full-width sign), no line break or tab splits a cell, reviewer
names with ";" stay whole, and hostile text survives export -> import-tags -> export exactly."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select

from labeltool.cli import cli
from labeltool.db import Database
from labeltool.export import (
    join_reviewers,
    neutralise_cell,
    restore_cell,
    split_reviewers,
    to_csv,
    wide_table,
)
from labeltool.models import Example
from tests.test_report import PROJECT, make_project, review

#: Signs a spreadsheet runs as a formula, ASCII and full-width (U+FF1D, U+FF0B, U+FF0D, U+FF20).
SIGNS = "=+-@\uff1d\uff0b\uff0d\uff20"
#: Characters that matter to a spreadsheet or to the reviewer cell, drawn often so that
#: generated texts combine them (" =1", "x\r=1", "a\\;b").
SPECIAL = [*SIGNS, " ", "\t", "\r", "\n", "\u00a0", "\u2028", "'", ",", '"', ";", "\\", "0", "."]
#: Any text a cell may hold: every character but NUL (PostgreSQL refuses it) and lone
#: surrogates (not encodable as UTF-8).
TEXT = st.text(
    st.one_of(
        st.sampled_from(SPECIAL),
        st.characters(exclude_categories=("Cs",), exclude_characters="\x00"),
    )
)
#: Text that starts like a formula: whitespace or quotes, a sign, then any text.
FORMULA_LIKE = st.tuples(
    st.text(st.sampled_from(" \t\r\n\u00a0\u3000'")), st.sampled_from(SIGNS), TEXT
).map("".join)

#: Comments a reviewer might type or paste, each one hostile to some reader.
HOSTILE_COMMENTS = [
    "x\r=1+1",
    "x\n=1+1",
    "x\r\n=1+1",
    "\r=1+1",
    "\n=1+1",
    "\t=1+1",
    " =1+1",
    "   @SUM(A1)",
    "\u00a0=1+1",
    '\uff1dHYPERLINK("x")',
    "\uff0b1",
    "\uff0dcmd",
    "\uff20SUM(A1)",
    "a\tb",
    'say "hi", then =1+1',
    "'=already quoted",
    "''",
    "line one\nline two\r\nline three\rend",
    "-0.5",
    "\u2028=1+1",
]
#: Reviewer names that hold the separator, the escape, or look like formulas.
HOSTILE_REVIEWERS = ["Smith; John", "CORP\\ann", "back\\;slash", "ends with\\", "=cmd", "ann"]
#: Category names that are formulas, hold the delimiter or a quote.
HOSTILE_CATEGORIES = ["=1+1 blur", "\uff0bplus", "a,b", 'say "hi"', "-dash"]


def spreadsheet_runs(cell: str) -> bool:
    """Whether a spreadsheet would run `cell` as a formula: a sign first (after whitespace),
    unless it is a plain number, or a tab or CR first."""
    if cell.startswith(("\t", "\r")):
        return True
    body = cell.lstrip()
    if not body or body[0] not in SIGNS:
        return False
    return not re.fullmatch(r"-[0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?", body)


def as_a_spreadsheet_reads(text: str, *, delimiter: str = ",") -> list[list[str]]:
    """The cells a spreadsheet sees: any CR, LF or CRLF outside quotes ends a row."""
    return list(csv.reader(io.StringIO(text, newline=None), delimiter=delimiter))


# --- quoting -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "comment", ["x\r=1+1", "x\n=1+1", "a\tb", "a,b", 'a"b', "a\u2028b", "a\x0bb", "a\x85b"]
)
def test_a_cell_with_a_line_break_tab_comma_or_quote_is_quoted(comment: str) -> None:
    """Every cell holding CR, LF (or another line break), a tab, the delimiter or a quote is
    written between quotes, so no part of it becomes a row or a cell of its own."""
    text = to_csv(pd.DataFrame({"example_id": ["ex1"], "comment": [comment]}))

    assert text == 'example_id,comment\nex1,"' + comment.replace('"', '""') + '"\n'
    assert as_a_spreadsheet_reads(text)[1][0] == "ex1"
    assert len(as_a_spreadsheet_reads(text)) == 2


def test_a_carriage_return_cannot_start_a_formula_row() -> None:
    """A comment "x\\r=1+1" stays one cell of one row, so "=1+1" never reaches a spreadsheet
    as a cell of its own."""
    text = to_csv(pd.DataFrame({"example_id": ["ex1"], "comment": ["x\r=1+1"]}))

    rows = as_a_spreadsheet_reads(text)
    assert len(rows) == 2
    assert not any(spreadsheet_runs(cell) for row in rows for cell in row)


def test_cells_without_special_characters_are_written_as_before() -> None:
    """Plain cells, numbers and empty cells are not quoted: a hand-made sheet exports as typed."""
    frame = pd.DataFrame(
        {"example_id": ["007", "ex2"], "confidence": [0.51, None], "blurry": [1, 0], "c": ["", "x"]}
    )

    assert to_csv(frame) == "example_id,confidence,blurry,c\n007,0.51,1,\nex2,,0,x\n"


# --- neutralising formulas ----------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        " =1+1",
        "  +1",
        "\n=1+1",
        "\r\n@SUM(A1)",
        "\u00a0=1+1",
        "\u00a0\u00a0-cmd",
        "\uff1d1+1",
        "\uff0b1",
        "\uff0d1",
        "\uff20SUM(A1)",
        " \uff1d1",
        "\u3000=1",
    ],
)
def test_formulas_after_whitespace_or_with_full_width_signs_are_neutralised(text: str) -> None:
    """A formula sign after leading spaces, line breaks, tabs or no-break spaces, and the
    full-width signs ＝＋－＠, get the leading `'` like a plain "=" does."""
    assert neutralise_cell(text) == "'" + text
    assert restore_cell(neutralise_cell(text)) == text


@pytest.mark.parametrize("text", ["-0.5", " -0.5", "1e-3", "plain", "", " ", "a=b", "\u00a0x"])
def test_numbers_and_plain_text_are_left_alone(text: str) -> None:
    """Plain numbers (also after a space), plain text and blanks get no `'`."""
    assert neutralise_cell(text) == text


@given(st.one_of(TEXT, FORMULA_LIKE))
def test_restoring_a_neutralised_cell_gives_back_any_text(text: str) -> None:
    """restore_cell(neutralise_cell(t)) == t for every text t."""
    assert restore_cell(neutralise_cell(text)) == text


@given(st.one_of(TEXT, FORMULA_LIKE))
def test_a_neutralised_cell_never_runs_as_a_formula(text: str) -> None:
    """Whatever the text, the neutralised cell starts with `'` or a spreadsheet would not run
    it."""
    cell = neutralise_cell(text)
    assert cell.startswith("'") or not spreadsheet_runs(cell)


@given(st.one_of(TEXT, FORMULA_LIKE))
def test_any_text_written_to_csv_reads_back_exactly(text: str) -> None:
    """A cell written by to_csv and read back with the csv module or pandas, then restored, is
    the original text, and the file still has one row."""
    written = to_csv(pd.DataFrame({"example_id": ["ex1"], "comment": [text]}))

    records = list(csv.reader(io.StringIO(written, newline="")))
    assert [[restore_cell(c) for c in r] for r in records] == [
        ["example_id", "comment"],
        ["ex1", text],
    ]
    frame = pd.read_csv(io.StringIO(written, newline=""), dtype=str, keep_default_na=False)
    assert frame.map(restore_cell).values.tolist() == [["ex1", text]]


@given(st.one_of(TEXT, FORMULA_LIKE))
def test_no_written_cell_runs_as_a_formula_in_a_spreadsheet(text: str) -> None:
    """Read as a spreadsheet reads a CSV (any line break outside quotes ends a row), no cell of
    the written file runs as a formula."""
    written = to_csv(pd.DataFrame({"example_id": ["ex1"], "comment": [text]}))

    rows = as_a_spreadsheet_reads(written)
    assert len(rows) == 2
    assert not any(spreadsheet_runs(cell) for row in rows for cell in row)


# --- reviewer lists --------------------------------------------------------------------------


def test_a_reviewer_named_with_a_semicolon_stays_one_reviewer() -> None:
    """ "Smith; John" is written with its ";" escaped and read back as one name, next to others."""
    cell = join_reviewers(["Smith; John", "ann"])

    assert cell == "Smith\\; John;ann"
    assert split_reviewers(cell) == ["Smith; John", "ann"]


def test_hand_typed_reviewer_cells_read_as_typed() -> None:
    """A hand-typed "ann;bob" is two reviewers; a backslash before a letter is kept."""
    assert split_reviewers("ann;bob") == ["ann", "bob"]
    assert split_reviewers("CORP\\ann") == ["CORP\\ann"]


@given(st.lists(st.one_of(TEXT, st.text(st.sampled_from(";\\a "))), min_size=1))
def test_any_reviewer_names_survive_joining_and_splitting(names: list[str]) -> None:
    """split_reviewers(join_reviewers(names)) == names for any names."""
    assert split_reviewers(join_reviewers(names)) == names


# --- the wide table through export -> import-tags -> export --------------------------------------


@pytest.fixture
def hostile_project(db: Database, write_predictions) -> int:
    """A project whose reviewed errors hold every hostile comment, reviewer and category name."""
    project_id = make_project(db, write_predictions, dev=40, errors=len(HOSTILE_COMMENTS))
    for number in range(len(HOSTILE_COMMENTS)):
        example_id = f"ex{number:04d}"
        categories = [HOSTILE_CATEGORIES[number % len(HOSTILE_CATEGORIES)]]
        for reviewer in {
            HOSTILE_REVIEWERS[number % len(HOSTILE_REVIEWERS)],
            HOSTILE_REVIEWERS[(number * 5 + 1) % len(HOSTILE_REVIEWERS)],
        }:
            review(db, project_id, {example_id: categories}, reviewer=reviewer)
    with db.begin() as session:
        for number, comment in enumerate(HOSTILE_COMMENTS):
            example = session.scalars(
                select(Example).where(
                    Example.project_id == project_id, Example.example_id == f"ex{number:04d}"
                )
            ).one()
            example.comment = comment
    return project_id


def test_hostile_text_survives_export_import_tags_export(
    db: Database, db_url: str, hostile_project: int, tmp_path: Path, write_predictions
) -> None:
    """Every hostile comment, reviewer and category name comes back exactly from
    `labeltool export` -> `labeltool import-tags` -> `labeltool export`, and the two files are
    byte for byte the same."""
    fresh = make_project(
        db, write_predictions, dev=40, errors=len(HOSTILE_COMMENTS), project="fresh"
    )
    first, second = tmp_path / "first.csv", tmp_path / "second.csv"
    runner = CliRunner()

    def export(project: str, out: Path) -> None:
        result = runner.invoke(
            cli,
            ["--db", db_url, "export", "--project", project, "--table", "wide", "--out", str(out)],
        )
        assert result.exit_code == 0, result.output

    export(PROJECT, first)
    result = runner.invoke(cli, ["--db", db_url, "import-tags", str(first), "--project", "fresh"])
    assert result.exit_code == 0, result.output
    export("fresh", second)

    assert second.read_bytes() == first.read_bytes()
    with db.begin() as session:
        original = wide_table(session, project_id=hostile_project)
        imported = wide_table(session, project_id=fresh)
    pd.testing.assert_frame_equal(imported, original)
    assert imported["comment"].tolist() == HOSTILE_COMMENTS
    everyone = {name for cell in imported["reviewer"] for name in split_reviewers(cell)}
    assert everyone == set(HOSTILE_REVIEWERS)
    assert set(HOSTILE_CATEGORIES) <= set(imported.columns)


def test_a_wide_export_has_no_formula_for_a_spreadsheet(
    db: Database, hostile_project: int, tmp_path: Path
) -> None:
    """Opened as a spreadsheet opens a CSV, the wide export of hostile text has one row per
    reviewed error and no cell that runs as a formula."""
    with db.begin() as session:
        text = to_csv(wide_table(session, project_id=hostile_project))

    rows = as_a_spreadsheet_reads(text)
    assert len(rows) == 1 + len(HOSTILE_COMMENTS)
    assert [cell for row in rows for cell in row if spreadsheet_runs(cell)] == []
