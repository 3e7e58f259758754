"""Import a predictions file (CSV or Parquet) into a project, all or nothing, at any size.

Columns: `example_id, image, label, prediction`, optional `confidence`, `prob_<class>`,
`split` and the model's embedding `emb_0..emb_k` (labeltool.embeddings). The file is read
in chunks (labeltool.tables) while the previous chunk is written: each chunk's rows are
checked with vectorised operations, each distinct image is checked once by the images root
(labeltool.storage) in the background, and the rows go in with the database's bulk path
(executemany on SQLite, COPY on PostgreSQL), inside a savepoint. A problem anywhere rolls it
all back and is raised as `InvalidInput` naming the file, the spreadsheet row (header = row
1) and the column of its earliest row, with a count of the other rows that have the same
problem. Re-importing the same file changes nothing; a changed prediction updates its
example and keeps its tags.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import delete, func, insert, select, text, update
from sqlalchemy.orm import Session

from labeltool import audit, embeddings, storage, tables
from labeltool.config import DEFAULT_SPLIT, SPLITS
from labeltool.errors import ImageUnavailable, InvalidInput, UnsafePath
from labeltool.limits import (
    MAX_EXAMPLE_ID,
    MAX_LABEL,
    MAX_PROJECT_NAME,
    check_text,
    control_character,
    shown,
)
from labeltool.models import REVIEWED_STATES, Example, Project, ReviewState, utcnow
from labeltool.projects import dev_error_rate
from labeltool.roles import Role, require
from labeltool.runs import FIRST_RUN, carry_over, create_run, find_run
from labeltool.storage import CHECK_DEPTHS, ImageProblem, ImagesRoot
from labeltool.tables import CHUNK_ROWS, Problems, Table

REQUIRED_COLUMNS = ("example_id", "image", "label", "prediction")
OPTIONAL_COLUMNS = ("confidence", "split")
PROB_PREFIX = "prob_"

#: progress(done, total): called while writing, so the CLI and pages can draw a bar.
Progress = Callable[[int, int], None]

#: How closely each distinct image is looked at unless the caller says otherwise.
DEFAULT_CHECK = "exists"
#: From this many rows, a first import on SQLite rebuilds the indexes at the end (_Writer).
BULK_ROWS = 50_000

_PERSON = b"labeltool"


@dataclass
class ImportSummary:
    """What an import did, for the CLI's last line and the page's success message."""

    project: str
    rows: int
    inserted: int
    updated: int
    unchanged: int
    dev_examples: int
    misclassified: int
    class_names: list[str] = field(default_factory=list)
    #: The run the file went into, and whether this import created it.
    run: str = "1"
    new_run: bool = False
    #: Reviewed errors whose label or prediction changed: marked "needs re-review".
    needs_rereview: int = 0
    #: Reviewed errors of the previous run that are still errors, carried into a new run.
    carried: int = 0
    #: The run's examples the file no longer has, removed (--allow-different-examples).
    removed: int = 0
    #: Dev examples of the project the file lacks, and those it adds (a new run compared
    #: with the previous one, with --allow-different-examples).
    missing: int = 0
    extra: int = 0
    #: The examples given the model's embedding (emb_ columns or --embeddings), and the
    #: side file's name when one brought them.
    embeddings: int = 0
    embeddings_file: str | None = None

    @property
    def dev_error(self) -> float:
        return self.misclassified / self.dev_examples if self.dev_examples else 0.0

    def __str__(self) -> str:
        run = f"new run '{self.run}'" if self.new_run else f"run '{self.run}'"
        text = (
            f"project '{self.project}', {run}: {self.rows} row{'' if self.rows == 1 else 's'} "
            f"read, {self.inserted} added, "
            f"{self.updated} updated, {self.unchanged} unchanged; {self.dev_examples} dev "
            f"examples, {self.misclassified} misclassified (dev error {self.dev_error:.1%})"
        )
        if self.removed:
            text += f"; {self.removed} examples no longer in the file removed from the run"
        if self.missing or self.extra:
            text += (
                f"; {self.missing} of the previous run's dev examples missing, "
                f"{self.extra} new ones"
            )
        if self.needs_rereview:
            text += (
                f"; {self.needs_rereview} reviewed errors changed and are marked needs re-review"
            )
        if self.carried:
            text += (
                f"; {self.carried} reviewed errors still wrong carried over with their image tags"
            )
        if self.embeddings or self.embeddings_file:
            text += f"; embeddings for {self.embeddings:,} of {self.rows:,} examples"
            if self.embeddings_file:
                text += f" (from {self.embeddings_file})"
        return text


def check_depth(value: str | bool | None) -> str:
    """The image check depth named by `value`: one of CHECK_DEPTHS (True = the default,
    False or None = "none")."""
    if value is True:
        return DEFAULT_CHECK
    if value is False or value is None:
        return "none"
    if value not in CHECK_DEPTHS:
        raise ValueError(f"unknown image check {value!r}; use one of: {', '.join(CHECK_DEPTHS)}")
    return value


def import_predictions(
    session: Session,
    path: str | os.PathLike[str],
    *,
    project: str,
    images_root: str | os.PathLike[str] | ImagesRoot | None = None,
    class_names: Sequence[str] | None = None,
    check_images: str | bool = DEFAULT_CHECK,
    replace_classes: bool = False,
    progress: Progress | None = None,
    run: str | None = None,
    note: str | None = None,
    target_category: str | None = None,
    allow_different_examples: bool = False,
    chunk_rows: int = CHUNK_ROWS,
    embeddings_file: str | os.PathLike[str] | None = None,
    user: str | None = None,
) -> ImportSummary:
    """Read `path` in chunks, check every row, and create or update `project`'s run from it.

    All or nothing: the rows are written as they are read, inside a savepoint, and a problem
    anywhere in the file (found in any chunk, or by the image check running beside the
    reader) rolls the savepoint back and raises `InvalidInput` naming the earliest row with
    it: the database is as it was. `check_images` says how closely each distinct image is
    looked at, once and in parallel: "exists" (the default), "open" (Pillow reads its
    header) or "none".

    An existing project keeps its class list (new classes may be added after it); a file or
    `class_names` that would change it is refused unless `replace_classes` says the change
    is meant.

    The file goes into the project's run called `run` (created when new: a new model
    version), or its latest run without one (a first import creates run "1"). It must hold
    the same dev examples as the run it updates, or, for a new run, as the run before it;
    otherwise it is refused naming how many differ and the first few ids, unless
    `allow_different_examples`. A reviewed error whose label or prediction changed is marked
    "needs re-review"; a new run starts with the previous run's image tags and reviews of
    the examples misclassified in both (labeltool.runs.carry_over).

    The model's embeddings come as the file's `emb_0..emb_k` columns or as
    `embeddings_file` (labeltool.embeddings.import_file; its .npy rows follow this file's),
    not both; they replace the vectors the run's examples had.

    `progress(rows done, rows expected)` is called after each chunk; the expected count is
    an estimate from the bytes read until the file's end.

    `user` acts: once an existing project has members, only a lead may import a run into it
    (labeltool.roles); a new project is open.
    """
    path = Path(path)
    depth = check_depth(check_images)
    check_text(project, what="a project name", limit=MAX_PROJECT_NAME)
    existing = session.scalar(select(Project.id).where(Project.name == project))
    if existing is not None:
        require(session, project_id=existing, user=user, needs=Role.LEAD, action="importing a run")
    explicit = [
        check_text(c, what="a class name", limit=MAX_LABEL, file=path.name)
        for c in class_names or ()
    ]
    try:
        root = storage.images_root(
            images_root if images_root is not None else path.resolve().parent
        )
    except InvalidInput as exc:
        raise InvalidInput(exc.reason, file=str(path)) from None
    if root.is_local and not Path(root.url).is_dir():
        raise InvalidInput(f"images root '{root.url}' is not a folder", file=str(path))

    table = Table(path, chunk_rows=chunk_rows, problems=Problems(path.name))
    header = _Header.of(table, explicit or None)
    if header.emb_columns and embeddings_file is not None:
        raise InvalidInput(
            f"has embedding columns ({header.emb_columns[0]}, …) and embeddings were also "
            f"given in {Path(embeddings_file).name}: give them one way",
            file=table.file,
            row=1,
        )
    with session.begin_nested():
        return _Import(
            session,
            table,
            header,
            root=root,
            depth=depth,
            project=project,
            replace_classes=replace_classes,
            progress=progress,
            run=run,
            note=note,
            target_category=target_category,
            allow_different_examples=allow_different_examples,
            embeddings_file=Path(embeddings_file) if embeddings_file is not None else None,
            user=user,
        ).run()


def read_table(path: str | os.PathLike[str]) -> pd.DataFrame:
    """A whole CSV or Parquet file as text cells (labeltool.tables.read_table)."""
    return tables.read_table(path)


def shuffle_key(example_id: str) -> int:
    """A fixed pseudo-random 63-bit number for `example_id`: sorting by it is a fair sample."""
    digest = hashlib.blake2b(example_id.encode(), digest_size=8, person=_PERSON).digest()
    return int.from_bytes(digest, "big") >> 1


def shuffle_keys(example_ids: Sequence[str]) -> list[int]:
    """`shuffle_key` of each id (the same numbers, without a Python call per id)."""
    blake2b, from_bytes = hashlib.blake2b, int.from_bytes
    return [
        from_bytes(blake2b(i.encode(), digest_size=8, person=_PERSON).digest(), "big") >> 1
        for i in example_ids
    ]


def natural_order(name: str):
    """Sort "2" before "10", and names alphabetically."""
    return (0, int(name), "") if name.isascii() and name.isdigit() else (1, 0, name)


# --- the header ------------------------------------------------------------------------


@dataclass
class _Header:
    """What the header says: the probability columns and, if named, the classes."""

    prob_columns: list[str]
    prob_classes: list[str]
    #: --classes, else the prob_ columns' classes, else None (the labels say).
    known_classes: list[str] | None
    has_confidence: bool
    has_split: bool
    #: Whether the classes were given (--classes) rather than read from the header.
    explicit: bool
    #: emb_0..emb_k in vector order ([] without any).
    emb_columns: list[str] = field(default_factory=list)

    @classmethod
    def of(cls, table: Table, explicit: list[str] | None) -> _Header:
        columns = table.columns
        for column in REQUIRED_COLUMNS:
            if column not in columns:
                raise InvalidInput(
                    "required column is missing (the header has: "
                    f"{', '.join(columns) or 'nothing'})",
                    file=table.file,
                    row=1,
                    column=column,
                )
        prob_columns = [
            c for c in columns if c.startswith(PROB_PREFIX) and len(c) > len(PROB_PREFIX)
        ]
        for column in prob_columns:
            check_text(
                column[len(PROB_PREFIX) :],
                what="a class name",
                limit=MAX_LABEL,
                file=table.file,
                row=1,
                column=shown(column)[1:-1],
            )
        prob_classes = [c[len(PROB_PREFIX) :] for c in prob_columns]
        return cls(
            prob_columns=prob_columns,
            prob_classes=prob_classes,
            known_classes=explicit or prob_classes or None,
            has_confidence="confidence" in columns,
            has_split="split" in columns,
            explicit=bool(explicit),
            emb_columns=embeddings.embedding_columns(columns, file=table.file),
        )


# --- reading and checking the rows -----------------------------------------------------


@dataclass
class _Chunk:
    """One chunk's rows, checked and ready to write (column lists in file order)."""

    rows: int
    example_id: list[str]
    image: list[str]
    label: list[str]
    prediction: list[str]
    confidence: list[float | None]
    probabilities: list[str | None]
    split: list[str]
    is_error: list[bool]
    #: The model's embedding of each row (float32, rows x dimensions), when the file has one.
    embeddings: np.ndarray | None = None
    #: Rows read so far (this chunk's included), and the file's expected rows.
    done: int = 0
    expected: int = 0


class _Reader:
    """Checks each chunk's rows (vectorised) and turns them into a `_Chunk`.

    Problems go to `problems` and reading goes on, so the earliest problem of the whole
    file is reported with how many rows share it. Each distinct image is handed to the
    checker once.
    """

    def __init__(self, table: Table, header: _Header, checker: _ImageChecker) -> None:
        self.table, self.header, self.checker = table, header, checker
        self.problems = table.problems
        #: Distinct safe image paths handed to the checker.
        self._queued: set[str] = set()
        #: example_id -> the spreadsheet row where it first appears.
        self.first_row: dict[str, int] = {}
        #: The dev example ids in the file's order (for the comparison with the last run).
        self.dev_ids: list[str] = []
        self.seen_classes: set[str] = set()
        #: raw image cell -> its safe path, or None when it is refused.
        self._images: dict[str, str | None] = {}
        #: raw image cell -> why it is refused (the cells mapped to None above).
        self._refused: dict[str, str] = {}
        #: safe path -> (first row, rows naming it).
        self.image_rows: dict[str, list[int]] = {}
        self.rows = 0

    def chunks(self) -> Iterator[_Chunk]:
        for frame in self.table.chunks():
            chunk = self._checked(frame)
            self.rows += chunk.rows
            chunk.done, chunk.expected = self.rows, self.table.estimated_rows()
            yield chunk

    def _checked(self, frame: pd.DataFrame) -> _Chunk:
        header, problems = self.header, self.problems
        rows = frame.index.to_numpy() + 2
        text = {c: _trimmed(frame[c]) for c in REQUIRED_COLUMNS}
        arrays = {c: text[c].to_numpy() for c in REQUIRED_COLUMNS}
        for column in REQUIRED_COLUMNS:
            problems.add_mask(
                arrays[column] == "",
                rows,
                column=column,
                check="empty",
                message=lambda _i: "is empty",
            )
        for column, limit in (
            ("example_id", MAX_EXAMPLE_ID),
            ("label", MAX_LABEL),
            ("prediction", MAX_LABEL),
        ):
            values = arrays[column]
            problems.add_mask(
                _has_control(text[column]),
                rows,
                column=column,
                check="control",
                message=lambda i, v=values: (
                    f"cannot hold the control character {control_character(v[i])} ({shown(v[i])})"
                ),
            )
            problems.add_mask(
                text[column].str.len().to_numpy() > limit,
                rows,
                column=column,
                check="length",
                message=lambda i, v=values, n=limit: (
                    f"has at most {n} characters, not {len(v[i]):,} ({shown(v[i])})"
                ),
            )

        ids = arrays["example_id"].tolist()
        self._check_repeated_ids(ids, rows.tolist())

        labels, predictions = text["label"], text["prediction"]
        known = header.known_classes
        if known:
            known_set = set(known)
            for column, values in (("label", labels), ("prediction", predictions)):
                array = values.to_numpy()
                problems.add_mask(
                    ~values.isin(known_set).to_numpy() & (array != ""),
                    rows,
                    column=column,
                    check="unknown",
                    message=lambda i, a=array: (
                        f"unknown label {shown(a[i])} (known classes: {_listed(known)})"
                    ),
                )
        else:
            self.seen_classes.update(labels.unique().tolist())
            self.seen_classes.update(predictions.unique().tolist())

        confidence = (
            self._numbers(frame["confidence"], "confidence", rows)
            if header.has_confidence
            else None
        )
        probabilities = [
            self._numbers(frame[column], column, rows) for column in header.prob_columns
        ]

        if header.has_split:
            split = _trimmed(frame["split"]).replace("", DEFAULT_SPLIT)
            problems.add_mask(
                ~split.isin(SPLITS).to_numpy(),
                rows,
                column="split",
                check="split",
                message=lambda i, s=split.to_numpy(): (
                    f"unknown split {shown(s[i])} (use one of: {', '.join(SPLITS)})"
                ),
            )
            split_list = split.tolist()
        else:
            split_list = [DEFAULT_SPLIT] * len(frame)
        if header.has_split:
            self.dev_ids.extend(i for i, s in zip(ids, split_list, strict=True) if s == "dev")
        else:
            self.dev_ids.extend(ids)

        images = self._images_of(text["image"], rows)

        label_list, prediction_list = labels.tolist(), predictions.tolist()
        is_error = (labels.to_numpy() != predictions.to_numpy()).tolist()
        if probabilities and (confidence is None or np.isnan(confidence).any()):
            own = _confidence_from(predictions, header.prob_classes, probabilities)
            confidence = (
                own if confidence is None else np.where(np.isnan(confidence), own, confidence)
            )
        return _Chunk(
            rows=len(frame),
            example_id=ids,
            image=images,
            label=label_list,
            prediction=prediction_list,
            confidence=(_optional(confidence) if confidence is not None else [None] * len(frame)),
            probabilities=(
                _probabilities_json(header.prob_classes, probabilities, frame, header)
                if probabilities
                else [None] * len(frame)
            ),
            split=split_list,
            is_error=is_error,
            embeddings=(
                embeddings.parse_cells(frame, header.emb_columns, rows, problems)
                if header.emb_columns
                else None
            ),
        )

    def _check_repeated_ids(self, ids: list[str], rows: list[int]) -> None:
        first_row = self.first_row
        repeated = 0
        message = None
        at = None
        for example_id, row in zip(ids, rows, strict=True):
            first = first_row.setdefault(example_id, row)
            if first != row and example_id:
                repeated += 1
                if at is None:
                    at = row
                    message = (
                        f"example_id {shown(example_id)} appears twice in the file "
                        f"(first in row {first})"
                    )
        if repeated:
            self.problems.add(
                message, row=at, column="example_id", check="repeated", count=repeated
            )

    def _numbers(self, cells: pd.Series, column: str, rows: np.ndarray) -> np.ndarray:
        """A probability-like column as floats in [0, 1], NaN for an empty cell."""
        values = pd.to_numeric(cells, errors="coerce").to_numpy(dtype=float)
        suspect = np.isnan(values) | (values < 0) | (values > 1)
        if suspect.any():
            raw = cells.to_numpy()
            empty = np.zeros(len(values), dtype=bool)
            positions = np.flatnonzero(suspect)
            empty[positions] = [raw[p].strip() == "" for p in positions]
            bad = suspect & ~empty
            self.problems.add_mask(
                bad,
                rows,
                column=column,
                check="number",
                message=lambda i: f"{shown(raw[i].strip())} is not a probability between 0 and 1",
            )
            values = np.where(empty, np.nan, values)
        return values

    def _images_of(self, cells: pd.Series, rows: np.ndarray) -> list[str]:
        """Each row's image as a safe relative path; new distinct images go to the checker."""
        known = self._images
        fresh: list[str] = []
        for raw in cells.unique().tolist():
            if raw in known or raw == "":
                continue
            try:
                safe = storage.safe_image_path(raw)
            except ValueError as exc:
                known[raw] = None
                self._refused[raw] = str(exc)
                continue
            known[raw] = safe
            if safe not in self._queued:  # spelled differently, e.g. "./a.png" and "a.png"
                self._queued.add(safe)
                fresh.append(safe)
        safe_cells = cells.map(known)
        refused = safe_cells.isna().to_numpy() & (cells.to_numpy() != "")
        if refused.any():
            raw_cells = cells.to_numpy()
            self.problems.add_mask(
                refused,
                rows,
                column="image",
                check="unsafe",
                error=UnsafePath,
                message=lambda i: f"image path {self._refused[raw_cells[i]]}",
            )
        present = safe_cells.dropna()
        firsts = present.drop_duplicates()
        counts = present.value_counts()
        for image, index in zip(firsts.tolist(), firsts.index.tolist(), strict=True):
            entry = self.image_rows.get(image)
            if entry is None:
                # The index numbers the file's records: spreadsheet row = index + 2.
                self.image_rows[image] = [int(index) + 2, int(counts[image])]
            else:
                entry[1] += int(counts[image])
        self.checker.submit(fresh)
        if refused.any() or present.size < len(safe_cells):  # refused or empty cells
            return [v if isinstance(v, str) else "" for v in safe_cells.tolist()]
        return safe_cells.tolist()


class _ImageChecker:
    """Looks at each distinct image once, beside the reader: `submit` hands over images
    as they first appear, `problems()` waits for the answers."""

    def __init__(self, root: ImagesRoot, depth: str, file: str) -> None:
        self.root, self.depth, self.file = root, depth, file
        self._pool = ThreadPoolExecutor(max_workers=1) if depth != "none" else None
        self._futures: list = []
        self.checked = 0

    def submit(self, images: list[str]) -> None:
        if self._pool is None or not images:
            return
        self.checked += len(images)
        self._futures.append(self._pool.submit(self.root.check, images, depth=self.depth))

    def problems(self) -> dict[str, ImageProblem]:
        found: dict[str, ImageProblem] = {}
        try:
            for future in self._futures:
                found.update(future.result())
        except ImageUnavailable as exc:
            raise InvalidInput(str(exc), file=self.file) from None
        return found

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)


