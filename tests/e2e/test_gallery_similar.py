"""The Gallery's "more like this" and clusters in Chromium, on the sample digits with the pixel
embeddings `labeltool analyze` makes: M on a tile shows the errors like it, and a cluster is
named as a new category and tagged as a group in one go.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select

from labeltool import similar
from labeltool.db import Database
from labeltool.models import Category, Example, Review, Tag
from labeltool.projects import get_project
from labeltool.runs import get_run
from tests.e2e.conftest import PROJECT, RunningApp
from tests.e2e.test_gallery import _tiles, _wait_until_idle, open_gallery

pytestmark = pytest.mark.e2e

REVIEWER = "e2e-clusters"


@pytest.fixture
def gallery(page: Page, app: RunningApp) -> Iterator[Page]:
    """The sample's Gallery with its errors embedded (as `labeltool analyze` does), the
    reviewer's name typed."""
    database = Database.open(app.db_url)
    try:
        with database.begin() as session:
            project = get_project(session, PROJECT)
            run = get_run(session, project_id=project.id, name=None)
            similar.embed_pixels(session, project_id=project.id, run_id=run.id)
    finally:
        database.dispose()
    yield open_gallery(page, app, REVIEWER)


def test_m_on_a_tile_shows_the_errors_like_it(gallery: Page) -> None:
    """Clicking a tile and pressing M puts its id in the URL and shows it first, marked "this
    one", followed by its nearest errors with their distances."""
    tile = _tiles(gallery).nth(3)
    example_id = tile.get_attribute("data-example-id")
    tile.click()
    gallery.keyboard.press("m")

    expect(gallery).to_have_url(re.compile(rf"[?&]similar={re.escape(example_id)}(&|$)"))
    first = _tiles(gallery).first
    expect(first).to_have_attribute("data-example-id", example_id)
    expect(first.locator(".lt-g-note")).to_have_text("this one")
    expect(_tiles(gallery).nth(1).locator(".lt-g-note")).to_have_text(re.compile(r"distance 0\."))
    expect(gallery.get_by_text("the errors most like")).to_be_visible()


def test_a_cluster_is_named_and_tagged_as_a_group(gallery: Page, app: RunningApp) -> None:
    """Clusters view, open the first cluster, name it: every member shown is tagged with the
    new category by this reviewer and marked reviewed by hand."""
    gallery.get_by_text("Clusters", exact=True).click()
    _wait_until_idle(gallery)
    gallery.get_by_role("button", name="Open cluster 1", exact=True).click()
    _wait_until_idle(gallery)
    heading = gallery.get_by_text(re.compile(r"Cluster 1: \d+ untagged errors"))
    size = int(re.search(r"(\d+) untagged", heading.inner_text()).group(1))
    expect(_tiles(gallery)).to_have_count(min(size, 96))
    members = set(_tiles(gallery).evaluate_all("ts => ts.map(t => t.dataset.exampleId)"))

    gallery.get_by_role("textbox", name="New category's name").fill("thin strokes")
    gallery.get_by_role("button", name=f"Tag all {size}", exact=True).click()
    expect(gallery.get_by_text(f"{size} examples tagged 'thin strokes'")).to_be_visible()

    database = Database.open(app.db_url)
    try:
        with database.begin() as session:
            tagged = set(
                session.execute(
                    select(Example.example_id)
                    .join(Tag, Tag.example_pk == Example.id)
                    .join(Category, Category.id == Tag.category_id)
                    .where(Category.name == "thin strokes", Tag.reviewer == REVIEWER)
                ).scalars()
            )
            reached = set(
                session.scalars(select(Review.reached).where(Review.reviewer == REVIEWER))
            )
    finally:
        database.dispose()
    assert len(tagged) == size
    assert members <= tagged
    assert reached == {"by hand"}
