"""The model runner: safe model loading, folder and manifest inputs, the output file, the CLI."""

from __future__ import annotations

import csv
import json
import pickle
import shutil
import struct
import zlib
from pathlib import Path

import click
import numpy as np
import pytest
import torch
from click.testing import CliRunner

from labeltool import embeddings
from labeltool.cli import cli
from labeltool.datasets import ImageFolder, Manifest, open_dataset
from labeltool.db import Database
from labeltool.errors import InvalidInput, ModelLoadError, UnsafePath
from labeltool.predict import load_model, predict, write_predictions
from labeltool.projects import dev_error_rate, get_project
from labeltool.runs import get_run
from labeltool.storage import LocalRoot

DIGITS = [str(d) for d in range(10)]
#: The architecture of the sample's model.pt (MNIST-sized digits).
ARCH = "digits-cnn-28x28"
torchscript_is_deprecated = pytest.mark.filterwarnings(
    "ignore:.*torch.jit.*is deprecated:DeprecationWarning"
)


class Payload:
    """Pickles to a call of Path.touch(marker): unpickling it runs code."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


@pytest.fixture
def shipped(sample_dir: Path) -> list[dict[str, str]]:
    """The rows of the shipped sample_data/predictions.csv."""
    return _rows(sample_dir / "predictions.csv")


@pytest.fixture
def sample_model(sample_dir: Path):
    """The sample's trained digits model."""
    return load_model(sample_dir / "model.pt")


@pytest.fixture
def bare_state_dict(tmp_path: Path, sample_dir: Path) -> Path:
    """The sample model's weights saved as a bare state_dict: no arch, no classes."""
    path = tmp_path / "bare.pt"
    torch.save(torch.load(sample_dir / "model.pt", weights_only=True)["state_dict"], path)
    return path


@pytest.fixture
def small_manifest(tmp_path: Path, sample_dir: Path, shipped) -> Path:
    """A manifest of the first 40 sample images, copied to tmp_path/images."""
    (tmp_path / "images").mkdir()
    rows = []
    for row in shipped[:40]:
        shutil.copy(sample_dir / row["image"], tmp_path / row["image"])
        rows.append({"image": row["image"], "label": row["label"]})
    return _write(tmp_path / "manifest.csv", rows)


@pytest.fixture
def digit_folder(tmp_path: Path, sample_dir: Path, shipped) -> Path:
    """A folder per class (tmp_path/digits/<label>/<id>.png) holding 40 sample images."""
    root = tmp_path / "digits"
    for row in shipped[:40]:
        (root / row["label"]).mkdir(parents=True, exist_ok=True)
        shutil.copy(sample_dir / row["image"], root / row["label"] / f"{row['example_id']}.png")
    return root


# --- running the model -----------------------------------------------------------------


def test_sample_model_reproduces_shipped_predictions(tmp_path, sample_dir, sample_model, shipped):
    """Predicting the sample manifest gives the shipped predictions.csv (confidences to 1e-3)."""
    manifest = Manifest(sample_dir / "manifest.csv", class_names=sample_model.class_names)
    summary = write_predictions(tmp_path / "out.csv", sample_model, manifest)
    got = _rows(tmp_path / "out.csv")

    assert [r["example_id"] for r in got] == [r["example_id"] for r in shipped]
    assert [r["prediction"] for r in got] == [r["prediction"] for r in shipped]
    for mine, theirs in zip(got, shipped, strict=True):
        for column in ["confidence"] + [f"prob_{d}" for d in DIGITS]:
            assert abs(float(mine[column]) - float(theirs[column])) <= 1e-3, (mine, column)
    assert summary.misclassified == sum(r["label"] != r["prediction"] for r in shipped)
    assert list(got[0]) == (
        ["example_id", "image", "label", "prediction", "confidence"]
        + [f"prob_{d}" for d in DIGITS]
        + ["split"]
        + [f"emb_{j}" for j in range(32)]
    )
    assert summary.dimensions == 32


def test_folder_per_class_labels_come_from_folders(digit_folder, sample_model, shipped):
    """A folder per class gives label = folder name, id = path without extension."""
    dataset = open_dataset(digit_folder, class_names=sample_model.class_names)
    assert isinstance(dataset, ImageFolder)
    results = list(predict(sample_model, dataset, batch_size=16))
    expected = {r["example_id"]: r for r in shipped[:40]}

    assert len(results) == 40
    for result in results:
        label, example_id = result.record.example_id.split("/")
        assert result.record.image == f"{label}/{example_id}.png"
        assert result.record.label == label == expected[example_id]["label"]
        assert result.prediction == expected[example_id]["prediction"]


