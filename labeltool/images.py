"""Opening a project's images safely and preparing them for the screen.

Small images (the sample's digits are 8x8) are upscaled by a whole factor without
smoothing, so every pixel the model saw stays a crisp square.

Every image labeltool opens goes through `open_image`: a file name the file system cannot hold
and an image of more than MAX_IMAGE_PIXELS (a decompression bomb: a few KB of PNG that
decodes to gigabytes) are refused with a reason, never a traceback.
"""

from __future__ import annotations

import errno
import io
import os
import re
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from labeltool.errors import ImageUnavailable  # noqa: F401  (importers catch it from here)
from labeltool.storage import safe_image_path

#: The most pixels an image may have: 8192 x 8192, 64 megapixels (256 MB decoded as RGBA).
#: Above any classifier's input and any camera's photo but a few; Pillow's own default only
#: warns up to 179 megapixels (716 MB decoded), too much for a server showing many at once.
MAX_IMAGE_PIXELS = 8192 * 8192
#: The longest file name (one path component) and whole path Linux file systems accept, in bytes.
MAX_NAME_BYTES = 255
MAX_PATH_BYTES = 4095
#: The longest side an image is enlarged to for display.
MAX_DISPLAY_SIDE = 4096

# Set once here, so an Image.open anywhere in labeltool holds the same limit: Pillow warns
# above it and raises DecompressionBombError above twice it; open_image refuses both.
Image.MAX_IMAGE_PIXELS = MAX_IMAGE_PIXELS


def image_path(images_root: str | Path, image: str) -> Path:
    """The file behind an example's `image`, refusing anything outside the images root."""
    root = Path(images_root).resolve()
    try:
        relative = safe_image_path(image)
    except ValueError as exc:
        raise ImageUnavailable(f"image path {exc}") from None
    path = (root / relative).resolve()
    if not path.is_relative_to(root):
        raise ImageUnavailable(f"image '{image}' leads outside the images root '{root}'")
    return path


def load_image(images_root: str | Path, image: str) -> Image.Image:
    """Open and decode an example's image, or raise ImageUnavailable saying why."""
    with read_image(image_path(images_root, image)) as opened:
        opened.load()
        return opened.copy()


@contextmanager
def read_image(path: Path) -> Iterator[Image.Image]:
    """Open the image file at `path` (an `image_path`) lazily, for the block to decode.

    The block may prepare the decoding first (`draft` a JPEG to a smaller scale). A missing
    file, a refusal by `open_image` and a failure to decode inside the block are all
    ImageUnavailable naming the file.
    """
    if unusable_name(path) is None and not os.path.isfile(path):
        raise ImageUnavailable(f"image file not found: {path}")
    try:
        with open_image(path) as opened:
            yield opened
    except ImageUnavailable as exc:
        raise ImageUnavailable(f"image file cannot be read: {path} ({exc})") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:  # a broken or truncated file
        raise ImageUnavailable(f"image file cannot be read: {path} ({exc})") from None


@contextmanager
def open_image(path: str | os.PathLike[str]) -> Iterator[Image.Image]:
    """Open an image file lazily (its header only; `.load()` decodes it), refusing a name the
    file system cannot hold, a file that is no image and more than MAX_IMAGE_PIXELS pixels.

    Raises ImageUnavailable whose message is the reason alone (the caller names the file).
    """
    if reason := unusable_name(path):
        raise ImageUnavailable(reason)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            opened = Image.open(path)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        found = re.search(r"\((\d+) pixels\)", str(exc))
        size = f"{int(found.group(1)):,} pixels" if found else "more pixels"
        raise ImageUnavailable(_too_many_pixels(size)) from None
    except UnidentifiedImageError:
        raise ImageUnavailable("not an image file PIL can read") from None
    except OSError as exc:
        if exc.errno == errno.ENAMETOOLONG:
            raise ImageUnavailable("the path is too long for the file system") from None
        raise ImageUnavailable(exc.strerror or str(exc)) from None
    with opened:
        if opened.width * opened.height > MAX_IMAGE_PIXELS:  # if the global was changed
            raise ImageUnavailable(_too_many_pixels(f"{opened.width} x {opened.height} pixels"))
        yield opened


def check_image(path: str | os.PathLike[str]) -> str | None:
    """Why the file at `path` cannot be used as an image, or None if it can.

    Only the header is read, so checking every image of a large dev set stays cheap.
    """
    try:
        with open_image(path):
            return None
    except ImageUnavailable as exc:
        return str(exc)


def unusable_name(path: str | os.PathLike[str]) -> str | None:
    """Why no file system can hold `path` (a name over 255 bytes, a path over 4095), or None.

    Checked before any system call, which would fail with ENAMETOOLONG.
    """
    try:
        encoded = [os.fsencode(part) for part in Path(path).parts]
    except UnicodeEncodeError:
        return "the file name is not valid text for the file system"
    for part, raw in zip(Path(path).parts, encoded, strict=True):
        if len(raw) > MAX_NAME_BYTES:
            return (
                f"the file name '{part[:40]}…' is {len(raw):,} bytes long; "
                f"file systems allow {MAX_NAME_BYTES}"
            )
    total = len(os.fsencode(os.fspath(path)))
    if total > MAX_PATH_BYTES:
        return f"the path is {total:,} bytes long; file systems allow {MAX_PATH_BYTES:,}"
    return None


def upscale(image: Image.Image, *, min_side: int) -> Image.Image:
    """Enlarge by a whole factor (nearest neighbour) until the shorter side is >= min_side,
    and no further than MAX_DISPLAY_SIDE on the longer side (a 1 x 5000 strip stays small)."""
    factor = max(1, -(-min_side // max(1, min(image.size))))
    factor = max(1, min(factor, MAX_DISPLAY_SIDE // max(1, max(image.size))))
    if factor == 1:
        return image
    return image.resize((image.width * factor, image.height * factor), Image.Resampling.NEAREST)


def display_png(images_root: str | Path, image: str, *, min_side: int = 320) -> bytes:
    """PNG bytes of the image, upscaled without smoothing for display (cache these in the UI)."""
    picture = load_image(images_root, image)
    if picture.mode not in ("L", "RGB", "RGBA"):
        picture = picture.convert("RGB")
    buffer = io.BytesIO()
    upscale(picture, min_side=min_side).save(buffer, format="PNG")
    return buffer.getvalue()


# --- private helpers -------------------------------------------------------------------


def _too_many_pixels(size: str) -> str:
    return (
        f"{size}, more than the {MAX_IMAGE_PIXELS:,} (8192 x 8192) labeltool opens; "
        "a decompression bomb?"
    )
