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
