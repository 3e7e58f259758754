"""Import a predictions file (CSV or Parquet) into a project, all or nothing.

Columns: `example_id, image, label, prediction`, optional `confidence`, `prob_<class>` and
`split`. Every row is checked before anything is written; the first problem is raised as
`InvalidInput` naming the file, the spreadsheet row (header = row 1) and the column, with a
count of the other rows that have the same problem. Re-importing the same file changes
nothing; a changed prediction updates its example and keeps its tags.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import math
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from sqlalchemy import delete, insert, select, update
from sqlalchemy.orm import Session

from labeltool.config import DEFAULT_SPLIT, SPLITS
from labeltool.errors import InvalidInput, UnsafePath
from labeltool.limits import (
    MAX_CELL,
    MAX_EXAMPLE_ID,
    MAX_HEADER_CELL,
    MAX_LABEL,
    MAX_PROJECT_NAME,
    check_text,
    control_character,
    shown,
)
from labeltool.models import REVIEWED_STATES, Example, Project, ReviewState, utcnow
from labeltool.projects import dev_error_rate
from labeltool.runs import FIRST_RUN, carry_over, create_run, find_run
from labeltool.storage import safe_image_path

REQUIRED_COLUMNS = ("example_id", "image", "label", "prediction")
OPTIONAL_COLUMNS = ("confidence", "split")
PROB_PREFIX = "prob_"

#: progress(done, total): called while writing, so the CLI and pages can draw a bar.
Progress = Callable[[int, int], None]

_CHUNK = 2_000


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
        return text


def import_predictions(
    session: Session,
    path: str | os.PathLike[str],
    *,
    project: str,
    images_root: str | os.PathLike[str] | None = None,
    class_names: Sequence[str] | None = None,
    check_images: bool = True,
    replace_classes: bool = False,
    progress: Progress | None = None,
    run: str | None = None,
    note: str | None = None,
    target_category: str | None = None,
    allow_different_examples: bool = False,
) -> ImportSummary:
    """Read `path`, validate every row, then create or update `project` and its examples.

    Nothing is written unless every row is valid; the caller's transaction makes the write
    itself all or nothing. An existing project keeps its class list (new classes may be added
    after it); a file or `class_names` that would change it is refused unless
    `replace_classes` says the change is meant.

    The file goes into the project's run called `run` (created when new: a new model
    version), or its latest run without one (a first import creates run "1"). It must hold
    the same dev examples as the run it updates, or, for a new run, as the run before it;
    otherwise it is refused naming how many differ and the first few ids, unless
    `allow_different_examples`. A reviewed error whose label or prediction changed is marked
    "needs re-review"; a new run starts with the previous run's image tags and reviews of
    the examples misclassified in both (labeltool.runs.carry_over).
    """
    path = Path(path)
    check_text(project, what="a project name", limit=MAX_PROJECT_NAME)
    explicit = [
        check_text(c, what="a class name", limit=MAX_LABEL, file=path.name)
        for c in class_names or ()
    ]
    root = Path(images_root) if images_root is not None else path.resolve().parent
    if not root.is_dir():
        raise InvalidInput(f"images root '{root}' is not a folder", file=str(path))
    root = root.resolve()

    table = read_table(path)
    existing_project = session.scalar(select(Project).where(Project.name == project))
    rows, classes = _validate(
        table,
        file=path.name,
        root=root,
        explicit_classes=explicit or None,
        project_classes=existing_project.class_names if existing_project else None,
        check_images=check_images,
    )
    if existing_project is not None and not replace_classes:
        _check_classes_kept(existing_project, classes, file=path.name, from_columns=not explicit)

    if existing_project is None:
        existing_project = Project(name=project, class_names=classes, images_root=str(root))
        session.add(existing_project)
        session.flush()
    else:
        existing_project.class_names = classes
        existing_project.images_root = str(root)
    target = find_run(session, project_id=existing_project.id, name=run)
    previous_id = None
    new_run = target is None
    if new_run:
        latest = find_run(session, project_id=existing_project.id)
        previous_id = latest.id if latest is not None else None
        target = create_run(
            session,
            project_id=existing_project.id,
            name=run if run is not None else FIRST_RUN,
            note=note or "",
            target_category=target_category,
        )
    else:
        if note is not None:
            target.note = note
        if target_category is not None:
            target.target_category = target_category
    reference = previous_id if new_run else target.id
    missing, extra = (
        _compare_dev_examples(
            session, reference, rows, file=path.name, allow=allow_different_examples
        )
        if reference is not None
        else ([], [])
    )
    inserted, updated, unchanged, rereview = _upsert(
        session, existing_project.id, target.id, rows, progress
    )
    removed = 0
    if not new_run and allow_different_examples:
        removed = _remove_examples_not_in(session, target.id, rows)
    if not new_run and (inserted or updated or removed):
        target.imported_at = utcnow()
    carried = (
        carry_over(session, run_id=target.id, previous_id=previous_id)
        if new_run and previous_id is not None
        else 0
    )

    rate = dev_error_rate(session, project_id=existing_project.id, run_id=target.id)
    return ImportSummary(
        project=project,
        rows=len(rows),
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
    )


def read_table(path: Path) -> pd.DataFrame:
    """Read a CSV or Parquet file as text cells ("" for empty), or raise InvalidInput."""
    if not path.is_file():
        raise InvalidInput("file not found", file=str(path))
    suffix = path.suffix.lower()
    try:
        if suffix in (".parquet", ".pq"):
            frame = pd.read_parquet(path)
            frame = frame.reset_index(drop=True)
            frame = frame.astype(object).where(frame.notna(), "")
            frame = frame.map(_cell_text)
            _check_cells(frame, file=path.name)
        else:
            frame = pd.read_csv(
                path,
                dtype=str,
                keep_default_na=False,
                encoding="utf-8-sig",
                skipinitialspace=False,
                # Keep blank lines while reading so row numbers match the file's lines;
                # they are dropped below.
                skip_blank_lines=False,
            )
            if not isinstance(frame.index, pd.RangeIndex):
                # Pandas silently takes the first column(s) as an index when the first data
                # row has more fields than the header, shifting every column.
                raise InvalidInput(
                    f"malformed CSV: more fields than the {len(frame.columns)} in the header",
                    file=path.name,
                    row=2,
                )
            frame = frame.fillna("")
            _check_cells(frame, file=path.name)
            frame.columns = _csv_header(path, frame.columns)
            frame = frame[~(frame == "").all(axis=1)]
    except UnicodeDecodeError as exc:
        row, column = _where_not_utf8(path)
        raise InvalidInput(
            f"not UTF-8 text ({exc.reason}); save the file as UTF-8",
            file=path.name,
            row=row,
            column=column,
        ) from exc
    except pd.errors.EmptyDataError as exc:
        raise InvalidInput("the file is empty", file=path.name) from exc
    except pd.errors.ParserError as exc:
        reason, row = _parser_error(str(exc))
        raise InvalidInput(f"malformed CSV: {reason}", file=path.name, row=row) from exc
    except (OSError, ValueError) as exc:
        raise InvalidInput(f"cannot read the file: {exc}", file=path.name) from exc
    frame.columns = [str(c).strip() for c in frame.columns]
    return _drop_unnamed_columns(frame, file=path.name)


def shuffle_key(example_id: str) -> int:
    """A fixed pseudo-random 63-bit number for `example_id`: sorting by it is a fair sample."""
    digest = hashlib.blake2b(example_id.encode(), digest_size=8, person=b"labeltool").digest()
    return int.from_bytes(digest, "big") >> 1


def natural_order(name: str):
    """Sort "2" before "10", and names alphabetically."""
    return (0, int(name), "") if name.isascii() and name.isdigit() else (1, 0, name)


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


def _validate(
    table: pd.DataFrame,
    *,
    file: str,
    root: Path,
    explicit_classes: list[str] | None,
    project_classes: list[str] | None,
    check_images: bool,
) -> tuple[list[dict], list[str]]:
    """Check every row; return the rows as dicts ready to write and the class names."""
    columns = list(table.columns)
    duplicates = {c for c in columns if columns.count(c) > 1}
    if duplicates:
        raise InvalidInput(
            "appears more than once in the header", file=file, row=1, column=sorted(duplicates)[0]
        )
    for column in REQUIRED_COLUMNS:
        if column not in columns:
            raise InvalidInput(
                f"required column is missing (the header has: {', '.join(columns) or 'nothing'})",
                file=file,
                row=1,
                column=column,
            )
    if table.empty:
        raise InvalidInput("has a header but no rows", file=file)

    prob_columns = [c for c in columns if c.startswith(PROB_PREFIX) and len(c) > len(PROB_PREFIX)]
    prob_classes = [c[len(PROB_PREFIX) :] for c in prob_columns]
    # The frame's index counts the file's records (blank ones included): header = row 1.
    row_numbers = pd.Series(table.index + 2, index=table.index)

    def fail(mask: pd.Series, column: str, message: Callable[[int], str]) -> None:
        bad = mask[mask].index
        if len(bad):
            first = bad[0]
            raise InvalidInput(
                message(first),
                file=file,
                row=int(row_numbers[first]),
                column=column,
                more=len(bad) - 1,
            )

    for column in prob_columns:
        check_text(
            column[len(PROB_PREFIX) :],
            what="a class name",
            limit=MAX_LABEL,
            file=file,
            row=1,
            column=shown(column)[1:-1],
        )
    text = {c: table[c].astype(str).str.strip() for c in REQUIRED_COLUMNS}
    for column in REQUIRED_COLUMNS:
        fail(text[column] == "", column, lambda _i: "is empty")
    for column, limit in (
        ("example_id", MAX_EXAMPLE_ID),
        ("label", MAX_LABEL),
        ("prediction", MAX_LABEL),
    ):
        fail(
            text[column].map(lambda v: control_character(v) is not None).astype(bool),
            column,
            lambda i, c=column: (
                f"cannot hold the control character {control_character(text[c][i])} "
                f"({shown(text[c][i])})"
            ),
        )
        fail(
            text[column].str.len() > limit,
            column,
            lambda i, c=column, n=limit: (
                f"has at most {n} characters, not {len(text[c][i]):,} ({shown(text[c][i])})"
            ),
        )

    repeated = text["example_id"].duplicated(keep="first")
    fail(
        repeated,
        "example_id",
        lambda i: f"example_id {shown(text['example_id'][i])} appears twice in the file",
    )

    # Class names: prob_ columns, then --classes, then what the file (and project) hold.
    known = explicit_classes or prob_classes or None
    if known:
        known_set = set(known)
        for column in ("label", "prediction"):
            fail(
                ~text[column].isin(known_set),
                column,
                lambda i, c=column: (
                    f"unknown label {shown(text[c][i])} (known classes: {_listed(known)})"
                ),
            )
        classes = list(known)
    else:
        seen = sorted(set(text["label"]) | set(text["prediction"]), key=natural_order)
        classes = list(project_classes or [])
        classes += [c for c in seen if c not in set(classes)]

    confidence = _numbers(table, "confidence", file, row_numbers)
    probabilities = {
        c: _numbers(table, col, file, row_numbers)
        for c, col in zip(prob_classes, prob_columns, strict=True)
    }

    if "split" in columns:
        split = table["split"].astype(str).str.strip().replace("", DEFAULT_SPLIT)
        fail(
            ~split.isin(SPLITS),
            "split",
            lambda i: f"unknown split {shown(split[i])} (use one of: {', '.join(SPLITS)})",
        )
    else:
        split = pd.Series(DEFAULT_SPLIT, index=table.index)

    images: list[str] = []
    for index, raw in text["image"].items():
        try:
            images.append(safe_image_path(raw))
        except ValueError as exc:
            raise UnsafePath(
                f"image path {exc}", file=file, row=int(row_numbers[index]), column="image"
            ) from None
    if check_images:
        _check_image_files(images, root=root, file=file, row_numbers=list(row_numbers))

    rows = []
    labels, predictions, ids = (
        text["label"].tolist(),
        text["prediction"].tolist(),
        text["example_id"].tolist(),
    )
    for i, index in enumerate(table.index):
        probs = {c: probabilities[c][index] for c in prob_classes} if prob_classes else None
        if probs is not None and any(v is None for v in probs.values()):
            probs = {c: v for c, v in probs.items() if v is not None} or None
        conf = confidence[index] if confidence is not None else None
        if conf is None and probs and predictions[i] in probs:
            conf = probs[predictions[i]]
        rows.append(
            {
                "example_id": ids[i],
                "image": images[i],
                "label": labels[i],
                "prediction": predictions[i],
                "confidence": conf,
                "probabilities": probs,
                "split": split[index],
                "is_error": labels[i] != predictions[i],
            }
        )
    return rows, classes


def _numbers(table: pd.DataFrame, column: str, file: str, row_numbers: pd.Series):
    """Parse a probability-like column: floats in [0, 1] or None for empty cells."""
    if column not in table.columns:
        return None
    raw = table[column].astype(str).str.strip()
    values = pd.to_numeric(raw.replace("", "nan"), errors="coerce")
    bad = (raw != "") & (values.isna() | (values < 0) | (values > 1))
    if bad.any():
        first = bad[bad].index[0]
        raise InvalidInput(
            f"{shown(raw[first])} is not a probability between 0 and 1",
            file=file,
            row=int(row_numbers[first]),
            column=column,
            more=int(bad.sum()) - 1,
        )
    return {i: (None if math.isnan(v) else float(v)) for i, v in values.items()}


def _check_image_files(images: list[str], *, root: Path, file: str, row_numbers: list[int]):
    from labeltool.images import check_image, unusable_name  # labeltool.images imports us

    missing, escaping, unreadable = [], [], {}
    for position, image in enumerate(images):
        candidate = root / image
        if reason := unusable_name(candidate):
            unreadable[position] = reason
        elif not candidate.is_file():
            missing.append(position)
        elif not candidate.resolve().is_relative_to(root):
            escaping.append(position)  # a symlink that leads out of the images root
        elif reason := check_image(candidate):
            unreadable[position] = reason
    if escaping:
        first = escaping[0]
        raise UnsafePath(
            f"image '{images[first]}' is a link that leads outside the images root '{root}'",
            file=file,
            row=row_numbers[first],
            column="image",
            more=len(escaping) - 1,
        )
    if missing:
        first = missing[0]
        raise InvalidInput(
            f"image file not found: '{root / images[first]}' (is --images-root right?)",
            file=file,
            row=row_numbers[first],
            column="image",
            more=len(missing) - 1,
        )
    if unreadable:
        first = next(iter(unreadable))
        raise InvalidInput(
            f"image file cannot be read: '{root / images[first]}' ({unreadable[first]})",
            file=file,
            row=row_numbers[first],
            column="image",
            more=len(unreadable) - 1,
        )


def _upsert(
    session: Session, project_id: int, run_id: int, rows: list[dict], progress: Progress | None
) -> tuple[int, int, int, int]:
    """Insert the run's new examples and update its changed ones; a reviewed error whose
    label or prediction changed is marked "needs re-review". Returns (inserted, updated,
    unchanged, marked needs re-review)."""
    compared = ("image", "label", "prediction", "confidence", "probabilities", "split")
    existing = {
        row.example_id: row
        for row in session.execute(
            select(
                Example.id,
                Example.example_id,
                Example.review_state,
                *(getattr(Example, c) for c in compared),
            ).where(Example.run_id == run_id)
        )
    }
    to_insert, to_update, unchanged, rereview = [], [], 0, 0
    for row in rows:
        old = existing.get(row["example_id"])
        if old is None:
            to_insert.append(
                {
                    **row,
                    "project_id": project_id,
                    "run_id": run_id,
                    "shuffle_key": shuffle_key(row["example_id"]),
                }
            )
        elif any(_differs(getattr(old, c), row[c]) for c in compared):
            change = {**row, "id": old.id}
            mistake_changed = (old.label, old.prediction) != (row["label"], row["prediction"])
            if mistake_changed and row["is_error"] and old.review_state in REVIEWED_STATES:
                change["review_state"] = ReviewState.NEEDS_REREVIEW.value
                rereview += 1
            to_update.append(change)
        else:
            unchanged += 1
    total, done = len(to_insert) + len(to_update), 0
    if progress:
        progress(0, total)
    for start in range(0, len(to_insert), _CHUNK):
        chunk = to_insert[start : start + _CHUNK]
        session.execute(insert(Example), chunk)
        done += len(chunk)
        if progress:
            progress(done, total)
    # Rows with and without a new review state go in separate batches (one statement shape).
    for keys in ({"review_state"}, set()):
        batch = [r for r in to_update if ("review_state" in r) == bool(keys)]
        for start in range(0, len(batch), _CHUNK):
            chunk = batch[start : start + _CHUNK]
            session.execute(update(Example), chunk)
            done += len(chunk)
            if progress:
                progress(done, total)
    return len(to_insert), len(to_update), unchanged, rereview


def _compare_dev_examples(
    session: Session, run_id: int, rows: list[dict], *, file: str, allow: bool
) -> tuple[list[str], list[str]]:
    """The dev example ids run `run_id` has and the file lacks, and those the file adds;
    InvalidInput naming how many and the first few, unless `allow`."""
    known_in_order = session.scalars(
        select(Example.example_id)
        .where(Example.run_id == run_id, Example.split == DEFAULT_SPLIT)
        .order_by(Example.id)
    ).all()
    known = set(known_in_order)
    given_in_order = [row["example_id"] for row in rows if row["split"] == DEFAULT_SPLIT]
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


def _remove_examples_not_in(session: Session, run_id: int, rows: list[dict]) -> int:
    """Delete the run's examples the file no longer has (their tags and reviews go too)."""
    given = {row["example_id"] for row in rows}
    gone = [
        pk
        for pk, example_id in session.execute(
            select(Example.id, Example.example_id).where(Example.run_id == run_id)
        )
        if example_id not in given
    ]
    for start in range(0, len(gone), _CHUNK):
        session.execute(delete(Example).where(Example.id.in_(gone[start : start + _CHUNK])))
    return len(gone)


