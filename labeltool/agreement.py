"""Do reviewers agree? Inter-reviewer agreement on each error category.

A category's share of errors is only as good as the reviewers' judgement of it: when two
people reviewing the same error disagree about "blurry" half the time, its share measures the
reviewers as much as the model. When several reviewers review the same errors, each live
category gets a chance-corrected agreement coefficient over those errors.

**Ratings.** A reviewer with a Review row on an example judged every category they could have
used there: a tag is a "yes", no tag a "no". The rule is the report's (labeltool.report): a
review could use a category when it was made (or re-made) at or after the category was
created, and, for an error-scope category, was not carried over from the previous run (a
carried review looked at image categories only); a tag always counts as a "yes". A reviewer
whose review came before a category says nothing about it. The examples are the run's
reviewed sample (labeltool.sample); an example counts for a category when two or more
reviewers rated it.

**Statistic.** When exactly two reviewers rated a category's examples, it is **Cohen's kappa**
(each reviewer's own base rate). With more reviewers, or different pairs on different
examples, it is **Krippendorff's alpha** for nominal data, which takes any number of raters
per example and missing ratings (Krippendorff 2011, "Computing Krippendorff's alpha-
reliability"). Both are 1 for perfect agreement, 0 for agreement at chance. Neither is
defined when every rating is the same (everyone always said no): the row says why, with no
number. The reading is Landis & Koch's (1977): below 0 poor, up to 0.20 slight, 0.40 fair,
0.60 moderate, 0.80 substantial, above that almost perfect.

**Interval.** 95% percentile bootstrap over the examples (RESAMPLES resamples, a fixed seed,
so the same data gives the same interval). Both coefficients depend on an example only through
its *pattern* of ratings (for kappa, which reviewer said what; for alpha, how many raters and
how many yes), and there are few patterns, so resampling examples is drawing the patterns'
counts from a multinomial: exact, and as fast at 100,000 examples as at 100. Resamples where
the coefficient is undefined are left out. A percentile bootstrap is used rather than an
analytic standard error because kappa's is only asymptotic and alpha has no simple one.

Three queries (categories, the reviews of examples with two or more reviewers, their tags);
the maths is numpy.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields

import numpy as np
import pandas as pd
from sqlalchemy import case, func, literal, select
from sqlalchemy.orm import Session

from labeltool.models import Category, Review, Scope, Tag
from labeltool.sample import reviewed_sample_ids

COHEN = "Cohen's kappa"
KRIPPENDORFF = "Krippendorff's alpha"
#: Bootstrap resamples for the interval, and the seed that makes it repeatable.
RESAMPLES = 1000
SEED = 20240611
#: Landis & Koch (1977): below 0 "poor", then the highest value of each reading; above the
#: last, "almost perfect".
POOR = "poor"
READINGS = ((0.20, "slight"), (0.40, "fair"), (0.60, "moderate"), (0.80, "substantial"))
ALMOST_PERFECT = "almost perfect"


@dataclass(frozen=True)
class CategoryAgreement:
    """How well the reviewers agree on one category, over the errors two or more rated."""

    category: str
    #: Reviewed errors that two or more reviewers rated for this category.
    examples: int
    #: Reviewers who rated any of them.
    reviewers: int
    #: Ratings that were a "yes" (a tag), out of all the ratings on those examples.
    yes: int
    ratings: int
    #: COHEN (two reviewers) or KRIPPENDORFF (more, or different pairs).
    statistic: str
    #: Kappa or alpha; None when undefined (see `reason`).
    coefficient: float | None
    #: The 95% bootstrap interval of the coefficient (None when undefined).
    ci_low: float | None
    ci_high: float | None
    #: The share of agreeing ratings, and the share expected by chance (None when undefined).
    observed_agreement: float
    chance_agreement: float | None
    #: Landis & Koch's word for the coefficient, e.g. "substantial".
    reading: str | None
    #: Why there is no coefficient, or None.
    reason: str | None = None


#: The columns of `to_frame`, in order (the CLI's table and CSV).
COLUMNS = tuple(f.name for f in fields(CategoryAgreement))


def agreement(
    session: Session, *, project_id: int, run_id: int | None = None
) -> list[CategoryAgreement]:
    """Each live category's agreement over the run's reviewed errors that two or more
    reviewers rated, worst first (undefined ones last). Empty when no error has two reviewers
    (see `why_empty`). Categories no shared review could use have no row."""
    # In the order they were created: the categories a review could use are a prefix of it.
    categories = session.execute(
        select(Category.id, Category.name, Category.scope, Category.created_at)
        .where(*_live(project_id))
        .order_by(Category.created_at, Category.id)
    ).all()
    if not categories:
        return []
    reviews = _shared_reviews(
        session, project_id=project_id, run_id=run_id, created=[c[-1] for c in categories]
    )
    if reviews.empty:
        return []
    tags = _frame(
        session.connection().execute(
            select(Tag.example_pk, Tag.reviewer, Tag.category_id).where(
                Tag.example_pk.in_(shared_examples(project_id=project_id, run_id=run_id)),
                Tag.category_id.in_([pk for pk, *_ in categories]),
            )
        ),
        ["example_pk", "reviewer", "category_id"],
    )
    # Each tag onto its reviewer's review of the example (tags with no review say nothing).
    rows = reviews.reset_index(names="row")[["example_pk", "reviewer", "row"]]
    tags = tags.merge(rows, on=["example_pk", "reviewer"])
    unit = pd.factorize(reviews["example_pk"])[0]
    rater = pd.factorize(reviews["reviewer"], sort=True)[0]
    existed = reviews["existed"].to_numpy(dtype=int)
    carried = reviews["carried"].to_numpy(dtype=bool)
    results = []
    for created, (pk, name, scope, _) in enumerate(categories):
        tagged = np.zeros(len(reviews), dtype=bool)
        tagged[tags.loc[tags["category_id"] == pk, "row"].to_numpy(dtype=int)] = True
        could_use = existed > created
        if scope == Scope.ERROR.value:
            could_use &= ~carried
        rated = tagged | could_use
        row = _category_agreement(name, unit[rated], rater[rated], tagged[rated])
        if row is not None:
            results.append(row)
    return sorted(results, key=lambda r: (r.coefficient is None, r.coefficient or 0.0))


def why_empty(session: Session, *, project_id: int, run_id: int | None = None) -> str:
    """One sentence saying why `agreement` has no rows, to show in its place."""
    reviewers = session.scalar(
        select(func.count(Review.reviewer.distinct())).where(
            Review.example_pk.in_(reviewed_sample_ids(project_id=project_id, run_id=run_id))
        )
    )
    live = session.scalar(select(func.count()).where(*_live(project_id)))
    how = "agreement needs two reviewers who review and tag the same errors."
    if not reviewers:
        return f"Nobody has reviewed an error of this run yet: {how}"
    if reviewers == 1:
        return f"Only one reviewer has reviewed errors of this run: {how}"
    if not session.scalar(
        select(func.count()).select_from(
            shared_examples(project_id=project_id, run_id=run_id).subquery()
        )
    ):
        return f"No error of this run has been reviewed by two reviewers yet: {how}"
    if not live:
        return "The project has no live category to agree on."
    return (
        "No category existed when two reviewers reviewed the same error: a category counts "
        "the reviews made after it was added, so have them re-review the errors they share."
    )


def to_frame(rows: Sequence[CategoryAgreement]) -> pd.DataFrame:
    """The rows as a table with the COLUMNS (empty, with those columns, when there are none);
    undefined numbers are NaN."""
    frame = pd.DataFrame([asdict(r) for r in rows], columns=list(COLUMNS))
    for column in ("coefficient", "ci_low", "ci_high", "observed_agreement", "chance_agreement"):
        frame[column] = frame[column].astype(float)
    return frame


def reading(coefficient: float | None) -> str | None:
    """Landis & Koch's reading of a kappa (or alpha): "slight", "fair", ... "almost perfect"."""
    if coefficient is None:
        return None
    coefficient = round(coefficient, 12)  # floating-point dust on 0 is not "poor"
    if coefficient < 0:
        return POOR
    for highest, word in READINGS:
        if coefficient <= highest:
            return word
    return ALMOST_PERFECT


