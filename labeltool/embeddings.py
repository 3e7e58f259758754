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

import os
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from labeltool.errors import InvalidInput
from labeltool.limits import MAX_EXAMPLE_ID, shown
from labeltool.models import Embedding, Example
from labeltool.tables import Problems, Table

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


# --- embeddings that come in with a run ------------------------------------------------


@dataclass
class EmbeddingsSummary:
    """What a side file of embeddings brought, for the CLI's line."""

    file: str
    stored: int
    #: The run's examples: those without a vector are allowed, and said.
    examples: int
    dimensions: int

    def __str__(self) -> str:
        return (
            f"{self.file}: embeddings for {self.stored:,} of {self.examples:,} examples "
            f"({self.dimensions:,} dimensions)"
        )


def embedding_columns(columns: Sequence[str], *, file: str) -> list[str]:
    """The header's embedding columns in vector order (emb_0, emb_1, ...), [] without any.

    They must run from emb_0 without a gap, each named once, at most MAX_DIMENSIONS:
    anything else is refused naming the column, since a vector with a hole in it would
    compare wrongly with every other."""
    found: dict[int, str] = {}
    for name in columns:
        if not name.startswith(EMB_PREFIX):
            continue
        suffix = name[len(EMB_PREFIX) :]
        if not (suffix.isascii() and suffix.isdigit()) or str(int(suffix)) != suffix:
            raise InvalidInput(
                "an embedding column is named emb_ and its position from 0 (emb_0, emb_1, …)",
                file=file,
                row=1,
                column=shown(name)[1:-1],
            )
        found[int(suffix)] = name
    if not found:
        return []
    if len(found) > MAX_DIMENSIONS:
        raise InvalidInput(
            f"{len(found):,} embedding columns: at most {MAX_DIMENSIONS:,} are kept",
            file=file,
            row=1,
        )
    gap = next(i for i in range(len(found) + 1) if i not in found)
    if gap < len(found):
        raise InvalidInput(
            f"is missing: the embedding columns must run emb_0 … emb_{max(found)} without a gap",
            file=file,
            row=1,
            column=f"{EMB_PREFIX}{gap}",
        )
    return [found[i] for i in range(len(found))]


def parse_cells(
    frame: pd.DataFrame, columns: Sequence[str], rows: np.ndarray, problems: Problems
) -> np.ndarray:
    """The embedding cells of a chunk of text cells as a float32 (rows, dimensions) matrix.

    One Arrow cast reads the whole block; only when it meets a cell that is not a finite
    number are the columns read one by one, to note each bad cell's row and column in
    `problems` (an empty cell, text, NaN or infinity)."""
    block = frame[list(columns)].to_numpy(dtype=object)
    values = _cast_block(block)
    if values is not None and np.isfinite(values).all():
        return values.astype(_DTYPE)
    values = np.empty(block.shape, dtype=np.float64)
    for j, column in enumerate(columns):
        cells = block[:, j]
        values[:, j] = _cast_column(cells)
        problems.add_mask(
            ~np.isfinite(values[:, j]),
            rows,
            column=column,
            check="embedding",
            message=lambda i, c=cells: (
                "is empty: every embedding cell is a number"
                if str(c[i]).strip() == ""
                else f"{shown(str(c[i]).strip())} is not a finite number"
            ),
        )
    return np.nan_to_num(values, nan=0.0, posinf=0.0, neginf=0.0).astype(_DTYPE)


