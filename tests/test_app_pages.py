"""The Streamlit pages, driven with AppTest over a real SQLite project: reviewing, the gallery,
categories mid-review, importing, and that no page reads the whole examples table."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from sqlalchemy import func, select
from streamlit.testing.v1 import AppTest

from labeltool.categories import update_category
from labeltool.config import APP_PATH, DB_ENV_VAR, IMPORT_ROOT_ENV_VAR, REPO_ROOT
from labeltool.db import Database
from labeltool.models import Category, Example, Project, ReviewState
from tests.app_scenario import AppProject, large_project, open_app_project, rerun_cost
from tests.conftest import make_rows

PAGES = {
    "review": "app_pages/review.py",
    "gallery": "app_pages/gallery.py",
    "categories": "app_pages/categories.py",
    "report": "app_pages/report.py",
    "projects": "app_pages/projects.py",
}
#: make_rows(36, errors=30): 30 dev errors, 10 in each of cat-as-dog, dog-as-fox, fox-as-cat.
EXAMPLES, ERRORS = 36, 30


pytestmark = pytest.mark.usefixtures("fresh_streamlit_caches")


@pytest.fixture
def project(db: Database, write_predictions, monkeypatch: pytest.MonkeyPatch) -> AppProject:
    """Project "run1": 36 dev examples, 30 misclassified, "blurry" and "incorrectly labeled"
    (SQLite, and PostgreSQL when configured: the team backend must behave the same)."""
    return open_app_project(db, write_predictions, monkeypatch, examples=EXAMPLES, errors=ERRORS)


# --- every page ----------------------------------------------------------------------------


@pytest.mark.parametrize("page", list(PAGES))
def test_every_page_runs_without_an_exception(project: AppProject, page: str) -> None:
    """Each page of the navigation renders the sample project without raising."""
    at = _app(page, reviewer="ann")

    assert not at.exception
    assert at.sidebar.selectbox(key="project_name").value == "run1"


@pytest.mark.parametrize("page", list(PAGES))
def test_every_page_runs_on_an_empty_database(
    sqlite_db: Database, monkeypatch: pytest.MonkeyPatch, page: str
) -> None:
    """With no project yet every page renders without raising (and says what to do)."""
    monkeypatch.setenv(DB_ENV_VAR, sqlite_db.url)

    at = _app(page)

    assert not at.exception
    hints = [e.value for e in at.info] + [e.value for e in at.sidebar.info]
    assert any("Import" in h or "import" in h for h in hints), hints


# --- categories ----------------------------------------------------------------------------


def test_adding_a_category_mid_review_sends_reviewed_examples_back(project: AppProject) -> None:
    """Adding a category through the form creates it, moves the reviewed examples to
    "needs re-review", and the message says how many."""
    done = project.queue()[:3]
    project.mark_reviewed(done)
    at = _app("categories", reviewer="ann")

    at.text_input(key="new_name").input("instagram filter")
    _button(at, "Add category").click().run()

    assert not at.exception
    assert any(
        "Added 'instagram filter'" in s.value
        and "3 reviewed examples now need re-review" in s.value
        for s in at.success
    )
    with project.db.begin() as session:
        names = session.scalars(select(Category.name).order_by(Category.id)).all()
        rereview = session.scalars(
            select(Example.id).where(Example.review_state == ReviewState.NEEDS_REREVIEW.value)
        ).all()
    assert names == ["blurry", "incorrectly labeled", "instagram filter"]
    assert sorted(rereview) == sorted(done)


def test_a_bad_category_is_refused_with_a_message(project: AppProject) -> None:
    """A duplicate name in the form shows an error and adds nothing."""
    at = _app("categories", reviewer="ann")

    at.text_input(key="new_name").input("Blurry")
    _button(at, "Add category").click().run()

    assert any("already exists" in e.value for e in at.error)
    with project.db.begin() as session:
        assert session.scalar(select(func.count()).select_from(Category)) == 2


def test_a_confusion_pair_becomes_a_category_in_one_click(project: AppProject) -> None:
    """The "Make 'cat-as-dog' a category" button creates the category and tags the pair's
    errors for the reviewer; the pair then shows as already a category."""
    at = _app("categories", reviewer="ann")
    assert _button(at, "Make 'cat-as-dog' a category").key == "pair_cat_dog"

    at.button(key="pair_cat_dog").click().run()

    assert not at.exception
    assert any("'cat-as-dog' is now a category" in s.value for s in at.success)
    with project.db.begin() as session:
        category_id = session.scalar(select(Category.id).where(Category.name == "cat-as-dog"))
        pair = session.scalars(
            select(Example.id).where(
                Example.label == "cat", Example.prediction == "dog", Example.is_error.is_(True)
            )
        ).all()
    assert len(pair) == 10
    assert project.tags() == {(pk, category_id, "ann") for pk in pair}
    assert "pair_cat_dog" not in _keys(at.button)


def test_the_pair_button_needs_a_reviewer(project: AppProject) -> None:
    """Without a reviewer name the confusion-pair buttons are disabled."""
    at = _app("categories")

    assert at.button(key="pair_cat_dog").disabled


def test_the_category_table_shows_archived_categories(project: AppProject) -> None:
    """The category table lists archived categories with archived ticked (archiving is done
    through the core: AppTest cannot apply data_editor edits to fire its on_change)."""
    with project.db.begin() as session:
        update_category(session, category_id=project.blurry, archived=True)

    at = _app("categories", reviewer="ann")

    table = at.data_editor(key="category_table").value
    assert dict(zip(table["name"], table["archived"], strict=True)) == {
        "blurry": True,
        "incorrectly labeled": False,
    }


# --- projects ------------------------------------------------------------------------------


def test_projects_page_lists_projects_with_their_dev_error(project: AppProject) -> None:
    """The projects table shows each project's dev examples, errors and dev error."""
    at = _app("projects")

    assert len(at.dataframe) == 1
    table = at.dataframe[0].value
    assert table["project"].tolist() == ["run1"]
    assert (int(table["dev examples"][0]), int(table["misclassified"][0])) == (EXAMPLES, ERRORS)
    assert table["dev error"][0] == pytest.approx(ERRORS / EXAMPLES)


