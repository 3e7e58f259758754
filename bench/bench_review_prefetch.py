"""Benchmark the review screen with 12-megapixel photos (issue 10, "images at scale"): how long
a reviewer waits for the first photo, and for each next one when they press `n` at a brisk
pace straight away, before the screen has had time to prepare anything.

Each round is a fresh project of `--photos` 4000 x 3000 JPEGs (hard links to one file under
new names, so every rendition is made afresh, as for a project opened the first time) served
by `labeltool serve` and opened in Chromium. The page records: the first photo painted after
the page began to load (Streamlit's own start included, the same for any app); each `n` from
key press to the next photo painted (`window.__labeltoolReviewTimings`: when a photo was not
ready, from the last key pressed before it came); how many `n` found their photo not ready
("Preparing the image…" on screen); and how long after the last key the screen said "All
changes saved" (the server caught up).

    .venv/bin/python bench/bench_review_prefetch.py [--rounds 3] [--photos 40] [--presses 20]
        [--gap-ms 300]

Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from playwright.sync_api import expect, sync_playwright  # noqa: E402 - after the sys.path line

from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS, serve  # noqa: E402
from tests.e2e.test_review_tools_browser import write_photo_project  # noqa: E402

REVIEWER = "bench"
TIMEOUT_MS = 120_000
#: Runs in the page before the app: when the first photo was painted (ms after the page began
#: to load), and the examples shown with "Preparing the image…" instead of their photo.
RECORD = """(() => {
window.__firstPhoto = null; window.__waited = new Set();
new MutationObserver(() => {
  const img = document.querySelector(".lt-rs-img");
  if (window.__firstPhoto === null && img && img.getAttribute("src")) {
    window.__firstPhoto = -1;
    const done = () => requestAnimationFrame(() => (window.__firstPhoto = performance.now()));
    img.decode().then(done, done);
  }
  const root = document.querySelector(".lt-rs");
  const placeholder = document.querySelector(".lt-rs-img-problem:not([hidden])");
  if (root && placeholder && !placeholder.textContent.startsWith("🚫")) {
    window.__waited.add(root.dataset.showing);
  }
}).observe(document, {subtree: true, childList: true, attributes: true});
})();"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="fresh projects opened")
    parser.add_argument("--photos", type=int, default=40, help="12 MP photos per project")
    parser.add_argument("--presses", type=int, default=20, help="`n` presses per round")
    parser.add_argument("--gap-ms", type=int, default=300, help="milliseconds between presses")
    args = parser.parse_args()

    firsts, timings, waited, caught_up = [], [], 0, []
    with tempfile.TemporaryDirectory(prefix="labeltool-bench-prefetch-") as tmp:
        folder = Path(tmp)
        os.environ["LABELTOOL_RENDITION_CACHE"] = str(folder / "cache")  # nothing made before
        db_url = f"sqlite:///{folder / 'bench.db'}"
        for number in range(args.rounds):
            project = folder / f"photos-{number}"
            predictions = write_photo_project(project, count=args.photos)
            subprocess.run(
                [sys.executable, "-m", "labeltool", "--db", db_url, "import", str(predictions)]
                + ["--project", project.name],
                cwd=REPO,
                check=True,
                capture_output=True,
            )
        with serve(db_url, folder) as app, sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            for number in range(args.rounds):
                result = _round(browser, app.url, f"photos-{number}", args)
                firsts.append(result["first"])
                timings += result["timings"]
                waited += result["waited"]
                caught_up.append(result["caught_up"])
                print(
                    f"round {number + 1}: first photo at {result['first']:.0f} ms, "
                    f"n -> photo p50 {_median(result['timings']):.0f} ms, "
                    f"{result['waited']} of {args.presses} n found it not ready, "
                    f"saved {result['caught_up']:.0f} ms after the last key",
                    flush=True,
                )
            browser.close()

    print()
    print(f"{args.rounds} fresh projects of {args.photos} photos of 4000 x 3000 px (12 MP JPEG)")
    print(f"first photo painted after the page began to load: median {_median(firsts):.0f} ms")
    print(
        f"n -> next photo painted ({len(timings)} presses, one every {args.gap_ms} ms from the "
        f"first paint): p50 {_median(timings):.0f} ms, p95 {_p95(timings):.0f} ms, "
        f"max {max(timings):.0f} ms"
    )
    print(f"n that found the next photo not ready: {waited} of {args.rounds * args.presses}")
    print(f"all changes saved after the last key: median {_median(caught_up):.0f} ms")
    load = os.getloadavg()[0]
    print(f"(load average over the last minute: {load:.1f}, on {os.cpu_count()} CPUs)")


def _round(browser, url: str, project: str, args: argparse.Namespace) -> dict:
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.add_init_script(RECORD)
    page.goto(f"{url}/?project={project}&reviewer={REVIEWER}")
    page.wait_for_function("window.__firstPhoto > 0", timeout=TIMEOUT_MS)
    first = page.evaluate("window.__firstPhoto")
    root = page.locator(".lt-rs")
    for _ in range(args.presses):
        page.keyboard.press("n")
        time.sleep(args.gap_ms / 1000)
    last_key = time.monotonic() - args.gap_ms / 1000
    expect(root).to_have_attribute("data-saving", "false", timeout=TIMEOUT_MS)
    caught_up = (time.monotonic() - last_key) * 1000
    time.sleep(1)  # the last photo's frame, if still to come
    result = {
        "first": first,
        "timings": page.evaluate("window.__labeltoolReviewTimings || []"),
        "waited": page.evaluate("window.__waited.size"),
        "caught_up": caught_up,
    }
    context.close()
    return result


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def _p95(values: list[float]) -> float:
    return (
        statistics.quantiles(values, n=20, method="inclusive")[-1]
        if len(values) >= 2
        else float("nan")
    )


if __name__ == "__main__":
    main()
