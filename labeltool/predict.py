"""Run a classifier over a dev set's images and write the predictions file labeltool imports.

The model is a TorchScript file or a weights-only state_dict plus a named architecture from
`labeltool.architectures`; nothing else is unpickled, ever. The images are a folder per class
(`root/<class>/<image>`) or a manifest CSV (`image,label[,example_id]`, paths relative to the
manifest's folder). Images are read from disk one batch at a time and every batch's rows are
written out before the next is read, so memory stays flat however large the dev set is.

torch is imported inside the functions that use it: importing this module is cheap.
"""

from __future__ import annotations

import csv
import json
import os
import pickle
import posixpath
import warnings
import zipfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from labeltool.architectures import Architecture, get_architecture
from labeltool.config import SPLITS
from labeltool.errors import InvalidInput, ModelLoadError, UnsafePath
from labeltool.importing import (
    PROB_PREFIX,
    Progress,
    natural_order,  # the importer's class order
    safe_image_path,
)

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"})
#: The extra file a TorchScript archive may carry to name its architecture and classes.
TORCHSCRIPT_METADATA = "labeltool.json"
DEFAULT_BATCH_SIZE = 64


@dataclass
class LoadedModel:
    """A network ready to run, the preprocessing it expects, and its class names if known."""

    module: Any  # torch.nn.Module or torch.jit.ScriptModule
    architecture: Architecture
    path: Path
    kind: str  # "torchscript" or "state_dict"
    class_names: list[str] | None = None
    #: How many scores the network returns per image, when the file tells us.
    num_outputs: int | None = None


@dataclass(frozen=True)
class ImageRecord:
    """One image of a dataset: its id, path relative to the dataset's root, and label."""

    example_id: str
    image: str
    label: str
    #: The manifest's spreadsheet row (header = row 1); None for a folder dataset.
    row: int | None = None


@dataclass(frozen=True)
class Prediction:
    """The model's answer for one image; `probabilities` follow the dataset's class names."""

    record: ImageRecord
    prediction: str
    confidence: float
    probabilities: list[float]


@dataclass
class PredictSummary:
    """What a prediction run wrote, for the CLI's message and a following import."""

    path: Path
    images_root: Path
    rows: int
    misclassified: int
    class_names: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        rate = self.misclassified / self.rows if self.rows else 0.0
        return (
            f"wrote {self.rows} predictions to {self.path}: {self.misclassified} "
            f"misclassified (error {rate:.1%})"
        )


def load_model(
    path: str | os.PathLike[str],
    *,
    arch: str | None = None,
    class_names: Sequence[str] | None = None,
) -> LoadedModel:
    """Load a TorchScript file, or a weights-only state_dict into a registered architecture.

    A state_dict file may be bare or a checkpoint dict `{"state_dict", "arch", "classes"}`;
    a TorchScript file may carry `labeltool.json` ({"arch", "classes"}) as an extra file.
    `arch` and `class_names` fill in what the file does not say. Raises ModelLoadError.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelLoadError(f"{path}: model file not found")
    explicit = [str(c) for c in class_names] if class_names else None
    if _is_torchscript(path):
        return _load_torchscript(path, arch=arch, class_names=explicit)
    return _load_state_dict(path, arch=arch, class_names=explicit)


def save_checkpoint(
    path: str | os.PathLike[str], module: Any, *, arch: str, class_names: Sequence[str]
) -> None:
    """Save `module`'s weights as the checkpoint dict `load_model` reads (weights-only safe)."""
    import torch

    get_architecture(arch)  # refuse names load_model would not know
    state = {"state_dict": module.state_dict(), "arch": arch, "classes": list(class_names)}
    torch.save(state, Path(path))