def _report_images(
    problems: Problems,
    found: dict[str, ImageProblem],
    image_rows: dict[str, list[int]],
    root: ImagesRoot,
) -> None:
    for image, problem in found.items():
        first, count = image_rows[image]
        if problem.kind == "outside":
            problems.add(
                f"image '{image}' leads outside the images root '{root.url}'"
                + (f" ({problem.reason})" if problem.reason else ""),
                row=first,
                column="image",
                check="image outside",
                error=UnsafePath,
                count=count,
            )
        elif problem.kind == "missing":
            problems.add(
                f"image file not found: '{problem.location}' (is --images-root right?)",
                row=first,
                column="image",
                check="image missing",
                count=count,
            )
        else:
            problems.add(
                f"image file cannot be read: '{problem.location}' ({problem.reason})",
                row=first,
                column="image",
                check="image unreadable",
                count=count,
            )


def _trimmed(cells: pd.Series) -> pd.Series:
    """`cells` without surrounding whitespace (the same Series when none has any)."""
    array = pa.array(cells.to_numpy(dtype=object), type=pa.string())
    trimmed = pc.utf8_trim_whitespace(array)
    if pc.all(pc.equal(array, trimmed)).as_py() is not False:
        return cells
    return pd.Series(trimmed.to_numpy(zero_copy_only=False), index=cells.index, dtype=object)


