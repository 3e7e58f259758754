"""The reviewed sample: a skipped (or unreviewed) example's tags and corrected label count in
no report, export or count, and a needs-re-review example counts in all of them."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from labeltool import report
from labeltool.db import Database
from labeltool.export import corrections_table, long_table, wide_table
from labeltool.models import Example, Review, ReviewState
from tests.test_report import make_project, review, row

WRONG = "incorrectly labeled"


def set_example(db: Database, example_id: str, **values) -> None:
    with db.begin() as session:
        example = session.scalars(select(Example).where(Example.example_id == example_id)).one()
        for name, value in values.items():
            setattr(example, name, value)


def add_review_row(db: Database, example_id: str, reviewer: str) -> None:
    with db.begin() as session:
        pk = session.scalar(select(Example.id).where(Example.example_id == example_id))
        session.add(Review(example_pk=pk, reviewer=reviewer))


@pytest.fixture
def project(db: Database, write_predictions) -> int:
    """100 dev examples, 10 errors. ex0000 reviewed by ann, ex0001 needs re-review (bob),
    both blurry and incorrectly labeled with a corrected label; ex0002 skipped after cy tagged
    it blurry, dark and incorrectly labeled and gave it a corrected label (cy even has a Review
    row for it); ex0003 unreviewed, tagged dark by dee with a corrected label."""
    project_id = make_project(db, write_predictions, dev=100, errors=10)
    review(db, project_id, {"ex0000": ["blurry", WRONG]}, reviewer="ann")
    review(
        db,
        project_id,
        {"ex0001": ["blurry", WRONG]},
        reviewer="bob",
        state=ReviewState.NEEDS_REREVIEW,
    )
    review(
        db,
        project_id,
        {"ex0002": ["blurry", "dark", WRONG]},
        reviewer="cy",
        state=ReviewState.SKIPPED,
    )
    add_review_row(db, "ex0002", "cy")
    review(db, project_id, {"ex0003": ["dark"]}, reviewer="dee", state=ReviewState.UNREVIEWED)
    set_example(db, "ex0000", corrected_label="dog")  # cat, predicted dog
    set_example(db, "ex0001", corrected_label="fox")  # dog, predicted fox
    set_example(db, "ex0002", corrected_label="cat")  # fox, predicted cat
    set_example(db, "ex0003", corrected_label="dog")  # cat, predicted dog
    return project_id


def test_the_report_counts_reviewed_and_needs_rereview_but_not_skipped(
    db: Database, project: int
) -> None:
    """Shares, the no-category row and the incorrect-label accounting count ex0000 and
    ex0001 only: 2 reviewed errors, blurry 2, dark 0."""
    with db.begin() as session:
        top = report.headline(session, project_id=project)
        table = report.ceiling_table(session, project_id=project)
        accounting = report.incorrect_label_accounting(session, project_id=project)
    assert top.reviewed == 2
    assert row(table, "blurry")["errors"] == 2
    assert row(table, WRONG)["errors"] == 2
    assert row(table, "dark")["errors"] == 0
    assert row(table, "(no category)")["errors"] == 0
    assert (accounting.errors, accounting.share) == (2, 1.0)


def test_a_reviewer_filter_never_brings_a_skipped_example_back(db: Database, project: int):
    """cy's Review row is on a skipped example: cy's report has no reviewed errors, and
    bob's counts his needs-re-review example."""
    with db.begin() as session:
        cy = report.headline(session, project_id=project, reviewer="cy")
        cy_table = report.ceiling_table(session, project_id=project, reviewer="cy")
        bob = report.headline(session, project_id=project, reviewer="bob")
        bob_table = report.ceiling_table(session, project_id=project, reviewer="bob")
    assert cy.reviewed == 0
    assert row(cy_table, "dark")["errors"] == 0 and row(cy_table, "blurry")["errors"] == 0
    assert bob.reviewed == 1
    assert row(bob_table, "blurry")["errors"] == 1


def test_the_wide_export_has_no_skipped_row(db: Database, project: int) -> None:
    """The spreadsheet has ex0000 and ex0001 with their tags and corrected labels, nothing of
    the skipped or unreviewed example."""
    with db.begin() as session:
        wide = wide_table(session, project_id=project)
    assert wide["example_id"].tolist() == ["ex0000", "ex0001"]
    assert wide[["blurry", WRONG, "dark"]].values.tolist() == [[1, 1, 0], [1, 1, 0]]
    assert wide["corrected_label"].tolist() == ["dog", "fox"]
    assert wide["reviewer"].tolist() == ["ann", "bob"]


def test_the_long_export_has_no_tag_of_a_skipped_example(db: Database, project: int) -> None:
    """The long table lists ann's and bob's tags only; cy's and dee's are not in it."""
    with db.begin() as session:
        long = long_table(session, project_id=project)
    assert long[["example_id", "category", "reviewer"]].values.tolist() == [
        ["ex0000", "blurry", "ann"],
        ["ex0000", WRONG, "ann"],
        ["ex0001", "blurry", "bob"],
        ["ex0001", WRONG, "bob"],
    ]


def test_the_corrections_export_has_no_corrected_label_of_a_skipped_example(
    db: Database, project: int
) -> None:
    """Only the reviewed and needs-re-review examples' corrected labels are listed."""
    with db.begin() as session:
        corrections = corrections_table(session, project_id=project)
    assert corrections.values.tolist() == [["ex0000", "cat", "dog"], ["ex0001", "dog", "fox"]]


def test_per_reviewer_counts_leave_out_skipped_examples(db: Database, project: int) -> None:
    """ann and bob have 1 reviewed error and 2 tags each; cy (skipped) and dee (unreviewed)
    do not appear."""
    with db.begin() as session:
        counts = report.reviewer_counts(session, project_id=project)
    assert counts.to_dict("records") == [
        {"reviewer": "ann", "reviewed": 1, "tags": 2},
        {"reviewer": "bob", "reviewed": 1, "tags": 2},
    ]


def test_reviewing_the_skipped_example_brings_everything_back(db: Database, project: int):
    """Once ex0002 is reviewed, its tags and corrected label count in every view at once."""
    set_example(db, "ex0002", review_state=ReviewState.REVIEWED.value)
    with db.begin() as session:
        top = report.headline(session, project_id=project)
        table = report.ceiling_table(session, project_id=project)
        wide = wide_table(session, project_id=project)
        long = long_table(session, project_id=project)
        corrections = corrections_table(session, project_id=project)
        counts = report.reviewer_counts(session, project_id=project)
    assert top.reviewed == 3 and row(table, "dark")["errors"] == 1
    assert wide["example_id"].tolist() == ["ex0000", "ex0001", "ex0002"]
    assert sorted(set(long["reviewer"])) == ["ann", "bob", "cy"]
    assert corrections["example_id"].tolist() == ["ex0000", "ex0001", "ex0002"]
    assert counts.set_index("reviewer").loc["cy"].tolist() == [1, 3]
