"""Build the sample project in sample_data/ from scikit-learn's bundled digits (no download).

Steps, all seeded so a re-run writes the same files:
1. Split the 1,797 8x8 digits into train and dev (stratified).
2. Train the `digits-cnn` architecture on the clean train split (CPU, one thread, seconds).
3. Inject known faults into the dev split: blur a share of the images (the model trained on
   sharp digits gets many wrong) and flip a few labels to another digit (incorrectly labeled).
4. Write the dev images and a manifest, then predict them with `labeltool.predict`, the code
   path `labeltool predict` uses, giving predictions.csv.
5. Write the ground truth of the faults, three error categories (blurry, incorrectly labeled,
   and the most frequent look-alike confusion pair among the remaining errors) and a README.
6. Run 2, "deblur augmentation": the fix the review of run 1 points to. The same network and
   seed, trained on the same train split except that AUG_BLUR_SHARE of its images are blurred
   the way the dev faults are (`blur`, BLUR_RADIUS) and keep their labels, for RUN2_EPOCHS.
   It predicts the unchanged dev set (same images, dataset labels and example ids) through the
   same `labeltool.predict` path, giving model_run2.pt and predictions_run2.csv. It gets many
   blurred dev images right; the flipped labels stay errors, as no model can fix them.

Run it with `make sample` (or `.venv/bin/python sample_data/build_sample.py`).
"""

from __future__ import annotations

import contextlib
import csv
import shutil
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

OUT_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(OUT_DIR.parent))  # run from a fresh clone without installing

SEED = 7
ARCH = "digits-cnn"
CLASSES = [str(d) for d in range(10)]
DEV_SHARE = 0.45
#: Share of dev images blurred, and the Gaussian radius (in pixels of the 8x8 image).
BLUR_SHARE = 0.25
BLUR_RADIUS = 1.5
#: Share of dev labels flipped to another digit.
FLIP_SHARE = 0.05
EPOCHS = 2
BATCH_SIZE = 32
LEARNING_RATE = 3e-3
#: Run 2: share of the train images blurred (labels kept) to teach the model blurred digits,
#: and its epochs (blurred images make the task harder: EPOCHS would leave it underfit).
AUG_BLUR_SHARE = 0.5
RUN2_EPOCHS = 10


@dataclass(frozen=True)
class Faults:
    """The faults injected into the dev split, one entry per dev example."""

    blurred: np.ndarray  # bool
    label_flipped: np.ndarray  # bool
    dataset_labels: np.ndarray  # int: the label the dataset shows (wrong where flipped)


def digit_images() -> tuple[np.ndarray, np.ndarray]:
    """The 1,797 digits as 8x8 uint8 images (0-255) and their labels (0-9)."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    pixels = np.rint(digits.images * (255 / 16)).astype(np.uint8)
    return pixels, digits.target.astype(np.int64)


def split_dev(labels: np.ndarray, *, seed: int = SEED) -> tuple[np.ndarray, np.ndarray]:
    """Stratified train / dev indices (sorted), DEV_SHARE of each digit going to dev."""
    from sklearn.model_selection import train_test_split

    train, dev = train_test_split(
        np.arange(len(labels)), test_size=DEV_SHARE, stratify=labels, random_state=seed
    )
    return np.sort(train), np.sort(dev)


def choose_faults(true_labels: np.ndarray, *, seed: int = SEED) -> Faults:
    """Pick which dev examples to blur and which labels to flip (to a different digit).

    The two picks are independent, so a few examples are both blurred and mislabeled.
    """
    rng = np.random.default_rng(seed)
    n = len(true_labels)
    blurred = np.zeros(n, dtype=bool)
    blurred[rng.choice(n, size=round(n * BLUR_SHARE), replace=False)] = True
    flipped = np.zeros(n, dtype=bool)
    flipped[rng.choice(n, size=round(n * FLIP_SHARE), replace=False)] = True
    shift = rng.integers(1, 10, size=n)  # 1..9, so a flipped label always changes
    dataset_labels = np.where(flipped, (true_labels + shift) % 10, true_labels)
    return Faults(blurred=blurred, label_flipped=flipped, dataset_labels=dataset_labels)


def blur(pixels: np.ndarray) -> np.ndarray:
    """Gaussian-blur one 8x8 uint8 image."""
    image = Image.fromarray(pixels, mode="L").filter(ImageFilter.GaussianBlur(BLUR_RADIUS))
    return np.asarray(image, dtype=np.uint8)


def augment_with_blur(pixels: np.ndarray, *, seed: int = SEED) -> tuple[np.ndarray, np.ndarray]:
    """A copy of the train images with AUG_BLUR_SHARE of them blurred, and which ones were."""
    rng = np.random.default_rng(seed)
    n = len(pixels)
    blurred = np.zeros(n, dtype=bool)
    blurred[rng.choice(n, size=round(n * AUG_BLUR_SHARE), replace=False)] = True
    augmented = pixels.copy()
    for position in np.flatnonzero(blurred):
        augmented[position] = blur(pixels[position])
    return augmented, blurred


def example_id(index: int) -> str:
    """The id of the digit at `index` in scikit-learn's dataset."""
    return f"digit-{index:04d}"


