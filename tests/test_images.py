"""Images: only files under the images root are opened, unreadable ones are reported by path,
decompression bombs and impossible file names are refused with a reason (at import and on
the page), and small images are enlarged by a whole factor with no smoothing."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import pytest
from PIL import Image

from app_pages.common import image_png
from labeltool.db import Database
from labeltool.errors import InvalidInput
from labeltool.images import ImageUnavailable, display_png, load_image, upscale
from labeltool.importing import import_predictions

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
LONG_NAME = "n" * 300 + ".png"


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


def test_upscale_stops_at_the_display_limit_on_the_longer_side() -> None:
    """A 1 x 3000 strip is not enlarged 320 times for a 320-pixel shorter side: its longer
    side stays within 4096 pixels."""
    strip = Image.new("L", (1, 3000))

    assert upscale(strip, min_side=320).size == (1, 3000)
    assert upscale(Image.new("L", (1, 2000)), min_side=320).size == (2, 4000)


# --- hostile images ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("side", "pixels"), [(9_000, "81,000,000"), (20_000, "400,000,000")], ids=["warned", "raised"]
)
def test_a_decompression_bomb_is_refused_by_its_size(root: Path, side: int, pixels: str) -> None:
    """A PNG of a few hundred KB that decodes to more than 8192 x 8192 pixels is refused with
    its pixel count, whether Pillow would only warn (81 MP) or raise (400 MP)."""
    bomb = _bomb_png(root / "bomb.png", side)
    assert bomb.stat().st_size < 1_000_000

    with pytest.raises(ImageUnavailable) as caught:
        load_image(root, "bomb.png")

    assert str(caught.value) == (
        f"image file cannot be read: {bomb.resolve()} ({pixels} pixels, more than the "
        "67,108,864 (8192 x 8192) labeltool opens; a decompression bomb?)"
    )


def test_the_page_shows_a_reason_for_a_bomb_and_a_long_name(root: Path) -> None:
    """image_png, which the pages draw as "🚫 reason", returns the reason as text for a bomb
    and for a name no file system can hold, instead of raising."""
    _bomb_png(root / "bomb.png", 20_000)

    assert "decompression bomb?" in image_png(str(root), "bomb.png", 64)
    assert "is 304 bytes long; file systems allow 255" in image_png(str(root), LONG_NAME, 64)


def test_a_file_name_over_255_bytes_is_refused_with_a_reason(root: Path) -> None:
    """An image name longer than a file system allows is an ImageUnavailable saying so, not an
    OSError from the system call."""
    with pytest.raises(ImageUnavailable) as caught:
        load_image(root, f"digits/{LONG_NAME}")

    assert f"the file name '{'n' * 40}…' is 304 bytes long; file systems allow 255" in str(
        caught.value
    )


def test_import_refuses_a_bomb_naming_row_and_column(db: Database, root: Path) -> None:
    """Importing predictions whose image is a decompression bomb is refused at its row and
    the image column when images are opened (--check-images open), and nothing is stored."""
    _bomb_png(root / "bomb.png", 20_000)
    path = _predictions(root, "digits/seven.png", "bomb.png")

    with db.begin() as session, pytest.raises(InvalidInput) as caught:
        import_predictions(session, path, project="p", images_root=root, check_images="open")

    assert (caught.value.row, caught.value.column) == (3, "image")
    assert "400,000,000 pixels, more than the 67,108,864" in str(caught.value)


def test_import_refuses_a_file_name_over_255_bytes_naming_row_and_column(
    db: Database, root: Path
) -> None:
    """A predictions row whose image name no file system can hold is refused at its row and
    the image column."""
    path = _predictions(root, LONG_NAME, "digits/seven.png")

    with db.begin() as session, pytest.raises(InvalidInput) as caught:
        import_predictions(session, path, project="p", images_root=root)

    assert (caught.value.row, caught.value.column) == (2, "image")
    assert "is 304 bytes long; file systems allow 255" in str(caught.value)


# --- helpers -------------------------------------------------------------------------------


def _bomb_png(path: Path, side: int) -> Path:
    """Write a black side x side greyscale PNG, compressed row by row so the test never holds
    the image in memory (400 MB of pixels fit in about 400 KB)."""
    packer = zlib.compressobj(9)
    row = bytes(side + 1)  # filter byte 0, then `side` black pixels
    data = b"".join(packer.compress(row) for _ in range(side)) + packer.flush()

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    header = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)  # 8-bit greyscale
    path.write_bytes(
        PNG_SIGNATURE + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b"")
    )
    return path


def _predictions(root: Path, *images: str) -> Path:
    """A predictions CSV in `root` with one row per image, each labelled 7 and predicted 1."""
    path = root / "predictions.csv"
    lines = ["example_id,image,label,prediction"]
    lines += [f"ex{i},{image},7,1" for i, image in enumerate(images)]
    path.write_text("\n".join(lines) + "\n")
    return path


def _digit() -> Image.Image:
    """An 8x8 greyscale image whose 64 pixels all differ (value 4 x index)."""
    image = Image.new("L", (8, 8))
    image.putdata([4 * i for i in range(64)])
    return image
