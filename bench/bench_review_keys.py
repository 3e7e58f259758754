"""Benchmark the review screen's `n` in Chromium on a project of 100,000 errors (issue 13,
point 6): milliseconds from the key press to the next example's image painted, beside a bare
Streamlit button's round trip measured in the same run, and whether any wrong or stale
example was shown.

The project is real: a generated predictions CSV (ten classes, an eleventh of the rows
classified right) whose images are 50 small PNGs shared by all rows, imported with
`labeltool import` into a SQLite file in a temp dir and served by `labeltool serve`. A
reviewer presses `1` (blurry) then `n`, one key every `--gap-ms` on a fixed clock. The review
screen itself records each `n` as keydown timeStamp -> first animation frame after the new
image decoded (`window.__labeltoolReviewTimings`). A listener installed before the app notes
the example on screen at every key and every example the screen ever shows: each `n` must
show the queue's next example (read from the database before the run) at once, and nothing
else may appear; afterwards every tag must be in the database on the example that was on
screen. The bare button is `st.button(shortcut="k")` counting its presses, timed from keydown
to the first frame after the new count is in the page; each press waits for the last one's
count (and at least `--gap-ms`), so every round trip is timed alone.

    .venv/bin/python bench/bench_review_keys.py [--errors 100000] [--examples 60] [--gap-ms 150]

Prints figures; asserts nothing about timings.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import math
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from playwright.sync_api import Browser, Page, expect, sync_playwright  # noqa: E402
from playwright.sync_api import TimeoutError as PlaywrightTimeout  # noqa: E402
from sqlalchemy import select  # noqa: E402

from labeltool import review_queue  # noqa: E402 - needs the sys.path line above
from labeltool.db import Database  # noqa: E402
from labeltool.models import Category, Example, Project, Tag  # noqa: E402
from labeltool.review_queue import QueueFilter  # noqa: E402
from tests.e2e.conftest import (  # noqa: E402 - the browser tests' server start and stop
    CHROMIUM,
    CHROMIUM_ARGS,
    _free_port,
    _stop,
    _wait_until_healthy,
)

PROJECT = "big"
REVIEWER = "bench"
CLASSES = tuple(str(digit) for digit in range(10))
DISTINCT_IMAGES = 50
CATEGORY_KEY, CATEGORY = "1", "blurry"  # sample_data/categories.csv
TIMEOUT_MS = 60_000
#: Runs in the review page before the app: the example on screen at each key press (before the
#: review screen handles it) and how long the key waited for the page's main thread, and every
#: example the screen shows, with how many keys came before it and when it was in the page.
RECORD_SCREEN = """(() => {
window.__presses = []; window.__screens = [];
const shown = () => (document.querySelector(".lt-rs") || {dataset: {}}).dataset.exampleId || "";
window.addEventListener("keydown", (e) => {
  const queued = performance.now() - e.timeStamp;
  __presses.push({key: e.key, before: shown(), at: e.timeStamp, queued});
}, true);
new MutationObserver(() => {
  const id = shown(), last = __screens[__screens.length - 1];
  if (!last || last.id !== id) __screens.push({id, keys: __presses.length, at: performance.now()});
}).observe(document, {subtree: true, childList: true, attributeFilter: ["data-example-id"]});
})();"""
#: The bare Streamlit page: a button with a shortcut and the count of its presses.
BUTTON_APP = """
import streamlit as st

st.session_state.setdefault("count", 0)
if st.button("Count", shortcut="k"):
    st.session_state.count += 1