class ImageFolder:
    """A folder per class: `root/<class>/<image>`; example ids are paths without extension.

    Class names are the sorted folder names (the order torchvision's ImageFolder uses) unless
    given, e.g. by the model; then every folder must be one of them.
    """

    def __init__(self, root: str | os.PathLike[str], *, class_names: Sequence[str] | None = None):
        self.root = Path(root).resolve()
        if not self.root.is_dir():
            raise InvalidInput("is not a folder", file=str(root))
        folders = sorted(
            p.name for p in self.root.iterdir() if p.is_dir() and not p.name.startswith(".")
        )
        if class_names:
            self.class_names = [str(c) for c in class_names]
            unknown = [f for f in folders if f not in set(self.class_names)]
            if unknown:
                raise InvalidInput(
                    f"folder '{unknown[0]}' is not one of the classes "
                    f"({', '.join(self.class_names)})",
                    file=str(self.root / unknown[0]),
                )
        else:
            self.class_names = folders
        self.folders = folders
        seen: set[str] = set()
        count = 0
        for record in self:
            if record.example_id in seen:
                raise InvalidInput(
                    f"two images share the example id '{record.example_id}' "
                    "(same name, different extension)",
                    file=str(self.root / record.image),
                )
            seen.add(record.example_id)
            count += 1
        if not count:
            raise InvalidInput(
                "holds no images in class folders (expected <folder>/<class>/<image>)",
                file=str(root),
            )
        self._count = count

    def __len__(self) -> int:
        return self._count

    def __iter__(self) -> Iterator[ImageRecord]:
        # os.path on plain strings: several times cheaper than pathlib in a per-image loop.
        root = str(self.root)
        for label in self.folders:
            for directory, subfolders, files in os.walk(os.path.join(root, label)):
                subfolders.sort()
                for name in sorted(files):
                    if name.startswith(".") or (
                        os.path.splitext(name)[1].lower() not in IMAGE_SUFFIXES
                    ):
                        continue
                    full = os.path.join(directory, name)
                    if not _inside(root, full):
                        raise UnsafePath(f"is a link that leads outside '{root}'", file=full)
                    image = os.path.relpath(full, root).replace(os.sep, "/")
                    yield ImageRecord(posixpath.splitext(image)[0], image, label)

    def problem(self, record: ImageRecord, message: str) -> InvalidInput:
        """An InvalidInput about `record`, naming its image file."""
        return InvalidInput(message, file=str(self.root / record.image))


class Manifest:
    """A CSV with columns `image,label` and optional `example_id`, read as it is used.

    Image paths are relative to the manifest's folder and may not leave it. Every row is
    checked when the manifest is opened (paths, files present, labels known), so problems
    show before the model runs; each names the row and column.
    """

    REQUIRED = ("image", "label")

    def __init__(self, path: str | os.PathLike[str], *, class_names: Sequence[str] | None = None):
        self.path = Path(path)
        self.file = self.path.name
        if not self.path.is_file():
            raise InvalidInput("file not found", file=str(path))
        self.root = self.path.resolve().parent
        known = [str(c) for c in class_names] if class_names else None
        count, labels = self._check(known)
        if not count:
            raise InvalidInput("has a header but no rows", file=self.file)
        self.class_names = known or sorted(labels, key=natural_order)
        self._count = count

    def __len__(self) -> int:
        return self._count

    def __iter__(self) -> Iterator[ImageRecord]:
        for row, cells in self._rows():
            image = safe_image_path(cells.get("image", ""))
            example_id = cells.get("example_id", "").strip() or posixpath.splitext(image)[0]
            yield ImageRecord(example_id, image, cells.get("label", "").strip(), row)

    def problem(self, record: ImageRecord, message: str) -> InvalidInput:
        """An InvalidInput about `record`, naming the manifest, its row and the image column."""
        return InvalidInput(message, file=self.file, row=record.row, column="image")

    def _rows(self) -> Iterator[tuple[int, dict[str, str]]]:
        try:
            with self.path.open(newline="", encoding="utf-8-sig") as handle:
                reader = csv.reader(handle)
                header = [h.strip() for h in next(reader, [])]
                if not header:
                    raise InvalidInput("the file is empty", file=self.file)
                for column in self.REQUIRED:
                    if column not in header:
                        raise InvalidInput(
                            f"required column is missing (the header has: {', '.join(header)})",
                            file=self.file,
                            row=1,
                            column=column,
                        )
                for row, values in enumerate(reader, start=2):
                    if values:
                        yield row, dict(zip(header, values, strict=False))
        except UnicodeDecodeError as exc:
            raise InvalidInput(f"not UTF-8 text ({exc.reason})", file=self.file) from None
        except csv.Error as exc:
            raise InvalidInput(f"malformed CSV: {exc}", file=self.file) from None

    def _check(self, known: list[str] | None) -> tuple[int, set[str]]:
        """Check every row and raise the first problem, counting the rows with the same one.

        Returns the row count and the labels seen.
        """
        first: tuple[int, str, str, type[InvalidInput]] | None = None
        same = 0
        count, labels, ids = 0, set(), set()

        def note(row: int, column: str, message: str, kind=InvalidInput) -> None:
            nonlocal first, same
            if first is None:
                first = (row, column, message, kind)
            elif first[1] == column and first[3] is kind:
                same += 1

        for row, cells in self._rows():
            count += 1
            raw_image, label = cells.get("image", "").strip(), cells.get("label", "").strip()
            try:
                image = safe_image_path(raw_image)
            except ValueError as exc:
                note(row, "image", f"image path {exc}", UnsafePath)
                image = None
            if image is not None:
                candidate = os.path.join(self.root, image)
                if not os.path.isfile(candidate):
                    note(row, "image", f"image file not found: '{candidate}'")
                elif not _inside(str(self.root), candidate):
                    message = f"image '{image}' is a link that leads out of '{self.root}'"
                    note(row, "image", message, UnsafePath)
            if not label:
                note(row, "label", "is empty")
            elif known is not None and label not in known:
                note(row, "label", f"unknown label '{label}' (classes: {', '.join(known)})")
            labels.add(label)
            if "example_id" in cells:
                example_id = cells["example_id"].strip()
                if not example_id:
                    note(row, "example_id", "is empty")
                elif example_id in ids:
                    note(row, "example_id", f"example_id '{example_id}' appears twice")
                ids.add(example_id)
        if first is not None:
            row, column, message, kind = first
            raise kind(message, file=self.file, row=row, column=column, more=same)
        return count, labels - {""}


