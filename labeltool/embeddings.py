"""Embeddings: one feature vector per example, stored in `embeddings`, for "more like this"
and the gallery's clusters (labeltool.similar).

A vector's *source* says where it came from:

- ``model``: the classifier's own penultimate-layer features, saved by `labeltool predict`
  or brought by a predictions file (``emb_0..emb_k`` columns, or a side file keyed by
  ``example_id``);
- ``pixels``: when a run brings none, `labeltool analyze` makes a small stand-in from each
  image's pixels (labeltool.similar.embed_pixels), so similar images can still be found.

Vectors are float32, packed little-endian; all the vectors of one run have the same length.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from labeltool.errors import InvalidInput
from labeltool.models import Embedding, Example

MODEL = "model"
PIXELS = "pixels"
SOURCES = (MODEL, PIXELS)
#: The prefix of a predictions file's embedding columns: emb_0, emb_1, ...
EMB_PREFIX = "emb_"
#: The longest vector kept: wider than any penultimate layer an error analysis needs, small
#: enough that 100k vectors stay under 1.6 GB.
MAX_DIMENSIONS = 4096
_BATCH = 500
_DTYPE = np.dtype("<f4")


def pack(vector: np.ndarray) -> bytes:
    """A vector's bytes as stored."""
    return np.asarray(vector, dtype=_DTYPE).ravel().tobytes()


def unpack(data: bytes) -> np.ndarray:
    """The vector stored as `data`."""
    return np.frombuffer(data, dtype=_DTYPE)


def save(session: Session, *, pks: Sequence[int], vectors: np.ndarray, source: str) -> int:
    """Store one vector per example (row i of `vectors` for `pks[i]`), replacing any the
    examples had; returns how many were stored."""
    if source not in SOURCES:
        raise ValueError(f"unknown embedding source {source!r}")
    vectors = np.asarray(vectors, dtype=_DTYPE)
    if vectors.ndim != 2 or len(vectors) != len(pks):
        raise ValueError(f"expected {len(pks)} vectors, got an array of shape {vectors.shape}")
    if vectors.shape[1] > MAX_DIMENSIONS:
        raise InvalidInput(
            f"embeddings of {vectors.shape[1]:,} dimensions: at most {MAX_DIMENSIONS:,} are kept"
        )
    if not np.isfinite(vectors).all():
        raise InvalidInput("embeddings must be finite numbers (found NaN or infinity)")
    pks = [int(pk) for pk in pks]
    for start in range(0, len(pks), _BATCH):
        batch = pks[start : start + _BATCH]
        session.execute(delete(Embedding).where(Embedding.example_pk.in_(batch)))
        session.execute(
            Embedding.__table__.insert(),
            [
                {"example_pk": pk, "source": source, "vector": pack(vector)}
                for pk, vector in zip(batch, vectors[start : start + _BATCH], strict=True)
            ],
        )
    session.flush()
    return len(pks)


def load(session: Session, *, pks: Iterable[int]) -> tuple[np.ndarray, np.ndarray, str | None]:
    """(the pks that have a vector, in ascending order; their vectors as one float32 matrix;
    the source, "model" when any is the model's) for these examples."""
    wanted = sorted({int(pk) for pk in pks})
    found: list[int] = []
    rows: list[np.ndarray] = []
    sources: set[str] = set()
    for start in range(0, len(wanted), _BATCH * 10):
        batch = wanted[start : start + _BATCH * 10]
        for pk, source, data in session.execute(
            select(Embedding.example_pk, Embedding.source, Embedding.vector)
            .where(Embedding.example_pk.in_(batch))
            .order_by(Embedding.example_pk)
        ):
            found.append(pk)
            rows.append(unpack(data))
            sources.add(source)
    if not rows:
        return np.empty(0, dtype=np.int64), np.empty((0, 0), dtype=_DTYPE), None
    widths = {len(r) for r in rows}
    if len(widths) > 1:
        raise InvalidInput(
            f"these examples' embeddings have different lengths ({sorted(widths)}): "
            "import one model's features per run"
        )
    source = MODEL if MODEL in sources else PIXELS
    return np.asarray(found, dtype=np.int64), np.vstack(rows), source


def run_source(session: Session, *, run_id: int) -> str | None:
    """Where the run's embeddings come from ("model" or "pixels"), or None without any."""
    sources = set(
        session.scalars(
            select(Embedding.source)
            .join(Example, Example.id == Embedding.example_pk)
            .where(Example.run_id == run_id)
            .distinct()
        )
    )
    if not sources:
        return None
    return MODEL if MODEL in sources else PIXELS


def count(session: Session, *, run_id: int, source: str | None = None) -> int:
    """How many of the run's examples have a vector (of `source`, if given)."""
    query = (
        select(func.count())
        .select_from(Embedding)
        .join(Example, Example.id == Embedding.example_pk)
        .where(Example.run_id == run_id)
    )
    if source is not None:
        query = query.where(Embedding.source == source)
    return session.scalar(query) or 0
