"""The review screen's keyboard-first component: the example on screen, its tags and keys.

Streamlit's own shortcuts click whatever button the browser shows when the key arrives, and
the server applies the click to whatever example it holds by then; at a fast typist's pace
that puts tags on examples nobody saw. This component (custom components v2: plain HTML,
CSS and JavaScript in this folder, no build step, running in the page itself rather than an
iframe, so it hears every key) captures each press in the browser with the example on screen,
shows the result at once, and sends the numbered list of presses to the server, which applies
each to its own example (labeltool.review_actions) and acknowledges them. The next examples of
the queue travel with every rerun, so `n` shows the next one at once.

Their images are made ahead in labeltool.renditions' background pool: a rerun makes the image
on screen itself while the pool makes the next NEXT_READY examples' (it waits for those at
most NEXT_WAIT_SECONDS, the others' at most PREPARE_WAIT_SECONDS), and marks those not ready
"preparing"; the browser asks again until it holds them. So a window of 12-megapixel photos
never holds the example on screen up, and `n` finds the next photo ready. An image goes to
the browser once (it says which it holds), at its own pixels up to the "review" rendition's
768: the browser enlarges it.

Suggested categories show dashed: Enter accepts them, Backspace dismisses them for this
reviewer (a click accepts one, its × dismisses it). "More like this" (SIMILAR_KEY, unless a
category has that key, or its button) is an action numbered after the presses before it; the
page applies those, then opens the Gallery on the errors most like the example on screen.

The image tools (zoom, brightness, contrast, auto-contrast, pixelated or smooth enlarging) act
in the browser alone, on keys no category can have (IMAGE_KEYS). At 100% or 200% a photo larger
than its review rendition is drawn from its original, which the browser asks for then, for
the example on screen only.
"""

from __future__ import annotations

import time
from concurrent.futures import Future, wait
from dataclasses import dataclass
from pathlib import Path

import streamlit as st

from app_pages.common import ProjectInfo
from labeltool.categories import RESERVED_KEYS
from labeltool.errors import ImageUnavailable
from labeltool.labeling import ExampleView
from labeltool.models import Category
from labeltool.renditions import KIND_BOX, Rendition, default_pool
from labeltool.review_actions import Standing

_HERE = Path(__file__).parent
#: "Fit" draws an image smaller than this (such as an 8x8 digit) enlarged by a whole factor to
#: at least this side, so every pixel the model saw stays a crisp square; larger images fit in
#: FIT_SIDE, never enlarged.
IMAGE_SIDE = 384
FIT_SIDE = KIND_BOX["review"]
#: How long a rerun waits for the images of the examples after the one on screen: the next
#: NEXT_READY (made alongside it, so `n` finds them here), then the others; those not made by
#: then go with a later rerun (the browser asks again while any is preparing).
NEXT_READY = 2
NEXT_WAIT_SECONDS = 0.5
PREPARE_WAIT_SECONDS = 0.1
#: Keys the screen itself uses, shown in its legend (category keys come from the project).
#: Enter accepts the example's suggested categories (labeltool.signals) and Backspace dismisses
#: them: no category can have either (keys are one letter or digit), and in a text box they
#: still edit the text.
SCREEN_KEYS = (
    ("Enter", "accept the suggestions"),
    ("Backspace", "dismiss the suggestions"),
    ("n", "save & next"),
    ("s", "skip (not counted as reviewed)"),
    ("p", "previous"),
    ("/", "comment"),
    ("=", "corrected label"),
    ("Esc", "leave a text box or sidebar widget"),
    ("?", "show or hide the keys"),
)
#: "More like this": the Gallery on the errors most like the example on screen. Not a reserved
#: key (projects may already give it to a category): while a live category has it, the key
#: toggles that category and only the button opens the Gallery.
SIMILAR_KEY = "m"
SIMILAR_WORDS = "more like this (Gallery)"
#: The image tools' keys: (key, what the browser does, words for the legend). None is a letter
#: or digit, so no category can have one (labeltool.categories), and none is an action: they
#: change how the browser draws the image, never the example.
IMAGE_KEYS = (
    ("+", "zoomIn", "zoom in (fit, 100%, 200%)"),
    ("-", "zoomOut", "zoom out"),
    ("]", "brighter", "brighter"),
    ("[", "darker", "darker"),
    ("}", "moreContrast", "more contrast"),
    ("{", "lessContrast", "less contrast"),
    ("\\", "autoContrast", "auto-contrast on/off"),
    (".", "smoothing", "pixelated / smooth enlarging"),
    ("`", "resetImage", "reset the image"),
)
#: Keys no category can have: the screen's own, and Streamlit's (r reruns, c clears caches).
RESERVED_KEY_NOTE = (
    "Reserved: "
    + ", ".join(sorted(RESERVED_KEYS))
    + " (n, p, s are the screen's; r and c are Streamlit's rerun and clear-cache)"
)

