"""Benchmark "more like this" and clusters of errors (labeltool.similar): speed at scale, and
how well pixel embeddings group the sample's errors.

1. Scale: 10,000 and 100,000 dev errors (a predictions CSV imported into a fresh SQLite file,
   check_images="none"), each given a 256-number vector with planted structure (30 Gaussian
   blobs, unit centres, noise of 0.08 per dimension: about as far from their centre as the
   centres are from each other) stored through `embeddings.save`. Timed: `space` (loading the
   Space from the database), `neighbours` (k=24, p50 / p95 of 200 queries; also with `among`
   half the errors, and scikit-learn's NearestNeighbors(brute, cosine) beside it), and
   `clusters` (default count, and 30), with the adjusted Rand index of the clusters against
   the planted blobs, and the default clustering again on every core (KMEANS_THREADS).
2. The sample projects: `digits` (sample_data/, 28x28 MNIST) and `shapes` (sample_data/shapes/,
   64x48 photo-like JPEGs). Run 1 is imported into a fresh SQLite file, `embed_pixels` gives
   its dev errors pixel embeddings, and the ground truth's `true_label` judges them:
   neighbour purity (for each error, the share of its 10 nearest errors with its true label),
   and cluster purity (the share of errors in their cluster's most common true label), each
   beside what chance gives (the same share for a random order / random clusters of the same
   sizes); neighbour purity also for the grey 16 x 16 pixels the edge histograms replaced.

    .venv/bin/python bench/bench_similar.py [--sizes 10000 100000]

Prints figures; asserts nothing about timings.
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402
from sqlalchemy import select  # noqa: E402

from labeltool import embeddings, similar  # noqa: E402
from labeltool.db import Database  # noqa: E402
from labeltool.importing import import_predictions  # noqa: E402
from labeltool.models import Example  # noqa: E402
from labeltool.projects import get_project  # noqa: E402
from labeltool.runs import get_run  # noqa: E402
from labeltool.similar import (  # noqa: E402
    Space,
    clusters,
    embed_pixels,
    neighbours,
    space,
)

SAMPLE = REPO / "sample_data"
DIMENSIONS = 256
BLOBS = 30
NOISE = 0.08
QUERIES = 200
NEAREST = 10
SAMPLES = {"digits": SAMPLE, "shapes": SAMPLE / "shapes"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    args = parser.parse_args()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="labeltool-bench-similar-") as tmp:
        scale = [_bench_scale(n, Path(tmp) / f"scale-{n}") for n in args.sizes]
        _print_scale(scale)
        quality = [
            _bench_sample(name, folder, Path(tmp) / name) for name, folder in SAMPLES.items()
        ]
        _print_quality(quality)
    print(f"\nwhole bench: {time.perf_counter() - started:.1f}s")


# --- scale -------------------------------------------------------------------------------


def _bench_scale(n: int, folder: Path) -> dict:
    folder.mkdir(parents=True)
    path = folder / "predictions.csv"
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["example_id", "image", "label", "prediction"])
        writer.writerows([f"e{i:06d}", f"images/e{i:06d}.png", "a", "b"] for i in range(n))
    db = Database.open(f"sqlite:///{folder / 'bench.db'}")
    try:
        took = time.perf_counter()
        with db.begin() as session:
            import_predictions(session, path, project="scale", check_images="none")
            run_id = get_run(session, project_id=get_project(session, "scale").id).id
            pks = session.scalars(select(Example.id).order_by(Example.id)).all()
            imported = time.perf_counter() - took
            rng = np.random.default_rng(0)
            centres = rng.normal(size=(BLOBS, DIMENSIONS))
            centres /= np.linalg.norm(centres, axis=1)[:, None]
            planted = rng.integers(0, BLOBS, size=n)
            vectors = centres[planted] + rng.normal(0, NOISE, size=(n, DIMENSIONS))
            took = time.perf_counter()
            embeddings.save(session, pks=pks, vectors=vectors, source="model")
            saved = time.perf_counter() - took
        print(f"{n:,} errors: import {imported:.1f}s, embeddings.save {saved:.1f}s", flush=True)

        took = time.perf_counter()
        with db.begin() as session:
            found = space(session, run_id=run_id)
        loaded = time.perf_counter() - took
        truth = dict(zip(pks, planted, strict=True))

        queries = rng.choice(found.pks, size=QUERIES, replace=False)
        times = _timed(lambda pk: neighbours(found, int(pk)), queries)
        half = found.pks[::2]
        among = _timed(lambda pk: neighbours(found, int(pk), among=half), queries[:50])
        same = np.mean(
            [
                np.mean([truth[p] == truth[int(pk)] for p, _ in neighbours(found, int(pk))])
                for pk in queries
            ]
        )
        sklearn = _sklearn_times(found, queries[:20])

        took = time.perf_counter()
        default = clusters(found)
        default_time = time.perf_counter() - took
        took = time.perf_counter()
        thirty = clusters(found, n_clusters=BLOBS)
        thirty_time = time.perf_counter() - took
        threads = similar.KMEANS_THREADS
        similar.KMEANS_THREADS = os.cpu_count() or 1
        try:
            took = time.perf_counter()
            clusters(found)
            all_threads = time.perf_counter() - took
        finally:
            similar.KMEANS_THREADS = threads
        return {
            "n": n,
            "load": loaded,
            "memory": (found.matrix.nbytes + found.pks.nbytes) / 1e6,
            "p50": np.percentile(times, 50),
            "p95": np.percentile(times, 95),
            "among": np.percentile(among, 50),
            "sklearn": np.percentile(sklearn, 50),
            "same": same,
            "default": (len(default), default_time, _ari(default, truth)),
            "thirty": (len(thirty), thirty_time, _ari(thirty, truth)),
            "all_threads": all_threads,
        }
    finally:
        db.dispose()


def _timed(call, queries) -> np.ndarray:
    times = []
    for pk in queries:
        took = time.perf_counter()
        call(pk)
        times.append((time.perf_counter() - took) * 1000)
    return np.asarray(times)


def _sklearn_times(found, queries) -> np.ndarray:
    """scikit-learn's brute-force cosine NearestNeighbors on the same vectors, for comparison
    (it normalises the whole matrix again on every query)."""
    from sklearn.neighbors import NearestNeighbors

    model = NearestNeighbors(n_neighbors=25, metric="cosine", algorithm="brute").fit(found.matrix)
    rows = found.rows(queries)
    return _timed(lambda row: model.kneighbors(found.matrix[row : row + 1]), rows)


def _ari(made, truth: dict) -> float:
    from sklearn.metrics import adjusted_rand_score

    pairs = [(truth[pk], c.number) for c in made for pk in c.members]
    return adjusted_rand_score([t for t, _ in pairs], [c for _, c in pairs])


def _print_scale(results: list[dict]) -> None:
    print(f"\nScale: {DIMENSIONS} dimensions, {BLOBS} planted blobs, SQLite file")
    header = (
        f"{'errors':>8}{'space':>8}{'memory':>9}{'nb p50':>8}{'nb p95':>8}{'among':>8}"
        f"{'sklearn':>9}{'same':>6}  {'clusters (default)':>22}  {'clusters (30)':>19}"
        f"{'all cores':>10}"
    )
    print(header)
    print("-" * len(header))
    for r in results:
        k, t, ari = r["default"]
        k30, t30, ari30 = r["thirty"]
        print(
            f"{r['n']:>8,}{r['load']:>7.2f}s{r['memory']:>6.0f} MB{r['p50']:>6.1f}ms"
            f"{r['p95']:>6.1f}ms{r['among']:>6.1f}ms{r['sklearn']:>7.1f}ms{r['same']:>6.2f}"
            f"  {k:>3} in {t:>5.1f}s ARI {ari:.3f}  {k30:>2} in {t30:>5.1f}s ARI {ari30:.3f}"
            f"{r['all_threads']:>9.1f}s"
        )
    print(
        "space: loading the Space from the database; nb: neighbours(k=24) over "
        f"{QUERIES} queries; among: with half the errors as candidates (p50); sklearn: "
        "NearestNeighbors(brute, cosine) p50; same: share of the 24 nearest from the query's blob; "
        f"clusters on {similar.KMEANS_THREADS} thread (KMEANS_THREADS); all cores: the default "
        f"clustering on {os.cpu_count()} threads instead"
    )


# --- the sample projects -----------------------------------------------------------------


def _bench_sample(name: str, folder: Path, tmp: Path) -> dict:
    tmp.mkdir(parents=True)
    with (folder / "ground_truth.csv").open(newline="") as handle:
        truth = {row["example_id"]: row["true_label"] for row in csv.DictReader(handle)}
    db = Database.open(f"sqlite:///{tmp / 'bench.db'}")
    try:
        with db.begin() as session:
            import_predictions(session, folder / "predictions.csv", project=name)
            project_id = get_project(session, name).id
            run_id = get_run(session, project_id=project_id).id
        took = time.perf_counter()
        with db.begin() as session:
            summary = embed_pixels(session, project_id=project_id, run_id=run_id)
        embedded = time.perf_counter() - took
        print(f"{name}: embed_pixels {embedded:.1f}s: {summary}", flush=True)
        with db.begin() as session:
            found = space(session, run_id=run_id)
            ids = dict(
                session.execute(
                    select(Example.id, Example.example_id).where(Example.run_id == run_id)
                ).all()
            )
        labels = {pk: truth[ids[pk]] for pk in found.pks.tolist()}
        purity = _neighbour_purity(found, labels)
        images = dict(
            session.execute(select(Example.id, Example.image).where(Example.run_id == run_id)).all()
        )
        grey = _grey_space(found.pks, [folder / images[pk] for pk in found.pks.tolist()])
        grey_purity = _neighbour_purity(grey, labels)
        counts = Counter(labels.values())
        n = len(labels)
        # A random other error shares the label with chance sum c(c-1) / (n(n-1)).
        chance = sum(c * (c - 1) for c in counts.values()) / (n * (n - 1))
        made = clusters(found)
        cluster_purity = (
            sum(Counter(labels[pk] for pk in c.members).most_common(1)[0][1] for c in made) / n
        )
        cluster_chance = _random_cluster_purity([c.size for c in made], list(labels.values()))
        return {
            "name": name,
            "errors": n,
            "classes": len(counts),
            "seconds": embedded,
            "purity": purity,
            "grey": grey_purity,
            "chance": chance,
            "clusters": len(made),
            "cluster_purity": cluster_purity,
            "cluster_chance": cluster_chance,
        }
    finally:
        db.dispose()


def _neighbour_purity(found: Space, labels: dict[int, str]) -> float:
    """The mean share of each error's NEAREST nearest errors with its true label."""
    return float(
        np.mean(
            [
                np.mean([labels[p] == labels[pk] for p, _ in neighbours(found, pk, k=NEAREST)])
                for pk in labels
            ]
        )
    )