def _differs(old, new) -> bool:
    if isinstance(old, float) and isinstance(new, float):
        return not math.isclose(old, new, rel_tol=0, abs_tol=1e-12)
    if isinstance(old, dict) and isinstance(new, dict):
        return old.keys() != new.keys() or any(_differs(old[k], new[k]) for k in old)
    return old != new


def _check_cells(frame: pd.DataFrame, *, file: str) -> None:
    """Refuse a header cell or cell over the size limits, a control character in the header,
    or a NUL anywhere (PostgreSQL cannot store it): before anything else reads the cells."""
    for position, column in enumerate(frame.columns, start=1):
        name = str(column)
        if len(name) > MAX_HEADER_CELL:
            raise InvalidInput(
                f"the header cell of column {_column_letters(position)} has {len(name):,} "
                f"characters; a column name has at most {MAX_HEADER_CELL:,}",
                file=file,
                row=1,
                column=shown(name)[1:-1],
            )
        if bad := control_character(name):
            raise InvalidInput(
                f"a column name cannot hold the control character {bad}",
                file=file,
                row=1,
                column=shown(name)[1:-1],
            )
    for position in range(frame.shape[1]):
        cells = frame.iloc[:, position].astype(str)
        name = shown(frame.columns[position])[1:-1]
        for mask, reason in (
            (cells.str.len() > MAX_CELL, f"a cell has at most {MAX_CELL:,} characters"),
            (cells.str.contains("\x00", regex=False), "a cell cannot hold a NUL character"),
        ):
            if mask.any():
                bad = mask[mask].index
                raise InvalidInput(
                    reason, file=file, row=int(bad[0]) + 2, column=name, more=len(bad) - 1
                )


