"""Numbers a lead can trust (issue 8): the report, the queue and the exports count the same
errors under an eyeball share change; a category's share is of the reviews that could have used
it; every ceiling carries its interval; edge cases are said, not faked. Exact numbers, worked
by hand, on both databases."""

from __future__ import annotations

import json
import math

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from labeltool import eyeball, labeling, report, review_queue
from labeltool.categories import create_category, update_category
from labeltool.cli import cli
from labeltool.db import Database
from labeltool.export import long_table, report_table, to_csv, wide_table
from labeltool.models import Category, Example
from labeltool.review_queue import QueueFilter
from tests.test_report import PROJECT, error_ids, make_project

REVIEWED = QueueFilter(states=("reviewed", "needs re-review"))


def pks_of(db: Database, project_id: int, example_ids: list[str]) -> list[int]:
    with db.begin() as session:
        found = dict(
            session.execute(
                select(Example.example_id, Example.id).where(
                    Example.project_id == project_id, Example.example_id.in_(example_ids)
                )
            ).all()
        )
    return [found[i] for i in example_ids]


def add_category(db: Database, project_id: int, name: str) -> int:
    """Add a category mid-review the way the app does (reviewed examples need re-review)."""
    with db.begin() as session:
        return create_category(session, project_id=project_id, name=name).id


def review_with(db: Database, pks: list[int], tags: dict[int, list[int]], reviewer="ann"):
    """Tag `tags` (category id -> example pks) and mark `pks` reviewed, in one action."""
    with db.begin() as session:
        for category_id, tagged in tags.items():
            labeling.set_tag(
                session, example_pks=tagged, category_id=category_id, reviewer=reviewer
            )
        labeling.mark_reviewed(session, example_pks=pks, reviewer=reviewer)


def row(table, category: str) -> dict:
    matches = table[table["category"] == category].to_dict("records")
    assert len(matches) == 1, f"{category!r} should appear once in the table"
    return matches[0]


# --- 1. one definition of the errors that count ---------------------------------------------


def test_report_queue_and_exports_agree_after_the_eyeball_share_is_lowered(
    db: Database, write_predictions
) -> None:
    """25% share, every eyeball error reviewed (blurry on cat-as-dog ones), share lowered to
    10%: the report, the queue's progress, the reviewer counts and every export count the
    same 23 reviewed errors, and the pair picker and the headline the same 7 cat-as-dog."""
    project_id = make_project(db, write_predictions, dev=1000, errors=200)
    with db.begin() as session:
        eyeball.set_eyeball_fraction(session, project_id=project_id, fraction=0.25)
        pks = review_queue.queue_ids(
            session, project_id=project_id, queue=QueueFilter(states=()), limit=10**6
        )
        cat_as_dog = session.scalars(
            select(Example.id).where(
                Example.id.in_(pks), Example.label == "cat", Example.prediction == "dog"
            )
        ).all()
    blurry = add_category(db, project_id, "blurry")
    review_with(db, pks, {blurry: cat_as_dog})
    assert (len(pks), len(cat_as_dog)) == (55, 18)
    with db.begin() as session:
        eyeball.set_eyeball_fraction(session, project_id=project_id, fraction=0.1)
    pair = ("cat", "dog")
    with db.begin() as session:
        top = report.headline(session, project_id=project_id)
        top_pair = report.headline(session, project_id=project_id, confusion_pair=pair)
        progress = review_queue.review_progress(session, project_id=project_id)
        queued = review_queue.queue_count(session, project_id=project_id, queue=REVIEWED)
        pairs = review_queue.confusion_pairs(session, project_id=project_id)
        split = eyeball.eyeball_split(session, project_id=project_id)
        reviewers = report.reviewer_counts(session, project_id=project_id)
        wide = wide_table(session, project_id=project_id)
        long = long_table(session, project_id=project_id)
        exported = report_table(session, project_id=project_id)
    assert (top.misclassified, top.reviewed) == (23, 23)
    assert (progress.misclassified, progress.reviewed, queued) == (23, 23, 23)
    assert split.eyeball_errors == 23
    assert reviewers.to_dict("records") == [{"reviewer": "ann", "reviewed": 23, "tags": 7}]
    assert (len(wide), int(wide["blurry"].sum()), len(long)) == (23, 7, 7)
    assert (row(exported, "blurry")["errors"], row(exported, "blurry")["reviewed"]) == (7, 23)
    assert row(exported, report.NO_CATEGORY)["errors"] == 16
    picker = pairs.set_index("confusion_pair")["errors"].to_dict()
    assert picker["cat-as-dog"] == top_pair.misclassified == top_pair.reviewed == 7
    assert top.dev_examples == 1000 and top.dev_error == pytest.approx(0.2)


# --- 3. a category's denominator --------------------------------------------------------------


