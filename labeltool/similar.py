"""More like this, and clusters of errors: the dev errors that look alike, so a reviewer who
has just named a category can find the other errors it applies to, and can see which groups
of errors nobody has tagged yet.

Both work on the run's stored embeddings (labeltool.embeddings): the model's own features
when the run brought them, else a stand-in from each image's pixels (`embed_pixels`). They
are compared by cosine distance (1 - cosine similarity: 0 alike, 1 unrelated, 2 opposite),
so an embedding's scale does not matter, only its direction.

`space` loads the run's dev errors' vectors once into a `Space` (rows L2-normalised, ~100 MB
for 100,000 errors x 256 dimensions), which a page keeps in memory: `neighbours` is then one
matrix-vector product (~10 ms at that size), and `clusters` one k-means (~2 s).
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
from PIL import Image
from sqlalchemy import exists, func, select
from sqlalchemy.orm import Session

from labeltool import embeddings, storage
from labeltool.config import DEFAULT_SPLIT
from labeltool.errors import ImageUnavailable, LabeltoolError
from labeltool.images import decode
from labeltool.models import Embedding, Example, Project

#: A pixel embedding is a histogram of edge directions (HOG-like): the grey picture, squeezed to
#: PIXEL_SIDE x PIXEL_SIDE (the aspect is ignored), cut into CELLS x CELLS cells, each with the
#: strength of its edges in ORIENTATIONS directions: 4 x 4 x 8 = 128 numbers. Measured on the
#: sample projects (bench/bench_similar.py) against the raw 16 x 16 grey pixels it replaced:
#: the share of an error's 10 nearest errors with its true label went from 0.42 to 0.44 on the
#: digits (chance: 0.12) and from 0.25 to 0.46 on the shapes (chance: 0.24), whose pixels say
#: more about the background's colour and the shape's position than about the shape.
PIXEL_SIDE = 32
CELLS = 4
ORIENTATIONS = 8
#: Images read and saved together; each batch is flushed, so a stopped run keeps what it did.
BATCH = 500
#: Up to this many errors are clustered by KMeans; above it by MiniBatchKMeans, which takes
#: seconds, not minutes, at 100,000 errors.
KMEANS_LIMIT = 5_000
#: The most clusters `clusters` makes by default: more than a reviewer reads through.
MAX_CLUSTERS = 40
#: Threads k-means may use. One: on this project's 2-core machine, busy with other work,
#: scikit-learn's OpenMP threads waited on each other and 5,000 errors took 20 s instead of
#: 1.3 s (100,000: 23 s instead of 1.6 s); one thread is fast enough and never stalls.
KMEANS_THREADS = 1

#: progress(done, total).
Progress = Callable[[int, int], None]


class NoEmbedding(LabeltoolError):
    """An example has no stored vector, so nothing can be said to look like it."""


@dataclass(frozen=True)
class PixelEmbeddings:
    """What `embed_pixels` did, for the CLI's line: vectors stored now, errors that already
    had one (the model's or an earlier run of it), images that could not be read (missing,
    refused, broken; tried again next time), and whether the run has the model's own
    features (then no pixels are embedded)."""

    stored: int
    already: int
    unreadable: int
    model_features: bool = False

    def __str__(self) -> str:
        if self.model_features:
            return (
                f"the run has the model's own features ({self.already:,} dev errors): "
                "no pixel embeddings needed"
            )
        return (
            f"{self.stored:,} pixel embeddings stored ({self.already:,} errors already had one, "
            f"{self.unreadable:,} images unreadable)"
        )


@dataclass(frozen=True, eq=False)
class Space:
    """The run's dev errors that have a vector: `pks` ascending, row i of `matrix` the unit
    vector of `pks[i]` (all zeros for a zero vector, unlike anything), and where the vectors
    come from ("model" or "pixels"; None when there are none)."""

    pks: np.ndarray
    matrix: np.ndarray
    source: str | None

    def __len__(self) -> int:
        return len(self.pks)

    def rows(self, pks: Iterable[int]) -> np.ndarray:
        """The rows of these pks (those without a vector left out), ascending."""
        return np.flatnonzero(self.mask(pks))

    def mask(self, pks: Iterable[int]) -> np.ndarray:
        """True at the rows of these pks (no sorting: ~1 ms for 50,000 pks at 100,000 rows)."""
        if isinstance(pks, np.ndarray):
            wanted = pks.astype(np.int64, copy=False).ravel()
        else:
            wanted = np.fromiter(pks, dtype=np.int64)
        chosen = np.zeros(len(self.pks), dtype=bool)
        if len(self.pks) and len(wanted):
            at = np.minimum(np.searchsorted(self.pks, wanted), len(self.pks) - 1)
            chosen[at[self.pks[at] == wanted]] = True
        return chosen


@dataclass(frozen=True)
class Cluster:
    """Errors that look alike: `members` nearest the centroid first, so the first is the one
    to show for the cluster; `spread` is their mean cosine distance to the centroid (near 0:
    near copies; towards 1: loosely alike)."""

    number: int
    members: list[int]
    spread: float

    @property
    def representative(self) -> int:
        return self.members[0]

    @property
    def size(self) -> int:
        return len(self.members)


def embed_pixels(
    session: Session, *, project_id: int, run_id: int, progress: Progress | None = None
) -> PixelEmbeddings:
    """Give each of the run's dev errors without a vector a stand-in made from its pixels
    (see `pixel_vector`), so "more like this" works for a run that brought no features.

    Errors with a vector are left alone, so a second call only does what the first did not;
    a run with any of the model's own features gets no pixel vectors at all (model features
    are never replaced, and pixels would not be comparable with them).

    Images are read BATCH at a time and each batch is flushed, so a stopped run resumes where
    it stopped; an image that cannot be read is counted, not fatal. progress(done, total) is
    called before the first batch and after each."""
    project = session.get(Project, project_id)
    errors = _dev_errors(run_id)
    already = session.scalar(
        select(func.count(Example.id)).where(
            *errors, exists().where(Embedding.example_pk == Example.id)
        )
    )
    if embeddings.run_source(session, run_id=run_id) == embeddings.MODEL:
        if progress:
            progress(0, 0)
        return PixelEmbeddings(stored=0, already=already or 0, unreadable=0, model_features=True)
    todo = session.execute(
        select(Example.id, Example.image)
        .where(*errors, ~exists().where(Embedding.example_pk == Example.id))
        .order_by(Example.id)
    ).all()
    root = storage.images_root(project.images_root)
    workers = min(16, os.cpu_count() or 1) if root.is_local else 16
    total, stored, unreadable = len(todo), 0, 0
    if progress:
        progress(0, total)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for start in range(0, total, BATCH):
            batch = todo[start : start + BATCH]
            vectors = list(pool.map(lambda row: _pixel_vector_or_none(root, row.image), batch))
            kept = [(row.id, v) for row, v in zip(batch, vectors, strict=True) if v is not None]
            unreadable += len(batch) - len(kept)
            if kept:
                embeddings.save(
                    session,
                    pks=[pk for pk, _ in kept],
                    vectors=np.vstack([v for _, v in kept]),
                    source=embeddings.PIXELS,
                )
                stored += len(kept)
            if progress:
                progress(min(start + BATCH, total), total)
    return PixelEmbeddings(stored=stored, already=already or 0, unreadable=unreadable)


def pixel_vector(image: Image.Image) -> np.ndarray:
    """A picture's stand-in embedding: where its edges run (see PIXEL_SIDE), taken upright and
    in grey. Only the edges count, and the histogram is scaled to unit length, so a brighter
    or higher-contrast copy of a picture is the same vector; a picture of one flat shade has
    no edges and is all zeros (like nothing). Each number is a square root (the Hellinger
    kernel), so a few strong edges do not drown the rest."""
    from labeltool.image_measures import _upright_grey  # one rule for turning an image grey

    _, _, grey = _upright_grey(image, image.size)
    small = Image.fromarray(grey.astype(np.float32)).resize(
        (PIXEL_SIDE, PIXEL_SIDE), Image.Resampling.BOX
    )
    dy, dx = np.gradient(np.asarray(small, dtype=np.float64))
    strength = np.hypot(dx, dy)
    # The direction an edge runs, not which side is brighter: a dark digit on light paper and
    # a light one on dark paper have the same edges.
    direction = np.minimum((np.arctan2(dy, dx) % np.pi) / np.pi * ORIENTATIONS, ORIENTATIONS - 1)
    cell = np.arange(PIXEL_SIDE) * CELLS // PIXEL_SIDE
    bins = (cell[:, None] * CELLS + cell[None, :]) * ORIENTATIONS + direction.astype(np.intp)
    vector = np.sqrt(
        np.bincount(bins.ravel(), strength.ravel(), minlength=CELLS * CELLS * ORIENTATIONS)
    )
    norm = np.linalg.norm(vector)
    return (vector / norm if norm > 1e-9 else np.zeros_like(vector)).astype(np.float32)


def space(session: Session, *, run_id: int) -> Space:
    """The run's dev errors that have a vector, loaded once for `neighbours` and `clusters`.
    When some are the model's features and some pixels, only the model's are kept: the two
    cannot be compared."""
    rows = session.execute(
        select(Example.id, Embedding.source)
        .join(Embedding, Embedding.example_pk == Example.id)
        .where(*_dev_errors(run_id))
    ).all()
    if any(source == embeddings.MODEL for _, source in rows):
        rows = [row for row in rows if row.source == embeddings.MODEL]
    found, matrix, source = embeddings.load(session, pks=[pk for pk, _ in rows])
    if not len(found):
        return Space(np.empty(0, dtype=np.int64), np.empty((0, 0), dtype=np.float32), None)
    norms = np.linalg.norm(matrix, axis=1)
    norms[norms == 0] = 1.0
    matrix /= norms[:, None]
    return Space(found, matrix, source)


def neighbours(
    space: Space, pk: int, *, k: int = 24, among: Iterable[int] | None = None
) -> list[tuple[int, float]]:
    """The `k` errors most like example `pk`, as (pk, cosine distance), nearest first (ties
    by pk), `pk` itself left out; only among the pks in `among` when given (e.g. the errors a
    queue's filter matches). Raises NoEmbedding when `pk` has no vector in the space."""
    row = space.rows([pk])
    if not len(row):
        # No pk in the text: callers know the user's example id and put it in front.
        raise NoEmbedding(
            "has no embedding among this run's dev errors (not a dev error, or its image "
            "could not be read): run `labeltool analyze` to make them"
        )
    query = space.matrix[row[0]]
    chosen = np.ones(len(space), dtype=bool) if among is None else space.mask(among)
    chosen[row[0]] = False
    count = int(chosen.sum())
    if k <= 0 or not count:
        return []
    if count < len(space) // 4:  # a few candidates: only their rows are multiplied
        candidates = np.flatnonzero(chosen)
        distances = 1.0 - space.matrix[candidates] @ query
    else:  # one product over every row (~10 ms at 100k x 256) beats copying rows out first
        distances = 1.0 - space.matrix @ query
        distances[~chosen] = np.inf
        candidates = np.arange(len(space))
    if k < len(distances):
        nearest = np.argpartition(distances, k - 1)[:k]
        candidates, distances = candidates[nearest], distances[nearest]
    keep = np.isfinite(distances)
    candidates, distances = candidates[keep], distances[keep]
    order = np.lexsort((space.pks[candidates], distances))
    return [
        (int(p), float(max(d, 0.0)))
        for p, d in zip(space.pks[candidates[order]], distances[order], strict=True)
    ]


def default_cluster_count(n: int) -> int:
    """How many clusters `n` errors are split into when not told: about sqrt(n / 2) (a
    common rule of thumb: 100 errors, 7 clusters of ~14), at least 2, at most MAX_CLUSTERS."""
    return min(n, MAX_CLUSTERS, max(2, round(math.sqrt(n / 2))))


def clusters(
    space: Space,
    *,
    pks: Iterable[int] | None = None,
    n_clusters: int | None = None,
    seed: int = 0,
) -> list[Cluster]:
    """The errors `pks` (default: every error in the space; those without a vector are left
    out) in groups that look alike, largest first, by k-means on their unit vectors; the
    same for the same seed. n_clusters defaults to `default_cluster_count` and is at most the
    number of errors; identical vectors may leave fewer, non-empty clusters."""
    rows = space.rows(pks) if pks is not None else np.arange(len(space))
    n = len(rows)
    if n_clusters is not None and n_clusters < 1:
        raise ValueError(f"n_clusters must be at least 1, not {n_clusters}")
    if n == 0:
        return []
    count = min(n, n_clusters if n_clusters is not None else default_cluster_count(n))
    points = space.matrix[rows]
    labels = _kmeans_labels(points, count, seed) if count > 1 else np.zeros(n, dtype=np.intp)

    found = []
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        centroid = points[members].mean(axis=0)
        norm = np.linalg.norm(centroid)
        distances = 1.0 - (points[members] @ (centroid / norm) if norm > 1e-12 else 0.0)
        distances = np.maximum(np.broadcast_to(distances, members.shape), 0.0)
        member_pks = space.pks[rows[members]]
        order = np.lexsort((member_pks, distances))
        found.append((member_pks[order].tolist(), float(distances.mean())))
    found.sort(key=lambda cluster: (-len(cluster[0]), cluster[0][0]))
    return [
        Cluster(number=i, members=members, spread=spread)
        for i, (members, spread) in enumerate(found, start=1)
    ]


# --- private helpers -------------------------------------------------------------------


def _dev_errors(run_id: int) -> tuple:
    """The conditions that make an example one of the run's dev errors."""
    return (
        Example.run_id == run_id,
        Example.split == DEFAULT_SPLIT,
        Example.is_error.is_(True),
    )


def _pixel_vector_or_none(root: storage.ImagesRoot, image: str) -> np.ndarray | None:
    """`image`'s pixel vector, or None when it cannot be read (a Pillow failure too)."""
    try:
        with root.open(image) as stream, decode(stream, root.join(image)) as opened:
            # A large JPEG is decoded at 1/2 to 1/8 scale: a 32 x 32 picture needs few pixels.
            opened.draft(None, (2 * PIXEL_SIDE, 2 * PIXEL_SIDE))
            opened.load()
            return pixel_vector(opened)
    except ImageUnavailable:
        return None


def _kmeans_labels(points: np.ndarray, count: int, seed: int) -> np.ndarray:
    from sklearn.cluster import KMeans, MiniBatchKMeans
    from sklearn.exceptions import ConvergenceWarning
    from threadpoolctl import threadpool_limits

    if len(points) <= KMEANS_LIMIT:
        model = KMeans(n_clusters=count, n_init=4, random_state=seed)
    else:
        model = MiniBatchKMeans(n_clusters=count, n_init=3, batch_size=2048, random_state=seed)
    with warnings.catch_warnings(), threadpool_limits(limits=KMEANS_THREADS):
        # Fewer distinct points than clusters: k-means says so; the empty ones are dropped.
        warnings.simplefilter("ignore", ConvergenceWarning)
        return model.fit_predict(points)
