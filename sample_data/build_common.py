"""What the sample projects' builds share: seeded one-thread CPU training, fault picks, CSVs.

`build_sample.py` (the MNIST digits) and `build_shapes.py` (the photo-like shapes) both train
a registered `labeltool.architectures` network on images prepared by that architecture's own
`preprocess`, the code `labeltool predict` runs, so training and prediction see the same
tensors. Everything is seeded and runs on one CPU thread, so a re-run writes the same bytes.
"""

from __future__ import annotations

import contextlib
import csv
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np

SAMPLE_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(SAMPLE_DIR.parent))  # run from a fresh clone without installing

SEED = 7
BATCH_SIZE = 32
LEARNING_RATE = 3e-3
#: Torch threads for training and for predicting: one, so the floating-point sums (and the
#: written probabilities) come out the same on every machine and every run.
THREADS = 1


def train(
    arch: str,
    images: Sequence,
    labels: np.ndarray,
    *,
    num_classes: int,
    epochs: int,
    learning_rate: float = LEARNING_RATE,
    lr_decay: float = 1.0,
    seed: int = SEED,
):
    """Train the architecture `arch` on PIL `images` with class indices `labels` (Adam from
    `learning_rate`, times `lr_decay` after each epoch; shuffled mini-batches; one CPU
    thread); returns the model in eval mode and its training accuracy."""
    import torch

    from labeltool.architectures import get_architecture

    torch.manual_seed(seed)
    torch.set_num_threads(THREADS)
    # Some builds refuse; one thread and fixed seeds are enough for repeatable CPU training.
    with contextlib.suppress(RuntimeError):
        torch.use_deterministic_algorithms(True)
    architecture = get_architecture(arch)
    inputs = torch.stack([architecture.preprocess(image) for image in images])
    targets = torch.from_numpy(np.asarray(labels, dtype=np.int64))
    model = architecture.build(num_classes)
    optimiser = torch.optim.Adam(model.parameters(), lr=learning_rate)
    schedule = torch.optim.lr_scheduler.ExponentialLR(optimiser, gamma=lr_decay)
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
        schedule.step()
    model.eval()
    with torch.inference_mode():
        accuracy = (model(inputs).argmax(1) == targets).float().mean().item()
    return model, accuracy


def save_and_predict(out_dir: Path, model, *, arch: str, classes: list[str], name: str = ""):
    """Save `model` as `model{name}.pt` and predict `manifest.csv` through `labeltool.predict`
    into `predictions{name}.csv` (the path `labeltool predict` takes), its embeddings into
    `embeddings{name}.parquet` (`write_embeddings`); returns the predictions' summary."""
    from labeltool.datasets import Manifest
    from labeltool.predict import load_model, save_checkpoint, write_predictions

    checkpoint = out_dir / f"model{name}.pt"
    save_checkpoint(checkpoint, model, arch=arch, class_names=classes)
    manifest = Manifest(out_dir / "manifest.csv", class_names=classes)
    summary = write_predictions(
        out_dir / f"predictions{name}.csv",
        load_model(checkpoint),
        manifest,
        split="dev",
        threads=THREADS,
        # The features go to their own file: predictions.csv stays a table people read.
        embeddings=False,
    )
    write_embeddings(out_dir, name=name)
    return summary


def write_embeddings(out_dir: Path, *, name: str = "") -> Path:
    """Write `embeddings{name}.parquet`: each dev image's penultimate-layer features under
    `model{name}.pt` (the ones `labeltool predict` writes as emb_ columns), as example_id and
    float32 emb_0..emb_k columns, in manifest order, for `labeltool import --embeddings`.

    Needs only the model and the manifest, so it runs alone on a built sample (no retraining:
    `build_sample.py --embeddings`). One CPU thread, no timestamps in the file: the same bytes
    every run."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from labeltool.datasets import Manifest
    from labeltool.predict import load_model, predict

    model = load_model(out_dir / f"model{name}.pt")
    manifest = Manifest(out_dir / "manifest.csv", class_names=model.class_names)
    ids, rows = [], []
    for result in predict(model, manifest, threads=THREADS, features=True):
        if result.features is None:
            raise SystemExit(f"model{name}.pt: its features cannot be caught")
        ids.append(result.record.example_id)
        rows.append(result.features)
    matrix = np.vstack(rows).astype(np.float32)
    columns = {"example_id": pa.array(ids, type=pa.string())}
    columns.update(
        {f"emb_{j}": pa.array(matrix[:, j], type=pa.float32()) for j in range(matrix.shape[1])}
    )
    path = out_dir / f"embeddings{name}.parquet"
    pq.write_table(pa.table(columns), path, compression="zstd")
    return path


def pick(rng: np.random.Generator, count: int, share: float) -> np.ndarray:
    """A boolean mask of `count` entries with round(count * share) of them chosen at random."""
    chosen = np.zeros(count, dtype=bool)
    chosen[rng.choice(count, size=round(count * share), replace=False)] = True
    return chosen


def commonest_pair(pairs: Counter) -> tuple[tuple[str, str], int]:
    """The commonest (label, prediction) pair and its count; ties go to the smallest pair, so
    re-runs agree."""
    if not pairs:
        raise SystemExit("no look-alike errors left to name a confusion pair after")
    return min(pairs.items(), key=lambda item: (-item[1], item[0]))


def flag(value) -> str:
    """A ground-truth flag as the CSV spells it."""
    return "true" if value else "false"


def write_csv(path: Path, header: list[str], rows: list[list[str]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def share(part: int, whole: int) -> str:
    """`part` of `whole` as a whole percentage, for the README's tables."""
    return f"{part / whole:.0%}" if whole else "-"