def open_dataset(
    path: str | os.PathLike[str],
    *,
    class_names: Sequence[str] | None = None,
    manifest: bool | None = None,
) -> ImageFolder | Manifest:
    """A folder per class when `path` is a folder, a manifest when it is a .csv file.

    `manifest=True` reads a file of any name as a manifest.
    """
    path = Path(path)
    if path.is_dir() and not manifest:
        return ImageFolder(path, class_names=class_names)
    if path.is_file() and (manifest or path.suffix.lower() == ".csv"):
        return Manifest(path, class_names=class_names)
    if not path.exists():
        raise InvalidInput("no such file or folder", file=str(path))
    raise InvalidInput(
        "give a folder with a subfolder per class, or a manifest .csv (image,label); "
        "use --manifest for a manifest with another extension",
        file=str(path),
    )


def predict(
    model: LoadedModel,
    dataset: ImageFolder | Manifest,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    threads: int | None = None,
    progress: Progress | None = None,
) -> Iterator[Prediction]:
    """Yield the model's prediction for every image, reading and scoring one batch at a time.

    Runs on the CPU under `torch.inference_mode()` with `threads` torch threads (default: the
    CPUs this process may use minus those already busy, 1 to 8). The model must return one
    score (logit) per class; probabilities are their softmax.
    """
    import torch

    if batch_size < 1:
        raise InvalidInput("the batch size must be at least 1")
    classes = dataset.class_names
    if model.num_outputs is not None and model.num_outputs != len(classes):
        raise _class_count_mismatch(model, model.num_outputs, classes)
    threads = threads or _default_threads()
    total, done = len(dataset), 0
    if progress:
        progress(0, total)
    for records, inputs in _batches(model.architecture, dataset, batch_size):
        with _torch_threads(threads), torch.inference_mode():
            try:
                scores = model.module(inputs)
            except RuntimeError as exc:
                reason = str(exc).strip().splitlines()[0]
                raise ModelLoadError(
                    f"{model.path}: the model failed on {model.architecture.image_mode} images "
                    f"of {model.architecture.input_size[0]}x{model.architecture.input_size[1]} "
                    f"(architecture '{model.architecture.name}'): {reason}"
                ) from None
            if not isinstance(scores, torch.Tensor) or scores.dim() != 2:
                raise ModelLoadError(
                    f"{model.path}: the model must return a (batch, classes) tensor of scores"
                )
            if scores.shape[1] != len(classes):
                raise _class_count_mismatch(model, scores.shape[1], classes)
            probabilities = torch.softmax(scores.float(), dim=1)
            confidence, best = probabilities.max(dim=1)
        for record, probs, conf, index in zip(
            records, probabilities.tolist(), confidence.tolist(), best.tolist(), strict=True
        ):
            yield Prediction(record, classes[index], conf, probs)
        done += len(records)
        if progress:
            progress(done, total)


