"""Error categories: create, rename, recolour, give a key, archive, and load from a file.

Adding a category mid-review marks the examples already reviewed as "needs re-review":
the method says to go back over them, since they were never checked for the new pattern.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import exists, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from labeltool import audit
from labeltool.errors import DuplicateCategory, InvalidInput, UnknownCategory
from labeltool.limits import MAX_CATEGORY_NAME, check_name, control_character, shown
from labeltool.models import Category, Example, Project, ReviewState, Run, Scope, Tag
from labeltool.roles import Role, require
from labeltool.tables import Problems, read_table

#: Tableau 10: distinct, colour-blind-friendlier defaults, handed out in order.
PALETTE = (
    "#4e79a7",
    "#f28e2b",
    "#e15759",
    "#76b7b2",
    "#59a14f",
    "#edc948",
    "#b07aa1",
    "#ff9da7",
    "#9c755f",
    "#bab0ac",
)
#: Keys handed out to new categories, in order, when none is given.
DEFAULT_KEYS = tuple("1234567890") + tuple("abdefghijklmoqtuvwxyz")
#: Keys the review screen keeps for itself: Streamlit reserves c and r; n = save and
#: next, p = previous, s = skip.
RESERVED_KEYS = frozenset("crnps")

_INCORRECT_LABEL_NAMES = {
    "incorrectly labeled",
    "incorrectly labelled",
    "mislabeled",
    "mislabelled",
    "incorrect label",
    "wrong label",
    "label error",
}
_COLOUR = re.compile(r"^#[0-9a-fA-F]{6}$")


def list_categories(
    session: Session, *, project_id: int, include_archived: bool = False
) -> list[Category]:
    """The project's categories in the order they were created."""
    query = select(Category).where(Category.project_id == project_id)
    if not include_archived:
        query = query.where(Category.archived.is_(False))
    return list(session.scalars(query.order_by(Category.position, Category.id)))


def get_category(session: Session, *, project_id: int, name: str) -> Category:
    """The category called `name` (case-insensitive), or UnknownCategory."""
    category = session.scalar(
        select(Category).where(
            Category.project_id == project_id, func.lower(Category.name) == name.strip().lower()
        )
    )
    if category is None:
        known = ", ".join(c.name for c in list_categories(session, project_id=project_id))
        raise UnknownCategory(f"no category named '{name}' (categories: {known or 'none yet'})")
    return category


def create_category(
    session: Session,
    *,
    project_id: int,
    name: str,
    description: str = "",
    shortcut: str | None = None,
    colour: str | None = None,
    marks_incorrect_label: bool | None = None,
    mark_rereview: bool = True,
    scope: str | None = None,
    user: str | None = None,
) -> Category:
    """Add a category; mark the project's reviewed examples "needs re-review" (see module doc).

    `scope` ("image" or "error", labeltool.models.Scope) says whether its tags carry over to a
    new run; by default a confusion pair's name ("dog-as-cat" over the project's classes) is
    an error category and anything else an image category.

    `user` acts: once the project has members, only a lead may add a category
    (labeltool.roles).
    """
    require(session, project_id=project_id, user=user, needs=Role.LEAD, action="adding a category")
    name = _clean_name(name)
    scope = _check_scope(scope) if scope is not None else _default_scope(session, project_id, name)
    existing = list_categories(session, project_id=project_id, include_archived=True)
    if any(c.name.lower() == name.lower() for c in existing):
        raise DuplicateCategory(f"a category named '{name}' already exists")
    taken = {c.shortcut for c in existing if c.shortcut and not c.archived}
    chosen_key = bool(shortcut)
    if shortcut:
        shortcut = _check_key(shortcut, taken)
    else:
        shortcut = next((k for k in DEFAULT_KEYS if k not in taken), None)
    if colour is not None and not _COLOUR.match(colour):
        raise InvalidInput(f"colour '{colour}' is not of the form #rrggbb")
    category = Category(
        project_id=project_id,
        name=name,
        description=description.strip(),
        shortcut=shortcut,
        colour=colour or PALETTE[len(existing) % len(PALETTE)],
        marks_incorrect_label=(
            name.lower() in _INCORRECT_LABEL_NAMES
            if marks_incorrect_label is None
            else marks_incorrect_label
        ),
        position=max((c.position for c in existing), default=-1) + 1,
        scope=scope,
    )
    # The checks above read before this write: another reviewer's category may have got in
    # between, and then the schema's unique indexes refuse this one. A key handed out by
    # default that was taken meanwhile is swapped for the next free one.
    for _attempt in range(len(DEFAULT_KEYS)):
        try:
            with _refusing_duplicates(session, name=name, shortcut=category.shortcut):
                session.add(category)
            break
        except _KeyTaken:
            if chosen_key:
                raise
            taken = set(
                session.scalars(
                    select(Category.shortcut).where(
                        Category.project_id == project_id, Category.archived.is_(False)
                    )
                )
            )
            category.shortcut = next((k for k in DEFAULT_KEYS if k not in taken), None)
    audit.record(
        session,
        project_id=project_id,
        user=user,
        changes=[
            audit.Change(audit.Kind.CATEGORY, field="created", new=name, category_id=category.id)
        ],
    )
    if mark_rereview:
        mark_reviewed_for_rereview(session, project_id=project_id, user=user)
    return category


