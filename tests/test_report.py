"""The ceiling report: shares of the reviewed errors, Wilson intervals, ceilings, the effort
ranking and the incorrect-label accounting, checked against arithmetic worked by hand."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from labeltool import report, review_queue
from labeltool.categories import create_category, update_category
from labeltool.cli import cli
from labeltool.db import Database
from labeltool.importing import import_predictions
from labeltool.models import Category, Example, Project, ReachedBy, Review, ReviewState, Tag
from labeltool.projects import get_project
from tests.conftest import loaded_examples, make_rows, recorded_statements

PROJECT = "run1"


# --- helpers shared with test_export.py ---------------------------------------------------


def make_project(
    db: Database,
    write_predictions,
    *,
    dev: int,
    errors: int,
    extra_rows: Iterable[dict] = (),
    project: str = PROJECT,
    name: str = "predictions.csv",
) -> int:
    """Import `dev` dev examples (the first `errors` misclassified) plus `extra_rows`; its id."""
    path = write_predictions([*make_rows(dev, errors=errors), *extra_rows], name=name, images=False)
    with db.begin() as session:
        import_predictions(session, path, project=project, check_images=False)
        return get_project(session, project).id


def review(
    db: Database,
    project_id: int,
    tagged: dict[str, Iterable[str]],
    *,
    reviewer: str = "ann",
    state: ReviewState = ReviewState.REVIEWED,
    reached: ReachedBy = ReachedBy.RANDOM,
) -> None:
    """Put each example in `state`; when that counts as reviewed, record `reviewer`'s Review
    row (reached as `reached`) and their tags (categories are created as needed, as if there
    from the start: dated with the project and without marking re-review, so every review
    could have used them)."""
    with db.begin() as session:
        categories = {
            c.name: c
            for c in session.scalars(select(Category).where(Category.project_id == project_id))
        }
        start = session.get(Project, project_id).created_at
        for name in dict.fromkeys(n for names in tagged.values() for n in names):
            if name not in categories:
                categories[name] = create_category(
                    session, project_id=project_id, name=name, mark_rereview=False
                )
                categories[name].created_at = start
        session.flush()
        for example_id, names in tagged.items():
            example = session.scalars(
                select(Example).where(
                    Example.project_id == project_id, Example.example_id == example_id
                )
            ).one()
            example.review_state = state.value
            if state.value in (ReviewState.REVIEWED.value, ReviewState.NEEDS_REREVIEW.value):
                session.add(Review(example_pk=example.id, reviewer=reviewer, reached=reached))
            for name in names:
                session.add(
                    Tag(example_pk=example.id, category_id=categories[name].id, reviewer=reviewer)
                )


def error_ids(count: int, start: int = 0) -> list[str]:
    """The example_ids make_rows gives its first misclassified rows."""
    return [f"ex{i:04d}" for i in range(start, start + count)]


def table_for(db: Database, project_id: int, **scope):
    with db.begin() as session:
        return report.ceiling_table(session, project_id=project_id, **scope)


def row(table, category: str) -> dict:
    matches = table[table["category"] == category].to_dict("records")
    assert len(matches) == 1, f"{category!r} should appear once in the table"
    return matches[0]


# --- Wilson interval and sample guidance ---------------------------------------------------


def test_wilson_interval_matches_the_formula_worked_by_hand() -> None:
    """5 errors of 100 give the Wilson 95% interval (0.0215, 0.1118)."""
    low, high = report.wilson_interval(5, 100)
    assert (round(low, 4), round(high, 4)) == (0.0215, 0.1118)


def test_wilson_interval_edges() -> None:
    """No sample gives no interval (NaN, not a fake (0, 1)); none or all of a sample stay
    inside [0, 1] and touch the edge."""
    low, high = report.wilson_interval(0, 0)
    assert math.isnan(low) and math.isnan(high)
    low, high = report.wilson_interval(0, 10)
    assert low == 0.0 and round(high, 4) == 0.2775
    low, high = report.wilson_interval(10, 10)
    assert round(low, 4) == 0.7225 and high == 1.0


def test_headline_carries_the_review_screens_sample_guidance(db: Database, write_predictions):
    """The report and the review screen say the same thing about the sample size."""
    project_id = make_project(db, write_predictions, dev=100, errors=10)
    review(db, project_id, {"ex0000": ["blurry"], "ex0001": []})
    with db.begin() as session:
        top = report.headline(session, project_id=project_id)
    assert top.sample_guidance == review_queue.sample_guidance(2)
    assert "too few to rank categories" in top.sample_guidance


# --- ceilings, worked by hand ---------------------------------------------------------------


def test_ceiling_for_5_percent_of_errors_at_10_percent_dev_error(db: Database, write_predictions):
    """10% dev error and 5% of the errors are dogs: ceiling 0.5 points, error after fix 9.5%."""
    project_id = make_project(db, write_predictions, dev=200, errors=20)
    review(db, project_id, {"ex0000": ["dogs"]} | {i: [] for i in error_ids(19, start=1)})
    table = table_for(db, project_id)
    dogs = row(table, "dogs")
    assert dogs["errors"] == 1
    assert dogs["share"] == pytest.approx(0.05)
    assert dogs["ceiling"] == pytest.approx(0.005)
    assert dogs["error_after_fix"] == pytest.approx(0.095)


def test_ceiling_for_50_percent_of_errors(db: Database, write_predictions) -> None:
    """10% dev error and half the errors are dogs: the best case is 5% dev error."""
    project_id = make_project(db, write_predictions, dev=200, errors=20)
    review(db, project_id, {i: ["dogs"] for i in error_ids(10)})
    review(db, project_id, {i: [] for i in error_ids(10, start=10)})
    dogs = row(table_for(db, project_id), "dogs")
    assert dogs["share"] == pytest.approx(0.5)
    assert dogs["ceiling"] == pytest.approx(0.05)
    assert dogs["error_after_fix"] == pytest.approx(0.05)
    assert (round(dogs["ci_low"], 4), round(dogs["ci_high"], 4)) == (0.2993, 0.7007)


def test_table_columns_order_and_no_category_row_last(db: Database, write_predictions) -> None:
    """Exactly the documented columns; by share, ties by name; "(no category)", the errors not
    yet explained, always last with a share but no ceiling."""
    project_id = make_project(db, write_predictions, dev=100, errors=10)
    review(
        db,
        project_id,
        {
            "ex0000": ["blurry"],
            "ex0001": ["blurry"],
            "ex0002": ["dark"],
            "ex0003": ["Cropped"],
            "ex0004": [],
            "ex0005": [],
            "ex0006": [],
            "ex0007": [],
        },
    )
    table = table_for(db, project_id)
    assert list(table.columns) == [
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
    ]
    assert list(table["category"]) == ["blurry", "Cropped", "dark", "(no category)"]
    assert list(table["errors"]) == [2, 1, 1, 4]
    assert list(table["reviewed"]) == [8, 8, 8, 8]
    unexplained = row(table, "(no category)")
    assert (round(unexplained["ci_low"], 4), round(unexplained["ci_high"], 4)) == (0.2152, 0.7848)
    assert all(math.isnan(unexplained[c]) for c in report.CEILING_COLUMNS[6:12])
    assert table.attrs["not_yet_explained"] == {"errors": 4, "share": 0.5}


def test_overlapping_categories_shares_add_up_to_more_than_one(db: Database, write_predictions):
    """An example in two categories counts in both, so the shares sum past 100%."""
    project_id = make_project(db, write_predictions, dev=100, errors=10)
    review(db, project_id, {"ex0000": ["blurry", "dark"], "ex0001": ["blurry"]})
    table = table_for(db, project_id)
    assert row(table, "blurry")["share"] == pytest.approx(1.0)
    assert row(table, "dark")["share"] == pytest.approx(0.5)
    assert row(table, "(no category)")["errors"] == 0
    assert table["share"].sum() == pytest.approx(1.5)


def test_two_reviewers_tagging_one_example_count_it_once(db: Database, write_predictions):
    """Without a reviewer filter an example counts once however many reviewers tagged it."""
    project_id = make_project(db, write_predictions, dev=100, errors=10)
    review(db, project_id, {"ex0000": ["blurry"], "ex0001": []}, reviewer="ann")
    with db.begin() as session:
        example = session.scalars(select(Example).where(Example.example_id == "ex0000")).one()
        blurry = session.scalars(select(Category).where(Category.name == "blurry")).one()
        session.add(Tag(example_pk=example.id, category_id=blurry.id, reviewer="bob"))
    assert row(table_for(db, project_id), "blurry")["errors"] == 1


# --- what counts as reviewed --------------------------------------------------------------


def test_needs_rereview_counts_but_skipped_and_unreviewed_do_not(db: Database, write_predictions):
    """Examples needing re-review were looked at; skipped and unreviewed ones were not."""
    project_id = make_project(db, write_predictions, dev=100, errors=10)
    review(db, project_id, {"ex0000": ["blurry"]})
    review(db, project_id, {"ex0001": ["blurry"]}, state=ReviewState.NEEDS_REREVIEW)
    review(db, project_id, {"ex0002": ["blurry"]}, state=ReviewState.SKIPPED)
    review(db, project_id, {"ex0003": ["blurry"]}, state=ReviewState.UNREVIEWED)
    with db.begin() as session:
        top = report.headline(session, project_id=project_id)
    assert top.reviewed == 2
    assert row(table_for(db, project_id), "blurry")["errors"] == 2


def test_correct_examples_and_other_splits_never_count(db: Database, write_predictions) -> None:
    """Tags on a correctly classified example or on a train-split error change nothing."""
    train_error = {
        "example_id": "train1",
        "image": "images/train1.png",
        "label": "cat",
        "prediction": "dog",
        "split": "train",
    }
    project_id = make_project(db, write_predictions, dev=100, errors=10, extra_rows=[train_error])
    review(db, project_id, {"ex0000": ["blurry"], "ex0001": []})
    review(db, project_id, {"ex0050": ["blurry"], "train1": ["blurry"]})  # ex0050 is correct
    with db.begin() as session:
        top = report.headline(session, project_id=project_id)
    assert (top.dev_examples, top.misclassified, top.reviewed) == (100, 10, 2)
    assert top.dev_error == pytest.approx(0.1)
    assert row(table_for(db, project_id), "blurry")["errors"] == 1


# --- slices -----------------------------------------------------------------------------------


def test_reviewer_filter_counts_only_their_reviews_and_tags(db: Database, write_predictions):
    """With a reviewer, the denominator is what they reviewed and only their tags count."""
    project_id = make_project(db, write_predictions, dev=100, errors=10)
    review(
        db, project_id, {"ex0000": ["blurry"], "ex0001": ["blurry"], "ex0002": []}, reviewer="ann"
    )
    review(db, project_id, {"ex0003": ["dark"]}, reviewer="bob")
    with db.begin() as session:
        session.add(
            Review(
                example_pk=session.scalar(select(Example.id).where(Example.example_id == "ex0000")),
                reviewer="bob",
            )
        )  # bob looked at ex0000 too but put it in no category
    bob = table_for(db, project_id, reviewer="bob")
    assert row(bob, "dark")["share"] == pytest.approx(0.5)
    assert row(bob, "blurry")["errors"] == 0
    assert row(bob, "(no category)")["errors"] == 1
    ann = table_for(db, project_id, reviewer="ann")
    assert row(ann, "blurry")["share"] == pytest.approx(2 / 3)
    assert row(ann, "dark")["errors"] == 0
    both = table_for(db, project_id, reviewer=["ann", "bob"])
    assert row(both, "blurry")["share"] == pytest.approx(0.5)
    with db.begin() as session:
        assert report.headline(session, project_id=project_id, reviewer="bob").reviewed == 2


def test_confusion_pair_slice_uses_the_pairs_part_of_the_dev_error(db: Database, write_predictions):
    """Sliced to cat-as-dog, shares are of that pair's errors and ceilings use pair errors / dev."""
    project_id = make_project(db, write_predictions, dev=100, errors=10)
    # make_rows: ex0000, ex0003, ex0006, ex0009 are cat-as-dog (4 of the 100 dev examples).
    review(db, project_id, {"ex0000": ["blurry"], "ex0003": [], "ex0001": ["blurry"]})
    pair = ("cat", "dog")
    with db.begin() as session:
        top = report.headline(session, project_id=project_id, confusion_pair=pair)
        pairs = review_queue.confusion_pairs(session, project_id=project_id)
    assert (top.misclassified, top.reviewed) == (4, 2)
    assert top.dev_error == pytest.approx(0.04)
    blurry = row(table_for(db, project_id, confusion_pair=pair), "blurry")
    assert blurry["share"] == pytest.approx(0.5)
    assert blurry["ceiling"] == pytest.approx(0.02)
    assert blurry["error_after_fix"] == pytest.approx(0.02)
    assert pairs.columns.tolist() == ["label", "prediction", "confusion_pair", "errors"]
    assert pairs.iloc[0].tolist() == ["cat", "dog", "cat-as-dog", 4]
    assert pairs["errors"].sum() == 10


