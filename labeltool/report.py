"""The error-analysis report: share of errors per category, its ceiling, and what to fix first.

"Reviewed errors" are the examples in the reviewed sample (`labeltool.sample`: of the errors
that count, the misclassified dev examples of the eyeball part, those "reviewed" or "needs
re-review"; skipped ones are not). The queue, the exports and this report count the same ones.
An example counts under a category when any reviewer tagged it. With a `reviewer` filter (one
name or several), the reviewed errors are those of the sample the reviewers have a Review row
for, and only their tags and reviews count.

For a category, its **share** is the reviewed errors tagged with it over the reviews that
could have used it (its `reviewed`, the denominator): the reviewed errors whose latest review
came after the category existed (a re-review renews it), plus any tagged with it; a category
added after N reviews is measured on the reviews after it. Shares need not add up to 1 (an
example may be in several categories). Each share has a Wilson 95% interval; the **ceiling**
is share x dev error, the most the dev error can fall (as a fraction of the dev set) if the
category is fixed perfectly, and **error after fix** is dev error - ceiling; both inherit the
share's interval. A share resting on fewer than TOO_FEW_TO_RANK reviews is flagged `too_few`;
a category no review could have used has no share (NaN, null in JSON), never a fake [0, 1].

The dev error is measured on the whole dev set (the blackbox part is there to measure it);
`misclassified` counts the errors that count (the eyeball part's, when a share is set).
Reviewed errors with no tag are *not yet explained*: a count and share of their own, apart
from the ranking and without a ceiling. Archived categories are left out unless asked for.

With a `confusion_pair=(label, prediction)` slice, the reviewed errors are restricted to that
pair, and the dev error used for ceilings is the pair's contribution to the dev error (pair
errors / dev examples), so ceilings stay fractions of the whole dev set.

Every count is a GROUP BY query; no function loads all examples into Python.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd
from sqlalchemy import ColumnElement, and_, case, exists, false, func, or_, select, true, union_all
from sqlalchemy.orm import Session, aliased
from sqlalchemy.sql import FromClause

from labeltool import double_review
from labeltool.config import DEFAULT_SPLIT
from labeltool.errors import InvalidInput
from labeltool.estimate import ShareEstimate, Stratum, direct, post_stratified
from labeltool.estimate import wilson_interval as wilson_interval  # the report's interval, too
from labeltool.models import (
    REVIEWED_STATES,
    AdjudicatedTag,
    Adjudication,
    Category,
    Example,
    Project,
    ReachedBy,
    Review,
    Scope,
    Tag,
)
from labeltool.report_cache import keep
from labeltool.review_queue import TOO_FEW_TO_RANK, sample_guidance
from labeltool.runs import in_run
from labeltool.sample import (
    ConfusionPair,
    Reviewers,
    confusion_pair_conditions,
    counted_tags,
    errors_that_count,
    in_reviewed_sample,
    reviewed_sample_ids,
    reviewer_names,
    tagged_by,
)

#: The columns of `ceiling_table`, in order.
CEILING_COLUMNS = (
    "category",
    "errors",
    "reviewed",
    "share",
    "ci_low",
    "ci_high",
    "ceiling",
    "ceiling_low",
    "ceiling_high",
    "error_after_fix",
    "error_after_fix_low",
    "error_after_fix_high",
    "too_few",
    "archived",
    "targeted_errors",
)
#: The columns holding fractions (NaN when no review could have used the category).
FRACTION_COLUMNS = CEILING_COLUMNS[3:12]
#: What the report calls the reviewed errors that no (counted) reviewer put in any category.
NOT_YET_EXPLAINED = "not yet explained"
#: Their row in the ceiling table: always last, apart from the ranking, without a ceiling.
NO_CATEGORY = "(no category)"
#: What every report says about its numbers (the text footer, `notes` in JSON).
NOTES = (
    "share: of the reviews that could have used the category (reviewed after it was added, or "
    "re-reviewed): `reviewed` is that denominator; categories overlap, so shares need not add "
    "up to 100%.",
    "ceiling: share x dev error, the most the dev error can fall if the category is fixed; "
    "error after fix: dev error - ceiling.",
    "Intervals are Wilson 95% and speak about the model's errors in general (the dev set is "
    "itself a sample); the ceiling and error-after-fix intervals are the share's interval "
    "times the dev error.",
    f"too_few: the share rests on fewer than {TOO_FEW_TO_RANK} reviews, too few to rank.",
    "The shares rest on the random reviews (the random queue of all errors, or of one "
    "confusion pair, weighted back by the pairs' sizes); reviews reached by another filter, "
    "the confidence order or by hand are targeted: counted (targeted_errors) but not estimated "
    "from. coverage: the share of the errors the random reviews speak for.",
    "not yet explained: reviewed errors in no category, apart from the ranking and without "
    "a ceiling.",
)
#: When incorrect labels explain at least this share of the errors, fixing labels is worth it.
LARGE_INCORRECT_LABEL_SHARE = 0.15

#: How an error several reviewers reviewed counts under a category (the `counting` of every
#: report function): "any" reviewer's tag; "consensus", only when every reviewer who reviewed
#: it and could have used the category tagged it; "adjudicated", the lead's decision where
#: one exists (labeltool.double_review), elsewhere as "any".
ANY, CONSENSUS, ADJUDICATED = "any", "consensus", "adjudicated"
COUNTING = (ADJUDICATED, CONSENSUS, ANY)
#: The default: the lead's decision where there is one. Without adjudications it is "any", so
#: the numbers of a project nobody adjudicated are what they always were.
DEFAULT_COUNTING = ADJUDICATED
#: Each counting mode in words, for the report's headline.
COUNTING_RULES = {
    ANY: "any reviewer's tag counts",
    CONSENSUS: "a category counts on an error only when every reviewer who reviewed it (and "
    "could have used the category) tagged it",
    ADJUDICATED: "the lead's decision where there is one; elsewhere any reviewer's tag counts",
}


@dataclass(frozen=True)
class Headline:
    """The numbers at the top of the report and how much to trust the shares below them."""

    dev_examples: int
    #: The errors that count (`labeltool.sample.errors_that_count`, of the confusion pair
    #: when the report is sliced by one): the eyeball part's when a share is set.
    misclassified: int
    #: The dev error over the whole dev set (or the pair's part of it).
    dev_error: float
    #: Reviewed errors: the reviewed sample.
    reviewed: int
    sample_guidance: str
    #: Reviewed errors in no category: not yet explained.
    not_yet_explained: int = 0
    #: The project's eyeball share (None: the whole dev set is reviewed).
    eyeball_fraction: float | None = None
    #: Reviewed errors that are a random sample (of all errors, or of one confusion pair):
    #: what the shares rest on; the others are `targeted` (counted, shown, not estimated from).
    random_reviews: int = 0
    targeted: int = 0
    #: The share of the errors that count that the random reviews speak for.
    coverage: float = 0.0
    #: Whether the shares weight confusion pairs by their sizes (some reviews came from one
    #: pair's random queue) rather than read the random reviews directly.
    stratified: bool = False
    #: Reviewed errors whose reviews were all carried over from the previous run.
    carried: int = 0
    #: Errors left unreviewed among the carried-over sample: errors of this run (new in it)
    #: that come before the last carried review in the random order. Until they are reviewed
    #: the random reviews lean towards the errors the previous run shared.
    carried_gap: int = 0
    #: How an error several reviewers reviewed counts (one of COUNTING).
    counting: str = DEFAULT_COUNTING
    #: Disagreements between reviewers of the run no lead has decided yet.
    awaiting_adjudication: int = 0
    #: A reviewer filter is set: only their tags count, so no lead's decision is used.
    filtered: bool = False

    @property
    def counting_sentence(self) -> str:
        """Which counting the numbers use and what is left to adjudicate, e.g. "Counting:
        adjudicated (the lead's decision where there is one; ...); 3 disagreements await
        adjudication"."""
        text = f"Counting: {self.counting} ({COUNTING_RULES[self.counting]})"
        if self.filtered and self.counting == ADJUDICATED:
            text += "; with a reviewer filter only their own tags count, not the lead's decisions"
        waiting = self.awaiting_adjudication
        if waiting:
            verb = "awaits" if waiting == 1 else "await"
            noun = "disagreement" if waiting == 1 else "disagreements"
            text += f"; {waiting} {noun} between reviewers {verb} adjudication"
        else:
            text += "; no disagreement awaits adjudication"
        return text

    @property
    def estimate_basis(self) -> str:
        """What the shares rest on, in words, e.g. "from 82 random reviews covering 100% of
        the errors; 12 targeted reviews not counted"."""
        reviews = "review" if self.random_reviews == 1 else "reviews"
        text = (
            f"from {self.random_reviews} random {reviews} covering {self.coverage:.1%} of the "
            "errors"
        )
        if self.stratified:
            text += ", confusion pairs weighted by their sizes"
        if self.targeted:
            targeted = "review" if self.targeted == 1 else "reviews"
            text += f"; {self.targeted} targeted {targeted} not counted"
        if self.carried:
            text += f"; {self.carried} carried over from the previous run"
        return text

    @property
    def carried_warning(self) -> str | None:
        """What a gap in the carried-over sample means, or None when there is none."""
        if not self.carried_gap:
            return None
        errors = "error" if self.carried_gap == 1 else "errors"
        sits = "sits" if self.carried_gap == 1 else "sit"
        return (
            f"{self.carried_gap} {errors} of this run {sits} unreviewed among the "
            f"{self.carried} reviews carried over from the previous run (in the random order): "
            "until they are reviewed the shares lean towards the errors both runs share. "
            "They come first in the random review queue"
        )

    @property
    def not_yet_explained_share(self) -> float | None:
        """not_yet_explained / reviewed; None with nothing reviewed."""
        return self.not_yet_explained / self.reviewed if self.reviewed else None


@dataclass(frozen=True)
class IncorrectLabelAccounting:
    """How much of the dev error is due to incorrect labels, and whether fixing them is urgent."""

    #: The categories that mark incorrect labels (usually one, "incorrectly labeled").
    categories: tuple[str, ...]
    #: Reviewed errors tagged with any of them, and their share of the reviews that could
    #: have used them (`reviewed`).
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
    reviewed: int = 0


@keep
def headline(
    session: Session,
    *,
    project_id: int,
    reviewer: Reviewers = None,
    confusion_pair: ConfusionPair = None,
    run_id: int | None = None,
    counting: str = DEFAULT_COUNTING,
) -> Headline:
    """Dev examples, misclassified, dev error and reviewed errors, with the sample guidance,
    the counting mode and how many disagreements await adjudication."""
    _check_counting(counting)
    dev_examples, dev_errors, misclassified = _dev_counts(
        session, project_id=project_id, confusion_pair=confusion_pair, run_id=run_id
    )
    reviewed = _reviewed_count(
        session,
        project_id=project_id,
        reviewer=reviewer,
        confusion_pair=confusion_pair,
        run_id=run_id,
    )
    untagged = _untagged_count(
        session,
        project_id=project_id,
        reviewer=reviewer,
        confusion_pair=confusion_pair,
        run_id=run_id,
        counting=counting,
    )
    design = _design(
        session,
        project_id=project_id,
        reviewer=reviewer,
        confusion_pair=confusion_pair,
        run_id=run_id,
    )
    return Headline(
        dev_examples=dev_examples,
        misclassified=misclassified,
        dev_error=dev_errors / dev_examples if dev_examples else 0.0,
        reviewed=reviewed,
        sample_guidance=sample_guidance(reviewed),
        not_yet_explained=untagged,
        eyeball_fraction=session.scalar(
            select(Project.eyeball_fraction).where(Project.id == project_id)
        ),
        random_reviews=design.random_reviews,
        targeted=design.targeted,
        coverage=design.coverage,
        stratified=design.stratified,
        **_carried(session, project_id=project_id, confusion_pair=confusion_pair, run_id=run_id),
        counting=counting,
        awaiting_adjudication=double_review.awaiting_adjudication(
            session, project_id=project_id, run_id=run_id
        ),
        filtered=bool(reviewer_names(reviewer)),
    )


@keep
def ceiling_table(
    session: Session,
    *,
    project_id: int,
    reviewer: Reviewers = None,
    confusion_pair: ConfusionPair = None,
    run_id: int | None = None,
    include_archived: bool = False,
    top: Headline | None = None,
    counting: str = DEFAULT_COUNTING,
) -> pd.DataFrame:
    """One row per category, worst first: by share of errors, categories without one after;
    then the NO_CATEGORY row of the errors not yet explained.

    Columns: CEILING_COLUMNS. Archived categories only with `include_archived` (flagged in
    `archived`; their names also in `frame.attrs["archived"]`). The NO_CATEGORY row is not
    part of the ranking: it has a share and its interval but no ceiling (NaN); its errors and
    share are also in `frame.attrs["not_yet_explained"]`. The counting mode (one of COUNTING)
    is in `frame.attrs["counting"]`.
    """
    if top is None:  # the caller may pass the headline it already has (one per rerun)
        top = headline(
            session,
            project_id=project_id,
            reviewer=reviewer,
            confusion_pair=confusion_pair,
            run_id=run_id,
            counting=counting,
        )
    counts = _category_counts(
        session,
        project_id=project_id,
        reviewer=reviewer,
        confusion_pair=confusion_pair,
        run_id=run_id,
        counting=counting,
    )
    if not include_archived:
        counts = [c for c in counts if not c.archived]
    sizes = (
        _pair_sizes(session, project_id=project_id, confusion_pair=confusion_pair, run_id=run_id)
        if top.stratified
        else None
    )
    rows = [_ceiling_row(c, top, sizes) for c in counts]
    rows.sort(
        key=lambda row: (
            math.isnan(row["share"]),
            -row["share"] if not math.isnan(row["share"]) else 0.0,
            row["category"].casefold(),
            row["category"],
        )
    )
    unexplained = _ceiling_row(
        _CategoryCount(
            name=NO_CATEGORY, archived=False, errors=top.not_yet_explained, reviewed=top.reviewed
        ),
        top,
    )
    rows.append(unexplained | {c: math.nan for c in CEILING_COLUMNS[6:12]})
    frame = pd.DataFrame(rows, columns=list(CEILING_COLUMNS))
    frame = frame.astype(
        {"category": "object", "errors": "int64", "reviewed": "int64"}
        | {c: "float64" for c in FRACTION_COLUMNS}
        | {"too_few": "bool", "archived": "bool", "targeted_errors": "int64"}
    )
    frame.attrs["archived"] = [c.name for c in counts if c.archived]
    frame.attrs["counting"] = counting
    frame.attrs["not_yet_explained"] = {
        "errors": top.not_yet_explained,
        "share": top.not_yet_explained_share,
    }
    return frame


def effort_ranking(
    session: Session,
    *,
    project_id: int,
    reviewer: Reviewers = None,
    confusion_pair: ConfusionPair = None,
    run_id: int | None = None,
    counting: str = DEFAULT_COUNTING,
) -> pd.DataFrame:
    """The second ranking: categories with an effort estimate, by ceiling per unit of effort.

    Columns: category, share, ceiling, effort, ceiling_per_effort (best value first).
    """
    table = ceiling_table(
        session,
        project_id=project_id,
        reviewer=reviewer,
        confusion_pair=confusion_pair,
        run_id=run_id,
        counting=counting,
    )
    efforts = {
        name: effort
        for name, effort in session.execute(
            select(Category.name, Category.effort).where(
                Category.project_id == project_id, Category.effort.is_not(None)
            )
        )
    }
    return rank_by_effort(table, efforts)


def rank_by_effort(table: pd.DataFrame, efforts: dict[str, float]) -> pd.DataFrame:
    """The second ranking from a ceiling table the caller already has: the categories with an
    effort in `efforts` ({name: effort}), by ceiling per unit of effort (best first).

    Columns: category, share, ceiling, effort, ceiling_per_effort.
    """
    efforts = {name: float(effort) for name, effort in efforts.items() if effort}
    ranked = ranked_categories(table)
    ranked = ranked[ranked["category"].isin(list(efforts))]
    ranked = ranked[["category", "share", "ceiling"]].copy()
    ranked["effort"] = ranked["category"].map(efforts).astype("float64")
    ranked["ceiling_per_effort"] = ranked["ceiling"] / ranked["effort"]
    ranked["_name"] = ranked["category"].str.casefold()
    ranked = ranked.sort_values(
        ["ceiling_per_effort", "_name"], ascending=[False, True], na_position="last"
    )
    return ranked.drop(columns="_name").reset_index(drop=True)


@keep
def incorrect_label_accounting(
    session: Session,
    *,
    project_id: int,
    reviewer: Reviewers = None,
    confusion_pair: ConfusionPair = None,
    run_id: int | None = None,
    top: Headline | None = None,
    counting: str = DEFAULT_COUNTING,
) -> IncorrectLabelAccounting | None:
    """Split the dev error into incorrect labels and other causes; None without such a category.

    An example tagged with several incorrect-label categories counts once; the share is
    estimated like a category's (random reviews only, pairs weighted by their sizes when some
    were reviewed in their own queues) from the reviews that could have used one of them.
    """
    marked = session.execute(
        select(Category.name, Category.created_at)
        .where(Category.project_id == project_id, Category.marks_incorrect_label == true())
        .order_by(Category.position, Category.id)
    ).all()
    if not marked:
        return None
    names = tuple(name for name, _ in marked)
    if top is None:  # the caller may pass the headline it already has (one per rerun)
        top = headline(
            session,
            project_id=project_id,
            reviewer=reviewer,
            confusion_pair=confusion_pair,
            run_id=run_id,
            counting=counting,
        )
    marked_ids = select(Category.id).where(
        Category.project_id == project_id, Category.marks_incorrect_label == true()
    )
    last = _last_reviews(
        project_id=project_id, reviewer=reviewer, confusion_pair=confusion_pair, run_id=run_id
    )
    earliest = select(func.min(Category.created_at)).where(
        Category.project_id == project_id, Category.marks_incorrect_label == true()
    )
    tags = _counted_tags(
        session,
        project_id=project_id,
        reviewer=reviewer,
        confusion_pair=confusion_pair,
        run_id=run_id,
        counting=counting,
    )
    tagged = exists().where(
        tags.example_pk == last.c.pk, tags.category_id.in_(marked_ids), *tags.conditions
    )
    # Like a category's share: from the random reviews that could have used one of them, by
    # confusion pair, so pairs reviewed in their own queues are weighted by their sizes.
    by_pair = {
        (label, prediction): (int(n), int(x))
        for label, prediction, n, x in session.execute(
            select(last.c.label, last.c.prediction, func.count(), func.count().filter(tagged))
            .where(
                last.c.design != _TARGETED,
                or_(last.c.at.is_(None), last.c.at >= earliest.scalar_subquery(), tagged),
            )
            .group_by(last.c.label, last.c.prediction)
        )
    }
    count = _CategoryCount(
        name=", ".join(names),
        archived=False,
        errors=sum(x for _, x in by_pair.values()),
        reviewed=sum(n for n, _ in by_pair.values()),
        by_pair=by_pair,
    )
    sizes = (
        _pair_sizes(session, project_id=project_id, confusion_pair=confusion_pair, run_id=run_id)
        if top.stratified
        else None
    )
    estimate = _estimate(count, top, sizes)
    errors, reviewed = count.errors, count.reviewed
    share = estimate.share or 0.0
    due = top.dev_error * share
    where = f" from {confusion_pair[0]}-as-{confusion_pair[1]}" if confusion_pair else ""
    sentence = (
        f"fixing labels could remove at most {due * 100:.1f} points of the "
        f"{top.dev_error:.1%} dev error{where}"
    )
    if reviewed < TOO_FEW_TO_RANK:
        hint = (
            f"Only {reviewed} reviewed {'error' if reviewed == 1 else 'errors'}: too "
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
        reviewed=reviewed,
    )


@keep
def reviewer_counts(
    session: Session,
    *,
    project_id: int,
    confusion_pair: ConfusionPair = None,
    run_id: int | None = None,
) -> pd.DataFrame:
    """Per reviewer: errors of the reviewed sample they reviewed, and the tags they put on them.

    Columns: reviewer, reviewed, tags; most reviewed first, then by name. Skipped examples
    are not in the sample, so neither their reviews nor their tags count here.
    """
    sample = reviewed_sample_ids(
        project_id=project_id, confusion_pair=confusion_pair, run_id=run_id
    )
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
            .where(
                *counted_tags(project_id=project_id, confusion_pair=confusion_pair, run_id=run_id)
            )
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
    run_id: int | None = None,
    include_archived: bool = False,
    counting: str = DEFAULT_COUNTING,
) -> dict:
    """The headline numbers, the ceiling table and what is not yet explained, JSON-ready,
    with the counting mode and the disagreements awaiting adjudication.

    A share (and its intervals) no review could have used is None (null), never a fake [0, 1].
    """
    top = headline(
        session,
        project_id=project_id,
        reviewer=reviewer,
        confusion_pair=confusion_pair,
        run_id=run_id,
        counting=counting,
    )
    table = ceiling_table(
        session,
        project_id=project_id,
        reviewer=reviewer,
        confusion_pair=confusion_pair,
        run_id=run_id,
        include_archived=include_archived,
        top=top,
        counting=counting,
    )
    categories = [
        {
            "category": str(row["category"]),
            "errors": int(row["errors"]),
            "reviewed": int(row["reviewed"]),
            **{column: json_number(row[column]) for column in FRACTION_COLUMNS},
            "too_few": bool(row["too_few"]),
            "archived": bool(row["archived"]),
            "targeted_errors": int(row["targeted_errors"]),
        }
        for row in ranked_categories(table).to_dict("records")
    ]
    unexplained = table.iloc[-1]
    return {
        "dev_examples": top.dev_examples,
        "misclassified": top.misclassified,
        "dev_error": top.dev_error,
        "reviewed": top.reviewed,
        "eyeball_fraction": top.eyeball_fraction,
        "random_reviews": top.random_reviews,
        "targeted": top.targeted,
        "coverage": top.coverage,
        "stratified": top.stratified,
        "carried": top.carried,
        "carried_gap": top.carried_gap,
        "estimate_basis": top.estimate_basis,
        "categories": categories,
        "not_yet_explained": {
            "errors": top.not_yet_explained,
            **{
                column: json_number(unexplained[column])
                for column in ("share", "ci_low", "ci_high")
            },
        },
        "notes": list(NOTES),
        "counting": top.counting,
        "counting_sentence": top.counting_sentence,
        "awaiting_adjudication": top.awaiting_adjudication,
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
    part = (
        ""
        if top.eyeball_fraction is None
        else f" in the eyeball part ({top.eyeball_fraction:.1%} of the dev set)"
    )
    if confusion_pair is None:
        lines.append(
            f"{top.dev_examples} dev examples (dev error {top.dev_error:.1%}), "
            f"{top.misclassified} misclassified{part}, {top.reviewed} reviewed {errors}"
        )
    else:
        lines.append(
            f"{top.dev_examples} dev examples, {confusion_pair[0]}-as-{confusion_pair[1]} "
            f"{top.dev_error:.1%} of the dev set (the dev error these ceilings refer to), "
            f"{top.misclassified} misclassified as it{part}, {top.reviewed} reviewed {errors}"
        )
    lines.append(top.sample_guidance)
    lines.append(f"{top.counting_sentence}.")
    if top.reviewed:
        lines.append(f"The shares are estimated {top.estimate_basis}.")
    if top.carried_warning:
        lines.append(f"{top.carried_warning}.")
    lines.append("")
    if top.reviewed == 0:
        lines.append("No errors reviewed yet: no shares, intervals or ceilings to show.")
    else:
        lines.extend(_table_lines(ranked_categories(table)))
        lines.append("")
        share = top.not_yet_explained_share or 0.0
        lines.append(
            f"Not yet explained: {top.not_yet_explained} of the {top.reviewed} reviewed "
            f"{errors} ({share:.1%}) are in no category."
        )
    lines.append("")
    lines.extend(NOTES)
    if accounting is not None:
        lines.append(f"Incorrectly labeled: {accounting.sentence}. {accounting.hint}")
    return "\n".join(lines) + "\n"


# --- private helpers -------------------------------------------------------------------


@dataclass(frozen=True)
class _CategoryCount:
    name: str
    archived: bool
    #: Random reviews tagged with the category (the numerator).
    errors: int
    #: Random reviews that could have used it (the denominator).
    reviewed: int
    #: Per confusion pair: (random reviews that could have used it, of them tagged with it).
    by_pair: dict[tuple[str, str], tuple[int, int]] | None = None
    #: Targeted reviews tagged with it: counted and shown, not estimated from.
    targeted_errors: int = 0


@dataclass(frozen=True)
class _Design:
    """How the reviewed sample was reached, overall."""

    random_reviews: int
    targeted: int
    coverage: float
    stratified: bool


#: How a reviewed example's first review reached it, for the estimate (labeltool.estimate).
_ALL, _PAIR, _TARGETED = "all", "pair", "targeted"
_TARGETED_WAYS = tuple(way.value for way in ReachedBy if not way.is_random)


def _dev_counts(
    session: Session, *, project_id: int, confusion_pair: ConfusionPair, run_id: int | None = None
) -> tuple[int, int, int]:
    """Dev examples, dev errors (of the pair, when given) and the errors that count among
    them, in one query."""
    pair = confusion_pair_conditions(confusion_pair)
    total, errors, counted = session.execute(
        select(
            func.count(),
            func.count().filter(and_(Example.is_error == true(), *pair)),
            func.count().filter(and_(*errors_that_count(project_id, run_id), *pair)),
        ).where(*in_run(project_id, run_id), Example.split == DEFAULT_SPLIT)
    ).one()
    return int(total), int(errors), int(counted)


def _carried(
    session: Session, *, project_id: int, confusion_pair: ConfusionPair, run_id: int | None
) -> dict[str, int]:
    """{"carried": reviewed errors whose reviews were all carried over, "carried_gap": errors
    not reviewed that come before the last of them in the random order} (see Headline)."""
    errors = [*errors_that_count(project_id, run_id), *confusion_pair_conditions(confusion_pair)]
    own = exists().where(Review.example_pk == Example.id, Review.carried == false())
    carried_one = exists().where(Review.example_pk == Example.id, Review.carried == true())
    carried, last_key = session.execute(
        select(func.count(), func.max(Example.shuffle_key)).where(
            *errors, Example.review_state.in_(REVIEWED_STATES), carried_one, ~own
        )
    ).one()
    if not carried:
        return {"carried": 0, "carried_gap": 0}
    gap = session.scalar(
        select(func.count()).where(
            *errors, ~Example.review_state.in_(REVIEWED_STATES), Example.shuffle_key < last_key
        )
    )
    return {"carried": int(carried), "carried_gap": int(gap or 0)}


def _reviewed_count(
    session: Session,
    *,
    project_id: int,
    reviewer: Reviewers,
    confusion_pair: ConfusionPair,
    run_id: int | None = None,
) -> int:
    conditions = in_reviewed_sample(
        project_id=project_id, reviewer=reviewer, confusion_pair=confusion_pair, run_id=run_id
    )
    return int(session.scalar(select(func.count()).select_from(Example).where(*conditions)) or 0)


def _last_reviews(
    *,
    project_id: int,
    reviewer: Reviewers,
    confusion_pair: ConfusionPair,
    run_id: int | None = None,
):
    """Subquery (pk, at, carried, label, prediction, design): each example of the reviewed
    sample, its counted reviewers' latest review time (NULL without a Review row: when it was
    looked at is unknown), whether all those reviews were carried over from the previous run
    (1) or not (0), its confusion pair, and how its first review reached it (_ALL: the random queue
    of all errors, _PAIR: one pair's random queue, _TARGETED: anything else; examples with no
    Review row count as the random queue, the review screen's default)."""
    names = reviewer_names(reviewer)
    latest = (
        select(
            Review.example_pk.label("pk"),
            func.max(Review.reviewed_at).label("at"),
            # 1 when every counted review was carried over from the previous run.
            func.min(case((Review.carried == true(), 1), else_=0)).label("carried"),
        )
        .where(
            Review.example_pk.in_(
                reviewed_sample_ids(
                    project_id=project_id,
                    reviewer=reviewer,
                    confusion_pair=confusion_pair,
                    run_id=run_id,
                )
            ),
            *([Review.reviewer.in_(names)] if names else []),
        )
        .group_by(Review.example_pk)
        .subquery()
    )
    first, design = _first_reached()
    return (
        select(
            Example.id.label("pk"),
            latest.c.at,
            latest.c.carried,
            Example.label,
            Example.prediction,
            design.label("design"),
        )
        .select_from(Example)
        .outerjoin(latest, latest.c.pk == Example.id)
        .outerjoin(first, first.c.pk == Example.id)
        .where(
            *in_reviewed_sample(
                project_id=project_id,
                reviewer=reviewer,
                confusion_pair=confusion_pair,
                run_id=run_id,
            )
        )
        .subquery()
    )


def _first_reached():
    """(subquery (pk, reached) of each reviewed example's first review, and the CASE naming
    its design: _ALL, _PAIR or _TARGETED; _ALL without a Review row)."""
    first = (
        select(Review.example_pk.label("pk"), Review.reached.label("reached"))
        .where(Review.id.in_(select(func.min(Review.id)).group_by(Review.example_pk)))
        .subquery()
    )
    design = case(
        (first.c.reached.in_(_TARGETED_WAYS), _TARGETED),
        (first.c.reached == ReachedBy.RANDOM_IN_PAIR.value, _PAIR),
        else_=_ALL,
    )
    return first, design


def _pair_sizes(
    session: Session, *, project_id: int, confusion_pair: ConfusionPair, run_id: int | None = None
) -> dict[tuple[str, str], int]:
    """{(label, prediction): errors that count} for every confusion pair (or the one given)."""
    rows = session.execute(
        select(Example.label, Example.prediction, func.count())
        .where(*errors_that_count(project_id, run_id), *confusion_pair_conditions(confusion_pair))
        .group_by(Example.label, Example.prediction)
    ).all()
    return {(label, prediction): int(n) for label, prediction, n in rows}


def _design(
    session: Session,
    *,
    project_id: int,
    reviewer: Reviewers,
    confusion_pair: ConfusionPair,
    run_id: int | None = None,
) -> _Design:
    """Random and targeted reviews, whether pairs must be weighted, and the coverage."""
    first, design = _first_reached()  # no review times needed here: a lighter query
    rows = session.execute(
        select(Example.label, Example.prediction, design, func.count())
        .select_from(Example)
        .outerjoin(first, first.c.pk == Example.id)
        .where(
            *in_reviewed_sample(
                project_id=project_id,
                reviewer=reviewer,
                confusion_pair=confusion_pair,
                run_id=run_id,
            )
        )
        .group_by(Example.label, Example.prediction, design)
    ).all()
    random = {(label, prediction) for label, prediction, design, _ in rows if design != _TARGETED}
    random_reviews = sum(n for *_, design, n in rows if design != _TARGETED)
    targeted = sum(n for *_, design, n in rows if design == _TARGETED)
    stratified = any(design == _PAIR for *_, design, _ in rows)
    coverage = 1.0 if random_reviews else 0.0
    if stratified:
        sizes = _pair_sizes(
            session, project_id=project_id, confusion_pair=confusion_pair, run_id=run_id
        )
        total = sum(sizes.values())
        coverage = sum(n for pair, n in sizes.items() if pair in random) / total if total else 0.0
    return _Design(random_reviews, targeted, coverage, stratified)


def _category_counts(
    session: Session,
    *,
    project_id: int,
    reviewer: Reviewers,
    confusion_pair: ConfusionPair,
    run_id: int | None = None,
    counting: str = DEFAULT_COUNTING,
) -> list[_CategoryCount]:
    """Per category (archived ones too), by confusion pair and by how the reviews were reached:
    reviewed errors tagged with it (distinct examples), and the reviews that could have used
    it: latest review at or after the category was created (timestamps compared in SQL), or no
    Review row, plus those tagged with it. Random reviews make the numerator and denominator;
    targeted ones are only counted (`targeted_errors`)."""
    last = _last_reviews(
        project_id=project_id, reviewer=reviewer, confusion_pair=confusion_pair, run_id=run_id
    )
    by = (last.c.label, last.c.prediction, last.c.design)
    categories = session.execute(
        select(
            Category.id, Category.name, Category.archived, Category.created_at, Category.scope
        ).where(Category.project_id == project_id)
    ).all()
    # One pass over the tags of the sample: each category's tagged examples, and those of
    # them last reviewed before it existed (they could use it: they were tagged with it).
    tags = _counted_tags(
        session,
        project_id=project_id,
        reviewer=reviewer,
        confusion_pair=confusion_pair,
        run_id=run_id,
        counting=counting,
    )
    before = case((last.c.at < Category.created_at, tags.example_pk))
    tagged_rows = session.execute(
        select(
            tags.category_id,
            *by,
            func.count(tags.example_pk.distinct()),
            func.count(before.distinct()),
        )
        .select_from(tags.source)
        .join(last, last.c.pk == tags.example_pk)
        .join(Category, Category.id == tags.category_id)
        .where(Category.project_id == project_id, *tags.conditions)
        .group_by(tags.category_id, *by)
    ).all()
    tagged = [
        (pk, label, prediction, design, n) for pk, label, prediction, design, n, _ in tagged_rows
    ]
    tagged_before = [
        (pk, label, prediction, design, b) for pk, label, prediction, design, _, b in tagged_rows
    ]
    # One pass over the sample: per category, the examples last reviewed after it existed
    # (or with no Review row), as a conditional count per category.
    since: list[tuple] = []
    if categories:
        counted = [
            func.sum(case((_could_use(last, created, scope), 1), else_=0))
            for _, _, _, created, scope in categories
        ]
        for label, prediction, design, *per_category in session.execute(
            select(*by, *counted).group_by(*by)
        ):
            since += [
                (pk, label, prediction, design, int(n or 0))
                for (pk, *_), n in zip(categories, per_category, strict=True)
            ]
    numerator: dict[int, dict] = {}
    denominator: dict[int, dict] = {}
    targeted: dict[int, int] = {}
    for pk, label, prediction, design, n in tagged:
        if design == _TARGETED:
            targeted[pk] = targeted.get(pk, 0) + int(n)
        else:
            cell = numerator.setdefault(pk, {})
            cell[(label, prediction)] = cell.get((label, prediction), 0) + int(n)
    for pk, label, prediction, design, n in [*since, *tagged_before]:
        if design != _TARGETED:
            cell = denominator.setdefault(pk, {})
            cell[(label, prediction)] = cell.get((label, prediction), 0) + int(n)
    counts = []
    for pk, name, archived, *_ in categories:
        pairs = denominator.get(pk, {})
        hits = numerator.get(pk, {})
        counts.append(
            _CategoryCount(
                name=name,
                archived=bool(archived),
                errors=sum(hits.values()),
                reviewed=sum(pairs.values()),
                by_pair={pair: (n, hits.get(pair, 0)) for pair, n in pairs.items()},
                targeted_errors=targeted.get(pk, 0),
            )
        )
    return counts


def _could_use(last, created, scope: str):
    """Whether a review in `last` could have used a category created at `created`: made at or
    after it (or with no Review row: when is unknown); for an error-scope category, also not
    carried over from the previous run (a carried review looked at image categories only)."""
    condition = or_(last.c.at.is_(None), last.c.at >= created)
    if scope == Scope.ERROR.value:
        condition = and_(condition, func.coalesce(last.c.carried, 0) == 0)
    return condition


def _untagged_count(
    session: Session,
    *,
    project_id: int,
    reviewer: Reviewers,
    confusion_pair: ConfusionPair,
    run_id: int | None = None,
    counting: str = DEFAULT_COUNTING,
) -> int:
    """Reviewed errors in no category, as the counting mode counts them."""
    tags = _counted_tags(
        session,
        project_id=project_id,
        reviewer=reviewer,
        confusion_pair=confusion_pair,
        run_id=run_id,
        counting=counting,
    )
    tagged = exists().where(tags.example_pk == Example.id, *tags.conditions)
    conditions = in_reviewed_sample(
        project_id=project_id, reviewer=reviewer, confusion_pair=confusion_pair, run_id=run_id
    )
    return int(
        session.scalar(select(func.count()).select_from(Example).where(*conditions, ~tagged)) or 0
    )


def _ceiling_row(
    count: _CategoryCount, top: Headline, sizes: dict[tuple[str, str], int] | None = None
) -> dict:
    """A ceiling table row; NaN fractions when no random review could have used the category.

    The share is estimated from the random reviews (labeltool.estimate): read directly, or,
    when some came from one pair's queue, weighted back by the pairs' `sizes`.
    """
    estimate = _estimate(count, top, sizes)
    share = math.nan if estimate.share is None else estimate.share
    low = math.nan if estimate.low is None else estimate.low
    high = math.nan if estimate.high is None else estimate.high
    return {
        "category": count.name,
        "errors": count.errors,
        "reviewed": count.reviewed,
        "share": share,
        "ci_low": low,
        "ci_high": high,
        "ceiling": share * top.dev_error,
        "ceiling_low": low * top.dev_error,
        "ceiling_high": high * top.dev_error,
        "error_after_fix": top.dev_error - share * top.dev_error,
        "error_after_fix_low": top.dev_error - high * top.dev_error,
        "error_after_fix_high": top.dev_error - low * top.dev_error,
        "too_few": count.reviewed < TOO_FEW_TO_RANK,
        "archived": count.archived,
        "targeted_errors": count.targeted_errors,
    }


def _estimate(
    count: _CategoryCount, top: Headline, sizes: dict[tuple[str, str], int] | None
) -> ShareEstimate:
    if not (top.stratified and sizes and count.by_pair is not None):
        return direct(count.errors, count.reviewed)
    return post_stratified(
        [
            Stratum(errors=size, reviewed=n, tagged=tagged)
            for pair, size in sizes.items()
            for n, tagged in [count.by_pair.get(pair, (0, 0))]
        ]
    )


def ranked_categories(table: pd.DataFrame) -> pd.DataFrame:
    """The ceiling table without the NO_CATEGORY row (always last): the ranked categories."""
    return table.iloc[:-1]


def json_number(value) -> float | None:
    """A float for JSON, None for NaN (no share)."""
    value = float(value)
    return None if math.isnan(value) else value


def _table_lines(table: pd.DataFrame) -> list[str]:
    """The ceiling table as aligned text lines, in percent; "-" where there is no share."""
    header = (
        "category",
        "errors",
        "reviewed",
        "share",
        "95% interval",
        "ceiling",
        "95% interval",
        "error after fix",
        "95% interval",
    )

    def pct(value: float, digits: int) -> str:
        return "-" if math.isnan(value) else f"{value:.{digits}%}"

    def span(low: float, high: float, digits: int) -> str:
        return "-" if math.isnan(low) else f"{pct(low, digits)} - {pct(high, digits)}"

    cells = []
    for row in table.itertuples(index=False):
        name = str(row.category)
        if row.archived:
            name += " (archived)"
        if row.too_few:
            name += " *"
        cells.append(
            (
                name,
                str(int(row.errors)),
                str(int(row.reviewed)),
                pct(row.share, 1),
                span(row.ci_low, row.ci_high, 1),
                pct(row.ceiling, 2),
                span(row.ceiling_low, row.ceiling_high, 2),
                pct(row.error_after_fix, 2),
                span(row.error_after_fix_low, row.error_after_fix_high, 2),
            )
        )
    widths = [max(len(r[i]) for r in [header, *cells]) for i in range(len(header))]
    lines = []
    for record in [header, *cells]:
        first = record[0].ljust(widths[0])
        rest = (value.rjust(width) for value, width in zip(record[1:], widths[1:], strict=True))
        lines.append("  ".join([first, *rest]).rstrip())
    if any(table["too_few"]):
        lines.append(f"* fewer than {TOO_FEW_TO_RANK} reviews could have used it: too few to rank")
    return lines


@dataclass(frozen=True)
class _Tags:
    """The tags that count under a counting mode, as (example_pk, category_id) rows of
    `source` that meet `conditions`."""

    source: FromClause
    example_pk: ColumnElement
    category_id: ColumnElement
    conditions: tuple = ()


def _check_counting(counting: str) -> None:
    if counting not in COUNTING:
        raise InvalidInput(f"unknown counting '{counting}' (use one of: {', '.join(COUNTING)})")


def _counted_tags(
    session: Session,
    *,
    project_id: int,
    reviewer: Reviewers,
    confusion_pair: ConfusionPair,
    run_id: int | None,
    counting: str,
) -> _Tags:
    """The tags the report counts under `counting` (COUNTING): the Tag table itself for
    "any" (and for "adjudicated" when no lead has decided anything in the project, or with a
    reviewer filter, which counts only those reviewers' own tags); else a subquery over the
    reviewed sample's tags."""
    _check_counting(counting)
    names = reviewer_names(reviewer)
    if counting == ADJUDICATED and (names or not _any_adjudication(session, project_id)):
        counting = ANY
    if counting == ANY:
        return _Tags(Tag.__table__, Tag.example_pk, Tag.category_id, tuple(tagged_by(reviewer)))
    sample = reviewed_sample_ids(
        project_id=project_id, reviewer=reviewer, confusion_pair=confusion_pair, run_id=run_id
    )
    if counting == CONSENSUS:
        # A tag counts unless one of the example's (counted) reviewers could have used the
        # category and did not tag it.
        theirs = aliased(Tag)
        dissent = (
            exists()
            .where(
                Review.example_pk == Tag.example_pk,
                *([Review.reviewer.in_(names)] if names else []),
                Review.reviewed_at >= Category.created_at,
                or_(Category.scope != Scope.ERROR.value, Review.carried == false()),
                ~exists()
                .where(
                    theirs.example_pk == Review.example_pk,
                    theirs.category_id == Tag.category_id,
                    theirs.reviewer == Review.reviewer,
                )
                .correlate_except(theirs),
            )
            .correlate_except(Review)
        )
        rows = (
            select(Tag.example_pk.label("example_pk"), Tag.category_id.label("category_id"))
            .join(Category, Category.id == Tag.category_id)
            .where(Tag.example_pk.in_(sample), *tagged_by(reviewer), ~dissent)
            .subquery()
        )
    else:
        # The lead's categories on the examples they decided, everyone's tags elsewhere.
        decided = exists().where(Adjudication.example_pk == Tag.example_pk)
        rows = union_all(
            select(AdjudicatedTag.example_pk, AdjudicatedTag.category_id).where(
                AdjudicatedTag.example_pk.in_(sample)
            ),
            select(Tag.example_pk, Tag.category_id).where(Tag.example_pk.in_(sample), ~decided),
        ).subquery()
    return _Tags(rows, rows.c.example_pk, rows.c.category_id)


def _any_adjudication(session: Session, project_id: int) -> bool:
    """Whether a lead has decided any example of the project."""
    return bool(
        session.scalar(
            select(
                exists().where(
                    Adjudication.example_pk == Example.id, Example.project_id == project_id
                )
            )
        )
    )
