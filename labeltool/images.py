"""Opening a project's images safely and preparing them for the screen.

Small images (the sample's digits are 8x8) are upscaled by a whole factor without
smoothing, so every pixel the model saw stays a crisp square.

Every image labeltool opens is reached through its project's images root
(`labeltool.storage.images_root`: a local folder or a URL, confined to the root) and decoded
through `open_image`: a file name the file system cannot hold and an image of more than
MAX_IMAGE_PIXELS (a decompression bomb: a few KB of PNG that decodes to gigabytes) are refused
with a reason, never a traceback.
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
from typing import BinaryIO

from PIL import Image, UnidentifiedImageError

from labeltool import storage
from labeltool.errors import ImageUnavailable  # noqa: F401  (importers catch it from here)
from labeltool.storage import (  # noqa: F401  (MAX_*_BYTES: callers read them from here)
    MAX_NAME_BYTES,
    MAX_PATH_BYTES,
    ImagesRoot,
    unusable_name,
)

#: The most pixels an image may have: 8192 x 8192, 64 megapixels (256 MB decoded as RGBA).
#: Above any classifier's input and any camera's photo but a few; Pillow's own default only
#: warns up to 179 megapixels (716 MB decoded), too much for a server showing many at once.
MAX_IMAGE_PIXELS = 8192 * 8192
#: The longest side an image is enlarged to for display.
MAX_DISPLAY_SIDE = 4096

# Set once here, so an Image.open anywhere in labeltool holds the same limit: Pillow warns
# above it and raises DecompressionBombError above twice it; open_image refuses both.
Image.MAX_IMAGE_PIXELS = MAX_IMAGE_PIXELS


def image_path(images_root: str | Path | ImagesRoot, image: str) -> Path:
    """The file behind an example's `image` in a local images root, refusing anything outside
    it (ImageUnavailable; a URL root has no files on this machine)."""
    return storage.images_root(images_root).local_path(image)


def load_image(images_root: str | Path | ImagesRoot, image: str) -> Image.Image:
    """Open and decode an example's image, or raise ImageUnavailable saying why."""
    with read_image(images_root, image) as opened:
        opened.load()
        return opened.copy()


@contextmanager
def read_image(images_root: str | Path | ImagesRoot, image: str) -> Iterator[Image.Image]:
    """Open an example's image (confined to its root, local or remote) lazily, for the block to
    decode.

    The block may prepare the decoding first (`draft` a JPEG to a smaller scale). A missing
    file, a refusal by `open_image` and a failure to decode inside the block are all
    ImageUnavailable naming the file or URL.
    """
    root = storage.images_root(images_root)
    with root.open(image) as stream, decode(stream, root.join(image)) as opened:
        yield opened


@contextmanager
def decode(stream: BinaryIO, location: str) -> Iterator[Image.Image]:
    """`open_image` over an open stream, its failures (and the block's) ImageUnavailable
    naming `location`."""
    try:
        with open_image(stream) as opened:
            yield opened
    except ImageUnavailable as exc:
        raise ImageUnavailable(f"image file cannot be read: {location} ({exc})") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:  # a broken or truncated file
        raise ImageUnavailable(f"image file cannot be read: {location} ({exc})") from None


@contextmanager
def open_image(path: str | os.PathLike[str] | BinaryIO) -> Iterator[Image.Image]:
    """Open an image file (a path or an open binary stream) lazily (its header only; `.load()`
    decodes it), refusing a name the file system cannot hold, a file that is no image and more
    than MAX_IMAGE_PIXELS pixels.

    Raises ImageUnavailable whose message is the reason alone (the caller names the file).
    """
    if isinstance(path, str | os.PathLike) and (reason := unusable_name(path)):
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


def check_image(path: str | os.PathLike[str] | BinaryIO) -> str | None:
    """Why the file at `path` cannot be used as an image, or None if it can.

    Only the header is read, so checking every image of a large dev set stays cheap.
    """
    try:
        with open_image(path):
            return None
    except ImageUnavailable as exc:
        return str(exc)


def upscale(image: Image.Image, *, min_side: int) -> Image.Image:
    """Enlarge by a whole factor (nearest neighbour) until the shorter side is >= min_side,
    and no further than MAX_DISPLAY_SIDE on the longer side (a 1 x 5000 strip stays small)."""
    factor = max(1, -(-min_side // max(1, min(image.size))))
    factor = max(1, min(factor, MAX_DISPLAY_SIDE // max(1, max(image.size))))
    if factor == 1:
        return image
    return image.resize((image.width * factor, image.height * factor), Image.Resampling.NEAREST)


def display_png(images_root: str | Path | ImagesRoot, image: str, *, min_side: int = 320) -> bytes:
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
