"""The review screen's image tools in Chromium, as a reviewer sees them: zoom, panning,
brightness, contrast, auto-contrast, pixelated or smooth enlarging, and 12-megapixel photos
that never keep the reviewer waiting.

Two projects: the sample's small digits (the `app` fixture), and `photo_app`, thirty
4000 x 3000 JPEGs of a faint, low-contrast scene (one file under thirty names, so each is made
afresh but the disk holds one).
"""

from __future__ import annotations

import base64
import csv
import io
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from playwright.sync_api import Page, expect
from sqlalchemy import create_engine, func, select
from sqlalchemy.orm import Session

from labeltool.config import REPO_ROOT
from labeltool.models import Example, Review, ReviewState, Tag
from tests.e2e.conftest import PROJECT, RunningApp, serve

pytestmark = pytest.mark.e2e

REVIEWER = "iris"
#: The photos: 12 megapixels each, more than the window of 21 the screen gets ahead.
PHOTO_SIZE = (4000, 3000)
PHOTOS = 30
WINDOW = 21
#: Every image tool key as Playwright presses it (US layout), with the key the page sees.
TOOL_PRESSES = {
    "Shift+Equal": "+",
    "Minus": "-",
    "BracketRight": "]",
    "BracketLeft": "[",
    "Shift+BracketRight": "}",
    "Shift+BracketLeft": "{",
    "Backslash": "\\",
    "Period": ".",
    "Backquote": "`",
}
#: Runs in the page before the app: what the screen held whenever it changed, and every
#: moment it showed "Preparing the image…" instead of an image.
RECORD_IMAGES = """(() => {
window.__states = []; window.__waited = [];
new MutationObserver(() => {
  const root = document.querySelector(".lt-rs");
  if (!root) return;
  const stage = root.querySelector(".lt-rs-stage");
  const state = {showing: root.dataset.showing || "", held: +root.dataset.imagesHeld || 0,
    preparing: +root.dataset.preparing || 0, drawn: !!stage && !stage.hidden};
  const last = __states[__states.length - 1];
  if (!last || JSON.stringify(last) !== JSON.stringify(state)) __states.push(state);
  if (root.querySelector('.lt-rs-img-problem:not([hidden])[data-state="preparing"]')) {
    __waited.push(state.showing);
  }
}).observe(document, {subtree: true, childList: true, attributes: true});
})();"""


