"""Read the method's wide spreadsheet back into a project: tags, comments, corrected labels.

The format is what `export.wide_table` writes: the fixed columns example_id, image, label,
prediction, confidence, comment, corrected_label, reviewer, and one column per error category
(every other column; created, in column order, when the project does not have it yet).
Category cells are 1 or 0 (also: blank = 0, true/false, yes/no, x = 1, any case). Only
example_id is required; image, label, prediction and confidence are there for the reader and
are not imported (the predictions come from `labeltool import`).

Each row counts as reviewed by its reviewers: `--reviewer` when given, else the row's
`reviewer` cell split on ";" (`\\;` is a ";" inside a name, see labeltool.export), else
"import". For those reviewers the row's tags become exactly
its 1s (a 0 removes that reviewer's tag); other reviewers' tags are left alone. Every cell is
checked before anything is written, so a bad file changes nothing.

A row is a full review only if the file has a column for every live category of the project.
Then its example becomes "reviewed", a re-review included. When a live category has no column
the row said nothing about it: an example that "needs re-review" stays so, one never reviewed
before becomes "needs re-review", and one already "reviewed" (checked for every live category
before) stays "reviewed". Categories the file adds are new to the examples outside the file,
so those already reviewed need re-review, as when a category is added on the Categories page.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import delete, insert, select, update
from sqlalchemy.orm import Session

from labeltool import audit
from labeltool.categories import create_category, list_categories, mark_reviewed_for_rereview
from labeltool.config import DEFAULT_SPLIT
from labeltool.errors import InvalidInput, UnknownProject
from labeltool.export import FIXED_COLUMNS, restore_cell, split_reviewers
from labeltool.labeling import tag_in_other_runs
from labeltool.limits import (
    MAX_CATEGORY_NAME,
    MAX_EXAMPLE_ID,
    MAX_REVIEWER,
    check_name,
    check_text,
    control_character,
    shown,
)
from labeltool.models import (
    Category,
    Example,
    Project,
    ReachedBy,
    Review,
    ReviewState,
    Tag,
    utcnow,
)
from labeltool.roles import Role, require
from labeltool.runs import in_run
from labeltool.tables import Problems, read_table

#: The reviewer recorded when neither --reviewer nor the row's reviewer cell names one.
DEFAULT_REVIEWER = "import"
#: Cell spellings accepted in category columns.
TRUE_CELLS = frozenset({"1", "true", "yes", "x"})
FALSE_CELLS = frozenset({"", "0", "false", "no"})

_CHUNK = 500


@dataclass
class TagsImportSummary:
    """What an import of the wide table did, for the CLI's line and the page's message."""

    project: str
    rows: int
    reviewers: list[str] = field(default_factory=list)
    categories_added: list[str] = field(default_factory=list)
    tags_added: int = 0
    tags_removed: int = 0
    #: Corrected labels set or changed to another class (a cell equal to the stored one is
    #: not counted), and corrected labels an empty cell cleared.
    corrections: int = 0
    corrections_cleared: int = 0
    #: Live categories the file has no column for; while there are any, rows are no full review.
    missing_categories: list[str] = field(default_factory=list)
    #: Rows left "needs re-review" because of the missing categories: already so before the
    #: import, or never reviewed before it.
    stay_rereview: int = 0
    now_rereview: int = 0
    #: Reviewed examples outside the file that the categories added now send to re-review.
    rereview_outside_file: int = 0

    def __str__(self) -> str:
        text = (
            f"project '{self.project}': {self.rows} row{'' if self.rows == 1 else 's'} "
            "imported as reviewed by "
            f"{', '.join(self.reviewers) or 'nobody'}; {_count(self.tags_added, 'tag')} added, "
            f"{self.tags_removed} removed; {_count(self.corrections, 'corrected label')} changed"
        )
        if self.corrections_cleared:
            text += f", {self.corrections_cleared} cleared"
        if self.categories_added:
            text += f"; categories added: {', '.join(self.categories_added)}"
            if self.rereview_outside_file:
                outside = _count(self.rereview_outside_file, "reviewed example")
                verb = "needs" if self.rereview_outside_file == 1 else "need"
                text += f" ({outside} not in the file now {verb} re-review)"
        left = []
        if self.stay_rereview:
            verb = "stays" if self.stay_rereview == 1 else "stay"
            left.append(f"{_count(self.stay_rereview, 'example')} {verb} 'needs re-review'")
        if self.now_rereview:
            verb = "is" if self.now_rereview == 1 else "are"
            never = _count(self.now_rereview, "example")
            left.append(f"{never} never reviewed before {verb} marked 'needs re-review'")
        if left:
            columns = ", ".join(f"'{name}'" for name in self.missing_categories)
            text += f"; {' and '.join(left)}: the file has no column for {columns}"
        return text


def import_tags(
    session: Session,
    path: str | os.PathLike[str],
    *,
    project_id: int,
    reviewer: str | None = None,
    targeted: bool = False,
    run_id: int | None = None,
    user: str | None = None,
) -> TagsImportSummary:
    """Import the wide table at `path` into run `run_id` of the project (the latest by
    default), all or nothing (see module doc). As on the review screen, image-category tags and
    corrected labels reach the same examples in the project's other runs.

    New reviews count as a random sample of the errors, unless `targeted` says the rows were
    picked (by filter, confidence or hand): then the report counts them but leaves them out of
    its estimate.

    `user` acts: once the project has members, importing tags needs the reviewer role, and a
    file that adds categories the lead role (labeltool.roles).
    """
    require(session, project_id=project_id, user=user, needs=Role.REVIEWER, action="importing tags")
    path = Path(path)
    file = path.name
    project = session.get(Project, project_id)
    if project is None:
        raise UnknownProject(f"id {project_id}")
    if reviewer is not None:
        reviewer = check_name(reviewer, what="a reviewer name", limit=MAX_REVIEWER)

    table = read_table(path)
    table = table.map(restore_cell)
    table.columns = [restore_cell(c) for c in table.columns]
    columns = _check_header(table, file=file)
    fixed = {c.casefold(): c for c in FIXED_COLUMNS}
    column_role = {c: fixed.get(c.casefold()) for c in columns}  # None: a category
    category_columns = [c for c in columns if column_role[c] is None]
    by_role = {role: c for c, role in column_role.items() if role}

    existing = {
        c.name.casefold(): c
        for c in list_categories(session, project_id=project_id, include_archived=True)
    }
    new_names = [_name(c) for c in category_columns if _name(c).casefold() not in existing]
    in_file = {_name(c).casefold() for c in category_columns}
    missing = [
        c.name for c in existing.values() if not c.archived and c.name.casefold() not in in_file
    ]

    # --- check every row before writing anything --------------------------------------
    rows = _checked_rows(
        session,
        table,
        path=path,
        project=project,
        run_id=run_id,
        by_role=by_role,
        category_columns=category_columns,
        reviewer=reviewer,
    )

    # --- write ----------------------------------------------------------------------------
    added = []
    for name in new_names:
        category = create_category(
            session, project_id=project_id, name=name, mark_rereview=False, user=user
        )
        existing[name.casefold()] = category
        added.append(category.name)
    summary = TagsImportSummary(
        project=project.name, rows=len(rows), categories_added=added, missing_categories=missing
    )
    if added:
        # The file's own rows get their state from the row below; count only the others.
        marked = mark_reviewed_for_rereview(session, project_id=project_id, user=user)
        summary.rereview_outside_file = marked - sum(
            row["example"].review_state == ReviewState.REVIEWED.value for row in rows
        )
    category_ids = {c: existing[_name(c).casefold()].id for c in category_columns}
    _write_rows(
        session,
        rows,
        category_ids=category_ids,
        by_role=by_role,
        summary=summary,
        reached=ReachedBy.SPREADSHEET_TARGETED if targeted else ReachedBy.SPREADSHEET,
        user=user,
    )
    return summary


# --- private helpers -------------------------------------------------------------------


def _checked_rows(
    session: Session,
    table,
    *,
    path: Path,
    project: Project,
    run_id: int | None,
    by_role: dict[str, str],
    category_columns: list[str],
    reviewer: str | None,
) -> list[dict]:
    """Every row checked before anything is written: the rows to write, or InvalidInput for
    the earliest problem in the file, with how many more rows have it in the same column."""
    file = path.name
    problems = Problems(file)
    ids = [str(v).strip() for v in table[by_role["example_id"]]]
    examples = _examples_by_id(session, project_id=project.id, run_id=run_id, example_ids=ids)
    classes = set(project.class_names or ())
    # read_table keeps each row's place in the file (blank lines counted): header = row 1.
    row_numbers = [int(i) + 2 for i in table.index]
    if reviewer is None and "reviewer" in by_role and row_numbers:
        _check_not_cut_in_reviewer(
            path, table, column=by_role["reviewer"], row=row_numbers[-1], problems=problems
        )
    seen: dict[str, int] = {}
    rows = []
    for row, example_id, record in zip(row_numbers, ids, table.to_dict("records"), strict=True):
        found = _example(
            example_id, row=row, seen=seen, examples=examples, project=project, problems=problems
        )
        ticked = {}
        for column in category_columns:
            ticked[column] = _flag(record[column])
            if ticked[column] is None:
                problems.add(
                    f"{shown(record[column])} is not 0 or 1 (also accepted: blank, true/false, "
                    "yes/no, x)",
                    row=row,
                    column=column,
                    check="flag",
                )
        corrected = None
        if "corrected_label" in by_role:
            corrected = str(record[by_role["corrected_label"]]).strip() or None
            if corrected is not None and corrected not in classes:
                problems.add(
                    f"unknown label {shown(corrected)} (known classes: "
                    f"{', '.join(project.class_names or ())})",
                    row=row,
                    column="corrected_label",
                    check="unknown",
                )
        if reviewer is not None:
            reviewers = [reviewer]
        else:
            cell = str(record[by_role["reviewer"]]) if "reviewer" in by_role else ""
            names = [
                _limited(
                    problems,
                    name,
                    check=check_name,
                    what="a reviewer name",
                    limit=MAX_REVIEWER,
                    row=row,
                    column="reviewer",
                )
                for name in split_reviewers(cell)
                if name.strip()
            ]
            reviewers = sorted({n for n in names if n is not None}) or [DEFAULT_REVIEWER]
        if found is not None:
            rows.append(
                {
                    "example": found,
                    "ticked": ticked,
                    "comment": record[by_role["comment"]] if "comment" in by_role else None,
                    "corrected": corrected,
                    "reviewers": reviewers,
                }
            )
    problems.raise_first()
    return rows


def _example(
    example_id: str,
    *,
    row: int,
    seen: dict[str, int],
    examples: dict[str, _Found],
    project: Project,
    problems: Problems,
) -> _Found | None:
    """The example a row's id names, or None with the first thing wrong with the id noted:
    empty, over the limits, given before, not in the run, not a misclassified dev example."""
    if not example_id:
        problems.add("is empty", row=row, column="example_id", check="empty")
        return None
    checked = _limited(
        problems,
        example_id,
        check=check_text,
        what="an example_id",
        limit=MAX_EXAMPLE_ID,
        row=row,
        column="example_id",
    )
    if checked is None:
        return None
    if example_id in seen:
        problems.add(
            f"example_id {shown(example_id)} appears twice in the file (first in row "
            f"{seen[example_id]})",
            row=row,
            column="example_id",
            check="repeated",
        )
        return None
    seen[example_id] = row
    found = examples.get(example_id)
    if found is None:
        problems.add(
            f"unknown example_id {shown(example_id)} (not in project '{project.name}')",
            row=row,
            column="example_id",
            check="unknown",
        )
        return None
    if found.split != DEFAULT_SPLIT or not found.is_error:
        problems.add(
            f"example {shown(example_id)} is not a misclassified dev example; only those are "
            "reviewed",
            row=row,
            column="example_id",
            check="not reviewable",
        )
        return None
    return found


def _limited(
    problems: Problems, value: str, *, check, what: str, limit: int, row: int, column: str
) -> str | None:
    """`value` through `check` (limits.check_text or check_name), or None with the limit it
    breaks noted (counted by which limit: a control character, empty, too long)."""
    try:
        return check(value, what=what, limit=limit)
    except InvalidInput as exc:
        text = str(value)
        # The order the limits are checked in, so the kind is the one the message is about.
        if control_character(text):
            kind = "control"
        elif not text.strip():
            kind = "empty"
        else:
            kind = "length"
        problems.add(exc.reason, row=row, column=column, check=kind)
        return None


def _check_header(table, *, file: str) -> list[str]:
    """The header's columns (read_table has dropped empty unnamed ones and refused named ones
    with values); InvalidInput if a name breaks the limits or repeats."""
    columns = list(table.columns)
    folded = [_name(c).casefold() for c in columns]
    for column, key in zip(columns, folded, strict=True):
        if not key:
            raise InvalidInput("a column has an empty name in the header", file=file, row=1)
        check_name(
            column,
            what="a category name",
            limit=MAX_CATEGORY_NAME,
            file=file,
            row=1,
            column=shown(column)[1:-1],
        )
        if folded.count(key) > 1:
            raise InvalidInput(
                "appears more than once in the header", file=file, row=1, column=column
            )
    if "example_id" not in folded:
        raise InvalidInput(
            f"required column is missing (the header has: {', '.join(columns) or 'nothing'})",
            file=file,
            row=1,
            column="example_id",
        )
    return columns


def _check_not_cut_in_reviewer(
    path: Path, table, *, column: str, row: int, problems: Problems
) -> None:
    """Note a CSV that ends right after the comma before the last row's reviewer cell,
    with no line break: the row looks whole but was cut, and its empty cell would read as
    "no reviewer named" and be recorded as DEFAULT_REVIEWER."""
    if table.columns[-1] != column or path.suffix.lower() in (".parquet", ".pq"):
        return
    if str(table[column].iloc[-1]).strip():
        return
    with path.open("rb") as handle:
        handle.seek(0, os.SEEK_END)
        handle.seek(max(handle.tell() - 1, 0))
        last = handle.read(1)
    if last not in (b"\n", b"\r"):
        problems.add(
            "is empty and the file ends right after it with no line break: was the file cut "
            "short? End the file with a line break, or name the reviewer",
            row=row,
            column="reviewer",
            check="cut",
        )


def _name(column: str) -> str:
    """A header as a category name: inner runs of whitespace become one space."""
    return " ".join(column.split())


@dataclass(frozen=True)
class _Found:
    """What the import needs to know about an example before it writes anything."""

    pk: int
    example_id: str
    split: str
    is_error: bool
    review_state: str
    corrected_label: str | None


def _examples_by_id(
    session: Session, *, project_id: int, run_id: int | None, example_ids: list[str]
) -> dict[str, _Found]:
    """example_id -> what the import needs of it, for the ids that exist in the run."""
    found = {}
    unique = sorted(set(example_ids))
    for start in range(0, len(unique), _CHUNK):
        chunk = unique[start : start + _CHUNK]
        for row in session.execute(
            select(
                Example.id,
                Example.example_id,
                Example.split,
                Example.is_error,
                Example.review_state,
                Example.corrected_label,
            ).where(*in_run(project_id, run_id), Example.example_id.in_(chunk))
        ):
            found[row.example_id] = _Found(
                pk=row.id,
                example_id=row.example_id,
                split=row.split,
                is_error=bool(row.is_error),
                review_state=row.review_state,
                corrected_label=row.corrected_label or None,
            )
    return found


def _flag(value) -> bool | None:
    """A category cell as ticked or not; None when it is neither spelling."""
    text = str(value).strip().casefold()
    if text in TRUE_CELLS:
        return True
    if text in FALSE_CELLS:
        return False
    return None


def _write_rows(
    session: Session,
    rows: list[dict],
    *,
    category_ids: dict[str, int],
    by_role: dict[str, str],
    summary: TagsImportSummary,
    reached: ReachedBy,
    user: str | None,
) -> None:
    """Apply the checked rows: review state, Review rows, tags, comment, corrected label,
    each change in the audit trail as `user`'s."""
    pks = [row["example"].pk for row in rows]
    audit.lock_examples(session, pks)
    before: dict[int, tuple[str, str, str | None]] = {}
    for start in range(0, len(pks), _CHUNK):
        for pk, *values in session.execute(
            select(
                Example.id, Example.review_state, Example.comment, Example.corrected_label
            ).where(Example.id.in_(pks[start : start + _CHUNK]))
        ):
            before[pk] = tuple(values)
    have_reviews: set[tuple[int, str]] = set()
    have_tags: dict[tuple[int, int, str], int] = {}
    wanted_categories = set(category_ids.values())
    for start in range(0, len(pks), _CHUNK):
        chunk = pks[start : start + _CHUNK]
        have_reviews |= {
            (pk, name)
            for pk, name in session.execute(
                select(Review.example_pk, Review.reviewer).where(Review.example_pk.in_(chunk))
            )
        }
        for tag_id, pk, category_id, name in session.execute(
            select(Tag.id, Tag.example_pk, Tag.category_id, Tag.reviewer).where(
                Tag.example_pk.in_(chunk)
            )
        ):
            if category_id in wanted_categories:
                have_tags[(pk, category_id, name)] = tag_id

    now = utcnow()
    example_updates, new_reviews, new_tags, old_tags = [], [], [], []
    removed: list[tuple[int, int, str]] = []  # (pk, category_id, reviewer) of old_tags
    everyone: set[str] = set()
    for row in rows:
        found: _Found = row["example"]
        pk = found.pk
        state = _state_after_import(found.review_state, full_review=not summary.missing_categories)
        if state == ReviewState.NEEDS_REREVIEW.value:
            if found.review_state == ReviewState.NEEDS_REREVIEW.value:
                summary.stay_rereview += 1
            else:
                summary.now_rereview += 1
        values = {"id": pk, "review_state": state, "updated_at": now}
        if "comment" in by_role:
            values["comment"] = str(row["comment"])
        if "corrected_label" in by_role:
            values["corrected_label"] = row["corrected"]
            if row["corrected"] != found.corrected_label:
                if row["corrected"] is None:
                    summary.corrections_cleared += 1
                else:
                    summary.corrections += 1
        example_updates.append(values)
        for name in row["reviewers"]:
            everyone.add(name)
            if (pk, name) not in have_reviews:
                new_reviews.append(
                    {"example_pk": pk, "reviewer": name, "reviewed_at": now, "reached": reached}
                )
            for column, ticked in row["ticked"].items():
                key = (pk, category_ids[column], name)
                if ticked and key not in have_tags:
                    new_tags.append(
                        {
                            "example_pk": pk,
                            "category_id": key[1],
                            "reviewer": name,
                            "tagged_at": now,
                        }
                    )
                elif not ticked and key in have_tags:
                    old_tags.append(have_tags[key])
                    removed.append(key)

    for start in range(0, len(example_updates), _CHUNK):
        session.execute(update(Example), example_updates[start : start + _CHUNK])
    if new_reviews:
        session.execute(insert(Review), new_reviews)
    for start in range(0, len(old_tags), _CHUNK):
        session.execute(delete(Tag).where(Tag.id.in_(old_tags[start : start + _CHUNK])))
    if new_tags:
        session.execute(insert(Tag), new_tags)
    session.flush()
    _record(session, user, before, example_updates, new_reviews, new_tags, removed)
    _to_other_runs(session, new_tags, removed, rows, by_role, user=user)
    summary.reviewers = sorted(everyone)
    summary.tags_added = len(new_tags)
    summary.tags_removed = len(old_tags)


