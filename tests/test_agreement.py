"""Inter-reviewer agreement per category (labeltool.agreement): Cohen's kappa for two reviewers
checked against scikit-learn, Krippendorff's alpha against its author's worked example and the
`krippendorff` package, the report's rule for which reviews could use a category, and the
report page's table."""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import krippendorff
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import cohen_kappa_score
from sqlalchemy import select, update

from labeltool import labeling
from labeltool.agreement import (
    COHEN,
    COLUMNS,
    KRIPPENDORFF,
    CategoryAgreement,
    agreement,
    cohen_kappa,
    nominal_alpha,
    reading,
    to_frame,
    why_empty,
)
from labeltool.categories import create_category, update_category
from labeltool.db import Database
from labeltool.models import Example, Review
from tests.app_scenario import open_app_project
from tests.test_report import make_project

REPORT = "app_pages/report.py"


# --- helpers ---------------------------------------------------------------------------------


def _errors(db: Database, write_predictions, count: int) -> tuple[int, list[int]]:
    """A project whose first `count` dev examples are errors: its id and their pks."""
    project_id = make_project(db, write_predictions, dev=2 * count, errors=count)
    with db.begin() as session:
        pks = session.scalars(
            select(Example.id).where(Example.is_error.is_(True)).order_by(Example.id)
        ).all()
    return project_id, list(pks)


def _category(db: Database, project_id: int, name: str, **fields) -> int:
    with db.begin() as session:
        return create_category(session, project_id=project_id, name=name, **fields).id


def _review(
    db: Database, reviewer: str, ratings: dict[int, Sequence[tuple[int, int]]] | None = None
) -> None:
    """`reviewer` tags each (example pk, 1) of each category in `ratings` ({category id:
    [(pk, 0 or 1), ...]}) and marks every example it names reviewed."""
    with db.begin() as session:
        seen: set[int] = set()
        for category_id, pairs in (ratings or {}).items():
            yes = [pk for pk, said in pairs if said]
            if yes:
                labeling.set_tag(
                    session, example_pks=yes, category_id=category_id, reviewer=reviewer
                )
            seen |= {pk for pk, _ in pairs}
        labeling.mark_reviewed(session, example_pks=sorted(seen), reviewer=reviewer)


def _rows(db: Database, project_id: int) -> dict[str, CategoryAgreement]:
    with db.begin() as session:
        return {r.category: r for r in agreement(session, project_id=project_id)}


def _rows_in_order(db: Database, project_id: int) -> list[CategoryAgreement]:
    with db.begin() as session:
        return agreement(session, project_id=project_id)


def _sklearn_kappa(first, second) -> float | None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # sklearn warns, then gives NaN, when undefined
        kappa = cohen_kappa_score(first, second)
    return None if np.isnan(kappa) else float(kappa)


# --- the statistics on their own ---------------------------------------------------------------


def test_alpha_of_krippendorffs_own_four_coder_example_is_0_743() -> None:
    """Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability", section C (nominal
    data, four observers, twelve units, missing values): alpha = 0.743."""
    nan = np.nan
    observers = np.array(
        [
            [1, 2, 3, 3, 2, 1, 4, 1, 2, nan, nan, nan],
            [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, nan, 3],
            [nan, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, nan],
            [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, nan],
        ]
    )
    value_counts = np.stack([(observers == v).sum(axis=0) for v in range(1, 6)], axis=1)
    assert round(nominal_alpha(value_counts), 3) == 0.743


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 1), st.integers(0, 1)), min_size=1, max_size=40))
def test_cohen_kappa_is_sklearns(ratings: list[tuple[int, int]]) -> None:
    """Any two raters' yes/no ratings give sklearn's kappa, or None where sklearn has NaN."""
    first, second = zip(*ratings, strict=True)
    ours, theirs = cohen_kappa(first, second), _sklearn_kappa(first, second)
    assert (ours is None) == (theirs is None)
    if ours is not None:
        assert ours == pytest.approx(theirs, abs=1e-12)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.lists(st.one_of(st.none(), st.integers(0, 3)), min_size=12, max_size=12),
        min_size=2,
        max_size=5,
    )
)
def test_nominal_alpha_is_the_krippendorff_packages(raters: list[list[int | None]]) -> None:
    """Any number of raters, values and gaps give the `krippendorff` package's nominal alpha
    (None where every pairable rating is the same)."""
    data = np.array([[np.nan if v is None else v for v in row] for row in raters], dtype=float)
    value_counts = np.stack([(data == v).sum(axis=0) for v in range(4)], axis=1)
    pairable = value_counts.sum(axis=1) >= 2
    values = {v for v in data[:, pairable].ravel() if not np.isnan(v)}
    ours = nominal_alpha(value_counts)
    if len(values) < 2:
        assert ours is None
        return
    theirs = krippendorff.alpha(reliability_data=data, level_of_measurement="nominal")
    assert ours == pytest.approx(theirs, abs=1e-9)


