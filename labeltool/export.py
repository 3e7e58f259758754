"""Export a project's review as tables: the method's wide spreadsheet, long, report, corrections.

The **wide** table is the spreadsheet of the method: one row per reviewed dev error, one 0/1
column per error category, plus the comment, the corrected label and who reviewed it. It is
also the format `import-tags` reads back (see labeltool.tags_import), so a wide export
imported into a fresh database holding the same predictions exports back identical.

Every table holds the reviewed sample only (`labeltool.sample`): a skipped or unreviewed
example, its tags and its corrected label are in none of them, as they are not in the report.

`to_csv` writes any of these so every cell is safe to open in a spreadsheet: a text cell that
a spreadsheet would run as a formula gets a leading `'` (OWASP CSV injection), and
`restore_cell` undoes it on import.
"""

from __future__ import annotations

import io
import os
import re
from collections import defaultdict
from datetime import UTC, datetime
from typing import IO

import pandas as pd
from sqlalchemy import select, union
from sqlalchemy.orm import Session

from labeltool.categories import list_categories
from labeltool.errors import InvalidInput
from labeltool.models import Category, Example, Review, Tag
from labeltool.report import ceiling_table
from labeltool.sample import counted_tags, in_reviewed_sample, reviewed_sample_ids

#: The wide table's columns before the category columns, and after them.
LEADING_COLUMNS = ("example_id", "image", "label", "prediction", "confidence")
TRAILING_COLUMNS = ("comment", "corrected_label", "reviewer")
#: Every column of the wide table that is not a category.
FIXED_COLUMNS = LEADING_COLUMNS + TRAILING_COLUMNS
#: Reviewers in the wide table's `reviewer` cell are joined (and split) on this.
REVIEWER_SEPARATOR = ";"
#: What `export_table` can write.
TABLES = ("wide", "long", "report", "corrections")

#: First characters that make a spreadsheet treat a cell as a formula.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
#: A plain number a spreadsheet shows as a number ("-0.5"); "+1" is still neutralised.
_PLAIN_NUMBER = re.compile(r"-?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")


def wide_table(session: Session, *, project_id: int) -> pd.DataFrame:
    """The method's spreadsheet: one row per reviewed dev error, one 0/1 column per category.

    Columns: example_id, image, label, prediction, confidence, the categories in position
    order (archived ones too), comment, corrected_label, reviewer (the reviewers who reviewed
    or tagged the example, sorted, joined with ";"). Rows are sorted by example_id.
    """
    categories = list_categories(session, project_id=project_id, include_archived=True)
    fixed = {c.casefold() for c in FIXED_COLUMNS}
    for category in categories:
        if category.name.casefold() in fixed:
            raise InvalidInput(
                f"category '{category.name}' has the name of a fixed column of the wide table; "
                "rename it to export"
            )
    examples = session.execute(
        select(
            Example.id,
            Example.example_id,
            Example.image,
            Example.label,
            Example.prediction,
            Example.confidence,
            Example.comment,
            Example.corrected_label,
        ).where(*in_reviewed_sample(project_id=project_id))
    ).all()
    reviewed_ids = reviewed_sample_ids(project_id=project_id)
    tagged: dict[int, set[int]] = defaultdict(set)
    for example_pk, category_id in session.execute(
        select(Tag.example_pk, Tag.category_id).where(Tag.example_pk.in_(reviewed_ids)).distinct()
    ):
        tagged[example_pk].add(category_id)
    reviewers: dict[int, set[str]] = defaultdict(set)
    for example_pk, name in session.execute(
        union(
            select(Review.example_pk, Review.reviewer).where(Review.example_pk.in_(reviewed_ids)),
            select(Tag.example_pk, Tag.reviewer).where(Tag.example_pk.in_(reviewed_ids)),
        )
    ):
        reviewers[example_pk].add(name)

    rows = []
    for example in sorted(examples, key=lambda e: e.example_id):
        row = {
            "example_id": example.example_id,
            "image": example.image,
            "label": example.label,
            "prediction": example.prediction,
            "confidence": example.confidence,
        }
        row |= {c.name: int(c.id in tagged[example.id]) for c in categories}
        row |= {
            "comment": example.comment or "",
            "corrected_label": example.corrected_label,
            "reviewer": REVIEWER_SEPARATOR.join(sorted(reviewers[example.id])),
        }
        rows.append(row)
    columns = [*LEADING_COLUMNS, *(c.name for c in categories), *TRAILING_COLUMNS]
    frame = pd.DataFrame(rows, columns=columns)
    dtypes = {c: "object" for c in FIXED_COLUMNS} | {c.name: "int64" for c in categories}
    return frame.astype(dtypes | {"confidence": "float64"})


