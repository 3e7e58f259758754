"""On a project with members, the report page's effort and eyeball share, the review page's
quick category and the Gallery's cluster naming act as the signed-in (or typed) reviewer:
the lead may, a reviewer is refused with the role it needs."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from labeltool.categories import list_categories
from labeltool.db import Database
from labeltool.models import Category, Project
from labeltool.roles import set_role
from tests.test_report import make_project

REPORT = "app_pages/report.py"


@pytest.fixture
def team(sqlite_db: Database, write_predictions) -> int:
    project = make_project(sqlite_db, write_predictions, dev=20, errors=4)
    with sqlite_db.begin() as session:
        from labeltool.categories import create_category

        create_category(session, project_id=project, name="blurry")
        set_role(session, project_id=project, user="ann", role="lead", by=None)
        set_role(session, project_id=project, user="bob", role="reviewer", by="ann")
    return project


def _blurry(db: Database, project: int) -> Category:
    with db.begin() as session:
        return next(c for c in list_categories(session, project_id=project) if c.name == "blurry")


@pytest.mark.parametrize(("who", "saved"), [("ann", 2.0), ("bob", None)])
def test_effort_is_the_leads_to_set(
    sqlite_db: Database, team: int, run_app, who: str, saved: float | None
) -> None:
    app = run_app(sqlite_db, REPORT, query_params={"project": "run1"})
    app.session_state["reviewer"] = who
    blurry = _blurry(sqlite_db, team)

    app.number_input(key=f"effort_{blurry.id}").set_value(2.0).run()

    assert not app.exception, app.exception
    assert _blurry(sqlite_db, team).effort == saved
    refused = [e.value for e in app.error if "needs the lead role" in e.value]
    assert bool(refused) == (who == "bob")


@pytest.mark.parametrize(("who", "saved"), [("ann", 0.5), ("bob", None)])
def test_the_eyeball_share_is_the_leads_to_set(
    sqlite_db: Database, team: int, run_app, who: str, saved: float | None
) -> None:
    app = run_app(sqlite_db, REPORT, query_params={"project": "run1"})
    app.session_state["reviewer"] = who

    app.number_input(key="eyeball_share").set_value(50.0).run()

    assert not app.exception, app.exception
    with sqlite_db.begin() as session:
        share = session.scalar(select(Project.eyeball_fraction).where(Project.id == team))
    assert share == saved


def _sheet(db: Database, project: int, tmp_path, extra: str = "") -> str:
    """A wide sheet tagging the project's first error blurry (and `extra` if given)."""
    from labeltool.models import Example

    with db.begin() as session:
        first = session.scalar(
            select(Example.example_id)
            .where(Example.project_id == project, Example.is_error)
            .order_by(Example.example_id)
        )
    header = "example_id,blurry" + (f",{extra}" if extra else "")
    row = f"{first},1" + (",1" if extra else "")
    path = tmp_path / "sheet.csv"
    path.write_text(f"{header}\n{row}\n", encoding="utf-8")
    return str(path)


def test_import_tags_acts_as_the_cli_user(sqlite_db: Database, team: int, tmp_path) -> None:
    """A reviewer may import tags for existing categories; a sheet that adds a category
    needs the lead; without --as the command says who to act as."""
    from click.testing import CliRunner

    from labeltool.cli import cli

    url = sqlite_db.engine.url.render_as_string(hide_password=False)

    def run(*args: str):
        return CliRunner().invoke(cli, ["--db", url, *args])

    plain_sheet = _sheet(sqlite_db, team, tmp_path)
    assert run("import-tags", plain_sheet, "--project", "run1").exit_code != 0
    ok = run("--as", "bob", "import-tags", plain_sheet, "--project", "run1")
    assert ok.exit_code == 0, ok.output

    new_column = _sheet(sqlite_db, team, tmp_path, extra="foggy")
    refused = run("--as", "bob", "import-tags", new_column, "--project", "run1")
    assert refused.exit_code != 0
    assert "needs the lead role" in refused.output
    assert run("--as", "ann", "import-tags", new_column, "--project", "run1").exit_code == 0


def test_analysing_a_run_and_its_embeddings_are_the_leads(
    sqlite_db: Database, team: int, tmp_path
) -> None:
    """analyze and embeddings change a run: a reviewer is refused with the role it needs,
    the lead may."""
    import numpy as np
    from click.testing import CliRunner

    from labeltool.cli import cli
    from labeltool.models import Example

    url = sqlite_db.engine.url.render_as_string(hide_password=False)
    with sqlite_db.begin() as session:
        ids = list(session.scalars(select(Example.example_id).where(Example.project_id == team)))
    side = tmp_path / "features.npz"
    np.savez(side, example_id=np.array(ids), embeddings=np.ones((len(ids), 4), np.float32))

    def run(*args: str):
        return CliRunner().invoke(cli, ["--db", url, *args])

    for command in (
        ("analyze", "--project", "run1", "--no-images"),
        ("embeddings", str(side), "--project", "run1"),
    ):
        refused = run("--as", "bob", *command)
        assert refused.exit_code != 0 and "needs the lead role" in refused.output, command
        allowed = run("--as", "ann", *command)
        assert allowed.exit_code == 0, allowed.output
