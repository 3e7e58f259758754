"""The shipped photo-like sample `shapes`: it imports cleanly, its photos stored sideways come
out upright, its ground truth agrees with its predictions, and the build functions reproduce
what is shipped."""

from __future__ import annotations

import csv
import importlib.util
import io
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from labeltool.categories import list_categories, load_categories_file
from labeltool.config import SAMPLE_DIR
from labeltool.datasets import Manifest
from labeltool.importing import import_predictions
from labeltool.predict import load_model, write_predictions
from labeltool.projects import get_project
from labeltool.renditions import rendition

#: How many dev photos (from the first) the byte-for-byte rebuild check draws again.
REDRAWN = 40


@pytest.fixture(scope="module")
def build_shapes():
    """sample_data/build_shapes.py loaded as a module (a script beside build_common.py)."""
    sys.path.insert(0, str(SAMPLE_DIR))
    try:
        spec = importlib.util.spec_from_file_location(
            "build_shapes", SAMPLE_DIR / "build_shapes.py"
        )
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(SAMPLE_DIR))
    return module


@pytest.fixture
def predictions(shapes_dir: Path) -> list[dict[str, str]]:
    """The rows of the shipped shapes/predictions.csv."""
    return _rows(shapes_dir / "predictions.csv")


@pytest.fixture
def truth(shapes_dir: Path) -> dict[str, dict[str, str]]:
    """The shipped shapes ground truth, by example_id."""
    return {row["example_id"]: row for row in _rows(shapes_dir / "ground_truth.csv")}


def test_shapes_imports_cleanly_with_its_categories(db, shapes_dir, predictions):
    """The shapes project imports (images under its own folder) with its four categories."""
    with db.begin() as session:
        summary = import_predictions(session, shapes_dir / "predictions.csv", project="shapes")
        project = get_project(session, "shapes")
        created = load_categories_file(
            session, shapes_dir / "categories.csv", project_id=project.id
        )
        names = [c.name for c in list_categories(session, project_id=project.id)]
        images_root = Path(project.images_root)
    assert summary.rows == len(predictions) >= 500
    assert summary.misclassified == sum(r["label"] != r["prediction"] for r in predictions)
    assert images_root == shapes_dir.resolve()
    assert len(created) == 4
    assert names[:3] == ["blurry", "incorrectly labeled", "dark"]
    assert "-as-" in names[3]


def test_every_photo_is_a_jpeg_stored_as_its_exif_orientation_says(shapes_dir, truth):
    """Each dev image is a 160x120 JPEG; those with EXIF orientation 6 or 8 are stored
    120x160 (on their side) and carry that tag, the upright ones carry none."""
    manifest = _rows(shapes_dir / "manifest.csv")
    assert [row["example_id"] for row in manifest] == list(truth)
    orientations = Counter()
    for row in manifest:
        orientation = int(truth[row["example_id"]]["exif_orientation"])
        orientations[orientation] += 1
        with Image.open(shapes_dir / row["image"]) as image:
            assert image.format == "JPEG", row["image"]
            assert image.getexif().get(0x0112, 1) == orientation, row["image"]
            sideways = orientation in (6, 8)
            assert image.size == ((120, 160) if sideways else (160, 120)), row["image"]
    assert set(orientations) == {1, 3, 6, 8}
    assert len(list((shapes_dir / "images").iterdir())) == len(manifest)


def test_photos_stored_sideways_come_out_upright_as_thumbnails(build_shapes, shapes_dir, truth):
    """For each EXIF orientation, a photo stored on its side or upside down is rendered as a
    160x120 gallery thumbnail that matches the photo as drawn (upright), not as stored."""
    labels = build_shapes.dev_labels()
    faults = build_shapes.choose_faults(labels)
    for orientation in (3, 6, 8):
        position = int(np.flatnonzero(faults.orientation == orientation)[0])
        example_id = build_shapes.example_id(position)
        assert truth[example_id]["exif_orientation"] == str(orientation)
        image = f"images/{example_id}.jpg"

        thumb = rendition(shapes_dir, image, kind="thumb")
        assert (thumb.width, thumb.height) == (160, 120)
        assert (thumb.source_width, thumb.source_height) == (160, 120)
        with Image.open(io.BytesIO(thumb.data)) as decoded:
            shown = np.asarray(decoded.convert("RGB"), dtype=np.float32)
        scene = build_shapes.dev_scene(position, int(labels[position]), faults)
        drawn = np.asarray(scene, dtype=np.float32)
        with Image.open(shapes_dir / image) as stored:
            as_stored = np.asarray(stored.convert("RGB").resize((160, 120)), dtype=np.float32)
        assert np.abs(shown - drawn).mean() < 4, orientation  # JPEG's loss only
        assert np.abs(as_stored - drawn).mean() > 4 * np.abs(shown - drawn).mean(), orientation


