"""The report's estimate rests on the random reviews: targeted ones are counted but left out,
reviews from one confusion pair's random queue are weighted back by the pairs' sizes, and the
report says what the estimate rests on (SQLite and PostgreSQL; numbers worked by hand)."""

from __future__ import annotations

import pytest

from labeltool import report
from labeltool.db import Database
from labeltool.models import ReachedBy
from tests.test_report import make_project, review, row, table_for


def json_for(db: Database, project_id: int) -> dict:
    with db.begin() as session:
        return report.report_json(session, project_id=project_id)


def test_targeted_reviews_are_counted_but_not_estimated_from(
    db: Database, write_predictions
) -> None:
    """6 random reviews (3 blurry) and 4 by confidence order (all blurry): blurry's share is
    3/6 = 0.5, not 7/10; its 4 targeted tags are still counted; the report says it rests on 6
    random reviews covering all the errors, 4 targeted not counted."""
    project_id = make_project(db, write_predictions, dev=100, errors=10)
    review(db, project_id, {f"ex{i:04d}": ["blurry"] if i < 3 else [] for i in range(6)})
    review(
        db,
        project_id,
        {f"ex{i:04d}": ["blurry"] for i in range(6, 10)},
        reached=ReachedBy.CONFIDENCE_ORDER,
    )

    blurry = row(table_for(db, project_id), "blurry")
    data = json_for(db, project_id)

    assert (blurry["errors"], blurry["reviewed"], blurry["targeted_errors"]) == (3, 6, 4)
    assert blurry["share"] == pytest.approx(0.5)
    assert (data["reviewed"], data["random_reviews"], data["targeted"]) == (10, 6, 4)
    assert (data["coverage"], data["stratified"]) == (1.0, False)
    assert data["estimate_basis"] == (
        "from 6 random reviews covering 100.0% of the errors; 4 targeted reviews not counted"
    )


def test_pairs_reviewed_in_their_own_queues_are_weighted_by_their_sizes(
    db: Database, write_predictions
) -> None:
    """cat-as-dog has 20 errors, dog-as-fox 5, fox-as-cat 10. Five random reviews in each of
    the first two pairs' queues: 1 and 4 blurry. Blurry's share is 20/25 * 1/5 + 5/25 * 4/5 =
    0.32 (the pooled 5/10 would be 0.5); its interval is Wilson's at the effective size
    0.32 * 0.68 / (0.8^2 * 0.16/5 + 0.2^2 * 0.16/5) = 10 reviews: [0.1192, 0.6207]. The
    reviews speak for 25 of the 35 errors."""
    rows = [
        {"example_id": f"a{i:02d}", "image": f"a{i:02d}.png", "label": "cat", "prediction": "dog"}
        for i in range(20)
    ]
    rows += [
        {"example_id": f"b{i:02d}", "image": f"b{i:02d}.png", "label": "dog", "prediction": "fox"}
        for i in range(5)
    ]
    rows += [
        {"example_id": f"c{i:02d}", "image": f"c{i:02d}.png", "label": "fox", "prediction": "cat"}
        for i in range(10)
    ]
    project_id = make_project(db, write_predictions, dev=65, errors=0, extra_rows=rows)
    in_pair = ReachedBy.RANDOM_IN_PAIR
    review(
        db,
        project_id,
        {f"a{i:02d}": ["blurry"] if i < 1 else [] for i in range(5)},
        reached=in_pair,
    )
    review(
        db,
        project_id,
        {f"b{i:02d}": ["blurry"] if i < 4 else [] for i in range(5)},
        reached=in_pair,
    )

    blurry = row(table_for(db, project_id), "blurry")
    data = json_for(db, project_id)

    assert blurry["share"] == pytest.approx(0.32)
    assert (round(blurry["ci_low"], 4), round(blurry["ci_high"], 4)) == (0.1192, 0.6207)
    assert blurry["ceiling"] == pytest.approx(0.32 * 35 / 100)
    assert (data["stratified"], round(data["coverage"], 4)) == (True, round(25 / 35, 4))
    assert data["estimate_basis"] == (
        "from 10 random reviews covering 71.4% of the errors, confusion pairs weighted by "
        "their sizes"
    )


def test_a_whole_queue_review_speaks_for_its_pair_when_pairs_are_weighted(
    db: Database, write_predictions
) -> None:
    """Once some reviews come from one pair's queue, a review from the random queue of all
    errors counts in its own pair's stratum: cat-as-dog (10 errors) reviewed only from the
    whole queue, 2 of 4 blurry, and dog-as-fox (30 errors) from its own, 0 of 4: blurry is
    10/40 * 2/4 + 30/40 * 0 = 0.125 (pooled, 2/8 = 0.25), covering all the errors."""
    rows = [
        {"example_id": f"a{i:02d}", "image": f"a{i:02d}.png", "label": "cat", "prediction": "dog"}
        for i in range(10)
    ]
    rows += [
        {"example_id": f"b{i:02d}", "image": f"b{i:02d}.png", "label": "dog", "prediction": "fox"}
        for i in range(30)
    ]
    project_id = make_project(db, write_predictions, dev=30, errors=0, extra_rows=rows)
    review(db, project_id, {f"a{i:02d}": ["blurry"] if i < 2 else [] for i in range(4)})
    review(
        db,
        project_id,
        {f"b{i:02d}": [] for i in range(4)} | {"b00": ["dark"]},
        reached=ReachedBy.RANDOM_IN_PAIR,
    )

    blurry = row(table_for(db, project_id), "blurry")
    data = json_for(db, project_id)

    assert blurry["share"] == pytest.approx(0.125)
    assert (data["coverage"], data["stratified"], data["random_reviews"]) == (1.0, True, 8)


def test_incorrect_labels_are_accounted_from_the_random_reviews_too(
    db: Database, write_predictions
) -> None:
    """6 random reviews (2 incorrectly labeled) and 4 picked by hand (all 4): incorrect labels
    are 2/6 of the errors, so 10% x 1/3 = 3.3 points of the 10% dev error, not 6/10."""
    project_id = make_project(db, write_predictions, dev=100, errors=10)
    wrong = ["incorrectly labeled"]
    review(db, project_id, {f"ex{i:04d}": wrong if i < 2 else [] for i in range(6)})
    review(db, project_id, {f"ex{i:04d}": wrong for i in range(6, 10)}, reached=ReachedBy.BY_HAND)

    with db.begin() as session:
        accounting = report.incorrect_label_accounting(session, project_id=project_id)

    assert (accounting.errors, accounting.reviewed) == (2, 6)
    assert accounting.share == pytest.approx(1 / 3)
    assert accounting.due_to_incorrect_labels == pytest.approx(0.1 / 3)
    assert "3.3 points of the 10.0% dev error" in accounting.sentence