def test_a_category_added_mid_review_is_measured_on_the_reviews_after_it(
    db: Database, write_predictions
) -> None:
    """50 errors reviewed with A only, then B is added and the next 50 use both; B on 10 of
    them is 10/50 = 0.20, not 10/100, and A stays 25/100; re-reviewing 5 old ones adds them
    to B's denominator; C added at the end rests on its 5 re-reviews: too few to rank."""
    project_id = make_project(db, write_predictions, dev=1000, errors=100)
    first, second = pks_of(db, project_id, error_ids(50)), pks_of(db, project_id, error_ids(50, 50))
    a = add_category(db, project_id, "A")
    review_with(db, first, {a: first[:20]})
    b = add_category(db, project_id, "B")
    review_with(db, second, {a: second[:5], b: second[10:20]})
    table = report.ceiling_table
    with db.begin() as session:
        before = table(session, project_id=project_id)
    assert (row(before, "B")["errors"], row(before, "B")["reviewed"]) == (10, 50)
    assert row(before, "B")["share"] == pytest.approx(0.20)
    assert (round(row(before, "B")["ci_low"], 4), round(row(before, "B")["ci_high"], 4)) == (
        0.1124,
        0.3304,
    )
    assert row(before, "B")["ceiling"] == pytest.approx(0.02)  # 0.20 x 10% dev error
    assert (row(before, "A")["errors"], row(before, "A")["reviewed"]) == (25, 100)
    assert row(before, "A")["share"] == pytest.approx(0.25)
    assert not row(before, "B")["too_few"]

    review_with(db, first[:5], {b: first[:1]})  # re-review 5 of the first 50
    c = add_category(db, project_id, "C")
    review_with(db, first[:5], {c: first[:2]})  # and again, now that C exists
    with db.begin() as session:
        after = table(session, project_id=project_id)
    assert (row(after, "B")["errors"], row(after, "B")["reviewed"]) == (11, 55)
    assert (row(after, "C")["errors"], row(after, "C")["reviewed"]) == (2, 5)
    assert row(after, "C")["share"] == pytest.approx(0.4)
    assert bool(row(after, "C")["too_few"]) and not row(after, "A")["too_few"]


def test_incorrect_labels_added_mid_review_use_the_same_denominator(
    db: Database, write_predictions
) -> None:
    """ "incorrectly labeled" added after 50 of 100 reviews and tagged on 5 of the next 50:
    5/50 = 10% of the errors, so 1.0 point of the 10% dev error, not 0.5."""
    project_id = make_project(db, write_predictions, dev=1000, errors=100)
    first, second = pks_of(db, project_id, error_ids(50)), pks_of(db, project_id, error_ids(50, 50))
    review_with(db, first, {})
    wrong = add_category(db, project_id, "incorrectly labeled")
    review_with(db, second, {wrong: second[:5]})
    with db.begin() as session:
        accounting = report.incorrect_label_accounting(session, project_id=project_id)
    assert (accounting.errors, accounting.reviewed) == (5, 50)
    assert accounting.share == pytest.approx(0.1)
    assert accounting.due_to_incorrect_labels == pytest.approx(0.01)
    assert accounting.sentence == (
        "fixing labels could remove at most 1.0 points of the 10.0% dev error"
    )


# --- 4. intervals everywhere ----------------------------------------------------------------


@pytest.fixture
def forty_three(db: Database, db_url: str, write_predictions) -> str:
    """10% dev error (1,000 dev examples, 100 errors), all 100 reviewed, 43 of them blurry."""
    project_id = make_project(db, write_predictions, dev=1000, errors=100)
    pks = pks_of(db, project_id, error_ids(100))
    blurry = add_category(db, project_id, "blurry")
    review_with(db, pks, {blurry: pks[:43]})
    return db_url


EXPECTED_43 = {
    "ci_low": 0.3373,
    "ci_high": 0.5278,
    "ceiling_low": 0.03373,
    "ceiling_high": 0.05278,
    "error_after_fix_low": 0.04722,
    "error_after_fix_high": 0.06627,
}


def test_43_of_100_gives_the_share_ceiling_and_after_fix_intervals(db: Database, forty_three):
    """43 of 100 at 10% dev error: share [0.3373, 0.5278], ceiling [0.03373, 0.05278], error
    after fix [0.04722, 0.06627], in the table and in the JSON."""
    with db.begin() as session:
        project_id = session.scalar(select(Category.project_id))
        blurry = row(report.ceiling_table(session, project_id=project_id), "blurry")
        data = report.report_json(session, project_id=project_id)
    places = {c: 4 if c.startswith("ci_") else 5 for c in EXPECTED_43}
    assert {c: round(blurry[c], places[c]) for c in EXPECTED_43} == EXPECTED_43
    (entry,) = data["categories"]
    assert {c: round(entry[c], places[c]) for c in EXPECTED_43} == EXPECTED_43
    assert (entry["share"], entry["ceiling"]) == (0.43, pytest.approx(0.043))


