"""Runs: a second model's predictions beside the first, tags that carry over, honest numbers.

The scenario, worked by hand. Six dev examples; run 1 gets e1, e2 (cat-as-dog) and e3
(dog-as-cat) wrong. Reviewer ann reviews all three: e1 blurry + look-alike, e2 look-alike,
e3 blurry. "blurry" is an image category (a property of the picture), "look-alike" an error
category (a property of run 1's mistake). Run 2 fixes e2, still gets e1 (now cat-as-fox) and
e3 wrong, and newly gets c1 wrong.
"""

from __future__ import annotations

import math

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from labeltool import labeling, report
from labeltool.categories import create_category
from labeltool.cli import cli
from labeltool.db import Database
from labeltool.errors import InvalidInput
from labeltool.models import Category, Example, ReviewState, Run, Tag
from labeltool.runs import get_run, list_runs
from tests.conftest import table_contents
from tests.run_scenario import RUN1, RUN2, import_run


def _pk(session, run_name: str, example_id: str) -> int:
    return session.scalar(
        select(Example.id)
        .join(Run, Run.id == Example.run_id)
        .where(Run.name == run_name, Example.example_id == example_id)
    )


def _tags(session, run_name: str) -> set[tuple[str, str]]:
    return set(
        session.execute(
            select(Example.example_id, Category.name)
            .join(Tag, Tag.example_pk == Example.id)
            .join(Category, Category.id == Tag.category_id)
            .join(Run, Run.id == Example.run_id)
            .where(Run.name == run_name)
        ).all()
    )


@pytest.fixture
def reviewed_run1(db: Database, write_predictions) -> dict[str, int]:
    first = import_run(db, write_predictions, RUN1, "run1")
    assert (first.run, first.new_run) == ("1", True)
    with db.begin() as session:
        project_id = session.scalar(select(Run.project_id))
        blurry = create_category(session, project_id=project_id, name="blurry").id
        lookalike = create_category(
            session, project_id=project_id, name="look-alike", scope="error"
        ).id
        pk = {i: _pk(session, "1", i) for i in RUN1}
        labeling.set_tag(
            session, example_pks=[pk["e1"], pk["e3"]], category_id=blurry, reviewer="ann"
        )
        labeling.set_tag(
            session, example_pks=[pk["e1"], pk["e2"]], category_id=lookalike, reviewer="ann"
        )
        labeling.mark_reviewed(session, example_pks=[pk["e1"], pk["e2"], pk["e3"]], reviewer="ann")
    return {"project": project_id, "blurry": blurry, "lookalike": lookalike}


def test_a_new_run_carries_image_tags_of_errors_still_wrong_and_not_error_tags(
    db: Database, write_predictions, reviewed_run1
):
    summary = import_run(db, write_predictions, RUN2, "run2", run="2", note="deblur")
    assert (summary.run, summary.new_run, summary.carried) == ("2", True, 2)
    assert summary.misclassified == 3 and summary.dev_examples == 6
    assert "2 reviewed errors still wrong carried over with their image tags" in str(summary)
    with db.begin() as session:
        assert _tags(session, "2") == {("e1", "blurry"), ("e3", "blurry")}
        assert _tags(session, "1") == {
            ("e1", "blurry"),
            ("e3", "blurry"),
            ("e1", "look-alike"),
            ("e2", "look-alike"),
        }
        states = dict(
            session.execute(
                select(Example.example_id, Example.review_state)
                .join(Run, Run.id == Example.run_id)
                .where(Run.name == "2", Example.is_error.is_(True))
            ).all()
        )
        assert states == {"e1": "reviewed", "e3": "reviewed", "c1": "unreviewed"}
        assert [
            (r.name, r.note, r.misclassified)
            for r in list_runs(session, project_id=reviewed_run1["project"])
        ] == [("1", "", 3), ("2", "deblur", 3)]


