"""Opening a project's images safely and preparing them for the screen.

Small images (the sample's digits are 8x8) are upscaled by a whole factor without
smoothing, so every pixel the model saw stays a crisp square.
"""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from labeltool.errors import LabeltoolError
from labeltool.importing import safe_image_path


class ImageUnavailable(LabeltoolError):
    """An example's image is missing, unreadable or outside the images root."""


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
    path = image_path(images_root, image)
    if not path.is_file():
        raise ImageUnavailable(f"image file not found: {path}")
    try:
        with Image.open(path) as opened:
            opened.load()
            return opened.copy()
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise ImageUnavailable(f"image file cannot be read: {path} ({exc})") from None


def upscale(image: Image.Image, *, min_side: int) -> Image.Image:
    """Enlarge by a whole factor (nearest neighbour) until the shorter side is >= min_side."""
    factor = max(1, -(-min_side // max(1, min(image.size))))
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
