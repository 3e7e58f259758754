"""Where a project's images live, and the one safe way to reach an image from its root.

Every image path a file names (predictions, manifests, `import-tags`, folders) and every image
the app opens goes through `safe_image_path`: relative, forward slashes, never above the root.
"""

from __future__ import annotations

import os
from pathlib import PurePosixPath

from labeltool.limits import control_character, shown


def safe_image_path(image: str) -> str:
    """Normalise `image` to a relative forward-slash path, or raise ValueError if it escapes."""
    if bad := control_character(image):
        raise ValueError(f"cannot hold the control character {bad}")
    cleaned = image.strip().replace("\\", "/")
    if not cleaned:
        raise ValueError("is empty")
    pure = PurePosixPath(cleaned)
    if pure.is_absolute() or (len(cleaned) > 1 and cleaned[1] == ":"):
        raise ValueError(f"{shown(image)} is an absolute path; give it relative to the images root")
    parts = [p for p in pure.parts if p not in ("", ".")]
    depth = 0
    for part in parts:
        depth += -1 if part == ".." else 1
        if depth < 0:
            raise ValueError(f"{shown(image)} points outside the images root")
    return os.path.normpath("/".join(parts)).replace(os.sep, "/")