def import_file(
    session: Session,
    path: str | os.PathLike[str],
    *,
    run_id: int,
    row_order: Sequence[str] | None = None,
    user: str | None = None,
) -> EmbeddingsSummary:
    """Store the model's embeddings a side file brings for the run's examples, all or nothing.

    Parquet or CSV: an `example_id` column and emb_0..emb_k. `.npz`: arrays `example_id`
    (text or integers) and `embeddings` (n, k). `.npy`: an (n, k) array whose rows follow
    `row_order`, the predictions file's example ids (so only when importing that file).
    They replace all the run's vectors. An id the run lacks, or one given twice, is refused
    naming the file and row; the run's examples the file leaves out have no vector, and the
    summary says how many do.
    Nothing is unpickled: object arrays are refused. `user` acts: once the project has
    members, a run's embeddings are the lead's to change (labeltool.roles).
    """
    from labeltool.models import Run
    from labeltool.roles import Role, require

    run = session.get(Run, run_id)
    if run is not None:
        require(
            session,
            project_id=run.project_id,
            user=user,
            needs=Role.LEAD,
            action="importing a run's embeddings",
        )
    path = Path(path)
    if not path.is_file():
        raise InvalidInput("file not found", file=str(path))
    pks_by_id = _pks_by_id(session, run_id)
    suffix = path.suffix.lower()
    if suffix == ".npy":
        if row_order is None:
            raise InvalidInput(
                "a .npy file has no example ids: its rows follow the predictions file, so it "
                "comes with `labeltool import --embeddings`; otherwise use .npz, Parquet or CSV "
                "with an example_id column",
                file=path.name,
            )
        ids, places, vectors = _read_npy(path, row_order)
    elif suffix == ".npz":
        ids, places, vectors = _read_npz(path, most_rows=len(pks_by_id))
    else:
        ids, places, vectors = _read_table(path)
    _check_ids(ids, places, pks_by_id, file=path.name)
    if vectors.shape[1] > MAX_DIMENSIONS:
        raise InvalidInput(
            f"embeddings of {vectors.shape[1]:,} dimensions: at most {MAX_DIMENSIONS:,} are kept",
            file=path.name,
        )
    clear_run(session, run_id=run_id)
    stored = save(session, pks=[pks_by_id[i] for i in ids], vectors=vectors, source=MODEL)
    return EmbeddingsSummary(
        file=path.name,
        stored=stored,
        examples=len(pks_by_id),
        dimensions=int(vectors.shape[1]) if len(vectors) else 0,
    )


def clear_run(session: Session, *, run_id: int) -> None:
    """Forget the run's vectors: a run's vectors are one model's, so a file that brings
    some replaces them all (an example it leaves out must not keep an older, maybe
    differently sized, vector)."""
    session.execute(
        delete(Embedding).where(
            Embedding.example_pk.in_(select(Example.id).where(Example.run_id == run_id))
        )
    )


def save_for_ids(
    session: Session, *, run_id: int, example_ids: Sequence[str], vectors: np.ndarray
) -> int:
    """The run's vectors become these, the model's, of the examples named by `example_ids`
    (all exist); returns how many were stored."""
    pks_by_id = _pks_by_id(session, run_id)
    clear_run(session, run_id=run_id)
    return save(session, pks=[pks_by_id[i] for i in example_ids], vectors=vectors, source=MODEL)


# --- private helpers -------------------------------------------------------------------

#: The widest example id a .npz may declare (characters of numpy's fixed-width text).
_MAX_ID_CHARS = 4 * MAX_EXAMPLE_ID


def _pks_by_id(session: Session, run_id: int) -> dict[str, int]:
    """The run's examples: example_id -> pk."""
    return {
        example_id: pk
        for example_id, pk in session.execute(
            select(Example.example_id, Example.id).where(Example.run_id == run_id)
        )
    }


def _cast_block(block: np.ndarray) -> np.ndarray | None:
    """All the cells as float64 in one Arrow cast, or None when one is not a plain number."""
    try:
        flat = pa.array(block.ravel(), type=pa.string())
        cast = pc.cast(flat, pa.float64())
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return None
    return cast.to_numpy(zero_copy_only=False).reshape(block.shape)


def _cast_column(cells: np.ndarray) -> np.ndarray:
    """One column's cells as float64, NaN where a cell is not a number (surrounding blanks
    and forms Arrow refuses, like " 1.5", are read as pandas reads them)."""
    try:
        return pc.cast(pa.array(cells, type=pa.string()), pa.float64()).to_numpy(
            zero_copy_only=False
        )
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return pd.to_numeric(pd.Series(cells, dtype=object), errors="coerce").to_numpy(
            dtype=np.float64
        )


