"""Per-image signals that become suggested error categories: blur, brightness, contrast,
information (entropy), size, and a perceptual hash for near-duplicates.

`measure` turns one picture into `ImageMeasures`; `measure_images` does it for a project's
images, each read once through its images root, in parallel. `flag_outliers` names the images
that stand apart from *this project's own* distribution ("blur score 12.3, in the blurriest 5%
of this project once contrast is accounted for"), so a project of dark X-rays does not call
every image dark. Blur is judged on the blur score over the picture's contrast squared
(`ImageMeasures.sharpness`), not the blur score alone: the Laplacian's variance scales with
the square of the contrast, so a dark, flat (but sharp) photo would otherwise be called
blurry and a blurred photo of a lively scene would not. Its limit: sensor noise does not dim
with the light, so in a photo both dark and blurred the noise passes for fine detail and it is
flagged dark, not blurry.
`near_duplicates` finds pairs whose perceptual hashes differ in a few bits, within one set
(dev against dev) or between two (dev against train). A hash is only a candidate: 64 bits
cannot tell apart small pictures that are alike by nature (two 28x28 digits of one class
often hash within 4 bits), so `same_pictures` confirms each candidate pair on the pictures
themselves, by the `difference` of their thumbnails (read again by `thumbnails`, only for the
candidates) given the detail they show: a copy re-saved, resized by a tenth, made a tenth
brighter or darker, or re-encoded as JPEG is the same picture, a second drawing of the same
thing is not.

Every measure but the size is taken from the same picture: turned upright (EXIF orientation),
laid over white where it is transparent, in greyscale (ITU-R 601 luma, Pillow's "L"), and
shrunk so its longest side is at most MEASURE_SIDE pixels (never enlarged). So a 12-megapixel
photo is measured in tens of milliseconds, and one scene taken at 4000x3000 and at 400x300
gets about the same blur score. Width and height are those of the whole upright image.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from typing import Literal, TypeVar

import numpy as np
from PIL import Image

from labeltool import storage
from labeltool.errors import ImageUnavailable
from labeltool.images import decode

#: The longest side, in pixels, of the picture the measures are taken from.
MEASURE_SIDE = 512
#: Fewer measured images than this and `flag_outliers` flags nothing: a share of a handful
#: of images is no pattern, and a median of a handful is no "most images".
MIN_IMAGES = 20
#: How far from the project's median an image must be to stand apart: a robust z-score
#: (Iglewicz and Hoaglin's modified z, from the median absolute deviation) beyond 3.5.
OUTLIER_Z = 3.5
#: At most this share of a project is flagged of one kind, whatever the scores say.
DEFAULT_SHARE = 0.5
#: The least difference from the median that is flagged, whatever the z-score, so a project
#: whose images are nearly all alike (a spread of zero) does not flag trifles.
MIN_GAP = {
    "blur": math.log(2.0),  # half the median sharpness
    "brightness": 0.05,  # of mean brightness, 0 to 1
    "entropy": 0.5,  # bits
    "size": math.log(1.25),  # a quarter wider, narrower, larger or smaller
}
#: How plainly darker (brighter) than most an image must be, as a robust z-score of its mean
#: brightness alone, before its exposure is judged: so a plain grey image is "low
#: information", not "dark", and a white one never "dark".
PLAINLY_Z = 1.5
#: Added to brightness (and to its distance from white) before taking logs, so a black image
#: has a finite exposure and, in a project of dark images, the differences among the darkest
#: (mostly sensor noise and compression) are not taken for stops apart.
_LIGHT_FLOOR = 0.05
#: Added to the sharpness before taking logs, so a flat image (sharpness 0) has a finite log;
#: well below the blurriest photos' (about 0.001).
_SHARPNESS_FLOOR = 1e-4
#: Bits in a perceptual hash (`imagehash.phash` with its default hash_size 8).
HASH_BITS = 64
#: Candidate pairs checked at once by `near_duplicates` (bounds its memory, ~100 MB).
CANDIDATE_CHUNK = 1_000_000
#: The side, in pixels, of the square grey `thumbnail` two candidate near-duplicates are
#: compared on: small enough that resampling and JPEG noise mostly average out, large enough
#: to keep the strokes of a digit.
THUMB_SIDE = 32
#: The most two thumbnails may differ (`difference`) and still show the same picture. On the
#: bundled samples every image's copy resized by 10%, 10% brighter or darker, or re-encoded as
#: JPEG at quality 75 differs by at most 0.018, while the least different distinct pictures
#: (heavily blurred digits of one class, the hardest case) differ by 0.043.
MAX_DIFFERENCE = 0.028

FlagKind = Literal["blurry", "dark", "bright", "low information", "odd size"]
#: The kinds of flag, in the order an image's flags are listed.
FLAG_KINDS: tuple[FlagKind, ...] = ("blurry", "dark", "bright", "low information", "odd size")


@dataclass(frozen=True)
class ImageMeasures:
    """What one image looks like, in numbers."""

    #: Variance of the 4-neighbour Laplacian of the grey pixels (0-255 scale) of the picture
    #: shrunk to MEASURE_SIDE: LOWER means blurrier; 0 for a flat image. Comparable across
    #: images at least MEASURE_SIDE on their longest side; smaller ones are measured as they
    #: are (enlarging would blur them), so compare 28x28 digits with 28x28 digits.
    blur: float
    #: Mean luma, 0 (black) to 1 (white).
    brightness: float
    #: Standard deviation of luma, 0 (flat) to 0.5.
    contrast: float
    #: Shannon entropy of the 256-level grey histogram in bits, 0 (one grey) to 8: low means
    #: little information.
    entropy: float
    #: Size of the whole image, upright, in pixels.
    width: int
    height: int
    #: width / height.
    aspect: float
    #: `imagehash.phash` as 16 hex digits; compare with `near_duplicates`.
    phash: str

    @property
    def sharpness(self) -> float:
        """The blur score over the variance of the grey pixels (contrast on the 0-255 scale,
        at least 1, squared): the share of the picture's variation that is fine detail, 0
        (flat or smooth) to 64, LOWER meaning blurrier. A change of exposure or contrast
        scales the blur score by its square and leaves this alone, so it is what
        `flag_outliers` judges blur on."""
        return self.blur / max(255 * self.contrast, 1.0) ** 2


@dataclass(frozen=True)
class Flag:
    """Why an image stands apart from the rest of its project."""

    kind: FlagKind
    #: In plain words, e.g. "mean brightness 0.08, in the darkest 5% of this project, ...".
    reason: str


def measure(image: Image.Image) -> ImageMeasures:
    """The measures of `image`, which is not changed.

    The image is turned upright by its EXIF orientation here, so callers need not do it; an
    image already turned with `ImageOps.exif_transpose` has no orientation left and is not
    turned twice.
    """
    width, height, grey = _upright_grey(image, image.size)
    return _measured(grey, width=width, height=height)


def measure_images(
    root: str | os.PathLike[str] | storage.ImagesRoot,
    images: Sequence[str],
    *,
    workers: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, ImageMeasures | str]:
    """The measures of each distinct image in `images`, or the reason it could not be read
    (missing, refused, not an image, truncated), keyed in the order given.

    Each image is opened once through its images root and decoded through `labeltool.images`
    (its pixel limit holds); a large JPEG is decoded at a reduced scale (`draft`), enough for
    MEASURE_SIDE. Images are read by `workers` threads (default: the CPUs, at most 16, for a
    local folder; 16 for remote storage). `progress(done, total)` is called from this thread,
    from 0 up to the number of distinct images.
    """
    return _each_read(root, images, _measured, workers=workers, progress=progress)


def thumbnail(image: Image.Image) -> np.ndarray:
    """`image` as `same_pictures` compares it: the measured picture (upright, over white,
    grey) squeezed to THUMB_SIDE x THUMB_SIDE and smoothed by a 3x3 binomial kernel, 0-255."""
    width, height, grey = _upright_grey(image, image.size)
    return _thumbnail(grey, width=width, height=height)


def thumbnails(
    root: str | os.PathLike[str] | storage.ImagesRoot,
    images: Sequence[str],
    *,
    workers: int | None = None,
) -> dict[str, np.ndarray | str]:
    """The `thumbnail` of each distinct image in `images`, or the reason it could not be read,
    each read once through its images root as `measure_images` reads it."""
    return _each_read(root, images, _thumbnail, workers=workers)


def difference(one: np.ndarray, other: np.ndarray) -> float:
    """How much two thumbnails differ, relative to the detail they show: 0 for the same
    picture, more the less alike they are (a tenth or more for two drawings of one digit); inf
    for a flat and a textured one.

    Each thumbnail is scaled to mean 0 and spread 1, then compared with the other's grey
    levels given in its own rank order (histogram matching), so a copy made brighter, darker
    or flatter, even clipped, differs little. Their mean squared difference is divided by the
    thumbnail's detail (the mean squared step between neighbouring pixels): resampling and
    JPEG noise grow with the detail, while two blurred pictures, having little, must match
    more closely. The average of the two ways round. Two flat thumbnails (nothing to
    compare) differ by 0 when their mean grey is within a tenth of the scale, else inf."""
    spread, other_spread = float(one.std()), float(other.std())
    if spread < _FLAT_SPREAD or other_spread < _FLAT_SPREAD:
        both = spread < _FLAT_SPREAD and other_spread < _FLAT_SPREAD
        return 0.0 if both and abs(float(one.mean() - other.mean())) < 25.5 else math.inf
    one, other = (one - one.mean()) / spread, (other - other.mean()) / other_spread
    ways = [
        float(((this - _in_order_of(this, that)) ** 2).mean()) / _detail(this)
        for this, that in ((one, other), (other, one))
    ]
    return sum(ways) / 2


def same_pictures(
    pairs: Sequence[tuple[str, str, int]],
    found: Mapping[str, np.ndarray | str],
    *,
    most: float = MAX_DIFFERENCE,
) -> list[tuple[str, str, int, float]]:
    """The candidate `pairs` (from `near_duplicates`) whose thumbnails in `found` (from
    `thumbnails`) differ by at most `most` (`difference`), as (image, other image, hash
    distance, difference), in the order given; a pair with an image not in `found` or
    unreadable is dropped."""
    kept = []
    for a, b, distance in pairs:
        one, other = found.get(a), found.get(b)
        if isinstance(one, np.ndarray) and isinstance(other, np.ndarray):
            apart = difference(one, other)
            if apart <= most:
                kept.append((a, b, distance, apart))
    return kept


def flag_outliers(
    values: Mapping[str, ImageMeasures | str], *, share: float = DEFAULT_SHARE
) -> dict[str, list[Flag]]:
    """The images that stand apart from the rest of the project, each with its flags; images
    with none are left out, and so are values that are not ImageMeasures (the reasons
    `measure_images` gives for unreadable images).

    An image gets a flag only if both hold, so a clean project flags nothing and a project
    whose images all share a trait (dark X-rays) does not flag them all:
    - it is among the most extreme `share` of the project: at most `share` of the images are
      as extreme or more (on a tie at the cut none of the tied images is flagged);
    - it is far from the project's median: a robust z-score beyond OUTLIER_Z (median absolute
      deviation; the mean absolute deviation when most images are exactly alike) and at least
      MIN_GAP from the median.
    Blur is judged on `ImageMeasures.sharpness` (the blur score over the contrast squared),
    so a dark or flat but sharp photo is not blurry. Sharpness and size are compared in log
    space (they span orders of magnitude); "odd size" takes the larger deviation of aspect
    ratio and of pixel count. "dark" and "bright" judge
    exposure (`_off_exposure`: the mean brightness, or distance from white, and the tonal range
    together, in stops) of images plainly darker (brighter) than most; an image flagged one of
    them is not also flagged "low information", its reason saying the detail lost comes from
    the exposure. With fewer than MIN_IMAGES measured images nothing is flagged.
    """
    if not 0 < share < 1:
        raise ValueError(f"share must be between 0 and 1, not {share}")
    measured = {name: m for name, m in values.items() if isinstance(m, ImageMeasures)}
    limit = int(share * len(measured) + 1e-9)
    if len(measured) < MIN_IMAGES or limit == 0:
        return {}
    names = list(measured)
    column = {
        field: np.array([getattr(measured[n], field) for n in names], dtype=np.float64)
        for field in ("blur", "sharpness", "brightness", "entropy", "width", "height")
    }
    typical = {field: float(np.median(column[field])) for field in column}
    aspect = np.log(column["width"] / column["height"])
    off_aspect = _robust_z(aspect, gap=MIN_GAP["size"])
    off_area = _robust_z(np.log(column["width"] * column["height"]), gap=MIN_GAP["size"])
    # One-sided traits are judged against the spread of the project's other side: when a
    # fifth of a project is blurred, those blurred images widen the usual spread (MAD) so
    # much that none stands out from it, while the sharp side's spread is untouched.
    apart: dict[FlagKind, np.ndarray] = {
        "blurry": -_robust_z(
            np.log(column["sharpness"] + _SHARPNESS_FLOOR), gap=MIN_GAP["blur"], clean="high"
        ),
        "dark": _off_exposure(column["brightness"], column["entropy"]),
        "bright": _off_exposure(1.0 - column["brightness"], column["entropy"]),
        "low information": -_robust_z(column["entropy"], gap=MIN_GAP["entropy"], clean="high"),
        "odd size": np.maximum(np.abs(off_aspect), np.abs(off_area)),
    }
    order = {kind: np.argsort(np.argsort(-apart[kind], kind="stable")) for kind in apart}

    def percent(kind: FlagKind, i: int) -> str:
        """The smallest whole percentage of the project this image is among, by its kind."""
        return f"{max(1, math.ceil(100 * (order[kind][i] + 1) / len(names)))}%"

    superlative = {"dark": "darkest", "bright": "brightest"}

    def reason(kind: FlagKind, i: int) -> str:
        where = "of this project, where most are about"
        if kind == "blurry":
            return (
                f"blur score {_short(column['blur'][i])}, in the blurriest {percent(kind, i)} "
                f"of this project once contrast is accounted for, where most are about "
                f"{_short(typical['blur'])}"
            )
        if kind in ("dark", "bright"):
            return (
                f"mean brightness {column['brightness'][i]:.2f}, in the {superlative[kind]} "
                f"{percent(kind, i)} {where} {typical['brightness']:.2f}"
            )
        if kind == "low information":
            return (
                f"entropy {column['entropy'][i]:.1f} bits (little detail), in the lowest "
                f"{percent(kind, i)} {where} {typical['entropy']:.1f} bits"
            )
        shape = f"odd size: {column['width'][i]:.0f}×{column['height'][i]:.0f}"
        if abs(off_aspect[i]) >= abs(off_area[i]):
            usual = _short(float(np.exp(np.median(aspect))))
            return f"{shape}, aspect {_short(math.exp(aspect[i]))} while most are about {usual}"
        return f"{shape} while most are about {typical['width']:.0f}×{typical['height']:.0f}"

    tails = {kind: _tail(apart[kind], limit=limit) for kind in FLAG_KINDS}
    # A dark (or bright) photo has few grey levels: its low information is the exposure's,
    # so it is flagged by the more specific kind only, which says so.
    explained = tails["low information"] & (tails["dark"] | tails["bright"])
    tails["low information"] &= ~explained
    flagged: dict[str, list[Flag]] = {}
    for kind in FLAG_KINDS:
        for index in np.flatnonzero(tails[kind]):
            text = reason(kind, int(index))
            if kind in ("dark", "bright") and explained[index]:
                text += (
                    f"; its little detail (entropy {column['entropy'][index]:.1f} bits) comes "
                    f"from the exposure"
                )
            flagged.setdefault(names[index], []).append(Flag(kind, text))
    return {name: flagged[name] for name in names if name in flagged}


def near_duplicates(
    hashes: Mapping[str, str],
    *,
    max_distance: int = 4,
    against: Mapping[str, str] | None = None,
) -> list[tuple[str, str, int]]:
    """Pairs of images whose perceptual hashes (16 hex digits, `ImageMeasures.phash`) differ
    in at most `max_distance` bits, as (image, other image, distance), closest first.

    Without `against`, pairs within `hashes` (each pair once, in the order given); with it,
    pairs of an image in `hashes` and one in `against` (e.g. dev against train), the first
    from `hashes`. Raises ValueError naming an image whose hash is not 16 hex digits.

    Multi-index hashing (the pigeonhole principle): the 64 bits are cut into max_distance + 1
    bands, and two hashes within max_distance bits agree exactly on at least one band. For each
    band the hashes are sorted by it and those agreeing are paired (numpy, no Python loop over
    images), then each candidate is checked with a popcount. Time O((d+1) n log n + C + answer)
    for d = max_distance, n hashes and C candidate pairs; for well-spread hashes C is about
    (d+1) n m / 2^(64/(d+1)) with m = n (or len(against)): ~3 million for 100,000 hashes at
    d = 4, well under a second. Each band gets fewer bits as d grows, so C grows quickly past
    d ~ 10; hashes alike in whole bands (many near-blank images) add candidates too.
    """
    if not 0 <= max_distance < HASH_BITS:
        raise ValueError(f"max_distance must be from 0 to {HASH_BITS - 1}, not {max_distance}")
    names, packed = list(hashes), _packed(hashes)
    within = against is None
    other_names, other = (names, packed) if against is None else (list(against), _packed(against))
    bands = _bands(max_distance + 1)
    lefts, rights, distances = [], [], []
    for number, (shift, mask) in enumerate(bands):
        left_keys, right_keys = (packed >> shift) & mask, (other >> shift) & mask
        for left, right in _agreeing(left_keys, right_keys, within=within):
            apart = packed[left] ^ other[right]
            distance = np.bitwise_count(apart)
            close = distance <= max_distance
            left, right, apart, distance = left[close], right[close], apart[close], distance[close]
            first = np.ones(len(left), dtype=bool)  # count a pair in the first band it agrees on
            for earlier_shift, earlier_mask in bands[:number]:
                first &= ((apart >> earlier_shift) & earlier_mask) != 0
            lefts.append(left[first])
            rights.append(right[first])
            distances.append(distance[first])
    if not lefts:
        return []
    left, right = np.concatenate(lefts), np.concatenate(rights)
    distance = np.concatenate(distances).astype(np.int64)
    if within:
        left, right = np.minimum(left, right), np.maximum(left, right)
    order = np.lexsort((right, left, distance))
    found = zip(left[order].tolist(), right[order].tolist(), distance[order].tolist(), strict=True)
    return [(names[a], other_names[b], d) for a, b, d in found]


# --- private helpers -------------------------------------------------------------------

_ORIENTATION = 0x0112
#: The turn that makes an image with this EXIF orientation upright (as ImageOps.exif_transpose).
_UPRIGHT = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
_HEX_HASH = re.compile(r"[0-9a-fA-F]{16}")


#: Below this spread (grey levels) a thumbnail is flat: its correlation would be noise.
_FLAT_SPREAD = 0.5
#: What `_each_read` makes of each image it reads.
_Read = TypeVar("_Read")


def _each_read(
    root: str | os.PathLike[str] | storage.ImagesRoot,
    images: Sequence[str],
    then: Callable[..., _Read],
    *,
    workers: int | None,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, _Read | str]:
    """`then(grey, width=, height=)` of each distinct image in `images` (see `_read_grey`), or
    the reason it could not be read, keyed in the order given; read by `workers` threads
    (default: the CPUs, at most 16, for a local folder; 16 for remote storage).
    `progress(done, total)` is called from this thread, from 0 up to the distinct images."""
    reached = storage.images_root(root)
    distinct = list(dict.fromkeys(images))
    total = len(distinct)
    if progress:
        progress(0, total)
    if not distinct:
        return {}
    workers = max(1, workers or (min(16, os.cpu_count() or 1) if reached.is_local else 16))
    size = max(1, min(64, total // (workers * 4)))
    chunks = [distinct[i : i + size] for i in range(0, total, size)]

    def read_one(image: str) -> _Read | str:
        try:
            width, height, grey = _read_grey(reached, image)
        except ImageUnavailable as exc:
            return str(exc)
        return then(grey, width=width, height=height)

    def read_chunk(chunk: list[str]) -> list[tuple[str, _Read | str]]:
        return [(image, read_one(image)) for image in chunk]

    found: dict[str, _Read | str] = {}
    with ThreadPoolExecutor(max_workers=min(workers, len(chunks))) as pool:
        for future in as_completed([pool.submit(read_chunk, c) for c in chunks]):
            found.update(future.result())
            if progress:
                progress(len(found), total)
    return {image: found[image] for image in distinct}


def _read_grey(root: storage.ImagesRoot, image: str) -> tuple[int, int, np.ndarray]:
    """`image`'s upright size and grey picture (`_upright_grey`), opened through its images
    root and decoded through `labeltool.images`; ImageUnavailable says why it cannot be read
    (a Pillow failure while decoding too)."""
    with root.open(image) as stream, decode(stream, root.join(image)) as opened:
        size = opened.size
        if max(size) > 2 * MEASURE_SIDE:  # as resize's reducing_gap=2 in _shrunk
            opened.draft(None, _bounded(size, 2 * MEASURE_SIDE))  # a no-op but for JPEG
        opened.load()
        return _upright_grey(opened, size)


def _upright_grey(image: Image.Image, size: tuple[int, int]) -> tuple[int, int, np.ndarray]:
    """(width, height) of the whole upright image (`size` as stored), and its grey pixels
    (0-255, float64) upright and shrunk to MEASURE_SIDE."""
    orientation = image.getexif().get(_ORIENTATION, 1)
    width, height = size[::-1] if orientation in (5, 6, 7, 8) else size
    picture = _flattened(_shrunk(_plain(image)))
    if orientation in _UPRIGHT:
        picture = picture.transpose(_UPRIGHT[orientation])
    return width, height, np.asarray(picture, dtype=np.float64)


def _measured(grey: np.ndarray, *, width: int, height: int) -> ImageMeasures:
    import imagehash  # imports scipy's fftpack when first used

    levels = np.clip(np.rint(grey), 0, 255).astype(np.uint8)
    counts = np.bincount(levels.ravel(), minlength=256)
    chances = counts[counts > 0] / levels.size
    edged = np.pad(grey, 1, mode="edge")  # the border repeats, so a 1-pixel strip works too
    laplacian = edged[:-2, 1:-1] + edged[2:, 1:-1] + edged[1:-1, :-2] + edged[1:-1, 2:] - 4 * grey
    return ImageMeasures(
        blur=float(laplacian.var()),
        brightness=float(grey.mean() / 255),
        contrast=float(grey.std() / 255),
        entropy=max(0.0, float(-(chances * np.log2(chances)).sum())),
        width=width,
        height=height,
        aspect=width / height,
        phash=str(imagehash.phash(Image.fromarray(levels))),
    )


def _in_order_of(this: np.ndarray, that: np.ndarray) -> np.ndarray:
    """`this`'s values, sorted, laid out in the rank order of `that` (same size)."""
    laid = np.empty(that.size)
    laid[np.argsort(that, axis=None, kind="stable")] = np.sort(this, axis=None)
    return laid.reshape(that.shape)


