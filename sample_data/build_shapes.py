"""Build the photo-like sample project `shapes` in sample_data/shapes/ (called by build_sample.py).

Each image is a 160x120 JPEG "photo" of one coloured shape (circle, hexagon, square, star or
triangle, at any angle, size and place) with a soft shadow, on a gradient background with a
blotchy texture, a vignette and a little sensor noise. Every photo is drawn from its own seed
(`photo`), so any one of them can be drawn again alone. Steps, all seeded:
1. Draw TRAIN_SIZE clean train photos (kept in memory, JPEG round-tripped like the dev files)
   and train the `tiny-rgb-cnn-64x48` architecture on them (CPU, one thread).
2. Draw DEV_SIZE dev photos, balanced over the classes, and inject faults chosen
   independently: blurred, darkened (underexposed), stored sideways with an EXIF Orientation
   tag (as a phone held sideways stores them: only an EXIF-aware viewer shows them upright),
   and labels flipped to another class.
3. Write them as JPEGs with a manifest, and predict them with `labeltool.predict`, the code
   path `labeltool predict` uses (which turns photos upright by their EXIF orientation, as the
   app does), giving predictions.csv, and its features of each photo, giving
   embeddings.parquet; then the ground truth and the error categories.
"""

from __future__ import annotations

import colorsys
import io
import math
import shutil
import sys
import textwrap
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from build_common import (
    SEED,
    commonest_pair,
    flag,
    pick,
    read_csv,
    save_and_predict,
    share,
    train,
    write_csv,
)

ARCH = "tiny-rgb-cnn-64x48"
CLASSES = ["circle", "hexagon", "square", "star", "triangle"]
#: The photos' size (landscape 4:3; a photo stored sideways is HEIGHT x WIDTH).
WIDTH, HEIGHT = 160, 120
JPEG_QUALITY = 85
TRAIN_SIZE = 3000
DEV_SIZE = 600
EPOCHS = 10
#: The learning rate falls by this factor after each epoch, so training settles.
LR_DECAY = 0.85
#: Share of dev photos blurred, and the Gaussian radius in pixels of the 160x120 photo.
BLUR_SHARE = 0.2
BLUR_RADIUS = 3.0
#: Share of dev photos underexposed, and the range their brightness is scaled by.
DARK_SHARE = 0.1
EXPOSURE = (0.25, 0.45)
#: Share of dev photos stored sideways or upside down, and the EXIF orientations they carry
#: (6: turn 90 degrees clockwise to view, 8: 90 counter-clockwise, 3: 180).
ROTATED_SHARE = 0.2
ORIENTATIONS = (6, 8, 3)
#: Share of dev labels flipped to another class.
FLIP_SHARE = 0.05
#: Shapes are drawn this many times larger, then shrunk: smooth (antialiased) edges.
SUPERSAMPLE = 4
#: What each stored orientation needs to be upright, undone to store it sideways: the
#: inverse of what `ImageOps.exif_transpose` does for it.
_STORED = {
    6: Image.Transpose.ROTATE_90,
    8: Image.Transpose.ROTATE_270,
    3: Image.Transpose.ROTATE_180,
}
_EXIF_ORIENTATION = 0x0112
#: Seed streams, so train photos, dev photos and darkening never share random numbers.
_TRAIN, _DEV, _DARKEN = 0, 1, 2


@dataclass(frozen=True)
class Faults:
    """The faults injected into the dev split, one entry per dev example."""

    blurred: np.ndarray  # bool
    dark: np.ndarray  # bool
    orientation: np.ndarray  # int: the EXIF orientation stored (1: upright, no tag)
    label_flipped: np.ndarray  # bool
    dataset_labels: np.ndarray  # int: the class index the dataset shows (wrong where flipped)