def train(pixels: np.ndarray, labels: np.ndarray, *, seed: int = SEED, epochs: int = EPOCHS):
    """Train digits-cnn on the given images with the preprocessing prediction uses."""
    import torch

    from labeltool.architectures import get_architecture

    torch.manual_seed(seed)
    torch.set_num_threads(1)
    # Some builds refuse; one thread and fixed seeds are enough for repeatable CPU training.
    with contextlib.suppress(RuntimeError):
        torch.use_deterministic_algorithms(True)
    arch = get_architecture(ARCH)
    inputs = torch.stack([arch.preprocess(Image.fromarray(p, mode="L")) for p in pixels])
    targets = torch.from_numpy(labels)
    model = arch.build(len(CLASSES))
    optimiser = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE)
    generator = torch.Generator().manual_seed(seed)
    model.train()
    for _epoch in range(epochs):
        order = torch.randperm(len(inputs), generator=generator)
        for start in range(0, len(order), BATCH_SIZE):
            batch = order[start : start + BATCH_SIZE]
            optimiser.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(inputs[batch]), targets[batch])
            loss.backward()
            optimiser.step()
    model.eval()
    with torch.inference_mode():
        accuracy = (model(inputs).argmax(1) == targets).float().mean().item()
    return model, accuracy


def main(out_dir: Path = OUT_DIR) -> None:
    from labeltool.datasets import Manifest
    from labeltool.predict import load_model, save_checkpoint, write_predictions

    pixels, labels = digit_images()
    train_idx, dev_idx = split_dev(labels)
    faults = choose_faults(labels[dev_idx])

    model, train_accuracy = train(pixels[train_idx], labels[train_idx])
    save_checkpoint(out_dir / "model.pt", model, arch=ARCH, class_names=CLASSES)

    images = out_dir / "images"
    shutil.rmtree(images, ignore_errors=True)
    images.mkdir()
    manifest_rows, truth_rows = [], []
    for position, index in enumerate(dev_idx):
        ident = example_id(int(index))
        image = pixels[index]
        if faults.blurred[position]:
            image = blur(image)
        Image.fromarray(image, mode="L").save(images / f"{ident}.png", optimize=True)
        dataset_label = str(faults.dataset_labels[position])
        manifest_rows.append([ident, f"images/{ident}.png", dataset_label])
        truth_rows.append(
            [ident, str(labels[index]), dataset_label]
            + [_flag(faults.blurred[position]), _flag(faults.label_flipped[position])]
        )
    _write_csv(out_dir / "manifest.csv", ["example_id", "image", "label"], manifest_rows)
    _write_csv(
        out_dir / "ground_truth.csv",
        ["example_id", "true_label", "dataset_label", "blurred", "label_flipped"],
        truth_rows,
    )

    manifest = Manifest(out_dir / "manifest.csv", class_names=CLASSES)
    summary = write_predictions(
        out_dir / "predictions.csv", load_model(out_dir / "model.pt"), manifest, split="dev"
    )

    counts = error_breakdown(out_dir / "predictions.csv", out_dir / "ground_truth.csv")
    true_label, predicted = counts["pair"]
    pair = f"{true_label}-as-{predicted}"
    _write_csv(
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
        f"{summary}; blurred errors {counts['blurred']}, flipped errors {counts['flipped']}, "
        f"{pair} errors {counts['pair_count']}",
        file=sys.stderr,
    )

    # Run 2: retrain with AUG_BLUR_SHARE of the train images blurred, predict the same dev set.
    augmented, _ = augment_with_blur(pixels[train_idx])
    model_run2, train_accuracy_run2 = train(augmented, labels[train_idx], epochs=RUN2_EPOCHS)
    save_checkpoint(out_dir / "model_run2.pt", model_run2, arch=ARCH, class_names=CLASSES)
    summary_run2 = write_predictions(
        out_dir / "predictions_run2.csv",
        load_model(out_dir / "model_run2.pt"),
        manifest,
        split="dev",
    )
    counts_run2 = count_errors(out_dir / "predictions_run2.csv", out_dir / "ground_truth.csv")
    write_reviews(out_dir, pair=pair)
    (out_dir / "README.md").write_text(
        _readme(summary.rows, len(train_idx), train_accuracy, faults, counts, pair)
        + _readme_run2(summary.rows, faults, counts, counts_run2, train_accuracy_run2)
    )
    print(
        f"run 2: {summary_run2}; blurred errors {counts_run2['blurred']}, "
        f"flipped errors {counts_run2['flipped']}",
        file=sys.stderr,
    )


