"""Small images for the gallery's tiles, so a page of a hundred examples stays light.

An image no larger than the tile is sent as it is (PNG, every pixel kept; the screen enlarges
it without smoothing). A larger one is shrunk to fit the tile: JPEG for photos, PNG when it
has transparency.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

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