def test_readings_are_landis_and_kochs() -> None:
    """Below 0 poor; 0-0.20 slight; to 0.40 fair; to 0.60 moderate; to 0.80 substantial;
    above, almost perfect."""
    values = [-0.1, 0.0, 0.2, 0.3, 0.5, 0.7, 0.8, 0.81, 1.0, None]
    assert [reading(v) for v in values] == [
        "poor",
        "slight",
        "slight",
        "fair",
        "moderate",
        "substantial",
        "substantial",
        "almost perfect",
        "almost perfect",
        None,
    ]


# --- from the database ---------------------------------------------------------------------------


def test_two_reviewers_get_sklearns_kappa_on_every_category(
    db: Database, write_predictions
) -> None:
    """Two reviewers' tags on the same 40 errors: each category's kappa is sklearn's on the
    same yes/no ratings, with the agreement shares behind it, across base rates and noise."""
    project_id, pks = _errors(db, write_predictions, 40)
    rng = np.random.default_rng(7)
    expected = {}
    ann: dict[int, list] = {}
    bob: dict[int, list] = {}
    for number, (rate, noise) in enumerate([(0.5, 0.1), (0.2, 0.3), (0.7, 0.5), (0.1, 0.0)]):
        category = _category(db, project_id, f"c{number}")
        first = (rng.random(len(pks)) < rate).astype(int)
        second = np.where(rng.random(len(pks)) < noise, 1 - first, first)
        ann[category] = list(zip(pks, first, strict=True))
        bob[category] = list(zip(pks, second, strict=True))
        expected[f"c{number}"] = (_sklearn_kappa(first, second), np.mean(first == second))
    _review(db, "ann", ann)
    _review(db, "bob", bob)

    rows = _rows(db, project_id)
    assert set(rows) == set(expected)
    for name, (kappa, observed) in expected.items():
        row = rows[name]
        assert (row.statistic, row.examples, row.reviewers, row.ratings) == (COHEN, 40, 2, 80)
        assert row.coefficient == pytest.approx(kappa, abs=1e-12)
        assert row.observed_agreement == pytest.approx(observed)
        assert row.ci_low <= row.coefficient <= row.ci_high
        assert row.reading == reading(kappa)
    coefficients = [r.coefficient for r in _rows_in_order(db, project_id)]
    assert coefficients == sorted(coefficients), "worst first"


def test_three_reviewers_with_gaps_get_the_krippendorff_packages_alpha(
    db: Database, write_predictions
) -> None:
    """Three reviewers each reviewing part of 30 errors: alpha over the errors two or more of
    them reviewed equals the `krippendorff` package's on the same ratings."""
    project_id, pks = _errors(db, write_predictions, 30)
    category = _category(db, project_id, "blurry")
    rng = np.random.default_rng(3)
    truth = rng.random(len(pks)) < 0.4
    data = np.full((3, len(pks)), np.nan)
    for index, name in enumerate(["ann", "bob", "carl"]):
        looked = rng.random(len(pks)) < 0.6
        said = np.where(rng.random(len(pks)) < 0.2, ~truth, truth)
        data[index, looked] = said[looked]
        pairs = [(pk, int(s)) for pk, s, seen in zip(pks, said, looked, strict=True) if seen]
        _review(db, name, {category: pairs})

    row = _rows(db, project_id)["blurry"]
    shared = (~np.isnan(data)).sum(axis=0) >= 2
    assert (row.statistic, row.reviewers, row.examples) == (KRIPPENDORFF, 3, int(shared.sum()))
    theirs = krippendorff.alpha(reliability_data=data, level_of_measurement="nominal")
    assert row.coefficient == pytest.approx(theirs, abs=1e-9)
    assert row.ci_low <= row.coefficient <= row.ci_high


def test_perfect_agreement_is_1_and_almost_perfect(db: Database, write_predictions) -> None:
    """Two reviewers who tag exactly the same errors agree perfectly: 1, interval 1 to 1."""
    project_id, pks = _errors(db, write_predictions, 10)
    category = _category(db, project_id, "blurry")
    same = {category: [(pk, int(i % 3 == 0)) for i, pk in enumerate(pks)]}
    _review(db, "ann", same)
    _review(db, "bob", same)
    row = _rows(db, project_id)["blurry"]
    assert (row.coefficient, row.ci_low, row.ci_high) == (1.0, 1.0, 1.0)
    assert (row.observed_agreement, row.reading) == (1.0, "almost perfect")