#: labeltool.limits.CONTROL in RE2's words (Arrow strings are valid UTF-8: no surrogates).
_CONTROL_RE2 = "[\\x00-\\x1f\\x7f-\\x{9f}\\x{2028}\\x{2029}]"


def _has_control(cells: pd.Series) -> np.ndarray:
    array = pa.array(cells.to_numpy(dtype=object), type=pa.string())
    found = pc.match_substring_regex(array, _CONTROL_RE2)
    return found.to_numpy(zero_copy_only=False).astype(bool)


def _optional(values: np.ndarray) -> list[float | None]:
    """Floats as a list, NaN as None."""
    if not np.isnan(values).any():
        return values.tolist()
    return np.where(np.isnan(values), None, values).tolist()


def _confidence_from(
    predictions: pd.Series, classes: list[str], probabilities: list[np.ndarray]
) -> np.ndarray:
    """Each row's probability of its own prediction (NaN where there is none)."""
    confidence = np.full(len(predictions), np.nan)
    array = predictions.to_numpy()
    for name, values in zip(classes, probabilities, strict=True):
        mask = array == name
        confidence[mask] = values[mask]
    return confidence


#: A cell that is already a JSON number, so it can go into the stored JSON as written.
_JSON_NUMBER_RE2 = r"^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?$"