def photo(kind: str, *, seed: tuple[int, ...]) -> Image.Image:
    """A clean, upright WIDTH x HEIGHT RGB photo of one `kind` of shape, drawn from `seed`."""
    rng = np.random.default_rng(seed)
    rows, columns = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float32)

    # Background: a gradient between two colours at any angle, with a blotchy texture.
    lightness = rng.uniform(0.3, 0.75)
    near = _colour(rng, lightness)
    far = _colour(rng, float(np.clip(lightness + rng.uniform(-0.2, 0.2), 0.2, 0.85)))
    angle = rng.uniform(0, 2 * math.pi)
    along = (columns - WIDTH / 2) * math.cos(angle) + (rows - HEIGHT / 2) * math.sin(angle)
    along = np.clip(along / max(WIDTH, HEIGHT) + 0.5, 0, 1)[..., None]
    background = near * (1 - along) + far * along
    blotches = np.zeros((HEIGHT, WIDTH), dtype=np.float32)
    for _wave in range(4):  # a few soft waves across the picture, 30-90 px long
        direction, length = rng.uniform(0, 2 * math.pi), rng.uniform(30, 90)
        phase = (columns * math.cos(direction) + rows * math.sin(direction)) / length
        blotches += np.sin(2 * math.pi * phase + rng.uniform(0, 2 * math.pi))
    background += blotches[..., None] * rng.uniform(4, 9)

    # The shape: any size, place and angle, dark on light or light on dark.
    radius = rng.uniform(0.26, 0.4) * HEIGHT
    centre = (
        rng.uniform(radius + 4, WIDTH - radius - 4),
        rng.uniform(radius + 4, HEIGHT - radius - 4),
    )
    turn = rng.uniform(0, 2 * math.pi)
    light_background = background.mean() / 255 > 0.5
    fill = _colour(rng, rng.uniform(0.1, 0.3) if light_background else rng.uniform(0.65, 0.9))
    mask = Image.new("L", (WIDTH * SUPERSAMPLE, HEIGHT * SUPERSAMPLE))
    corners = [(x * SUPERSAMPLE, y * SUPERSAMPLE) for x, y in _outline(kind, centre, radius, turn)]
    ImageDraw.Draw(mask).polygon(corners, fill=255)
    mask = mask.resize((WIDTH, HEIGHT), Image.Resampling.BOX)
    shadow = mask.filter(ImageFilter.GaussianBlur(3)).transform(
        (WIDTH, HEIGHT), Image.Transform.AFFINE, (1, 0, -3, 0, 1, -3)
    )
    inside = np.asarray(mask, dtype=np.float32)[..., None] / 255
    shade = np.asarray(shadow, dtype=np.float32)[..., None] / 255
    lit = 1 - 0.1 * ((columns - centre[0]) + (rows - centre[1]))[..., None] / radius
    pixels = background * (1 - 0.35 * shade) * (1 - inside) + fill * lit * inside

    # The camera: a vignette and a little sensor noise.
    off_centre = ((columns / WIDTH - 0.5) ** 2 + (rows / HEIGHT - 0.5) ** 2)[..., None]
    pixels = pixels * (1 - 0.35 * off_centre) + rng.normal(0, 2.5, pixels.shape)
    return Image.fromarray(np.clip(np.rint(pixels), 0, 255).astype(np.uint8))


def blur(image: Image.Image) -> Image.Image:
    """The photo out of focus: Gaussian blur of BLUR_RADIUS."""
    return image.filter(ImageFilter.GaussianBlur(BLUR_RADIUS))


def darken(image: Image.Image, *, seed: tuple[int, ...]) -> Image.Image:
    """The photo underexposed: its brightness scaled into EXPOSURE, with sensor noise."""
    rng = np.random.default_rng(seed)
    exposure = rng.uniform(*EXPOSURE)
    pixels = np.asarray(image, dtype=np.float32) * exposure
    pixels += rng.normal(0, 2.0, pixels.shape)
    return Image.fromarray(np.clip(np.rint(pixels), 0, 255).astype(np.uint8))


def stored_sideways(image: Image.Image, orientation: int) -> Image.Image:
    """The pixels a camera turned as EXIF `orientation` says stores for the upright `image`:
    `ImageOps.exif_transpose` of them, tagged `orientation`, gives `image` back."""
    return image if orientation == 1 else image.transpose(_STORED[orientation])


