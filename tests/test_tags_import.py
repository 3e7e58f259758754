"""import-tags and review states: a row re-reviews its example only when the file has a column
for every live category, and the summary counts only the corrected labels that changed.

(The wide table's format, bad files and the byte-identical round trip are in test_export.py.)
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from labeltool.categories import create_category, update_category
from labeltool.cli import cli
from labeltool.db import Database
from labeltool.errors import InvalidInput
from labeltool.models import Example, Review, ReviewState
from tests.conftest import table_contents
from tests.test_export import export_wide, run_import, set_example
from tests.test_report import PROJECT, make_project, review

REVIEWED = ReviewState.REVIEWED.value
NEEDS_REREVIEW = ReviewState.NEEDS_REREVIEW.value
UNREVIEWED = ReviewState.UNREVIEWED.value
SKIPPED = ReviewState.SKIPPED.value


def states(db: Database) -> dict[str, str]:
    with db.begin() as session:
        return dict(session.execute(select(Example.example_id, Example.review_state)).all())


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "sheet.csv"
    path.write_text(text, encoding="utf-8")
    return path


def project_with_instagram_filter(db: Database, write_predictions) -> int:
    """20 dev examples, 5 errors; ex0000-ex0002 reviewed by ann (blurry on ex0000 and ex0001),
    then 'instagram filter' added, so those three need re-review; ex0003 skipped, ex0004
    unreviewed."""
    project_id = make_project(db, write_predictions, dev=20, errors=5)
    review(db, project_id, {"ex0000": ["blurry"], "ex0001": ["blurry"], "ex0002": []})
    review(db, project_id, {"ex0003": []}, state=ReviewState.SKIPPED)
    with db.begin() as session:
        create_category(session, project_id=project_id, name="instagram filter")
    return project_id


def test_a_file_without_a_live_categorys_column_leaves_needs_rereview(
    db: Database, tmp_path, write_predictions
) -> None:
    """Rows that say nothing about 'instagram filter' do not re-review their examples: they
    stay 'needs re-review', and the summary says so and why; their tags are still imported."""
    project_id = project_with_instagram_filter(db, write_predictions)
    assert [states(db)[f"ex000{i}"] for i in range(3)] == [NEEDS_REREVIEW] * 3
    path = write(tmp_path, "example_id,blurry\nex0000,1\nex0001,0\n")
    summary = run_import(db, path, project_id, reviewer="ann")
    assert (summary.stay_rereview, summary.now_rereview) == (2, 0)
    assert summary.missing_categories == ["instagram filter"]
    assert str(summary) == (
        "project 'run1': 2 rows imported as reviewed by ann; 0 tags added, 1 removed; "
        "0 corrected labels changed; 2 examples stay 'needs re-review': the file has no "
        "column for 'instagram filter'"
    )
    after = states(db)
    assert [after[f"ex000{i}"] for i in range(5)] == [NEEDS_REREVIEW] * 3 + [SKIPPED, UNREVIEWED]


def test_examples_never_reviewed_become_needs_rereview_and_reviewed_ones_stay_reviewed(
    db: Database, tmp_path, write_predictions
) -> None:
    """Without a column for 'instagram filter', a skipped or unreviewed example is imported as
    'needs re-review' (it was never checked for it), and a reviewed one, checked for every
    live category before, stays 'reviewed'."""
    project_id = make_project(db, write_predictions, dev=20, errors=5)
    with db.begin() as session:
        create_category(session, project_id=project_id, name="instagram filter")
    review(db, project_id, {"ex0000": ["blurry"]})
    review(db, project_id, {"ex0003": []}, state=ReviewState.SKIPPED)
    before = states(db)
    assert (before["ex0000"], before["ex0003"], before["ex0004"]) == (REVIEWED, SKIPPED, UNREVIEWED)
    path = write(tmp_path, "example_id,blurry\nex0000,1\nex0003,1\nex0004,0\n")
    summary = run_import(db, path, project_id, reviewer="ann")
    after = states(db)
    assert (after["ex0000"], after["ex0003"], after["ex0004"]) == (
        REVIEWED,
        NEEDS_REREVIEW,
        NEEDS_REREVIEW,
    )
    assert (summary.stay_rereview, summary.now_rereview) == (0, 2)
    assert str(summary).endswith(
        "; 2 examples never reviewed before are marked 'needs re-review': the file has no "
        "column for 'instagram filter'"
    )


def test_a_row_with_every_live_category_is_a_rereview(
    db: Database, tmp_path, write_predictions
) -> None:
    """With a column for every live category (an archived one may be missing), the rows'
    examples become 'reviewed'; an example not in the file still needs re-review."""
    project_id = project_with_instagram_filter(db, write_predictions)
    with db.begin() as session:
        old = create_category(session, project_id=project_id, name="old", mark_rereview=False)
        update_category(session, category_id=old.id, archived=True)
    path = write(
        tmp_path, "example_id,blurry,instagram filter\nex0000,1,1\nex0001,1,0\nex0003,0,1\n"
    )
    summary = run_import(db, path, project_id, reviewer="ann")
    after = states(db)
    assert (after["ex0000"], after["ex0001"], after["ex0003"]) == (REVIEWED,) * 3
    assert after["ex0002"] == NEEDS_REREVIEW
    assert (summary.stay_rereview, summary.now_rereview, summary.missing_categories) == (0, 0, [])
    assert "needs re-review" not in str(summary)


def test_a_category_the_file_adds_sends_other_reviewed_examples_to_rereview(
    db: Database, tmp_path, write_predictions
) -> None:
    """'dark' is new: ex0000, in the file, is checked for it and stays reviewed; ex0001 and
    ex0002, reviewed but not in the file, were never checked for it and need re-review."""
    project_id = make_project(db, write_predictions, dev=20, errors=5)
    review(db, project_id, {"ex0000": ["blurry"], "ex0001": ["blurry"], "ex0002": []})
    path = write(tmp_path, "example_id,blurry,dark\nex0000,1,1\n")
    summary = run_import(db, path, project_id, reviewer="ann")
    after = states(db)
    assert (after["ex0000"], after["ex0001"], after["ex0002"]) == (
        REVIEWED,
        NEEDS_REREVIEW,
        NEEDS_REREVIEW,
    )
    assert summary.rereview_outside_file == 2
    assert "; categories added: dark (2 reviewed examples not in the file now need re-review)" in (
        str(summary)
    )


def test_only_corrected_labels_that_change_are_counted(
    db: Database, tmp_path, write_predictions
) -> None:
    """Of four corrected-label cells, one equals the stored label, one changes it, one sets a
    new one and one (empty) clears one: 2 changed, 1 cleared; the same file again changes 0."""
    project_id = make_project(db, write_predictions, dev=20, errors=5)
    review(db, project_id, {f"ex000{i}": [] for i in range(4)})
    set_example(db, "ex0000", corrected_label="dog")  # cat, predicted dog
    set_example(db, "ex0001", corrected_label="fox")  # dog, predicted fox
    set_example(db, "ex0003", corrected_label="fox")  # cat, predicted dog
    path = write(
        tmp_path, "example_id,corrected_label\nex0000,dog\nex0001,cat\nex0002,cat\nex0003,\n"
    )
    summary = run_import(db, path, project_id, reviewer="ann")
    assert (summary.corrections, summary.corrections_cleared) == (2, 1)
    assert "; 2 corrected labels changed, 1 cleared" in str(summary)
    with db.begin() as session:
        stored = dict(session.execute(select(Example.example_id, Example.corrected_label)).all())
    assert [stored[f"ex000{i}"] for i in range(4)] == ["dog", "cat", "cat", None]
    again = run_import(db, path, project_id, reviewer="ann")
    assert (again.corrections, again.corrections_cleared) == (0, 0)
    assert "; 0 corrected labels changed" in str(again) and "cleared" not in str(again)


def test_reimporting_an_unchanged_export_changes_nothing(
    db: Database, tmp_path, write_predictions
) -> None:
    """A wide export read back into its own project adds, removes and corrects nothing, keeps
    every review state, and exports the same bytes again."""
    project_id = project_with_instagram_filter(db, write_predictions)
    review(db, project_id, {"ex0004": ["instagram filter"]}, reviewer="bob")
    set_example(db, "ex0000", corrected_label="dog")
    first = export_wide(db, project_id, tmp_path / "first.csv")
    before = states(db)
    summary = run_import(db, tmp_path / "first.csv", project_id)
    assert (summary.tags_added, summary.tags_removed) == (0, 0)
    assert (summary.corrections, summary.corrections_cleared) == (0, 0)
    assert states(db) == before | {
        "ex0000": REVIEWED,
        "ex0001": REVIEWED,
        "ex0002": REVIEWED,
    }  # every live category has a column: the rows re-review their examples
    assert export_wide(db, project_id, tmp_path / "second.csv") == first


def test_import_tags_command_says_which_examples_stay_needs_rereview(
    db: Database, db_url: str, tmp_path, write_predictions
) -> None:
    """The CLI prints the summary's sentence about the examples left 'needs re-review'."""
    project_with_instagram_filter(db, write_predictions)
    path = write(tmp_path, "example_id,blurry,reviewer\nex0002,1,ann\n")
    result = CliRunner().invoke(
        cli, ["--db", db_url, "import-tags", str(path), "--project", PROJECT]
    )
    assert result.exit_code == 0, result.output
    assert result.output == (
        f"project '{PROJECT}': 1 row imported as reviewed by ann; 1 tag added, 0 removed; "
        "0 corrected labels changed; 1 example stays 'needs re-review': the file has no "
        "column for 'instagram filter'\n"
    )
    assert states(db)["ex0002"] == NEEDS_REREVIEW


