"""Run a classifier over a dev set's images and write the predictions file labeltool imports.

The model is a TorchScript file or a weights-only state_dict plus a named architecture from
`labeltool.architectures`; nothing else is unpickled, ever. The images come from a
`labeltool.datasets` dataset (a folder per class or a manifest CSV). Images are read from disk
one batch at a time and every batch's rows are written out before the next is read, so memory
stays flat however large the dev set is.

Beside the scores, each image's penultimate-layer features are kept (the input of the
network's last Linear layer, caught by a forward hook) and written as `emb_0..emb_k`
columns, for "more like this" and the gallery's clusters (labeltool.embeddings). A
TorchScript file cannot be hooked: its features are read when it is a Sequential ending in a
Linear layer, and otherwise the file is predicted without them, saying why.

A model file is checked before anything it describes is built: its size, the sizes its zip
entries declare, the tensors' shapes (read from a memory map, so nothing is copied) against
the named architecture, the number of classes, and the bytes its tensors claim. A file that
claims a billion classes is refused in a moment instead of asking for 256 GB.

torch is imported inside the functions that use it: importing this module is cheap.
"""

from __future__ import annotations

import csv
import json
import os
import pickle
import warnings
import zipfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from labeltool.architectures import Architecture, get_architecture
from labeltool.config import SPLITS
from labeltool.datasets import ImageFolder, ImageRecord, Manifest
from labeltool.embeddings import EMB_PREFIX, MAX_DIMENSIONS
from labeltool.errors import InvalidInput, ModelLoadError
from labeltool.images import ImageUnavailable, open_image
from labeltool.importing import PROB_PREFIX, Progress
from labeltool.storage import images_root

#: The extra file a TorchScript archive may carry to name its architecture and classes.
TORCHSCRIPT_METADATA = "labeltool.json"
DEFAULT_BATCH_SIZE = 64
#: The most classes a model may score: far beyond any error analysis, small enough that the
#: largest output layer of our architectures stays under 100 MB.
MAX_CLASSES = 100_000
#: The most bytes a model file, its unpacked zip entries or its tensors may take: 2 GiB, some
#: fifty times the largest network we know at MAX_CLASSES.
MAX_MODEL_BYTES = 2 * 1024**3


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
class Prediction:
    """The model's answer for one image; `probabilities` follow the dataset's class names."""

    record: ImageRecord
    prediction: str
    confidence: float
    probabilities: list[float]
    #: The penultimate layer's activations (float32), when they were asked for and caught.
    features: Any = None


@dataclass
class PredictSummary:
    """What a prediction run wrote, for the CLI's message and a following import."""

    path: Path
    #: The folder (or URL) the written image paths are relative to.
    images_root: str | Path
    rows: int
    misclassified: int
    class_names: list[str] = field(default_factory=list)
    #: The width of the features written as emb_ columns (0: none written).
    dimensions: int = 0
    #: Why the features were asked for but not written, to tell the user.
    no_features: str | None = None

    def __str__(self) -> str:
        rate = self.misclassified / self.rows if self.rows else 0.0
        text = (
            f"wrote {self.rows} predictions to {self.path}: {self.misclassified} "
            f"misclassified (error {rate:.1%})"
        )
        if self.dimensions:
            text += f", with {self.dimensions}-dimension embeddings"
        if self.no_features:
            text += f"; no embeddings: {self.no_features}"
        return text


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
    _check_archive(path)
    explicit = [str(c) for c in class_names] if class_names else None
    if explicit is not None and len(explicit) > MAX_CLASSES:
        raise _too_many_classes(path, f"{len(explicit):,} class names were given")
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