def _detail(thumbnail: np.ndarray) -> float:
    """The mean squared step between neighbouring pixels, across and down."""
    return float(
        (np.diff(thumbnail, axis=0) ** 2).mean() + (np.diff(thumbnail, axis=1) ** 2).mean()
    )


def _thumbnail(grey: np.ndarray, *, width: int, height: int) -> np.ndarray:
    """The measured grey picture squeezed to THUMB_SIDE square (`width` and `height` unused:
    the picture is squeezed whatever its aspect, so a copy stretched a little still aligns),
    then smoothed by [1, 2, 1] / 4 both ways, which damps resampling and JPEG noise."""
    side = (THUMB_SIDE, THUMB_SIDE)
    small = Image.fromarray(grey.astype(np.float32)).resize(side, Image.Resampling.LANCZOS)
    pixels = np.asarray(small, dtype=np.float64)
    for axis in (0, 1):
        edged = np.pad(pixels, [(1, 1) if a == axis else (0, 0) for a in (0, 1)], mode="edge")
        before, after = (edged[:-2], edged[2:]) if axis == 0 else (edged[:, :-2], edged[:, 2:])
        pixels = (before + 2 * pixels + after) / 4
    return pixels


def _plain(image: Image.Image) -> Image.Image:
    """The image in L, LA, RGB or RGBA, or F (0-255) for 16- and 32-bit and float pixels."""
    mode = image.mode
    if mode in ("L", "LA", "RGB", "RGBA"):
        return image
    if mode == "1":
        return image.convert("L")
    if mode.startswith("I") or mode == "F":
        values = np.asarray(image, dtype=np.float64)
        top = values.max(initial=0.0)
        if mode.startswith("I;16") or (mode == "I" and top > 255):
            full = 65535.0
        else:
            full = 1.0 if mode == "F" and top <= 1.0 else 255.0
        return Image.fromarray((np.clip(values, 0, full) * (255 / full)).astype(np.float32))
    transparent = mode in ("PA", "La", "RGBa") or "transparency" in image.info
    return image.convert("RGBA" if transparent else "RGB")