_component = st.components.v2.component(
    "labeltool.review_screen",
    html=(_HERE / "review_screen.html").read_text(),
    css=(_HERE / "review_screen.css").read_text(),
    js=(_HERE / "review_screen.js").read_text(),
    isolate_styles=False,
)


@dataclass(frozen=True)
class ScreenState:
    """What the browser last told the server: its id, its unacknowledged actions, the example
    it shows and the reset it has seen."""

    client: str | None = None
    actions: object = None
    showing: int | None = None
    epoch: int = 0
    #: Examples whose image the browser already holds (not sent again).
    have: frozenset[int] = frozenset()
    #: The number of the browser's message, echoed so it knows this rerun has read it.
    nonce: int = 0
    #: The example whose original (full resolution) image the browser wants, zoomed in on it.
    original: int | None = None


def screen_state(key: str) -> ScreenState:
    """The component's last state as the browser sent it (empty before its first message).

    The browser is not trusted: values of the wrong type are dropped here, and the actions
    are checked by labeltool.review_actions.parse_actions.
    """
    value = st.session_state.get(key)
    screen = value.get("screen") if isinstance(value, dict) else None
    if not isinstance(screen, dict):
        return ScreenState()
    have = screen.get("have")
    return ScreenState(
        client=str(screen["client"])[:64] if screen.get("client") else None,
        actions=screen.get("actions"),
        showing=_whole(screen.get("showing")),
        epoch=_whole(screen.get("epoch")) or 0,
        have=frozenset(filter(None, map(_whole, have))) if isinstance(have, list) else frozenset(),
        nonce=_whole(screen.get("nonce")) or 0,
        original=_whole(screen.get("original")),
    )


def review_screen(
    *,
    key: str,
    project: ProjectInfo,
    reviewer: str,
    categories: list[Category],
    order: list[int],
    previous: int | None,
    views: list[ExampleView],
    standings: dict[int, Standing],
    acked: dict[str, int],
    refused: dict[str, list[dict]],
    epoch: int,
    run: int,
    nonce: int,
    have: frozenset[int],
    original: int | None,
    queue_count: int,
    end_of_queue: bool,
) -> None:
    """Draw the component with the window of examples `order` (the anchor first): the
    anchor's image made now, the others' if ready soon, and `original`'s full image if it is
    one of them."""
    images, originals = _images(
        project.images_root,
        views,
        anchor=order[0] if order else None,
        have=have,
        original=original,
    )
    _component(
        key=key,
        data={
            "project": project.name,
            "reviewer": reviewer,
            "epoch": epoch,
            "run": run,
            "nonce": nonce,
            "anchor": order[0] if order else None,
            "order": order,
            "previous": previous,
            "end": end_of_queue,
            "queueCount": queue_count,
            "acked": acked,
            "refused": refused,
            "classes": list(project.class_names),
            "categories": [
                {
                    "id": c.id,
                    "name": c.name,
                    "key": c.shortcut or "",
                    "colour": c.colour,
                    "description": c.description or "",
                    "incorrectLabel": bool(c.marks_incorrect_label),
                }
                for c in categories
            ],
            "examples": [
                _example(view, standings.get(view.pk)) | images[view.pk] for view in views
            ],
            "originals": originals,
            "imageSide": IMAGE_SIDE,
            "fitSide": FIT_SIDE,
            "screenKeys": [list(pair) for pair in screen_keys(categories)],
            "similarKey": similar_key(categories),
            "imageKeys": [
                {"key": key, "command": command, "words": words}
                for key, command, words in IMAGE_KEYS
            ],
            "reservedNote": RESERVED_KEY_NOTE,
        },
        default={"screen": None},
        on_screen_change=lambda: None,  # every rerun reads the state itself (see the page)
        height="content",
    )


def similar_key(categories: list[Category]) -> str | None:
    """SIMILAR_KEY, or None when one of the live `categories` has it (the category keeps it)."""
    taken = {(c.shortcut or "").lower() for c in categories if not c.archived}
    return None if SIMILAR_KEY in taken else SIMILAR_KEY


