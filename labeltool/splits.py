"""Where the error comes from: error rate per split, and the gaps leads compare.

human-level error -> training error is avoidable bias; training -> training-dev error is
variance; training-dev -> dev error is data mismatch; dev -> test error is overfitting to the
dev set. A project holds these splits when its predictions file has a `split` column.
"""

from __future__ import annotations

import pandas as pd
from sqlalchemy import Integer, cast, func, select
from sqlalchemy.orm import Session

from labeltool import audit
from labeltool.errors import InvalidInput, UnknownProject
from labeltool.models import Example, Project
from labeltool.report_cache import keep
from labeltool.runs import in_run

#: The splits in the order the error is expected to grow.
SPLIT_ORDER = ("train", "train-dev", "dev", "test")
HUMAN_LEVEL = "human-level"

#: (from, to) -> (name of the gap, what the method suggests when it is the largest).
GAPS = {
    (HUMAN_LEVEL, "train"): (
        "avoidable bias",
        "train a bigger model, train longer or try a better architecture",
    ),
    ("train", "train-dev"): (
        "variance",
        "get more training data, regularise or try another architecture",
    ),
    ("train-dev", "dev"): (
        "data mismatch",
        "make the training data more like the dev data (error-analyse train-dev vs dev)",
    ),
    ("train", "dev"): (
        "variance + data mismatch",
        "add a train-dev split (held-out training data) to tell the two apart",
    ),
    ("dev", "test"): (
        "overfitting to the dev set",
        "get a bigger dev set",
    ),
}

GAP_COLUMNS = ("gap", "from_split", "to_split", "size", "suggestion")


@keep
def error_by_split(session: Session, *, project_id: int, run_id: int | None = None) -> pd.DataFrame:
    """Columns split, examples, misclassified, error: one row per split present, in order."""
    rows = session.execute(
        select(Example.split, func.count(), func.sum(cast(Example.is_error, Integer)))
        .where(*in_run(project_id, run_id))
        .group_by(Example.split)
    ).all()
    found = {split: (int(n), int(errors or 0)) for split, n, errors in rows}
    records = [
        {"split": split, "examples": n, "misclassified": errors, "error": errors / n}
        for split in SPLIT_ORDER
        if split in found
        for n, errors in [found[split]]
    ]
    frame = pd.DataFrame(records, columns=["split", "examples", "misclassified", "error"])
    return frame.astype({"examples": "int64", "misclassified": "int64", "error": "float64"})


def error_gaps(by_split: pd.DataFrame, *, human_level_error: float | None = None) -> pd.DataFrame:
    """The gaps between neighbouring levels that the method names, largest first.

    Columns: gap, from_split, to_split, size (a fraction of examples; negative when the later
    error is lower), suggestion.
    """
    levels = [(HUMAN_LEVEL, human_level_error)] if human_level_error is not None else []
    levels += list(zip(by_split["split"], by_split["error"], strict=True))
    rows = []
    for (low, low_error), (high, high_error) in zip(levels, levels[1:], strict=False):
        if (low, high) in GAPS:
            name, suggestion = GAPS[(low, high)]
            rows.append(
                {
                    "gap": name,
                    "from_split": low,
                    "to_split": high,
                    "size": float(high_error - low_error),
                    "suggestion": suggestion,
                }
            )
    frame = pd.DataFrame(rows, columns=list(GAP_COLUMNS))
    # Round before sorting so equal gaps (up to float noise) keep the method's order.
    order = frame["size"].round(12).sort_values(ascending=False, kind="stable").index
    return frame.loc[order].reset_index(drop=True)


def largest_gap_sentence(gaps: pd.DataFrame) -> str | None:
    """The sentence a lead needs about the largest gap, with the method's suggestion.

    e.g. "The largest gap is variance (4.0 points, train → train-dev): get more training data,
    regularise or try another architecture."
    """
    if gaps.empty or gaps.iloc[0]["size"] <= 0:
        return None
    top = gaps.iloc[0]
    return (
        f"The largest gap is {top['gap']} ({top['size'] * 100:.1f} points, "
        f"{top['from_split']} → {top['to_split']}): {top['suggestion']}."
    )


def splits_text(by_split: pd.DataFrame, *, human_level_error: float | None = None) -> str:
    """Error by split and the gaps, as aligned plain text for the CLI's report."""
    lines = ["Error by split"]
    if human_level_error is not None:
        lines.append(f"  {HUMAN_LEVEL:<12} {human_level_error:>7.1%}")
    for row in by_split.itertuples(index=False):
        lines.append(
            f"  {row.split:<12} {row.error:>7.1%}  ({row.misclassified} of {row.examples})"
        )
    gaps = error_gaps(by_split, human_level_error=human_level_error)
    for row in gaps.itertuples(index=False):
        lines.append(
            f"  {row.gap}: {row.size * 100:+.1f} points ({row.from_split} -> {row.to_split})"
        )
    if sentence := largest_gap_sentence(gaps):
        lines.append(sentence)
    return "\n".join(lines) + "\n"


def set_human_level_error(
    session: Session, *, project_id: int, error: float | None, user: str | None = None
) -> None:
    """Store the project's human-level error (a proxy for Bayes error), or clear it, as
    `user` (recorded in the audit trail)."""
    project = session.get(Project, project_id)
    if project is None:
        raise UnknownProject(str(project_id))
    if error is not None and not 0.0 <= error <= 1.0:
        raise InvalidInput("human-level error must be a fraction between 0 and 1")
    old = project.human_level_error
    project.human_level_error = error
    audit.setting(
        session, project_id=project_id, user=user, name="human-level error", old=old, new=error
    )
