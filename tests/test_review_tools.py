"""The review screen's images at scale, server side: the example on screen never waits for the
others' images, which are made ahead in background threads and sent on a later rerun; a
photo's original goes to the browser only for the example it zoomed in on; and the image
tools' keys can never be a category's key.

The browser's half (zoom, brightness, contrast, auto-contrast, smoothing, panning, the
settings staying on from one example to the next) is tested in Chromium, in
tests/e2e/test_review_tools_browser.py.
"""

from __future__ import annotations

import base64
import io
import json
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from app_pages.widgets.review_screen import IMAGE_KEYS, SCREEN_KEYS
from labeltool import renditions
from labeltool.categories import RESERVED_KEYS, create_category
from labeltool.config import APP_PATH
from labeltool.errors import ImageUnavailable, InvalidInput
from labeltool.models import Example, Project
from labeltool.renditions import RenditionCache, RenditionPool
from tests.app_scenario import AppProject, open_app_project

#: How long one review rendition takes while a test slows them down (a 12 MP JPEG takes
#: about 0.15 s on the project's 2-core machine).
SLOW_SECONDS = 0.3
#: The anchor and the 20 examples after it.
WINDOW = 21

pytestmark = pytest.mark.usefixtures("fresh_streamlit_caches")


@pytest.fixture
def project(sqlite_db, write_predictions, monkeypatch: pytest.MonkeyPatch) -> AppProject:
    """Project "run1": 36 dev examples, 30 misclassified, each with a PNG of its own (on
    SQLite only: what is tested here never reaches the database)."""
    return open_app_project(sqlite_db, write_predictions, monkeypatch, examples=36, errors=30)


@pytest.fixture
def renders(monkeypatch: pytest.MonkeyPatch) -> Counter:
    """Every rendition made (not served from a cache), counted by (image, kind); a review
    rendition takes SLOW_SECONDS, as a large photo's would."""
    made: Counter = Counter()
    real = renditions._render

    def slow(*args):
        image, kind = str(args[-2]), args[-1]
        made[(Path(image).name, kind)] += 1
        if kind == "review":
            time.sleep(SLOW_SECONDS)
        return real(*args)

    monkeypatch.setattr(renditions, "_render", slow)
    return made


# --- prepared ahead: the page -----------------------------------------------------------------


def test_slow_images_never_hold_up_the_example_on_screen(
    project: AppProject, renders: Counter
) -> None:
    """With every image slow to make, the first rerun sends the anchor's image and the next
    two (made alongside it, so `n` finds them) and marks the others preparing, in far less
    time than making them all; reruns that say which images the browser holds then bring the
    rest, each image made once."""
    started = time.monotonic()
    at, data = _open(reviewer="ann")
    first_rerun = time.monotonic() - started

    order = data["order"]
    assert len(order) == WINDOW
    shown = _examples(data)
    assert all(shown[pk]["src"].startswith("data:image/") for pk in order[:3])
    preparing = [pk for pk in order if shown[pk]["preparing"]]
    assert len(preparing) >= WINDOW - 5, "the rerun waited for the window's images"
    assert all(shown[pk]["src"] is None for pk in preparing)
    assert first_rerun < SLOW_SECONDS * WINDOW / 2

    held = _poll_until_prepared(at, project, data)

    assert held == set(order) | {data["previous"]} - {None}
    assert all(count == 1 for count in renders.values()), renders.most_common(3)


def test_the_next_two_images_come_with_the_example_on_screen(
    project: AppProject, renders: Counter
) -> None:
    """Even when the example on screen is ready at once (its image cached), the rerun waits
    for the next two examples' images, so `n` finds them in the browser; the rest of the
    window comes later."""
    first = project.queue()[0]
    renditions.default_pool().now(*_image_of(project, first), kind="review")

    _, data = _open(reviewer="ann")

    order, shown = data["order"], _examples(data)
    assert order[0] == first
    assert all(shown[pk]["src"].startswith("data:image/") for pk in order[:3])
    assert sum(shown[pk]["preparing"] for pk in order[3:]) >= WINDOW - 6


def test_a_rerun_with_every_image_held_makes_and_sends_none(
    project: AppProject, renders: Counter
) -> None:
    """Once the browser holds the window's images, a rerun neither makes nor reads any image
    (not even from the cache) and sends none."""
    at, data = _open(reviewer="ann")
    held = _poll_until_prepared(at, project, data)
    before = renditions.default_cache().stats()

    data = _rerun(at, project, showing=data["order"][0], have=sorted(held))

    after = renditions.default_cache().stats()
    assert (after.hits, after.misses) == (before.hits, before.misses)
    assert all(e["src"] is None and not e["preparing"] for e in data["examples"])