def _probabilities_json(
    classes: list[str], values: list[np.ndarray], frame: pd.DataFrame, header: _Header
) -> list[str | None]:
    """Each row's `{class: probability}` as the JSON text the database stores, built with
    Arrow's string kernels; a row with an empty cell leaves that class out (None if all)."""
    missing = np.zeros(len(frame), dtype=bool)
    for column in values:
        missing |= np.isnan(column)
    parts: list[pa.Array] = []
    for position, (name, column, number) in enumerate(
        zip(classes, header.prob_columns, values, strict=True)
    ):
        cells = pa.array(frame[column].to_numpy(dtype=object), type=pa.string())
        cells = pc.utf8_trim_whitespace(cells)
        as_json = pc.match_substring_regex(cells, _JSON_NUMBER_RE2)
        if not pc.all(as_json).as_py():
            exact = np.asarray(as_json.to_numpy(zero_copy_only=False), dtype=bool)
            texts = np.asarray(cells.to_numpy(zero_copy_only=False), dtype=object)
            redo = np.flatnonzero(~exact & ~np.isnan(number))
            texts[redo] = [repr(float(number[i])) for i in redo]
            texts[np.isnan(number)] = "null"
            cells = pa.array(texts, type=pa.string())
        key = json.dumps(name)
        parts.append(pa.scalar(("{" if position == 0 else ", ") + key + ": "))
        parts.append(cells)
    parts.append(pa.scalar("}"))
    joined = pc.binary_join_element_wise(*parts, "").to_numpy(zero_copy_only=False).tolist()
    for i in np.flatnonzero(missing):
        kept = {
            name: float(column[i])
            for name, column in zip(classes, values, strict=True)
            if not np.isnan(column[i])
        }
        joined[i] = json.dumps(kept) if kept else None
    return joined