# --- rankings and accounting -------------------------------------------------------------


def test_effort_ranking_orders_by_ceiling_per_effort(db: Database, write_predictions) -> None:
    """A cheap fix with a smaller ceiling can come first; categories without effort are left out."""
    project_id = make_project(db, write_predictions, dev=100, errors=10)
    review(
        db,
        project_id,
        {i: ["blurry"] for i in error_ids(6)} | {i: ["dark"] for i in error_ids(2, start=6)},
    )
    review(db, project_id, {"ex0008": ["no effort"]})
    with db.begin() as session:
        categories = {
            c.name: c.id
            for c in session.scalars(select(Category).where(Category.project_id == project_id))
        }
        update_category(session, category_id=categories["blurry"], effort=6.0)
        update_category(session, category_id=categories["dark"], effort=1.0)
        ranking = report.effort_ranking(session, project_id=project_id)
    assert ranking.columns.tolist() == [
        "category",
        "share",
        "ceiling",
        "effort",
        "ceiling_per_effort",
    ]
    assert ranking["category"].tolist() == ["dark", "blurry"]
    # dark: 2/9 of 10% = 0.0222 per 1 day; blurry: 6/9 of 10% = 0.0667 over 6 days = 0.0111.
    assert ranking["ceiling_per_effort"].tolist() == pytest.approx([0.1 * 2 / 9, 0.1 * 6 / 9 / 6])


