"""The ceiling report page, driven through the real app with Streamlit's AppTest: headline,
table, charts, effort inputs, slices and download buttons on a real SQLite database."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select
from streamlit.testing.v1 import AppTest

from labeltool.db import Database
from labeltool.models import Category
from tests.test_report import error_ids, make_project, review

PAGE = "app_pages/report.py"


@pytest.fixture
def open_page(sqlite_db: Database, run_app):
    """A function that runs the app on `sqlite_db`, switched to the report page."""
    return lambda: run_app(sqlite_db, PAGE)


@pytest.fixture
def reviewed(sqlite_db: Database, write_predictions) -> int:
    """10% dev error; 20 reviewed errors: 10 blurry (ann), 2 incorrectly labeled (bob)."""
    project_id = make_project(sqlite_db, write_predictions, dev=200, errors=20)
    review(sqlite_db, project_id, {i: ["blurry"] for i in error_ids(10)}, reviewer="ann")
    review(
        sqlite_db,
        project_id,
        {i: ["incorrectly labeled"] for i in error_ids(2, 10)} | {i: [] for i in error_ids(8, 12)},
        reviewer="bob",
    )
    return project_id


def metrics(app: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in app.metric}


def test_report_page_shows_headline_table_and_downloads(open_page, reviewed: int) -> None:
    """The page shows the headline numbers, the ceiling table, both charts and four downloads."""
    app = open_page()
    assert metrics(app) == {
        "Dev examples": "200",
        "Misclassified": "20",
        "Dev error": "10.0%",
        "Reviewed errors": "20",
    }
    table = app.dataframe[0].value
    assert table["category"].tolist() == ["blurry", "incorrectly labeled", "(no category)"]
    assert table["ceiling"].tolist() == pytest.approx([0.05, 0.01, 0.04])
    assert any(
        "fixing labels could remove at most 1.0 points of the 10.0% dev error" in i.value
        for i in app.info
    )
    charts = [json.loads(chart.proto.spec) for chart in app.get("vega_lite_chart")]
    assert len(charts) == 2
    assert "rule" in json.dumps(charts[0])  # the Wilson interval error bars
    # The ceiling inherits the interval: the after-fix chart draws the best-case error's range.
    assert "rule" in json.dumps(charts[1]) and '"worst"' in json.dumps(charts[1])
    downloads = app.get("download_button")
    assert [b.label for b in downloads] == [
        "Spreadsheet (wide)",
        "Tags (long)",
        "Report (this view)",
        "Corrected labels",
    ]
    assert downloads[0].proto.help.startswith("20 rows")


def test_effort_input_saves_and_ranks(open_page, reviewed: int, sqlite_db: Database) -> None:
    """Typing an effort saves it on the category and shows the ceiling-per-effort ranking."""
    app = open_page()
    with sqlite_db.begin() as session:
        blurry = session.scalars(select(Category).where(Category.name == "blurry")).one()
    app.number_input(key=f"effort_{blurry.id}").set_value(2.0).run()
    assert not app.exception, app.exception
    assert not app.error, [e.value for e in app.error]
    with sqlite_db.begin() as session:
        assert session.get(Category, blurry.id).effort == 2.0
    ranking = next(d.value for d in app.dataframe if "ceiling_per_effort" in d.value.columns)
    assert ranking["category"].tolist() == ["blurry"]
    assert ranking["ceiling_per_effort"].tolist() == pytest.approx([0.025])


def test_reviewer_and_confusion_pair_slices(open_page, reviewed: int) -> None:
    """Choosing a reviewer or a confusion pair recomputes the headline for that slice."""
    app = open_page()
    app.selectbox(key="report_reviewer").set_value("bob").run()
    assert metrics(app)["Reviewed errors"] == "10"
    assert app.dataframe[0].value.set_index("category").loc["blurry", "errors"] == 0
    app.selectbox(key="report_reviewer").set_value(None).run()
    app.selectbox(key="report_pair").set_value(("cat", "dog")).run()
    assert not app.exception, app.exception
    shown = metrics(app)
    assert shown["Misclassified as cat-as-dog"] == "7"
    assert shown["Its part of the dev error"] == "3.5%"


def test_report_page_before_any_review(open_page, sqlite_db: Database, write_predictions) -> None:
    """With nothing reviewed yet the page still renders and says too few errors were reviewed."""
    make_project(sqlite_db, write_predictions, dev=10, errors=2)
    app = open_page()
    assert metrics(app)["Reviewed errors"] == "0"
    assert any("too few to rank categories" in w.value for w in app.warning)
    assert app.dataframe[0].value["category"].tolist() == ["(no category)"]


def test_report_page_without_projects(open_page) -> None:
    """An empty database shows the hint to import predictions instead of a report."""
    app = open_page()
    assert any("No project yet" in i.value for i in app.info)
    assert not app.dataframe