def jpeg(image: Image.Image, *, orientation: int = 1) -> bytes:
    """The JPEG file of `image`, tagged with the EXIF `orientation` unless it is 1."""
    buffer = io.BytesIO()
    options = {}
    if orientation != 1:
        exif = Image.Exif()
        exif[_EXIF_ORIENTATION] = orientation
        options["exif"] = exif.tobytes()
    image.save(buffer, format="JPEG", quality=JPEG_QUALITY, optimize=True, **options)
    return buffer.getvalue()


def dev_labels(*, seed: int = SEED) -> np.ndarray:
    """The true class index of each dev photo: DEV_SIZE / len(CLASSES) of each, shuffled."""
    rng = np.random.default_rng((seed, _DEV))
    return rng.permutation(np.arange(DEV_SIZE) % len(CLASSES))


def choose_faults(true_labels: np.ndarray, *, seed: int = SEED) -> Faults:
    """Pick which dev photos to blur, darken, store sideways and mislabel, independently."""
    rng = np.random.default_rng(seed)
    n = len(true_labels)
    blurred = pick(rng, n, BLUR_SHARE)
    dark = pick(rng, n, DARK_SHARE)
    rotated = pick(rng, n, ROTATED_SHARE)
    orientation = np.where(rotated, rng.choice(ORIENTATIONS, size=n), 1)
    flipped = pick(rng, n, FLIP_SHARE)
    shift = rng.integers(1, len(CLASSES), size=n)  # so a flipped label always changes
    dataset_labels = np.where(flipped, (true_labels + shift) % len(CLASSES), true_labels)
    return Faults(blurred, dark, orientation, flipped, dataset_labels)


def example_id(position: int) -> str:
    """The id of the dev photo at `position`."""
    return f"shape-{position:04d}"


def dev_scene(position: int, true_label: int, faults: Faults) -> Image.Image:
    """The dev photo at `position` upright, as the camera saw it: blurred or darkened as its
    faults say."""
    image = photo(CLASSES[true_label], seed=(SEED, _DEV, position))
    if faults.blurred[position]:
        image = blur(image)
    if faults.dark[position]:
        image = darken(image, seed=(SEED, _DARKEN, position))
    return image


def dev_photo(position: int, true_label: int, faults: Faults) -> bytes:
    """The JPEG file of the dev photo at `position`, stored as its EXIF orientation says:
    what is shipped."""
    orientation = int(faults.orientation[position])
    scene = dev_scene(position, true_label, faults)
    return jpeg(stored_sideways(scene, orientation), orientation=orientation)


def train_photos() -> tuple[list[Image.Image], np.ndarray]:
    """TRAIN_SIZE clean photos, balanced over the classes, as decoded from their JPEGs."""
    labels = np.random.default_rng((SEED, _TRAIN)).permutation(
        np.arange(TRAIN_SIZE) % len(CLASSES)
    )
    images = []
    for index, label in enumerate(labels):
        data = jpeg(photo(CLASSES[label], seed=(SEED, _TRAIN, index)))
        with Image.open(io.BytesIO(data)) as decoded:
            images.append(decoded.convert("RGB"))
    return images, labels