def write_predictions(
    path: str | os.PathLike[str],
    model: LoadedModel,
    dataset: ImageFolder | Manifest,
    *,
    split: str = "dev",
    batch_size: int = DEFAULT_BATCH_SIZE,
    threads: int | None = None,
    progress: Progress | None = None,
) -> PredictSummary:
    """Predict every image and write the rows to `path` as they come (4-decimal probabilities).

    Columns: example_id, image, label, prediction, confidence, prob_<class>..., split; image
    paths are relative to the dataset's root (its folder, or the manifest's folder). The file
    appears only when every image was scored: a failure leaves no half-written file behind.
    """
    if split not in SPLITS:
        raise InvalidInput(f"unknown split '{split}' (use one of: {', '.join(SPLITS)})")
    path = Path(path)
    partial = path.with_name(path.name + ".part")
    classes = dataset.class_names
    rows = misclassified = 0
    try:
        with partial.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle, lineterminator="\n")
            writer.writerow(
                ["example_id", "image", "label", "prediction", "confidence"]
                + [f"{PROB_PREFIX}{c}" for c in classes]
                + ["split"]
            )
            for result in predict(
                model, dataset, batch_size=batch_size, threads=threads, progress=progress
            ):
                record = result.record
                writer.writerow(
                    [record.example_id, record.image, record.label, result.prediction]
                    + [f"{result.confidence:.4f}"]
                    + [f"{p:.4f}" for p in result.probabilities]
                    + [split]
                )
                rows += 1
                misclassified += result.prediction != record.label
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    return PredictSummary(
        path=path,
        images_root=dataset.root,
        rows=rows,
        misclassified=misclassified,
        class_names=list(classes),
    )


# --- private helpers -------------------------------------------------------------------


def _is_torchscript(path: Path) -> bool:
    """TorchScript archives are zip files holding `constants.pkl` (torch.load checks the same)."""
    if not zipfile.is_zipfile(path):
        return False
    try:
        with zipfile.ZipFile(path) as archive:
            return any(name.endswith("/constants.pkl") for name in archive.namelist())
    except zipfile.BadZipFile:
        return False


def _load_torchscript(path: Path, *, arch: str | None, class_names: list[str] | None):
    import torch

    extra = {TORCHSCRIPT_METADATA: ""}
    try:
        with warnings.catch_warnings():
            # torch 2.13 marks TorchScript deprecated; users still hand us such files.
            warnings.simplefilter("ignore", DeprecationWarning)
            module = torch.jit.load(str(path), map_location="cpu", _extra_files=extra)
    except RuntimeError as exc:
        reason = str(exc).strip().splitlines()[0]
        raise ModelLoadError(
            f"{path}: a TorchScript file that cannot be loaded: {reason}"
        ) from None
    metadata = _torchscript_metadata(path, extra[TORCHSCRIPT_METADATA])
    architecture = _architecture(path, arch, metadata.get("arch"), needed_for="preprocessing")
    module.eval()
    classes = class_names or _class_list(path, metadata.get("classes"))
    return LoadedModel(module, architecture, path, "torchscript", classes)


def _load_state_dict(path: Path, *, arch: str | None, class_names: list[str] | None):
    import torch

    try:
        with warnings.catch_warnings():
            # Noise about pickle protocols in files we are about to refuse anyway.
            warnings.filterwarnings("ignore", message="Detected pickle protocol")
            content = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if "weights only load failed" in str(exc).lower():
            raise ModelLoadError(
                f"{path}: not a TorchScript file or a weights-only state_dict: it holds pickled "
                "Python objects, which labeltool never unpickles (save model.state_dict() or "
                "a TorchScript file instead)"
            ) from None
        raise _not_a_model(path, exc) from None
    except Exception as exc:  # torch raises many exception types for a file it cannot read
        raise _not_a_model(path, exc) from None

    if isinstance(content, dict) and "state_dict" in content:
        state_dict, named_arch = content["state_dict"], content.get("arch")
        stored_classes = _class_list(path, content.get("classes"))
    else:
        state_dict, named_arch, stored_classes = content, None, None
    if not isinstance(state_dict, dict) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state_dict.items()
    ):
        raise ModelLoadError(
            f"{path}: not a state_dict (names mapped to tensors) nor a checkpoint dict "
            "with a 'state_dict' entry"
        )
    architecture = _architecture(path, arch, named_arch, needed_for="the network")
    classes = class_names or stored_classes
    output = state_dict.get(architecture.output_weight)
    file_outputs = int(output.shape[0]) if output is not None and output.dim() == 2 else None
    if classes and file_outputs is not None and len(classes) != file_outputs:
        raise ModelLoadError(
            f"{path}: the output layer has {file_outputs} classes but {len(classes)} class "
            f"names were given ({', '.join(classes)})"
        )
    num_outputs = file_outputs or (len(classes) if classes else 2)
    module = architecture.build(num_outputs)
    _check_fits(path, architecture, module.state_dict(), state_dict)
    module.load_state_dict(state_dict)
    module.eval()
    return LoadedModel(module, architecture, path, "state_dict", classes, num_outputs)