def test_each_run_reports_its_own_numbers_and_carried_reviews_count_for_image_categories_only(
    db: Database, write_predictions, reviewed_run1
):
    import_run(db, write_predictions, RUN2, "run2", run="2")
    project_id = reviewed_run1["project"]
    with db.begin() as session:
        one, two = (get_run(session, project_id=project_id, name=n).id for n in ("1", "2"))
        first = report.ceiling_table(session, project_id=project_id, run_id=one)
        second = report.ceiling_table(session, project_id=project_id, run_id=two)
        latest = report.headline(session, project_id=project_id)
        top_two = report.headline(session, project_id=project_id, run_id=two)
        top_one = report.headline(session, project_id=project_id, run_id=one)
    assert latest == top_two
    assert (top_one.misclassified, top_one.reviewed, top_one.dev_error) == (3, 3, 0.5)
    assert (top_two.misclassified, top_two.reviewed, top_two.dev_error) == (3, 2, 0.5)
    one_rows = first.set_index("category")
    two_rows = second.set_index("category")
    assert one_rows.loc["blurry", ["errors", "reviewed"]].tolist() == [2, 3]
    assert one_rows.loc["look-alike", ["errors", "reviewed"]].tolist() == [2, 3]
    # Run 2: blurry rests on the 2 carried reviews (an image category was looked for);
    # look-alike on none (nobody looked at run 2's mistakes yet): no share, not 0%.
    assert two_rows.loc["blurry", ["errors", "reviewed", "share"]].tolist() == [2, 2, 1.0]
    assert two_rows.loc["look-alike", ["errors", "reviewed"]].tolist() == [0, 0]
    assert math.isnan(two_rows.loc["look-alike", "share"])


def test_image_tags_and_corrected_labels_belong_to_the_example_in_every_run(
    db: Database, write_predictions, reviewed_run1
):
    import_run(db, write_predictions, RUN2, "run2", run="2")
    with db.begin() as session:
        labeling.toggle_tag(
            session,
            example_pk=_pk(session, "2", "c1"),
            category_id=reviewed_run1["blurry"],
            reviewer="bob",
        )
        labeling.toggle_tag(
            session,
            example_pk=_pk(session, "2", "c1"),
            category_id=reviewed_run1["lookalike"],
            reviewer="bob",
        )
        labeling.set_corrected_label(
            session, example_pk=_pk(session, "2", "e3"), corrected_label="cat"
        )
    with db.begin() as session:
        assert ("c1", "blurry") in _tags(session, "1")
        assert ("c1", "look-alike") not in _tags(session, "1")
        corrected = session.scalars(
            select(Example.corrected_label).where(Example.example_id == "e3")
        ).all()
        assert corrected == ["cat", "cat"]
        labeling.toggle_tag(
            session,
            example_pk=_pk(session, "1", "c1"),
            category_id=reviewed_run1["blurry"],
            reviewer="bob",
        )
    with db.begin() as session:
        assert ("c1", "blurry") not in _tags(session, "2")


def test_reimporting_a_run_with_changed_predictions_marks_those_errors_for_re_review(
    db: Database, write_predictions, reviewed_run1
):
    changed = RUN1 | {"e3": ("dog", "fox")}
    summary = import_run(db, write_predictions, changed, "again")
    assert (summary.run, summary.new_run, summary.updated, summary.needs_rereview) == (
        "1",
        False,
        1,
        1,
    )
    assert "1 reviewed errors changed and are marked needs re-review" in str(summary)
    with db.begin() as session:
        state = session.scalar(
            select(Example.review_state).where(Example.id == _pk(session, "1", "e3"))
        )
    assert state == ReviewState.NEEDS_REREVIEW.value


@pytest.mark.parametrize(
    ("predictions", "message"),
    [
        (
            {k: v for k, v in RUN1.items() if k != "c3"},
            "1 of the project's 6 dev examples is missing from the file (first: 'c3')",
        ),
        (
            RUN1 | {"x9": ("cat", "dog"), "x10": ("cat", "cat")},
            "2 dev examples are not in the project (first: 'x9', 'x10')",
        ),
    ],
)
@pytest.mark.parametrize("run", [None, "2"])
def test_a_file_with_missing_or_extra_dev_examples_is_refused_and_changes_nothing(
    db: Database, write_predictions, reviewed_run1, predictions, message, run
):
    before = table_contents(db)
    with pytest.raises(InvalidInput) as refused:
        import_run(db, write_predictions, predictions, "bad", run=run)
    assert message in str(refused.value)
    assert "--allow-different-examples" in str(refused.value)
    assert table_contents(db) == before