def test_incorrect_label_sentence_for_the_methods_example(db: Database, write_predictions):
    """10% dev error with 6% of errors incorrectly labeled: 0.6 points, not urgent yet."""
    project_id = make_project(db, write_predictions, dev=500, errors=50)
    review(
        db,
        project_id,
        {i: ["incorrectly labeled"] for i in error_ids(3)} | {i: [] for i in error_ids(47, 3)},
    )
    with db.begin() as session:
        accounting = report.incorrect_label_accounting(session, project_id=project_id)
    assert accounting is not None
    assert accounting.sentence == (
        "fixing labels could remove at most 0.6 points of the 10.0% dev error"
    )
    assert accounting.due_to_incorrect_labels == pytest.approx(0.006)
    assert accounting.due_to_other_causes == pytest.approx(0.094)
    assert "not urgent" in accounting.hint and "test set" in accounting.hint


def test_large_incorrect_label_share_says_fixing_is_worth_it(db: Database, write_predictions):
    """When incorrect labels are 30% of 20 reviewed errors at 4% dev error, fixing labels is
    worth it."""
    project_id = make_project(db, write_predictions, dev=500, errors=20)
    review(
        db,
        project_id,
        {i: ["incorrectly labeled"] for i in error_ids(6)} | {i: [] for i in error_ids(14, 6)},
    )
    with db.begin() as session:
        accounting = report.incorrect_label_accounting(session, project_id=project_id)
    assert accounting.sentence == (
        "fixing labels could remove at most 1.2 points of the 4.0% dev error"
    )
    assert "worth it now" in accounting.hint and "test set" in accounting.hint


