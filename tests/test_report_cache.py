"""The report keeps its numbers while the project's data is unchanged, and only then.

Every kind of change a report number rests on (a tag, a review, a skip, a category, the
eyeball share, an import, a change committed by another process) gives fresh numbers; a
change no number rests on (an effort estimate, a colour, a comment) reruns from the kept
ones; a rolled-back change leaves nothing behind. On SQLite the data version comes from
triggers, on PostgreSQL from the snapshot: both are exercised.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy import select, update

from labeltool import eyeball, labeling, report, report_cache, review_queue, splits
from labeltool.categories import create_category, update_category
from labeltool.db import Database
from labeltool.models import Category, Example, Project
from tests.conftest import recorded_statements
from tests.review_scenario import Run


@pytest.fixture(autouse=True)
def _cold() -> None:
    report_cache.forget()


def _numbers(db: Database, run: Run) -> tuple:
    """What the report page shows, as comparable values."""
    with db.begin() as session:
        top = report.headline(session, project_id=run.id)
        table = report.ceiling_table(session, project_id=run.id, top=top)
        return (
            top,
            _records(table),
            _records(report.reviewer_counts(session, project_id=run.id)),
            _records(review_queue.confusion_pairs(session, project_id=run.id)),
            _records(splits.error_by_split(session, project_id=run.id)),
            eyeball.eyeball_split(session, project_id=run.id),
        )


def _records(frame) -> list[dict]:
    """Rows as dicts, NaN as None (NaN never equals itself)."""
    return frame.astype(object).where(frame.notna(), None).to_dict("records")


def _statements(db: Database, run: Run) -> list[str]:
    with recorded_statements(db.engine) as seen:
        _numbers(db, run)
    return seen


def _blurry(db: Database, run: Run) -> int:
    with db.begin() as session:
        return create_category(session, project_id=run.id, name="blurry").id


def test_a_rerun_with_nothing_changed_reads_only_the_data_version(db: Database, run: Run):
    _blurry(db, run)
    first = _statements(db, run)
    assert len(first) > 6
    # One version read per kept result, nothing else. On PostgreSQL the version is the
    # cluster's snapshot, which any commit elsewhere on the server (another test run,
    # autovacuum's analyze) moves on: then the rerun rightly recomputes, so a few tries.
    for _ in range(5):
        again = _statements(db, run)
        if len(again) == 6:
            break
    assert len(again) == 6, again
    assert all("data_version" in s or "pg_current_snapshot" in s for s in again), again


CHANGES: dict[str, Callable[[Database, Run], None]] = {}


def change(function):
    CHANGES[function.__name__] = function
    return function


@change
def tag_and_review(db: Database, run: Run) -> None:
    category = _category(db, run)
    with db.begin() as session:
        labeling.set_tag(session, example_pks=[run.pk["e02"]], category_id=category, reviewer="ann")
        labeling.mark_reviewed(session, example_pks=[run.pk["e02"]], reviewer="ann")


@change
def untag(db: Database, run: Run) -> None:
    with db.begin() as session:
        category = session.scalar(select(Category.id).where(Category.project_id == run.id))
        labeling.set_tag(
            session, example_pks=[run.pk["e01"]], category_id=category, reviewer="ann", tagged=False
        )


@change
def review(db: Database, run: Run) -> None:
    with db.begin() as session:
        labeling.mark_reviewed(session, example_pks=[run.pk["e05"]], reviewer="bob")


@change
def review_state_in_sql(db: Database, run: Run) -> None:
    with db.begin() as session:
        session.execute(
            update(Example).where(Example.id == run.pk["e01"]).values(review_state="skipped")
        )


@change
def rename_category(db: Database, run: Run) -> None:
    with db.begin() as session:
        category = session.scalar(select(Category.id).where(Category.project_id == run.id))
        update_category(session, category_id=category, name="smudged")


@change
def archive_category(db: Database, run: Run) -> None:
    with db.begin() as session:
        category = session.scalar(select(Category.id).where(Category.project_id == run.id))
        update_category(session, category_id=category, archived=True)


@change
def new_category(db: Database, run: Run) -> None:
    with db.begin() as session:
        create_category(session, project_id=run.id, name="dark")


@change
def eyeball_share(db: Database, run: Run) -> None:
    with db.begin() as session:
        eyeball.set_eyeball_fraction(session, project_id=run.id, fraction=0.5)


@change
def relabel_in_sql(db: Database, run: Run) -> None:
    """Even a change made outside labeltool's functions (here: raw SQL)."""
    with db.begin() as session:
        session.execute(
            update(Example)
            .where(Example.id == run.pk["c00"])
            .values(prediction="dog", is_error=True)
        )