def test_a_category_nobody_tagged_has_no_coefficient_and_says_why(
    db: Database, write_predictions
) -> None:
    """When every rating is "no", agreement beyond chance is undefined: None (NaN in the
    table), a reason, and the row sorted last."""
    project_id, pks = _errors(db, write_predictions, 8)
    blurry = _category(db, project_id, "blurry")
    dark = _category(db, project_id, "dark")
    ratings = {blurry: [(pk, i % 2) for i, pk in enumerate(pks)], dark: [(pk, 0) for pk in pks]}
    _review(db, "ann", ratings)
    _review(db, "bob", ratings)
    rows = _rows_in_order(db, project_id)
    assert [r.category for r in rows] == ["blurry", "dark"]
    dark_row = rows[1]
    assert (dark_row.coefficient, dark_row.ci_low, dark_row.reading) == (None, None, None)
    assert "every rating was no" in dark_row.reason
    assert dark_row.observed_agreement == 1.0
    frame = to_frame(rows)
    assert list(frame.columns) == list(COLUMNS)
    assert np.isnan(frame.loc[1, "coefficient"]) and frame.loc[0, "coefficient"] == 1.0


def test_a_category_added_after_a_review_does_not_count_it(db: Database, write_predictions) -> None:
    """ "dark" is added after ann and bob reviewed 10 errors; bob re-reviews 5 and carl reviews
    them: only bob's and carl's ratings of those 5 count for it, not a "no" from ann's old
    reviews (that would make three reviewers over 10 errors)."""
    project_id, pks = _errors(db, write_predictions, 10)
    blurry = _category(db, project_id, "blurry")
    before = {blurry: [(pk, i % 2) for i, pk in enumerate(pks)]}
    _review(db, "ann", before)
    _review(db, "bob", before)
    dark = _category(db, project_id, "dark")
    later = {dark: [(pk, int(i < 2)) for i, pk in enumerate(pks[:5])]}
    _review(db, "bob", later)
    _review(db, "carl", {dark: [(pk, int(i < 3)) for i, pk in enumerate(pks[:5])]})

    rows = _rows(db, project_id)
    dark_row = rows["dark"]
    assert (dark_row.statistic, dark_row.reviewers, dark_row.examples) == (COHEN, 2, 5)
    assert dark_row.coefficient == pytest.approx(
        _sklearn_kappa([1, 1, 0, 0, 0], [1, 1, 1, 0, 0]), abs=1e-12
    )
    # blurry existed for every review: ann, bob (twice on five) and carl all rated it.
    assert (rows["blurry"].statistic, rows["blurry"].reviewers) == (KRIPPENDORFF, 3)


def test_a_tag_counts_even_on_a_review_older_than_the_category(
    db: Database, write_predictions
) -> None:
    """A reviewer who tags an example with a newer category has judged it (the report's rule):
    the tag is a "yes" although their review came before the category."""
    project_id, pks = _errors(db, write_predictions, 4)
    blurry = _category(db, project_id, "blurry")
    _review(db, "ann", {blurry: [(pk, 0) for pk in pks]})
    _review(db, "bob", {blurry: [(pk, 0) for pk in pks]})
    dark = _category(db, project_id, "dark")
    with db.begin() as session:
        labeling.set_tag(session, example_pks=pks[:1], category_id=dark, reviewer="ann")
    _review(db, "bob", {dark: [(pk, int(pk == pks[0])) for pk in pks[:2]]})
    row = _rows(db, project_id)["dark"]
    assert (row.examples, row.ratings, row.yes) == (1, 2, 2)


def test_a_carried_review_says_nothing_about_an_error_scope_category(
    db: Database, write_predictions
) -> None:
    """A review carried over from the previous run looked at image categories only: it rates
    "blurry" but not the error category "cat-as-dog"."""
    project_id, pks = _errors(db, write_predictions, 6)
    blurry = _category(db, project_id, "blurry")
    pair = _category(db, project_id, "cat-as-dog", scope="error")
    ratings = {blurry: [(pk, i % 2) for i, pk in enumerate(pks)], pair: [(pk, 0) for pk in pks]}
    _review(db, "ann", ratings)
    _review(db, "bob", ratings)
    with db.begin() as session:
        session.execute(update(Review).where(Review.reviewer == "bob").values(carried=True))
    assert set(_rows(db, project_id)) == {"blurry"}


def test_archived_categories_are_left_out(db: Database, write_predictions) -> None:
    """An archived category gets no row, however its reviewers agreed."""
    project_id, pks = _errors(db, write_predictions, 6)
    blurry = _category(db, project_id, "blurry")
    dark = _category(db, project_id, "dark")
    ratings = {c: [(pk, i % 2) for i, pk in enumerate(pks)] for c in (blurry, dark)}
    _review(db, "ann", ratings)
    _review(db, "bob", ratings)
    with db.begin() as session:
        update_category(session, category_id=dark, archived=True)
    assert set(_rows(db, project_id)) == {"blurry"}