def _read_ahead(items: Iterator[_Chunk]) -> Iterator[_Chunk]:
    """`items`, produced one ahead in a thread: the next chunk is read and checked while
    this one is written."""
    handoff: queue.Queue = queue.Queue(maxsize=1)
    stop = threading.Event()
    done = object()

    def put(item) -> bool:
        while not stop.is_set():
            try:
                handoff.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def work() -> None:
        try:
            for item in items:
                if not put((True, item)):
                    return
            put((True, done))
        except BaseException as exc:  # handed to the consumer, raised there
            put((False, exc))

    worker = threading.Thread(target=work, name="labeltool-import-reader", daemon=True)
    worker.start()
    try:
        while True:
            ok, item = handoff.get()
            if not ok:
                raise item
            if item is done:
                return
            yield item
    finally:
        stop.set()
        worker.join()


# --- writing ---------------------------------------------------------------------------

#: The columns the importer writes (the rest keep their defaults).
_WRITTEN = (
    "example_id",
    "image",
    "label",
    "prediction",
    "confidence",
    "probabilities",
    "split",
    "is_error",
)


class _Writer:
    """Inserts new examples in bulk: sqlite3's executemany on SQLite, COPY on PostgreSQL,
    SQLAlchemy's insertmanyvalues elsewhere. Updates changed ones by primary key.

    For a large first import on SQLite, the examples' secondary indexes and the data-version
    insert trigger are dropped inside the transaction and made again at the end (one sort
    instead of a B-tree insert per row per index; one version bump instead of one per row).
    A rollback brings them back with everything else.
    """

    def __init__(self, session: Session, project_id: int, run_id: int) -> None:
        self.session = session
        self.project_id, self.run_id = project_id, run_id
        self.dialect = session.get_bind().dialect.name
        self.now = utcnow()
        self._rebuild: list[str] = []
        self._bulk = False

    def start_bulk(self) -> None:
        """Drop the examples' secondary indexes and insert trigger until `finish`."""
        if self.dialect != "sqlite":
            return
        connection = self.session.connection()
        made = connection.execute(
            text(
                "SELECT type, name, sql FROM sqlite_master WHERE tbl_name = 'examples' AND "
                "sql IS NOT NULL AND (type = 'index' OR (type = 'trigger' AND name = :name))"
            ),
            {"name": _INSERT_TRIGGER},
        ).all()
        for kind, name, sql in made:
            connection.execute(text(f'DROP {kind.upper()} "{name}"'))
            self._rebuild.append(sql)
        self._bulk = True

    def insert(self, chunk: _Chunk, positions: Sequence[int] | None = None) -> None:
        columns = [getattr(chunk, c) for c in _WRITTEN]
        if positions is not None:
            columns = [[column[i] for i in positions] for column in columns]
        ids = columns[0]
        if not ids:
            return
        keys = shuffle_keys(ids)
        if self.dialect == "sqlite":
            self._insert_sqlite(columns, keys)
        elif self.dialect == "postgresql":
            self._insert_postgresql(columns, keys)
        else:
            names = [*_WRITTEN, "shuffle_key"]
            self.session.execute(
                insert(Example),
                [
                    {
                        **dict(zip(names, values, strict=True)),
                        "probabilities": json.loads(values[5]) if values[5] else None,
                        "project_id": self.project_id,
                        "run_id": self.run_id,
                    }
                    for values in zip(*columns, keys, strict=True)
                ],
            )

    def _insert_sqlite(self, columns: list[list], keys: list[int]) -> None:
        dialect = self.session.get_bind().dialect
        stamp = Example.__table__.c.updated_at.type.bind_processor(dialect)
        now = stamp(self.now) if stamp else self.now.isoformat(" ")
        raw = self.session.connection().connection.dbapi_connection
        statement = (
            "INSERT INTO examples (project_id, run_id, example_id, image, label, prediction, "
            "confidence, probabilities, split, is_error, shuffle_key, comment, review_state, "
            f"updated_at) VALUES ({int(self.project_id)}, {int(self.run_id)}, "
            f"?, ?, ?, ?, ?, ?, ?, ?, ?, '', '{ReviewState.UNREVIEWED.value}', '{now}')"
        )
        cursor = raw.cursor()
        # The one CHECK on examples (review_state IN ...) costs SQLite about 1.7 us a row, a
        # third of the insert; the only value written here is the constant above.
        cursor.execute("PRAGMA ignore_check_constraints = ON")
        try:
            cursor.executemany(statement, zip(*columns, keys, strict=True))
        finally:
            cursor.execute("PRAGMA ignore_check_constraints = OFF")

    def _insert_postgresql(self, columns: list[list], keys: list[int]) -> None:
        raw = self.session.connection().connection.dbapi_connection
        project_id, run_id, now, state = (
            self.project_id,
            self.run_id,
            self.now,
            ReviewState.UNREVIEWED.value,
        )
        with (
            raw.cursor() as cursor,
            cursor.copy(
                "COPY examples (project_id, run_id, example_id, image, label, prediction, "
                "confidence, probabilities, split, is_error, shuffle_key, comment, review_state, "
                "updated_at) FROM STDIN"
            ) as copy,
        ):
            for values in zip(*columns, keys, strict=True):
                copy.write_row((project_id, run_id, *values, "", state, now))

    def update(self, changes: list[dict]) -> None:
        # Rows with and without a new review state go in separate batches (one statement
        # shape each).
        for with_state in (True, False):
            batch = [r for r in changes if ("review_state" in r) == with_state]
            for start in range(0, len(batch), _UPDATE_BATCH):
                self.session.execute(update(Example), batch[start : start + _UPDATE_BATCH])

    def finish(self) -> None:
        """Make the dropped indexes and trigger again, and bump the data version once."""
        if not self._bulk:
            return
        connection = self.session.connection()
        connection.exec_driver_sql("PRAGMA threads = 2")
        for sql in self._rebuild:
            connection.exec_driver_sql(sql)
        connection.execute(
            text("UPDATE projects SET data_version = random() WHERE id = :id"),
            {"id": self.project_id},
        )
        self._bulk = False


