"""A project whose images live in S3 (moto's server on 127.0.0.1), reviewed in Chromium: the
image on the review screen comes from the bucket, and a key press tags the example."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect
from sqlalchemy import create_engine, select, update
from sqlalchemy.orm import Session

from labeltool.config import REPO_ROOT, SAMPLE_DIR
from labeltool.models import Category, Example, Project, Tag
from tests.e2e.conftest import PAGE_TIMEOUT_MS, PROJECT, RunningApp, serve
from tests.test_remote_images import Requests, s3_server, upload

pytestmark = pytest.mark.e2e

BUCKET = "review-images"
ROOT = f"s3://{BUCKET}/digits"
REVIEWER = "s3-reviewer"


@pytest.fixture
def s3_app(chromium: Path, tmp_path: Path) -> Iterator[tuple[RunningApp, Requests]]:
    """`labeltool serve` on the sample project, its images root s3://review-images/digits in
    moto's S3 (which holds every sample image), and the S3 request log."""
    import subprocess
    import sys

    with s3_server() as (_endpoint, requests):
        upload(
            {
                f"digits/images/{path.name}": path.read_bytes()
                for path in (SAMPLE_DIR / "images").glob("*.png")
            },
            bucket=BUCKET,
        )
        folder = tmp_path / "app"
        folder.mkdir()
        db_url = f"sqlite:///{folder / 'e2e.db'}"
        # The sample is imported from its folder, then pointed at the bucket: until the
        # importer takes a URL root (`--images-root s3://…`), this is how a project gets one.
        imported = subprocess.run(
            [sys.executable, "-m", "labeltool", "--db", db_url, "import"]
            + [str(SAMPLE_DIR / "predictions.csv"), "--project", PROJECT]
            + ["--categories", str(SAMPLE_DIR / "categories.csv")],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
        )
        if imported.returncode != 0:
            pytest.fail(f"`labeltool import` of the sample failed:\n{imported.stderr}")
        engine = create_engine(db_url)
        with Session(engine) as session, session.begin():
            session.execute(update(Project).values(images_root=ROOT))
        engine.dispose()
        requests.clear()
        with serve(db_url, folder) as running:
            yield running, requests


@pytest.fixture
def tab(browser: Browser) -> Iterator[Page]:
    expect.set_options(timeout=PAGE_TIMEOUT_MS)
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(PAGE_TIMEOUT_MS)
    yield page
    context.close()


def test_a_project_with_its_images_in_s3_is_reviewed_in_the_browser(
    tab: Page, s3_app: tuple[RunningApp, Requests]
) -> None:
    """The review screen shows the example's image, read from the S3 bucket (the browser
    decodes it: naturalWidth > 0), and the category key `1` tags that example."""
    app, requests = s3_app
    tab.goto(f"{app.url}/?project={PROJECT}&reviewer={REVIEWER}")
    blurry = tab.locator('.lt-rs-cat[data-category="blurry"]')
    expect(blurry).to_be_enabled()
    expect(tab.get_by_test_id("stApp")).to_have_attribute("data-test-script-state", "notRunning")

    image = tab.locator("img.lt-rs-img")
    expect(image).to_be_visible()
    tab.wait_for_function(
        "el => el.complete && el.naturalWidth > 0", arg=image.element_handle(), timeout=30_000
    )
    shown = tab.get_by_test_id("review-example-id").inner_text()
    assert any(path.startswith(f"/{BUCKET}/digits/images/") for path in requests.paths("GET")), (
        "the image did not come from the bucket"
    )

    tab.keyboard.press("1")
    expect(tab.locator('.lt-rs-cat[data-category="blurry"][data-on="true"]')).to_be_visible()
    expect(tab.locator(".lt-rs")).to_have_attribute("data-saving", "false")

    engine = create_engine(app.db_url)
    try:
        with Session(engine) as session:
            tags = set(
                session.execute(
                    select(Example.example_id, Category.name)
                    .join(Tag.example)
                    .join(Tag.category)
                    .where(Tag.reviewer == REVIEWER)
                ).all()
            )
    finally:
        engine.dispose()
    assert tags == {(shown, "blurry")}
