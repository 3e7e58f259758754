"""Projects: listing, the dev error rate, and deleting a project with everything it holds."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from labeltool.cli import cli
from labeltool.db import Database
from labeltool.errors import UnknownProject
from labeltool.models import Category, Example, Project, Review, Tag
from labeltool.projects import delete_project, dev_error_rate, list_projects
from tests.conftest import table_contents
from tests.test_report import error_ids, make_project, review


def counts(db: Database) -> dict[str, int]:
    with db.begin() as session:
        return {
            model.__tablename__: session.scalar(select(func.count()).select_from(model))
            for model in (Project, Example, Category, Tag, Review)
        }


@pytest.fixture
def two_projects(db: Database, write_predictions) -> tuple[int, int]:
    """Project "run1" (reviewed, tagged) and "keep" (reviewed, tagged) side by side."""
    first = make_project(db, write_predictions, dev=50, errors=10)
    review(db, first, {i: ["blurry"] for i in error_ids(4)})
    second = make_project(db, write_predictions, dev=30, errors=6, project="keep", name="k.csv")
    review(db, second, {i: ["blurry"] for i in error_ids(2)})
    return first, second


def test_dev_error_rate_counts_dev_examples_and_errors(db: Database, two_projects):
    """run1: 50 dev examples, 10 misclassified, a 20% dev error."""
    with db.begin() as session:
        rate = dev_error_rate(session, project_id=two_projects[0])
    assert (rate.dev_examples, rate.misclassified, rate.dev_error) == (50, 10, 0.2)


def test_deleting_a_project_removes_everything_it_holds_and_nothing_else(
    db: Database, two_projects
):
    """Deleting run1 removes its examples, categories, tags and reviews; "keep" is untouched."""
    with db.begin() as session:
        kept_before = _rows_of(session, two_projects[1])
    with db.begin() as session:
        held = delete_project(session, "run1")
    assert held.dev_examples == 50
    assert counts(db) == {"projects": 1, "examples": 30, "categories": 1, "tags": 2, "reviews": 2}
    with db.begin() as session:
        assert [p.name for p in list_projects(session)] == ["keep"]
        assert _rows_of(session, two_projects[1]) == kept_before


def test_deleting_an_unknown_project_changes_nothing(db: Database, two_projects):
    """An unknown name raises UnknownProject naming the projects that exist."""
    before = table_contents(db)
    with db.begin() as session, pytest.raises(UnknownProject, match="known projects: keep, run1"):
        delete_project(session, "nope")
    assert table_contents(db) == before


def test_cli_asks_before_deleting(db_url: str, db: Database, two_projects):
    """Without --yes the command asks and, answered no, deletes nothing; with --yes it deletes."""
    runner = CliRunner()
    refused = runner.invoke(cli, ["--db", db_url, "delete-project", "run1"], input="n\n")
    assert refused.exit_code == 1 and counts(db)["projects"] == 2
    done = runner.invoke(cli, ["--db", db_url, "delete-project", "run1", "--yes"])
    assert done.exit_code == 0, done.output
    assert done.output == "deleted project 'run1' (50 dev examples)\n"
    assert counts(db)["projects"] == 1


def test_projects_page_deletes_only_after_the_name_is_typed(
    sqlite_db: Database, write_predictions, run_app
):
    """The Delete button stays disabled until the project's name is typed, then deletes it."""
    make_project(sqlite_db, write_predictions, dev=20, errors=4)
    app = run_app(sqlite_db, "app_pages/projects.py")
    assert app.button(key="delete_project").disabled

    app.text_input(key="delete_confirm").input("run").run()
    assert app.button(key="delete_project").disabled
    app.text_input(key="delete_confirm").input("run1").run()
    app.button(key="delete_project").click().run()

    assert not app.exception, app.exception
    assert any("Deleted project 'run1'" in s.value for s in app.success)
    assert counts(sqlite_db)["projects"] == 0


def _rows_of(session, project_id: int) -> tuple:
    examples = session.scalars(
        select(Example.example_id).where(Example.project_id == project_id).order_by(Example.id)
    ).all()
    tags = session.execute(
        select(Tag.example_pk, Tag.category_id, Tag.reviewer)
        .join(Example)
        .where(Example.project_id == project_id)
        .order_by(Tag.id)
    ).all()
    return tuple(examples), tuple(tags)