def test_too_few_reviewed_errors_do_not_judge_label_urgency(db: Database, write_predictions):
    """With 10 reviewed errors the sentence still gives the bound, but the hint does not call
    fixing labels urgent or not: too few errors to judge."""
    project_id = make_project(db, write_predictions, dev=500, errors=10)
    review(
        db,
        project_id,
        {i: ["incorrectly labeled"] for i in error_ids(3)} | {i: [] for i in error_ids(7, 3)},
    )
    with db.begin() as session:
        accounting = report.incorrect_label_accounting(session, project_id=project_id)
    assert accounting.sentence == (
        "fixing labels could remove at most 0.6 points of the 2.0% dev error"
    )
    assert accounting.hint.startswith("Only 10 reviewed errors: too few to judge")
    assert "worth it" not in accounting.hint and "not urgent" not in accounting.hint


def test_no_incorrect_label_category_gives_no_accounting(db: Database, write_predictions):
    """Without a category that marks incorrect labels there is nothing to account for."""
    project_id = make_project(db, write_predictions, dev=100, errors=10)
    review(db, project_id, {"ex0000": ["blurry"]})
    with db.begin() as session:
        assert report.incorrect_label_accounting(session, project_id=project_id) is None


def test_archived_categories_only_when_asked_for(db: Database, write_predictions) -> None:
    """An archived category is left out of the ranking unless asked for; then its tags count
    and it is marked archived."""
    project_id = make_project(db, write_predictions, dev=100, errors=10)
    review(db, project_id, {"ex0000": ["old idea"], "ex0001": ["blurry"]})
    with db.begin() as session:
        old = session.scalars(select(Category).where(Category.name == "old idea")).one()
        update_category(session, category_id=old.id, archived=True)
    assert table_for(db, project_id)["category"].tolist() == ["blurry", "(no category)"]
    table = table_for(db, project_id, include_archived=True)
    assert row(table, "old idea")["errors"] == 1
    assert bool(row(table, "old idea")["archived"])
    assert not row(table, "blurry")["archived"]
    assert table.attrs["archived"] == ["old idea"]


