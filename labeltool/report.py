"""The error-analysis report: share of errors per category, its ceiling, and what to fix first.

"Reviewed errors" are the examples in the reviewed sample (`labeltool.sample`: the
misclassified dev examples "reviewed" or "needs re-review"; skipped ones are not). An example
counts under a category when any reviewer tagged it. With a `reviewer` filter (one name or
several), the reviewed errors are those of the sample the reviewers have a Review row for,
and only their tags count.

For a category, its **share** is the reviewed errors tagged with it over all reviewed errors
(an example may be in several categories, so shares need not add up to 1), with a Wilson 95%
interval; its **ceiling** is share x dev error, the most the dev error can fall (as a fraction
of the dev set) if the category is fixed perfectly; **error after fix** is dev error - ceiling.

With a `confusion_pair=(label, prediction)` slice, the reviewed errors are restricted to that
pair, and the dev error used for ceilings is the pair's contribution to the dev error (pair
errors / dev examples), so ceilings stay fractions of the whole dev set.

Every count is a GROUP BY query; no function loads all examples into Python.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd
from sqlalchemy import and_, exists, func, select, true
from sqlalchemy.orm import Session

from labeltool.config import DEFAULT_SPLIT
from labeltool.models import Category, Example, Review, Tag
from labeltool.review_queue import TOO_FEW_TO_RANK, sample_guidance
from labeltool.sample import (
    ConfusionPair,
    Reviewers,
    confusion_pair_conditions,
    counted_tags,
    in_reviewed_sample,
    reviewed_sample_ids,
    tagged_by,
)

#: The columns of `ceiling_table`, in order.
CEILING_COLUMNS = ("category", "errors", "share", "ci_low", "ci_high", "ceiling", "error_after_fix")
#: The row for reviewed errors that no (counted) reviewer put in any category; always last.
NO_CATEGORY = "(no category)"
#: z for a two-sided 95% interval.
Z_95 = 1.959964
#: When incorrect labels explain at least this share of the errors, fixing labels is worth it.
LARGE_INCORRECT_LABEL_SHARE = 0.15


@dataclass(frozen=True)
class Headline:
    """The numbers at the top of the report and how much to trust the shares below them."""

    dev_examples: int
    #: Misclassified dev examples (of the confusion pair, when the report is sliced by one).
    misclassified: int
    #: misclassified / dev_examples: the dev error (or the pair's part of it).
    dev_error: float
    #: Reviewed errors: the denominator of every share.
    reviewed: int
    sample_guidance: str


@dataclass(frozen=True)
class IncorrectLabelAccounting:
    """How much of the dev error is due to incorrect labels, and whether fixing them is urgent."""

    #: The categories that mark incorrect labels (usually one, "incorrectly labeled").
    categories: tuple[str, ...]
    #: Reviewed errors tagged with any of them, and their share of the reviewed errors.
    errors: int
    share: float
    dev_error: float
    #: dev error x share, and the rest of the dev error.
    due_to_incorrect_labels: float
    due_to_other_causes: float
    #: e.g. "fixing labels could remove at most 0.6 points of the 10.0% dev error"
    sentence: str
    #: Whether that is urgent, and the reminder to apply the same fix to the test set.
    hint: str


def wilson_interval(successes: int, n: int, *, z: float = Z_95) -> tuple[float, float]:
    """The Wilson score interval of the proportion successes / n; (0.0, 1.0) when n is 0."""
    if n <= 0:
        return 0.0, 1.0
    p = successes / n
    z2 = z * z
    denominator = 1 + z2 / n
    centre = (p + z2 / (2 * n)) / denominator
    half_width = z / denominator * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    # At 0 or n successes the bound is exactly 0 or 1; skip the rounding error there.
    low = 0.0 if successes <= 0 else max(0.0, centre - half_width)
    high = 1.0 if successes >= n else min(1.0, centre + half_width)
    return low, high


def headline(
    session: Session,
    *,
    project_id: int,
    reviewer: Reviewers = None,
    confusion_pair: ConfusionPair = None,
) -> Headline:
    """Dev examples, misclassified, dev error and reviewed errors, with the sample guidance."""
    dev_examples, misclassified = _dev_counts(
        session, project_id=project_id, confusion_pair=confusion_pair
    )
    reviewed = _reviewed_count(
        session, project_id=project_id, reviewer=reviewer, confusion_pair=confusion_pair
    )
    return Headline(
        dev_examples=dev_examples,
        misclassified=misclassified,
        dev_error=misclassified / dev_examples if dev_examples else 0.0,
        reviewed=reviewed,
        sample_guidance=sample_guidance(reviewed),
    )


def ceiling_table(
    session: Session,
    *,
    project_id: int,
    reviewer: Reviewers = None,
    confusion_pair: ConfusionPair = None,
) -> pd.DataFrame:
    """One row per category (archived ones too), by share of errors, then "(no category)".

    Columns: category, errors, share, ci_low, ci_high, ceiling, error_after_fix. The names of
    archived categories are in `frame.attrs["archived"]`.
    """
    top = headline(session, project_id=project_id, reviewer=reviewer, confusion_pair=confusion_pair)
    counts = _category_counts(
        session, project_id=project_id, reviewer=reviewer, confusion_pair=confusion_pair
    )
    untagged = _untagged_count(
        session, project_id=project_id, reviewer=reviewer, confusion_pair=confusion_pair
    )
    rows = [_ceiling_row(c.name, c.errors, top) for c in counts]
    rows.sort(key=lambda row: (-row["share"], row["category"].casefold(), row["category"]))
    rows.append(_ceiling_row(NO_CATEGORY, untagged, top))
    frame = pd.DataFrame(rows, columns=list(CEILING_COLUMNS))
    frame = frame.astype({"errors": "int64"} | {c: "float64" for c in CEILING_COLUMNS[2:]})
    frame.attrs["archived"] = [c.name for c in counts if c.archived]
    return frame


def effort_ranking(
    session: Session,
    *,
    project_id: int,
    reviewer: Reviewers = None,
    confusion_pair: ConfusionPair = None,
) -> pd.DataFrame:
    """The second ranking: categories with an effort estimate, by ceiling per unit of effort.

    Columns: category, share, ceiling, effort, ceiling_per_effort (best value first).
    """
    table = ceiling_table(
        session, project_id=project_id, reviewer=reviewer, confusion_pair=confusion_pair
    )
    efforts = {
        name: effort
        for name, effort in session.execute(
            select(Category.name, Category.effort).where(
                Category.project_id == project_id, Category.effort.is_not(None)
            )
        )
    }
    categories = table.iloc[:-1]  # every row but "(no category)", which is always last
    ranked = categories[categories["category"].isin(list(efforts))]
    ranked = ranked[["category", "share", "ceiling"]].copy()
    ranked["effort"] = ranked["category"].map(efforts).astype("float64")
    ranked["ceiling_per_effort"] = ranked["ceiling"] / ranked["effort"]
    ranked["_name"] = ranked["category"].str.casefold()
    ranked = ranked.sort_values(["ceiling_per_effort", "_name"], ascending=[False, True])
    return ranked.drop(columns="_name").reset_index(drop=True)


def incorrect_label_accounting(
    session: Session,
    *,
    project_id: int,
    reviewer: Reviewers = None,
    confusion_pair: ConfusionPair = None,
) -> IncorrectLabelAccounting | None:
    """Split the dev error into incorrect labels and other causes; None without such a category.

    An example tagged with several incorrect-label categories counts once.
    """
    names = tuple(
        session.scalars(
            select(Category.name)
            .where(Category.project_id == project_id, Category.marks_incorrect_label == true())
            .order_by(Category.position, Category.id)
        )
    )
    if not names:
        return None
    top = headline(session, project_id=project_id, reviewer=reviewer, confusion_pair=confusion_pair)
    tag_filter = [
        *counted_tags(project_id=project_id, reviewer=reviewer, confusion_pair=confusion_pair),
        Tag.category_id.in_(
            select(Category.id).where(
                Category.project_id == project_id, Category.marks_incorrect_label == true()
            )
        ),
    ]
    errors = session.scalar(select(func.count(Tag.example_pk.distinct())).where(*tag_filter)) or 0
    share = errors / top.reviewed if top.reviewed else 0.0
    due = top.dev_error * share
    where = f" from {confusion_pair[0]}-as-{confusion_pair[1]}" if confusion_pair else ""
    sentence = (
        f"fixing labels could remove at most {due * 100:.1f} points of the "
        f"{top.dev_error:.1%} dev error{where}"
    )
    if top.reviewed < TOO_FEW_TO_RANK:
        hint = (
            f"Only {top.reviewed} reviewed {'error' if top.reviewed == 1 else 'errors'}: too "
            "few to judge whether fixing labels is urgent (about 20 give a rough sense). "
            "Whatever correction you apply to the dev set, apply to the test set too."
        )
    elif share < LARGE_INCORRECT_LABEL_SHARE:
        hint = (
            f"Incorrect labels explain a small part of the errors ({share:.0%} of those "
            "reviewed), so fixing them is not urgent; as the overall error falls, the same "
            "points become a larger part of it and fixing labels becomes worth it. Whatever "
            "correction you apply to the dev set, apply to the test set too."
        )
    else:
        hint = (
            f"Incorrect labels explain a large part of the errors ({share:.0%} of those "
            "reviewed): fixing them is worth it now. Apply the same correction to the test set "
            "so dev and test keep the same distribution, and consider checking the labels of "
            "correctly classified examples too."
        )
    return IncorrectLabelAccounting(
        categories=names,
        errors=int(errors),
        share=share,
        dev_error=top.dev_error,
        due_to_incorrect_labels=due,
        due_to_other_causes=top.dev_error - due,
        sentence=sentence,
        hint=hint,
    )


def reviewer_counts(
    session: Session, *, project_id: int, confusion_pair: ConfusionPair = None
) -> pd.DataFrame:
    """Per reviewer: errors of the reviewed sample they reviewed, and the tags they put on them.

    Columns: reviewer, reviewed, tags; most reviewed first, then by name. Skipped examples
    are not in the sample, so neither their reviews nor their tags count here.
    """
    sample = reviewed_sample_ids(project_id=project_id, confusion_pair=confusion_pair)
    reviewed = dict(
        session.execute(
            select(Review.reviewer, func.count())
            .where(Review.example_pk.in_(sample))
            .group_by(Review.reviewer)
        ).all()
    )
    tags = dict(
        session.execute(
            select(Tag.reviewer, func.count())
            .where(*counted_tags(project_id=project_id, confusion_pair=confusion_pair))
            .group_by(Tag.reviewer)
        ).all()
    )
    names = sorted(set(reviewed) | set(tags))
    frame = pd.DataFrame(
        {
            "reviewer": names,
            "reviewed": [int(reviewed.get(n, 0)) for n in names],
            "tags": [int(tags.get(n, 0)) for n in names],
        },
        columns=["reviewer", "reviewed", "tags"],
    ).astype({"reviewer": "object", "reviewed": "int64", "tags": "int64"})
    frame = frame.sort_values(["reviewed", "reviewer"], ascending=[False, True], kind="stable")
    return frame.reset_index(drop=True)


def report_json(
    session: Session,
    *,
    project_id: int,
    reviewer: Reviewers = None,
    confusion_pair: ConfusionPair = None,
) -> dict:
    """The headline numbers and the ceiling table as one JSON-ready dict."""
    top = headline(session, project_id=project_id, reviewer=reviewer, confusion_pair=confusion_pair)
    table = ceiling_table(
        session, project_id=project_id, reviewer=reviewer, confusion_pair=confusion_pair
    )
    categories = [
        {
            "category": str(row["category"]),
            "errors": int(row["errors"]),
            **{column: float(row[column]) for column in CEILING_COLUMNS[2:]},
        }
        for row in table.to_dict("records")
    ]
    return {
        "dev_examples": top.dev_examples,
        "misclassified": top.misclassified,
        "dev_error": top.dev_error,
        "reviewed": top.reviewed,
        "categories": categories,
    }


def report_text(
    top: Headline,
    table: pd.DataFrame,
    accounting: IncorrectLabelAccounting | None = None,
    *,
    title: str = "",
    confusion_pair: ConfusionPair = None,
) -> str:
    """The report as aligned plain text: headline, ceiling table in percent, label sentence."""
    lines = []
    if title:
        lines.append(title)
    errors = "error" if top.reviewed == 1 else "errors"
    if confusion_pair is None:
        lines.append(
            f"{top.dev_examples} dev examples, {top.misclassified} misclassified "
            f"(dev error {top.dev_error:.1%}), {top.reviewed} reviewed {errors}"
        )
    else:
        lines.append(
            f"{top.dev_examples} dev examples, {top.misclassified} misclassified as "
            f"{confusion_pair[0]}-as-{confusion_pair[1]} ({top.dev_error:.1%} of the dev set, "
            f"the dev error these ceilings refer to), {top.reviewed} reviewed {errors}"
        )
    lines.append(top.sample_guidance)
    lines.append("")
    archived = set(table.attrs.get("archived", ()))
    names = [f"{n} (archived)" if n in archived else str(n) for n in table["category"]]
    header = ("category", "errors", "share", "95% interval", "ceiling", "error after fix")
    cells = [
        (
            name,
            str(int(row.errors)),
            f"{row.share:.1%}",
            f"{row.ci_low:.1%} - {row.ci_high:.1%}",
            f"{row.ceiling:.2%}",
            f"{row.error_after_fix:.2%}",
        )
        for name, row in zip(names, table.itertuples(index=False), strict=True)
    ]
    widths = [max(len(r[i]) for r in [header, *cells]) for i in range(len(header))]
    for record in [header, *cells]:
        first = record[0].ljust(widths[0])
        rest = (value.rjust(width) for value, width in zip(record[1:], widths[1:], strict=True))
        lines.append("  ".join([first, *rest]).rstrip())
    lines.append("")
    lines.append(
        "share: of the reviewed errors (categories overlap, so shares need not add up to "
        "100%); ceiling: the most the dev error can fall if the category is fixed."
    )
    if accounting is not None:
        lines.append(f"Incorrectly labeled: {accounting.sentence}. {accounting.hint}")
    return "\n".join(lines) + "\n"


# --- private helpers -------------------------------------------------------------------


@dataclass(frozen=True)
class _CategoryCount:
    name: str
    archived: bool
    errors: int


def _dev_counts(
    session: Session, *, project_id: int, confusion_pair: ConfusionPair
) -> tuple[int, int]:
    """Dev examples, and dev errors (of the pair, when given), in one query."""
    is_counted = Example.is_error == true()
    if confusion_pair is not None:
        is_counted = and_(is_counted, *confusion_pair_conditions(confusion_pair))
    total, errors = session.execute(
        select(func.count(), func.count().filter(is_counted)).where(
            Example.project_id == project_id, Example.split == DEFAULT_SPLIT
        )
    ).one()
    return int(total), int(errors)


def _reviewed_count(
    session: Session, *, project_id: int, reviewer: Reviewers, confusion_pair: ConfusionPair
) -> int:
    conditions = in_reviewed_sample(
        project_id=project_id, reviewer=reviewer, confusion_pair=confusion_pair
    )
    return int(session.scalar(select(func.count()).select_from(Example).where(*conditions)) or 0)


def _category_counts(
    session: Session, *, project_id: int, reviewer: Reviewers, confusion_pair: ConfusionPair
) -> list[_CategoryCount]:
    """Reviewed errors per category (distinct examples), archived categories included."""
    joined = and_(
        Tag.category_id == Category.id,
        *counted_tags(project_id=project_id, reviewer=reviewer, confusion_pair=confusion_pair),
    )
    rows = session.execute(
        select(
            Category.id,
            Category.name,
            Category.archived,
            func.count(Tag.example_pk.distinct()),
        )
        .select_from(Category)
        .outerjoin(Tag, joined)
        .where(Category.project_id == project_id)
        .group_by(Category.id, Category.name, Category.archived)
    ).all()
    return [
        _CategoryCount(name=name, archived=bool(arch), errors=int(n)) for _, name, arch, n in rows
    ]


def _untagged_count(
    session: Session, *, project_id: int, reviewer: Reviewers, confusion_pair: ConfusionPair
) -> int:
    """Reviewed errors that no counted reviewer put in any category."""
    tagged = exists().where(Tag.example_pk == Example.id, *tagged_by(reviewer))
    conditions = in_reviewed_sample(
        project_id=project_id, reviewer=reviewer, confusion_pair=confusion_pair
    )
    return int(
        session.scalar(select(func.count()).select_from(Example).where(*conditions, ~tagged)) or 0
    )


def _ceiling_row(name: str, errors: int, top: Headline) -> dict:
    share = errors / top.reviewed if top.reviewed else 0.0
    low, high = wilson_interval(errors, top.reviewed)
    ceiling = share * top.dev_error
    return {
        "category": name,
        "errors": int(errors),
        "share": share,
        "ci_low": low,
        "ci_high": high,
        "ceiling": ceiling,
        "error_after_fix": top.dev_error - ceiling,
    }