st.markdown(f"count {st.session_state.count}")
"""
#: Runs in the button page before the app: the last keydown -> first frame showing a new count.
TIME_BUTTON = """(() => {
window.__pressedAt = null; window.__trips = [];
window.addEventListener("keydown", (e) => { if (e.key === "k") __pressedAt = e.timeStamp; }, true);
let painted = 0;
new MutationObserver(() => {
  for (const box of document.querySelectorAll('[data-testid="stMarkdownContainer"]')) {
    const match = /^count (\\d+)$/.exec(box.textContent.trim());
    if (!match || +match[1] <= painted) continue;
    painted = +match[1];
    const pressed = __pressedAt;
    requestAnimationFrame(() => __trips.push(performance.now() - pressed));
  }
}).observe(document, {subtree: true, childList: true, characterData: true});
})();"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--errors", type=int, default=100_000, help="misclassified examples")
    parser.add_argument("--examples", type=int, default=60, help="examples (and button presses)")
    parser.add_argument("--gap-ms", type=int, default=150, help="milliseconds between keys")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="labeltool-bench-keys-") as tmp:
        folder = Path(tmp)
        db_url = f"sqlite:///{folder / 'bench.db'}"
        _import_project(folder, db_url, args.errors)
        expected = _queue_head(db_url, args.examples + 1)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            serve = [sys.executable, "-m", "labeltool", "--db", db_url, "serve", "--host"]
            with _serving([*serve, "127.0.0.1", "--port"], folder / "labeltool.log") as url:
                review = _review(browser, url, args.examples, args.gap_ms / 1000)
            script = folder / "button_app.py"
            script.write_text(BUTTON_APP)
            streamlit = [sys.executable, "-m", "streamlit", "run", str(script)]
            flags = ["--server.headless", "true", "--browser.gatherUsageStats", "false"]
            with _serving([*streamlit, *flags, "--server.address", "127.0.0.1",
                           "--server.port"], folder / "button.log") as url:  # fmt: skip
                trips, trips_lost = _button(browser, url, args.examples, args.gap_ms / 1000)
            browser.close()
        wrong = _wrong_or_stale(review["presses"], review["screens"], expected)
        on_wrong, lost = _tag_check(db_url, review["presses"])

    print()
    print(f"n pressed {args.examples} times, {len(review['timings'])} of them timed by the page")
    _print_figures("n -> next image painted", review["timings"])
    queued = [p["queued"] for p in review["presses"] if p["key"] == "n"]
    _print_figures("  its part waiting for the page's main thread", queued)
    presses, screens = review["presses"], review["screens"]
    in_page = [s["at"] - presses[s["keys"] - 1]["at"] for s in screens if s["keys"]]
    _print_figures("  its part until the example is in the page", in_page)
    _print_figures("bare Streamlit button round trip", trips)
    if trips_lost:
        print(f"  bare button presses with no new count within 5 s: {trips_lost}")
    print(f"tags on the wrong example: {on_wrong}, lost: {lost}")
    print()
    print(f"n -> next image painted: p95 {_p95(review['timings']):.0f} ms (target <= 100 ms)")
    print(f"bare Streamlit button round trip: p95 {_p95(trips):.0f} ms")
    print(f"wrong or stale examples shown: {wrong}")
    load = os.getloadavg()[0]
    print(f"(load average over the last minute: {load:.1f}, on {os.cpu_count()} CPUs)")


def _import_project(folder: Path, db_url: str, errors: int) -> None:
    """Write the images and the predictions CSV, then `labeltool import` them (timed)."""
    from PIL import Image, ImageChops, ImageDraw, ImageFilter

    images = folder / "images"
    images.mkdir()
    chance = random.Random(13)
    for number in range(DISTINCT_IMAGES):  # a blurred digit with a little noise, 28x28
        image = Image.new("L", (28, 28))
        corner = (chance.randint(4, 16), chance.randint(2, 12))
        ImageDraw.Draw(image).text(corner, str(number % 10), fill=255)
        image = image.filter(ImageFilter.GaussianBlur(0.6))
        noise = bytes(chance.randint(0, 40) for _ in range(28 * 28))
        image = ImageChops.add(image, Image.frombytes("L", (28, 28), noise))
        image.save(images / f"img{number:02d}.png")

    rows = errors + errors // 10  # every eleventh row classified right
    predictions = folder / "predictions.csv"
    with predictions.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            ["example_id", "image", "label", "prediction", "confidence"]
            + [f"prob_{c}" for c in CLASSES]
        )
        for i in range(rows):
            label = CLASSES[i % 10]
            prediction = label if i % 11 == 10 else CLASSES[(i % 10 + 1 + i % 9) % 10]
            confidence = 0.30 + (i * 37 % 70) / 100
            rest = (1 - confidence) / 9
            writer.writerow(
                [f"ex{i:07d}", f"img{i * 7919 % DISTINCT_IMAGES:02d}.png", label, prediction]
                + [f"{confidence:.4f}"]
                + [f"{confidence if c == prediction else rest:.4f}" for c in CLASSES]
            )
    print(f"importing {rows:,} rows ({errors:,} misclassified) into {db_url} …", flush=True)
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "labeltool", "--db", db_url, "import", str(predictions),
         "--project", PROJECT, "--images-root", str(images),
         "--categories", str(REPO / "sample_data" / "categories.csv")],
        cwd=REPO, check=True,
    )  # fmt: skip
    print(f"imported in {time.perf_counter() - started:.1f} s", flush=True)


def _queue_head(db_url: str, count: int) -> list[str]:
    """The example ids the review queue starts with, in order, before anyone reviews."""
    db = Database.open(db_url)
    try:
        with db.begin() as session:
            project_id = session.scalar(select(Project.id).where(Project.name == PROJECT))
            pks = review_queue.queue_ids(
                session, project_id=project_id, queue=QueueFilter(), limit=count
            )
            rows = session.execute(
                select(Example.id, Example.example_id).where(Example.id.in_(pks))
            )
            ids = dict(rows.all())
    finally:
        db.dispose()
    return [ids[pk] for pk in pks]


