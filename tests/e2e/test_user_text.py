"""User text is shown as text on every page, in Chromium: an example id, a category name, a
reviewer name and a comment written as Markdown or HTML show literally, and no page gets a
link, bold text or an element from them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from app_pages.text import JOINER
from labeltool import labeling
from labeltool.categories import create_category
from labeltool.db import Database
from labeltool.importing import import_predictions
from labeltool.projects import get_project
from tests.conftest import make_rows
from tests.e2e.conftest import RunningApp, serve

pytestmark = pytest.mark.e2e

EVIL = "evil.example"
EXAMPLE_ID = f"[id](https://{EVIL})"
CATEGORY = f"**bold** [cat](https://{EVIL}) <b>tag</b>"
REVIEWER = f"[rev](https://{EVIL})"
COMMENT = f"<img src=x> see www.{EVIL}"
PAGES = ["", "gallery", "categories", "report", "projects"]


@pytest.fixture
def hostile_app(chromium: Path, tmp_path: Path, write_predictions) -> Iterator[RunningApp]:
    """The app on a project whose example id, category, reviewer and comment are hostile."""
    rows = make_rows(6, errors=4)
    rows[0]["example_id"] = EXAMPLE_ID
    path = write_predictions(rows)
    db_url = f"sqlite:///{tmp_path / 'hostile.db'}"
    database = Database.open(db_url)
    with database.begin() as session:
        import_predictions(session, path, project="hostile")
    with database.begin() as session:
        project_id = get_project(session, "hostile").id
        category = create_category(session, project_id=project_id, name=CATEGORY)
        pk = labeling.find_example(session, project_id=project_id, example_id=EXAMPLE_ID)
        labeling.set_tag(session, example_pks=[pk], category_id=category.id, reviewer=REVIEWER)
        labeling.set_comment(session, example_pk=pk, comment=COMMENT)
        labeling.mark_reviewed(session, example_pks=[pk], reviewer=REVIEWER)
    database.dispose()
    with serve(db_url, tmp_path) as running:
        yield running


@pytest.mark.parametrize("page_path", PAGES)
def test_no_page_turns_user_text_into_markup(
    browser: Browser, hostile_app: RunningApp, page_path: str
) -> None:
    """Each page shows the hostile strings, if at all, as the characters typed: no link to the
    evil host, no bold text or image made from them, and the category name appears literally
    where categories are listed."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    url = f"{hostile_app.url}/{page_path}?project=hostile&reviewer=x"
    if page_path == "":
        url += "&example=%5Bid%5D(https%3A%2F%2Fevil.example)"
    page.goto(url)
    expect(page.get_by_test_id("stApp")).to_have_attribute(
        "data-test-script-state", "notRunning", timeout=20_000
    )
    page.wait_for_timeout(500)

    links = page.locator(f'a[href*="{EVIL}"]')
    assert links.count() == 0, links.first.evaluate("a => a.parentElement.parentElement.outerHTML")
    assert page.get_by_text("bold", exact=True).count() == 0  # no <strong>bold</strong>
    assert page.locator('img[src="x"]').count() == 0
    assert page.locator("b", has_text="tag").count() == 0
    if page_path in ("", "report"):  # the Categories table draws on a canvas
        _expect_literal(page, CATEGORY)
    if page_path == "":
        expect(page.get_by_test_id("review-example-id")).to_have_text(EXAMPLE_ID)
    context.close()


def _expect_literal(page: Page, text: str) -> None:
    """`text` appears on the page character for character (in a cell, label or button;
    invisible word joiners, which keep addresses from becoming links, aside)."""
    shown = page.locator("body").inner_text().replace(JOINER, "")
    assert text in shown
