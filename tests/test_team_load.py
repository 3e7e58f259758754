"""A team under load (issue 12): eight reviewer processes for a minute on one project, on a
SQLite file and on PostgreSQL, through the functions the review page calls.

The run happens once per database (tests/load_workers.py); each test checks one thing about
it. Set LABELTOOL_LOAD_SECONDS to run shorter while developing; the proof is the default 60 s.
`pytest -s` prints the figures (actions per second, latency, retries); the messages say them too.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import PG_ENV, postgres_schema
from tests.load_workers import (
    PAIR,
    REVIEWERS,
    LoadResult,
    actions_on,
    check_database,
    prepare_project,
    run_load,
)

SECONDS = float(os.environ.get("LABELTOOL_LOAD_SECONDS", "60"))
#: Each reviewer must have applied at least this many actions (100 in the full minute).
MIN_ACTIONS = max(1, round(100 * SECONDS / 60))


@dataclass(frozen=True)
class TeamRun:
    url: str
    project_id: int
    result: LoadResult


@pytest.fixture(
    scope="module",
    params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)],
)
def team_run(request: pytest.FixtureRequest, tmp_path_factory) -> Iterator[TeamRun]:
    """The eight-process run, once per database, on a freshly imported project."""
    if request.param == "sqlite":
        folder: Path = tmp_path_factory.mktemp("team-load")
        yield _run(f"sqlite:///{folder / 'labeltool.db'}")
        return
    base = os.environ.get(PG_ENV)
    if not base:
        pytest.skip(f"PostgreSQL tests need {PG_ENV}")
    with postgres_schema(base, prefix="load") as url:
        yield _run(url)


def test_no_failure_reaches_a_reviewer(team_run: TeamRun) -> None:
    """Every action of every reviewer is applied, at most after a retry: none is refused,
    none is given up on, no process crashes."""
    result = team_run.result
    assert result.crashes == [], result.summary()
    assert result.failures == [], "\n".join([result.summary(), *result.failures[:10]])


def test_every_reviewer_acted_and_the_pair_met(team_run: TeamRun) -> None:
    """Each of the eight reviewers applied actions all along, and r1 and r2 acted on the same
    examples (the collisions the run is there to make)."""
    result = team_run.result
    assert [w.reviewer for w in result.workers] == list(REVIEWERS)
    slow = {w.reviewer: w.actions for w in result.workers if w.actions < MIN_ACTIONS}
    assert slow == {}, f"fewer than {MIN_ACTIONS} actions:\n{result.summary()}"
    assert len(result.shared_touched) >= 10, result.summary()
    for reviewer in PAIR:
        assert result.worker(reviewer).tags, f"{reviewer} ended with no tag on"


def test_no_tag_or_review_is_lost_or_held_twice(team_run: TeamRun) -> None:
    """Each reviewer's tags and reviews in the database are exactly those their process
    believes it left, and no (example, category, reviewer) tag is held twice."""
    problems = check_database(team_run.url, team_run.project_id, team_run.result)
    assert problems == [], team_run.result.summary()


def test_the_audit_trail_replays_to_the_database(team_run: TeamRun) -> None:
    """Replaying the audit trail from the fresh import gives exactly the database's tags,
    reviews, comments, corrected labels and review states."""
    from labeltool import audit
    from labeltool.db import Database

    db = Database.open(team_run.url, migrate=False)
    try:
        with db.begin() as session:
            differences = audit.differences(session, project_id=team_run.project_id, limit=200)
            culprits = _actions_behind(session, team_run) if differences else []
    finally:
        db.dispose()
    assert differences == [], "\n".join(
        [team_run.result.summary(), *differences[:40], "actions on those examples:", *culprits]
    )


# --- helpers ----------------------------------------------------------------------------


def _run(url: str) -> TeamRun:
    project_id = prepare_project(url)
    result = run_load(url, project_id, seconds=SECONDS)
    print(f"\n{result.summary()}")
    return TeamRun(url, project_id, result)


def _actions_behind(session, team_run: TeamRun) -> list[str]:
    """The applied actions on the examples where the replay and the database differ."""
    from labeltool import audit

    replayed = audit.replay(session, project_id=team_run.project_id)
    held = audit.current(session, project_id=team_run.project_id)
    pks = {row[0] for row in replayed.tags ^ held.tags}
    pks |= {row[0] for row in replayed.reviews ^ held.reviews}
    for name in ("comments", "corrected_labels", "review_states"):
        one, other = getattr(replayed, name), getattr(held, name)
        pks |= {pk for pk in one.keys() | other.keys() if one.get(pk) != other.get(pk)}
    return actions_on(team_run.result, pks)