_INSERT_TRIGGER = "lt_version_examples_insert"
_UPDATE_BATCH = 2_000


# --- one import ------------------------------------------------------------------------


class _Import:
    def __init__(
        self,
        session: Session,
        table: Table,
        header: _Header,
        *,
        root: ImagesRoot,
        depth: str,
        project: str,
        replace_classes: bool,
        progress: Progress | None,
        run: str | None,
        note: str | None,
        target_category: str | None,
        allow_different_examples: bool,
        embeddings_file: Path | None = None,
        user: str | None = None,
    ) -> None:
        self.session, self.table, self.header = session, table, header
        self.user = user
        self.root, self.depth = root, depth
        self.project_name, self.replace_classes = project, replace_classes
        self.progress = progress
        self.run_name, self.note, self.target_category = run, note, target_category
        self.allow = allow_different_examples
        self.embeddings_file = embeddings_file
        self.file = table.file

    def run(self) -> ImportSummary:
        session, header = self.session, self.header
        project = session.scalar(select(Project).where(Project.name == self.project_name))
        if project is None:
            project = Project(
                name=self.project_name,
                class_names=list(header.known_classes or []),
                images_root=self.root.url,
            )
            session.add(project)
            session.flush()
        project_classes = list(project.class_names or [])
        project.images_root = self.root.url

        target = find_run(session, project_id=project.id, name=self.run_name)
        previous_id = None
        new_run = target is None
        if new_run:
            latest = find_run(session, project_id=project.id)
            previous_id = latest.id if latest is not None else None
            target = create_run(
                session,
                project_id=project.id,
                name=self.run_name if self.run_name is not None else FIRST_RUN,
                note=self.note or "",
                target_category=self.target_category,
            )
        else:
            if self.note is not None:
                target.note = self.note
            if self.target_category is not None:
                target.target_category = self.target_category
        session.flush()
        reference = previous_id if new_run else target.id
        known_dev = _dev_example_ids(session, reference) if reference is not None else None

        existing = _existing_examples(session, target.id)
        writer = _Writer(session, project.id, target.id)
        if not existing and self._bulk_worth_it(session):
            writer.start_bulk()

        checker = _ImageChecker(self.root, self.depth, self.file)
        reader = _Reader(self.table, header, checker)
        inserted = updated = unchanged = rereview = 0
        #: (example ids, their vectors) of each chunk, stored once the examples are written.
        vectors: list[tuple[list[str], np.ndarray]] = []
        try:
            for chunk in _read_ahead(reader.chunks()):
                if not reader.problems:
                    if chunk.embeddings is not None:
                        vectors.append((chunk.example_id, chunk.embeddings))
                    if existing:
                        counts = self._upsert(writer, chunk, existing)
                        inserted += counts[0]
                        updated += counts[1]
                        unchanged += counts[2]
                        rereview += counts[3]
                    else:
                        writer.insert(chunk)
                        inserted += chunk.rows
                if self.progress:
                    self.progress(chunk.done, max(chunk.expected, chunk.done))
            _report_images(reader.problems, checker.problems(), reader.image_rows, self.root)
        finally:
            checker.close()
        if reader.rows == 0:
            raise InvalidInput("has a header but no rows", file=self.file)
        reader.problems.raise_first()

        classes = self._classes(header, project_classes, reader.seen_classes)
        if not self.replace_classes and project_classes:
            _check_classes_kept(project, classes, file=self.file, from_columns=not header.explicit)
        project.class_names = classes

        missing, extra = (
            _compare_dev_examples(known_dev, reader.dev_ids, file=self.file, allow=self.allow)
            if known_dev is not None
            else ([], [])
        )
        writer.finish()
        removed = 0
        if not new_run and self.allow:
            removed = _remove_examples_not_in(session, target.id, reader.first_row)
        if not new_run and (inserted or updated or removed):
            target.imported_at = utcnow()
        session.flush()
        stored = self._store_embeddings(target.id, vectors, list(reader.first_row))
        carried = (
            carry_over(session, run_id=target.id, previous_id=previous_id, user=self.user)
            if new_run and previous_id is not None
            else 0
        )
        rate = dev_error_rate(session, project_id=project.id, run_id=target.id)
        return ImportSummary(
            project=self.project_name,
            rows=reader.rows,
            inserted=inserted,
            updated=updated,
            unchanged=unchanged,
            dev_examples=rate.dev_examples,
            misclassified=rate.misclassified,
            class_names=classes,
            run=target.name,
            new_run=new_run,
            needs_rereview=rereview,
            carried=carried,
            removed=removed,
            missing=len(missing) if new_run else 0,
            extra=len(extra) if new_run else 0,
            embeddings=stored,
            embeddings_file=self.embeddings_file.name if self.embeddings_file else None,
        )

    def _store_embeddings(
        self, run_id: int, vectors: list[tuple[list[str], np.ndarray]], file_order: list[str]
    ) -> int:
        """Save the model's vectors the file's columns or the side file brought (after the
        examples, so each id has its pk); returns how many examples got one."""
        if self.embeddings_file is not None:
            return embeddings.import_file(
                self.session,
                self.embeddings_file,
                run_id=run_id,
                row_order=file_order,
                user=self.user,
            ).stored
        if not vectors:
            return 0
        ids = [i for chunk_ids, _ in vectors for i in chunk_ids]
        matrix = np.vstack([m for _, m in vectors])
        vectors.clear()
        return embeddings.save_for_ids(self.session, run_id=run_id, example_ids=ids, vectors=matrix)

    def _classes(self, header: _Header, project_classes: list[str], seen: set[str]) -> list[str]:
        if header.known_classes:
            return list(header.known_classes)
        classes = list(project_classes)
        have = set(classes)
        classes += [c for c in sorted(seen - {""}, key=natural_order) if c not in have]
        return classes

    def _bulk_worth_it(self, session: Session) -> bool:
        """A large import into a table that is not much larger: rebuilding the indexes
        once costs less than keeping them up row by row."""
        expected = self.table.estimated_rows()
        if expected < BULK_ROWS:
            return False
        present = session.scalar(select(func.count()).select_from(Example)) or 0
        return expected >= present

    def _upsert(
        self, writer: _Writer, chunk: _Chunk, existing: dict[str, tuple]
    ) -> tuple[int, int, int, int]:
        """Insert the chunk's new examples and update its changed ones; a reviewed error
        whose label or prediction changed is marked "needs re-review"."""
        fresh, changes, unchanged, rereview = [], [], 0, 0
        existing_state: dict[int, str] = {}
        for i, example_id in enumerate(chunk.example_id):
            old = existing.get(example_id)
            if old is None:
                fresh.append(i)
                continue
            pk, review_state, *old_values = old
            existing_state[pk] = review_state
            probabilities = chunk.probabilities[i]
            new_values = (
                chunk.image[i],
                chunk.label[i],
                chunk.prediction[i],
                chunk.confidence[i],
                json.loads(probabilities) if probabilities else None,
                chunk.split[i],
            )
            if not any(_differs(a, b) for a, b in zip(old_values, new_values, strict=True)):
                unchanged += 1
                continue
            change = dict(zip(_COMPARED, new_values, strict=True))
            change.update(id=pk, is_error=chunk.is_error[i])
            mistake_changed = (old_values[1], old_values[2]) != new_values[1:3]
            if mistake_changed and chunk.is_error[i] and review_state in REVIEWED_STATES:
                change["review_state"] = ReviewState.NEEDS_REREVIEW.value
                rereview += 1
            changes.append(change)
        writer.insert(chunk, fresh)
        writer.update(changes)
        audit.example_changes(
            self.session,
            user=self.user,
            kind=audit.Kind.REVIEW_STATE,
            values={
                change["id"]: (existing_state[change["id"]], change["review_state"])
                for change in changes
                if "review_state" in change
            },
        )
        return len(fresh), len(changes), unchanged, rereview


