"""Compare two runs of a project: did the fix work?

The method is a loop (labeltool.runs): analyse the errors, fix the biggest category, retrain,
analyse again. `compare_runs` puts two turns of it side by side: each run's dev error with its
Wilson 95% interval; the errors fixed, new and kept, matched by example id over the dev set;
each category's share and ceiling in both runs; and, for the category the new run targeted,
how much of its ceiling the new run recovered (ceiling before - ceiling after, in points of
dev error).

A category's numbers come from each run's report (`labeltool.report.ceiling_table`), so the
comparison counts what the report counts. Every count is a GROUP BY query.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd
from sqlalchemy import Integer, and_, cast, exists, func, select
from sqlalchemy.orm import Session, aliased

from labeltool import report
from labeltool.config import DEFAULT_SPLIT
from labeltool.errors import InvalidInput
from labeltool.estimate import wilson_interval
from labeltool.limits import shown
from labeltool.models import Example
from labeltool.runs import get_run, list_runs

#: The columns of `Comparison.categories`, in order.
CATEGORY_COLUMNS = (
    "category",
    "errors_before",
    "share_before",
    "ceiling_before",
    "errors_after",
    "share_after",
    "ceiling_after",
    "ceiling_change",
)


@dataclass(frozen=True)
class RunSummary:
    """One run's dev error, with its Wilson 95% interval (misclassified of dev examples)."""

    name: str
    note: str
    target_category: str | None
    dev_examples: int
    misclassified: int
    dev_error: float
    dev_error_low: float
    dev_error_high: float


@dataclass(frozen=True)
class TargetOutcome:
    """What the fix bought: the targeted category's ceiling in both runs."""

    category: str
    ceiling_before: float
    ceiling_after: float
    #: ceiling_before - ceiling_after, a fraction of the dev set (NaN when either is NaN).
    recovered: float
    #: e.g. "blurry: ceiling was 2.4 points, the new run recovered 1.6"
    sentence: str


@dataclass(frozen=True, eq=False)
class Comparison:
    before: RunSummary
    after: RunSummary
    #: One row per category of either run's ranking: CATEGORY_COLUMNS.
    categories: pd.DataFrame
    #: Dev errors in `before` whose example is correct in `after`.
    fixed: int
    #: Dev errors in `after` whose example is correct in `before`.
    new: int
    #: Dev examples misclassified in both runs.
    both: int
    #: Dev example ids present in only one of the runs.
    unmatched_before: int
    unmatched_after: int
    #: The targeted category's outcome, or None when no target is known.
    target: TargetOutcome | None

    @property
    def dev_error_change(self) -> float:
        return self.after.dev_error - self.before.dev_error


def compare_runs(
    session: Session, *, project_id: int, before: str, after: str, target: str | None = None
) -> Comparison:
    """Compare run `before` with run `after` of the project (see the module doc).

    The target is `target`, else the `after` run's target category, else none. A `target`
    that is no category of either run is refused (InvalidInput naming the known ones).
    """
    run_before = get_run(session, project_id=project_id, name=before)
    run_after = get_run(session, project_id=project_id, name=after)
    if run_before.id == run_after.id:
        raise InvalidInput(f"compare two different runs (both are {shown(run_before.name)})")
    infos = {info.id: info for info in list_runs(session, project_id=project_id)}
    summaries = [_summary(infos[run.id]) for run in (run_before, run_after)]
    tables = [
        report.ranked_categories(
            report.ceiling_table(session, project_id=project_id, run_id=run.id)
        )
        for run in (run_before, run_after)
    ]
    categories = _side_by_side(*tables)
    fixed, new, both = _transitions(session, before_id=run_before.id, after_id=run_after.id)
    unmatched_before = _unmatched(session, run_id=run_before.id, other_id=run_after.id)
    unmatched_after = _unmatched(session, run_id=run_after.id, other_id=run_before.id)

    named = target if target is not None else run_after.target_category
    outcome = None
    if named is not None:
        outcome = _target(categories, named, explicit=target is not None)
    return Comparison(
        before=summaries[0],
        after=summaries[1],
        categories=categories,
        fixed=fixed,
        new=new,
        both=both,
        unmatched_before=unmatched_before,
        unmatched_after=unmatched_after,
        target=outcome,
    )