def _shrunk(picture: Image.Image) -> Image.Image:
    size = _bounded(picture.size, MEASURE_SIDE)
    if size == picture.size:
        return picture
    return picture.resize(size, Image.Resampling.LANCZOS, reducing_gap=2.0)


def _bounded(size: tuple[int, int], side: int) -> tuple[int, int]:
    """`size` shrunk (never enlarged) so its longest side is at most `side`."""
    scale = side / max(size)
    if scale >= 1:
        return size
    return max(1, round(size[0] * scale)), max(1, round(size[1] * scale))


def _flattened(picture: Image.Image) -> Image.Image:
    """Grey (L, or F as it is), transparency laid over white as a page shows it."""
    if picture.mode in ("L", "F"):
        return picture
    if picture.mode in ("LA", "RGBA"):
        backdrop = Image.new("RGBA", picture.size, "white")
        picture = Image.alpha_composite(backdrop, picture.convert("RGBA"))
    return picture.convert("L")


def _robust_z(
    values: np.ndarray, *, gap: float, clean: Literal["low", "high"] | None = None
) -> np.ndarray:
    """Each value's modified z-score about the median; 0 within `gap` of the median.

    `clean` names the side whose spread is the yardstick (the side the flagged trait is not
    on); without it, both sides'. Falls back to both sides' when that side has no spread."""
    median = np.median(values)
    deviation = np.abs(values - median)
    spread = np.median(deviation)
    if clean is not None:
        side = values >= median if clean == "high" else values <= median
        one_sided = float(np.median(deviation[side])) if side.any() else 0.0
        # Never below half the two-sided spread: a side crowded with equal values (copies)
        # would make ordinary variation look extreme.
        spread = max(one_sided, spread / 2)
    if spread > 0:
        z = 0.6745 * (values - median) / spread
    elif (mean_deviation := deviation.mean()) > 0:  # most values exactly alike
        z = (values - median) / (1.253314 * mean_deviation)
    else:
        return np.zeros_like(values)
    return np.where(deviation >= gap, z, 0.0)