_COMPARED = ("image", "label", "prediction", "confidence", "probabilities", "split")


def _existing_examples(session: Session, run_id: int) -> dict[str, tuple]:
    """The run's examples: example_id -> (pk, review state, *the compared columns)."""
    return {
        row[0]: tuple(row[1:])
        for row in session.execute(
            select(
                Example.example_id,
                Example.id,
                Example.review_state,
                *(getattr(Example, c) for c in _COMPARED),
            ).where(Example.run_id == run_id)
        )
    }


def _dev_example_ids(session: Session, run_id: int) -> list[str]:
    return list(
        session.scalars(
            select(Example.example_id)
            .where(Example.run_id == run_id, Example.split == DEFAULT_SPLIT)
            .order_by(Example.id)
        )
    )


# --- private helpers -------------------------------------------------------------------


def _check_classes_kept(project: Project, classes: list[str], *, file: str, from_columns: bool):
    """Refuse a class list that is not the project's own, extended at most at its end."""
    old = list(project.class_names or ())
    if not old or classes[: len(old)] == old:
        return
    differs = next(
        (i for i, (a, b) in enumerate(zip(old, classes, strict=False)) if a != b),
        min(len(old), len(classes)),
    )
    raise InvalidInput(
        f"the classes ({_listed(classes)}) would replace project '{project.name}''s classes "
        f"({_listed(old)}); import with --replace-classes if that is meant",
        file=file,
        row=1 if from_columns else None,
        column=(
            PROB_PREFIX + classes[differs] if from_columns and differs < len(classes) else None
        ),
    )