def _read_table(path: Path) -> tuple[list[str], list[int], np.ndarray]:
    """(example ids, where each is for a message, vectors) of a Parquet or CSV side file."""
    problems = Problems(path.name)
    table = Table(path, problems=problems)
    if "example_id" not in table.columns:
        raise InvalidInput(
            "required column is missing (an embeddings file has example_id and emb_0, emb_1, …)",
            file=table.file,
            row=1,
            column="example_id",
        )
    columns = embedding_columns(table.columns, file=table.file)
    if not columns:
        raise InvalidInput("has no embedding columns (emb_0, emb_1, …)", file=table.file, row=1)
    ids: list[str] = []
    places: list[int] = []
    blocks: list[np.ndarray] = []
    for frame in table.chunks():
        rows = frame.index.to_numpy() + 2
        cells = frame["example_id"].str.strip()
        problems.add_mask(
            (cells == "").to_numpy(),
            rows,
            column="example_id",
            check="empty",
            message=lambda _i: "is empty",
        )
        ids.extend(cells.tolist())
        places.extend(rows.tolist())
        blocks.append(parse_cells(frame, columns, rows, problems))
    problems.raise_first()
    if not ids:
        raise InvalidInput("has a header but no rows", file=table.file)
    return ids, places, np.vstack(blocks)


def _read_npz(path: Path, *, most_rows: int) -> tuple[list[str], list[str], np.ndarray]:
    """(example ids, where each is, vectors) of a .npz with `example_id` and `embeddings`;
    the arrays' headers are checked before their data is read, so a file cannot ask for
    more memory than the run's examples need."""
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise InvalidInput(f"not a .npz archive ({exc})", file=path.name) from None
    with archive:
        names = set(archive.namelist())
        for key in ("example_id", "embeddings"):
            if f"{key}.npy" not in names:
                raise InvalidInput(
                    f"has no array '{key}' (a .npz of embeddings holds example_id and embeddings)",
                    file=path.name,
                )
        id_shape, id_dtype = _npy_header(archive, "example_id.npy", file=path.name)
        shape, dtype = _npy_header(archive, "embeddings.npy", file=path.name)
        if len(id_shape) != 1 or id_dtype.kind not in "USiu":
            raise InvalidInput(
                "the example_id array must be one row of text or integers, not "
                f"{id_dtype} of shape {id_shape}",
                file=path.name,
            )
        if id_dtype.kind in "US" and id_dtype.itemsize > _MAX_ID_CHARS * 4:
            raise InvalidInput(
                f"the example_id array's text is {id_dtype} wide; an example id has at most "
                f"{MAX_EXAMPLE_ID} characters",
                file=path.name,
            )
        _check_matrix(shape, dtype, file=path.name, what="the embeddings array")
        if shape[0] != id_shape[0]:
            raise InvalidInput(
                f"{id_shape[0]:,} example ids but {shape[0]:,} embeddings", file=path.name
            )
        if shape[0] > most_rows:
            raise InvalidInput(
                f"{shape[0]:,} embeddings for a run of {most_rows:,} examples", file=path.name
            )
        try:
            with np.load(path, allow_pickle=False) as arrays:
                raw_ids = arrays["example_id"]
                vectors = arrays["embeddings"]
        except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
            raise InvalidInput(f"cannot read the arrays: {exc}", file=path.name) from None
    if raw_ids.dtype.kind == "S":
        try:
            ids = [i.decode("utf-8").strip() for i in raw_ids.tolist()]
        except UnicodeDecodeError:
            raise InvalidInput("the example_id array is not UTF-8 text", file=path.name) from None
    else:
        ids = [str(i).strip() for i in raw_ids.tolist()]
    places = [f"example_id[{i}]" for i in range(len(ids))]
    return ids, places, _finite(vectors, places, file=path.name)


