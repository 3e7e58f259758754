"""Labeling the dev errors: tags per reviewer and in bulk, marking reviewed, skipping,
comments and corrected labels, re-review after a new category, and pair categories."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import func, insert, select
from sqlalchemy.exc import IntegrityError

from labeltool import labeling, review_queue
from labeltool.categories import create_category
from labeltool.db import Database
from labeltool.errors import InvalidInput, LabeltoolError, UnknownCategory
from labeltool.importing import import_predictions
from labeltool.models import Category, Example, Review, Tag
from labeltool.review_queue import QueueFilter
from tests.review_scenario import (
    NEEDS_REREVIEW,
    REVIEWED,
    SKIPPED,
    UNREVIEWED,
    Run,
    queue_examples,
)

# --- tagging -------------------------------------------------------------------------------


def test_toggle_tag_tags_then_untags(db: Database, run: Run) -> None:
    """toggle_tag adds the reviewer's tag and returns True, then removes it and returns False."""
    pk = run.pk["e00"]
    with db.begin() as session:
        blurry = create_category(session, project_id=run.id, name="blurry").id

    with db.begin() as session:
        assert labeling.toggle_tag(session, example_pk=pk, category_id=blurry, reviewer="ann")
    assert _tags(db) == {(pk, blurry, "ann")}
    with db.begin() as session:
        view = labeling.get_example_view(session, pk=pk)
        assert view.tags_of("ann") == {blurry}
        assert view.tags_of("bob") == set()

    with db.begin() as session:
        assert not labeling.toggle_tag(session, example_pk=pk, category_id=blurry, reviewer="ann")
    assert _tags(db) == set()


def test_two_reviewers_tag_the_same_example_independently(db: Database, run: Run) -> None:
    """Each reviewer has their own tag on an example; one untagging leaves the other's."""
    pk = run.pk["e00"]
    with db.begin() as session:
        blurry = create_category(session, project_id=run.id, name="blurry").id
        labeling.toggle_tag(session, example_pk=pk, category_id=blurry, reviewer="ann")
        labeling.toggle_tag(session, example_pk=pk, category_id=blurry, reviewer="  bob ")

    assert _tags(db) == {(pk, blurry, "ann"), (pk, blurry, "bob")}
    with db.begin() as session:
        view = labeling.get_example_view(session, pk=pk)
        assert view.tagged_by_others("ann") == {blurry: ["bob"]}
        labeling.toggle_tag(session, example_pk=pk, category_id=blurry, reviewer="ann")
    assert _tags(db) == {(pk, blurry, "bob")}


def test_a_tag_is_unique_per_example_category_and_reviewer(db: Database, run: Run) -> None:
    """The database refuses a second identical tag (example x category x reviewer)."""
    pk = run.pk["e00"]
    with db.begin() as session:
        blurry = create_category(session, project_id=run.id, name="blurry").id
        labeling.toggle_tag(session, example_pk=pk, category_id=blurry, reviewer="ann")

    with pytest.raises(IntegrityError), db.begin() as session:
        session.execute(
            insert(Tag).values(
                example_pk=pk, category_id=blurry, reviewer="ann", tagged_at=datetime.now(UTC)
            )
        )
    assert _tags(db) == {(pk, blurry, "ann")}


def test_set_tag_tags_and_untags_many_and_counts_changes(db: Database, run: Run) -> None:
    """set_tag tags the examples not yet tagged by this reviewer and counts only those;
    untagging counts the tags it removed."""
    with db.begin() as session:
        blurry = create_category(session, project_id=run.id, name="blurry").id
        labeling.toggle_tag(session, example_pk=run.pk["e00"], category_id=blurry, reviewer="ann")
    chosen = [run.pk[i] for i in ("e00", "e01", "e02", "e02")]

    with db.begin() as session:
        assert (
            labeling.set_tag(session, example_pks=chosen, category_id=blurry, reviewer="ann") == 2
        )
        assert (
            labeling.set_tag(session, example_pks=chosen, category_id=blurry, reviewer="bob") == 3
        )
    assert len(_tags(db)) == 6

    with db.begin() as session:
        assert (
            labeling.set_tag(
                session,
                example_pks=[run.pk["e01"], run.pk["e05"]],
                category_id=blurry,
                reviewer="ann",
                tagged=False,
            )
            == 1
        )
        assert labeling.set_tag(session, example_pks=[], category_id=blurry, reviewer="ann") == 0
    assert {(pk, who) for pk, _, who in _tags(db) if who == "ann"} == {
        (run.pk["e00"], "ann"),
        (run.pk["e02"], "ann"),
    }


