"""Benchmark renditions: what a 12-megapixel phone photo costs the gallery and review screen.

A photo-like 4000 x 3000 JPEG (gradients, shapes and grain, quality 90) is written to a temp
dir, with the rendition cache beside it. The bench times, for the gallery tile ("thumb"):
the first render (a cold cache, then another photo's once the process is warm), the next
ones (from memory), the first one from a fresh RenditionCache over the same folder (from
disk, as after a restart), and the old path, `thumbnails.thumbnail()`; for the review
screen, the first "review" render against the old `images.display_png()`; then the
"original". It prints every rendition's bytes. The issue's target: a 12 MP photo's tile
served from cache in under 50 ms after the first time.

    .venv/bin/python bench/bench_renditions.py [--rounds 20]

Prints figures; asserts nothing about timings.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from PIL import Image, ImageDraw  # noqa: E402

from labeltool.images import display_png  # noqa: E402
from labeltool.renditions import RenditionCache  # noqa: E402
from labeltool.thumbnails import thumbnail  # noqa: E402

WIDTH, HEIGHT = 4000, 3000
PHOTO = "phone.jpg"
#: The same photo under another name: its first render shows the cost without the one-time
#: set-up of the process's first (Pillow's plugins, the WebP encoder).
SECOND_PHOTO = "phone-copy.jpg"
TARGET_MS = 50


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20, help="timed repeats of cheap calls")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="labeltool-bench-") as tmp:
        root, folder = Path(tmp) / "images", Path(tmp) / "cache"
        root.mkdir()
        _photo().save(root / PHOTO, quality=90)
        shutil.copy(root / PHOTO, root / SECOND_PHOTO)
        print(f"{WIDTH} x {HEIGHT} JPEG, {(root / PHOTO).stat().st_size:,} bytes\n")

        cache = RenditionCache(folder)
        first, thumb = _once(lambda: cache.get(root, PHOTO, kind="thumb"))
        second, _ = _once(lambda: cache.get(root, SECOND_PHOTO, kind="thumb"))
        memory = _times(lambda: cache.get(root, PHOTO, kind="thumb"), args.rounds)
        disk = _times(lambda: RenditionCache(folder).get(root, PHOTO, kind="thumb"), args.rounds)
        old = _times(lambda: thumbnail(root, PHOTO), 3)
        old_bytes = len(thumbnail(root, PHOTO).data)
        print("Gallery tile (thumb, fits 192 x 192):")
        _row("first render (cold cache, cold process)", [first])
        _row("another photo's first render", [second])
        _row("again, from memory", memory)
        _row("fresh cache object, from disk", disk)
        _row("old thumbnails.thumbnail()", old)
        print(
            f"  served from cache: {max(statistics.median(memory), statistics.median(disk)):.2f} "
            f"ms at worst (median), target under {TARGET_MS} ms\n"
        )

        review_first, review = _once(lambda: cache.get(root, PHOTO, kind="review"))
        original_first, original = _once(lambda: cache.get(root, PHOTO, kind="original"))
        old_review, old_png = _once(lambda: display_png(root, PHOTO))
        print("Review screen:")
        _row("review (fits 768 x 768), first render", [review_first])
        _row("original (full, upright), first render", [original_first])
        _row("old images.display_png()", [old_review])

        print("\nBytes sent:")
        for name, size, media_type, width, height in [
            ("thumb", len(thumb.data), thumb.media_type, thumb.width, thumb.height),
            ("old thumbnail", old_bytes, "image/jpeg", thumb.width, thumb.height),
            ("review", len(review.data), review.media_type, review.width, review.height),
            ("original", len(original.data), original.media_type, original.width, original.height),
            ("old display_png", len(old_png), "image/png", WIDTH, HEIGHT),
        ]:
            print(f"  {name:<18}{size:>14,} bytes  {media_type:<11} {width} x {height}")
        stats = cache.stats()
        print(
            f"\nCache: {stats.memory_hits} memory hits, {stats.misses} renders, "
            f"{stats.memory_bytes:,} bytes in memory, {stats.disk_bytes:,} on disk"
        )


def _once(call: Callable):
    """(milliseconds, result) of one call."""
    started = time.perf_counter()
    result = call()
    return (time.perf_counter() - started) * 1000, result


def _times(call: Callable, rounds: int) -> list[float]:
    return [_once(call)[0] for _ in range(rounds)]


def _row(what: str, timings: list[float]) -> None:
    if len(timings) == 1:
        print(f"  {what:<40}{timings[0]:>10.2f} ms")
    else:
        print(
            f"  {what:<40}{statistics.median(timings):>10.2f} ms median, "
            f"{max(timings):.2f} ms max ({len(timings)} calls)"
        )


def _photo() -> Image.Image:
    """A photo-like picture: colour gradients, a few shapes with edges, and sensor grain."""
    red = Image.linear_gradient("L").resize((WIDTH, HEIGHT))
    green = Image.radial_gradient("L").resize((WIDTH, HEIGHT))
    blue = Image.linear_gradient("L").rotate(90).resize((WIDTH, HEIGHT))
    picture = Image.merge("RGB", (red, green, blue))
    draw = ImageDraw.Draw(picture)
    for i in range(12):
        left, top = 300 * i, 200 * (i % 5)
        draw.ellipse((left, top, left + 700, top + 500), fill=(40 * i % 255, 90, 200 - 15 * i))
    grain = Image.effect_noise((WIDTH, HEIGHT), 18).convert("RGB")
    return Image.blend(picture, grain, 0.12)


if __name__ == "__main__":
    main()