def _to_other_runs(
    session: Session,
    new_tags: list[dict],
    removed: list[tuple[int, int, str]],
    rows: list[dict],
    by_role: dict[str, str],
    *,
    user: str | None,
) -> None:
    """What belongs to the example, in every run: image-category tags put on or taken off, and
    corrected labels (labeltool.labeling does the same for the review screen's changes)."""
    changes: dict[tuple[int, str, bool], list[int]] = {}
    for tag in new_tags:
        changes.setdefault((tag["category_id"], tag["reviewer"], True), []).append(
            tag["example_pk"]
        )
    for pk, category_id, name in removed:
        changes.setdefault((category_id, name, False), []).append(pk)
    for (category_id, name, tagged), pks in changes.items():
        category = session.get(Category, category_id)
        tag_in_other_runs(session, category, pks, name, tagged=tagged)
    if "corrected_label" not in by_role:
        return
    by_label: dict[str | None, list[str]] = {}
    for row in rows:
        by_label.setdefault(row["corrected"], []).append(row["example"].example_id)
    project_id = session.get(Example, rows[0]["example"].pk).project_id if rows else None
    for label, example_ids in by_label.items():
        for start in range(0, len(example_ids), _CHUNK):
            same = (
                Example.project_id == project_id,
                Example.example_id.in_(example_ids[start : start + _CHUNK]),
            )
            old = dict(
                session.execute(select(Example.id, Example.corrected_label).where(*same)).all()
            )
            audit.lock_examples(session, old)
            session.execute(
                update(Example)
                .where(*same)
                .values(corrected_label=label)
                .execution_options(synchronize_session=False)
            )
            audit.example_changes(
                session,
                user=user,
                kind=audit.Kind.CORRECTED_LABEL,
                values={pk: (value or None, label) for pk, value in old.items()},
            )


