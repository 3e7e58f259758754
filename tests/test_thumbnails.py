"""Thumbnails: small images keep every pixel, large ones shrink to fit the tile, and an image
that cannot be read says why."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image

from labeltool.images import ImageUnavailable
from labeltool.thumbnails import THUMBNAIL_SIDE, thumbnail


def test_a_small_image_is_sent_unchanged_as_png(tmp_path: Path) -> None:
    """An 8x8 digit comes back as a PNG with exactly its own pixels (no resampling)."""
    digit = Image.new("L", (8, 8))
    digit.putdata([(i * 7) % 256 for i in range(64)])
    digit.save(tmp_path / "digit.png")

    small = thumbnail(tmp_path, "digit.png")

    decoded = Image.open(io.BytesIO(small.data))
    assert (small.media_type, small.width, small.height) == ("image/png", 8, 8)
    assert decoded.tobytes() == digit.tobytes()


def test_a_large_photo_shrinks_to_fit_as_jpeg(tmp_path: Path) -> None:
    """A 1000x500 photo fits in the thumbnail square, keeps its shape, and is a JPEG."""
    Image.new("RGB", (1000, 500), "teal").save(tmp_path / "photo.png")

    small = thumbnail(tmp_path, "photo.png")

    decoded = Image.open(io.BytesIO(small.data))
    assert (small.media_type, decoded.format) == ("image/jpeg", "JPEG")
    assert decoded.size == (small.width, small.height) == (THUMBNAIL_SIDE, THUMBNAIL_SIDE // 2)


def test_a_large_image_with_transparency_stays_png(tmp_path: Path) -> None:
    """Shrinking keeps an alpha channel, so a transparent image is not flattened into JPEG."""
    Image.new("RGBA", (400, 400), (255, 0, 0, 0)).save(tmp_path / "clear.png")

    small = thumbnail(tmp_path, "clear.png", side=100)

    decoded = Image.open(io.BytesIO(small.data))
    assert (small.media_type, decoded.mode, decoded.size) == ("image/png", "RGBA", (100, 100))


def test_an_unreadable_image_says_why(tmp_path: Path) -> None:
    """A file that is not an image raises ImageUnavailable naming it."""
    (tmp_path / "broken.png").write_text("not a picture")

    with pytest.raises(ImageUnavailable, match="broken.png"):
        thumbnail(tmp_path, "broken.png")