def _grey_space(pks: np.ndarray, paths: list[Path]) -> Space:
    """The stand-in the edge histograms replaced, for comparison: each image in grey, squeezed
    to 16 x 16 by averaging, less its mean, at unit length."""
    rows = []
    for path in paths:
        with Image.open(path) as opened:
            grey = np.asarray(opened.convert("L").resize((16, 16), Image.Resampling.BOX), float)
        vector = grey.ravel() - grey.mean()
        rows.append(vector / max(np.linalg.norm(vector), 1e-9))
    return Space(pks, np.asarray(rows, dtype=np.float32), "pixels")


def _random_cluster_purity(sizes: list[int], labels: list[str], rounds: int = 200) -> float:
    """Cluster purity of random clusters of these sizes (mean of `rounds` shuffles)."""
    rng = np.random.default_rng(0)
    ends = np.cumsum(sizes)[:-1]
    found = []
    for _ in range(rounds):
        shuffled = rng.permutation(labels)
        found.append(
            sum(Counter(part).most_common(1)[0][1] for part in np.split(shuffled, ends))
            / len(labels)
        )
    return float(np.mean(found))


def _print_quality(results: list[dict]) -> None:
    print("\nSample projects: pixel embeddings judged by the ground truth's true label")
    header = (
        f"{'project':<8}{'errors':>7}{'labels':>7}{'embed':>7}"
        f"{'nb purity':>11}{'grey 16x16':>11}{'chance':>8}{'clusters':>10}{'purity':>8}"
        f"{'chance':>8}"
    )
    print(header)
    print("-" * len(header))
    for r in results:
        print(
            f"{r['name']:<8}{r['errors']:>7}{r['classes']:>7}{r['seconds']:>6.1f}s"
            f"{r['purity']:>11.2f}{r['grey']:>11.2f}{r['chance']:>8.2f}{r['clusters']:>10}"
            f"{r['cluster_purity']:>8.2f}{r['cluster_chance']:>8.2f}"
        )
    print(
        f"nb purity: mean share of each error's {NEAREST} nearest errors with its true label "
        "(grey 16x16: the same with the grey-pixel stand-in the edge histograms replaced); "
        "cluster purity: share of errors in their cluster's most common true label; chance: "
        "the same for a random order / random clusters of the same sizes"
    )


if __name__ == "__main__":
    main()
