"""Every field of the review screen from the keyboard, in Chromium: `/` comments, `=` sets the
corrected label by type-ahead, Esc leaves any text box or sidebar widget and the keys work
again."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from labeltool.models import Category, Example, Tag
from tests.e2e.conftest import PROJECT, RunningApp

pytestmark = pytest.mark.e2e


def test_comment_corrected_label_and_esc_from_the_keyboard(page: Page, app: RunningApp) -> None:
    """`/`, typing and Esc save a comment; `=`, a class's first letters and Enter save the
    corrected label; Esc in the sidebar's Reviewer box returns the keys to the screen, where
    `1` then tags the example on screen; the URL names the example on screen."""
    page.goto(f"{app.url}/?project={PROJECT}&reviewer=kim")
    screen = page.locator(".lt-rs")
    expect(page.locator('.lt-rs-cat[data-category="blurry"]')).to_be_enabled()
    example_id = screen.get_attribute("data-example-id")

    page.keyboard.press("/")
    expect(page.get_by_role("textbox", name="Comment")).to_be_focused()
    page.keyboard.type("stroke cut off; 1 and n typed here are text")
    page.keyboard.press("Escape")
    expect(page.get_by_role("textbox", name="Comment")).not_to_be_focused()

    page.keyboard.press("=")
    expect(page.get_by_role("textbox", name="Corrected label")).to_be_focused()
    page.keyboard.type("7")
    page.keyboard.press("Enter")
    expect(page.locator(".lt-rs-corrected")).to_have_text("7")

    page.get_by_role("textbox", name="Reviewer", exact=True).click()
    page.keyboard.press("Escape")
    page.keyboard.press("1")
    expect(page.locator('.lt-rs-cat[data-category="blurry"]')).to_have_attribute("data-on", "true")
    expect(screen).to_have_attribute("data-saving", "false")
    assert screen.get_attribute("data-example-id") == example_id
    expect(page).to_have_url(re.compile(rf"[?&]example={re.escape(example_id)}(&|$)"))
    page.keyboard.press("n")  # the URL follows the screen, so it can be shared
    expect(screen).not_to_have_attribute("data-example-id", example_id)
    following = screen.get_attribute("data-example-id")
    expect(page).to_have_url(re.compile(rf"[?&]example={re.escape(following)}(&|$)"))

    engine = create_engine(app.db_url)
    try:
        with Session(engine) as session:
            example = session.scalars(select(Example).where(Example.example_id == example_id)).one()
            tags = session.execute(
                select(Category.name, Tag.reviewer)
                .join(Tag.category)
                .where(Tag.example_pk == example.id)
            ).all()
            assert example.comment == "stroke cut off; 1 and n typed here are text"
            assert example.corrected_label == "7"
            assert tags == [("blurry", "kim")]
    finally:
        engine.dispose()


def test_the_key_legend_lists_every_key(page: Page, app: RunningApp) -> None:
    """The legend names each category key, the screen's keys and the reserved ones; `?` hides
    and shows it."""
    page.goto(f"{app.url}/?project={PROJECT}&reviewer=kim")
    legend = page.locator(".lt-rs-legend")
    expect(legend).to_contain_text("1 blurry")
    for words in (
        "n save & next",
        "s skip",
        "p previous",
        "/ comment",
        "= corrected label",
        "Esc leave a text box",
        "r and c are Streamlit's",
    ):
        expect(legend).to_contain_text(words)

    page.keyboard.press("?")
    expect(legend).to_be_hidden()
    page.keyboard.press("?")
    expect(legend).to_be_visible()
