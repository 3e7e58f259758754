"""Images: only files under the images root are opened, unreadable ones are reported by path,
and small images are enlarged by a whole factor with no smoothing."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image

from labeltool.images import ImageUnavailable, display_png, load_image, upscale

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """An images root holding one readable 8x8 greyscale digit."""
    folder = tmp_path / "images"
    (folder / "digits").mkdir(parents=True)
    _digit().save(folder / "digits" / "seven.png")
    return folder


def test_load_image_opens_a_file_under_the_root(root: Path) -> None:
    """A relative path under the root opens as the decoded image."""
    image = load_image(root, "digits/seven.png")

    assert (image.size, image.mode) == ((8, 8), "L")
    assert image.tobytes() == _digit().tobytes()


@pytest.mark.parametrize("image", ["../outside.png", "digits/../../outside.png", "/etc/passwd"])
def test_load_image_refuses_a_path_outside_the_root(root: Path, image: str) -> None:
    """A path that climbs out of the root, or an absolute one, is refused before opening."""
    _digit().save(root.parent / "outside.png")

    with pytest.raises(ImageUnavailable, match="outside the images root|absolute path"):
        load_image(root, image)


def test_load_image_refuses_a_symlink_that_leads_out_of_the_root(root: Path) -> None:
    """A link inside the root pointing at a file outside it is refused, though the file is a
    readable image."""
    outside = root.parent / "secret.png"
    _digit().save(outside)
    (root / "digits" / "link.png").symlink_to(outside)

    with pytest.raises(ImageUnavailable, match="outside the images root"):
        load_image(root, "digits/link.png")


def test_a_missing_file_is_reported_with_its_path(root: Path) -> None:
    """A missing image raises ImageUnavailable naming the full path it looked for."""
    with pytest.raises(ImageUnavailable, match="not found") as caught:
        load_image(root, "digits/eight.png")

    assert str(root.resolve() / "digits" / "eight.png") in str(caught.value)


def test_a_corrupt_file_is_reported_with_its_path(root: Path) -> None:
    """A file that is not a decodable image raises ImageUnavailable naming its path."""
    broken = root / "digits" / "broken.png"
    broken.write_bytes(PNG_SIGNATURE + b"not really a png")

    with pytest.raises(ImageUnavailable, match="cannot be read") as caught:
        load_image(root, "digits/broken.png")

    assert str(broken.resolve()) in str(caught.value)


@pytest.mark.parametrize(("min_side", "factor"), [(8, 1), (9, 2), (16, 2), (100, 13), (384, 48)])
def test_upscale_uses_a_whole_factor_and_no_smoothing(min_side: int, factor: int) -> None:
    """An 8x8 image is enlarged by the smallest whole factor reaching min_side, and every
    output pixel equals the source pixel it covers (nearest neighbour, no blending)."""
    source = _digit()

    big = upscale(source, min_side=min_side)

    assert big.size == (8 * factor, 8 * factor)
    assert min(big.size) >= min_side
    pixels, original = big.load(), source.load()
    for y in range(big.height):
        for x in range(big.width):
            assert pixels[x, y] == original[x // factor, y // factor], (x, y)


def test_upscale_keeps_the_aspect_of_a_non_square_image() -> None:
    """A 8x4 image is scaled by one factor on both sides until the shorter side is enough."""
    wide = Image.new("RGB", (8, 4), (200, 10, 10))
    wide.putpixel((7, 3), (0, 0, 255))

    big = upscale(wide, min_side=10)

    assert big.size == (24, 12)
    assert big.getpixel((23, 11)) == (0, 0, 255)
    assert big.getpixel((20, 8)) == (200, 10, 10)


def test_upscale_leaves_a_large_image_alone() -> None:
    """An image already as large as min_side is returned at its own size."""
    large = Image.new("L", (400, 300))

    assert upscale(large, min_side=256).size == (400, 300)


def test_display_png_returns_an_upscaled_png(root: Path) -> None:
    """display_png gives PNG bytes of the image enlarged without smoothing."""
    data = display_png(root, "digits/seven.png", min_side=64)

    assert data.startswith(PNG_SIGNATURE)
    shown = Image.open(io.BytesIO(data))
    assert shown.size == (64, 64)
    assert shown.getpixel((63, 63)) == _digit().getpixel((7, 7))
    assert shown.getpixel((0, 0)) == _digit().getpixel((0, 0))


def test_display_png_converts_unusual_modes(root: Path) -> None:
    """An image in a mode a browser may not show (CMYK) is sent as an RGB PNG."""
    Image.new("CMYK", (8, 8), (0, 255, 255, 0)).save(root / "cmyk.jpg")

    shown = Image.open(io.BytesIO(display_png(root, "cmyk.jpg", min_side=16)))

    assert (shown.format, shown.mode, shown.size) == ("PNG", "RGB", (16, 16))


def test_display_png_passes_on_an_unavailable_image(root: Path) -> None:
    """display_png raises the same ImageUnavailable as load_image for a missing file."""
    with pytest.raises(ImageUnavailable, match="not found"):
        display_png(root, "digits/none.png")


# --- helpers -------------------------------------------------------------------------------


def _digit() -> Image.Image:
    """An 8x8 greyscale image whose 64 pixels all differ (value 4 x index)."""
    image = Image.new("L", (8, 8))
    image.putdata([4 * i for i in range(64)])
    return image
