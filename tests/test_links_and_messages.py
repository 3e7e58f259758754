"""Links and messages say what happened: a link to a missing project says so (as text, never
Markdown), and archiving a category says that its key is free again."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from labeltool.categories import create_category
from labeltool.db import Database
from labeltool.importing import import_predictions
from labeltool.models import Category
from labeltool.projects import get_project
from tests.conftest import make_rows
from tests.test_text import shown_text

CATEGORIES = "app_pages/categories.py"


@pytest.fixture
def two_projects(db: Database, write_predictions) -> Database:
    """Projects "run1" and the newer "run2" (12 dev examples, 6 misclassified each); run1 has
    the categories "blurry" (key 1) and "incorrectly labeled" (key 2)."""
    path = write_predictions(make_rows(12, errors=6))
    with db.begin() as session:
        import_predictions(session, path, project="run1")
    with db.begin() as session:
        import_predictions(session, path, project="run2")
        project_id = get_project(session, "run1").id
        create_category(session, project_id=project_id, name="blurry")
        create_category(session, project_id=project_id, name="incorrectly labeled")
    return db


# --- ?project=NAME --------------------------------------------------------------------------


def test_a_link_to_a_missing_project_says_so_before_showing_another(
    two_projects: Database, run_app
) -> None:
    """?project=nope shows an error naming 'nope' and the project shown instead (the newest,
    run2); only with that message does the URL move to the project shown."""
    at = run_app(two_projects, CATEGORIES, query_params={"project": "nope"})

    assert [e.value for e in at.error] == [
        "No project named 'nope'. Showing project 'run2' instead; pick another in the sidebar."
    ]
    assert at.sidebar.selectbox(key="project_name").value == "run2"
    assert at.query_params["project"] == "run2"


def test_a_link_to_an_existing_project_opens_it_without_an_error(
    two_projects: Database, run_app
) -> None:
    """?project=run1 opens run1 (not the newest project) and says nothing is wrong."""
    at = run_app(two_projects, CATEGORIES, query_params={"project": "run1"})

    assert [e.value for e in at.error] == []
    assert at.sidebar.selectbox(key="project_name").value == "run1"


def test_a_missing_projects_name_is_shown_as_text_not_markdown(
    two_projects: Database, run_app
) -> None:
    """Markdown and HTML in the link's project name are escaped, so the reader sees exactly
    the characters of the link."""
    at = run_app(two_projects, CATEGORIES, query_params={"project": "**bold** <b>x</b> [a](b)"})

    (error,) = [e.value for e in at.error]
    assert shown_text(error).startswith(
        "No project named '**bold** <b>x</b> [a](b)'. Showing project 'run2'"
    )


def test_a_link_to_a_project_on_an_empty_database_says_so(sqlite_db: Database, run_app) -> None:
    """With no project at all, ?project=nope still names the missing project."""
    at = run_app(sqlite_db, CATEGORIES, query_params={"project": "nope"})

    assert [e.value for e in at.error] == ["No project named 'nope'."]
    assert any("import" in i.value for i in at.info)


# --- archiving a category -------------------------------------------------------------------


def test_archiving_a_category_says_its_key_is_free_again(two_projects: Database, run_app):
    """Archiving 'blurry' says its key 1 is free again, and the next category added gets
    that key."""
    at = run_app(two_projects, CATEGORIES, query_params={"project": "run1"})
    assert at.button(key="archive_category").disabled

    at.selectbox(key="archive_choice").select_index(0).run()
    at.button(key="archive_category").click().run()

    assert not at.exception
    assert [s.value for s in at.success] == ["Archived 'blurry'; its key 1 is free again"]
    with two_projects.begin() as session:
        blurry = session.scalars(select(Category).where(Category.name == "blurry")).one()
        assert (blurry.archived, blurry.shortcut) == (True, None)
    assert at.selectbox(key="archive_choice").options == ["incorrectly labeled"]

    at.text_input(key="new_name").input("instagram filter")
    [b for b in at.button if b.label == "Add category"][0].click().run()

    assert any(s.value.startswith("Added 'instagram filter' (key 1)") for s in at.success)