def _off_exposure(light: np.ndarray, entropy: np.ndarray) -> np.ndarray:
    """How far below the project's usual exposure each image is, as a robust z-score (high:
    under-exposed), judged against the well-exposed side's spread; 0 for an image not plainly
    darker than most. `light` is the mean brightness for "dark" and the mean distance from
    white for "bright".

    Exposure scales the light of every pixel by one factor, so it is judged in log space
    (stops), and it narrows the picture's tonal range by the same factor: the grey levels in
    use (2 ** entropy) shrink as the mean does. Their sum of logs doubles the evidence of
    under-exposure, while a scene that is merely dark (a black background, a bright subject)
    keeps its tonal range, and blur, which barely moves either, leaves it alone."""
    logged = np.log(light + _LIGHT_FLOOR)
    plainly = -_robust_z(logged, gap=0.0, clean="high") >= PLAINLY_Z
    plainly &= np.median(light) - light >= MIN_GAP["brightness"]
    off = -_robust_z(logged + math.log(2) * entropy, gap=0.0, clean="high")
    return np.where(plainly, off, 0.0)


def _tail(apart: np.ndarray, *, limit: int) -> np.ndarray:
    """Which images stand apart: a score (robust z, high = more extreme) beyond OUTLIER_Z, with
    no more than `limit` images scoring as high or higher."""
    as_high = len(apart) - np.searchsorted(np.sort(apart), apart, side="left")
    return (apart > OUTLIER_Z) & (as_high <= limit)