def update_category(
    session: Session,
    *,
    category_id: int,
    name: str | None = None,
    description: str | None = None,
    shortcut: str | None = None,
    clear_shortcut: bool = False,
    colour: str | None = None,
    archived: bool | None = None,
    effort: float | None = None,
    clear_effort: bool = False,
    marks_incorrect_label: bool | None = None,
    scope: str | None = None,
    user: str | None = None,
) -> Category:
    """Change any of a category's settings; None leaves a setting as it is.

    A category's scope can change while the project has one run or the category has no tags;
    once both hold, changing it would leave the tags made so far carried (or kept to their
    run) by the old rule and later ones by the new, so it is refused.

    `user` acts: once the project has members, only a lead may change a category, its
    effort included (labeltool.roles).
    """
    category = session.get(Category, category_id)
    if category is None:
        raise UnknownCategory(f"no category with id {category_id}")
    require(
        session,
        project_id=category.project_id,
        user=user,
        needs=Role.LEAD,
        action=_change_named(archived=archived, effort=effort, clear_effort=clear_effort),
    )
    others = [
        c
        for c in list_categories(session, project_id=category.project_id, include_archived=True)
        if c.id != category.id
    ]
    before = {field: getattr(category, field) for field in _AUDITED}
    with _refusing_duplicates(session, name=name or category.name, shortcut=shortcut):
        _apply_changes(
            category,
            others,
            name=name,
            description=description,
            shortcut=shortcut,
            clear_shortcut=clear_shortcut,
            colour=colour,
            archived=archived,
            effort=effort,
            clear_effort=clear_effort,
            marks_incorrect_label=marks_incorrect_label,
        )
    if scope is not None and _check_scope(scope) != category.scope:
        _refuse_scope_change_across_runs(session, category)
        category.scope = scope
    audit.record(
        session,
        project_id=category.project_id,
        user=user,
        changes=[
            audit.Change(
                audit.Kind.CATEGORY,
                field=field,
                old=audit.as_text(before[field]),
                new=audit.as_text(getattr(category, field)),
                category_id=category.id,
            )
            for field in _AUDITED
            if audit.as_text(before[field]) != audit.as_text(getattr(category, field))
        ],
    )
    return category


#: A category's settings the audit trail follows (update_category may change each).
_AUDITED = (
    "name",
    "description",
    "shortcut",
    "colour",
    "archived",
    "effort",
    "marks_incorrect_label",
    "scope",
)


def mark_reviewed_for_rereview(
    session: Session, *, project_id: int, user: str | None = None
) -> int:
    """Move every reviewed example of the project to "needs re-review"; return how many.
    `user` is who caused it (by adding a category), for the audit trail."""
    moved = session.scalars(
        update(Example)
        .where(Example.project_id == project_id, Example.review_state == ReviewState.REVIEWED.value)
        .values(review_state=ReviewState.NEEDS_REREVIEW.value)
        .returning(Example.id)
    ).all()
    audit.example_changes(
        session,
        user=user,
        kind=audit.Kind.REVIEW_STATE,
        values={pk: (ReviewState.REVIEWED.value, ReviewState.NEEDS_REREVIEW.value) for pk in moved},
    )
    return len(moved)