def _read_npy(path: Path, row_order: Sequence[str]) -> tuple[list[str], list[str], np.ndarray]:
    """(example ids, where each is, vectors) of an (n, k) .npy in the predictions' order."""
    try:
        vectors = np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise InvalidInput(f"cannot read the array: {exc}", file=path.name) from None
    if not isinstance(vectors, np.ndarray):
        raise InvalidInput("not a .npy array", file=path.name)
    _check_matrix(vectors.shape, vectors.dtype, file=path.name, what="the array")
    if vectors.shape[0] != len(row_order):
        raise InvalidInput(
            f"{vectors.shape[0]:,} rows of embeddings for the predictions file's "
            f"{len(row_order):,} rows: a .npy's rows follow the predictions file's, one each",
            file=path.name,
        )
    places = [f"row {i} of the array (example {shown(e)})" for i, e in enumerate(row_order)]
    return list(row_order), places, _finite(np.asarray(vectors), places, file=path.name)


def _npy_header(archive: zipfile.ZipFile, name: str, *, file: str) -> tuple[tuple, np.dtype]:
    """The shape and dtype an array of a .npz declares, read without its data."""
    from numpy.lib import format as npy

    try:
        with archive.open(name) as member:
            version = npy.read_magic(member)
            if version == (1, 0):
                shape, _fortran, dtype = npy.read_array_header_1_0(member)
            elif version == (2, 0):
                shape, _fortran, dtype = npy.read_array_header_2_0(member)
            else:
                raise ValueError(f"unsupported .npy version {version}")
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        raise InvalidInput(f"cannot read the array {name}: {exc}", file=file) from None
    if dtype.hasobject or dtype.fields is not None:
        raise InvalidInput(
            f"the array {name} holds Python objects or records ({dtype}): labeltool reads only "
            "plain numbers and text, and never unpickles",
            file=file,
        )
    return shape, dtype


def _check_matrix(shape: tuple, dtype: np.dtype, *, file: str, what: str) -> None:
    if dtype.hasobject or dtype.kind not in "fiu":
        raise InvalidInput(f"{what} must hold numbers, not {dtype}", file=file)
    if len(shape) != 2:
        raise InvalidInput(
            f"{what} must be (examples, dimensions), not of shape {shape}", file=file
        )
    if shape[1] > MAX_DIMENSIONS or shape[1] == 0:
        raise InvalidInput(
            f"embeddings of {shape[1]:,} dimensions: 1 to {MAX_DIMENSIONS:,} are kept", file=file
        )


def _finite(vectors: np.ndarray, places: list[str], *, file: str) -> np.ndarray:
    """`vectors` as float32, or InvalidInput naming the first row with NaN or infinity."""
    vectors = np.asarray(vectors, dtype=np.float64)
    bad = ~np.isfinite(vectors).all(axis=1)
    if bad.any():
        rows = np.flatnonzero(bad)
        more = f" (and {len(rows) - 1:,} more rows like it)" if len(rows) > 1 else ""
        raise InvalidInput(
            f"{places[rows[0]]}: the embedding holds NaN or infinity; every value is a finite "
            f"number{more}",
            file=file,
        )
    return vectors.astype(_DTYPE)


def _check_ids(
    ids: list[str], places: Sequence[int | str], pks_by_id: dict[str, int], *, file: str
) -> None:
    """Refuse an id the run does not have, or one given twice, naming the first of each.

    `places` says where each id is: its spreadsheet row (a table), or words (an array)."""
    seen: dict[str, int] = {}
    unknown: list[int] = []
    repeated: list[tuple[int, int]] = []
    for position, example_id in enumerate(ids):
        first = seen.setdefault(example_id, position)
        if first != position:
            repeated.append((position, first))
        elif example_id not in pks_by_id:
            unknown.append(position)
    found: list[tuple[int, str, int]] = []
    if unknown:
        at = unknown[0]
        found.append(
            (at, f"example_id {shown(ids[at])} is not an example of the run", len(unknown) - 1)
        )
    if repeated:
        at, first = repeated[0]
        earlier = places[first]
        earlier = f"row {earlier}" if isinstance(earlier, int) else earlier
        found.append(
            (
                at,
                f"example_id {shown(ids[at])} is given twice (first in {earlier})",
                len(repeated) - 1,
            )
        )
    if not found:
        return
    at, message, more = min(found)
    place = places[at]
    if isinstance(place, int):
        raise InvalidInput(message, file=file, row=place, column="example_id", more=more)
    raise InvalidInput(f"{place}: {message}", file=file, more=more)
