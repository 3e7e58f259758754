"""The audit trail as people read it: `labeltool history` and `labeltool undo` on the command
line, and the History page (AppTest) with its filters, CSV and undo button."""

from __future__ import annotations

import csv
import io
import json

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from labeltool import labeling
from labeltool.categories import create_category
from labeltool.cli import cli
from labeltool.db import Database
from labeltool.models import Category, Example
from tests.test_report import make_project

HISTORY = "app_pages/history.py"


@pytest.fixture
def project(sqlite_db: Database, write_predictions) -> int:
    """Project "run1" with the category "blurry"; bob tags and comments ex0000, ann
    comments ex0001 with text a spreadsheet would run as a formula."""
    project_id = make_project(sqlite_db, write_predictions, dev=20, errors=4)
    with sqlite_db.begin() as session:
        create_category(session, project_id=project_id, name="blurry", user="ann")
    first, second = _pks(sqlite_db, project_id)[:2]
    with sqlite_db.begin() as session:
        blurry = session.scalar(select(Category.id))
        labeling.toggle_tag(session, example_pk=first, category_id=blurry, reviewer="bob")
    with sqlite_db.begin() as session:
        labeling.set_comment(session, example_pk=first, comment="**smudge**", user="bob")
    with sqlite_db.begin() as session:
        labeling.set_comment(session, example_pk=second, comment="=1+1", user="ann")
    return project_id


def _pks(db: Database, project_id: int) -> list[int]:
    with db.begin() as session:
        return list(
            session.scalars(
                select(Example.id)
                .where(Example.project_id == project_id, Example.is_error)
                .order_by(Example.id)
            )
        )


def _cli(db: Database, *args: str):
    url = db.engine.url.render_as_string(hide_password=False)
    return CliRunner().invoke(cli, ["--db", url, *args], catch_exceptions=False)


def test_cli_history_newest_first_and_filtered(sqlite_db: Database, project: int) -> None:
    """One line per change, newest first; --example and --user filter it."""
    result = _cli(sqlite_db, "history", "--project", "run1")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert len(lines) == 4
    assert "ann  comment run 1 example ex0001: '' -> '=1+1'" in lines[0]
    assert "bob  tag blurry run 1 example ex0000: (none) -> 'tagged'" in lines[2]
    assert "ann  category created: (none) -> 'blurry'" in lines[3]

    only = _cli(sqlite_db, "history", "--project", "run1", "--example", "ex0000")
    assert len(only.output.splitlines()) == 2
    bob = _cli(sqlite_db, "history", "--project", "run1", "--user", "bob", "--kind", "comment")
    assert bob.output.splitlines() == [line for line in lines if "bob  comment" in line]


def test_cli_history_csv_is_safe_and_json_is_records(sqlite_db: Database, project: int) -> None:
    """The CSV has the history's columns, and a comment that looks like a formula is
    neutralised; the JSON is one record a change."""
    result = _cli(sqlite_db, "history", "--project", "run1", "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(result.output)))
    assert list(rows[0]) == [
        "at",
        "user",
        "change",
        "run",
        "example_id",
        "what",
        "old",
        "new",
        "whose",
        "change_id",
        "undoes",
    ]
    assert rows[0]["new"] == "'=1+1"
    records = json.loads(_cli(sqlite_db, "history", "--project", "run1", "--format", "json").output)
    assert records[0]["user"] == "ann" and records[0]["old"] == "" and records[3]["old"] is None


def test_cli_undo_acts_as_the_named_user(sqlite_db: Database, project: int) -> None:
    """`labeltool --as bob undo` takes back bob's comment, not ann's later one."""
    result = _cli(sqlite_db, "--as", "bob", "undo", "--project", "run1")
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "undid comment on example ex0000 (1 value)"
    with sqlite_db.begin() as session:
        first, second = (session.get(Example, pk) for pk in _pks(sqlite_db, project)[:2])
        assert (first.comment, second.comment) == ("", "=1+1")
    nobody = CliRunner().invoke(
        cli,
        ["--db", sqlite_db.engine.url.render_as_string(), "undo", "--project", "run1"],
        env={"LABELTOOL_USER": ""},
    )
    assert nobody.exit_code != 0 and "say who you are first" in nobody.output


def test_history_page_shows_filters_and_undoes(sqlite_db: Database, project: int, run_app) -> None:
    """The page lists the changes as text, filters by user, and its button undoes the
    reviewer's own last change (and says what it undid)."""
    app = run_app(sqlite_db, HISTORY, query_params={"project": "run1"})
    table = app.dataframe[0].value
    assert table["new"].tolist()[:2] == ["=1+1", "**smudge**"]
    assert app.get("download_button"), "the CSV download is offered"

    app.selectbox(key="h_user").set_value("bob").run()
    assert set(app.dataframe[0].value["user"]) == {"bob"}

    app.session_state["reviewer"] = "bob"
    app.run()
    box = [m.value for m in app.markdown]
    assert any("Your last change: comment on example ex0000 (run 1), 1 value" in v for v in box), (
        box
    )
    app.button(key="h_undo").click().run()
    assert not app.exception
    assert any("Undid comment on example ex0000" in s.value for s in app.success)
    with sqlite_db.begin() as session:
        assert session.get(Example, _pks(sqlite_db, project)[0]).comment == ""


def test_history_page_without_a_name_cannot_undo(
    sqlite_db: Database, project: int, run_app
) -> None:
    """With no reviewer name there is no undo button, and the page says why."""
    app = run_app(sqlite_db, HISTORY, query_params={"project": "run1"})
    app.session_state["reviewer"] = ""
    app.run()
    assert not [b for b in app.button if b.key == "h_undo"]
    assert any("Enter your name" in c.value for c in app.caption)