def predict(
    model: LoadedModel,
    dataset: ImageFolder | Manifest,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    threads: int | None = None,
    progress: Progress | None = None,
    features: bool = False,
) -> Iterator[Prediction]:
    """Yield the model's prediction for every image, reading and scoring one batch at a time.

    Runs on the CPU under `torch.inference_mode()` with `threads` torch threads (default: the
    CPUs this process may use minus those already busy, 1 to 8). The model must return one
    score (logit) per class; probabilities are their softmax. With `features`, each
    prediction carries the penultimate layer's activations when `feature_layer` finds the
    layer (else None).
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
    tap = FeatureTap(model) if features else None
    try:
        for records, inputs in _batches(model.architecture, dataset, batch_size):
            with _torch_threads(threads), torch.inference_mode():
                scores, caught = _run(model, tap, inputs)
                if scores.shape[1] != len(classes):
                    raise _class_count_mismatch(model, scores.shape[1], classes)
                probabilities = torch.softmax(scores.float(), dim=1)
                confidence, best = probabilities.max(dim=1)
                rows = tap.rows(caught, len(records)) if caught is not None else None
            for i, (record, probs, conf, index) in enumerate(
                zip(
                    records, probabilities.tolist(), confidence.tolist(), best.tolist(), strict=True
                )
            ):
                yield Prediction(
                    record, classes[index], conf, probs, rows[i] if rows is not None else None
                )
            done += len(records)
            if progress:
                progress(done, total)
    finally:
        if tap is not None:
            tap.close()


def write_predictions(
    path: str | os.PathLike[str],
    model: LoadedModel,
    dataset: ImageFolder | Manifest,
    *,
    split: str = "dev",
    batch_size: int = DEFAULT_BATCH_SIZE,
    threads: int | None = None,
    progress: Progress | None = None,
    embeddings: bool = True,
) -> PredictSummary:
    """Predict every image and write the rows to `path` as they come (4-decimal probabilities).

    Columns: example_id, image, label, prediction, confidence, prob_<class>..., split, and
    with `embeddings` the penultimate layer's features as emb_0..emb_k (6 significant
    digits: the features' float32 precision matters less than a readable file); image paths
    are relative to the dataset's root (its folder, or the manifest's folder). When the
    model's features cannot be caught the file is written without them and the summary says
    why. The file appears only when every image was scored: a failure leaves no half-written
    file behind.
    """
    if split not in SPLITS:
        raise InvalidInput(f"unknown split '{split}' (use one of: {', '.join(SPLITS)})")
    path = Path(path)
    partial = path.with_name(path.name + ".part")
    classes = dataset.class_names
    rows = misclassified = 0
    dimensions, no_features = feature_layer(model)[1:] if embeddings else (0, None)
    try:
        with partial.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle, lineterminator="\n")
            writer.writerow(
                ["example_id", "image", "label", "prediction", "confidence"]
                + [f"{PROB_PREFIX}{c}" for c in classes]
                + ["split"]
                + [f"{EMB_PREFIX}{j}" for j in range(dimensions)]
            )
            for result in predict(
                model,
                dataset,
                batch_size=batch_size,
                threads=threads,
                progress=progress,
                features=bool(dimensions),
            ):
                record = result.record
                writer.writerow(
                    [record.example_id, record.image, record.label, result.prediction]
                    + [f"{result.confidence:.4f}"]
                    + [f"{p:.4f}" for p in result.probabilities]
                    + [split]
                    + ([f"{v:.6g}" for v in result.features.tolist()] if dimensions else [])
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
        dimensions=dimensions,
        no_features=no_features,
    )


def feature_layer(model: LoadedModel) -> tuple[Any, int, str | None]:
    """(the Linear layer whose input is the model's features, their width, None), or
    (None, 0, why they cannot be caught).

    The layer is the output layer the architecture names (its `output_weight`), else the
    module's last Linear. A TorchScript module cannot be hooked, so its features are caught
    only when it is a Sequential ending in a Linear layer (run up to it, then through it)."""
    import torch

    module = model.module
    if isinstance(module, torch.jit.ScriptModule):
        children = list(module.children())
        last = children[-1] if children else None
        if (
            getattr(module, "original_name", None) != "Sequential"
            or getattr(last, "original_name", None) != "Linear"
        ):
            return (
                None,
                0,
                (
                    f"{model.path.name} is a TorchScript file whose last layer cannot be reached "
                    "(only a Sequential ending in a Linear layer can be); save the weights as a "
                    "state_dict, or import the features with --embeddings"
                ),
            )
        layer = last
    else:
        owner = model.architecture.output_weight.rpartition(".")[0]
        layer = _submodule(module, owner)
        if not isinstance(layer, torch.nn.Linear):
            linears = [m for m in module.modules() if isinstance(m, torch.nn.Linear)]
            layer = linears[-1] if linears else None
        if layer is None:
            return None, 0, f"{model.path.name} has no Linear layer whose input to keep"
    width = int(layer.weight.shape[1])
    if width > MAX_DIMENSIONS:
        return (
            None,
            0,
            (
                f"its last Linear layer takes {width:,} features; at most "
                f"{MAX_DIMENSIONS:,} are kept"
            ),
        )
    return layer, width, None


class FeatureTap:
    """Runs the model and catches the input of its feature layer (`feature_layer`).

    An nn.Module gets a forward hook on the layer for the tap's lifetime; a TorchScript
    Sequential is run child by child, so the input of its last child is at hand."""

    def __init__(self, model: LoadedModel) -> None:
        import torch

        self.model = model
        self.layer, self.dimensions, self.reason = feature_layer(model)
        self._caught: list = []
        self._scripted = isinstance(model.module, torch.jit.ScriptModule)
        self._handle = None
        if self.layer is not None and not self._scripted:
            self._handle = self.layer.register_forward_hook(self._hook)

    def close(self) -> None:
        """Take the hook off the model (it outlives this tap otherwise)."""
        if self._handle is not None:
            self._handle.remove()
            self._handle = None

    def _hook(self, _layer, inputs, _output) -> None:
        self._caught.append(inputs[0])

    def __call__(self, inputs):
        """(the model's scores, the features caught, or None) for a batch of inputs."""
        if self.layer is None:
            return self.model.module(inputs), None
        if self._scripted:
            values = inputs
            children = list(self.model.module.children())
            for child in children[:-1]:
                values = child(values)
            return children[-1](values), values
        self._caught.clear()
        scores = self.model.module(inputs)
        if not self._caught:
            raise ModelLoadError(
                f"{self.model.path}: the model's last Linear layer did not run, so its "
                "features cannot be kept; predict with --no-embeddings"
            )
        caught = self._caught[-1]
        self._caught.clear()
        return scores, caught

    def rows(self, caught, batch: int):
        """The caught features as a float32 numpy (batch, dimensions) matrix."""
        features = caught.detach().float().reshape(caught.shape[0], -1)
        if features.shape != (batch, self.dimensions):
            raise ModelLoadError(
                f"{self.model.path}: the last Linear layer's input is {list(caught.shape)} for "
                f"{batch} images, not one row of {self.dimensions} features each; predict with "
                "--no-embeddings"
            )
        return features.numpy()


# --- private helpers -------------------------------------------------------------------


def _run(model: LoadedModel, tap: FeatureTap | None, inputs):
    """(the model's (batch, classes) scores, the features `tap` caught or None)."""
    import torch

    try:
        scores, caught = tap(inputs) if tap is not None else (model.module(inputs), None)
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
    return scores, caught


def _submodule(module, name: str):
    """`module`'s submodule called `name`, or None."""
    try:
        return module.get_submodule(name) if name else None
    except AttributeError:
        return None


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
    tensors = dict(module.state_dict())
    num_outputs = _output_count(path, architecture, tensors, classes)
    _check_claimed_bytes(path, tensors)
    return LoadedModel(module, architecture, path, "torchscript", classes, num_outputs)


def _load_state_dict(path: Path, *, arch: str | None, class_names: list[str] | None):
    import torch

    try:
        with warnings.catch_warnings():
            # Noise about pickle protocols in files we are about to refuse anyway.
            warnings.filterwarnings("ignore", message="Detected pickle protocol")
            # mmap: every tensor is a view of the mapped file, so loading copies no data
            # whatever shapes the file claims; they are checked before anything is built.
            content = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
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
    file_outputs = _output_count(path, architecture, state_dict, classes)
    _check_claimed_bytes(path, state_dict)
    num_outputs = file_outputs or (len(classes) if classes else 2)
    with torch.device("meta"):  # shapes only: no memory is allocated
        expected = architecture.build(num_outputs).state_dict()
    _check_fits(path, architecture, expected, state_dict)
    module = architecture.build(num_outputs)
    try:
        module.load_state_dict(state_dict)
    except RuntimeError as exc:  # e.g. a dtype that cannot be copied into float weights
        raise _not_a_model(path, exc) from None
    module.eval()
    return LoadedModel(module, architecture, path, "state_dict", classes, num_outputs)


def _check_archive(path: Path) -> None:
    """Refuse a file over the byte budget, or whose zip entries declare more, before torch reads
    it (torch allocates an entry's declared size before reading it)."""
    size = path.stat().st_size
    if size > MAX_MODEL_BYTES:
        raise ModelLoadError(
            f"{path}: the file takes {_gigabytes(size)}, more than the "
            f"{_gigabytes(MAX_MODEL_BYTES)} a model may take"
        )
    try:
        with zipfile.ZipFile(path) as archive:
            declared = sum(entry.file_size for entry in archive.infolist())
    except (zipfile.BadZipFile, OSError, ValueError):
        raise _not_a_model(
            path, "not a zip archive: files saved by torch before 1.6 must be saved again"
        ) from None
    if declared > MAX_MODEL_BYTES:
        raise ModelLoadError(
            f"{path}: its zip entries unpack to {_gigabytes(declared)}, more than the "
            f"{_gigabytes(MAX_MODEL_BYTES)} a model may take"
        )


def _output_count(
    path: Path, architecture: Architecture, tensors: dict, classes: list[str] | None
) -> int | None:
    """The class count the output layer's weight claims (None without one), once it is known
    to be at most MAX_CLASSES and to match the class names."""
    output = tensors.get(architecture.output_weight)
    if output is None or output.dim() != 2:
        return None
    outputs = int(output.shape[0])
    if outputs > MAX_CLASSES:
        raise _too_many_classes(path, f"the output layer has {outputs:,} classes")
    if classes and len(classes) != outputs:
        shown = ", ".join(classes[:10]) + (" ..." if len(classes) > 10 else "")
        raise ModelLoadError(
            f"{path}: the output layer has {outputs} classes but {len(classes)} class "
            f"names were given ({shown})"
        )
    return outputs


def _too_many_classes(path: Path, what: str) -> ModelLoadError:
    return ModelLoadError(f"{path}: {what}; labeltool accepts at most {MAX_CLASSES:,} classes")


def _check_claimed_bytes(path: Path, tensors: dict) -> None:
    """Refuse tensors whose shapes claim more than the budget, though a file may hold them in
    a few bytes (a zero-stride view stores one element for a shape of any size)."""
    claimed = sum(t.numel() * t.element_size() for t in tensors.values())
    if claimed > MAX_MODEL_BYTES:
        raise ModelLoadError(
            f"{path}: its tensors claim {_gigabytes(claimed)}, more than the "
            f"{_gigabytes(MAX_MODEL_BYTES)} a model may take"
        )


def _gigabytes(count: int) -> str:
    return f"{count / 1024**3:,.1f} GB"


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
    if len(classes) > MAX_CLASSES:
        raise _too_many_classes(path, f"the file stores {len(classes):,} class names")
    return [str(c) for c in classes]


def _not_a_model(path: Path, exc: BaseException | str) -> ModelLoadError:
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

    root = images_root(dataset.root)
    records, tensors = [], []
    for record in dataset:
        try:
            with root.open(record.image) as stream, open_image(stream) as image:
                image.load()
                tensors.append(architecture.preprocess(image))
        except (ImageUnavailable, OSError, SyntaxError, ValueError, EOFError) as exc:
            reason = str(exc).strip() or type(exc).__name__
            raise dataset.problem(record, f"cannot read image '{record.image}': {reason}") from None
        records.append(record)
        if len(records) == batch_size:
            yield records, torch.stack(tensors)
            records, tensors = [], []
    if records:
        yield records, torch.stack(tensors)


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