def _short(value: float) -> str:
    """A number as a person reads it: 480, 12.3, 1.0, 0.09."""
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.1f}" if abs(value) >= 1 else f"{value:.2f}"


def _packed(hashes: Mapping[str, str]) -> np.ndarray:
    for name, text in hashes.items():
        if not isinstance(text, str) or not _HEX_HASH.fullmatch(text):
            raise ValueError(
                f"the hash of '{name}' is {text!r}, not 16 hex digits (ImageMeasures.phash)"
            )
    return np.array([int(text, 16) for text in hashes.values()], dtype=np.uint64)


def _bands(count: int) -> list[tuple[np.uint64, np.uint64]]:
    """(shift, mask) of `count` bands of nearly equal width covering the 64 bits."""
    widths = [HASH_BITS // count + (1 if i < HASH_BITS % count else 0) for i in range(count)]
    shifts = np.cumsum([0, *widths[:-1]])
    return [(np.uint64(s), np.uint64((1 << w) - 1)) for s, w in zip(shifts, widths, strict=True)]


def _agreeing(
    left_keys: np.ndarray, right_keys: np.ndarray, *, within: bool
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Chunks of (left index, right index) of every pair whose keys are equal; `within` (the
    same keys on both sides) gives each pair of distinct items once."""
    order = np.argsort(right_keys, kind="stable")
    ranked = right_keys[order]
    if within:  # an item pairs with those after it in its run of equal keys
        lefts = order
        start = np.arange(1, len(ranked) + 1)
        end = np.searchsorted(ranked, ranked, side="right")
    else:
        lefts = np.arange(len(left_keys))
        start = np.searchsorted(ranked, left_keys, side="left")
        end = np.searchsorted(ranked, left_keys, side="right")
    counts = end - start
    some = counts > 0
    lefts, start, counts = lefts[some], start[some], counts[some]
    if not len(counts):
        return
    reached = np.cumsum(counts)
    cuts = np.searchsorted(reached, np.arange(CANDIDATE_CHUNK, reached[-1], CANDIDATE_CHUNK))
    bounds = np.unique(np.concatenate(([0], cuts + 1, [len(counts)])))
    for first, last in zip(bounds[:-1], bounds[1:], strict=True):
        many = counts[first:last]
        before = np.repeat(np.cumsum(many) - many, many)
        positions = np.repeat(start[first:last], many) + np.arange(int(many.sum())) - before
        yield np.repeat(lefts[first:last], many), order[positions]