def screen_keys(categories: list[Category]) -> list[tuple[str, str]]:
    """The screen's own keys for its legend: SCREEN_KEYS, with "more like this" after the
    moving keys when its key is free."""
    keys = list(SCREEN_KEYS)
    if similar_key(categories):
        at = next(i for i, (key, _) in enumerate(keys) if key == "p") + 1
        keys.insert(at, (SIMILAR_KEY, SIMILAR_WORDS))
    return keys


def shown_image(images_root: str, image: str, *, kind: str = "review") -> dict:
    """The example's image as the screen gets it, made now: {"src": data URI, "width",
    "height" (what is sent), "sourceWidth", "sourceHeight" (the image's own pixels, upright)},
    or {"imageProblem": why it cannot be shown}. A photo comes upright and fitted in 768 x 768
    from labeltool.renditions' caches; a small image (such as an 8x8 digit) at its own pixels,
    which the browser enlarges."""
    try:
        return _sent(default_pool().now(images_root, image, kind=kind))
    except ImageUnavailable as exc:
        return {"imageProblem": str(exc)}


# --- private helpers -------------------------------------------------------------------


def _images(
    images_root: str,
    views: list[ExampleView],
    *,
    anchor: int | None,
    have: frozenset[int],
    original: int | None,
) -> tuple[dict[int, dict], dict[int, dict]]:
    """Each view's image fields for the screen ({} when the browser holds its image), and the
    original of `original` when it is one of `views` and ready (else it is marked preparing)."""
    started = time.monotonic()
    pool = default_pool()
    images: dict[int, dict] = {view.pk: {} for view in views}
    ahead = [view for view in views if view.pk not in have and view.pk != anchor]
    jobs: dict[int, Future[Rendition]] = dict(
        zip(
            (view.pk for view in ahead),
            pool.prepare(images_root, [view.image for view in ahead], kind="review"),
            strict=True,
        )
    )
    wanted = next((view for view in views if view.pk == original), None)
    full = pool.prepare(images_root, [wanted.image], kind="original")[0] if wanted else None
    for view in views:
        if view.pk == anchor and view.pk not in have:
            images[view.pk] = shown_image(images_root, view.image)
    soon = [job for pk, job in jobs.items() if pk in _next_after(views, anchor)]
    wait(soon, timeout=max(0.0, started + NEXT_WAIT_SECONDS - time.monotonic()))
    pending = [*jobs.values(), *([full] if full else [])]
    wait(pending, timeout=max(0.0, started + PREPARE_WAIT_SECONDS - time.monotonic()))
    for pk, job in jobs.items():
        images[pk] = _settled(job) if job.done() else {"preparing": True}
    originals = {}
    if wanted is not None and full is not None:
        originals[wanted.pk] = _settled(full) if full.done() else {"preparing": True}
    return images, originals


def _next_after(views: list[ExampleView], anchor: int | None) -> set[int]:
    """The NEXT_READY examples after the anchor in the window (`views` is in queue order)."""
    pks = [view.pk for view in views]
    at = pks.index(anchor) + 1 if anchor in pks else 0
    return set(pks[at : at + NEXT_READY])


def _settled(job: Future[Rendition]) -> dict:
    """A finished job's image fields, or why the image cannot be shown."""
    problem = job.exception()
    if isinstance(problem, ImageUnavailable):
        return {"imageProblem": str(problem)}
    if problem is not None:
        raise problem
    return _sent(job.result())


def _sent(made: Rendition) -> dict:
    return {
        "src": made.data_uri(),
        "width": made.width,
        "height": made.height,
        "sourceWidth": made.source_width,
        "sourceHeight": made.source_height,
    }


def _example(view: ExampleView, standing: Standing | None) -> dict:
    standing = standing or Standing.IN_QUEUE
    return {
        "pk": view.pk,
        "id": view.example_id,
        "image": view.image,
        "src": None,  # the browser has it from an earlier rerun, unless the image fields say
        "imageProblem": None,
        "preparing": False,
        "label": view.label,
        "prediction": view.prediction,
        "pair": view.confusion_pair,
        "confidence": view.confidence,
        "top": [[name, p] for name, p in view.top_probabilities],
        "comment": view.comment,
        "corrected": view.corrected_label,
        "state": view.review_state,
        "standing": standing.value,
        "reviewable": standing.reviewable,
        "tags": {who: sorted(ids) for who, ids in view.tags_by_reviewer.items()},
        # Shown pre-marked, never on: nothing is tagged until the reviewer accepts them.
        "suggestions": [
            {"category": s.category_id, "kind": s.kind, "reason": s.reason}
            for s in view.suggestions
        ],
    }


def _whole(value: object) -> int | None:
    """`value` if it is a whole number (JSON true/false are not), else None."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None