def test_importing_a_file_by_its_server_path(
    project: AppProject, write_predictions, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Importing a good file by its path in the import folder creates the project, reports it
    and selects it."""
    path = write_predictions(make_rows(6, errors=2), name="run2.csv")
    monkeypatch.setenv(IMPORT_ROOT_ENV_VAR, str(path.parent))
    at = _app("projects")

    at.text_input(key="import_project").input("run2")
    at.text_input(key="import_path").input(str(path))
    _button(at, "Import").click().run()

    assert not at.exception
    assert any("project 'run2'" in s.value and "2 misclassified" in s.value for s in at.success)
    assert at.sidebar.selectbox(key="project_name").value == "run2"
    with project.db.begin() as session:
        run2 = session.scalar(select(Project.id).where(Project.name == "run2"))
        count = session.scalar(select(func.count()).where(Example.project_id == run2))
    assert count == 6


def test_importing_a_bad_file_names_the_row_and_column_and_writes_nothing(
    project: AppProject, write_predictions, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file with a bad cell shows an error naming its row and column, and the database is
    left as it was."""
    rows = make_rows(4, errors=2)
    rows[1]["confidence"] = "high"
    path = write_predictions(rows, name="bad.csv")
    monkeypatch.setenv(IMPORT_ROOT_ENV_VAR, str(path.parent))
    at = _app("projects")

    at.text_input(key="import_project").input("bad")
    at.text_input(key="import_path").input(str(path))
    _button(at, "Import").click().run()

    assert not at.exception
    errors = [e.value for e in at.error]
    assert any("row 3" in e and "column 'confidence'" in e for e in errors), errors
    with project.db.begin() as session:
        assert session.scalars(select(Project.name)).all() == ["run1"]
        assert session.scalar(select(func.count()).select_from(Example)) == EXAMPLES


def test_importing_without_a_file_asks_for_one(
    project: AppProject, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Submitting the import form with a name but no file or path says what is missing."""
    monkeypatch.setenv(IMPORT_ROOT_ENV_VAR, str(tmp_path))
    at = _app("projects")

    at.text_input(key="import_project").input("run2")
    _button(at, "Import").click().run()

    assert any("choose a predictions file" in e.value for e in at.error)


# --- no page reads the whole table ---------------------------------------------------------


def test_a_review_rerun_runs_as_many_statements_on_a_large_project(
    tmp_path: Path, write_predictions, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One rerun of the review page runs the same number of SQL statements on a 20- and a
    400-example project and loads only the screen's window of examples, so it never reads the
    examples table."""
    counts, loaded = [], []
    for n in (20, 400):
        database = large_project(tmp_path, write_predictions, examples=n, reviewed=5)
        monkeypatch.setenv(DB_ENV_VAR, database.url)
        statements, examples = rerun_cost(_app("review", reviewer="ann"))
        counts.append(statements)
        loaded.append(examples)
        database.dispose()

    assert counts[0] == counts[1]
    assert 0 < counts[0] <= 20, counts
    assert loaded == [11, 21]  # the 11 left in the small queue; the anchor and 20 after it


# --- the core stays free of streamlit ------------------------------------------------------


def test_no_core_module_imports_streamlit() -> None:
    """Nothing under labeltool/ imports streamlit: the core works without the UI."""
    offenders = []
    for source in sorted((REPO_ROOT / "labeltool").rglob("*.py")):
        for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                continue
            if any(name == "streamlit" or name.startswith("streamlit.") for name in names):
                offenders.append(source.name)

    assert len(list((REPO_ROOT / "labeltool").rglob("*.py"))) > 5
    assert offenders == []


# --- helpers -------------------------------------------------------------------------------


def _app(page: str, *, reviewer: str | None = None) -> AppTest:
    """The app, run once on `page`, with the reviewer name already typed when given."""
    at = AppTest.from_file(str(APP_PATH), default_timeout=30)
    if reviewer is not None:
        at.session_state["reviewer"] = reviewer
    if page != "review":
        at.switch_page(PAGES[page])
    return at.run()


def _keys(widgets) -> set[str]:
    return {w.key for w in widgets}


def _button(at: AppTest, label: str):
    matches = [b for b in at.button if b.label == label]
    assert len(matches) == 1, [b.label for b in at.button]
    return matches[0]
