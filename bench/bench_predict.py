"""Benchmark the model runner: images per second and peak memory for N and 8N images.

The dev set is streamed from disk one batch at a time and the predictions file is written as
it goes, so peak memory should stay flat when the dev set grows eightfold. Each size runs in a
fresh process (peak RSS is per process): once for speed, once under tracemalloc for the peak
of Python allocations. The images are the sample's 28x28 MNIST digits repeated into a folder
per class, scored by the sample's model (digits-cnn-28x28).

    .venv/bin/python bench/bench_predict.py [--n 1000] [--batch-size 64]

Prints figures; asserts nothing about timings.
"""

from __future__ import annotations

import argparse
import csv
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from labeltool.config import SAMPLE_DIR  # noqa: E402 - needs the sys.path line above


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000, help="smaller dev set size (N)")
    parser.add_argument("--batch-size", type=int, default=64, help="images per batch")
    parser.add_argument("--worker", nargs=2, metavar=("IMAGES", "OUT"), help=argparse.SUPPRESS)
    parser.add_argument("--trace", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(_run(Path(args.worker[0]), Path(args.worker[1]), args)))
        return

    print(f"labeltool predict: the sample's digits model on its PNGs, batch size {args.batch_size}")
    print(f"{'images':>8} {'seconds':>8} {'images/s':>9} {'RSS setup':>10} {'RSS peak':>9} "
          f"{'RSS growth':>11} {'py peak':>8}")  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="labeltool-bench-") as tmp:
        for count in (args.n, 8 * args.n):
            folder = _make_images(Path(tmp) / f"images-{count}", count)
            out = Path(tmp) / f"predictions-{count}.csv"
            speed = _worker(folder, out, args.batch_size, trace=False)
            traced = _worker(folder, out, args.batch_size, trace=True)
            print(
                f"{speed['images']:>8} {speed['seconds']:>8.2f} {speed['images_per_s']:>9.0f} "
                f"{speed['rss_setup_mb']:>8.1f}MB {speed['rss_peak_mb']:>7.1f}MB "
                f"{speed['rss_peak_mb'] - speed['rss_setup_mb']:>9.1f}MB "
                f"{traced['python_peak_mb']:>6.2f}MB"
            )
            shutil.rmtree(folder)
    print(
        "RSS: peak resident memory of the process (getrusage); growth: peak minus the peak\n"
        "after loading torch, the model and the image list. py peak: tracemalloc's peak of\n"
        "Python allocations while predicting. Flat growth from N to 8N = memory does not\n"
        "depend on the dev set's size."
    )


# --- private helpers -------------------------------------------------------------------


def _make_images(folder: Path, count: int) -> Path:
    """`count` PNGs in a folder per class, repeating the sample's dev images."""
    with (SAMPLE_DIR / "predictions.csv").open(newline="", encoding="utf-8") as handle:
        sample = [(row["image"], row["label"]) for row in csv.DictReader(handle)]
    for number in range(count):
        image, label = sample[number % len(sample)]
        (folder / label).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(SAMPLE_DIR / image, folder / label / f"{number:07d}.png")
    return folder


def _worker(folder: Path, out: Path, batch_size: int, *, trace: bool) -> dict:
    command = [sys.executable, __file__, "--worker", str(folder), str(out)]
    command += ["--batch-size", str(batch_size)] + (["--trace"] if trace else [])
    done = subprocess.run(command, check=True, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def _run(folder: Path, out: Path, args) -> dict:
    from labeltool.datasets import open_dataset
    from labeltool.predict import load_model, write_predictions

    model = load_model(SAMPLE_DIR / "model.pt")
    dataset = open_dataset(folder, class_names=model.class_names)
    rss_setup = _peak_rss_mb()
    if args.trace:
        tracemalloc.start()
    started = time.perf_counter()
    summary = write_predictions(out, model, dataset, batch_size=args.batch_size)
    seconds = time.perf_counter() - started
    python_peak = tracemalloc.get_traced_memory()[1] / 2**20 if args.trace else None
    return {
        "images": summary.rows,
        "seconds": seconds,
        "images_per_s": summary.rows / seconds,
        "rss_setup_mb": rss_setup,
        "rss_peak_mb": _peak_rss_mb(),
        "python_peak_mb": python_peak,
    }


def _peak_rss_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024  # bytes vs KiB


if __name__ == "__main__":
    main()