def error_breakdown(predictions: Path, ground_truth: Path) -> dict:
    """Count the errors by injected fault, and find the commonest pair among the others."""
    counts, pairs = _errors_by_fault(predictions, ground_truth)
    if not pairs:
        raise SystemExit("no look-alike errors left to name a confusion pair after")
    # Commonest pair; ties go to the smallest (true label, prediction) so re-runs agree.
    pair, pair_count = min(pairs.items(), key=lambda item: (-item[1], item[0]))
    return {**counts, "pair": pair, "pair_count": pair_count}


def count_errors(predictions: Path, ground_truth: Path) -> Counter:
    """Count the errors by injected fault: errors, blurred, flipped, both, other."""
    counts, _ = _errors_by_fault(predictions, ground_truth)
    return counts


# --- private helpers -------------------------------------------------------------------


#: How many of run 1's errors the sample's lead has reviewed (a "good" sample, per the method).
REVIEWED_ERRORS = 60
#: Who reviewed them.
SAMPLE_REVIEWER = "sample-lead"


def write_reviews(out_dir: Path = OUT_DIR, *, pair: str = "8-as-1") -> None:
    """reviews_run1.csv: the first REVIEWED_ERRORS of run 1's errors in the review queue's
    random order (labeltool.importing.shuffle_key), tagged from the ground truth as a careful
    reviewer would: blurry, incorrectly labeled (with the right label) and the `pair`
    category. A wide table for `labeltool import-tags`, so `make run` opens on a project whose
    first run is reviewed and whose second run shows what the fix bought."""
    from labeltool.importing import shuffle_key

    truth = {row["example_id"]: row for row in _read_csv(out_dir / "ground_truth.csv")}
    errors = [r for r in _read_csv(out_dir / "predictions.csv") if r["label"] != r["prediction"]]
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
    _write_csv(
        out_dir / "reviews_run1.csv",
        ["example_id", "blurry", "incorrectly labeled", pair, "corrected_label", "reviewer"],
        rows,
    )


def _errors_by_fault(predictions: Path, ground_truth: Path) -> tuple[Counter, Counter]:
    """The error counts by fault, and the (label, prediction) pairs of the unfaulted errors."""
    truth = {row["example_id"]: row for row in _read_csv(ground_truth)}
    counts = Counter()
    pairs = Counter()
    for row in _read_csv(predictions):
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


def _flag(value) -> str:
    return "true" if value else "false"


