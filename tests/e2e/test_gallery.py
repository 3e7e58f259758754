"""The Gallery in Chromium: a screenful of tiles, selecting with mouse and keys, tagging the
selection with a category key, marking it reviewed, and opening a tile on the review page.

Each test reads the database itself to check that exactly the selected examples changed.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Locator, Page, expect
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from labeltool.models import Category, Example, Project, Review, ReviewState, Tag
from tests.e2e.conftest import PROJECT, RunningApp

pytestmark = pytest.mark.e2e

REVIEWER = "e2e-gallery"
#: The window the gallery is designed for, and how many tiles it must show in it at once.
WINDOW = {"width": 1400, "height": 900}
AT_LEAST_VISIBLE = 40
#: sample_data/categories.csv: key 1 is "blurry", drawn in this colour.
BLURRY_KEY, BLURRY, BLURRY_RGB = "1", "blurry", "rgb(78, 121, 167)"


@pytest.fixture
def gallery(page: Page, app: RunningApp) -> Iterator[Page]:
    """The Gallery of the sample project in a 1400x900 window, the reviewer's name typed."""
    yield open_gallery(page, app, REVIEWER)


def open_gallery(page: Page, app: RunningApp, reviewer: str) -> Page:
    """Open the sample project's Gallery in a 1400x900 window and type `reviewer`'s name."""
    page.set_viewport_size(WINDOW)
    page.goto(f"{app.url}/gallery?project={PROJECT}")
    expect(_tiles(page).first).to_be_visible()
    _wait_until_idle(page)
    box = _reviewer_box(page)
    box.fill(reviewer)
    box.press("Tab")
    _wait_until_idle(page)
    return page


def test_forty_tiles_fit_in_a_1400x900_window(gallery: Page) -> None:
    """At least 40 tiles lie wholly inside a 1400x900 window without scrolling."""
    boxes = [tile.bounding_box() for tile in _tiles(gallery).all()]

    inside = [
        box
        for box in boxes
        if box
        and box["x"] >= 0
        and box["y"] >= 0
        and box["x"] + box["width"] <= WINDOW["width"]
        and box["y"] + box["height"] <= WINDOW["height"]
    ]
    assert len(inside) >= AT_LEAST_VISIBLE, f"{len(inside)} of {len(boxes)} tiles on screen"


def test_shift_click_selects_a_range_and_a_category_key_tags_exactly_it(
    gallery: Page, app: RunningApp
) -> None:
    """A click then a Shift+click selects the tiles between them; the category's key tags
    exactly those for the reviewer (chips in the category's colour), and pressing it again,
    now that all of them have it, takes it off."""
    tiles = _tiles(gallery)
    tiles.nth(2).click()
    tiles.nth(6).click(modifiers=["Shift"])

    assert _selected(gallery) == [2, 3, 4, 5, 6]
    chosen = {tiles.nth(i).get_attribute("data-example-id") for i in range(2, 7)}
    gallery.keyboard.press(BLURRY_KEY)
    expect(_status(gallery)).to_contain_text(f"5 examples tagged '{BLURRY}'")
    _wait_until_idle(gallery)

    assert _tags(app) == {(example_id, BLURRY, REVIEWER) for example_id in chosen}
    chip = tiles.nth(4).locator(".lt-g-chip")
    expect(chip).to_have_text(BLURRY)
    assert chip.evaluate("c => getComputedStyle(c).backgroundColor") == BLURRY_RGB
    expect(tiles.nth(1).locator(".lt-g-chip")).to_have_count(0)

    gallery.keyboard.press(BLURRY_KEY)
    expect(_status(gallery)).to_contain_text(f"5 examples untagged '{BLURRY}'")
    _wait_until_idle(gallery)
    assert _tags(app) == set()


def test_keys_select_and_mark_reviewed_applies_to_exactly_the_selection(
    gallery: Page, app: RunningApp
) -> None:
    """Arrows move the focus, Shift+arrows extend, Space toggles, Ctrl+A selects the page
    (but not inside a text box), Esc clears; Mark reviewed then marks exactly the selection,
    and Enter opens the focused tile on the review page."""
    tiles = _tiles(gallery)
    columns = _columns(tiles)
    tiles.nth(0).click()
    keyboard = gallery.keyboard
    keyboard.press("ArrowRight")
    keyboard.press("Shift+ArrowRight")
    keyboard.press("Shift+ArrowRight")
    assert _selected(gallery) == [0, 1, 2, 3]
    keyboard.press("ArrowDown")
    keyboard.press("Space")
    assert _selected(gallery) == [0, 1, 2, 3, 3 + columns]

    _reviewer_box(gallery).click()
    keyboard.press("Control+A")  # selects the box's text, not the page
    assert _selected(gallery) == [0, 1, 2, 3, 3 + columns]
    tiles.nth(3 + columns).click()  # back on the grid; the click toggles that tile off
    keyboard.press("Control+A")
    assert len(_selected(gallery)) == tiles.count()
    keyboard.press("Escape")
    assert _selected(gallery) == []

    tiles.nth(8).click()
    tiles.nth(10).click(modifiers=["Shift"])
    chosen = {tiles.nth(i).get_attribute("data-example-id") for i in (8, 9, 10)}
    gallery.get_by_role("button", name="Mark reviewed").click()
    expect(_status(gallery)).to_contain_text("3 examples marked reviewed")
    _wait_until_idle(gallery)

    assert _reviewed(app) == {(example_id, REVIEWER) for example_id in chosen}
    # They leave the queue of unreviewed errors the gallery shows.
    shown = {t.get_attribute("data-example-id") for t in _tiles(gallery).all()}
    assert not shown & chosen

    tiles.nth(5).click()
    target = tiles.nth(5).get_attribute("data-example-id")
    keyboard.press("Enter")
    _expect_review_page_showing(gallery, target)