def build(out_dir: Path) -> str:
    """Write the shapes project's files in `out_dir`; returns its README section."""
    out_dir.mkdir(exist_ok=True)
    true_labels = dev_labels()
    faults = choose_faults(true_labels)

    images = out_dir / "images"
    shutil.rmtree(images, ignore_errors=True)
    images.mkdir()
    manifest_rows, truth_rows = [], []
    for position, true_label in enumerate(true_labels):
        ident = example_id(position)
        (images / f"{ident}.jpg").write_bytes(dev_photo(position, int(true_label), faults))
        dataset_label = CLASSES[faults.dataset_labels[position]]
        manifest_rows.append([ident, f"images/{ident}.jpg", dataset_label])
        truth_rows.append(
            [ident, CLASSES[true_label], dataset_label]
            + [flag(faults.blurred[position]), flag(faults.dark[position])]
            + [str(faults.orientation[position]), flag(faults.label_flipped[position])]
        )
    write_csv(out_dir / "manifest.csv", ["example_id", "image", "label"], manifest_rows)
    write_csv(
        out_dir / "ground_truth.csv",
        ["example_id", "true_label", "dataset_label", "blurred", "dark", "exif_orientation",
         "label_flipped"],
        truth_rows,
    )  # fmt: skip

    train_images, train_labels = train_photos()
    model, train_accuracy = train(
        ARCH, train_images, train_labels, num_classes=len(CLASSES), epochs=EPOCHS, lr_decay=LR_DECAY
    )
    summary = save_and_predict(out_dir, model, arch=ARCH, classes=CLASSES)
    counts = error_breakdown(out_dir / "predictions.csv", out_dir / "ground_truth.csv")
    true_name, predicted = counts["pair"]
    pair = f"{true_name}-as-{predicted}"
    write_csv(
        out_dir / "categories.csv",
        ["name", "description", "shortcut", "colour"],
        [
            ["blurry", "The photo is out of focus: the shape's edges and corners are soft.",
             "1", "#4e79a7"],
            ["incorrectly labeled", "The dataset's label is wrong: the photo shows another "
             "shape than its label says.", "2", "#e15759"],
            ["dark", "The photo is underexposed: the shape is hard to make out in the dark.",
             "3", "#b07aa1"],
            [pair, f"A {true_name} that looks like a {predicted} and was predicted as one.",
             "4", "#f28e2b"],
        ],
    )  # fmt: skip
    print(
        f"shapes: {summary}; blurred errors {counts['blurred']}, dark errors {counts['dark']}, "
        f"flipped errors {counts['flipped']}, {pair} errors {counts['pair_count']}",
        file=sys.stderr,
    )
    return _readme(summary.rows, train_accuracy, faults, counts, pair)


def error_breakdown(predictions: Path, ground_truth: Path) -> dict:
    """The errors by injected fault (errors, blurred, dark, flipped, rotated; rotated_other:
    rotated and another fault too; other: none of blurred, dark or flipped) and the commonest
    (label, prediction) pair among the others."""
    truth = {row["example_id"]: row for row in read_csv(ground_truth)}
    counts, pairs = Counter(), Counter()
    for row in read_csv(predictions):
        if row["label"] == row["prediction"]:
            continue
        fault = truth[row["example_id"]]
        blurred, dark = fault["blurred"] == "true", fault["dark"] == "true"
        flipped = fault["label_flipped"] == "true"
        counts["errors"] += 1
        counts["blurred"] += blurred
        counts["dark"] += dark
        counts["flipped"] += flipped
        rotated = fault["exif_orientation"] != "1"
        counts["rotated"] += rotated
        counts["rotated_other"] += rotated and (blurred or dark or flipped)
        if not (blurred or dark or flipped):
            counts["other"] += 1
            pairs[(row["label"], row["prediction"])] += 1
    pair, pair_count = commonest_pair(pairs)
    return {**counts, "pair": pair, "pair_count": pair_count}


# --- private helpers -------------------------------------------------------------------


def _colour(rng: np.random.Generator, lightness: float) -> np.ndarray:
    """A random hue at `lightness` (0-1), fairly saturated, as RGB 0-255."""
    red, green, blue = colorsys.hls_to_rgb(rng.random(), lightness, rng.uniform(0.35, 0.9))
    return np.array([red, green, blue], dtype=np.float32) * 255


def _outline(kind: str, centre: tuple[float, float], radius: float, turn: float):
    """The corners of the shape `kind` around `centre`, turned by `turn` radians."""
    corners, radii = {
        "circle": (72, (radius,)),
        "hexagon": (6, (radius,)),
        "square": (4, (radius,)),
        "star": (10, (radius * 1.05, radius * 0.45)),
        "triangle": (3, (radius * 1.1,)),
    }[kind]
    for k in range(corners):
        angle = turn + 2 * math.pi * k / corners
        reach = radii[k % len(radii)]
        yield centre[0] + reach * math.cos(angle), centre[1] + reach * math.sin(angle)


def _paragraph(*words: str) -> str:
    """The words as one paragraph, wrapped at 92 columns."""
    return textwrap.fill(" ".join(words), width=92)