def test_the_cli_table_csv_and_json_carry_the_same_intervals(forty_three: str) -> None:
    """`report` as text, CSV and JSON shows the same four interval bounds, and says the
    interval speaks about the model's errors in general."""
    base = ["--db", forty_three, "report", "--project", PROJECT]
    runner = CliRunner()
    text = runner.invoke(cli, base)
    csv_out = runner.invoke(cli, [*base, "--format", "csv"])
    json_out = runner.invoke(cli, [*base, "--format", "json"])
    assert text.exit_code == csv_out.exit_code == json_out.exit_code == 0
    blurry = next(line for line in text.output.splitlines() if line.startswith("blurry"))
    assert blurry.split() == [
        *("blurry", "43", "100", "43.0%", "33.7%", "-", "52.8%"),
        *("4.30%", "3.37%", "-", "5.28%", "5.70%", "4.72%", "-", "6.63%"),
    ]
    assert "speak about the model's errors in general (the dev set is" in text.output
    header, first = csv_out.output.splitlines()[:2]
    cells = dict(zip(header.split(","), first.split(","), strict=True))
    assert {c: round(float(cells[c]), 5) for c in EXPECTED_43} == pytest.approx(
        EXPECTED_43, abs=1e-4
    )
    data = json.loads(json_out.output)
    assert {c: round(data["categories"][0][c], 5) for c in EXPECTED_43} == pytest.approx(
        EXPECTED_43, abs=1e-4
    )
    assert any("model's errors in general" in note for note in data["notes"])


# --- 5. edge cases ----------------------------------------------------------------------------


@pytest.mark.parametrize(("successes", "n"), [(5, 3), (1, -2), (-1, 3)])
def test_impossible_counts_are_refused_clearly(successes: int, n: int) -> None:
    """More successes than the sample, or a negative count, is a clear error, not a math
    domain error or a made-up interval."""
    with pytest.raises(ValueError, match="needs 0 <= successes <= n"):
        report.wilson_interval(successes, n)


def test_nothing_reviewed_says_so(db: Database, db_url: str, write_predictions) -> None:
    """With categories but no review, JSON has null shares and intervals (no [0, 1]) and the
    text says nothing is reviewed instead of showing 0%."""
    project_id = make_project(db, write_predictions, dev=100, errors=10)
    add_category(db, project_id, "blurry")
    with db.begin() as session:
        data = report.report_json(session, project_id=project_id)
        table = report.ceiling_table(session, project_id=project_id)
    assert data["reviewed"] == 0
    (blurry,) = data["categories"]
    assert (blurry["errors"], blurry["reviewed"]) == (0, 0)
    assert all(blurry[c] is None for c in report.FRACTION_COLUMNS)
    assert data["not_yet_explained"] == {
        "errors": 0,
        "share": None,
        "ci_low": None,
        "ci_high": None,
    }
    assert table[list(report.FRACTION_COLUMNS)].isna().all(axis=None)
    assert ",0,0,,,," in to_csv(table)
    text = CliRunner().invoke(cli, ["--db", db_url, "report", "--project", PROJECT]).output
    assert "No errors reviewed yet: no shares, intervals or ceilings to show." in text
    assert "100.0%" not in text and not any(line.startswith("blurry") for line in text.split("\n"))


def test_archived_and_unexplained_errors_stay_out_of_the_ranking(
    db: Database, db_url: str, write_predictions
) -> None:
    """An archived category is ranked only with --include-archived, marked archived: true;
    the 2 reviewed errors in no category are a separate not_yet_explained, not a category."""
    project_id = make_project(db, write_predictions, dev=100, errors=10)
    pks = pks_of(db, project_id, error_ids(4))
    old = add_category(db, project_id, "old idea")
    dark = add_category(db, project_id, "dark")
    review_with(db, pks, {old: pks[:1], dark: pks[1:2]})
    with db.begin() as session:
        update_category(session, category_id=old, archived=True)
    base = ["--db", db_url, "report", "--project", PROJECT, "--format", "json"]
    plain = json.loads(CliRunner().invoke(cli, base).output)
    every = json.loads(CliRunner().invoke(cli, [*base, "--include-archived"]).output)
    assert [c["category"] for c in plain["categories"]] == ["dark"]
    assert [(c["category"], c["archived"]) for c in every["categories"]] == [
        ("dark", False),
        ("old idea", True),
    ]
    assert every["categories"][1]["share"] == 0.25
    assert plain["not_yet_explained"]["errors"] == 2
    assert plain["not_yet_explained"]["share"] == 0.5
    assert "ceiling" not in plain["not_yet_explained"]
    text = CliRunner().invoke(cli, base[:-2] + ["--include-archived"]).output
    assert "old idea (archived)" in text
    assert "Not yet explained: 2 of the 4 reviewed errors (50.0%) are in no category." in text
    assert not math.isnan(every["categories"][0]["ceiling"])