def _write_csv(path: Path, header: list[str], rows: list[list[str]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)


def _read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def _readme(dev: int, train: int, train_accuracy: float, faults: Faults, counts, pair) -> str:
    errors = counts["errors"]
    return f"""# The sample project: handwritten digits with known faults

Built by `build_sample.py` (`make sample`) from scikit-learn's bundled 8x8 digits
(1,797 images, no download). Every step is seeded: re-running it writes the same files.

## What is here
- `images/<example_id>.png`: the {dev} dev images, 8x8 greyscale (the app upscales them).
- `manifest.csv`: `example_id,image,label` for the dev images, with the labels as the dataset
  shows them (some are wrong on purpose).
- `model.pt`: the trained `digits-cnn` weights, a weights-only checkpoint dict
  `{{"state_dict", "arch", "classes"}}`.
- `predictions.csv`: the model's predictions on the dev images (what `labeltool import` reads).
  `labeltool predict sample_data/manifest.csv --model sample_data/model.pt --out FILE`
  writes the same predictions.
- `categories.csv`: three error categories to start the review with.
- `ground_truth.csv`: the faults injected into each dev example (`true_label`,
  `dataset_label`, `blurred`, `label_flipped`). For tests and benchmarks: the app never shows it.

## How it was built
1. Stratified split: {train} train and {dev} dev examples ({DEV_SHARE:.0%} dev), seed {SEED}.
2. `digits-cnn` trained on the clean train split ({EPOCHS} epochs, Adam, one CPU thread):
   training accuracy {train_accuracy:.1%}. Training is kept short on purpose, so the model
   still makes look-alike mistakes of its own besides those the faults cause.
3. Faults injected into the dev split, chosen independently:
   - {int(faults.blurred.sum())} images blurred (Gaussian, radius {BLUR_RADIUS} px);
   - {int(faults.label_flipped.sum())} labels flipped to another digit;
   - {int((faults.blurred & faults.label_flipped).sum())} examples got both.
4. The model predicted every dev image through `labeltool.predict`.

## The errors ({errors} misclassified of {dev}, dev error {errors / dev:.1%})
| cause | misclassified | share of errors |
|---|---:|---:|
| blurred image | {counts["blurred"]} | {counts["blurred"] / errors:.0%} |
| incorrectly labeled (label flipped) | {counts["flipped"]} | {counts["flipped"] / errors:.0%} |
| neither (the model's own mistakes) | {counts["other"]} | {counts["other"] / errors:.0%} |
| ... of which the commonest pair, `{pair}` | {counts["pair_count"]} | \
{counts["pair_count"] / errors:.0%} |

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
## Run 2: deblur augmentation
Run 1's errors point to blurred images as the biggest cause a model can learn to handle, so
run 2 retrains the same `digits-cnn` (same seed, Adam, one CPU thread) with two changes:
- augmentation: {AUG_BLUR_SHARE:.0%} of the train images are blurred exactly as the dev
  faults are (Gaussian, radius {BLUR_RADIUS} px) and keep their labels;
- {RUN2_EPOCHS} epochs instead of {EPOCHS}: with blurred images the task is harder, and
  {EPOCHS} epochs leave the model underfit.

Training accuracy (on the augmented train split): {train_accuracy:.1%}. It predicted the
unchanged dev set (same images, dataset labels and example ids) through `labeltool.predict`:
- `model_run2.pt`: its weights, a checkpoint dict like `model.pt`.
- `predictions_run2.csv`: its predictions, the same columns and row order as `predictions.csv`.
  `labeltool predict sample_data/manifest.csv --model sample_data/model_run2.pt --out FILE`
  writes the same predictions.

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

## A reviewed sample of run 1
`reviews_run1.csv` is run 1's first {REVIEWED_ERRORS} errors in the review queue's random order,
tagged from `ground_truth.csv` as a careful reviewer ({SAMPLE_REVIEWER}) would: a wide table for
`labeltool import-tags ... --run 1`. `make run` imports it before run 2, so the app opens on a
project whose first run is reviewed, whose second run starts with the image tags of the
errors it still makes, and whose Compare runs page shows what the deblur augmentation bought.
"""


if __name__ == "__main__":
    main()
