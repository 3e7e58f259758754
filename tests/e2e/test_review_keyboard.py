"""A reviewer with no mouse: the review loop and adding a category mid-review, in Chromium.

Every action is a key press (Tab moves the focus, Enter follows a link or submits a form,
the category keys and `n` tag and move on); the test then reads the database itself.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Locator, Page, expect
from sqlalchemy import create_engine, select, update
from sqlalchemy.orm import Session

from labeltool.models import Category, Example, Project, Review, ReviewState, Tag
from tests.e2e.conftest import PROJECT, SAMPLE_PAIR, RunningApp

pytestmark = pytest.mark.e2e

REVIEWER = "e2e-reviewer"
NEW_CATEGORY = "instagram filter"
NEW_KEY = "4"
#: The keys of sample_data/categories.csv, and the one the test adds.
CATEGORY_OF_KEY = {
    "1": "blurry",
    "2": "incorrectly labeled",
    "3": SAMPLE_PAIR,
    NEW_KEY: NEW_CATEGORY,
}
#: Keys pressed on each of the first five examples; pressing a key twice takes the tag off.
KEYS_BEFORE_NEW_CATEGORY = [
    ["1"],
    ["1", "3"],
    ["2"],
    ["3", "1", "1"],
    ["3", "1"],
]
#: How many Tab presses may be needed to reach any control (the focus wraps round).
MOST_TABS = 100


def test_keyboard_only_review_with_a_category_added_mid_review(page: Page, app: RunningApp) -> None:
    """Tags made with category keys and `n` are saved for the reviewer; a category added
    from the keyboard mid-review puts the earlier examples in "needs re-review" and its key
    tags the next example."""
    page.goto(f"{app.url}/?project={PROJECT}")
    _shown_id(page)
    _wait_until_idle(page)

    # The reviewer's name: typed, then Esc leaves the box (keys do nothing inside a text box).
    _tab_to(page, _live(page).get_by_role("textbox", name="Reviewer", exact=True))
    page.keyboard.type(REVIEWER)
    page.keyboard.press("Escape")  # leaves the box; the keys act on the screen again
    expect(_category_button(page, "blurry", on=False)).to_be_enabled()
    _wait_until_idle(page)

    expected_tags: set[tuple[str, str]] = set()
    first_five = []
    for keys in KEYS_BEFORE_NEW_CATEGORY:
        example_id, tagged = _tag_and_move_on(page, keys)
        first_five.append(example_id)
        expected_tags |= {(example_id, name) for name in tagged}
    _wait_until_saved(page)

    # Mid-review: the Categories page, through the sidebar link, and its add form.
    _tab_to(page, _sidebar_link(page, "Categories"))
    page.keyboard.press("Enter")
    expect(_live(page).get_by_role("heading", name="Error categories")).to_be_visible()
    _wait_until_idle(page)
    _tab_to(page, _live(page).get_by_role("textbox", name="Name", exact=True))
    page.keyboard.type(NEW_CATEGORY)
    _tab_to(page, _live(page).get_by_role("textbox", name="Key", exact=True))
    page.keyboard.type(NEW_KEY)
    page.keyboard.press("Enter")  # submits the form
    expect(_live(page).get_by_text(f"Added '{NEW_CATEGORY}' (key {NEW_KEY})")).to_contain_text(
        "5 reviewed examples now need re-review"
    )
    _wait_until_idle(page)

    _tab_to(page, _sidebar_link(page, "Review"))
    page.keyboard.press("Enter")
    expect(_category_button(page, NEW_CATEGORY, on=False)).to_be_enabled()
    expect(_live(page).get_by_text("5 reviewed examples need re-review")).to_be_visible()
    _wait_until_idle(page)
    sixth, tagged = _tag_and_move_on(page, [NEW_KEY])
    expected_tags |= {(sixth, name) for name in tagged}
    _wait_until_saved(page)

    assert len({*first_five, sixth}) == 6, "the queue showed an example twice"
    assert {name for _, name in expected_tags} == set(CATEGORY_OF_KEY.values())
    engine = create_engine(app.db_url)
    try:
        with Session(engine) as session:
            project_id = session.scalar(select(Project.id).where(Project.name == PROJECT))
            tags = set(
                session.execute(
                    select(Example.example_id, Category.name, Tag.reviewer)
                    .join(Tag.example)
                    .join(Tag.category)
                    .where(Example.project_id == project_id)
                ).all()
            )
            states = dict(
                session.execute(
                    select(Example.example_id, Example.review_state).where(
                        Example.project_id == project_id,
                        Example.review_state != ReviewState.UNREVIEWED.value,
                    )
                ).all()
            )
            reviews = set(
                session.execute(
                    select(Example.example_id, Review.reviewer).join(
                        Example, Review.example_pk == Example.id
                    )
                ).all()
            )
            new_category = session.scalar(
                select(Category).where(
                    Category.project_id == project_id, Category.name == NEW_CATEGORY
                )
            )
            relabelled = session.execute(
                select(Example.example_id, Example.corrected_label, Example.prediction).where(
                    Example.project_id == project_id, Example.corrected_label.is_not(None)
                )
            ).all()
    finally:
        engine.dispose()

    assert tags == {(example_id, name, REVIEWER) for example_id, name in expected_tags}
    assert states == {
        **{example_id: ReviewState.NEEDS_REREVIEW.value for example_id in first_five},
        sixth: ReviewState.REVIEWED.value,
    }
    assert reviews == {(example_id, REVIEWER) for example_id in [*first_five, sixth]}
    assert new_category is not None
    assert (new_category.shortcut, new_category.archived) == (NEW_KEY, False)
    # Tagging "incorrectly labeled" prefills the corrected label with the model's guess.
    assert [(example_id, label == guess) for example_id, label, guess in relabelled] == [
        (first_five[2], True)
    ]


def test_a_category_on_the_more_like_this_key_keeps_it(page: Page, app: RunningApp) -> None:
    """In a project whose category already has the key m (from before "more like this" had
    it), m still toggles that category and the page stays; the button still opens the
    Gallery, and says no key."""
    engine = create_engine(app.db_url)
    try:
        with Session(engine) as session, session.begin():
            project_id = session.scalar(select(Project.id).where(Project.name == PROJECT))
            session.execute(
                update(Category)
                .where(Category.project_id == project_id, Category.name == "blurry")
                .values(shortcut="m")
            )
    finally:
        engine.dispose()
    page.goto(f"{app.url}/?project={PROJECT}&reviewer={REVIEWER}")
    expect(_category_button(page, "blurry", on=False)).to_be_enabled()
    _wait_until_idle(page)
    shown = _shown_id(page)

    page.keyboard.press("m")
    expect(_category_button(page, "blurry", on=True)).to_be_visible()
    _wait_until_saved(page)
    more = page.get_by_test_id("review-more-like-this")
    expect(more).to_have_text("More like this")
    assert "/gallery" not in page.url
    more.click()
    expect(page).to_have_url(re.compile(rf"/gallery\?.*similar={re.escape(shown)}"))


# --- private helpers -------------------------------------------------------------------


def _tag_and_move_on(page: Page, keys: list[str]) -> tuple[str, set[str]]:
    """Press each category key, then `n`; return the example's id and the categories left on."""
    example_id = _shown_id(page)
    on: set[str] = set()
    for key in keys:
        name = CATEGORY_OF_KEY[key]
        on ^= {name}
        page.keyboard.press(key)
        expect(_category_button(page, name, on=name in on)).to_be_visible()
    page.keyboard.press("n")
    expect(page.locator(".lt-rs")).not_to_have_attribute("data-example-id", example_id)
    return example_id, on


