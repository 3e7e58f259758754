"""Export a project's review as tables: the method's wide spreadsheet, long, report, corrections.

The **wide** table is the spreadsheet of the method: one row per reviewed dev error, one 0/1
column per error category, plus the comment, the corrected label and who reviewed it. It is
also the format `import-tags` reads back (see labeltool.tags_import), so a wide export
imported into a fresh database holding the same predictions exports back identical.

Every table holds the reviewed sample only (`labeltool.sample`): a skipped or unreviewed
example, its tags and its corrected label are in none of them, as they are not in the report.

`to_csv` writes any of these so every cell is safe to open in a spreadsheet (OWASP CSV
injection): a text cell that a spreadsheet would run as a formula gets a leading `'`, also when
the formula sign (`=`, `+`, `-`, `@` or their full-width forms) follows leading whitespace, and
`restore_cell` undoes it on import; every cell holding a line break (CR, LF or another),
a tab, a comma or a quote is quoted, so no part of a cell can become a row or cell of its own.

The wide table's `reviewer` cell lists every reviewer of the row separated by `;`. A `;` or
`\\` inside a name is written with a backslash before it (`Smith\\; John`), so
`split_reviewers(join_reviewers(names)) == names` for any names; a backslash before any other
character is kept as it is, so a name such as `CORP\\ann` typed by hand reads back whole.
"""

from __future__ import annotations

import csv
import io
import os
import re
from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import IO

import pandas as pd
from sqlalchemy import select, union
from sqlalchemy.orm import Session

from labeltool.categories import list_categories
from labeltool.errors import InvalidInput
from labeltool.models import Category, Example, Review, Tag
from labeltool.report import DEFAULT_COUNTING, ceiling_table
from labeltool.sample import counted_tags, in_reviewed_sample, reviewed_sample_ids

#: The wide table's columns before the category columns, and after them.
LEADING_COLUMNS = ("example_id", "image", "label", "prediction", "confidence")
TRAILING_COLUMNS = ("comment", "corrected_label", "reviewer")
#: Every column of the wide table that is not a category.
FIXED_COLUMNS = LEADING_COLUMNS + TRAILING_COLUMNS
#: Reviewers in the wide table's `reviewer` cell are joined (and split) on this; a separator
#: or backslash inside a name is escaped with a backslash (see `join_reviewers`).
REVIEWER_SEPARATOR = ";"
REVIEWER_ESCAPE = "\\"
#: What `export_table` can write.
TABLES = ("wide", "long", "report", "corrections")

#: Signs that make a spreadsheet run a cell as a formula, after any leading whitespace
#: (spreadsheets also read the full-width forms U+FF1D, U+FF0B, U+FF0D, U+FF20 as signs).
_FORMULA_SIGNS = frozenset("=+-@\uff1d\uff0b\uff0d\uff20")
#: First characters neutralised whatever follows them (OWASP: tab and carriage return).
_CONTROL_STARTS = ("\t", "\r")
#: A plain number a spreadsheet shows as a number ("-0.5"); "+1" is still neutralised.
_PLAIN_NUMBER = re.compile(r"-?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?", re.ASCII)
#: Characters that make a cell quoted: the delimiter, the quote, the tab, and every line
#: break a reader may split rows on (those of str.splitlines).
_NEEDS_QUOTES = re.compile('[,"\t\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]')


