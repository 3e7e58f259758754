"""The gallery's grid of tiles: many errors at once, selected and tagged from mouse or keyboard.

A custom component v2 (plain JavaScript and CSS in this folder, no build step, running in the
page rather than an iframe, so it hears every key). Selecting, moving the focus ring and
Select page / Clear happen in the browser alone. Each action that writes (tag, untag, mark
reviewed) or opens an example names the example pks it is for and gets a number; the browser
sends the numbered list of actions it has not seen acknowledged as the component's state,
the page applies each new one once (one transaction each) and acknowledges the highest
number in the next rerun's data. A quick second key press therefore never replaces the
first, and a list sent twice applies nothing twice.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import streamlit as st

from app_pages.common import ProjectInfo
from labeltool.images import ImageUnavailable
from labeltool.labeling import ExampleView
from labeltool.models import Category
from labeltool.renditions import cached_rendition

_HERE = Path(__file__).parent
#: The component's state key that carries the browser's unacknowledged actions.
STATE = "grid"
#: What an action may ask for.
KINDS = frozenset({"tag", "untag", "reviewed", "accept", "open", "similar"})
#: A colour the browser may draw a chip in (anything else gets the default colour).
_COLOUR = re.compile(r"#[0-9a-fA-F]{6}")
DEFAULT_COLOUR = "#4c78a8"

_component = st.components.v2.component(
    "labeltool.gallery_grid",
    html=(_HERE / "gallery_grid.html").read_text(encoding="utf-8"),
    css=(_HERE / "gallery_grid.css").read_text(encoding="utf-8"),
    js=(_HERE / "gallery_grid.js").read_text(encoding="utf-8"),
)


@dataclass(frozen=True)
class GridAction:
    """One numbered action from the browser, for exactly the examples it names."""

    seq: int
    kind: str
    pks: tuple[int, ...]
    #: The category of a tag or untag.
    category_id: int | None
    #: The reviewer name the browser showed when the action was made.
    reviewer: str


def new_actions(key: str, acknowledged: Mapping[str, int]) -> tuple[str | None, list[GridAction]]:
    """(the browser's client id, its actions numbered above what `acknowledged` holds for it).

    Malformed entries are dropped: the list comes from the browser.
    """
    value = st.session_state.get(key)
    state = value.get(STATE) if isinstance(value, Mapping) else None
    if not isinstance(state, Mapping) or not isinstance(state.get("client"), str):
        return None, []
    client = state["client"]
    raw = state.get("actions")
    done = acknowledged.get(client, 0)
    actions = [a for a in map(_action, raw if isinstance(raw, list) else []) if a]
    return client, sorted((a for a in actions if a.seq > done), key=lambda a: a.seq)


def gallery_grid(
    *,
    key: str,
    project: ProjectInfo,
    views: Sequence[ExampleView],
    categories: Sequence[Category],
    reviewer: str,
    acknowledged: Mapping[str, int],
    notice: Mapping | None = None,
    notes: Mapping[int, str] | None = None,
) -> None:
    """Draw the grid of `views` with the project's categories (their colours and keys).

    `notice` ({"id", "text"}) is what the last actions did; the status line shows a new one.
    `notes` ({pk: text}) adds a line under a tile (its distance in "more like this").
    """
    _component(
        key=key,
        data={
            "reviewer": reviewer,
            "acked": dict(acknowledged),
            "notice": dict(notice) if notice else None,
            "categories": [
                {
                    "id": c.id,
                    "name": c.name,
                    "key": c.shortcut or "",
                    "colour": c.colour if _COLOUR.fullmatch(c.colour or "") else DEFAULT_COLOUR,
                }
                for c in categories
            ],
            "tiles": [
                _tile(project, view, reviewer, categories, (notes or {}).get(view.pk, ""))
                for view in views
            ],
        },
        default={STATE: None},
        on_grid_change=lambda: None,  # the page reads the actions itself before drawing
        height="content",
    )


def thumbnail_uri(images_root: str, image: str) -> tuple[str | None, str | None]:
    """(data: URI of the example's thumbnail, None) or (None, why it cannot be shown).

    Made once per image (upright, shrunk at decode) and kept by labeltool.renditions in memory
    and on disk, each bounded by bytes; an edited image is made afresh."""
    try:
        return cached_rendition(images_root, image, "thumb").data_uri(), None
    except ImageUnavailable as exc:
        return None, str(exc)


# --- private helpers -------------------------------------------------------------------


def _tile(
    project: ProjectInfo,
    view: ExampleView,
    reviewer: str,
    categories: Sequence[Category],
    note: str = "",
) -> dict:
    src, problem = thumbnail_uri(project.images_root, view.image)
    by_whom: dict[int, list[str]] = {}
    for who, ids in sorted(view.tags_by_reviewer.items()):
        for category_id in ids:
            by_whom.setdefault(category_id, []).append(who)
    return {
        "pk": view.pk,
        "id": view.example_id,
        "pair": view.confusion_pair,
        "confidence": view.confidence,
        "state": view.review_state,
        "src": src,
        "problem": problem,
        # In the categories' order; "mine" when this reviewer is among those who tagged it.
        "tags": [
            {"id": c.id, "mine": reviewer in by_whom[c.id], "by": by_whom[c.id]}
            for c in categories
            if c.id in by_whom
        ],
        # Dashed until accepted; the browser hides those this reviewer has tagged.
        "suggestions": [{"id": s.category_id, "reason": s.reason} for s in view.suggestions],
        "note": note,
    }


def _action(raw: object) -> GridAction | None:
    if not isinstance(raw, Mapping):
        return None
    seq, kind, pks = raw.get("seq"), raw.get("kind"), raw.get("pks")
    category_id, reviewer = raw.get("category"), raw.get("reviewer", "")
    if not _is_int(seq) or kind not in KINDS or not isinstance(pks, list):
        return None
    if not all(_is_int(pk) for pk in pks) or not isinstance(reviewer, str):
        return None
    if kind in ("tag", "untag") and not _is_int(category_id):
        return None
    if kind in ("open", "similar") and len(pks) != 1:
        return None
    return GridAction(
        seq=seq,
        kind=kind,
        pks=tuple(pks),
        category_id=category_id if kind in ("tag", "untag") else None,
        reviewer=reviewer,
    )


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
