"""Two runs of the sample in Chromium: the sidebar's run picker, a link to an earlier run's
example, and the queue of errors new since the previous run.

The module's own `app` fixture imports both runs of the sample (run 1, then run 2 "blur
augmentation") before the server starts; each test types as a reviewer would and then reads
the database to check which run's rows the tags and reviews landed on.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from playwright.sync_api import Locator, Page, expect
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from labeltool.config import REPO_ROOT, SAMPLE_DIR
from labeltool.models import Category, Example, Review, Run, Tag
from tests.e2e.conftest import PROJECT, SAMPLE_PAIR, RunningApp, serve

pytestmark = pytest.mark.e2e

REVIEWER = "run-reviewer"
#: The sample's category keys: "blurry" is image scope (its tags reach every run's row of the
#: example), the confusion pair (e.g. "7-as-9") error scope (its tags stay on their run).
CATEGORY_OF_KEY = {"1": "blurry", "3": SAMPLE_PAIR}
#: The pause between key presses: an ordinary typing pace.
GAP_SECONDS = 0.15
#: Runs in the page before the app: notes each key press with the row on screen (its pk).
RECORD_PRESSES = """
window.__presses = [];
window.addEventListener("keydown", (event) => {
  const screen = document.querySelector(".lt-rs");
  window.__presses.push([event.key, screen ? screen.dataset.showing || "" : ""]);
}, true);
"""


@pytest.fixture
def app(chromium: Path, tmp_path: Path) -> Iterator[RunningApp]:
    """`labeltool serve` on a fresh SQLite file holding both runs of the sample project."""
    for name in ("predictions.csv", "predictions_run2.csv"):
        if not (SAMPLE_DIR / name).exists():
            pytest.fail(f"sample_data/{name} is missing: run `make sample`")
    folder = tmp_path / "app"
    folder.mkdir()
    db_url = f"sqlite:///{folder / 'e2e.db'}"
    imports = [
        ["predictions.csv", "--run", "1", "--categories", str(SAMPLE_DIR / "categories.csv")],
        ["predictions_run2.csv", "--run", "2", "--note", "blur augmentation"],
    ]
    for file, *options in imports:
        imported = subprocess.run(
            [sys.executable, "-m", "labeltool", "--db", db_url, "import"]
            + [str(SAMPLE_DIR / file), "--project", PROJECT, *options],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
        )
        if imported.returncode != 0:
            pytest.fail(f"`labeltool import` of sample_data/{file} failed:\n{imported.stderr}")
    with serve(db_url, folder) as running:
        yield running


def test_an_earlier_run_picked_in_the_sidebar_is_the_one_reviewed(
    page: Page, app: RunningApp
) -> None:
    """Run 1 picked in the sidebar: ?run=1, run 1's errors on screen, and five tags and
    reviews on run 1's rows; only the image-scope tags reach run 2's rows."""
    rows = _rows(app)
    run1_errors = {pk for pk, (run, _, error) in rows.items() if run == "1" and error}
    page.add_init_script(RECORD_PRESSES)
    page.goto(f"{app.url}/?project={PROJECT}")
    _set_reviewer(page)

    _choose(page, "Run", "1")
    expect(page).to_have_url(re.compile(r"[?&]run=1(&|$)"))
    expect(page.get_by_text("Run 1: an earlier run, not the latest of 2.")).to_be_visible()
    _expect_showing(page, run1_errors)
    shown_id = page.get_by_test_id("review-example-id").inner_text()
    assert shown_id in {rows[pk][1] for pk in run1_errors}, "not an error of run 1"

    keys = ["1", "3", "1", "3", "1"]
    seen = _tag_and_move_on(page, keys)
    assert rows[seen[0]][1] == shown_id
    assert len(set(seen)) == 5 and set(seen) <= run1_errors, seen

    tags, reviews = _tags_and_reviews(app)
    tagged = {(rows[pk][1], CATEGORY_OF_KEY[k]) for pk, k in zip(seen, keys, strict=True)}
    blurry_in_run2 = {(e, c) for e, c in tagged if c == "blurry" and ("2", e) in _status(rows)}
    assert blurry_in_run2, "the sample's run 2 lacks the examples tagged in run 1"
    assert reviews == sorted(("1", rows[pk][1]) for pk in seen)
    assert tags == {("1", e, c) for e, c in tagged} | {("2", e, c) for e, c in blurry_in_run2}


def test_a_link_to_an_earlier_runs_example_tags_that_runs_row(page: Page, app: RunningApp) -> None:
    """?run=1&example=ID of an error that run 2 gets right shows it, and its tag is on run 1's
    row (an error-scope tag: nothing on run 2's)."""
    rows = _rows(app)
    status = _status(rows)
    pk = min(
        pk
        for pk, (run, e, error) in rows.items()
        if run == "1" and error and not status.get(("2", e), True)
    )
    example_id = rows[pk][1]

    page.add_init_script(RECORD_PRESSES)
    page.goto(f"{app.url}/?project={PROJECT}&run=1&example={example_id}")
    _set_reviewer(page)
    _expect_showing(page, {pk})
    expect(page).to_have_url(re.compile(r"[?&]run=1(&|$)"))
    expect(page.get_by_test_id("review-example-id")).to_have_text(example_id)

    assert _tag_and_move_on(page, ["3"]) == [pk]
    tags, reviews = _tags_and_reviews(app)
    assert tags == {("1", example_id, SAMPLE_PAIR)}
    assert reviews == [("1", example_id)]


def test_the_queue_of_errors_new_since_the_previous_run(page: Page, app: RunningApp) -> None:
    """Run 2 with "new: right in run 1": the three examples reviewed are run 2's errors that
    run 1 got right."""
    rows = _rows(app)
    status = _status(rows)
    new_errors = {
        pk
        for pk, (run, e, error) in rows.items()
        if run == "2" and error and not status.get(("1", e), True)
    }
    assert new_errors
    page.add_init_script(RECORD_PRESSES)
    page.goto(f"{app.url}/?project={PROJECT}")
    _set_reviewer(page)

    _choose(page, "Against the previous run", "new: right in run 1")
    expect(page.get_by_text("Queue: its errors that run 1 got right.")).to_be_visible()
    _expect_showing(page, new_errors)

    seen = _tag_and_move_on(page, ["3", "3", "3"])
    assert len(set(seen)) == 3 and set(seen) <= new_errors, seen
    tags, reviews = _tags_and_reviews(app)
    assert tags == {("2", rows[pk][1], SAMPLE_PAIR) for pk in seen}
    assert reviews == sorted(("2", rows[pk][1]) for pk in seen)


# --- private helpers -------------------------------------------------------------------


def _set_reviewer(page: Page) -> None:
    """Type the reviewer's name in the sidebar; Esc leaves the box so keys act on the screen
    (the review screen handles Esc, so it must be on the page first)."""
    category = page.locator('.lt-rs-cat[data-category="blurry"]')
    expect(category).to_be_visible()
    _wait_until_idle(page)
    _live(page).get_by_role("textbox", name="Reviewer", exact=True).click()
    page.keyboard.type(REVIEWER)
    page.keyboard.press("Escape")
    expect(category).to_be_enabled()
    _wait_until_idle(page)


def _choose(page: Page, label: str, option: str) -> None:
    """Pick `option` in the sidebar's select box called `label`, then leave the box."""
    box = page.get_by_test_id("stSidebar").get_by_role("combobox", name=label, exact=True)
    # Scrolled first: a scroll while its list is open closes the list again.
    box.scroll_into_view_if_needed()
    box.click()
    page.get_by_role("option", name=option, exact=True).click()
    page.keyboard.press("Escape")
    _wait_until_idle(page)


def _expect_showing(page: Page, pks: set[int]) -> None:
    """Wait until the review screen shows one of the rows `pks`, with nothing left to save."""
    pattern = re.compile("^(" + "|".join(str(pk) for pk in sorted(pks)) + ")$")
    screen = page.locator(".lt-rs")
    expect(screen).to_have_attribute("data-showing", pattern)
    expect(screen).to_have_attribute("data-saving", "false")
    _wait_until_idle(page)


def _tag_and_move_on(page: Page, keys: list[str]) -> list[int]:
    """Each key then `n`, 150 ms apart; the rows on screen when the category keys were pressed.
    Waits until the server has saved every press."""
    page.evaluate("window.__presses = []")
    for key in keys:
        for press in (key, "n"):
            page.keyboard.press(press)
            time.sleep(GAP_SECONDS)
    expect(page.locator(".lt-rs")).to_have_attribute("data-saving", "false")
    presses = page.evaluate("window.__presses")
    assert [k for k, _ in presses] == [k for key in keys for k in (key, "n")]
    shown = [int(pk) for _, pk in presses]
    assert shown[0::2] == shown[1::2], "the screen changed between a category key and its n"
    return shown[0::2]


def _live(page: Page) -> Locator:
    """The page's current elements (not the previous rerun's stale ones)."""
    return page.locator('[data-testid="stElementContainer"]:not([data-stale="true"])')


def _wait_until_idle(page: Page) -> None:
    expect(page.get_by_test_id("stApp")).to_have_attribute("data-test-script-state", "notRunning")


@contextmanager
def _session(app: RunningApp) -> Iterator[Session]:
    engine = create_engine(app.db_url)
    try:
        with Session(engine) as session:
            yield session
    finally:
        engine.dispose()


def _rows(app: RunningApp) -> dict[int, tuple[str, str, bool]]:
    """{pk: (run name, example id, misclassified)} of the project's dev rows."""
    with _session(app) as session:
        found = session.execute(
            select(Example.id, Run.name, Example.example_id, Example.is_error)
            .join(Run, Example.run_id == Run.id)
            .where(Example.split == "dev")
        ).all()
    return {pk: (run, example_id, error) for pk, run, example_id, error in found}


def _status(rows: dict[int, tuple[str, str, bool]]) -> dict[tuple[str, str], bool]:
    """{(run name, example id): misclassified} of the rows `_rows` read."""
    return {(run, example_id): error for run, example_id, error in rows.values()}


def _tags_and_reviews(app: RunningApp) -> tuple[set, list]:
    """({(run, example id, category)}, sorted [(run, example id)]) of every tag and review,
    all of them the reviewer's."""
    with _session(app) as session:
        tags = session.execute(
            select(Run.name, Example.example_id, Category.name, Tag.reviewer)
            .join(Tag.example)
            .join(Tag.category)
            .join(Run, Example.run_id == Run.id)
        ).all()
        reviews = session.execute(
            select(Run.name, Example.example_id, Review.reviewer)
            .join(Example, Review.example_pk == Example.id)
            .join(Run, Example.run_id == Run.id)
        ).all()
    assert {row[-1] for row in [*tags, *reviews]} <= {REVIEWER}
    return {row[:3] for row in tags}, sorted(row[:2] for row in reviews)