def test_the_example_on_screen_is_made_at_once_even_behind_a_queue(
    project: AppProject, renders: Counter
) -> None:
    """When the reviewer moves on to an example whose image is still queued behind the
    window's others, the rerun makes that image itself rather than wait its turn."""
    at, data = _open(reviewer="ann")
    far = data["order"][-1]  # queued last, behind 19 slow images

    started = time.monotonic()
    data = _rerun(at, project, showing=far, have=[data["order"][0]])
    took = time.monotonic() - started

    assert data["anchor"] == far
    assert _examples(data)[far]["src"].startswith("data:image/")
    assert took < SLOW_SECONDS * 8, f"{took:.1f}s: the image waited behind the queue"


# --- the original, on demand --------------------------------------------------------------


def test_the_original_is_sent_only_for_the_example_that_asks_for_it(
    project: AppProject, renders: Counter
) -> None:
    """No original is made or sent until the browser asks for the one on screen (zoomed past
    its review image); then it comes, at the photo's own size; one asked for an example
    outside the window is ignored."""
    pks = project.queue()[:3]
    for pk in pks:
        _photo(project, pk, size=(1600, 1200))
    at, data = _open(reviewer="ann")
    anchor = data["anchor"]
    assert anchor == pks[0]
    held = _poll_until_prepared(at, project, data)
    assert data["originals"] == {}
    assert not [key for key in renders if key[1] == "original"]
    shown = _examples(_rerun(at, project, showing=anchor))[anchor]
    assert (shown["width"], shown["sourceWidth"]) == (768, 1600)

    for _ in range(50):  # the browser asks while it is preparing
        data = _rerun(at, project, showing=anchor, have=sorted(held), original=anchor)
        full = data["originals"][str(anchor)]
        if not full.get("preparing"):
            break
        time.sleep(0.05)

    assert (full["width"], full["height"]) == (1600, 1200)
    assert _decoded_size(full["src"]) == (1600, 1200)
    originals = [key for key in renders if key[1] == "original"]
    assert len(originals) <= 1  # a JPEG that is upright is sent as its file, made or not
    outside = project.queue()[-1]
    data = _rerun(at, project, showing=anchor, have=sorted(held), original=outside)
    assert data["originals"] == {}


# --- the keys ---------------------------------------------------------------------------


def test_no_category_can_take_an_image_tool_key(project: AppProject) -> None:
    """Every image tool key is a key the category rules refuse (not a letter or digit), none
    is one of the screen's own keys, and no letter was reserved for them."""
    screen_keys = {key for key, _ in SCREEN_KEYS}
    with project.db.begin() as session:
        for key, _command, _words in IMAGE_KEYS:
            assert key not in screen_keys
            with pytest.raises(InvalidInput, match="one letter or digit"):
                create_category(session, project_id=project.id, name=f"c{key}", shortcut=key)
    assert frozenset("crnps") == RESERVED_KEYS  # no letter was taken for the image tools


def test_the_legend_lists_the_image_tool_keys(project: AppProject) -> None:
    """The screen is sent every image tool key with the command it runs and its words, which
    the `?` legend shows; each command is one the browser knows."""
    _, data = _open(reviewer="ann")

    keys = {k["key"]: k["command"] for k in data["imageKeys"]}
    assert keys == {
        "+": "zoomIn",
        "-": "zoomOut",
        "]": "brighter",
        "[": "darker",
        "}": "moreContrast",
        "{": "lessContrast",
        "\\": "autoContrast",
        ".": "smoothing",
        "`": "resetImage",
    }
    script = (APP_PATH.parent / "app_pages" / "widgets" / "review_screen.js").read_text()
    assert all(f'"{command}"' in script for command in keys.values())
    assert (data["imageSide"], data["fitSide"]) == (384, 768)


# --- the pool ---------------------------------------------------------------------------


def test_the_pool_makes_an_image_once_however_often_it_is_asked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Three requests and a `now` for one image while it is being made share one rendering."""
    _png(tmp_path, "a.png")
    gate, made = _gated_render(monkeypatch, hold={"a.png"})
    pool = RenditionPool(RenditionCache(None), workers=2)

    first = pool.prepare(tmp_path, ["a.png"], kind="review")[0]
    assert gate["a.png"].started.wait(5)
    second = pool.prepare(tmp_path, ["a.png"], kind="review")[0]
    waiting = threading.Thread(target=lambda: pool.now(tmp_path, "a.png", kind="review"))
    waiting.start()
    gate["a.png"].release.set()
    waiting.join(5)

    assert second is first and first.result(5).width == 8
    assert pool.prepare(tmp_path, ["a.png"], kind="review")[0].result(0).width == 8  # cached
    assert made == ["a.png"]


def test_the_pool_serves_the_newest_request_first_in_its_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With its one thread busy, a later request's images are made before an earlier one's,
    each request's in the order given: the next examples of the queue the reviewer is in
    come before those of the queue they left."""
    for name in ("busy", "old1", "old2", "new1", "new2"):
        _png(tmp_path, f"{name}.png")
    gate, made = _gated_render(monkeypatch, hold={"busy.png"})
    pool = RenditionPool(RenditionCache(None), workers=1)

    busy = pool.prepare(tmp_path, ["busy.png"], kind="review")[0]
    assert gate["busy.png"].started.wait(5)
    old = pool.prepare(tmp_path, ["old1.png", "old2.png"], kind="review")
    new = pool.prepare(tmp_path, ["new1.png", "new2.png"], kind="review")
    gate["busy.png"].release.set()
    for future in (busy, *old, *new):
        future.result(5)

    assert made == ["busy.png", "new1.png", "new2.png", "old1.png", "old2.png"]