def nominal_alpha(value_counts: np.ndarray) -> float | None:
    """Krippendorff's alpha for nominal data from `value_counts`, one row per unit: how many
    raters gave it each value (a column per value). Units with fewer than two ratings are not
    pairable and drop out. None when every pairable rating is the same value."""
    alpha = _alpha(np.asarray(value_counts, dtype=float), None)[0][0]
    return None if np.isnan(alpha) else float(alpha)


def cohen_kappa(first: Sequence[int], second: Sequence[int]) -> float | None:
    """Cohen's kappa of two raters' yes/no (1/0) ratings of the same examples; None when
    undefined (both raters gave one and the same answer throughout)."""
    pattern = 2 * np.asarray(first, dtype=int) + np.asarray(second, dtype=int)
    kappa = _kappa(np.bincount(pattern, minlength=4).astype(float))[0][0]
    return None if np.isnan(kappa) else float(kappa)


# --- helpers ---------------------------------------------------------------------------------


def shared_examples(*, project_id: int, run_id: int | None):
    """SELECT of the pks of the reviewed sample's examples with two or more Review rows (the
    errors agreement, and labeltool.double_review's disagreements, are about)."""
    return (
        select(Review.example_pk)
        .where(Review.example_pk.in_(reviewed_sample_ids(project_id=project_id, run_id=run_id)))
        .group_by(Review.example_pk)
        .having(func.count() >= 2)
    )