def _csv_header(path: Path, parsed: pd.Index) -> list[str]:
    """The header as written ("" for an empty cell), after checking that no row has fewer
    fields than the header: pandas fills them in silently, so a file cut short in its last
    row would import with the missing cells empty.

    Pandas renames a repeated column ("label" -> "label.1") and an empty one ("Unnamed: 3").
    """
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            reader = csv.reader(handle)
            header = next(reader, [])
            for offset, record in enumerate(reader):
                if 0 < len(record) < len(header):
                    missing = header[len(record)].strip() or _column_letters(len(record) + 1)
                    raise InvalidInput(
                        f"is empty: the row stops after {len(record)} of the header's "
                        f"{len(header)} fields (was the file cut short?)",
                        file=path.name,
                        row=offset + 2,
                        column=shown(missing)[1:-1],
                    )
    except csv.Error as exc:
        raise InvalidInput(f"malformed CSV: {exc}", file=path.name) from None
    if len(header) != len(parsed):
        return [str(c) for c in parsed]
    return [name.strip() for name in header]


def _drop_unnamed_columns(frame: pd.DataFrame, *, file: str) -> pd.DataFrame:
    """Drop columns with an empty header and no values (a spreadsheet's trailing comma);
    refuse one with values, whose meaning nobody wrote down."""
    keep = []
    for position, column in enumerate(frame.columns):
        if column:
            keep.append(position)
            continue
        cells = frame.iloc[:, position].astype(str).str.strip() != ""
        if cells.any():
            raise InvalidInput(
                f"column {position + 1} has values but no name in the header",
                file=file,
                row=1,
            )
    frame = frame if len(keep) == frame.shape[1] else frame.iloc[:, keep]
    columns = list(frame.columns)
    if repeated := sorted({c for c in columns if columns.count(c) > 1}):
        raise InvalidInput(
            "appears more than once in the header",
            file=file,
            row=1,
            column=shown(repeated[0])[1:-1],
        )
    return frame


