"""The review screen's keyboard-first component: the example on screen, its tags and keys.

Streamlit's own shortcuts click whatever button the browser shows when the key arrives, and
the server applies the click to whatever example it holds by then; at a fast typist's pace
that puts tags on examples nobody saw. This component (custom components v2: plain HTML,
CSS and JavaScript in this folder, no build step, running in the page itself rather than an
iframe, so it hears every key) captures each press in the browser with the example on screen,
shows the result at once, and sends the numbered list of presses to the server, which applies
each to its own example (labeltool.review_actions) and acknowledges them. The next examples of
the queue, images included, travel with every rerun, so `n` shows the next one at once.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from pathlib import Path

import streamlit as st

from app_pages.common import ProjectInfo, image_png
from labeltool.categories import RESERVED_KEYS
from labeltool.images import ImageUnavailable
from labeltool.labeling import ExampleView
from labeltool.models import Category
from labeltool.renditions import cached_rendition
from labeltool.review_actions import Standing

_HERE = Path(__file__).parent
#: The side the review image is drawn at, at least (small images are upscaled by a whole
#: factor, so every pixel the model saw stays a crisp square).
IMAGE_SIDE = 384
#: Keys the screen itself uses, shown in its legend (category keys come from the project).
SCREEN_KEYS = (
    ("n", "save & next"),
    ("s", "skip (not counted as reviewed)"),
    ("p", "previous"),
    ("/", "comment"),
    ("=", "corrected label"),
    ("Esc", "leave a text box or sidebar widget"),
    ("?", "show or hide the keys"),
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
    queue_count: int,
    end_of_queue: bool,
) -> None:
    """Draw the component with the window of examples `order` (the anchor first)."""
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
                _example(project, view, standings.get(view.pk), send_image=view.pk not in have)
                for view in views
            ],
            "screenKeys": [list(pair) for pair in SCREEN_KEYS],
            "reservedNote": RESERVED_KEY_NOTE,
        },
        default={"screen": None},
        on_screen_change=lambda: None,  # every rerun reads the state itself (see the page)
        height="content",
    )


def image_data_uri(images_root: str, image: str, min_side: int) -> tuple[str | None, str | None]:
    """(data: URI of the example's image for the screen, None) or (None, why it cannot be
    shown). A photo comes upright and fitted to the screen from labeltool.renditions' byte-
    bounded caches; an image smaller than `min_side` (such as an 8x8 digit) is enlarged
    without smoothing, every pixel a crisp square."""
    try:
        shown = cached_rendition(images_root, image, "review")
    except ImageUnavailable as exc:
        return None, str(exc)
    if max(shown.width, shown.height) >= min_side:
        return shown.data_uri(), None
    png = image_png(images_root, image, min_side)
    if isinstance(png, str):
        return None, png
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii"), None


# --- private helpers -------------------------------------------------------------------


def _example(
    project: ProjectInfo, view: ExampleView, standing: Standing | None, *, send_image: bool
) -> dict:
    uri, problem = image_data_uri(project.images_root, view.image, IMAGE_SIDE)
    if not send_image:
        uri = None  # the browser has it from an earlier rerun
    standing = standing or Standing.IN_QUEUE
    return {
        "pk": view.pk,
        "id": view.example_id,
        "image": view.image,
        "src": uri,
        "imageProblem": problem,
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
    }


def _whole(value: object) -> int | None:
    """`value` if it is a whole number (JSON true/false are not), else None."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None
