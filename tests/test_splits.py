"""Error by split and the method's gaps: avoidable bias, variance, data mismatch, overfitting."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from labeltool import splits
from labeltool.cli import cli
from labeltool.db import Database
from labeltool.errors import InvalidInput
from labeltool.models import Project
from tests.test_report import PROJECT, make_project


def split_rows(split: str, n: int, errors: int) -> list[dict]:
    """`n` rows of `split`, the first `errors` misclassified, ids unique to the split."""
    return [
        {
            "example_id": f"{split}-{i:04d}",
            "image": f"images/{split}-{i:04d}.png",
            "label": "cat",
            "prediction": "dog" if i < errors else "cat",
            "confidence": "0.9",
            "split": split,
        }
        for i in range(n)
    ]


@pytest.fixture
def four_splits(db: Database, write_predictions) -> int:
    """train 2%, train-dev 6%, dev 10% (the default dev rows), test 11%."""
    extra = split_rows("train", 100, 2) + split_rows("train-dev", 100, 6)
    extra += split_rows("test", 100, 11)
    return make_project(db, write_predictions, dev=100, errors=10, extra_rows=extra)


def test_error_by_split_counts_each_split_in_the_methods_order(db: Database, four_splits):
    """Each split's examples, errors and error rate, ordered train, train-dev, dev, test."""
    with db.begin() as session:
        frame = splits.error_by_split(session, project_id=four_splits)
    assert frame["split"].tolist() == ["train", "train-dev", "dev", "test"]
    assert frame["misclassified"].tolist() == [2, 6, 10, 11]
    assert frame["error"].tolist() == pytest.approx([0.02, 0.06, 0.10, 0.11])


def test_gaps_name_variance_mismatch_and_overfitting_largest_first(db: Database, four_splits):
    """Without a human level: variance 4, data mismatch 4, overfitting 1 point, largest first."""
    with db.begin() as session:
        gaps = splits.error_gaps(splits.error_by_split(session, project_id=four_splits))
    assert gaps["gap"].tolist() == ["variance", "data mismatch", "overfitting to the dev set"]
    assert gaps["size"].tolist() == pytest.approx([0.04, 0.04, 0.01])
    assert splits.largest_gap_sentence(gaps).startswith("The largest gap is variance (4.0 points")


def test_human_level_error_adds_avoidable_bias(db: Database, four_splits):
    """With human-level error 0.5%, avoidable bias is train error minus it (1.5 points)."""
    with db.begin() as session:
        splits.set_human_level_error(session, project_id=four_splits, error=0.005)
    with db.begin() as session:
        human = session.get(Project, four_splits).human_level_error
        gaps = splits.error_gaps(
            splits.error_by_split(session, project_id=four_splits), human_level_error=human
        )
    bias = gaps.set_index("gap").loc["avoidable bias"]
    assert (bias["from_split"], bias["to_split"]) == ("human-level", "train")
    assert bias["size"] == pytest.approx(0.015)


def test_without_train_dev_the_gap_is_variance_plus_mismatch(db: Database, write_predictions):
    """train -> dev without a train-dev split cannot tell variance from data mismatch."""
    project_id = make_project(
        db, write_predictions, dev=100, errors=10, extra_rows=split_rows("train", 100, 1)
    )
    with db.begin() as session:
        gaps = splits.error_gaps(splits.error_by_split(session, project_id=project_id))
    assert gaps["gap"].tolist() == ["variance + data mismatch"]
    assert "train-dev" in gaps.iloc[0]["suggestion"]


def test_human_level_error_outside_0_1_is_refused(db: Database, four_splits):
    """A human-level error must be a fraction; 5 (meaning 5%?) is refused, not stored."""
    with db.begin() as session, pytest.raises(InvalidInput):
        splits.set_human_level_error(session, project_id=four_splits, error=5)
    with db.begin() as session:
        assert session.get(Project, four_splits).human_level_error is None


def test_cli_report_table_shows_error_by_split(db_url: str, four_splits):
    """`labeltool report` adds the split table and the largest-gap sentence when splits exist."""
    result = CliRunner().invoke(cli, ["--db", db_url, "report", "--project", PROJECT])
    assert result.exit_code == 0, result.output
    assert "Error by split" in result.output
    assert "train-dev" in result.output and "variance: +4.0 points" in result.output
    assert "The largest gap is variance" in result.output


def test_report_page_saves_human_level_error_and_shows_gaps(
    sqlite_db: Database, write_predictions, run_app
):
    """Entering 0.5 (%) on the report page stores 0.005 and shows the avoidable-bias gap."""
    extra = split_rows("train", 100, 2) + split_rows("train-dev", 100, 6)
    project_id = make_project(sqlite_db, write_predictions, dev=100, errors=10, extra_rows=extra)
    app = run_app(sqlite_db, "app_pages/report.py")

    app.number_input(key="human_level_error").set_value(0.5).run()

    assert not app.exception, app.exception
    with sqlite_db.begin() as session:
        assert session.get(Project, project_id).human_level_error == pytest.approx(0.005)
    gaps = next(d.value for d in app.dataframe if "suggestion" in d.value.columns)
    assert gaps["gap"].tolist()[:1] == ["variance"]
    assert "avoidable bias" in gaps["gap"].tolist()
