"""The ceiling report page, driven through the real app with Streamlit's AppTest: headline,
table, charts, effort inputs, slices and download buttons on a real SQLite database."""

from __future__ import annotations

import io
import json

import pandas as pd
import pyarrow as pa
import pytest
from sqlalchemy import select
from streamlit.runtime.media_file_manager import MediaFileManager
from streamlit.testing.v1 import AppTest, app_test

from labeltool import export, report
from labeltool.categories import update_category
from labeltool.db import Database
from labeltool.models import Category, ReachedBy
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


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the export builders and of report.ceiling_table, in the order the app
    calls them (each still does its real work)."""
    seen: list[str] = []
    targets = [(export, name) for name in EXPORT_BUILDERS] + [(report, "ceiling_table")]
    for module, name in targets:
        real = getattr(module, name)

        def spy(*args, _real=real, _name=name, **kwargs):
            seen.append(_name)
            return _real(*args, **kwargs)

        monkeypatch.setattr(module, name, spy)
    return seen


#: What building the downloads calls: the three tables and the CSV writer.
EXPORT_BUILDERS = ("wide_table", "long_table", "corrections_table", "to_csv")


def metrics(app: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in app.metric}


def shown_cells(app: AppTest, column: str) -> pd.DataFrame:
    """The cells of the first table with `column`, as the reader sees them (display strings)."""
    element = next(d for d in app.dataframe if column in d.value.columns)
    return pa.ipc.open_stream(element.proto.arrow_data.styler.display_values).read_pandas()


@pytest.fixture
def media_files(monkeypatch: pytest.MonkeyPatch) -> list[MediaFileManager]:
    """The media file manager of each AppTest run (where a deferred download waits for its
    click), kept after the run so a test can click."""
    managers: list[MediaFileManager] = []

    class Kept(MediaFileManager):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            managers.append(self)

    monkeypatch.setattr(app_test, "MediaFileManager", Kept)
    return managers


def downloaded(app: AppTest, manager: MediaFileManager, key: str) -> pd.DataFrame:
    """Click the download button `key` as the browser does: the file it builds, read back."""
    button = next(b for b in app.get("download_button") if b.key == key)
    url = manager.execute_deferred(button.proto.deferred_file_id)
    content = manager.read_file(url.rsplit("/", 1)[-1]).content
    return pd.read_csv(io.BytesIO(content), dtype=str, keep_default_na=False)


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
    assert table["category"].tolist() == ["blurry", "incorrectly labeled"]  # the ranking
    assert any(
        "**Not yet explained:** 8 of the 20 reviewed errors (40.0%)" in c.value for c in app.caption
    )
    assert table["ceiling"].tolist()[:2] == pytest.approx([0.05, 0.01])
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
    assert app.dataframe[0].value["category"].tolist() == []  # nothing ranked yet


def test_report_page_without_projects(open_page) -> None:
    """An empty database shows the hint to import predictions instead of a report."""
    app = open_page()
    assert any("No project yet" in i.value for i in app.info)
    assert not app.dataframe


def test_downloads_are_built_only_when_clicked(
    open_page, reviewed: int, calls, media_files
) -> None:
    """Opening the page builds no download; clicking one builds that file, with its rows."""
    app = open_page()
    clicked = media_files[-1]
    assert [c for c in calls if c in EXPORT_BUILDERS] == []
    wide = downloaded(app, clicked, "download_wide")
    assert calls[-2:] == ["wide_table", "to_csv"]
    assert wide["example_id"].tolist() == error_ids(20)
    assert wide["blurry"].tolist() == ["1"] * 10 + ["0"] * 10
    shown = downloaded(app, clicked, "download_report")
    # The CSV has the ranking and, last, the errors not yet explained.
    assert shown["category"].tolist() == [*app.dataframe[0].value["category"], "(no category)"]
    assert len(downloaded(app, clicked, "download_long")) == 12  # 10 blurry + 2 incorrectly labeled


def test_entering_an_effort_computes_the_table_once_and_no_download(
    open_page, reviewed: int, sqlite_db: Database, calls
) -> None:
    """The rerun after an effort is typed computes the ceiling table once (the ranking is
    derived from it) and builds none of the downloads."""
    app = open_page()
    with sqlite_db.begin() as session:
        blurry = session.scalars(select(Category).where(Category.name == "blurry")).one()
    calls.clear()
    app.number_input(key=f"effort_{blurry.id}").set_value(2.0).run()
    assert not app.exception, app.exception
    assert calls == ["ceiling_table"]
    ranking = next(d.value for d in app.dataframe if "ceiling_per_effort" in d.value.columns)
    assert ranking["category"].tolist() == ["blurry"]


def test_percentages_show_one_decimal_and_effort_in_points_per_day(
    open_page, reviewed: int, sqlite_db: Database, run_app
) -> None:
    """Shares, intervals, ceilings and errors after fix read as one-decimal percentages, the
    ranking by effort in points of dev error per day, and the Projects page's dev error too."""
    with sqlite_db.begin() as session:
        for category in session.scalars(select(Category)):
            update_category(session, category_id=category.id, effort=4.0)
    app = open_page()
    cells = shown_cells(app, "error_after_fix").set_index("category")
    assert cells.loc[
        "blurry", ["share", "ci_low", "ci_high", "ceiling", "error_after_fix"]
    ].tolist() == [
        "50.0%",
        "29.9%",
        "70.1%",
        "5.0%",
        "5.0%",
    ]
    ranking = shown_cells(app, "ceiling_per_effort")
    assert ranking["category"].tolist() == ["blurry", "incorrectly labeled"]
    assert ranking["ceiling"].tolist() == ["5.0%", "1.0%"]
    # 5 points of dev error over 4 days; 1 point over 4 days.
    assert ranking["ceiling_per_effort"].tolist() == ["1.25", "0.25"]
    projects = run_app(sqlite_db, "app_pages/projects.py")
    assert shown_cells(projects, "dev error")["dev error"].tolist() == ["10.0%"]