def test_ground_truth_agrees_with_predictions(shapes_dir, predictions, truth):
    """Ground truth covers every example; flipped labels, and only they, differ from the
    truth; and the misclassified count is what the README says."""
    assert [row["example_id"] for row in predictions] == list(truth)
    classes = {row["label"] for row in predictions}
    assert classes == {"circle", "hexagon", "square", "star", "triangle"}
    for row in predictions:
        fault = truth[row["example_id"]]
        assert fault["dataset_label"] == row["label"]
        assert (fault["label_flipped"] == "true") == (fault["true_label"] != row["label"])
        assert {fault["blurred"], fault["dark"]} <= {"true", "false"}
    errors = sum(row["label"] != row["prediction"] for row in predictions)
    readme = (shapes_dir.parent / "README.md").read_text(encoding="utf-8")
    assert f"### The errors ({errors} misclassified of {len(predictions)}" in readme
    assert 0.15 <= errors / len(predictions) <= 0.3


def test_faults_explain_the_errors_and_rotation_is_not_one_of_them(predictions, truth):
    """Blurred and dark photos are wrong far more often than clean ones and, with the flipped
    labels, make most of the errors; photos stored sideways are wrong no more often than
    upright ones (the model sees them upright, as the reviewer does)."""

    def error_rate(chosen) -> float:
        rows = [row for row in predictions if chosen(truth[row["example_id"]])]
        return sum(row["label"] != row["prediction"] for row in rows) / len(rows)

    def clean(fault) -> bool:
        return "true" not in (fault["blurred"], fault["dark"], fault["label_flipped"])

    clean_upright = error_rate(lambda f: clean(f) and f["exif_orientation"] == "1")
    assert error_rate(lambda f: f["blurred"] == "true") > 3 * clean_upright
    assert error_rate(lambda f: f["dark"] == "true") > 3 * clean_upright
    assert error_rate(lambda f: f["label_flipped"] == "true") > 0.8
    assert error_rate(lambda f: clean(f) and f["exif_orientation"] != "1") <= clean_upright + 0.05
    errors = [truth[row["example_id"]] for row in predictions if row["label"] != row["prediction"]]
    assert sum(not clean(fault) for fault in errors) >= 0.6 * len(errors)


def test_the_shipped_model_predicts_the_shipped_predictions(tmp_path, shapes_dir, predictions):
    """model.pt (tiny-rgb-cnn-64x48) predicting manifest.csv through labeltool.predict gives
    predictions.csv: the same labels, and probabilities to 1e-3."""
    model = load_model(shapes_dir / "model.pt")
    assert (model.kind, model.architecture.name) == ("state_dict", "tiny-rgb-cnn-64x48")
    manifest = Manifest(shapes_dir / "manifest.csv", class_names=model.class_names)
    write_predictions(tmp_path / "out.csv", model, manifest, threads=1)
    got = _rows(tmp_path / "out.csv")

    assert [r["prediction"] for r in got] == [r["prediction"] for r in predictions]
    columns = [c for c in predictions[0] if c == "confidence" or c.startswith("prob_")]
    for mine, theirs in zip(got, predictions, strict=True):
        for column in columns:
            assert abs(float(mine[column]) - float(theirs[column])) <= 1e-3, (mine, column)


def test_build_functions_reproduce_the_shipped_truth_and_photos(build_shapes, shapes_dir, truth):
    """The labels and fault picks give exactly the shipped ground truth, and drawing the first
    photos again gives the shipped JPEG files byte for byte."""
    labels = build_shapes.dev_labels()
    faults = build_shapes.choose_faults(labels)
    classes = build_shapes.CLASSES
    assert [build_shapes.example_id(p) for p in range(len(labels))] == list(truth)
    for position, label in enumerate(labels):
        fault = truth[build_shapes.example_id(position)]
        assert fault["true_label"] == classes[label]
        assert fault["dataset_label"] == classes[faults.dataset_labels[position]]
        assert (fault["blurred"] == "true") == faults.blurred[position]
        assert (fault["dark"] == "true") == faults.dark[position]
        assert fault["exif_orientation"] == str(faults.orientation[position])
        assert (fault["label_flipped"] == "true") == faults.label_flipped[position]
    for position in range(REDRAWN):
        shipped = (shapes_dir / "images" / f"{build_shapes.example_id(position)}.jpg").read_bytes()
        assert build_shapes.dev_photo(position, int(labels[position]), faults) == shipped, position


def test_the_readme_table_counts_the_errors_by_fault(shapes_dir, predictions, truth):
    """The README's shapes table gives each fault's errors as the shipped files have them."""
    readme = (shapes_dir.parent / "README.md").read_text(encoding="utf-8")
    section = readme.split("## `shapes`", 1)[1]
    errors = [truth[row["example_id"]] for row in predictions if row["label"] != row["prediction"]]
    for cause, column, value in (
        ("blurred photo", "blurred", "true"),
        ("dark (underexposed) photo", "dark", "true"),
        ("incorrectly labeled (label flipped)", "label_flipped", "true"),
    ):
        count = sum(fault[column] == value for fault in errors)
        assert f"| {cause} | {count} | {count / len(errors):.0%} |" in section, cause


# --- private helpers -------------------------------------------------------------------


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))