def test_set_tag_ignores_examples_of_another_project(db: Database, run: Run, other: Run) -> None:
    """Bulk tagging with a category skips examples that belong to another project."""
    with db.begin() as session:
        blurry = create_category(session, project_id=run.id, name="blurry").id
        changed = labeling.set_tag(
            session,
            example_pks=[run.pk["e00"], other.pk["e00"], other.pk["e01"]],
            category_id=blurry,
            reviewer="ann",
        )

    assert changed == 1
    assert _tags(db) == {(run.pk["e00"], blurry, "ann")}


def test_a_category_of_another_project_is_refused(db: Database, run: Run, other: Run) -> None:
    """toggle_tag refuses a category that belongs to another project, and an unknown one."""
    with db.begin() as session:
        theirs = create_category(session, project_id=other.id, name="blurry").id

    with db.begin() as session, pytest.raises(UnknownCategory, match="in this project"):
        labeling.toggle_tag(session, example_pk=run.pk["e00"], category_id=theirs, reviewer="ann")
    with db.begin() as session, pytest.raises(UnknownCategory):
        labeling.toggle_tag(session, example_pk=run.pk["e00"], category_id=9999, reviewer="ann")
    with db.begin() as session, pytest.raises(UnknownCategory):
        labeling.set_tag(session, example_pks=[run.pk["e00"]], category_id=9999, reviewer="ann")
    assert _tags(db) == set()


@pytest.mark.parametrize("name", ["", "   ", "\t"])
def test_an_empty_reviewer_name_is_refused(db: Database, run: Run, name: str) -> None:
    """Tagging, bulk tagging and marking reviewed all need a reviewer name."""
    pk = run.pk["e00"]
    with db.begin() as session:
        blurry = create_category(session, project_id=run.id, name="blurry").id

    with db.begin() as session, pytest.raises(InvalidInput, match="reviewer name"):
        labeling.toggle_tag(session, example_pk=pk, category_id=blurry, reviewer=name)
    with db.begin() as session, pytest.raises(InvalidInput, match="reviewer name"):
        labeling.set_tag(session, example_pks=[pk], category_id=blurry, reviewer=name)
    with db.begin() as session, pytest.raises(InvalidInput, match="reviewer name"):
        labeling.mark_reviewed(session, example_pks=[pk], reviewer=name)
    assert _tags(db) == set()
    assert _states(db, run)["e00"] == UNREVIEWED


# --- reviewing -----------------------------------------------------------------------------