def _category(db: Database, run: Run) -> int:
    with db.begin() as session:
        return session.scalar(select(Category.id).where(Category.project_id == run.id))


@pytest.mark.parametrize("name", list(CHANGES))
def test_every_change_a_number_rests_on_gives_fresh_numbers(db: Database, run: Run, name):
    category = _blurry(db, run)
    with db.begin() as session:
        labeling.set_tag(session, example_pks=[run.pk["e01"]], category_id=category, reviewer="ann")
        labeling.mark_reviewed(session, example_pks=[run.pk["e01"]], reviewer="ann")
    kept = _numbers(db, run)

    CHANGES[name](db, run)

    fresh = _numbers(db, run)
    report_cache.forget()
    assert fresh == _numbers(db, run), "kept numbers served after a change"
    assert fresh != kept, f"{name} should change the report (the test would prove nothing)"


def test_an_effort_a_colour_or_a_comment_keeps_the_numbers(sqlite_db: Database, write_predictions):
    """On SQLite (on PostgreSQL any committed write gives a new snapshot, so numbers are
    recomputed: correct, only slower)."""
    from tests.review_scenario import import_run

    db = sqlite_db
    run = import_run(db, write_predictions, "run1", "run1.csv")
    category = _blurry(db, run)
    _numbers(db, run)
    with db.begin() as session:
        update_category(session, category_id=category, effort=3.0, colour="#ff0000")
        labeling.set_comment(session, example_pk=run.pk["e02"], comment="look again")
    assert len(_statements(db, run)) == 6


def test_a_rolled_back_change_leaves_no_kept_numbers_behind(db: Database, run: Run):
    category = _blurry(db, run)
    clean = _numbers(db, run)

    class Undo(Exception):
        pass

    with pytest.raises(Undo), db.begin() as session:
        labeling.set_tag(session, example_pks=[run.pk["e03"]], category_id=category, reviewer="ann")
        labeling.mark_reviewed(session, example_pks=[run.pk["e03"]], reviewer="ann")
        inside = report.headline(session, project_id=run.id)
        assert inside.reviewed == 1  # the transaction sees its own change
        raise Undo

    assert _numbers(db, run) == clean
    # A later, different change must not meet the rolled-back transaction's numbers.
    with db.begin() as session:
        labeling.mark_reviewed(session, example_pks=[run.pk["e04"]], reviewer="bob")
    assert report.headline.uncached  # the undecorated function, for the oracle below
    with db.begin() as session:
        expected = report.headline.uncached(session, project_id=run.id)
        assert report.headline(session, project_id=run.id) == expected
        assert expected.reviewed == 1


def test_a_change_committed_by_another_process_is_seen(db: Database, run: Run):
    """Another Database on the same URL stands for another process (the CLI, a reviewer's
    server): its commit must reach numbers this one kept."""
    category = _blurry(db, run)
    kept = _numbers(db, run)
    other = Database.open(db.url if "***" not in db.url else str(db.engine.url))
    try:
        with other.begin() as session:
            labeling.set_tag(
                session, example_pks=[run.pk["e07"]], category_id=category, reviewer="cy"
            )
            labeling.mark_reviewed(session, example_pks=[run.pk["e07"]], reviewer="cy")
    finally:
        other.dispose()
    fresh = _numbers(db, run)
    assert fresh != kept
    assert fresh[0].reviewed == 1


def test_two_databases_never_share_kept_numbers(tmp_path, write_predictions):
    """Two SQLite files whose first projects have the same id and the same data."""
    from tests.review_scenario import import_run

    numbers = []
    for name in ("a", "b"):
        db = Database.open(f"sqlite:///{tmp_path / name}.db")
        try:
            run = import_run(db, write_predictions, "run1", f"{name}.csv")
            if name == "b":
                with db.begin() as session:
                    labeling.mark_reviewed(session, example_pks=[run.pk["e00"]], reviewer="x")
            numbers.append(_numbers(db, run)[0].reviewed)
        finally:
            db.dispose()
    assert numbers == [0, 1]


def test_projects_get_different_starting_versions(db: Database, run: Run, other: Run):
    with db.begin() as session:
        versions = session.scalars(select(Project.data_version)).all()
    assert len(set(versions)) == len(versions) == 2