@pytest.fixture
def photo_app(chromium: Path, tmp_path: Path) -> Iterator[RunningApp]:
    """`labeltool serve` on a project "photos" of PHOTOS 12-megapixel JPEGs, all misclassified."""
    folder = tmp_path / "photos"
    predictions = write_photo_project(folder, count=PHOTOS)
    db_url = f"sqlite:///{folder / 'e2e.db'}"
    imported = subprocess.run(
        [sys.executable, "-m", "labeltool", "--db", db_url, "import", str(predictions)]
        + ["--project", "photos"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
    )
    if imported.returncode != 0:
        pytest.fail(f"`labeltool import` of the photos failed:\n{imported.stderr}")
    with serve(db_url, folder) as running:
        yield running


def write_photo_project(folder: Path, *, count: int, size: tuple[int, int] = PHOTO_SIZE) -> Path:
    """`count` photos of `size` in folder/images (hard links to one JPEG of a faint scene:
    brightness 40 to 110 of 255) and predictions.csv naming them, every one an error."""
    images = folder / "images"
    images.mkdir(parents=True, exist_ok=True)
    width, height = size
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    grey = 40 + 70 * (x / width) * (0.5 + 0.5 * np.sin(y / (height / 10)))
    noise = np.random.default_rng(0).normal(0, 4, (height, width, 3))
    pixels = np.stack([grey, grey * 0.92, grey * 0.85], axis=-1) + noise
    source = folder / "scene.jpg"
    Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(source, quality=90)
    rows = []
    for number in range(count):
        name = f"images/photo-{number:03d}.jpg"
        os.link(source, folder / name)
        rows.append(
            {"example_id": f"photo-{number:03d}", "image": name, "label": "cat"}
            | {"prediction": "dog", "confidence": "0.8"}
        )
    predictions = folder / "predictions.csv"
    with predictions.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return predictions


# --- large photos ---------------------------------------------------------------------------


def test_twelve_megapixel_photos_never_keep_the_reviewer_waiting(
    page: Page, photo_app: RunningApp
) -> None:
    """The first photo is on screen while the window's others are still being made; once they
    are here, each `n` shows the next photo at once, never "Preparing the image…"."""
    page.add_init_script(RECORD_IMAGES)
    _open(page, photo_app, project="photos")
    root = page.locator(".lt-rs")
    expect(root).to_have_attribute("data-preparing", "0", timeout=60_000)
    expect(root).to_have_attribute("data-images-held", str(WINDOW))

    states = page.evaluate("window.__states")
    first = next(s for s in states if s["showing"] and s["drawn"])
    assert first["preparing"] > WINDOW // 2, states[:5]
    assert page.evaluate("window.__waited") == []

    seen = [_shown_id(page)]
    for _ in range(5):
        page.keyboard.press("n")
        expect(root).not_to_have_attribute("data-example-id", seen[-1])
        seen.append(_shown_id(page))
        time.sleep(0.3)
    expect(root).to_have_attribute("data-saving", "false")

    assert page.evaluate("window.__waited") == []
    timings = page.evaluate("window.__labeltoolReviewTimings")
    assert len(timings) == 5 and max(timings) < 1000, timings


def test_zooming_a_photo_draws_its_original_pixels_and_pans(
    page: Page, photo_app: RunningApp
) -> None:
    """At fit a photo is its small review image; `+` (100%) draws it 4000 px wide from its
    original, fetched then, in a stage that scrolls; 200% doubles that and keeps the same
    middle; dragging pans; `-` back to fit needs no scrolling."""
    _open(page, photo_app, project="photos")
    stage, img = page.locator(".lt-rs-stage"), page.locator(".lt-rs-img")
    expect(stage).to_have_attribute("data-full", "not needed")
    fit_width = _width(img)
    assert fit_width <= 768 and _natural_width(img) <= 768
    assert not _overflows(stage)

    page.keyboard.press("Shift+Equal")
    expect(stage).to_have_attribute("data-zoom", "100")
    assert _width(img) == PHOTO_SIZE[0]
    assert _overflows(stage)
    expect(stage).to_have_attribute("data-full", "shown", timeout=30_000)
    assert _natural_width(img) == PHOTO_SIZE[0]
    middle = _middle(stage)

    page.keyboard.press("Shift+Equal")
    expect(stage).to_have_attribute("data-zoom", "200")
    assert _width(img) == 2 * PHOTO_SIZE[0]
    assert _middle(stage) == pytest.approx(middle, abs=0.01)

    left, top = stage.evaluate("s => [s.scrollLeft, s.scrollTop]")
    box = stage.bounding_box()
    page.mouse.move(box["x"] + 300, box["y"] + 200)
    page.mouse.down()
    page.mouse.move(box["x"] + 100, box["y"] + 120, steps=5)
    page.mouse.up()
    assert stage.evaluate("s => [s.scrollLeft, s.scrollTop]") == [left + 200, top + 80]

    page.keyboard.press("Minus")
    page.keyboard.press("Minus")
    expect(stage).to_have_attribute("data-zoom", "fit")
    assert _width(img) == fit_width and not _overflows(stage)


def test_auto_contrast_stretches_a_faint_photo_and_says_so(
    page: Page, photo_app: RunningApp
) -> None:
    """`\\` stretches a faint photo's brightness to the full range, framed and labelled as
    adjusted; `\\` again shows it as it is."""
    _open(page, photo_app, project="photos")
    img, banner = page.locator(".lt-rs-img"), page.locator(".lt-rs-adjusted")
    before = _spread(img)
    assert before < 90

    page.keyboard.press("Backslash")
    expect(banner).to_be_visible()
    expect(banner).to_contain_text("auto-contrast")
    expect(page.locator(".lt-rs-stage")).to_have_attribute("data-adjusted", "true")
    expect(img).not_to_have_css("filter", "none")
    assert _spread(img) > 180

    page.keyboard.press("Backslash")
    expect(banner).to_be_hidden()
    expect(img).to_have_css("filter", "none")
    assert _spread(img) == pytest.approx(before, abs=3)


# --- small images -----------------------------------------------------------------------


def test_a_small_digit_fits_crisp_and_zooms_to_its_own_pixels(page: Page, app: RunningApp) -> None:
    """At fit a small digit is enlarged by a whole factor, every pixel a sharp square; `-`
    goes to 200% and 100% (its own pixels, tiny) and no further; `.` smooths the enlarging,
    which the screen then says; `.` again makes it crisp."""
    _open(page, app, project=PROJECT)
    stage, img = page.locator(".lt-rs-stage"), page.locator(".lt-rs-img")
    natural = _natural_width(img)
    assert natural < 384
    factor = _width(img) / natural
    assert factor == int(factor) and _width(img) >= 384
    expect(stage).to_have_attribute("data-rendering", "pixelated")
    assert _mismatch_with_nearest(img, int(factor)) < 0.01

    page.keyboard.press("Minus")
    assert _width(img) == 2 * natural
    page.keyboard.press("Minus")
    assert _width(img) == natural
    page.keyboard.press("Minus")
    expect(page.locator(".lt-rs-flash")).to_contain_text("smallest zoom")
    assert _width(img) == natural
    page.keyboard.press("Shift+Equal")
    page.keyboard.press("Shift+Equal")
    expect(stage).to_have_attribute("data-zoom", "fit")
    assert _width(img) == factor * natural

    page.keyboard.press("Period")
    expect(stage).to_have_attribute("data-rendering", "smooth")
    expect(page.locator(".lt-rs-adjusted")).to_contain_text("smooth enlarging")
    assert _mismatch_with_nearest(img, int(factor)) > 0.05
    page.keyboard.press("Period")
    expect(stage).to_have_attribute("data-rendering", "pixelated")
    expect(page.locator(".lt-rs-adjusted")).to_be_hidden()


def test_brightness_and_contrast_stay_on_for_the_next_example_until_reset(
    page: Page, app: RunningApp
) -> None:
    """`]` `]` `}` brighten and add contrast; the banner says so; after `n`, and after the page
    is opened again, the next image is drawn the same way until `` ` `` resets it."""
    _open(page, app, project=PROJECT)
    img, banner = page.locator(".lt-rs-img"), page.locator(".lt-rs-adjusted")
    expect(banner).to_be_hidden()
    expect(img).to_have_css("filter", "none")

    for key in ("BracketRight", "BracketRight", "Shift+BracketRight"):
        page.keyboard.press(key)
    adjusted = "brightness(1.4142) contrast(1.1892)"
    expect(img).to_have_css("filter", adjusted)
    expect(banner).to_contain_text("brightness 141% · contrast 119%")

    first = _shown_id(page)
    page.keyboard.press("n")
    expect(page.locator(".lt-rs")).not_to_have_attribute("data-example-id", first)
    expect(img).to_have_css("filter", adjusted)
    expect(banner).to_be_visible()
    expect(page.locator(".lt-rs-stage")).to_have_attribute("data-adjusted", "true")

    _wait_until_saved(page)
    page.reload()
    _shown_id(page)
    expect(img).to_have_css("filter", adjusted)
    expect(banner).to_contain_text("brightness 141%")

    page.keyboard.press("Backquote")
    expect(img).to_have_css("filter", "none")
    expect(banner).to_be_hidden()
    page.reload()
    _shown_id(page)
    expect(img).to_have_css("filter", "none")


def test_image_tool_keys_never_tag_save_or_move_on(page: Page, app: RunningApp) -> None:
    """Every image tool key, pressed again and again with a reviewer set, leaves the example on
    screen and sends nothing: no tag, no review, every example still unreviewed. The `?`
    legend lists the keys."""
    _open(page, app, project=PROJECT)
    shown = _shown_id(page)

    for _ in range(3):
        for press in TOOL_PRESSES:
            page.keyboard.press(press)
    expect(page.locator(".lt-rs")).to_have_attribute("data-saving", "false")

    assert _shown_id(page) == shown
    legend = page.locator(".lt-rs-legend-image")
    for key in TOOL_PRESSES.values():
        expect(legend.locator("kbd", has_text=key).first).to_be_attached()
    engine = create_engine(app.db_url)
    try:
        with Session(engine) as session:
            assert session.scalar(select(func.count()).select_from(Tag)) == 0
            assert session.scalar(select(func.count()).select_from(Review)) == 0
            states = set(session.scalars(select(Example.review_state).distinct()))
    finally:
        engine.dispose()
    assert states == {ReviewState.UNREVIEWED.value}


# --- helpers --------------------------------------------------------------------------


def _open(page: Page, app: RunningApp, *, project: str) -> None:
    """The review page of `project` with the reviewer set, its first image drawn and the
    image tools at their defaults (a fresh browser context has no saved settings)."""
    page.goto(f"{app.url}/?project={project}&reviewer={REVIEWER}")
    _shown_id(page)
    expect(page.locator(".lt-rs-stage")).to_be_visible(timeout=30_000)
    showing = page.locator(".lt-rs").get_attribute("data-showing")
    expect(page.locator(".lt-rs-img")).to_have_attribute("data-pk", showing or "")
    page.locator(".lt-rs-img").evaluate("i => i.decode()")


def _shown_id(page: Page) -> str:
    shown = page.get_by_test_id("review-example-id")
    expect(shown).to_be_visible()
    return shown.inner_text()


def _wait_until_saved(page: Page) -> None:
    expect(page.locator(".lt-rs")).to_have_attribute("data-saving", "false")


def _width(img) -> float:
    return img.evaluate("i => i.getBoundingClientRect().width")


def _natural_width(img) -> int:
    return img.evaluate("i => i.naturalWidth")


def _overflows(stage) -> bool:
    return stage.evaluate("s => s.scrollWidth > s.clientWidth + 1")


def _middle(stage) -> tuple[float, float]:
    """The point of the image in the stage's middle, as fractions of its size."""
    return tuple(
        stage.evaluate(
            "s => [(s.scrollLeft + s.clientWidth / 2) / s.scrollWidth,"
            " (s.scrollTop + s.clientHeight / 2) / s.scrollHeight]"
        )
    )


def _screenshot(img) -> Image.Image:
    """The drawn image in grey, clipped to whole pixels (the page may place it at a fraction
    of one; Chromium draws it on whole pixels)."""
    box = img.bounding_box()
    clip = {"x": round(box["x"]), "y": round(box["y"])}
    clip |= {"width": round(box["width"]), "height": round(box["height"])}
    return Image.open(io.BytesIO(img.page.screenshot(clip=clip))).convert("L")


def _spread(img) -> float:
    """The brightness range of the drawn image: its 99th percentile less its 1st."""
    pixels = np.asarray(_screenshot(img), dtype=np.float32)
    low, high = np.percentile(pixels, [1, 99])
    return float(high - low)


def _mismatch_with_nearest(img, factor: int) -> float:
    """The share of drawn pixels more than 2 levels from the image's own pixels enlarged
    `factor` times without smoothing."""
    src = img.evaluate("i => i.src")
    source = Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1]))).convert("L")
    expected = source.resize((source.width * factor, source.height * factor), Image.NEAREST)
    drawn = _screenshot(img)
    assert drawn.size == expected.size, (drawn.size, expected.size)
    difference = np.abs(np.asarray(drawn, np.int16) - np.asarray(expected, np.int16))
    return float((difference > 2).mean())
