"""A fast typist in Chromium: every key press lands on the example that was on screen.

The reviewer presses a category key then `n`, over and over, with 150 ms (an ordinary typing
pace) or 60 ms between keys. A listener installed before the app loads records, for every
press, the example on screen at that moment; the test then reads the database and asserts that
every tag and every review is on the example that was shown, none lost, none extra.
"""

from __future__ import annotations

import re
import time
from collections import Counter

import pytest
from playwright.sync_api import Browser, Page, expect
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from labeltool.models import Category, Example, Project, Review, ReviewState, Tag
from tests.e2e.conftest import PROJECT, SAMPLE_PAIR, RunningApp

pytestmark = pytest.mark.e2e

#: The sample's category keys.
CATEGORY_OF_KEY = {"1": "blurry", "2": "incorrectly labeled", "3": SAMPLE_PAIR}
#: More than the 20 examples the screen gets ahead of time, so the window must move on while
#: the reviewer types.
EXAMPLES = 30
#: Runs in the page before the app: notes each key press with the example on screen, before
#: the review screen handles it (window capture listeners run in the order they were added).
RECORD_PRESSES = """
window.__presses = [];
window.addEventListener("keydown", (event) => {
  const screen = document.querySelector(".lt-rs");
  window.__presses.push([event.key, screen ? screen.dataset.exampleId || "" : ""]);
}, true);
"""


@pytest.mark.parametrize("gap_ms", [150, 60])
def test_every_tag_lands_on_the_example_on_screen(page: Page, app: RunningApp, gap_ms: int) -> None:
    """A category key then `n`, every `gap_ms`, for 30 examples: 30 tags, each on the example
    shown when its key was pressed, 30 reviews, nothing lost and nothing on another example."""
    page.add_init_script(RECORD_PRESSES)
    _open_review(page, app, reviewer="fast")

    keys = [str(i % 3 + 1) for i in range(EXAMPLES)]
    for key in keys:
        for press in (key, "n"):
            page.keyboard.press(press)
            time.sleep(gap_ms / 1000)
    expect(page.locator(".lt-rs")).to_have_attribute("data-saving", "false", timeout=30_000)

    presses = page.evaluate("window.__presses")
    assert [k for k, _ in presses] == [k for key in keys for k in (key, "n")]
    shown = [example for _, example in presses]
    assert all(shown), "a key was pressed with no example on screen"
    assert shown[0::2] == shown[1::2], "the screen changed between a category key and its n"
    seen = shown[0::2]
    assert len(set(seen)) == EXAMPLES, Counter(seen).most_common(3)

    tags, reviewed = _tags_and_reviews(app, reviewer="fast")
    assert tags == {(e, CATEGORY_OF_KEY[k]) for e, k in zip(seen, keys, strict=True)}
    assert reviewed == set(seen)


def test_two_reviewers_at_once_with_a_filter_on(browser: Browser, app: RunningApp) -> None:
    """Ann (the whole queue) and Bob (one confusion pair's queue) type at the same time, 150 ms
    apart each: every tag is on the example each saw, under each one's name."""
    pages = {}
    for who in ("ann", "bob"):
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        pages[who] = context.new_page()
        pages[who].add_init_script(RECORD_PRESSES)
        _open_review(pages[who], app, reviewer=who)
    bob = pages["bob"]
    pair_box = bob.get_by_test_id("stSidebar").get_by_test_id("stSelectbox")
    pair_box.filter(has_text="Confusion pair").click()
    bob.get_by_role("option", name=re.compile(rf"^{re.escape(SAMPLE_PAIR)} \(")).click()
    expect(bob.locator(".lt-rs-pair")).to_contain_text(SAMPLE_PAIR)
    bob.keyboard.press("Escape")  # leave the select box: keys act on the screen again
    expect(bob.get_by_test_id("stApp")).to_have_attribute("data-test-script-state", "notRunning")

    rounds = 8
    for i in range(rounds):
        for key in (str(i % 2 + 1), "n"):
            for who in ("ann", "bob"):
                pages[who].keyboard.press(key)
                time.sleep(0.075)
    for who, tab in pages.items():
        expect(tab.locator(".lt-rs")).to_have_attribute("data-saving", "false", timeout=30_000)

        presses = tab.evaluate("window.__presses")
        shown = [example for key, example in presses if key in CATEGORY_OF_KEY]
        keys = [key for key, _ in presses if key in CATEGORY_OF_KEY]
        assert len(shown) == rounds and len(set(shown)) == rounds
        tags, reviewed = _tags_and_reviews(app, reviewer=who)
        assert tags == {(e, CATEGORY_OF_KEY[k]) for e, k in zip(shown, keys, strict=True)}, who
        assert reviewed == set(shown), who
    bob_pairs = _pairs(app, _tags_and_reviews(app, reviewer="bob")[1])
    assert bob_pairs == {tuple(SAMPLE_PAIR.split("-as-"))}
    for tab in pages.values():
        tab.context.close()


# --- private helpers -------------------------------------------------------------------


def _open_review(page: Page, app: RunningApp, *, reviewer: str) -> None:
    page.goto(f"{app.url}/?project={PROJECT}&reviewer={reviewer}")
    expect(page.locator('.lt-rs-cat[data-category="blurry"]')).to_be_enabled()
    expect(page.get_by_test_id("stApp")).to_have_attribute("data-test-script-state", "notRunning")


def _tags_and_reviews(app: RunningApp, *, reviewer: str) -> tuple[set, set]:
    """({(example_id, category)}, {example_id reviewed}) of `reviewer`, from the database."""
    engine = create_engine(app.db_url)
    try:
        with Session(engine) as session:
            project_id = session.scalar(select(Project.id).where(Project.name == PROJECT))
            tags = set(
                session.execute(
                    select(Example.example_id, Category.name)
                    .join(Tag.example)
                    .join(Tag.category)
                    .where(Example.project_id == project_id, Tag.reviewer == reviewer)
                ).all()
            )
            reviewed = set(
                session.scalars(
                    select(Example.example_id)
                    .join(Review, Review.example_pk == Example.id)
                    .where(
                        Review.reviewer == reviewer,
                        Example.review_state == ReviewState.REVIEWED.value,
                    )
                )
            )
    finally:
        engine.dispose()
    return tags, reviewed


def _pairs(app: RunningApp, example_ids: set[str]) -> set[tuple[str, str]]:
    engine = create_engine(app.db_url)
    try:
        with Session(engine) as session:
            rows = session.execute(
                select(Example.label, Example.prediction).where(Example.example_id.in_(example_ids))
            ).all()
    finally:
        engine.dispose()
    return {tuple(r) for r in rows}