def test_mark_reviewed_keeps_one_review_row_per_reviewer(
    db: Database, run: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    """mark_reviewed sets "reviewed" and records one Review per reviewer, refreshing its time
    when the same reviewer marks the example again."""
    pk = run.pk["e00"]
    monday, tuesday = datetime(2025, 1, 6, tzinfo=UTC), datetime(2025, 1, 7, tzinfo=UTC)
    monkeypatch.setattr(labeling, "utcnow", lambda: monday)
    with db.begin() as session:
        labeling.mark_reviewed(session, example_pks=[pk, pk], reviewer="ann")
    monkeypatch.setattr(labeling, "utcnow", lambda: tuesday)
    with db.begin() as session:
        labeling.mark_reviewed(session, example_pks=[pk], reviewer="ann")
        labeling.mark_reviewed(session, example_pks=[pk, run.pk["e01"]], reviewer="bob")

    with db.begin() as session:
        reviews = session.execute(
            select(Review.example_pk, Review.reviewer, Review.reviewed_at).order_by(
                Review.reviewer, Review.example_pk
            )
        ).all()
    assert [(r.example_pk, r.reviewer) for r in reviews] == [
        (pk, "ann"),
        (pk, "bob"),
        (run.pk["e01"], "bob"),
    ]
    assert [_utc(r.reviewed_at) for r in reviews] == [tuesday, tuesday, tuesday]
    assert _states(db, run)["e00"] == REVIEWED
    assert _states(db, run)["e01"] == REVIEWED


def test_mark_reviewed_refuses_what_is_not_a_dev_error_of_the_project(
    db: Database, run: Run, other: Run
) -> None:
    """A correctly classified example, an error outside the dev set and, when the project is
    named, another project's error are refused, and nothing is marked."""
    for pks, project_id, reason in [
        ([run.pk["e00"], run.pk["c00"]], None, "not a misclassified dev example"),
        ([run.pk["t00"]], None, "not a misclassified dev example"),
        ([run.pk["e00"], other.pk["e01"]], run.id, "no example with id"),
    ]:
        with db.begin() as session, pytest.raises(LabeltoolError, match=reason):
            labeling.mark_reviewed(session, example_pks=pks, reviewer="ann", project_id=project_id)

    assert set(_states(db, run).values()) == {UNREVIEWED}
    assert set(_states(db, other).values()) == {UNREVIEWED}


def test_skip_puts_an_unreviewed_example_aside_only(db: Database, run: Run) -> None:
    """skip_example marks an unreviewed example "skipped" but leaves a reviewed one reviewed."""
    with db.begin() as session:
        labeling.mark_reviewed(session, example_pks=[run.pk["e01"]], reviewer="ann")
        labeling.skip_example(session, example_pk=run.pk["e00"])
        labeling.skip_example(session, example_pk=run.pk["e01"])

    states = _states(db, run)
    assert (states["e00"], states["e01"]) == (SKIPPED, REVIEWED)


def test_set_comment_saves_the_trimmed_text(db: Database, run: Run) -> None:
    """set_comment stores the comment without surrounding whitespace."""
    with db.begin() as session:
        labeling.set_comment(session, example_pk=run.pk["e00"], comment="  looks like a fox \n")

    with db.begin() as session:
        assert labeling.get_example_view(session, pk=run.pk["e00"]).comment == "looks like a fox"


def test_set_corrected_label_accepts_only_the_projects_classes(db: Database, run: Run) -> None:
    """A corrected label must be one of the project's classes; None clears it."""
    pk = run.pk["e00"]
    with db.begin() as session, pytest.raises(InvalidInput, match="unknown label 'wolf'"):
        labeling.set_corrected_label(session, example_pk=pk, corrected_label="wolf")
    with db.begin() as session:
        assert labeling.get_example_view(session, pk=pk).corrected_label is None
        labeling.set_corrected_label(session, example_pk=pk, corrected_label="dog")
    with db.begin() as session:
        assert labeling.get_example_view(session, pk=pk).corrected_label == "dog"
        labeling.set_corrected_label(session, example_pk=pk, corrected_label=None)
    with db.begin() as session:
        assert labeling.get_example_view(session, pk=pk).corrected_label is None


def test_tagging_incorrectly_labeled_prefills_the_prediction_as_corrected_label(
    db: Database, run: Run
) -> None:
    """Tagging an incorrect-label category, one example or many at once, fills in each missing
    corrected label with the prediction; an existing correction and other categories are
    left alone."""
    e00, e01, e02, e03 = (run.pk[i] for i in ("e00", "e01", "e02", "e03"))
    with db.begin() as session:
        label_error = create_category(session, project_id=run.id, name="incorrectly labeled")
        blurry = create_category(session, project_id=run.id, name="blurry")
        labeling.set_corrected_label(session, example_pk=e02, corrected_label="fox")
        labeling.toggle_tag(session, example_pk=e00, category_id=label_error.id, reviewer="ann")
        labeling.set_tag(
            session, example_pks=[e01, e02], category_id=label_error.id, reviewer="bob"
        )
        labeling.toggle_tag(session, example_pk=e03, category_id=blurry.id, reviewer="ann")

    with db.begin() as session:
        corrected = {
            pk: labeling.get_example_view(session, pk=pk).corrected_label
            for pk in (e00, e01, e02, e03)
        }
    # e00-e03 are cat-as-dog: the prediction "dog" is the prefilled correction.
    assert corrected == {e00: "dog", e01: "dog", e02: "fox", e03: None}


def test_example_view_shows_the_top_three_probabilities(db: Database, write_predictions) -> None:
    """get_example_view lists the three most probable classes, most probable first."""
    path = write_predictions(
        [
            {
                "example_id": "x1",
                "image": "images/x1.png",
                "label": "cat",
                "prediction": "dog",
                "prob_cat": "0.2",
                "prob_dog": "0.5",
                "prob_fox": "0.25",
                "prob_owl": "0.05",
            }
        ],
        name="probs.csv",
    )
    with db.begin() as session:
        import_predictions(session, path, project="probs")
    with db.begin() as session:
        pk = session.scalar(select(Example.id).where(Example.example_id == "x1"))
        view = labeling.get_example_view(session, pk=pk)

    assert view.top_probabilities == [("dog", 0.5), ("fox", 0.25), ("cat", 0.2)]
    assert (view.confidence, view.confusion_pair) == (0.5, "cat-as-dog")


def test_a_category_added_mid_review_sends_reviewed_examples_to_re_review(
    db: Database, run: Run
) -> None:
    """Creating a category moves the reviewed examples to "needs re-review", and the queue
    filtered on that state shows exactly them."""
    done = ["e00", "e04", "e07"]
    with db.begin() as session:
        labeling.mark_reviewed(session, example_pks=[run.pk[i] for i in done], reviewer="ann")
        labeling.skip_example(session, example_pk=run.pk["e01"])
    with db.begin() as session:
        create_category(session, project_id=run.id, name="instagram filter")

    assert queue_examples(db, run, QueueFilter(states=(NEEDS_REREVIEW,))) == set(done)
    assert queue_examples(db, run, QueueFilter(states=(REVIEWED,))) == set()
    assert _states(db, run)["e01"] == SKIPPED
    with db.begin() as session:
        progress = review_queue.review_progress(session, project_id=run.id)
    assert (progress.reviewed, progress.needs_rereview) == (3, 3)


def test_category_from_confusion_pair_tags_that_pairs_dev_errors(db: Database, run: Run) -> None:
    """category_from_confusion_pair creates "cat-as-dog" and tags exactly the pair's dev errors
    for the reviewer, without sending reviewed examples to re-review."""
    with db.begin() as session:
        labeling.mark_reviewed(session, example_pks=[run.pk["e00"], run.pk["e05"]], reviewer="ann")

    with db.begin() as session:
        category, tagged = labeling.category_from_confusion_pair(
            session, project_id=run.id, label="cat", prediction="dog", reviewer="ann"
        )
        category_id = category.id
        assert (category.name, tagged) == ("cat-as-dog", 5)

    assert _tags(db) == {
        (run.pk[i], category_id, "ann") for i in ("e00", "e01", "e02", "e03", "e04")
    }
    states = _states(db, run)
    assert (states["e00"], states["e05"]) == (REVIEWED, REVIEWED)


def test_category_from_confusion_pair_is_idempotent(db: Database, run: Run) -> None:
    """Making the same pair a category twice keeps one category and tags nothing new."""
    with db.begin() as session:
        first, _ = labeling.category_from_confusion_pair(
            session, project_id=run.id, label="dog", prediction="fox", reviewer="ann"
        )
        first_id = first.id
    with db.begin() as session:
        again, tagged = labeling.category_from_confusion_pair(
            session, project_id=run.id, label="dog", prediction="fox", reviewer="ann"
        )

        assert (again.id, tagged) == (first_id, 0)
        assert session.scalar(select(func.count()).select_from(Category)) == 1
    assert len(_tags(db)) == 3


# --- helpers -------------------------------------------------------------------------------


def _tags(db: Database) -> set[tuple[int, int, str]]:
    with db.begin() as session:
        return {
            tuple(r) for r in session.execute(select(Tag.example_pk, Tag.category_id, Tag.reviewer))
        }


def _states(db: Database, run: Run) -> dict[str, str]:
    with db.begin() as session:
        return dict(
            session.execute(
                select(Example.example_id, Example.review_state).where(Example.project_id == run.id)
            ).all()
        )


def _utc(moment: datetime) -> datetime:
    """SQLite hands back naive UTC times, PostgreSQL aware ones in the session's zone."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