def _shared_reviews(
    session: Session, *, project_id: int, run_id: int | None, created: Sequence
) -> pd.DataFrame:
    """The Review rows of `shared_examples`: example_pk, reviewer, carried, and `existed`, how
    many of the `created` times (the live categories', in order) came at or before the review
    was made (or re-made). Compared in SQL, as the report does, so no timestamp is brought into
    Python: one CASE per category, cheaper than a correlated count of the categories."""
    existed = sum(
        (case((Review.reviewed_at >= moment, 1), else_=0) for moment in created),
        start=literal(0),
    )
    statement = select(
        Review.example_pk, Review.reviewer, Review.carried, existed.label("existed")
    ).where(Review.example_pk.in_(shared_examples(project_id=project_id, run_id=run_id)))
    # Through the connection: plain rows, without the ORM's per-row work.
    return _frame(
        session.connection().execute(statement), ["example_pk", "reviewer", "carried", "existed"]
    )


def _live(project_id: int) -> list:
    """WHERE conditions on Category keeping the project's live (not archived) categories."""
    return [Category.project_id == project_id, Category.archived.is_(False)]


def _frame(result, columns: list[str]) -> pd.DataFrame:
    """A query's rows as a DataFrame, built column by column (several times faster than
    handing pandas the Row objects)."""
    values = list(zip(*result.all(), strict=True)) or [()] * len(columns)
    return pd.DataFrame({name: list(column) for name, column in zip(columns, values, strict=True)})