def comparison_table(comparison: Comparison) -> pd.DataFrame:
    """The per-category side by side, for CSV: CATEGORY_COLUMNS plus `target` (True on the
    targeted category's row)."""
    table = comparison.categories.copy()
    name = comparison.target.category if comparison.target else None
    table["target"] = table["category"] == name
    return table


def comparison_json(comparison: Comparison) -> dict:
    """Everything in the comparison as JSON-ready data (NaN as None)."""

    def run(summary: RunSummary) -> dict:
        return {
            "name": summary.name,
            "note": summary.note,
            "target_category": summary.target_category,
            "dev_examples": summary.dev_examples,
            "misclassified": summary.misclassified,
            "dev_error": report.json_number(summary.dev_error),
            "dev_error_low": report.json_number(summary.dev_error_low),
            "dev_error_high": report.json_number(summary.dev_error_high),
        }

    target = comparison.target
    return {
        "before": run(comparison.before),
        "after": run(comparison.after),
        "dev_error_change": report.json_number(comparison.dev_error_change),
        "errors": {
            "fixed": comparison.fixed,
            "new": comparison.new,
            "both": comparison.both,
            "unmatched_before": comparison.unmatched_before,
            "unmatched_after": comparison.unmatched_after,
        },
        "target": None
        if target is None
        else {
            "category": target.category,
            "ceiling_before": report.json_number(target.ceiling_before),
            "ceiling_after": report.json_number(target.ceiling_after),
            "recovered": report.json_number(target.recovered),
            "sentence": target.sentence,
        },
        "categories": [
            {
                column: (
                    value
                    if column == "category"
                    else int(value)
                    if column.startswith("errors_")
                    else report.json_number(value)
                )
                for column, value in row.items()
            }
            for row in comparison.categories.to_dict("records")
        ],
    }


def comparison_text(comparison: Comparison, *, title: str = "") -> str:
    """The comparison as plain aligned text: both runs' dev error with its interval, the
    errors fixed, new and kept, what the fix bought, then the categories side by side."""
    lines = [title, ""] if title else []
    runs = (comparison.before, comparison.after)
    width = max(len(f"run '{r.name}'") for r in runs)
    for summary in runs:
        label = f"run '{summary.name}'"
        note = f"  {summary.note}" if summary.note else ""
        lines.append(
            f"{label:<{width}}  dev error {_pct(summary.dev_error, 1)} "
            f"(95% interval {_span(summary.dev_error_low, summary.dev_error_high, 1)}), "
            f"{summary.misclassified} of {summary.dev_examples} dev examples{note}"
        )
    change = comparison.dev_error_change * 100
    lines.append(f"dev error change: {change:+.1f} points")
    lines.append(
        f"errors fixed: {comparison.fixed}, new: {comparison.new}, in both runs: {comparison.both}"
    )
    if comparison.unmatched_before or comparison.unmatched_after:
        lines.append(
            f"dev examples only in run '{comparison.before.name}': "
            f"{comparison.unmatched_before}, only in run '{comparison.after.name}': "
            f"{comparison.unmatched_after} (not counted above)"
        )
    if comparison.target is not None:
        lines.append(comparison.target.sentence)
    lines += ["", *_category_lines(comparison)]
    return "\n".join(lines) + "\n"


#: The columns of `run_trend`'s table, in order.
TREND_COLUMNS = ("run", "position", "measure", "value", "low", "high")
#: `run_trend`'s measure for each run's dev error (the others are category names).
DEV_ERROR = "dev error"