def test_open_shows_the_example_on_the_review_page_in_the_same_project(gallery: Page) -> None:
    """A tile's Open button lands on the review page showing that example, in the project
    being viewed, with the reviewer's name still in the Reviewer box."""
    tile = _tiles(gallery).nth(7)
    target = tile.get_attribute("data-example-id")

    tile.get_by_role("button", name="Open").click()

    _expect_review_page_showing(gallery, target)
    expect(_reviewer_box(gallery)).to_have_value(REVIEWER)
    expect(gallery.get_by_role("combobox", name="Project")).to_have_value(PROJECT)


def test_without_a_reviewer_nothing_is_tagged(page: Page, app: RunningApp) -> None:
    """With no reviewer name the tag buttons are disabled and a category key only says to
    enter a name first: no tag is written."""
    page.set_viewport_size(WINDOW)
    page.goto(f"{app.url}/gallery?project={PROJECT}")
    _tiles(page).first.click()
    _wait_until_idle(page)

    expect(page.get_by_role("button", name="Tag selected", exact=True)).to_be_disabled()
    page.keyboard.press(BLURRY_KEY)
    expect(_status(page)).to_contain_text("enter your name as Reviewer")
    _wait_until_idle(page)
    assert _tags(app) == set()


# --- private helpers -------------------------------------------------------------------


def _expect_review_page_showing(page: Page, example_id: str) -> None:
    """The review page, its URL naming the project and the example, shows that example."""
    expect(page).to_have_url(re.compile(rf"[?&]example={re.escape(example_id)}(&|$)"))
    expect(page).to_have_url(re.compile(rf"[?&]project={PROJECT}(&|$)"))
    shown = page.get_by_test_id("review-example-id").or_(
        page.get_by_role("heading", name=re.compile(r"^Example ")).locator("code")
    )
    expect(shown.first).to_have_text(example_id)
    expect(_tiles(page)).to_have_count(0)


def _tiles(page: Page) -> Locator:
    return page.get_by_test_id("gallery-tile")


def _selected(page: Page) -> list[int]:
    """The positions of the selected tiles on the page."""
    states = _tiles(page).evaluate_all("tiles => tiles.map(t => t.ariaSelected === 'true')")
    return [i for i, selected in enumerate(states) if selected]


def _columns(tiles: Locator) -> int:
    """How many tiles one row holds on this screen."""
    tops = tiles.evaluate_all("tiles => tiles.map(t => t.getBoundingClientRect().top)")
    return sum(1 for top in tops if abs(top - tops[0]) < 2)


def _status(page: Page) -> Locator:
    return page.locator(".lt-g-status")


def _reviewer_box(page: Page) -> Locator:
    return page.get_by_role("textbox", name="Reviewer", exact=True)


def _wait_until_idle(page: Page) -> None:
    """Wait until Streamlit has finished the rerun (it runs asynchronously after each key)."""
    expect(page.get_by_test_id("stApp")).to_have_attribute("data-test-script-state", "notRunning")


def _tags(app: RunningApp) -> set[tuple[str, str, str]]:
    """(example id, category, reviewer) of every tag in the sample project."""
    engine = create_engine(app.db_url)
    try:
        with Session(engine) as session:
            return set(
                session.execute(
                    select(Example.example_id, Category.name, Tag.reviewer)
                    .join(Tag.example)
                    .join(Tag.category)
                    .join(Project, Example.project_id == Project.id)
                    .where(Project.name == PROJECT)
                ).all()
            )
    finally:
        engine.dispose()


def _reviewed(app: RunningApp) -> set[tuple[str, str]]:
    """(example id, reviewer) of every reviewed example of the sample project."""
    engine = create_engine(app.db_url)
    try:
        with Session(engine) as session:
            return set(
                session.execute(
                    select(Example.example_id, Review.reviewer)
                    .join(Example, Review.example_pk == Example.id)
                    .join(Project, Example.project_id == Project.id)
                    .where(
                        Project.name == PROJECT,
                        Example.review_state == ReviewState.REVIEWED.value,
                    )
                ).all()
            )
    finally:
        engine.dispose()