def test_allow_different_examples_imports_and_an_updated_run_drops_what_the_file_lacks(
    db: Database, write_predictions, reviewed_run1
):
    fewer = {k: v for k, v in RUN1.items() if k != "c3"}
    summary = import_run(db, write_predictions, fewer, "fewer", allow_different_examples=True)
    assert (summary.removed, summary.dev_examples) == (1, 5)
    more = RUN2 | {"x9": ("cat", "dog")}
    summary = import_run(
        db, write_predictions, more, "more", run="3", allow_different_examples=True
    )
    assert (summary.new_run, summary.extra, summary.missing) == (True, 2, 0)


def test_cli_runs_and_report_of_one_run(
    db_url: str, db: Database, write_predictions, reviewed_run1
):
    import_run(db, write_predictions, RUN2, "run2", run="2", note="v2: deblur")
    runner = CliRunner()
    listed = runner.invoke(cli, ["--db", db_url, "runs", "--project", "p"])
    assert listed.exit_code == 0, listed.output
    lines = listed.output.splitlines()
    assert lines[0].split()[:7] == ["1", "6", "dev", "examples", "3", "misclassified", "dev"]
    assert "50.0%" in lines[0] and "v2: deblur" in lines[1]
    one = runner.invoke(cli, ["--db", db_url, "report", "--project", "p", "--run", "1"])
    assert one.exit_code == 0, one.output
    assert "run '1'" in one.output and "3 reviewed errors" in one.output
    unknown = runner.invoke(cli, ["--db", db_url, "report", "--project", "p", "--run", "9"])
    assert unknown.exit_code != 0
    assert "no run '9' in this project (runs: '1', '2')" in unknown.output


def test_an_image_tag_on_an_error_not_yet_reviewed_carries_over_too(
    db: Database, write_predictions
):
    """An image tag applies to the example in every run, reviewed or not; only the review
    itself (what counts in the report) needs the example to have been reviewed."""
    import_run(db, write_predictions, RUN1, "run1")
    with db.begin() as session:
        project_id = session.scalar(select(Run.project_id))
        blurry = create_category(session, project_id=project_id, name="blurry").id
        labeling.set_tag(
            session, example_pks=[_pk(session, "1", "e3")], category_id=blurry, reviewer="ann"
        )
    import_run(db, write_predictions, RUN2, "run2", run="2")
    with db.begin() as session:
        assert _tags(session, "2") == {("e3", "blurry")}
        state = session.scalar(
            select(Example.review_state).where(Example.id == _pk(session, "2", "e3"))
        )
    assert state == ReviewState.UNREVIEWED.value


def test_the_headline_counts_carried_reviews_and_the_new_errors_among_them(
    db: Database, write_predictions, reviewed_run1
):
    """Run 2's reviewed errors e1 and e3 are both carried over from run 1, and c1, new in run
    2, comes between them in the random order (shuffle keys: e1 2.19e18 < c1 4.23e18 < e3
    4.58e18), unreviewed: a gap of 1 that leans the shares on the errors both runs share.
    Reviewing c1 in run 2 closes it; run 1 has nothing carried."""
    from labeltool.importing import shuffle_key

    assert sorted(["e1", "e3", "c1"], key=shuffle_key) == ["e1", "c1", "e3"]  # the hand order
    import_run(db, write_predictions, RUN2, "run2", run="2")
    project_id = reviewed_run1["project"]
    with db.begin() as session:
        two = report.headline(session, project_id=project_id)
        one = report.headline(
            session,
            project_id=project_id,
            run_id=get_run(session, project_id=project_id, name="1").id,
        )
    assert (two.carried, two.carried_gap) == (2, 1)
    assert two.carried_warning.startswith("1 error of this run sits unreviewed among the 2 reviews")
    assert "2 carried over from the previous run" in two.estimate_basis
    assert (one.carried, one.carried_gap, one.carried_warning) == (0, 0, None)

    with db.begin() as session:
        labeling.mark_reviewed(session, example_pks=[_pk(session, "2", "c1")], reviewer="bob")
    with db.begin() as session:
        closed = report.headline(session, project_id=project_id)
        text = report.report_text(closed, report.ceiling_table(session, project_id=project_id))
    assert (closed.carried, closed.carried_gap, closed.carried_warning) == (2, 0, None)
    assert "sits unreviewed" not in text