def _category_agreement(
    name: str, unit: np.ndarray, rater: np.ndarray, yes: np.ndarray
) -> CategoryAgreement | None:
    """The row of one category from its ratings (unit, rater, yes), or None when no unit has
    two ratings."""
    ratings_per_unit = np.bincount(unit)
    pairable = ratings_per_unit[unit] >= 2
    unit, rater, yes = unit[pairable], rater[pairable], yes[pairable]
    if not len(unit):
        return None
    # Counts rather than np.unique: no sorting of the ratings, per category.
    raters = np.flatnonzero(np.bincount(rater))
    used = np.flatnonzero(np.bincount(unit))
    if len(raters) == 2:
        statistic = COHEN
        # Each example's pattern: 2 x the first reviewer's answer + the second's.
        answers = np.zeros((2, unit.max() + 1), dtype=int)
        answers[(rater == raters[1]).astype(int), unit] = yes
        patterns = np.bincount(2 * answers[0, used] + answers[1, used], minlength=4)
        patterns = patterns.astype(float)
        estimate, observed, chance = (float(v[0]) for v in _kappa(patterns))
        resample = _kappa
    else:
        statistic = KRIPPENDORFF
        # Each example's pattern: (raters who said no, raters who said yes), coded as one
        # number to count the patterns.
        n_raters = np.bincount(unit)[used]
        n_yes = np.bincount(unit, weights=yes)[used].astype(int)
        width = int(n_raters.max()) + 1
        counts = np.bincount(n_raters * width + n_yes)
        codes = np.flatnonzero(counts)
        pattern_rows = np.column_stack([codes // width - codes % width, codes % width])
        pattern_rows = pattern_rows.astype(float)
        patterns = counts[codes].astype(float)
        estimate, observed, chance = (float(v[0]) for v in _alpha(pattern_rows, patterns))

        def resample(weights: np.ndarray) -> tuple[np.ndarray, ...]:
            return _alpha(pattern_rows, weights)

    base = {
        "category": name,
        "examples": len(used),
        "reviewers": len(raters),
        "yes": int(yes.sum()),
        "ratings": len(yes),
        "statistic": statistic,
        "observed_agreement": observed,
    }
    if np.isnan(estimate):
        said = "yes" if yes.all() else "no"
        return CategoryAgreement(
            **base,
            coefficient=None,
            ci_low=None,
            ci_high=None,
            chance_agreement=None,
            reading=None,
            reason=f"every rating was {said}: with no variation, agreement beyond chance "
            "is undefined",
        )
    low, high = _bootstrap(patterns, resample)
    return CategoryAgreement(
        **base,
        coefficient=estimate,
        ci_low=low,
        ci_high=high,
        chance_agreement=chance,
        reading=reading(estimate),
    )


def _bootstrap(patterns: np.ndarray, statistic) -> tuple[float | None, float | None]:
    """The 95% percentile interval of `statistic` over examples resampled with replacement,
    drawn as multinomial counts of the examples' patterns (`patterns`: each one's count)."""
    rng = np.random.default_rng(SEED)
    total = int(patterns.sum())
    draws = rng.multinomial(total, patterns / total, size=RESAMPLES).astype(float)
    values = statistic(draws)[0]
    values = values[~np.isnan(values)]
    if not len(values):
        return None, None
    low, high = np.percentile(values, [2.5, 97.5])
    return float(low), float(high)


def _kappa(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(kappa, observed, chance agreement) from counts of the patterns (no-no, no-yes, yes-no,
    yes-yes) of two raters, shape (..., 4); kappa NaN where chance agreement is 1.

    Kappa is (observed - chance) / (1 - chance), computed in its 2 x 2 form
    2 (no-no x yes-yes - no-yes x yes-no) / (the two margins' cross products), so that
    agreement exactly at chance gives exactly 0."""
    counts = np.atleast_2d(counts)
    no_no, no_yes, yes_no, yes_yes = (counts[..., i] for i in range(4))
    n = counts.sum(axis=-1)
    observed = (no_no + yes_yes) / n
    first_yes = (yes_no + yes_yes) / n
    second_yes = (no_yes + yes_yes) / n
    chance = first_yes * second_yes + (1 - first_yes) * (1 - second_yes)
    margins = (no_no + no_yes) * (no_yes + yes_yes) + (no_no + yes_no) * (yes_no + yes_yes)
    with np.errstate(divide="ignore", invalid="ignore"):
        kappa = np.where(margins > 0, 2 * (no_no * yes_yes - no_yes * yes_no) / margins, np.nan)
    return kappa, observed, chance


def _alpha(
    value_counts: np.ndarray, weights: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(alpha, observed, expected agreement) for nominal data (see `nominal_alpha`):
    alpha = 1 - (n - 1) * sum_u (m_u^2 - sum_c n_uc^2) / (m_u - 1) / (n^2 - sum_c n_c^2),
    Krippendorff's coincidence-matrix form, with n the pairable values and n_c those of
    value c."""
    raters = value_counts.sum(axis=1)
    pairable = raters >= 2
    weights = np.ones(len(raters)) if weights is None else np.asarray(weights, dtype=float)
    weights = np.atleast_2d(weights)[:, pairable]
    value_counts, raters = value_counts[pairable], raters[pairable]
    disagreeing = (raters**2 - (value_counts**2).sum(axis=1)) / np.maximum(raters - 1, 1)
    n = weights @ raters
    by_value = weights @ value_counts
    observed_disagreement = weights @ disagreeing
    expected_disagreement = (n**2 - (by_value**2).sum(axis=-1)) / (n - 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        alpha = np.where(
            expected_disagreement > 0, 1 - observed_disagreement / expected_disagreement, np.nan
        )
        return alpha, 1 - observed_disagreement / n, 1 - expected_disagreement / n