def _architecture(path: Path, given: str | None, stored, *, needed_for: str) -> Architecture:
    """The architecture named by the caller or by the file; they must agree when both exist."""
    if stored is not None and not isinstance(stored, str):
        raise ModelLoadError(f"{path}: the stored architecture name is not text")
    if given and stored and given != stored:
        raise ModelLoadError(
            f"{path}: the file says architecture '{stored}' but '{given}' was asked for"
        )
    name = given or stored
    if not name:
        from labeltool.architectures import ARCHITECTURES

        raise ModelLoadError(
            f"{path}: the file does not name its architecture, needed for {needed_for}: "
            f"pass --arch (known: {', '.join(ARCHITECTURES)})"
        )
    try:
        return get_architecture(name)
    except ModelLoadError as exc:
        raise ModelLoadError(f"{path}: {exc}") from None


def _check_fits(path: Path, architecture: Architecture, expected: dict, given: dict) -> None:
    """Compare names and shapes, so a mismatch reads better than load_state_dict's error."""
    missing = [k for k in expected if k not in given]
    unexpected = [k for k in given if k not in expected]
    wrong = [
        f"{k} is {list(given[k].shape)}, needs {list(expected[k].shape)}"
        for k in expected
        if k in given and given[k].shape != expected[k].shape
    ]
    parts = [
        f"{label} {', '.join(items[:3])}{' ...' if len(items) > 3 else ''}"
        for label, items in (("missing", missing), ("unexpected", unexpected), ("", wrong))
        if items
    ]
    if parts:
        raise ModelLoadError(
            f"{path}: state_dict does not fit architecture '{architecture.name}': "
            + "; ".join(p.strip() for p in parts)
        )


def _torchscript_metadata(path: Path, raw) -> dict:
    if not raw:
        return {}
    try:
        metadata = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise ModelLoadError(f"{path}: {TORCHSCRIPT_METADATA} is not valid JSON") from None
    if not isinstance(metadata, dict):
        raise ModelLoadError(f"{path}: {TORCHSCRIPT_METADATA} must hold a JSON object")
    return metadata


def _class_list(path: Path, classes) -> list[str] | None:
    if classes is None:
        return None
    if not isinstance(classes, list | tuple) or not all(isinstance(c, str | int) for c in classes):
        raise ModelLoadError(f"{path}: the stored class names must be a list of strings")
    return [str(c) for c in classes]


def _not_a_model(path: Path, exc: BaseException) -> ModelLoadError:
    reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
    return ModelLoadError(f"{path}: not a TorchScript file or a weights-only state_dict ({reason})")


def _class_count_mismatch(model: LoadedModel, outputs: int, classes: list[str]) -> ModelLoadError:
    shown = ", ".join(classes[:10]) + (" ..." if len(classes) > 10 else "")
    return ModelLoadError(
        f"{model.path}: the model scores {outputs} classes but the images have "
        f"{len(classes)} ({shown}); pass --classes with the model's {outputs} class names "
        "in its output order"
    )


def _batches(architecture: Architecture, dataset, batch_size: int):
    """Yield (records, stacked input tensor), reading each image from disk as it is needed."""
    import torch
    from PIL import Image

    records, tensors = [], []
    for record in dataset:
        try:
            with Image.open(os.path.join(dataset.root, record.image)) as image:
                image.load()
                tensors.append(architecture.preprocess(image))
        except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
            reason = str(exc).strip() or type(exc).__name__
            raise dataset.problem(record, f"cannot read image '{record.image}': {reason}") from None
        records.append(record)
        if len(records) == batch_size:
            yield records, torch.stack(tensors)
            records, tensors = [], []
    if records:
        yield records, torch.stack(tensors)


def _inside(root: str, path: str) -> bool:
    """Whether `path`, links followed, lies inside the resolved folder `root`."""
    return os.path.realpath(path).startswith(root.rstrip(os.sep) + os.sep)


@contextmanager
def _torch_threads(count: int):
    import torch

    previous = torch.get_num_threads()
    if count != previous:
        torch.set_num_threads(count)
    try:
        yield
    finally:
        if torch.get_num_threads() != previous:
            torch.set_num_threads(previous)


def _default_threads() -> int:
    """The CPUs this process may use that other processes are not already busy on, 1 to 8.

    Small CPU batches gain little from more threads, and on a busy machine surplus torch
    threads wait on each other: on 2 shared CPUs, 2 threads ran the sample model 6x slower.
    """
    try:
        available = len(os.sched_getaffinity(0))
    except AttributeError:  # macOS and Windows have no sched_getaffinity
        available = os.cpu_count() or 1
    try:
        busy = int(os.getloadavg()[0])
    except (AttributeError, OSError):  # no load average on Windows
        busy = 0
    return max(1, min(available - busy, 8))
