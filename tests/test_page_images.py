"""The pages' images come from labeltool.renditions: a photo upright and small, a tiny digit
sent at its own pixels to the review screen (which enlarges it crisply) and to the gallery."""

from __future__ import annotations

import base64
import io
from pathlib import Path

from PIL import Image

from app_pages.widgets.gallery_grid import thumbnail_uri
from app_pages.widgets.review_screen import shown_image

#: EXIF Orientation 6: the camera was turned; the stored landscape pixels show as portrait.
ROTATE_90 = 6


def _decode(uri: str) -> tuple[str, Image.Image]:
    head, data = uri.split(",", 1)
    picture = Image.open(io.BytesIO(base64.b64decode(data)))
    picture.load()
    return head, picture


def _phone_photo(folder: Path) -> str:
    """A 1600x1200 JPEG stored landscape with Orientation 6: upright it is 1200x1600."""
    picture = Image.new("RGB", (1600, 1200), (40, 90, 160))
    exif = Image.Exif()
    exif[0x0112] = ROTATE_90
    picture.save(folder / "phone.jpg", quality=90, exif=exif)
    return "phone.jpg"


def test_a_phone_photo_is_upright_and_small_in_the_gallery_and_on_the_review_screen(
    tmp_path: Path,
) -> None:
    image = _phone_photo(tmp_path)

    tile, problem = thumbnail_uri(str(tmp_path), image)
    assert problem is None
    head, picture = _decode(tile)
    assert picture.size == (144, 192)  # portrait, fitted to 192
    assert head != "data:image/png;base64"  # a photo, not a lossless PNG

    shown = shown_image(str(tmp_path), image)
    _, picture = _decode(shown["src"])
    assert picture.size == (576, 768)  # portrait, fitted to the review size, not 1200x1600
    # The screen is told the photo's own size, upright: what 100% zoom draws.
    assert (shown["width"], shown["height"]) == (576, 768)
    assert (shown["sourceWidth"], shown["sourceHeight"]) == (1200, 1600)


def test_a_tiny_digit_is_sent_at_its_own_pixels_to_the_review_screen_and_the_gallery(
    tmp_path: Path,
) -> None:
    """An 8x8 digit reaches both screens as its own 64 pixels, lossless: the review screen
    enlarges it in the browser (pixelated, or smooth when the reviewer asks)."""
    digit = Image.new("L", (8, 8), 0)
    digit.putpixel((3, 3), 255)
    digit.save(tmp_path / "digit.png")

    tile, _ = thumbnail_uri(str(tmp_path), "digit.png")
    head, picture = _decode(tile)
    assert head == "data:image/png;base64" and picture.size == (8, 8)

    shown = shown_image(str(tmp_path), "digit.png")
    head, picture = _decode(shown["src"])
    assert head == "data:image/png;base64" and picture.size == (8, 8)
    assert (shown["sourceWidth"], shown["sourceHeight"]) == (8, 8)
    assert picture.convert("L").getpixel((3, 3)) == 255
    assert {value for _, value in picture.convert("L").getcolors()} == {0, 255}


def test_an_unreadable_image_says_why_instead_of_failing(tmp_path: Path) -> None:
    (tmp_path / "broken.jpg").write_bytes(b"not a jpeg")
    assert thumbnail_uri(str(tmp_path), "broken.jpg")[0] is None
    shown = shown_image(str(tmp_path), "broken.jpg")
    assert "src" not in shown and "broken.jpg" in shown["imageProblem"]
    assert "src" not in shown_image(str(tmp_path), "../outside.png")