def test_reviewer_counts(db: Database, write_predictions) -> None:
    """Each reviewer's reviewed errors and tags, most reviewed first."""
    project_id = make_project(db, write_predictions, dev=100, errors=10)
    review(db, project_id, {"ex0000": ["blurry", "dark"]}, reviewer="bob")
    review(db, project_id, {"ex0001": ["blurry"], "ex0002": []}, reviewer="ann")
    with db.begin() as session:
        counts = report.reviewer_counts(session, project_id=project_id)
    assert counts.to_dict("records") == [
        {"reviewer": "ann", "reviewed": 2, "tags": 1},
        {"reviewer": "bob", "reviewed": 1, "tags": 2},
    ]


def test_report_json_has_the_documented_keys(db: Database, write_predictions) -> None:
    """The JSON dict has the headline numbers and one entry per table row, all JSON-safe."""
    project_id = make_project(db, write_predictions, dev=100, errors=10)
    review(db, project_id, {"ex0000": ["blurry"], "ex0001": []})
    with db.begin() as session:
        data = report.report_json(session, project_id=project_id)
    assert list(data) == [
        "dev_examples",
        "misclassified",
        "dev_error",
        "reviewed",
        "eyeball_fraction",
        "random_reviews",
        "targeted",
        "coverage",
        "stratified",
        "carried",
        "carried_gap",
        "estimate_basis",
        "categories",
        "not_yet_explained",
        "notes",
        "counting",
        "counting_sentence",
        "awaiting_adjudication",
    ]
    assert json.loads(json.dumps(data)) == data
    assert (data["counting"], data["awaiting_adjudication"]) == ("adjudicated", 0)
    assert (data["dev_examples"], data["misclassified"], data["reviewed"]) == (100, 10, 2)
    assert [c["category"] for c in data["categories"]] == ["blurry"]
    assert list(data["categories"][0]) == list(report.CEILING_COLUMNS)
    assert data["categories"][0]["ceiling"] == pytest.approx(0.05)
    assert data["not_yet_explained"] == {
        "errors": 1,
        "share": 0.5,
        "ci_low": pytest.approx(0.0945, abs=1e-4),
        "ci_high": pytest.approx(0.9055, abs=1e-4),
    }
    assert any("model's errors in general" in note for note in data["notes"])


