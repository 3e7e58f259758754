"""The one set of limits every input is held to before it reaches the database.

The same on SQLite and PostgreSQL: SQLite stores whatever it is given, PostgreSQL refuses
text longer than its column or holding a NUL byte, so without these checks one backend would
keep a value the other rejects with a traceback. Lengths come from the model's columns, so
a column and its limit cannot drift apart. Every refusal is an `InvalidInput` naming the
file, row and column when there is one; messages quote values through `shown`, so they stay
one short line whatever the value holds.
"""

from __future__ import annotations

import re

from labeltool.errors import InvalidInput
from labeltool.models import Category, Example, Project, Tag

#: Longest example_id, label or prediction (class name): the columns are String(255).
MAX_EXAMPLE_ID: int = Example.__table__.c.example_id.type.length
MAX_LABEL: int = Example.__table__.c.label.type.length
#: Longest category name and reviewer name: String(100).
MAX_CATEGORY_NAME: int = Category.__table__.c.name.type.length
MAX_REVIEWER: int = Tag.__table__.c.reviewer.type.length
#: Longest project name: String(200).
MAX_PROJECT_NAME: int = Project.__table__.c.name.type.length
#: Longest header cell: a prob_<class> column name with the longest class name fits.
MAX_HEADER_CELL = 1_000
#: Longest cell of any kind (a comment, an image path), in characters. Below the 128 KB
#: field limit of Python's csv module, so the limit is ours, with a row and column.
MAX_CELL = 100_000

#: Characters no id, label or name may hold: C0 and C1 controls (NUL, tab, CR and LF too),
#: DEL, lone surrogates (a file name or argument that was not UTF-8) and the Unicode line and
#: paragraph separators.
CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff\u2028\u2029]")
_CONTROL_NAMES = {0: "NUL", 9: "tab", 10: "line feed", 13: "carriage return"}


def check_name(
    value: str,
    *,
    what: str,
    limit: int,
    file: str | None = None,
    row: int | None = None,
    column: str | None = None,
) -> str:
    """`value` with inner runs of spaces made one and the ends stripped, or InvalidInput if it
    is empty, longer than `limit` or holds a control character.

    `what` names the thing in the message ("a category name", "a reviewer name").
    """
    text = str(value)
    # Collapsing spaces would drop tabs and line breaks: check for control characters first.
    cleaned = text if control_character(text) else " ".join(text.split())
    return check_text(cleaned, what=what, limit=limit, file=file, row=row, column=column)


def check_text(
    value: str,
    *,
    what: str,
    limit: int,
    file: str | None = None,
    row: int | None = None,
    column: str | None = None,
) -> str:
    """`value` stripped (inner spaces kept, as ids and class names are matched exactly), or
    InvalidInput as `check_name`."""
    text = str(value)
    if bad := control_character(text):
        raise InvalidInput(
            f"{what} cannot hold the control character {bad} ({shown(text)})",
            file=file,
            row=row,
            column=column,
        )
    stripped = text.strip()
    if not stripped:
        raise InvalidInput(f"{what} cannot be empty", file=file, row=row, column=column)
    if len(stripped) > limit:
        raise InvalidInput(
            f"{what} has at most {limit} characters, not {len(stripped):,} ({shown(stripped)})",
            file=file,
            row=row,
            column=column,
        )
    return stripped


def control_character(text: str) -> str | None:
    """The first control character in `text`, written as U+XXXX, or None if there is none."""
    found = CONTROL.search(text)
    if not found:
        return None
    code = ord(found.group())
    return f"U+{code:04X}" + (f" ({_CONTROL_NAMES[code]})" if code in _CONTROL_NAMES else "")


def shown(value: object, width: int = 40) -> str:
    """`value` as it may appear in a one-line message: quoted, control characters escaped,
    cut to about `width` characters."""
    text = str(value)
    cut = text if len(text) <= width else text[:width] + "…"
    escaped = CONTROL.sub(
        lambda m: (
            f"\\x{ord(m.group()):02x}" if ord(m.group()) < 256 else f"\\u{ord(m.group()):04x}"
        ),
        cut,
    )
    return f"'{escaped}'"