def _column_letters(position: int) -> str:
    """A spreadsheet's name for the 1-based column `position`: 1 -> A, 27 -> AA."""
    letters = ""
    while position:
        position, remainder = divmod(position - 1, 26)
        letters = chr(ord("A") + remainder) + letters
    return letters


def _where_not_utf8(path: Path) -> tuple[int | None, str | None]:
    """The spreadsheet row and column of the first byte that is not UTF-8."""
    data = path.read_bytes().removeprefix(codecs.BOM_UTF8)
    try:
        data.decode("utf-8")
        return None, None
    except UnicodeDecodeError as exc:
        before = data[: exc.start].decode("utf-8")
    try:
        # A marker where the bad byte was: the record and field holding it are its place.
        records = list(csv.reader(io.StringIO(before + "\ufffd")))
    except csv.Error:
        return None, None
    row, index = len(records), len(records[-1]) - 1
    header = records[0] if row > 1 else []
    return row, (header[index].strip() if index < len(header) else None)


def _parser_error(message: str) -> tuple[str, int | None]:
    """Pandas' tokenizer message in our words, and the spreadsheet row it is about."""
    if found := re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", message):
        expected, line, saw = (int(n) for n in found.groups())
        return f"expected {expected} fields (as in the header), found {saw}", line
    if found := re.search(r"EOF inside string starting at row (\d+)", message):
        # Pandas counts from 0 here; the header is row 1.
        return "a quoted field is never closed (unbalanced quotes)", int(found.group(1)) + 1
    return message.strip(), None


def _cell_text(value) -> str:
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return repr(value)
    return str(value)