def test_empty_project_report(db: Database, write_predictions) -> None:
    """Before any review the table is just "(no category)" with no share, no interval and no
    ceiling (NaN, not 0% in [0%, 100%])."""
    project_id = make_project(db, write_predictions, dev=10, errors=2)
    table = table_for(db, project_id)
    assert table["category"].tolist() == ["(no category)"]
    assert table[["errors", "reviewed"]].iloc[0].tolist() == [0, 0]
    assert table[list(report.FRACTION_COLUMNS)].isna().all(axis=None)
    assert table.attrs["not_yet_explained"] == {"errors": 0, "share": None}


def test_report_queries_do_not_grow_with_the_project(tmp_path, write_predictions) -> None:
    """The report runs the same few GROUP BY statements on 30 and 600 examples and builds no
    Example objects, so it never loads the examples into Python."""
    counts, loaded = [], []
    for n in (30, 600):
        db = Database.open(f"sqlite:///{tmp_path / f'n{n}.db'}")
        project_id = make_project(db, write_predictions, dev=n, errors=n // 3, name=f"n{n}.csv")
        review(db, project_id, {i: ["blurry"] for i in error_ids(n // 3)})
        with (
            recorded_statements(db.engine) as statements,
            loaded_examples() as examples,
            db.begin() as session,
        ):
            report.report_json(session, project_id=project_id)
            report.effort_ranking(session, project_id=project_id)
            report.incorrect_label_accounting(session, project_id=project_id)
        counts.append(len(statements))
        loaded += examples
        db.dispose()
    assert counts[0] == counts[1] and 0 < counts[0] < 30, counts
    assert loaded == []


# --- the command --------------------------------------------------------------------------


@pytest.fixture
def reviewed_project(db: Database, db_url: str, write_predictions) -> str:
    """A project with 10% dev error, 20 reviewed errors, 10 blurry and 2 incorrectly labeled."""
    project_id = make_project(db, write_predictions, dev=200, errors=20)
    review(
        db,
        project_id,
        {i: ["blurry"] for i in error_ids(10)}
        | {i: ["incorrectly labeled"] for i in error_ids(2, 10)}
        | {i: [] for i in error_ids(8, 12)},
    )
    return db_url


def test_report_command_table(reviewed_project: str) -> None:
    """The text report shows the headline, aligned percentages and the incorrect-label sentence."""
    result = CliRunner().invoke(cli, ["--db", reviewed_project, "report", "--project", PROJECT])
    assert result.exit_code == 0, result.output
    assert (
        "200 dev examples (dev error 10.0%), 20 misclassified, 20 reviewed errors" in result.output
    )
    lines = result.output.splitlines()
    header = next(line for line in lines if line.startswith("category"))
    blurry = next(line for line in lines if line.startswith("blurry"))
    assert blurry.split() == [
        *("blurry", "10", "20", "50.0%", "29.9%", "-", "70.1%"),
        *("5.00%", "2.99%", "-", "7.01%", "5.00%", "2.99%", "-", "7.01%"),
    ]
    assert len(blurry) == len(header)  # right-aligned columns end together
    assert "Not yet explained: 8 of the 20 reviewed errors (40.0%) are in no category." in (
        result.output
    )
    assert "speak about the model's errors in general" in result.output
    assert "fixing labels could remove at most 1.0 points of the 10.0% dev error" in result.output


def test_report_command_csv(reviewed_project: str) -> None:
    """--format csv prints the ceiling table with its documented header."""
    result = CliRunner().invoke(
        cli, ["--db", reviewed_project, "report", "--project", PROJECT, "--format", "csv"]
    )
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == ",".join(report.CEILING_COLUMNS)
    assert lines[1].startswith("blurry,10,20,0.5,")
    assert lines[1].endswith(",False,False,0")
    last = lines[-1].split(",")
    assert last[:4] == ["(no category)", "8", "20", "0.4"]
    assert [round(float(v), 4) for v in last[4:6]] == [0.2188, 0.6134]
    assert last[6:] == ["", "", "", "", "", "", "False", "False", "0"]  # no ceiling


def test_report_command_json_with_reviewer(reviewed_project: str) -> None:
    """--format json parses and, with --reviewer, counts only that reviewer's work."""
    runner = CliRunner()
    base = ["--db", reviewed_project, "report", "--project", PROJECT, "--format", "json"]
    data = json.loads(runner.invoke(cli, base).output)
    assert data["reviewed"] == 20 and data["dev_error"] == pytest.approx(0.1)
    assert data["categories"][0] == {
        "category": "blurry",
        "errors": 10,
        "reviewed": 20,
        "share": 0.5,
        "ci_low": pytest.approx(0.2993, abs=1e-4),
        "ci_high": pytest.approx(0.7007, abs=1e-4),
        "ceiling": pytest.approx(0.05),
        "ceiling_low": pytest.approx(0.02993, abs=1e-5),
        "ceiling_high": pytest.approx(0.07007, abs=1e-5),
        "error_after_fix": pytest.approx(0.05),
        "error_after_fix_low": pytest.approx(0.02993, abs=1e-5),
        "error_after_fix_high": pytest.approx(0.07007, abs=1e-5),
        "too_few": False,
        "archived": False,
        "targeted_errors": 0,
    }
    nobody = json.loads(runner.invoke(cli, [*base, "--reviewer", "zed"]).output)
    assert nobody["reviewed"] == 0
    assert [c["share"] for c in nobody["categories"]] == [None, None]


def test_report_command_unknown_project_is_one_line(reviewed_project: str) -> None:
    """An unknown project is one line on stderr and exit 1."""
    result = CliRunner().invoke(cli, ["--db", reviewed_project, "report", "--project", "nope"])
    assert result.exit_code == 1
    assert "no project named 'nope'" in result.output
    assert "Traceback" not in result.output


def test_report_command_refuses_a_confusion_pair_with_an_unknown_label(reviewed_project: str):
    """`--confusion-pair cat wolf` names a class the project lacks: usage error, classes listed."""
    result = CliRunner().invoke(
        cli,
        [
            "--db",
            reviewed_project,
            "report",
            "--project",
            PROJECT,
            "--confusion-pair",
            "cat",
            "wolf",
        ],
    )
    assert result.exit_code == 2
    assert "unknown label 'wolf' (classes: cat, dog, fox)" in result.output
