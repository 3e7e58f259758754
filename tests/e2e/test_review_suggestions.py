"""Suggestions in Chromium: a suggested category shows pre-marked with its reason and is saved
only when the reviewer accepts it (Enter, or a click on it), on the example that was on screen;
Backspace (or its ×) dismisses it for that reviewer. "More like this" (m, or its button) opens
the Gallery on the example on screen once the keys before it are saved.

Signals are stored the way `labeltool analyze` stores them, straight into the database the
app serves, before the page opens; the test then reads the database itself.
"""

from __future__ import annotations

import re
import time
from urllib.parse import parse_qs, urlparse

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from labeltool.config import DEFAULT_SPLIT
from labeltool.models import Category, Dismissal, Example, Project, Signal, Tag
from tests.e2e.conftest import PROJECT, RunningApp

pytestmark = pytest.mark.e2e

REVIEWER = "suggested"
#: User text with markup in it: it must show as these characters, never as HTML.
BLUR_REASON = "blur 3.2: sharper than <b>only</b> 2% of the project's images"
LABEL_REASON = "the model gives 0.97 to another class"


def test_accepting_the_suggestions_tags_the_example_on_screen_only(
    page: Page, app: RunningApp
) -> None:
    """With every error suggested "blurry" and "incorrectly labeled", the screen shows both
    pre-marked and not on, with their reasons as text; Enter then `n`, 150 ms apart, saves both
    (suggested=True) on the example that was shown, and nothing on the next one."""
    _store_signals(app)
    page.goto(f"{app.url}/?project={PROJECT}&reviewer={REVIEWER}")
    blurry = page.locator('.lt-rs-cat[data-category="blurry"]')
    expect(blurry).to_be_enabled()
    expect(page.get_by_test_id("stApp")).to_have_attribute("data-test-script-state", "notRunning")
    expect(blurry).to_have_attribute("data-suggested", "true")
    expect(blurry).to_have_attribute("data-on", "false")
    expect(blurry.locator(".lt-rs-badge")).to_have_text("suggested")
    expect(page.locator('.lt-rs-reason[data-category="blurry"]')).to_have_text(BLUR_REASON)
    expect(page.locator('.lt-rs-reason[data-category="incorrectly labeled"]')).to_have_text(
        LABEL_REASON
    )
    expect(page.locator(".lt-rs-legend")).to_contain_text("Enter accept the suggestions")
    shown = page.locator(".lt-rs").get_attribute("data-example-id")
    assert _tags(app) == set(), "showing a suggestion saved a tag"

    for key in ("Enter", "n"):
        page.keyboard.press(key)
        time.sleep(0.15)
    expect(page.locator(".lt-rs")).to_have_attribute("data-saving", "false", timeout=30_000)
    following = page.locator(".lt-rs").get_attribute("data-example-id")

    assert following and following != shown
    assert _tags(app) == {
        (shown, "blurry", True),
        (shown, "incorrectly labeled", True),
    }
    # The next example is shown with its own suggestions, not on.
    expect(blurry).to_have_attribute("data-suggested", "true")


def test_backspace_dismisses_on_the_example_on_screen_and_enter_accepts_on_the_next(
    page: Page, app: RunningApp
) -> None:
    """Backspace on one example, `n`, then Enter on the next, 150 ms apart: the first example
    has both suggestions dismissed for the reviewer and no tag, the second has both accepted;
    going back, the first shows no suggestion any more."""
    _store_signals(app)
    _open(page, app)
    expect(page.locator(".lt-rs-suggest-hint")).to_contain_text(
        "Enter accepts, Backspace dismisses"
    )
    expect(page.locator(".lt-rs-legend")).to_contain_text("Backspace dismiss the suggestions")
    first = page.locator(".lt-rs").get_attribute("data-example-id")

    for key in ("Backspace", "n", "Enter"):
        page.keyboard.press(key)
        time.sleep(0.15)
    expect(page.locator(".lt-rs")).to_have_attribute("data-saving", "false", timeout=30_000)
    second = page.locator(".lt-rs").get_attribute("data-example-id")

    assert second and second != first
    assert _dismissals(app) == {(first, "blurry"), (first, "likely label error")}
    assert _tags(app) == {(second, "blurry", True), (second, "incorrectly labeled", True)}
    page.keyboard.press("p")
    expect(page.locator(".lt-rs")).to_have_attribute("data-example-id", first)
    expect(page.locator(".lt-rs-cat[data-suggested='true']")).to_have_count(0)
    expect(page.locator(".lt-rs-reason")).to_have_count(0)


def test_backspace_in_the_comment_edits_the_text_and_dismisses_nothing(
    page: Page, app: RunningApp
) -> None:
    """Inside the comment box Backspace deletes a character, as anywhere else: nothing is
    dismissed, and the comment is saved as edited."""
    _store_signals(app)
    _open(page, app)
    shown = page.locator(".lt-rs").get_attribute("data-example-id")

    page.keyboard.press("/")
    page.keyboard.type("dark")
    page.keyboard.press("Backspace")
    expect(page.locator(".lt-rs-comment")).to_have_value("dar")
    page.keyboard.press("Escape")
    expect(page.locator(".lt-rs")).to_have_attribute("data-saving", "false", timeout=30_000)

    assert _dismissals(app) == set()
    assert _comment(app, shown) == "dar"
    expect(page.locator('.lt-rs-cat[data-category="blurry"]')).to_have_attribute(
        "data-suggested", "true"
    )


