"""Benchmark a team under load (issue 12): eight reviewer processes for 60 s on one project,
on a SQLite file and on PostgreSQL, each tagging, untagging, commenting, saving and skipping
random dev errors through `review_actions.apply_actions`, as the review page does, with the
page's retry when the database refuses a transaction. r1 and r2 share 30 examples.

The project is the bundled sample (246 dev errors) imported by the real importer into a
fresh SQLite file in a temp dir, and into a fresh PostgreSQL schema (dropped afterwards) when
`--postgres URL`, LABELTOOL_BENCH_DATABASE_URL or LABELTOOL_TEST_DATABASE_URL gives a server.
The harness is tests/load_workers.py, which tests/test_team_load.py runs too.

    .venv/bin/python bench/bench_team_load.py [--seconds 60] [--postgres URL] [--seed N]

Prints, per database: actions per second (all and per reviewer), step latency, retries,
failures that would reach a reviewer, then whether each reviewer's tags and reviews are as
their process left them and whether the audit trail replays to the database. Asserts nothing
about timings; exits 1 when the data is wrong or a failure reached a reviewer.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from labeltool.db import Database  # noqa: E402 - needs the sys.path line above
from tests.conftest import postgres_schema  # noqa: E402 - the tests' throwaway schema
from tests.load_workers import check_database, prepare_project, run_load  # noqa: E402

PG_ENVS = ("LABELTOOL_BENCH_DATABASE_URL", "LABELTOOL_TEST_DATABASE_URL")
SECONDS_ENV = "LABELTOOL_LOAD_SECONDS"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--seconds",
        type=float,
        default=float(os.environ.get(SECONDS_ENV, "60")),
        help=f"how long each reviewer works (default 60, or ${SECONDS_ENV})",
    )
    parser.add_argument("--postgres", metavar="URL", help="PostgreSQL server to run on too")
    parser.add_argument("--seed", type=int, help="the random choices' seed (default: random)")
    args = parser.parse_args()
    pg_base = args.postgres or next((os.environ[e] for e in PG_ENVS if os.environ.get(e)), None)

    wrong = False
    with tempfile.TemporaryDirectory(prefix="labeltool-bench-load-") as tmp:
        wrong |= _bench(f"sqlite:///{Path(tmp) / 'bench.db'}", args.seconds, args.seed)
    if pg_base:
        with postgres_schema(pg_base, prefix="bench") as url:
            wrong |= _bench(url, args.seconds, args.seed)
    else:
        print(f"\n(PostgreSQL skipped: pass --postgres URL or set {PG_ENVS[0]})")
    load = os.getloadavg()[0]
    print(f"\n(load average over the last minute: {load:.1f}, on {os.cpu_count()} CPUs)")
    return 1 if wrong else 0


def _bench(url: str, seconds: float, seed: int | None) -> bool:
    """Run the team on `url`, print its figures and checks; whether anything was wrong."""
    project_id = prepare_project(url)
    result = run_load(url, project_id, seconds=seconds, seed=seed)
    print(f"\n{result.summary()}")
    problems = result.crashes + result.failures
    for failure in problems[:10]:
        print(f"  failure: {failure}")
    lost = check_database(url, project_id, result)
    print(f"  tags and reviews as each reviewer left them: {'yes' if not lost else 'NO'}")
    for line in lost:
        print(f"    {line}")
    differences = _replay(url, project_id)
    print(f"  audit replay: {'equal' if not differences else 'DIFFERS'}")
    for line in differences[:20]:
        print(f"    {line}")
    return bool(problems or lost or differences)


def _replay(url: str, project_id: int) -> list[str]:
    """How the audit trail's replay differs from the database (empty: equal)."""
    from labeltool import audit

    if not hasattr(audit, "differences"):
        return ["labeltool.audit.differences does not exist yet"]
    db = Database.open(url, migrate=False)
    try:
        with db.begin() as session:
            return audit.differences(session, project_id=project_id, limit=200)
    finally:
        db.dispose()


if __name__ == "__main__":
    raise SystemExit(main())