def long_table(session: Session, *, project_id: int) -> pd.DataFrame:
    """One row per tag on the reviewed sample: example_id, category, reviewer, tagged_at
    (ISO 8601, UTC).

    Sorted by example_id, then category position, then reviewer.
    """
    rows = session.execute(
        select(Example.example_id, Category.position, Category.name, Tag.reviewer, Tag.tagged_at)
        .join(Example, Example.id == Tag.example_pk)
        .join(Category, Category.id == Tag.category_id)
        .where(*counted_tags(project_id=project_id))
    ).all()
    rows = sorted(rows, key=lambda r: (r.example_id, r.position, r.name, r.reviewer))
    return pd.DataFrame(
        [(r.example_id, r.name, r.reviewer, _iso(r.tagged_at)) for r in rows],
        columns=["example_id", "category", "reviewer", "tagged_at"],
        dtype="object",
    )


def corrections_table(session: Session, *, project_id: int) -> pd.DataFrame:
    """The reviewed sample's examples given a corrected label: example_id, label,
    corrected_label."""
    rows = session.execute(
        select(Example.example_id, Example.label, Example.corrected_label).where(
            *in_reviewed_sample(project_id=project_id),
            Example.corrected_label.is_not(None),
            Example.corrected_label != "",
        )
    ).all()
    return pd.DataFrame(
        sorted(tuple(r) for r in rows),
        columns=["example_id", "label", "corrected_label"],
        dtype="object",
    )


def report_table(session: Session, *, project_id: int) -> pd.DataFrame:
    """The ceiling table of the whole project (every reviewer), as `report.ceiling_table`."""
    return ceiling_table(session, project_id=project_id)


def export_table(session: Session, *, project_id: int, table: str) -> pd.DataFrame:
    """The table called `table` (one of TABLES)."""
    builders = {
        "wide": wide_table,
        "long": long_table,
        "report": report_table,
        "corrections": corrections_table,
    }
    if table not in builders:
        raise InvalidInput(f"unknown table '{table}' (use one of: {', '.join(TABLES)})")
    return builders[table](session, project_id=project_id)


def to_csv(
    frame: pd.DataFrame, path_or_buffer: str | os.PathLike[str] | IO[str] | None = None
) -> str | None:
    """Write `frame` as UTF-8 CSV without the index, every cell safe to open in a spreadsheet.

    Text cells (and headers) that start like a formula get a leading `'`; numbers, and text
    that is a plain number such as "-0.5", are left alone. With no destination, return the text.
    """
    safe = frame.copy()
    safe.columns = [neutralise_cell(str(c)) for c in frame.columns]
    for position in range(safe.shape[1]):
        column = safe.iloc[:, position]
        if column.dtype == object or pd.api.types.is_string_dtype(column.dtype):
            safe.isetitem(
                position,
                column.map(lambda v: neutralise_cell(v) if isinstance(v, str) else v).astype(
                    object
                ),
            )
    if path_or_buffer is None:
        buffer = io.StringIO()
        safe.to_csv(buffer, index=False, lineterminator="\n")
        return buffer.getvalue()
    if isinstance(path_or_buffer, str | os.PathLike):
        safe.to_csv(path_or_buffer, index=False, encoding="utf-8", lineterminator="\n")
    else:
        safe.to_csv(path_or_buffer, index=False, lineterminator="\n")
    return None


def neutralise_cell(text: str) -> str:
    """Prefix `'` to text a spreadsheet would run as a formula (see `restore_cell`)."""
    return "'" + text if _looks_like_formula(text) else text


def restore_cell(text: str) -> str:
    """Undo `neutralise_cell`: restore_cell(neutralise_cell(t)) == t for every text t."""
    return text[1:] if text.startswith("'") and _looks_like_formula(text[1:]) else text


# --- private helpers -------------------------------------------------------------------


def _looks_like_formula(text: str) -> bool:
    """Starts (after any `'`s already there) like a formula and is not a plain number.

    Counting the existing `'`s makes neutralising reversible: "'=x" becomes "''=x".
    """
    rest = text.lstrip("'")
    return bool(rest) and rest[0] in _FORMULA_STARTS and not _PLAIN_NUMBER.fullmatch(rest)


def _iso(moment: datetime | None) -> str:
    """ISO 8601 in UTC; SQLite hands back naive datetimes, which are stored as UTC."""
    if moment is None:
        return ""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="seconds")