def test_reviewers_who_never_overlapped_give_no_row(db: Database, write_predictions) -> None:
    """Ann and bob reviewed different errors: nothing to compare, and the reason says so."""
    project_id, pks = _errors(db, write_predictions, 10)
    blurry = _category(db, project_id, "blurry")
    _review(db, "ann", {blurry: [(pk, 1) for pk in pks[:5]]})
    _review(db, "bob", {blurry: [(pk, 0) for pk in pks[5:]]})
    assert _rows(db, project_id) == {}
    with db.begin() as session:
        reason = why_empty(session, project_id=project_id)
    assert reason.startswith("No error of this run has been reviewed by two reviewers")


def test_one_reviewer_gives_an_empty_result_and_a_reason(db: Database, write_predictions) -> None:
    """A project with one reviewer has no agreement to measure; before any review, the reason
    says nobody reviewed."""
    project_id, pks = _errors(db, write_predictions, 6)
    blurry = _category(db, project_id, "blurry")
    with db.begin() as session:
        assert why_empty(session, project_id=project_id).startswith("Nobody has reviewed")
    _review(db, "ann", {blurry: [(pk, 1) for pk in pks]})
    with db.begin() as session:
        assert agreement(session, project_id=project_id) == []
        assert why_empty(session, project_id=project_id).startswith("Only one reviewer")
    assert list(to_frame([]).columns) == list(COLUMNS)


def test_the_interval_is_repeatable_and_narrows_with_more_errors(
    db: Database, write_predictions
) -> None:
    """The bootstrap uses a fixed seed (the same data gives the same interval), and the same
    pattern of agreement over four times the errors gives a narrower interval."""
    project_id, pks = _errors(db, write_predictions, 64)
    pattern = [(1, 1), (1, 0), (0, 0), (0, 0), (0, 1), (1, 1), (0, 0), (0, 0)] * 8
    many = _category(db, project_id, "many")
    _review(db, "ann", {many: [(pk, a) for pk, (a, _) in zip(pks, pattern, strict=True)]})
    _review(db, "bob", {many: [(pk, b) for pk, (_, b) in zip(pks, pattern, strict=True)]})
    # Added after those reviews: rated on the 16 errors re-reviewed since.
    few = _category(db, project_id, "few")
    _review(db, "ann", {few: [(pk, a) for pk, (a, _) in zip(pks[:16], pattern, strict=False)]})
    _review(db, "bob", {few: [(pk, b) for pk, (_, b) in zip(pks[:16], pattern, strict=False)]})
    rows = _rows(db, project_id)
    assert (rows["few"].examples, rows["many"].examples) == (16, 64)
    assert rows["few"].coefficient == pytest.approx(rows["many"].coefficient)
    assert (rows["many"].ci_high - rows["many"].ci_low) < (rows["few"].ci_high - rows["few"].ci_low)
    assert _rows(db, project_id) == rows


# --- the report page ---------------------------------------------------------------------------


def _agreement_table(at) -> list[dict] | None:
    """The page's agreement rows, or None when it shows no such table."""
    frames = [d.value for d in at.dataframe if "statistic" in d.value.columns]
    return frames[0].to_dict("records") if frames else None


@pytest.mark.usefixtures("fresh_streamlit_caches")
def test_the_report_page_shows_each_categorys_kappa_once_two_reviewers_overlap(
    db: Database, write_predictions, monkeypatch: pytest.MonkeyPatch, run_app
) -> None:
    """With one reviewer the page says how to get agreement; once bob reviews the same errors,
    "Do reviewers agree?" shows blurry's kappa (sklearn's) for two reviewers."""
    app = open_app_project(db, write_predictions, monkeypatch, examples=20, errors=10)
    pks = app.queue()
    ann = [1, 1, 1, 0, 0, 0, 0, 0, 1, 0]
    bob = [1, 1, 0, 0, 0, 0, 1, 0, 1, 0]
    _review(db, "ann", {app.blurry: list(zip(pks, ann, strict=True))})
    at = run_app(db, REPORT, query_params={"project": "run1"})
    assert _agreement_table(at) is None
    assert any("Only one reviewer" in c.value for c in at.caption)

    _review(db, "bob", {app.blurry: list(zip(pks, bob, strict=True))})
    at.run()
    assert not at.exception, at.exception
    rows = {r["category"]: r for r in _agreement_table(at)}
    blurry = rows["blurry"]
    assert (blurry["errors"], blurry["reviewers"], blurry["statistic"]) == (10, 2, COHEN)
    assert blurry["agreement"] == pytest.approx(_sklearn_kappa(ann, bob), abs=1e-12)
    assert blurry["reading"] == reading(_sklearn_kappa(ann, bob))
    assert "every rating was no" in rows["incorrectly labeled"]["reading"]