def _readme(dev: int, train_accuracy: float, faults: Faults, counts: dict, pair: str) -> str:
    errors = counts["errors"]
    rotated = int((faults.orientation != 1).sum())
    rotated_other = counts["rotated_other"]
    rows = [
        ("blurred photo", counts["blurred"], int(faults.blurred.sum())),
        ("dark (underexposed) photo", counts["dark"], int(faults.dark.sum())),
        ("incorrectly labeled (label flipped)", counts["flipped"],
         int(faults.label_flipped.sum())),
        ("stored sideways, EXIF-rotated (not a cause)", counts["rotated"], rotated),
        ("none of blurred, dark, flipped (the model's own)", counts["other"], None),
        (f"... of which the commonest pair, `{pair}`", counts["pair_count"], None),
    ]  # fmt: skip
    table = "\n".join(
        f"| {cause} | {count} | {share(count, errors)} | "
        + (f"{count / injected:.0%} of {injected}" if injected else "-")
        + " |"
        for cause, count, injected in rows
    )
    return f"""
## `shapes`: photo-like shapes with known faults (in `shapes/`)

{_paragraph(
    f"{dev} photo-like JPEGs, {WIDTH}x{HEIGHT}, of one coloured shape each",
    f"({', '.join(CLASSES)}) at any angle, size and place, with a soft shadow, on a gradient",
    "background with a blotchy texture, a vignette and sensor noise: the photo pipeline",
    "(JPEG, EXIF orientation) on a project anyone can read at a glance.",
)}

### What is here
- `shapes/images/<example_id>.jpg`: the {dev} dev photos. {rotated} of them are stored
  sideways or upside down with an EXIF Orientation tag ({", ".join(map(str, ORIENTATIONS))}),
  as a phone held sideways stores them: only an EXIF-aware viewer (the app, a browser
  opening the file) shows them upright, while the stored pixels lie on their side.
- `shapes/manifest.csv`, `shapes/predictions.csv`, `shapes/model.pt` (`{ARCH}`, a
  weights-only checkpoint dict): as for the digits. `labeltool predict
  sample_data/shapes/manifest.csv --model sample_data/shapes/model.pt --out FILE` writes the
  same predictions; like the app, it turns each photo upright by its EXIF orientation first.
- `shapes/embeddings.parquet`: the model's features of each dev photo (`emb_0..emb_31`), as
  for the digits.
- `shapes/categories.csv`: blurry, incorrectly labeled, dark and the commonest confusion pair.
- `shapes/ground_truth.csv`: `true_label`, `dataset_label`, `blurred`, `dark`,
  `exif_orientation` (1: stored upright, no tag) and `label_flipped` of each dev photo.

### How it was built
1. {TRAIN_SIZE:,} clean train photos (balanced over the classes, saved as JPEG quality
   {JPEG_QUALITY} and decoded again), kept in memory; `{ARCH}` trained on them at 64x48
   ({EPOCHS} epochs, Adam, the learning rate falling by {1 - LR_DECAY:.0%} an epoch, one CPU
   thread): training accuracy {train_accuracy:.1%}.
2. {dev} dev photos, {dev // len(CLASSES)} of each class, with faults chosen independently:
   - {int(faults.blurred.sum())} blurred (Gaussian, radius {BLUR_RADIUS} px);
   - {int(faults.dark.sum())} underexposed (brightness scaled by {EXPOSURE[0]}-{EXPOSURE[1]}, with
     sensor noise);
   - {rotated} stored sideways or upside down with their EXIF orientation;
   - {int(faults.label_flipped.sum())} labels flipped to another shape.
3. The model predicted every dev photo through `labeltool.predict`.

### The errors ({errors} misclassified of {dev}, dev error {errors / dev:.1%})
| cause | misclassified | share of errors | error rate of those photos |
|---|---:|---:|---:|
{table}

{_paragraph(
    "A photo may have several faults, so the shares add up to more than 100%. The photos",
    "stored sideways are not a cause of errors: `labeltool predict` and the app both turn",
    f"them upright, so the model sees what the reviewer sees. {counts['rotated'] / rotated:.0%}",
    f"of them are misclassified against {errors / dev:.0%} of all photos, and {rotated_other}",
    f"of their {counts['rotated']} errors have another fault as well. For the same reason a",
    "reviewer cannot see which photos were stored sideways, so the project has no category",
    "for them: they are there to show that the pipeline turns them upright.",
)}
"""