def _record(session, user, before, example_updates, new_reviews, new_tags, removed) -> None:
    """The sheet's changes in the audit trail: states, comments, corrected labels (against
    `before`, read under the lock), new reviews, and tags put on and taken off."""
    kind = audit.Kind
    for what, index, key in (
        (kind.REVIEW_STATE, 0, "review_state"),
        (kind.COMMENT, 1, "comment"),
        (kind.CORRECTED_LABEL, 2, "corrected_label"),
    ):
        audit.example_changes(
            session,
            user=user,
            kind=what,
            values={
                values["id"]: (before[values["id"]][index], values[key])
                for values in example_updates
                if key in values
            },
        )
    by_reviewer: dict[str, dict[int, tuple]] = {}
    for review in new_reviews:
        by_reviewer.setdefault(review["reviewer"], {})[review["example_pk"]] = (
            None,
            ReachedBy(review["reached"]).value,
        )
    for reviewer, values in by_reviewer.items():
        audit.example_changes(
            session, user=user, kind=kind.REVIEW, values=values, reviewer=reviewer
        )
    tags: dict[tuple[int, str, bool], list[int]] = {}
    for tag in new_tags:
        tags.setdefault((tag["category_id"], tag["reviewer"], True), []).append(tag["example_pk"])
    for pk, category_id, reviewer in removed:
        tags.setdefault((category_id, reviewer, False), []).append(pk)
    for (category_id, reviewer, tagged), pks in tags.items():
        audit.tags_changed(
            session,
            user=user,
            category_id=category_id,
            pks=pks,
            tagged=tagged,
            reviewer=reviewer,
        )


def _state_after_import(before: str, *, full_review: bool) -> str:
    """The review state a row leaves its example in (see the module doc)."""
    if full_review or before == ReviewState.REVIEWED.value:
        return ReviewState.REVIEWED.value
    return ReviewState.NEEDS_REREVIEW.value


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"