def test_a_bad_file_names_its_earliest_problem_and_counts_the_rows_like_it(
    db: Database, tmp_path, write_predictions
) -> None:
    """Every row is checked before anything is written: the earliest problem is reported,
    with how many more rows share it (same check, same column); other problems in later rows
    are not counted with it, and nothing is written."""
    project_id = make_project(db, write_predictions, dev=20, errors=5)
    before = table_contents(db)
    path = write(
        tmp_path,
        "example_id,blurry\n"
        "ex0000,1\n"
        "ex0001,maybe\n"  # row 3: the earliest problem
        "nope,1\n"  # row 4: another problem, in another column
        "ex0002,2\n"
        "ex0003,yes please\n",
    )

    with pytest.raises(InvalidInput) as caught:
        run_import(db, path, project_id, reviewer="ann")

    error = caught.value
    assert (error.file, error.row, error.column, error.more) == ("sheet.csv", 3, "blurry", 2)
    assert str(error) == (
        "sheet.csv, row 3, column 'blurry': 'maybe' is not 0 or 1 (also accepted: blank, "
        "true/false, yes/no, x) (and 2 more rows like it)"
    )
    assert table_contents(db) == before


def test_an_earlier_row_is_reported_before_a_file_cut_in_its_last_reviewer_cell(
    db: Database, tmp_path, write_predictions
) -> None:
    """A file cut right after the comma before its last reviewer cell is refused, but a
    problem in an earlier row comes first, as every other problem in the file does."""
    project_id = make_project(db, write_predictions, dev=20, errors=5)
    cut = "example_id,blurry,reviewer\nex0000,1,ann\nex0001,0,"

    with pytest.raises(InvalidInput, match="cut short") as caught:
        run_import(db, write(tmp_path, cut), project_id)
    assert (caught.value.row, caught.value.column) == (3, "reviewer")

    earlier = cut.replace("ex0000,1,ann", "ex0010,1,ann")  # a correctly predicted example
    with pytest.raises(InvalidInput, match="not a misclassified dev example") as caught:
        run_import(db, write(tmp_path, earlier), project_id)
    assert (caught.value.row, caught.value.column) == (2, "example_id")


@pytest.mark.parametrize(
    ("options", "expected"), [([], "spreadsheet"), (["--targeted"], "spreadsheet, targeted")]
)
def test_imported_reviews_are_a_random_sample_unless_targeted(
    db: Database, db_url: str, tmp_path, write_predictions, options: list[str], expected: str
) -> None:
    """Reviews a spreadsheet adds count as a random sample; with --targeted, as a targeted
    look. A review the example already had keeps how it was first reached."""
    project_with_instagram_filter(db, write_predictions)
    path = write(
        tmp_path, "example_id,blurry,instagram filter,reviewer\nex0004,1,0,ann\nex0000,1,0,ann\n"
    )

    result = CliRunner().invoke(
        cli, ["--db", db_url, "import-tags", str(path), "--project", PROJECT, *options]
    )

    assert result.exit_code == 0, result.output
    with db.begin() as session:
        reached = dict(
            session.execute(
                select(Example.example_id, Review.reached).join(
                    Review, Review.example_pk == Example.id
                )
            ).all()
        )
    assert reached["ex0004"] == expected
    assert reached["ex0000"] == "random"  # reviewed on the screen before the import
