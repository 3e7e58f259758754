"""Small images for the gallery's tiles, so a page of a hundred examples stays light.

An image no larger than the tile is sent as it is (PNG, every pixel kept; the screen enlarges
it without smoothing). A larger one is shrunk to fit the tile: JPEG for photos, PNG when it
has transparency.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw

from labeltool.images import load_image

#: The longest side of a thumbnail in pixels: twice a ~100 px tile, for high-density screens.
THUMBNAIL_SIDE = 192
JPEG_QUALITY = 85


@dataclass(frozen=True)
class Thumbnail:
    """An encoded thumbnail and its size in pixels."""

    media_type: str
    data: bytes
    width: int
    height: int


def thumbnail(images_root: str | Path, image: str, *, side: int = THUMBNAIL_SIDE) -> Thumbnail:
    """The example's image fitted within `side` x `side` pixels (ImageUnavailable if unreadable)."""
    picture = load_image(images_root, image)
    if picture.mode not in ("L", "RGB", "RGBA", "LA"):
        picture = picture.convert("RGBA" if "transparency" in picture.info else "RGB")
    if max(picture.size) <= side:
        return _encode(picture, "PNG")
    picture.thumbnail((side, side), Image.Resampling.LANCZOS)
    return _encode(picture, "PNG" if picture.mode in ("RGBA", "LA") else "JPEG")


# --- private helpers -------------------------------------------------------------------


def _encode(picture: Image.Image, kind: str) -> Thumbnail:
    buffer = io.BytesIO()
    options = {"quality": JPEG_QUALITY} if kind == "JPEG" else {}
    picture.save(buffer, format=kind, **options)
    return Thumbnail(
        media_type=f"image/{kind.lower()}",
        data=buffer.getvalue(),
        width=picture.width,
        height=picture.height,
    )


def contact_sheet(
    pictures: Sequence[Image.Image | None], *, columns: int = 3, cell: int = 96, gap: int = 3
) -> bytes:
    """One PNG of `pictures` in a grid of `columns`, each fitted in a `cell`-pixel square (small
    ones enlarged without smoothing, as the tiles show them); None (an unreadable image) is a
    grey square with a cross. The first picture gets a dark frame: a cluster's representative.
    """
    rows = max(1, -(-len(pictures) // columns))
    sheet = Image.new("RGB", (columns * (cell + gap) + gap, rows * (cell + gap) + gap), "white")
    draw = ImageDraw.Draw(sheet)
    for index, picture in enumerate(pictures):
        left = gap + (index % columns) * (cell + gap)
        top = gap + (index // columns) * (cell + gap)
        if picture is None:
            draw.rectangle((left, top, left + cell - 1, top + cell - 1), fill="#dddddd")
            draw.line((left, top, left + cell - 1, top + cell - 1), fill="#999999", width=2)
            draw.line((left + cell - 1, top, left, top + cell - 1), fill="#999999", width=2)
            continue
        fitted = picture.convert("RGB")
        scale = cell / max(fitted.size)
        size = (max(1, round(fitted.width * scale)), max(1, round(fitted.height * scale)))
        small = max(fitted.size) < cell / 2
        fitted = fitted.resize(
            size, Image.Resampling.NEAREST if small else Image.Resampling.LANCZOS
        )
        sheet.paste(fitted, (left + (cell - size[0]) // 2, top + (cell - size[1]) // 2))
    if pictures:
        draw.rectangle(
            (gap - 2, gap - 2, gap + cell + 1, gap + cell + 1), outline="#222222", width=2
        )
    buffer = io.BytesIO()
    sheet.save(buffer, format="PNG")
    return buffer.getvalue()
