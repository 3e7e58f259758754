"""The reviewed sample: the one rule for which examples, tags and corrected labels count.

The method measures error categories on a sample of the misclassified dev examples that a
person looked at. **The errors that count** (`errors_that_count`) are one run's (the latest
unless another is named: labeltool.runs) misclassified dev examples in its eyeball part (the
whole dev set unless an eyeball share is set): the review queue, its progress, the pair
picker's sizes, the report, the eyeball panel's eyeball errors and every export count these and
no others. An example is **in the reviewed sample** when it is one of the errors that count and
its review state is in REVIEWED_STATES: "reviewed", or "needs re-review" (it was looked at; a
category added since has not been looked for yet). A skipped or unreviewed example is not in
the sample, so its tags and its corrected label count nowhere: not in the report's shares or
its incorrect-label accounting, not in the wide, long or corrections exports, not in the per-
reviewer counts, even when someone tagged it before putting it aside.

With a `reviewer` filter (one name or several) the sample narrows to the examples those
reviewers have a Review row for, and only their tags count. With a `confusion_pair`, to the
examples of that pair. Every report, export and count builds its WHERE clause from these
functions, so the rule cannot drift between them.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import ColumnElement, Select, exists, select, true

from labeltool.config import DEFAULT_SPLIT
from labeltool.eyeball import in_eyeball
from labeltool.models import REVIEWED_STATES, Example, Review, Tag
from labeltool.runs import in_run

#: One reviewer's name or several; None counts every reviewer.
Reviewers = str | Sequence[str] | None
#: (true label, predicted label), e.g. ("dog", "cat") for "dog-as-cat".
ConfusionPair = tuple[str, str] | None


def errors_that_count(project_id: int, run_id: int | None = None) -> list[ColumnElement[bool]]:
    """WHERE conditions on Example that select the errors that count: the misclassified dev
    examples of one run of the project (`run_id`, the latest by default) in its eyeball part
    (all of them when no share is set)."""
    return [
        *in_run(project_id, run_id),
        Example.split == DEFAULT_SPLIT,
        Example.is_error == true(),
        in_eyeball(project_id),
    ]


def in_reviewed_sample(
    *,
    project_id: int,
    reviewer: Reviewers = None,
    confusion_pair: ConfusionPair = None,
    run_id: int | None = None,
) -> list[ColumnElement[bool]]:
    """WHERE conditions on Example that select the examples in the reviewed sample."""
    conditions = [
        *errors_that_count(project_id, run_id),
        Example.review_state.in_(REVIEWED_STATES),
        *confusion_pair_conditions(confusion_pair),
    ]
    names = reviewer_names(reviewer)
    if names:
        conditions.append(
            exists().where(Review.example_pk == Example.id, Review.reviewer.in_(names))
        )
    return conditions


def reviewed_sample_ids(
    *,
    project_id: int,
    reviewer: Reviewers = None,
    confusion_pair: ConfusionPair = None,
    run_id: int | None = None,
) -> Select:
    """SELECT of the pks of the examples in the reviewed sample (for IN subqueries)."""
    return select(Example.id).where(
        *in_reviewed_sample(
            project_id=project_id, reviewer=reviewer, confusion_pair=confusion_pair, run_id=run_id
        )
    )


def counted_tags(
    *,
    project_id: int,
    reviewer: Reviewers = None,
    confusion_pair: ConfusionPair = None,
    run_id: int | None = None,
) -> list[ColumnElement[bool]]:
    """WHERE conditions on Tag that select the tags that count: on an example in the
    reviewed sample, and made by one of the counted reviewers (anyone, without a filter)."""
    sample = reviewed_sample_ids(
        project_id=project_id, reviewer=reviewer, confusion_pair=confusion_pair, run_id=run_id
    )
    return [Tag.example_pk.in_(sample), *tagged_by(reviewer)]


def tagged_by(reviewer: Reviewers) -> list[ColumnElement[bool]]:
    """WHERE conditions on Tag keeping the counted reviewers' tags (none without a filter)."""
    names = reviewer_names(reviewer)
    return [Tag.reviewer.in_(names)] if names else []


def confusion_pair_conditions(confusion_pair: ConfusionPair) -> list[ColumnElement[bool]]:
    """WHERE conditions on Example keeping one confusion pair (none without one)."""
    if confusion_pair is None:
        return []
    label, prediction = confusion_pair
    return [Example.label == label, Example.prediction == prediction]


def reviewer_names(reviewer: Reviewers) -> tuple[str, ...]:
    """The reviewer filter as a tuple of names; empty means every reviewer."""
    if reviewer is None:
        return ()
    if isinstance(reviewer, str):
        return (reviewer,)
    return tuple(reviewer)