def test_folder_classes_are_sorted_folder_names_unless_given(tmp_path, digit_folder):
    """Without class names a folder dataset uses its sorted folder names; with them, those."""
    found = sorted(p.name for p in digit_folder.iterdir())
    assert ImageFolder(digit_folder).class_names == found
    assert ImageFolder(digit_folder, class_names=DIGITS).class_names == DIGITS
    with pytest.raises(InvalidInput, match="folder '0' is not one of the classes"):
        ImageFolder(digit_folder, class_names=["cat", "dog"])


def test_manifest_ids_come_from_example_id_column_or_path(tmp_path, small_manifest):
    """A manifest without example_id uses the image path minus extension; with it, the column."""
    without = list(Manifest(small_manifest))
    assert without[0].example_id == without[0].image.removesuffix(".png")
    assert without[0].row == 2

    rows = _rows(small_manifest)
    _write(small_manifest, [{"example_id": f"ex{i}", **r} for i, r in enumerate(rows)])
    assert [r.example_id for r in Manifest(small_manifest)][:2] == ["ex0", "ex1"]


def test_predictions_are_streamed_batch_by_batch(tmp_path, small_manifest, sample_model):
    """Only the batches consumed are read: a corrupt image after them does not stop the first."""
    rows = _rows(small_manifest)
    (tmp_path / rows[-1]["image"]).write_bytes(b"not a png")
    results = predict(sample_model, Manifest(small_manifest), batch_size=8)
    first = [next(results) for _ in range(8)]
    assert [r.record.row for r in first] == list(range(2, 10))
    with pytest.raises(InvalidInput, match="cannot read image"):
        list(results)


def test_class_count_mismatch_is_refused(bare_state_dict, digit_folder):
    """A 10-class model over a folder of 3 classes, with no class names, is a clear error."""
    for extra in digit_folder.iterdir():
        if extra.name not in ("0", "1", "2"):
            shutil.rmtree(extra)
    model = load_model(bare_state_dict, arch=ARCH)
    with pytest.raises(ModelLoadError, match="scores 10 classes but the images have 3"):
        list(predict(model, ImageFolder(digit_folder)))


# --- the penultimate layer's features --------------------------------------------------


def _penultimate(model, manifest: Path) -> np.ndarray:
    """The model's activations just before its output layer, computed directly: every layer
    of the Sequential but the last, over the manifest's images."""
    from PIL import Image

    inputs = torch.stack(
        [
            model.architecture.preprocess(Image.open(manifest.parent / row["image"]))
            for row in _rows(manifest)
        ]
    )
    body = torch.nn.Sequential(*list(model.module.children())[:-1])
    with torch.inference_mode():
        return body(inputs).numpy()


def _emb(path: Path) -> np.ndarray:
    rows = _rows(path)
    columns = [c for c in rows[0] if c.startswith("emb_")]
    return np.array([[float(r[c]) for c in columns] for r in rows], dtype=np.float32)


def test_written_features_are_the_penultimate_activations(tmp_path, small_manifest, sample_model):
    """The emb_ columns hold each image's input to the output layer, to 6 significant
    digits, whatever the batch size."""
    out = tmp_path / "out.csv"
    summary = write_predictions(out, sample_model, Manifest(small_manifest), batch_size=7)

    expected = _penultimate(sample_model, small_manifest)
    assert summary.dimensions == expected.shape[1] == 32
    np.testing.assert_allclose(_emb(out), expected, rtol=1e-5, atol=1e-6)
    assert "with 32-dimension embeddings" in str(summary)
    assert not sample_model.module.output._forward_hooks, "the hook outlived the run"


def test_no_embeddings_writes_no_emb_columns(tmp_path, small_manifest, sample_model):
    """embeddings=False (--no-embeddings) writes the file as before, without emb_ columns."""
    out = tmp_path / "out.csv"
    summary = write_predictions(out, sample_model, Manifest(small_manifest), embeddings=False)
    assert not [c for c in _rows(out)[0] if c.startswith("emb_")]
    assert summary.dimensions == 0
    assert "embeddings" not in str(summary).replace(str(out), "")