def test_a_click_accepts_one_suggestion_and_its_cross_dismisses_another(
    page: Page, app: RunningApp
) -> None:
    """A click on a dashed category tags it as an accepted suggestion; the × beside another
    dismisses only that one, tagging nothing."""
    _store_signals(app)
    _open(page, app)
    shown = page.locator(".lt-rs").get_attribute("data-example-id")

    page.locator('.lt-rs-cat[data-category="blurry"]').click()
    expect(page.locator('.lt-rs-cat[data-category="blurry"]')).to_have_attribute("data-on", "true")
    page.locator('.lt-rs-dismiss[data-category="incorrectly labeled"]').click()
    mislabeled = page.locator('.lt-rs-cat[data-category="incorrectly labeled"]')
    expect(mislabeled).to_have_attribute("data-suggested", "false")
    expect(page.locator(".lt-rs")).to_have_attribute("data-saving", "false", timeout=30_000)

    assert _tags(app) == {(shown, "blurry", True)}
    assert _dismissals(app) == {(shown, "likely label error")}
    expect(mislabeled).to_have_attribute("data-on", "false")


@pytest.mark.parametrize("how", ["key", "button"])
def test_more_like_this_opens_the_gallery_on_the_example_after_saving_the_keys(
    page: Page, app: RunningApp, how: str
) -> None:
    """A category key and then "more like this" (m, or its button), 150 ms apart: the page
    lands on the Gallery with ?similar= naming the example that was on screen, and the tag
    pressed just before is saved on it."""
    _open(page, app)
    shown = page.locator(".lt-rs").get_attribute("data-example-id")

    page.keyboard.press("1")
    time.sleep(0.15)
    if how == "key":
        page.keyboard.press("m")
    else:
        page.get_by_test_id("review-more-like-this").click()

    expect(page).to_have_url(re.compile(r"/gallery\?"), timeout=30_000)
    query = parse_qs(urlparse(page.url).query)
    assert query["similar"] == [shown]
    assert query["project"] == [PROJECT]
    assert _tags(app) == {(shown, "blurry", False)}


# --- private helpers -------------------------------------------------------------------


def _open(page: Page, app: RunningApp) -> None:
    """The review page for REVIEWER, drawn and idle."""
    page.goto(f"{app.url}/?project={PROJECT}&reviewer={REVIEWER}")
    expect(page.locator('.lt-rs-cat[data-category="blurry"]')).to_be_enabled()
    expect(page.get_by_test_id("stApp")).to_have_attribute("data-test-script-state", "notRunning")


def _store_signals(app: RunningApp) -> None:
    """A blurry and a likely-label-error signal on every dev error of the sample project."""
    engine = create_engine(app.db_url)
    try:
        with Session(engine) as session, session.begin():
            project_id = session.scalar(select(Project.id).where(Project.name == PROJECT))
            errors = session.scalars(
                select(Example.id).where(
                    Example.project_id == project_id,
                    Example.split == DEFAULT_SPLIT,
                    Example.is_error.is_(True),
                )
            ).all()
            for pk in errors:
                session.add(Signal(example_pk=pk, kind="blurry", score=0.9, reason=BLUR_REASON))
                session.add(
                    Signal(example_pk=pk, kind="likely label error", score=0.8, reason=LABEL_REASON)
                )
    finally:
        engine.dispose()


def _tags(app: RunningApp) -> set[tuple[str, str, bool]]:
    """{(example_id, category, suggested)} of the reviewer's tags, from the database."""
    engine = create_engine(app.db_url)
    try:
        with Session(engine) as session:
            return {
                tuple(row)
                for row in session.execute(
                    select(Example.example_id, Category.name, Tag.suggested)
                    .join(Tag.example)
                    .join(Tag.category)
                    .where(Tag.reviewer == REVIEWER)
                )
            }
    finally:
        engine.dispose()


def _dismissals(app: RunningApp) -> set[tuple[str, str]]:
    """{(example_id, kind)} of the reviewer's dismissed suggestions, from the database."""
    engine = create_engine(app.db_url)
    try:
        with Session(engine) as session:
            return {
                tuple(row)
                for row in session.execute(
                    select(Example.example_id, Dismissal.kind)
                    .join(Example, Example.id == Dismissal.example_pk)
                    .where(Dismissal.reviewer == REVIEWER)
                )
            }
    finally:
        engine.dispose()


def _comment(app: RunningApp, example_id: str) -> str:
    engine = create_engine(app.db_url)
    try:
        with Session(engine) as session:
            return session.scalar(select(Example.comment).where(Example.example_id == example_id))
    finally:
        engine.dispose()
