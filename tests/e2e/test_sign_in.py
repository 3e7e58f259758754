"""Sign-in in Chromium: a real OpenID Connect flow through Streamlit's st.login against a mock
provider on 127.0.0.1, and the tag the signed-in reviewer then makes carries their identity."""

from __future__ import annotations

import json
import urllib.request
from urllib.parse import quote

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from labeltool.models import Category, Example, Tag
from tests.e2e.conftest import PROJECT, RunningApp

pytestmark = pytest.mark.e2e

EMAIL = "ann@example.org"


def test_the_signed_in_identity_is_on_the_tag(
    signed_in_page: Page, signed_in_app: RunningApp, oidc_provider: str
) -> None:
    """With sign-in configured the app shows only a sign-in screen; signing in through the
    provider's form shows the identity in the sidebar (no Reviewer box), and the tag made
    with the key 1 then `n` is recorded for that identity. Signing out shows the sign-in
    screen again."""
    page = signed_in_page
    _provider_knows(oidc_provider, EMAIL, {"email": EMAIL, "name": "Ann"})

    page.goto(f"{signed_in_app.url}/gallery?project={PROJECT}")  # any page: the same screen
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    expect(page.get_by_text("Page not found")).to_have_count(0)
    expect(page.get_by_test_id("review-example-id")).to_have_count(0)
    page.get_by_role("button", name="Sign in").click()

    # The provider's own login form: the subject to sign in as.
    page.get_by_placeholder("sub").fill(EMAIL)
    page.get_by_role("button", name="Authorize").click()

    expect(page.get_by_test_id("stSidebar")).to_contain_text(f"Signed in as {EMAIL}")
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()
    expect(page.get_by_role("textbox", name="Reviewer", exact=True)).to_have_count(0)
    shown = page.get_by_test_id("review-example-id")
    expect(shown).to_be_visible()
    example_id = shown.inner_text()
    expect(page.locator('.lt-rs-cat[data-category="blurry"]')).to_be_enabled()
    _wait_until_idle(page)

    page.keyboard.press("1")
    expect(page.locator('.lt-rs-cat[data-category="blurry"][data-on="true"]')).to_be_visible()
    page.keyboard.press("n")
    expect(page.locator(".lt-rs")).not_to_have_attribute("data-example-id", example_id)
    expect(page.locator(".lt-rs")).to_have_attribute("data-saving", "false")

    assert _tags(signed_in_app.db_url) == {(example_id, "blurry", EMAIL)}

    page.get_by_role("button", name="Sign out").click()
    # The provider ends its session too (OpenID's RP-initiated logout), then sends us back.
    page.get_by_role("button", name="End session").click()
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()
    expect(page.get_by_test_id("review-example-id")).to_have_count(0)


# --- helpers -------------------------------------------------------------------------------


def _provider_knows(provider: str, subject: str, claims: dict) -> None:
    """Tell the mock provider the claims it signs for `subject` (its PUT /users/SUBJECT)."""
    request = urllib.request.Request(
        f"{provider}/users/{quote(subject)}",
        data=json.dumps(claims).encode(),
        headers={"Content-Type": "application/json"},
        method="PUT",
    )
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(request, timeout=10) as response:
        assert response.status == 204


def _tags(db_url: str) -> set[tuple[str, str, str]]:
    """(example id, category, reviewer) of every tag in the database."""
    engine = create_engine(db_url)
    try:
        with Session(engine) as session:
            rows = session.execute(
                select(Example.example_id, Category.name, Tag.reviewer)
                .join(Example, Example.id == Tag.example_pk)
                .join(Category, Category.id == Tag.category_id)
            )
            return {tuple(row) for row in rows}
    finally:
        engine.dispose()


def _wait_until_idle(page: Page) -> None:
    """Wait until Streamlit has finished the rerun."""
    expect(page.get_by_test_id("stApp")).to_have_attribute("data-test-script-state", "notRunning")