def _listed(names: list[str], most: int = 10) -> str:
    shown_names = ", ".join(names[:most])
    return shown_names + (f", … ({len(names)} in all)" if len(names) > most else "")


def _compare_dev_examples(
    known_in_order: list[str], given_in_order: list[str], *, file: str, allow: bool
) -> tuple[list[str], list[str]]:
    """The dev example ids the compared run has and the file lacks, and those the file
    adds; InvalidInput naming how many and the first few, unless `allow`."""
    known = set(known_in_order)
    given = set(given_in_order)
    missing = [i for i in known_in_order if i not in given]  # in the project's order
    extra = [i for i in given_in_order if i not in known]  # in the file's order
    if (missing or extra) and not allow:
        parts = []
        if missing:
            parts.append(
                f"{len(missing):,} of the project's {len(known):,} dev examples "
                f"{'is' if len(missing) == 1 else 'are'} missing from the file (first: "
                f"{_first_ids(missing)})"
            )
        if extra:
            parts.append(
                f"{len(extra):,} dev example{'' if len(extra) == 1 else 's'} "
                f"{'is' if len(extra) == 1 else 'are'} not in the project (first: "
                f"{_first_ids(extra)})"
            )
        raise InvalidInput(
            "; ".join(parts) + ". A run must cover the project's dev examples, so its "
            "numbers compare with the other runs': fix the file, or import it with "
            "--allow-different-examples",
            file=file,
        )
    return missing, extra


def _first_ids(ids: list[str], most: int = 3) -> str:
    """The first few ids for a one-line message: quoted, escaped and cut (limits.shown)."""
    return ", ".join(shown(i) for i in ids[:most]) + (", …" if len(ids) > most else "")


def _remove_examples_not_in(session: Session, run_id: int, given: dict[str, int]) -> int:
    """Delete the run's examples the file no longer has (their tags and reviews go too)."""
    gone = [
        pk
        for pk, example_id in session.execute(
            select(Example.id, Example.example_id).where(Example.run_id == run_id)
        )
        if example_id not in given
    ]
    for start in range(0, len(gone), _UPDATE_BATCH):
        session.execute(delete(Example).where(Example.id.in_(gone[start : start + _UPDATE_BATCH])))
    return len(gone)


def _differs(old, new) -> bool:
    if isinstance(old, float) and isinstance(new, float):
        return not math.isclose(old, new, rel_tol=0, abs_tol=1e-12)
    if isinstance(old, dict) and isinstance(new, dict):
        return old.keys() != new.keys() or any(_differs(old[k], new[k]) for k in old)
    return old != new