def load_categories_file(
    session: Session, path: str | os.PathLike[str], *, project_id: int, user: str | None = None
) -> list[Category]:
    """Create the categories listed in a CSV (`name[,description,shortcut,colour,scope]`) if
    missing. `scope` is image or error (empty: create_category's default).

    Categories that already exist are left as they are, so loading the file is idempotent.
    Every row is checked before the first category is created; the earliest problem is
    raised, with how many more rows have it in the same column. `user` acts: once the
    project has members, only a lead may add categories (labeltool.roles).
    """
    require(session, project_id=project_id, user=user, needs=Role.LEAD, action="adding categories")
    path = Path(path)
    file = path.name
    table = read_table(path)
    if "name" not in table.columns:
        raise InvalidInput("required column is missing", file=file, row=1, column="name")
    existing = list_categories(session, project_id=project_id, include_archived=True)
    names = {c.name.lower() for c in existing}
    taken = {c.shortcut for c in existing if c.shortcut and not c.archived}
    problems = Problems(file)
    wanted = []
    # read_table keeps each row's place in the file (blank lines counted): header = row 1.
    for index, record in zip(table.index, table.to_dict("records"), strict=True):
        row = int(index) + 2
        name = _file_name(problems, str(record.get("name", "")), row=row)
        shortcut = _file_shortcut(problems, str(record.get("shortcut", "") or ""), row=row)
        colour = str(record.get("colour", "") or "").strip() or None
        if colour is not None and not _COLOUR.match(colour):
            problems.add(
                f"colour {shown(colour)} is not of the form #rrggbb",
                row=row,
                column="colour",
                check="colour",
            )
        scope = str(record.get("scope", "") or "").strip().lower() or None
        if scope is not None:
            try:
                _check_scope(scope)
            except InvalidInput as exc:
                problems.add(exc.reason, row=row, column="scope", check="scope")
        description = str(record.get("description", "") or "")
        if name is None or name.lower() in names:
            continue  # refused above, already in the project, or earlier in the file
        if shortcut is not None and shortcut.lower() in taken:
            problems.add(
                f"key '{shortcut.lower()}' already toggles another category",
                row=row,
                column="shortcut",
                check="taken",
            )
        names.add(name.lower())
        if shortcut is not None:
            taken.add(shortcut.lower())
        wanted.append((row, name, description, shortcut, colour, scope))
    problems.raise_first()
    # Hand out default keys now, past every key the file names, so a row without a key cannot
    # take the key a later row asks for.
    for position, (row, name, description, shortcut, colour, scope) in enumerate(wanted):
        if shortcut is None:
            shortcut = next((k for k in DEFAULT_KEYS if k not in taken), None)
            if shortcut is not None:
                taken.add(shortcut)
            wanted[position] = (row, name, description, shortcut, colour, scope)

    created = []
    for row, name, description, shortcut, colour, scope in wanted:
        try:
            created.append(
                create_category(
                    session,
                    project_id=project_id,
                    name=name,
                    description=description,
                    shortcut=shortcut,
                    colour=colour,
                    scope=scope,
                    user=user,
                )
            )
        except (InvalidInput, DuplicateCategory) as exc:
            # The checks above leave only a key another category already uses.
            raise InvalidInput(str(exc), file=file, row=row) from None
    return created


# --- private helpers -------------------------------------------------------------------


def _file_name(problems: Problems, raw: str, *, row: int) -> str | None:
    """A categories file's name cell with spaces collapsed as create_category does (so the
    existing-name check matches), or None with what is wrong with it noted."""
    if not raw.strip():
        problems.add("is empty", row=row, column="name", check="empty")
        return None
    try:
        return check_name(raw, what="a category name", limit=MAX_CATEGORY_NAME)
    except InvalidInput as exc:
        kind = "control" if control_character(raw) else "length"  # check_name's order
        problems.add(exc.reason, row=row, column="name", check=kind)
        return None


def _file_shortcut(problems: Problems, raw: str, *, row: int) -> str | None:
    """A categories file's shortcut cell (None when empty), or None with what is wrong with
    it noted: not one letter or digit, or a key the review screen keeps."""
    shortcut = raw.strip() or None
    if shortcut is None:
        return None
    if len(shortcut) != 1 or control_character(shortcut):
        problems.add(
            f"shortcut {shown(shortcut)} must be one letter or digit",
            row=row,
            column="shortcut",
            check="key",
        )
        return None
    try:
        _check_key(shortcut, set())
    except InvalidInput as exc:
        kind = "reserved" if shortcut.lower() in RESERVED_KEYS else "key"
        problems.add(exc.reason, row=row, column="shortcut", check=kind)
        return None
    return shortcut