@torchscript_is_deprecated
def test_a_torchscript_sequential_gives_the_same_features(tmp_path, small_manifest, sample_model):
    """A TorchScript Sequential cannot be hooked; it is run layer by layer to the same
    features."""
    scripted = tmp_path / "scripted.pt"
    torch.jit.save(torch.jit.script(sample_model.module), str(scripted))
    out = tmp_path / "out.csv"
    write_predictions(
        out, load_model(scripted, arch=ARCH, class_names=DIGITS), Manifest(small_manifest)
    )
    np.testing.assert_allclose(
        _emb(out), _penultimate(sample_model, small_manifest), rtol=1e-5, atol=1e-6
    )


class _Wrapped(torch.nn.Module):
    """A network whose forward is its own code: TorchScript keeps no Sequential to walk."""

    def __init__(self, inner: torch.nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(x) * 1.0


@torchscript_is_deprecated
def test_a_torchscript_without_a_reachable_layer_is_predicted_without_features(
    tmp_path, small_manifest, sample_model
):
    """When a TorchScript file's features cannot be caught, the predictions are still
    written, and the summary says why there are no embeddings."""
    scripted = tmp_path / "wrapped.pt"
    torch.jit.save(torch.jit.script(_Wrapped(sample_model.module)), str(scripted))
    out = tmp_path / "out.csv"
    summary = write_predictions(
        out, load_model(scripted, arch=ARCH, class_names=DIGITS), Manifest(small_manifest)
    )
    assert len(_rows(out)) == 40
    assert not [c for c in _rows(out)[0] if c.startswith("emb_")]
    assert "no embeddings: wrapped.pt is a TorchScript file whose last layer" in str(summary)


# --- loading models safely -------------------------------------------------------------


@torchscript_is_deprecated
def test_torchscript_model_gives_the_same_predictions(tmp_path, small_manifest, sample_model):
    """A TorchScript file of the sample digits model predicts like its state_dict."""
    scripted = tmp_path / "scripted.pt"
    torch.jit.save(torch.jit.script(sample_model.module), str(scripted))

    model = load_model(scripted, arch=ARCH, class_names=DIGITS)
    assert model.kind == "torchscript"
    got = [p.prediction for p in predict(model, Manifest(small_manifest))]
    assert got == [p.prediction for p in predict(sample_model, Manifest(small_manifest))]


@torchscript_is_deprecated
def test_torchscript_metadata_names_arch_and_classes(tmp_path, sample_model):
    """A TorchScript file's labeltool.json gives arch and classes; without it, --arch is asked."""
    module = torch.jit.script(sample_model.module)
    with_metadata, without = tmp_path / "with.pt", tmp_path / "without.pt"
    metadata = json.dumps({"arch": ARCH, "classes": DIGITS})
    torch.jit.save(module, str(with_metadata), _extra_files={"labeltool.json": metadata})
    torch.jit.save(module, str(without))

    loaded = load_model(with_metadata)
    assert (loaded.architecture.name, loaded.class_names) == (ARCH, DIGITS)
    with pytest.raises(ModelLoadError, match=r"without\.pt: .*pass --arch \(known: digits-cnn"):
        load_model(without)


def test_pickled_object_is_refused_and_never_run(tmp_path):
    """A torch.save'd or pickled Python object is refused and its payload never executes."""
    control = tmp_path / "control-ran"
    pickle.loads(pickle.dumps(Payload(control)))  # the payload does run when unpickled
    assert control.exists()

    marker = tmp_path / "payload-ran"
    saved, pickled = tmp_path / "model.pt", tmp_path / "model.pkl"
    torch.save(Payload(marker), saved)
    pickled.write_bytes(pickle.dumps(Payload(marker)))

    with pytest.raises(ModelLoadError, match=r"model\.pt: .*pickled Python objects"):
        load_model(saved, arch=ARCH)
    with pytest.raises(ModelLoadError, match=r"model\.pkl: not a TorchScript file or a weights"):
        load_model(pickled, arch=ARCH)
    assert not marker.exists()


def test_non_model_files_are_refused(tmp_path):
    """A text file, a missing file and a dict of non-tensors are each a ModelLoadError."""
    text = tmp_path / "notes.pt"
    text.write_text("hello")
    with pytest.raises(ModelLoadError, match=r"notes\.pt: not a TorchScript file or a weights"):
        load_model(text, arch=ARCH)
    with pytest.raises(ModelLoadError, match="model file not found"):
        load_model(tmp_path / "absent.pt", arch=ARCH)
    torch.save({"epoch": 3, "lr": 0.1}, numbers := tmp_path / "numbers.pt")
    with pytest.raises(ModelLoadError, match=r"numbers\.pt: not a state_dict"):
        load_model(numbers, arch=ARCH)


def test_wrong_or_missing_architecture_is_a_clear_error(sample_dir, bare_state_dict):
    """Unknown, conflicting, missing or ill-fitting architectures each say what is wrong."""
    checkpoint, bare = sample_dir / "model.pt", bare_state_dict

    with pytest.raises(ModelLoadError, match=r"unknown architecture 'resnet-9000' \(known: "):
        load_model(bare, arch="resnet-9000")
    with pytest.raises(ModelLoadError, match=f"says architecture '{ARCH}' but 'small-rgb"):
        load_model(checkpoint, arch="small-rgb-cnn")
    with pytest.raises(ModelLoadError, match=r"bare\.pt: .* pass --arch"):
        load_model(bare)
    with pytest.raises(ModelLoadError, match="does not fit architecture 'small-rgb-cnn': missing"):
        load_model(bare, arch="small-rgb-cnn")
    with pytest.raises(ModelLoadError, match="output layer has 10 classes but 2 class names"):
        load_model(bare, arch=ARCH, class_names=["cat", "dog"])
    assert load_model(bare, arch=ARCH).num_outputs == 10


# --- bad inputs ------------------------------------------------------------------------


def test_missing_image_in_manifest_names_row_and_column(tmp_path, small_manifest):
    """A manifest row whose image is absent is refused before the model runs, by row and column."""
    rows = _rows(small_manifest)
    (tmp_path / rows[1]["image"]).unlink()
    (tmp_path / rows[4]["image"]).unlink()
    with pytest.raises(InvalidInput) as caught:
        Manifest(small_manifest)
    error = caught.value
    assert (error.file, error.row, error.column, error.more) == ("manifest.csv", 3, "image", 1)
    assert "image file not found" in str(error)


def test_corrupt_image_names_row_and_column_and_leaves_no_file(
    tmp_path, small_manifest, sample_model
):
    """A corrupt image stops the run naming its manifest row and column; no output is left."""
    rows = _rows(small_manifest)
    (tmp_path / rows[20]["image"]).write_bytes(b"\x89PNG but not really")
    out = tmp_path / "out.csv"
    with pytest.raises(InvalidInput) as caught:
        write_predictions(out, sample_model, Manifest(small_manifest), batch_size=8)
    assert (caught.value.file, caught.value.row, caught.value.column) == (
        "manifest.csv",
        22,
        "image",
    )
    assert "cannot read image" in str(caught.value)
    assert not out.exists()
    assert list(tmp_path.glob("*.part")) == []


def test_corrupt_image_in_folder_names_the_file(digit_folder, sample_model):
    """In a folder dataset a corrupt image is named by its path."""
    victim = sorted((digit_folder / "3").iterdir())[0]
    victim.write_bytes(b"garbage")
    with pytest.raises(InvalidInput, match=str(victim)):
        list(predict(sample_model, ImageFolder(digit_folder, class_names=DIGITS)))


def test_a_decompression_bomb_in_a_manifest_stops_the_run_by_row(
    tmp_path, small_manifest, sample_model
):
    """A manifest image of 9000 x 9000 pixels (a ~100 KB PNG) is refused by its row and column
    before it is decoded, where Pillow alone would only warn and decode 81 MB."""
    rows = _rows(small_manifest)
    _black_png(tmp_path / rows[2]["image"], 9_000)
    with pytest.raises(InvalidInput) as caught:
        list(predict(sample_model, Manifest(small_manifest), batch_size=8))
    assert (caught.value.file, caught.value.row, caught.value.column) == (
        "manifest.csv",
        4,
        "image",
    )
    assert "81,000,000 pixels, more than the 67,108,864" in str(caught.value)


def test_a_manifest_image_name_over_255_bytes_is_refused_by_row(tmp_path, small_manifest):
    """A manifest row whose image name no file system can hold is named by row and column,
    with the reason, not reported as a missing file."""
    rows = _rows(small_manifest)
    _write(small_manifest, [*rows[:3], {"image": "images/" + "n" * 300 + ".png", "label": "1"}])
    with pytest.raises(InvalidInput) as caught:
        Manifest(small_manifest)
    assert (caught.value.row, caught.value.column) == (5, "image")
    assert "is 304 bytes long; file systems allow 255" in str(caught.value)


def test_manifest_refuses_escaping_paths_and_unknown_labels(tmp_path, small_manifest):
    """Paths leaving the manifest's folder and labels outside the classes are named by row."""
    rows = _rows(small_manifest)
    _write(small_manifest, [*rows[:3], {"image": "../secret.png", "label": "1"}])
    with pytest.raises(UnsafePath) as caught:
        Manifest(small_manifest)
    assert (caught.value.row, caught.value.column) == (5, "image")

    _write(small_manifest, [*rows[:3], {"image": rows[3]["image"], "label": "seven"}])
    with pytest.raises(InvalidInput, match="unknown label 'seven'") as caught:
        Manifest(small_manifest, class_names=DIGITS)
    assert (caught.value.row, caught.value.column) == (5, "label")

    _write(small_manifest, [{"picture": "a.png", "label": "1"}])
    with pytest.raises(InvalidInput, match="required column is missing") as caught:
        Manifest(small_manifest)
    assert (caught.value.row, caught.value.column) == (1, "image")


def test_manifest_names_its_earliest_problem_and_counts_the_rows_like_it(tmp_path, small_manifest):
    """Every row is checked before the model runs: the earliest problem in the file is
    reported with how many more rows share it, even when another kind of problem (here a
    missing image) shows in more rows."""
    rows = _rows(small_manifest)
    for index in (10, 11, 12):
        (tmp_path / rows[index]["image"]).unlink()
    for index in (5, 20, 30):
        rows[index]["label"] = "seven"
    _write(small_manifest, rows)

    with pytest.raises(InvalidInput) as caught:
        Manifest(small_manifest, class_names=DIGITS)

    error = caught.value
    assert (error.file, error.row, error.column, error.more) == ("manifest.csv", 7, "label", 2)
    assert str(error).endswith(
        "unknown label 'seven' (classes: 0, 1, 2, 3, 4, 5, 6, 7, 8, 9) (and 2 more rows like it)"
    )


def test_an_image_missing_on_several_rows_is_looked_at_once(tmp_path, small_manifest, monkeypatch):
    """The same missing image on three rows is checked once, in one check of the distinct
    images, and reported at its first row with the two other rows naming it."""
    rows = _rows(small_manifest)
    gone = rows[3]["image"]
    (tmp_path / gone).unlink()
    for index in (8, 15):
        rows[index]["image"] = gone
    _write(small_manifest, rows)
    checked: list[list[str]] = []
    real_check = LocalRoot.check

    def recording_check(self, images, **options):
        checked.append(list(images))
        return real_check(self, images, **options)

    monkeypatch.setattr(LocalRoot, "check", recording_check)

    with pytest.raises(InvalidInput) as caught:
        Manifest(small_manifest)

    assert len(checked) == 1
    assert checked[0].count(gone) == 1
    assert len(checked[0]) == len({r["image"] for r in rows}) == 38
    error = caught.value
    assert (error.row, error.column, error.more) == (5, "image", 2)
    assert f"image file not found: '{tmp_path / gone}'" in str(error)
    assert str(error).endswith("(and 2 more rows like it)")


def test_a_manifest_image_that_links_out_of_its_folder_is_unsafe(tmp_path, small_manifest):
    """An image inside the manifest's folder that is a symlink to a file outside it is
    refused as an UnsafePath, by row and column, though the file it points to is there."""
    secret = tmp_path.parent / f"{tmp_path.name}-secret.png"
    rows = _rows(small_manifest)
    shutil.copy(tmp_path / rows[0]["image"], secret)
    (tmp_path / "images" / "link.png").symlink_to(secret)
    _write(small_manifest, [*rows[:6], {"image": "images/link.png", "label": "1"}, *rows[6:]])

    with pytest.raises(UnsafePath) as caught:
        Manifest(small_manifest)

    assert (caught.value.file, caught.value.row, caught.value.column) == (
        "manifest.csv",
        8,
        "image",
    )
    assert "'images/link.png' is a link that leads out of" in str(caught.value)


def test_a_folder_image_that_links_out_of_the_folder_is_unsafe(tmp_path, digit_folder):
    """In a folder dataset a symlink to an image outside the folder is an UnsafePath naming it."""
    secret = tmp_path / "secret.png"
    shutil.copy(next((digit_folder / "3").iterdir()), secret)
    (digit_folder / "3" / "link.png").symlink_to(secret)

    with pytest.raises(UnsafePath, match="leads outside the images root") as caught:
        ImageFolder(digit_folder)

    assert caught.value.file == str(digit_folder.resolve() / "3" / "link.png")


# --- the command -----------------------------------------------------------------------


def test_cli_predict_and_import_end_to_end(tmp_path, db_url, sample_dir, shipped):
    """`labeltool predict --import` writes the file and imports every row into the project."""
    out = tmp_path / "predictions.csv"
    result = CliRunner().invoke(
        cli,
        ["--db", db_url, "predict", str(sample_dir / "manifest.csv"), "--model",
         str(sample_dir / "model.pt"), "--out", str(out), "--import", "--project", "digits"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    misclassified = sum(r["label"] != r["prediction"] for r in shipped)
    assert f"wrote {len(shipped)} predictions" in result.output
    assert len(_rows(out)) == len(shipped)

    database = Database.open(db_url)
    try:
        with database.begin() as session:
            project = get_project(session, "digits")
            rate = dev_error_rate(session, project_id=project.id)
            assert (rate.dev_examples, rate.misclassified) == (len(shipped), misclassified)
            assert project.class_names == DIGITS
            assert Path(project.images_root) == sample_dir.resolve()
            run_id = get_run(session, project_id=project.id).id
            assert embeddings.count(session, run_id=run_id, source="model") == len(shipped)
    finally:
        database.dispose()


def test_cli_predict_folder_without_import(tmp_path, digit_folder, sample_dir):
    """`labeltool predict FOLDER` writes predictions with paths relative to the folder."""
    out = tmp_path / "folder.csv"
    result = CliRunner().invoke(
        cli, ["predict", str(digit_folder), "--model", str(sample_dir / "model.pt"),
              "--out", str(out), "--batch-size", "7"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    rows = _rows(out)
    assert len(rows) == 40
    assert all((digit_folder / r["image"]).is_file() for r in rows)

    result = CliRunner().invoke(
        cli, ["predict", str(digit_folder), "--model", str(sample_dir / "model.pt"),
              "--out", str(out), "--no-embeddings"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "emb_0" not in _rows(out)[0]


def test_cli_predict_errors_are_one_line(tmp_path, sample_dir, small_manifest):
    """A refused model exits 1 with one line naming it; --import without --project is misuse."""
    bad = tmp_path / "evil.pt"
    torch.save(Payload(tmp_path / "ran"), bad)
    runner = CliRunner()
    result = runner.invoke(
        cli, ["predict", str(small_manifest), "--model", str(bad), "--out", str(tmp_path / "o.csv")]
    )
    assert result.exit_code == 1
    assert "evil.pt" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "ran").exists()

    result = runner.invoke(
        cli, ["predict", str(small_manifest), "--model", str(sample_dir / "model.pt"),
              "--out", str(tmp_path / "o.csv"), "--import"],
    )  # fmt: skip
    assert result.exit_code == 2
    assert "--import needs --project" in result.output
    assert not (tmp_path / "o.csv").exists()


def test_cli_predict_help_documents_every_option():
    """`labeltool predict --help` works and every option has help text."""
    result = CliRunner().invoke(cli, ["predict", "--help"])
    assert result.exit_code == 0
    assert "folder with a subfolder per class" in result.output
    command = cli.commands["predict"]
    undocumented = [p.name for p in command.params if isinstance(p, click.Option) and not p.help]
    assert undocumented == []


# --- private helpers -------------------------------------------------------------------


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def _write(path: Path, rows: list[dict]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def _black_png(path: Path, side: int) -> None:
    """Write a black side x side greyscale PNG row by row, never holding its pixels."""
    packer = zlib.compressobj(9)
    data = b"".join(packer.compress(bytes(side + 1)) for _ in range(side)) + packer.flush()

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + body))
        return struct.pack(">I", len(body)) + kind + body + crc

    header = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    signature = b"\x89PNG\r\n\x1a\n"
    path.write_bytes(
        signature + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b"")
    )