def _shown_id(page: Page) -> str:
    """The id of the example the review screen shows."""
    shown = page.get_by_test_id("review-example-id")
    expect(shown).to_be_visible()
    return shown.inner_text()


def _category_button(page: Page, name: str, *, on: bool) -> Locator:
    """The category's toggle on the review screen, on (tagged by this reviewer) or off."""
    return page.locator(f'.lt-rs-cat[data-category="{name}"][data-on="{str(on).lower()}"]')


def _wait_until_saved(page: Page) -> None:
    """Wait until the server has acknowledged every key press."""
    expect(page.locator(".lt-rs")).to_have_attribute("data-saving", "false")


def _live(page: Page) -> Locator:
    """The page's current elements: while a rerun draws, Streamlit keeps the last run's
    elements on screen as "stale" ones, so a button can briefly be there twice."""
    return page.locator('[data-testid="stElementContainer"]:not([data-stale="true"])')


def _sidebar_link(page: Page, title: str) -> Locator:
    return page.locator('[data-testid="stSidebarNavLink"]', has_text=title)


def _wait_until_idle(page: Page) -> None:
    """Wait until Streamlit has finished the rerun (it runs asynchronously after each key)."""
    expect(page.get_by_test_id("stApp")).to_have_attribute("data-test-script-state", "notRunning")


def _tab_to(page: Page, target: Locator) -> None:
    """Press Tab until `target` has the keyboard focus, as a person without a mouse would."""
    target.wait_for()
    for _ in range(MOST_TABS):
        if target.evaluate("element => element === document.activeElement"):
            return
        page.keyboard.press("Tab")
    raise AssertionError(f"{MOST_TABS} Tab presses never reached {target}")