def test_now_does_not_wait_behind_the_queue(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An image queued behind a busy thread is made at once by `now`, in the calling thread,
    and its queued job then shares that result instead of making it again."""
    for name in ("busy", "b"):
        _png(tmp_path, f"{name}.png")
    gate, made = _gated_render(monkeypatch, hold={"busy.png"})
    pool = RenditionPool(RenditionCache(None), workers=1)
    pool.prepare(tmp_path, ["busy.png"], kind="review")
    assert gate["busy.png"].started.wait(5)
    queued = pool.prepare(tmp_path, ["b.png"], kind="review")[0]

    shown = pool.now(tmp_path, "b.png", kind="review")

    assert queued.done() and queued.result() is shown
    gate["busy.png"].release.set()
    assert made == ["busy.png", "b.png"]


def test_an_unreadable_image_fails_its_future_with_the_reason(tmp_path: Path) -> None:
    """A missing file and a path outside the images root come back as ImageUnavailable in
    the future, never as a worker's crash: the screen shows the reason."""
    pool = RenditionPool(RenditionCache(None), workers=1)

    missing, outside = pool.prepare(tmp_path, ["missing.png", "../outside.png"], kind="review")

    assert isinstance(missing.exception(5), ImageUnavailable)
    assert isinstance(outside.exception(5), ImageUnavailable)
    with pytest.raises(ImageUnavailable):
        pool.now(tmp_path, "missing.png", kind="review")


# --- helpers --------------------------------------------------------------------------


def _open(*, reviewer: str) -> tuple[AppTest, dict]:
    at = AppTest.from_file(str(APP_PATH), default_timeout=60)
    at.session_state["reviewer"] = reviewer
    at.run()
    assert not at.exception, at.exception
    return at, _data(at)


def _rerun(at: AppTest, project: AppProject, *, showing: int, **screen) -> dict:
    """Rerun as the browser's message would: the example on screen, the images it holds."""
    at.session_state[f"review_screen_{project.id}"] = {
        "screen": {"client": "c", "epoch": _data(at)["epoch"], "showing": showing, "actions": []}
        | screen
    }
    at.run()
    assert not at.exception, at.exception
    return _data(at)


def _poll_until_prepared(at: AppTest, project: AppProject, data: dict) -> set[int]:
    """Rerun, saying which images the browser holds, until none is preparing (as the browser
    asks again while any is); the pks whose image arrived."""
    held = {e["pk"] for e in data["examples"] if e["src"]}
    for _ in range(200):
        if not any(e["preparing"] for e in data["examples"]):
            return held
        time.sleep(0.05)
        data = _rerun(at, project, showing=data["order"][0], have=sorted(held))
        held |= {e["pk"] for e in data["examples"] if e["src"]}
    raise AssertionError("the window's images were never all prepared")


def _data(at: AppTest) -> dict:
    elements = [e for e in at.main if type(e).__name__ == "UnknownElement"]
    (screen,) = [e.proto for e in elements if e.proto.component_name.endswith("review_screen")]
    return json.loads(screen.json)


def _examples(data: dict) -> dict[int, dict]:
    return {e["pk"]: e for e in data["examples"]}


def _image_of(project: AppProject, pk: int) -> tuple[str, str]:
    """(images root, image) of the example."""
    with project.db.begin() as session:
        example = session.get(Example, pk)
        return session.get(Project, example.project_id).images_root, example.image


def _photo(project: AppProject, pk: int, *, size: tuple[int, int]) -> None:
    """Replace the example's image with a photo of `size` (a JPEG, under its old name)."""
    root, image = _image_of(project, pk)
    Image.new("RGB", size, (90, 120, 160)).save(Path(root) / image, format="JPEG", quality=85)


def _decoded_size(uri: str) -> tuple[int, int]:
    return Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1]))).size


def _png(folder: Path, name: str) -> None:
    Image.new("L", (8, 8), 128).save(folder / name)


class _Gate:
    def __init__(self) -> None:
        self.started = threading.Event()
        self.release = threading.Event()


def _gated_render(
    monkeypatch: pytest.MonkeyPatch, *, hold: set[str]
) -> tuple[dict[str, _Gate], list[str]]:
    """Record every rendition made, in order; those of `hold` wait until their gate opens."""
    gates = {name: _Gate() for name in hold}
    made: list[str] = []
    real = renditions._render

    def gated(*args):
        name = Path(str(args[-2])).name
        made.append(name)
        if name in gates:
            gates[name].started.set()
            assert gates[name].release.wait(10)
        return real(*args)

    monkeypatch.setattr(renditions, "_render", gated)
    return gates, made