def run_trend(session: Session, *, project_id: int, top: int = 3) -> pd.DataFrame:
    """Dev error and the top categories' ceilings across all the project's runs, oldest
    first, for a chart: one row per run and measure (TREND_COLUMNS).

    `measure` is DEV_ERROR or a category; `value` is a fraction of the dev set (the dev error,
    or the category's ceiling in that run), `low`/`high` its Wilson 95% interval. The top
    categories are the `top` with the highest ceiling in any run; a run whose reviews could not
    use a category has no row for it.
    """
    dev_rows, category_rows = [], []
    ceilings: dict[str, float] = {}
    for position, info in enumerate(list_runs(session, project_id=project_id)):
        low, high = wilson_interval(info.misclassified, info.dev_examples)
        dev_rows.append((info.name, position, DEV_ERROR, info.dev_error, low, high))
        ranked = report.ranked_categories(
            report.ceiling_table(session, project_id=project_id, run_id=info.id)
        )
        for row in ranked.itertuples(index=False):
            if not math.isnan(row.ceiling):
                category_rows.append(
                    (info.name, position, row.category, row.ceiling, row.ceiling_low,
                     row.ceiling_high)
                )  # fmt: skip
                ceilings[row.category] = max(ceilings.get(row.category, 0.0), row.ceiling)
    chosen = set(sorted(ceilings, key=lambda name: (-ceilings[name], name.casefold()))[:top])
    rows = dev_rows + [row for row in category_rows if row[2] in chosen]
    frame = pd.DataFrame(rows, columns=list(TREND_COLUMNS))
    frame = frame.sort_values(["position"], kind="stable")
    return frame.astype({"value": float, "low": float, "high": float}).reset_index(drop=True)


# --- private helpers -------------------------------------------------------------------


def _summary(info) -> RunSummary:
    low, high = wilson_interval(info.misclassified, info.dev_examples)
    return RunSummary(
        name=info.name,
        note=info.note or "",
        target_category=info.target_category,
        dev_examples=info.dev_examples,
        misclassified=info.misclassified,
        dev_error=info.dev_error,
        dev_error_low=low,
        dev_error_high=high,
    )


def _side_by_side(before: pd.DataFrame, after: pd.DataFrame) -> pd.DataFrame:
    """The categories of both rankings, in the `after` run's order, then those only in
    `before`."""
    keep = ["category", "errors", "share", "ceiling"]
    merged = pd.merge(
        after[keep].rename(columns=lambda c: c if c == "category" else f"{c}_after"),
        before[keep].rename(columns=lambda c: c if c == "category" else f"{c}_before"),
        on="category",
        how="outer",
        sort=False,
    )
    order: dict[str, int] = {}
    for name in [*after["category"], *before["category"]]:
        order.setdefault(name, len(order))
    merged = merged.sort_values("category", key=lambda s: s.map(order), kind="stable")
    for column in ("errors_before", "errors_after"):
        merged[column] = merged[column].fillna(0).astype(int)
    for column in ("share_before", "ceiling_before", "share_after", "ceiling_after"):
        merged[column] = merged[column].astype(float)
    merged["ceiling_change"] = merged["ceiling_after"] - merged["ceiling_before"]
    return merged[list(CATEGORY_COLUMNS)].reset_index(drop=True)


def _transitions(session: Session, *, before_id: int, after_id: int) -> tuple[int, int, int]:
    """(fixed, new, both): dev examples matched by example_id across the two runs."""
    old, new = aliased(Example), aliased(Example)
    old_error, new_error = cast(old.is_error, Integer), cast(new.is_error, Integer)
    row = session.execute(
        select(
            func.sum(old_error * (1 - new_error)),
            func.sum((1 - old_error) * new_error),
            func.sum(old_error * new_error),
        )
        .select_from(old)
        .join(new, and_(new.example_id == old.example_id, new.run_id == after_id))
        .where(old.run_id == before_id, old.split == DEFAULT_SPLIT, new.split == DEFAULT_SPLIT)
    ).one()
    fixed, new_errors, both = (int(value or 0) for value in row)
    return fixed, new_errors, both