def test_charts_draw_each_category_in_its_colour_with_its_interval(
    open_page, reviewed: int, sqlite_db: Database
) -> None:
    """Both charts colour each category's bar with the category's own colour, and draw its
    95% interval as a line with end ticks."""
    with sqlite_db.begin() as session:
        ids = dict(session.execute(select(Category.name, Category.id)).all())
        update_category(session, category_id=ids["blurry"], colour="#e45756")
        update_category(session, category_id=ids["incorrectly labeled"], colour="#54a24b")
    app = open_page()
    share, after_fix = (json.loads(c.proto.spec) for c in app.get("vega_lite_chart")[:2])
    scale = next(
        layer["encoding"]["color"]["scale"]
        for layer in share["layer"]
        if "color" in layer.get("encoding", {})
    )
    assert dict(zip(scale["domain"], scale["range"], strict=True)) == {
        "blurry": "#e45756",
        "incorrectly labeled": "#54a24b",
        report.NO_CATEGORY: "#9e9e9e",
    }
    assert "#e45756" in json.dumps(after_fix) and "#54a24b" in json.dumps(after_fix)
    for chart in (share, after_fix):
        marks = json.dumps(chart)
        assert '"rule"' in marks and '"tick"' in marks


def test_category_named_like_a_wide_column_blocks_only_that_download(
    open_page, reviewed: int, sqlite_db: Database
) -> None:
    """A category named like a fixed column of the wide table shows why the spreadsheet
    cannot be exported, as text, and leaves the other downloads."""
    with sqlite_db.begin() as session:
        blurry = session.scalars(select(Category).where(Category.name == "blurry")).one()
        update_category(session, category_id=blurry.id, name="Comment")
    app = open_page()
    assert [e.value for e in app.error] == [
        "Category 'Comment' has the name of a fixed column of the wide table; rename it to export."
    ]
    assert [b.key for b in app.get("download_button")] == [
        "download_long",
        "download_report",
        "download_corrections",
    ]


def test_the_page_says_in_words_what_the_estimate_rests_on(
    open_page, sqlite_db: Database, write_predictions
) -> None:
    """With 6 random and 4 targeted reviews the page says the shares come from 6 random
    reviews covering all the errors, 4 targeted ones not counted."""
    project_id = make_project(sqlite_db, write_predictions, dev=100, errors=10)
    review(sqlite_db, project_id, {i: [] for i in error_ids(6)})
    review(
        sqlite_db,
        project_id,
        {i: ["blurry"] for i in error_ids(4, 6)},
        reached=ReachedBy.BY_HAND,
    )

    at = open_page()

    captions = [c.value for c in at.caption]
    assert any(
        "from 6 random reviews covering 100.0% of the errors; 4 targeted reviews not counted" in c
        for c in captions
    ), captions