def wide_table(session: Session, *, project_id: int, run_id: int | None = None) -> pd.DataFrame:
    """The method's spreadsheet: one row per reviewed dev error, one 0/1 column per category.

    Columns: example_id, image, label, prediction, confidence, the categories in position
    order (archived ones too), comment, corrected_label, reviewer (the reviewers who reviewed
    or tagged the example, sorted, joined by `join_reviewers`). Rows are sorted by example_id.
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
        ).where(*in_reviewed_sample(project_id=project_id, run_id=run_id))
    ).all()
    reviewed_ids = reviewed_sample_ids(project_id=project_id, run_id=run_id)
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
            "reviewer": join_reviewers(sorted(reviewers[example.id])),
        }
        rows.append(row)
    columns = [*LEADING_COLUMNS, *(c.name for c in categories), *TRAILING_COLUMNS]
    frame = pd.DataFrame(rows, columns=columns)
    dtypes = {c: "object" for c in FIXED_COLUMNS} | {c.name: "int64" for c in categories}
    return frame.astype(dtypes | {"confidence": "float64"})


def long_table(session: Session, *, project_id: int, run_id: int | None = None) -> pd.DataFrame:
    """One row per tag on the reviewed sample: example_id, category, reviewer, tagged_at
    (ISO 8601, UTC), suggested ("true" when the reviewer accepted a suggestion to make it).

    Sorted by example_id, then category position, then reviewer.
    """
    rows = session.execute(
        select(
            Example.example_id,
            Category.position,
            Category.name,
            Tag.reviewer,
            Tag.tagged_at,
            Tag.suggested,
        )
        .join(Example, Example.id == Tag.example_pk)
        .join(Category, Category.id == Tag.category_id)
        .where(*counted_tags(project_id=project_id, run_id=run_id))
    ).all()
    rows = sorted(rows, key=lambda r: (r.example_id, r.position, r.name, r.reviewer))
    return pd.DataFrame(
        [
            (
                r.example_id,
                r.name,
                r.reviewer,
                _iso(r.tagged_at),
                "true" if r.suggested else "false",
            )
            for r in rows
        ],
        columns=["example_id", "category", "reviewer", "tagged_at", "suggested"],
        dtype="object",
    )


def corrections_table(
    session: Session, *, project_id: int, run_id: int | None = None
) -> pd.DataFrame:
    """The reviewed sample's examples given a corrected label: example_id, label,
    corrected_label."""
    rows = session.execute(
        select(Example.example_id, Example.label, Example.corrected_label).where(
            *in_reviewed_sample(project_id=project_id, run_id=run_id),
            Example.corrected_label.is_not(None),
            Example.corrected_label != "",
        )
    ).all()
    return pd.DataFrame(
        sorted(tuple(r) for r in rows),
        columns=["example_id", "label", "corrected_label"],
        dtype="object",
    )


def report_table(
    session: Session,
    *,
    project_id: int,
    run_id: int | None = None,
    counting: str = DEFAULT_COUNTING,
) -> pd.DataFrame:
    """The ceiling table of the whole project (every reviewer), as `report.ceiling_table`,
    counted as `counting` says (labeltool.report.COUNTING)."""
    return ceiling_table(session, project_id=project_id, run_id=run_id, counting=counting)


def export_table(
    session: Session,
    *,
    project_id: int,
    table: str,
    run_id: int | None = None,
    counting: str = DEFAULT_COUNTING,
) -> pd.DataFrame:
    """The table called `table` (one of TABLES); the report table counted as `counting`
    says."""
    builders = {
        "wide": wide_table,
        "long": long_table,
        "report": report_table,
        "corrections": corrections_table,
    }
    if table not in builders:
        raise InvalidInput(f"unknown table '{table}' (use one of: {', '.join(TABLES)})")
    if table == "report":
        return report_table(session, project_id=project_id, run_id=run_id, counting=counting)
    return builders[table](session, project_id=project_id, run_id=run_id)


def to_csv(
    frame: pd.DataFrame, path_or_buffer: str | os.PathLike[str] | IO[str] | None = None
) -> str | None:
    """Write `frame` as UTF-8 CSV without the index, every cell safe to open in a spreadsheet.

    Text cells (and headers) that start like a formula get a leading `'`; numbers, and text
    that is a plain number such as "-0.5", are left alone. Cells holding a line break, a tab,
    a comma or a quote are quoted. With no destination, return the text.
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
    text = _quoted_csv(safe)
    if path_or_buffer is None:
        return text
    if isinstance(path_or_buffer, str | os.PathLike):
        with open(path_or_buffer, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
    else:
        path_or_buffer.write(text)
    return None


def neutralise_cell(text: str) -> str:
    """Prefix `'` to text a spreadsheet would run as a formula (see `restore_cell`)."""
    return "'" + text if _looks_like_formula(text) else text


def restore_cell(text: str) -> str:
    """Undo `neutralise_cell`: restore_cell(neutralise_cell(t)) == t for every text t."""
    return text[1:] if text.startswith("'") and _looks_like_formula(text[1:]) else text


def join_reviewers(names: Iterable[str]) -> str:
    """The `reviewer` cell for `names`: joined on `;`, a `;` or `\\` inside a name escaped."""
    return REVIEWER_SEPARATOR.join(
        name.replace(REVIEWER_ESCAPE, REVIEWER_ESCAPE * 2).replace(
            REVIEWER_SEPARATOR, REVIEWER_ESCAPE + REVIEWER_SEPARATOR
        )
        for name in names
    )


def split_reviewers(cell: str) -> list[str]:
    """The names in a `reviewer` cell, as `join_reviewers` wrote them (empty names included).

    `\\;` and `\\\\` stand for `;` and `\\`; a backslash before any other character is kept.
    """
    names, name, position = [], [], 0
    while position < len(cell):
        char = cell[position]
        following = cell[position + 1 : position + 2]
        if char == REVIEWER_ESCAPE and following in (REVIEWER_ESCAPE, REVIEWER_SEPARATOR):
            name.append(following)
            position += 2
            continue
        if char == REVIEWER_SEPARATOR:
            names.append("".join(name))
            name = []
        else:
            name.append(char)
        position += 1
    names.append("".join(name))
    return names


# --- private helpers -------------------------------------------------------------------


def _looks_like_formula(text: str) -> bool:
    """Starts (after any `'`s already there) like a formula and is not a plain number.

    A formula sign counts after leading whitespace too (spaces, CR, LF, tab, no-break space),
    and a tab or CR first counts whatever follows. Counting the existing `'`s makes
    neutralising reversible: "'=x" becomes "''=x".
    """
    rest = text.lstrip("'")
    if rest.startswith(_CONTROL_STARTS):
        return True
    body = rest.lstrip()
    return bool(body) and body[0] in _FORMULA_SIGNS and not _PLAIN_NUMBER.fullmatch(body)


def _quoted_csv(frame: pd.DataFrame) -> str:
    """`frame` as CSV text, a cell quoted exactly when it holds a character in _NEEDS_QUOTES.

    Pandas formats the cells (numbers as its `to_csv` does), every one quoted so they read
    back exactly; the csv module's QUOTE_MINIMAL would leave a lone CR or a tab unquoted.
    """
    formatted = io.StringIO()
    frame.to_csv(formatted, index=False, quoting=csv.QUOTE_ALL, lineterminator="\n")
    lines = []
    for record in csv.reader(io.StringIO(formatted.getvalue(), newline="")):
        if record == [""]:
            lines.append('""')  # a lone empty cell, not a blank line
        else:
            lines.append(",".join(_quoted(cell) for cell in record))
    return "".join(f"{line}\n" for line in lines)


def _quoted(cell: str) -> str:
    if _NEEDS_QUOTES.search(cell):
        return '"' + cell.replace('"', '""') + '"'
    return cell


def _iso(moment: datetime | None) -> str:
    """ISO 8601 in UTC; SQLite hands back naive datetimes, which are stored as UTC."""
    if moment is None:
        return ""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="seconds")