def _change_named(*, archived: bool | None, effort: float | None, clear_effort: bool) -> str:
    """What update_category is asked to do, as a refusal names it."""
    if archived:
        return "archiving a category"
    if effort is not None or clear_effort:
        return "setting a category's effort"
    return "changing a category"


def _check_scope(scope: str) -> str:
    """`scope` if it is one of Scope's values; InvalidInput otherwise."""
    if scope not in {s.value for s in Scope}:
        raise InvalidInput(f"unknown scope {shown(scope)} (use image or error)")
    return scope


def _refuse_scope_change_across_runs(session: Session, category: Category) -> None:
    """InvalidInput when the category has tags and the project has several runs."""
    runs = session.scalar(select(func.count()).where(Run.project_id == category.project_id))
    tagged = session.scalar(select(exists().where(Tag.category_id == category.id)))
    if runs > 1 and tagged:
        raise InvalidInput(
            f"the scope of '{category.name}' cannot change now: it has tags and the project "
            f"has {runs} runs, so its tags would carry over in some runs and not in others "
            "(make a new category with the scope you want instead)"
        )


def _default_scope(session: Session, project_id: int, name: str) -> str:
    """ "error" for a confusion pair's name over the project's classes, else "image"."""
    classes = set(session.scalar(select(Project.class_names).where(Project.id == project_id)) or ())
    label, separator, prediction = name.partition("-as-")
    if separator and label in classes and prediction in classes:
        return Scope.ERROR.value
    return Scope.IMAGE.value


def _clean_name(name: str) -> str:
    return check_name(name, what="a category name", limit=MAX_CATEGORY_NAME)


def _check_key(key: str, taken: set[str]) -> str:
    key = key.strip().lower()
    if len(key) != 1 or not key.isalnum() or not key.isascii():
        raise InvalidInput(f"shortcut '{key}' must be one letter or digit")
    if key in RESERVED_KEYS:
        raise InvalidInput(
            f"key '{key}' is kept by the review screen (c, r, n, p, s); choose another"
        )
    if key in taken:
        raise DuplicateCategory(f"key '{key}' already toggles another category")
    return key


class _KeyTaken(DuplicateCategory):
    """The schema refused a second live category with the same key."""


@contextmanager
def _refusing_duplicates(session: Session, *, name: str, shortcut: str | None) -> Iterator[None]:
    """Write the block's changes in a savepoint; a unique index's refusal (a category of the
    same name, or a live one with the same key, got in first) becomes DuplicateCategory, and
    the caller's transaction goes on."""
    try:
        with session.begin_nested():
            yield
    except IntegrityError as exc:
        refusal = str(exc.orig)
        unique = getattr(exc.orig, "sqlstate", None) == "23505" or "UNIQUE constraint" in refusal
        if not unique:
            raise
        if shortcut and "shortcut" in refusal:
            raise _KeyTaken(
                f"key '{shortcut.strip().lower()}' already toggles another category"
            ) from None
        raise DuplicateCategory(f"a category named '{name}' already exists") from None


def _apply_changes(
    category: Category,
    others: list[Category],
    *,
    name: str | None,
    description: str | None,
    shortcut: str | None,
    clear_shortcut: bool,
    colour: str | None,
    archived: bool | None,
    effort: float | None,
    clear_effort: bool,
    marks_incorrect_label: bool | None,
) -> None:
    """Set the category's settings (see update_category), checking each first."""
    if name is not None:
        name = _clean_name(name)
        if any(c.name.lower() == name.lower() for c in others):
            raise DuplicateCategory(f"a category named '{name}' already exists")
        category.name = name
    if description is not None:
        category.description = description.strip()
    if clear_shortcut:
        category.shortcut = None
    elif shortcut:
        category.shortcut = _check_key(
            shortcut, {c.shortcut for c in others if c.shortcut and not c.archived}
        )
    if colour is not None:
        if not _COLOUR.match(colour):
            raise InvalidInput(f"colour '{colour}' is not of the form #rrggbb")
        category.colour = colour
    if archived is not None:
        category.archived = archived
        if archived:
            category.shortcut = None  # frees the key for a live category
    if clear_effort:
        category.effort = None
    elif effort is not None:
        if effort <= 0:
            raise InvalidInput("effort must be a positive number (e.g. days of work)")
        category.effort = float(effort)
    if marks_incorrect_label is not None:
        category.marks_incorrect_label = marks_incorrect_label