def _review(browser: Browser, url: str, examples: int, gap: float) -> dict:
    """Tag then `n`, one key every `gap` seconds, for `examples` examples; what the page saw."""
    page = _new_page(browser, RECORD_SCREEN)
    page.goto(f"{url}/?project={PROJECT}&reviewer={REVIEWER}")
    expect(page.locator(f'.lt-rs-cat[data-category="{CATEGORY}"]')).to_be_enabled()
    expect(page.locator(".lt-rs")).not_to_have_attribute("data-example-id", "")
    expect(page.get_by_test_id("stApp")).to_have_attribute("data-test-script-state", "notRunning")
    _press_every(page, [CATEGORY_KEY, "n"] * examples, gap)
    screen = page.locator(".lt-rs")
    expect(screen).to_have_attribute("data-saving", "false", timeout=TIMEOUT_MS)
    with contextlib.suppress(PlaywrightTimeout):  # the last image's frame, if still to come
        timed = f"(window.__labeltoolReviewTimings || []).length >= {examples}"
        page.wait_for_function(timed, timeout=2_000)
    result = {
        "presses": page.evaluate("window.__presses"),
        "screens": page.evaluate("window.__screens"),
        "timings": page.evaluate("window.__labeltoolReviewTimings || []"),
    }
    page.context.close()
    return result


def _button(browser: Browser, url: str, presses: int, gap: float) -> tuple[list[float], int]:
    """Press the bare button's shortcut `presses` times, each when the last one's new count is
    painted and `gap` seconds have passed (so each trip is timed alone); (round trips, presses
    with no new count within 5 s)."""
    page = _new_page(browser, TIME_BUTTON)
    page.goto(url)
    expect(page.get_by_text("count 0")).to_be_visible()
    expect(page.get_by_test_id("stApp")).to_have_attribute("data-test-script-state", "notRunning")
    for _ in range(10):  # Streamlit can miss a shortcut pressed just after the first paint
        page.keyboard.press("k")
        with contextlib.suppress(PlaywrightTimeout):
            page.wait_for_function("window.__trips.length > 0", timeout=1_000)
            break
    page.evaluate("window.__trips = []")
    lost = 0
    for done in range(presses):
        due = time.perf_counter() + gap
        page.keyboard.press("k")
        try:
            page.wait_for_function(f"__trips.length > {done - lost}", polling=10, timeout=5_000)
        except PlaywrightTimeout:
            lost += 1
        time.sleep(max(0.0, due - time.perf_counter()))
    trips = page.evaluate("window.__trips")
    page.context.close()
    return trips, lost


def _new_page(browser: Browser, init_script: str) -> Page:
    """A fresh tab of the reviewer's size, running `init_script` before the app loads."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    expect.set_options(timeout=TIMEOUT_MS)
    page.add_init_script(init_script)
    return page


def _press_every(page: Page, keys: list[str], gap: float) -> None:
    """Press `keys` on a fixed clock, one every `gap` seconds (slow presses do not shift it)."""
    due = time.perf_counter()
    for key in keys:
        time.sleep(max(0.0, due - time.perf_counter()))
        page.keyboard.press(key)
        due += gap


def _wrong_or_stale(presses: list[dict], screens: list[dict], expected: list[str]) -> int:
    """Keys after which the screen went wrong: an `n` that did not show the queue's next
    example at once and alone (stale, blank, seen before or out of order), a category key
    after which the example changed, and a wrong first example."""
    after_key = [[] for _ in range(len(presses) + 1)]  # examples shown after each key
    for screen in screens:
        after_key[screen["keys"]].append(screen["id"])
    wrong = int(after_key[0][-1:] != expected[:1])
    for index, press in enumerate(presses):
        shown = after_key[index + 1]
        if press["key"] == "n":
            wrong += shown != [expected[index // 2 + 1]]
        else:
            wrong += bool(shown)
    return wrong


def _tag_check(db_url: str, presses: list[dict]) -> tuple[int, int]:
    """(tags on an example other than the one on screen at its key, tags missing)."""
    wanted = {(p["before"], CATEGORY) for p in presses if p["key"] == CATEGORY_KEY}
    db = Database.open(db_url)
    try:
        with db.begin() as session:
            saved = set(
                session.execute(
                    select(Example.example_id, Category.name)
                    .join(Tag.example)
                    .join(Tag.category)
                    .where(Tag.reviewer == REVIEWER)
                ).all()
            )
    finally:
        db.dispose()
    return len(saved - wanted), len(wanted - saved)


@contextlib.contextmanager
def _serving(command: list[str], log: Path) -> Iterator[str]:
    """Run `command` plus a free port in its own process group until the block ends; its URL."""
    port = _free_port()
    env = {**os.environ, "STREAMLIT_SERVER_FILE_WATCHER_TYPE": "none"}
    with log.open("wb") as log_file:
        server = subprocess.Popen(
            [*command, str(port)],
            cwd=REPO,
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            url = f"http://127.0.0.1:{port}"
            _wait_until_healthy(server, url, log)
            yield url
        finally:
            _stop(server)


def _print_figures(name: str, timings: list[float]) -> None:
    """One line: how many, median, p95 and max milliseconds."""
    if not timings:
        print(f"{name}: no timings recorded")
        return
    print(
        f"{name}: n {len(timings)}, median {statistics.median(timings):.1f} ms, "
        f"p95 {_p95(timings):.1f} ms, max {max(timings):.1f} ms"
    )


def _p95(timings: list[float]) -> float:
    """The 95th percentile, nearest rank (no interpolation between two presses)."""
    ordered = sorted(timings)
    return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)] if ordered else float("nan")


if __name__ == "__main__":
    main()
