"""Suggestions in Chromium: a suggested category shows pre-marked with its reason and is saved
only when the reviewer accepts it (Enter), on the example that was on screen.

Signals are stored the way `labeltool analyze` stores them, straight into the database the
app serves, before the page opens; the test then reads the database itself.
"""

from __future__ import annotations

import time

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from labeltool.config import DEFAULT_SPLIT
from labeltool.models import Category, Example, Project, Signal, Tag
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


# --- private helpers -------------------------------------------------------------------


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
