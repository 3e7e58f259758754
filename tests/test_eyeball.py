"""Eyeball and blackbox dev sets: reviewers see one random part, the rest only measures."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from labeltool import eyeball, review_queue
from labeltool.cli import cli
from labeltool.db import Database
from labeltool.errors import InvalidInput
from labeltool.importing import import_predictions
from labeltool.models import Example, Project
from labeltool.review_queue import QueueFilter
from tests.conftest import make_rows
from tests.test_report import PROJECT, make_project

ALL_ERRORS = QueueFilter(states=())


def eyeball_ids(db: Database, project_id: int) -> set[str]:
    """The example_ids of the errors the queue shows (the eyeball part's errors)."""
    with db.begin() as session:
        pks = review_queue.queue_ids(session, project_id=project_id, queue=ALL_ERRORS, limit=10**6)
        return {session.get(Example, pk).example_id for pk in pks}


@pytest.fixture
def project_id(db: Database, write_predictions) -> int:
    """1,000 dev examples, 200 misclassified."""
    return make_project(db, write_predictions, dev=1000, errors=200)


def test_without_a_share_reviewers_see_every_dev_error(db: Database, project_id: int):
    """No eyeball share: the queue holds all 200 errors and the split has no blackbox part."""
    with db.begin() as session:
        split = eyeball.eyeball_split(session, project_id=project_id)
    assert len(eyeball_ids(db, project_id)) == 200
    assert (split.fraction, split.eyeball_examples, split.blackbox_examples) == (None, 1000, 0)


def test_the_queue_shows_only_the_eyeball_parts_errors(db: Database, project_id: int):
    """With a 25% share, the queue, progress and pairs count only the eyeball part's errors,
    which are about a quarter of them and add up with the blackbox part to the dev set."""
    with db.begin() as session:
        eyeball.set_eyeball_fraction(session, project_id=project_id, fraction=0.25)
    with db.begin() as session:
        split = eyeball.eyeball_split(session, project_id=project_id)
        count = review_queue.queue_count(session, project_id=project_id, queue=ALL_ERRORS)
        progress = review_queue.review_progress(session, project_id=project_id)
        pairs = review_queue.confusion_pairs(session, project_id=project_id)
    assert split.eyeball_examples + split.blackbox_examples == 1000
    assert split.eyeball_errors + split.blackbox_errors == 200
    assert 200 < split.eyeball_examples < 300
    assert count == progress.misclassified == int(pairs["errors"].sum()) == split.eyeball_errors
    assert 0 < split.eyeball_errors < 200


def test_raising_the_share_moves_fresh_examples_over_and_keeps_the_old_ones(
    db: Database, project_id: int
):
    """10% -> 30%: every eyeball error stays in, and new ones join (fresh examples)."""
    with db.begin() as session:
        eyeball.set_eyeball_fraction(session, project_id=project_id, fraction=0.1)
    small = eyeball_ids(db, project_id)
    with db.begin() as session:
        eyeball.set_eyeball_fraction(session, project_id=project_id, fraction=0.3)
    large = eyeball_ids(db, project_id)
    assert small < large


def test_the_eyeball_part_survives_a_reimport(db: Database, project_id: int, write_predictions):
    """Importing the same predictions again leaves the eyeball part exactly as it was."""
    with db.begin() as session:
        eyeball.set_eyeball_fraction(session, project_id=project_id, fraction=0.2)
    before = eyeball_ids(db, project_id)
    path = write_predictions(make_rows(1000, errors=200), name="again.csv", images=False)
    with db.begin() as session:
        import_predictions(session, path, project=PROJECT, check_images=False)
    assert eyeball_ids(db, project_id) == before


def test_share_outside_0_100_percent_is_refused(db: Database, project_id: int):
    """0 and 1.5 are refused; 1.0 (the whole dev set) clears the split."""
    for bad in (0.0, 1.5):
        with db.begin() as session, pytest.raises(InvalidInput):
            eyeball.set_eyeball_fraction(session, project_id=project_id, fraction=bad)
    with db.begin() as session:
        eyeball.set_eyeball_fraction(session, project_id=project_id, fraction=1.0)
    with db.begin() as session:
        assert session.get(Project, project_id).eyeball_fraction is None


def test_eyeball_error_far_below_blackbox_warns_of_overfitting():
    """2% eyeball vs 10% blackbox error over 1,000 examples each is no chance: warn."""
    split = eyeball.EyeballSplit(
        fraction=0.1,
        eyeball_examples=1000,
        eyeball_errors=20,
        blackbox_examples=1000,
        blackbox_errors=100,
    )
    assert split.p_value < 0.001
    assert "overfit the eyeball set" in split.warning
    assert "8.0 points below" in split.warning


def test_similar_error_rates_give_no_warning():
    """9.5% vs 10% over 1,000 examples each is within chance: no warning."""
    split = eyeball.EyeballSplit(
        fraction=0.1,
        eyeball_examples=1000,
        eyeball_errors=95,
        blackbox_examples=1000,
        blackbox_errors=100,
    )
    assert split.p_value > 0.5
    assert split.warning is None


def test_suggested_share_follows_the_methods_example():
    """~100 errors at a 5% error rate need ~2,000 eyeball examples: 10% of 20,000."""
    assert eyeball.suggested_fraction(dev_examples=20_000, dev_error=0.05) == pytest.approx(0.1)
    assert eyeball.suggested_fraction(dev_examples=500, dev_error=0.05) == 1.0
    assert eyeball.suggested_fraction(dev_examples=500, dev_error=0.0) is None


def test_cli_sets_and_shows_the_eyeball_split(db_url: str, project_id: int):
    """`labeltool eyeball --share 25` sets it and says both parts' error; --off clears it."""
    runner = CliRunner()
    result = runner.invoke(cli, ["--db", db_url, "eyeball", "--project", PROJECT, "--share", "25"])
    assert result.exit_code == 0, result.output
    assert "eyeball part 25.0% of the dev set" in result.output
    assert "blackbox part" in result.output
    result = runner.invoke(cli, ["--db", db_url, "eyeball", "--project", PROJECT, "--off"])
    assert result.exit_code == 0 and "the whole dev set (1000 examples)" in result.output
    result = runner.invoke(cli, ["--db", db_url, "eyeball", "--project", PROJECT, "--share", "0"])
    assert result.exit_code == 2


def test_report_page_sets_the_eyeball_share(sqlite_db: Database, write_predictions, run_app):
    """Entering 30 (%) on the report page stores 0.3 and shows both parts' dev error."""
    project_id = make_project(sqlite_db, write_predictions, dev=400, errors=80)
    app = run_app(sqlite_db, "app_pages/report.py")

    app.number_input(key="eyeball_share").set_value(30.0).run()

    assert not app.exception, app.exception
    with sqlite_db.begin() as session:
        assert session.get(Project, project_id).eyeball_fraction == pytest.approx(0.3)
    labels = {m.label for m in app.metric}
    assert {"Eyeball dev error", "Blackbox dev error"} <= labels


def test_review_screen_says_it_shows_the_eyeball_part(
    sqlite_db: Database, write_predictions, run_app
):
    """With a 30% share the review screen says so, and its progress counts eyeball errors."""
    project_id = make_project(sqlite_db, write_predictions, dev=400, errors=80)
    with sqlite_db.begin() as session:
        eyeball.set_eyeball_fraction(session, project_id=project_id, fraction=0.3)
        errors = eyeball.eyeball_split(session, project_id=project_id).eyeball_errors

    app = run_app(sqlite_db)

    assert any("eyeball part of the dev set (30% of it)" in c.value for c in app.caption)
    assert f"of {errors}** misclassified" in app.get("progress")[0].proto.text