def _unmatched(session: Session, *, run_id: int, other_id: int) -> int:
    """Dev examples of run `run_id` with no dev example of the same id in run `other_id`."""
    other = aliased(Example)
    return int(
        session.scalar(
            select(func.count())
            .select_from(Example)
            .where(
                Example.run_id == run_id,
                Example.split == DEFAULT_SPLIT,
                ~exists().where(
                    other.run_id == other_id,
                    other.example_id == Example.example_id,
                    other.split == DEFAULT_SPLIT,
                ),
            )
        )
        or 0
    )


def _target(categories: pd.DataFrame, name: str, *, explicit: bool) -> TargetOutcome:
    """The outcome for category `name` (matched case-insensitively). An unknown `name` is
    refused when the user gave it (`explicit`); a run's recorded target that is no longer a
    category is reported as such."""
    known = list(categories["category"])
    match = [c for c in known if str(c).lower() == name.strip().lower()]
    if not match:
        if explicit:
            listed = ", ".join(shown(c) for c in known) or "none"
            raise InvalidInput(f"no category {shown(name)} in these runs (categories: {listed})")
        return TargetOutcome(
            category=name,
            ceiling_before=math.nan,
            ceiling_after=math.nan,
            recovered=math.nan,
            sentence=f"{name}: the targeted category is not in either run's report",
        )
    row = categories[categories["category"] == match[0]].iloc[0]
    before, after = float(row["ceiling_before"]), float(row["ceiling_after"])
    recovered = before - after
    return TargetOutcome(
        category=match[0],
        ceiling_before=before,
        ceiling_after=after,
        recovered=recovered,
        sentence=_sentence(match[0], before, after, recovered),
    )


def _sentence(name: str, before: float, after: float, recovered: float) -> str:
    if math.isnan(before):
        return f"{name}: no ceiling in the earlier run (no review could use the category)"
    if math.isnan(after):
        return (
            f"{name}: ceiling was {_points(before)} points; the new run has none yet (no "
            "review could use the category)"
        )
    if recovered < 0:
        return (
            f"{name}: ceiling was {_points(before)} points, the new run recovered none: it "
            f"grew by {_points(-recovered)}"
        )
    return (
        f"{name}: ceiling was {_points(before)} points, the new run recovered {_points(recovered)}"
    )


def _category_lines(comparison: Comparison) -> list[str]:
    before, after = comparison.before.name, comparison.after.name
    header = (
        "category",
        f"errors '{before}'",
        f"share '{before}'",
        f"ceiling '{before}'",
        f"errors '{after}'",
        f"share '{after}'",
        f"ceiling '{after}'",
        "change",
    )
    table = comparison.categories
    if table.empty:
        return ["no categories yet"]
    cells = [
        (
            str(row.category),
            str(int(row.errors_before)),
            _pct(row.share_before, 1),
            _pct(row.ceiling_before, 2),
            str(int(row.errors_after)),
            _pct(row.share_after, 1),
            _pct(row.ceiling_after, 2),
            _signed_pct(row.ceiling_change, 2),
        )
        for row in table.itertuples(index=False)
    ]
    widths = [max(len(r[i]) for r in [header, *cells]) for i in range(len(header))]
    return [
        "  ".join(
            cell.ljust(w) if i == 0 else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(line, widths, strict=True))
        ).rstrip()
        for line in [header, *cells]
    ]


def _pct(value: float, digits: int) -> str:
    return "-" if math.isnan(value) else f"{value:.{digits}%}"


def _signed_pct(value: float, digits: int) -> str:
    return "-" if math.isnan(value) else f"{value:+.{digits}%}"


def _span(low: float, high: float, digits: int) -> str:
    return "-" if math.isnan(low) else f"{_pct(low, digits)} - {_pct(high, digits)}"


def _points(fraction: float) -> str:
    return f"{fraction * 100:.1f}"
