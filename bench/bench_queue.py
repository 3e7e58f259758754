"""Benchmark the review loop's core calls: what one rerun of the review page asks of the
database, on projects of 2k, 20k and 200k examples (about 10% misclassified).

Each size gets a fresh SQLite file in a temp dir, filled by the real importer from a
generated CSV (ten classes with prob_ columns, no images: `check_images=False`). The bench
then reviews examples one after another as the page does (read the screen, toggle a tag,
save & next) and prints the median milliseconds of each call, each in a transaction of its
own as the page runs it (so the writes include their commit). A fifth of the errors are
reviewed beforehand, so the queue has reviewed and unreviewed examples in it.

With LABELTOOL_TEST_DATABASE_URL set (a PostgreSQL server), the two smaller sizes also run
there, each in a fresh schema that is dropped afterwards.

    .venv/bin/python bench/bench_queue.py [--sizes 2000 20000 200000] [--rounds 30]

Prints figures; asserts nothing about timings.
"""

from __future__ import annotations

import argparse
import csv
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from labeltool import labeling, review_queue  # noqa: E402 - needs the sys.path line above
from labeltool.categories import create_category, list_categories  # noqa: E402
from labeltool.db import Database  # noqa: E402
from labeltool.importing import import_predictions  # noqa: E402
from labeltool.review_queue import QueueFilter  # noqa: E402
from tests.conftest import postgres_schema  # noqa: E402 - the tests' throwaway schema

PG_ENV = "LABELTOOL_TEST_DATABASE_URL"
SIZES = (2_000, 20_000, 200_000)
CLASSES = tuple(str(digit) for digit in range(10))
ERROR_SHARE = 0.10
REVIEWED_BEFOREHAND = 0.20
REVIEWER = "bench"
#: The page's default queue, and the confidence order that cannot use the queue's index.
QUEUES = {
    "": QueueFilter(),
    " [least confident]": QueueFilter(order="least confident first"),
}
#: The calls of one rerun, in the order the page makes them.
READS = ("list_categories", "confusion_pairs", "review_progress")
QUEUE_CALLS = ("queue_count", "first_in_queue", "next_in_queue", "queue_position")
EXAMPLE_CALLS = ("get_example_view", "toggle_tag", "mark_reviewed")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=SIZES, help="examples per project")
    parser.add_argument("--rounds", type=int, default=30, help="examples reviewed per size")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="labeltool-bench-") as tmp:
        folder = Path(tmp)
        results = [
            _bench(f"sqlite:///{folder / f'bench-{n}.db'}", n, folder, args.rounds)
            for n in args.sizes
        ]
        _print("SQLite (one file, WAL)", results)
        base = os.environ.get(PG_ENV)
        if base:
            sizes = sorted(args.sizes)[:2]
            with postgres_schema(base, prefix="bench") as url:
                results = [_bench(url, n, folder, args.rounds, project=f"bench-{n}") for n in sizes]
            _print("PostgreSQL (fresh schema)", results)
        else:
            print(f"\n(PostgreSQL skipped: set {PG_ENV} to run the two smaller sizes there too)")


def _bench(url: str, n: int, folder: Path, rounds: int, *, project: str = "bench") -> dict:
    """Import a project of `n` examples into `url`, then time `rounds` review-page reruns."""
    predictions = _write_predictions(folder / f"predictions-{n}.csv", n)
    db = Database.open(url)
    try:
        started = time.perf_counter()
        with db.begin() as session:
            summary = import_predictions(session, predictions, project=project, check_images=False)
        import_seconds = time.perf_counter() - started
        with db.begin() as session:
            project_id = _prepare(session, project)
        timings = _review(db, project_id, rounds)
    finally:
        db.dispose()
    return {
        "n": n,
        "errors": summary.misclassified,
        "import_seconds": import_seconds,
        "timings": timings,
    }


def _prepare(session, project: str) -> int:
    """Three categories, and a fifth of the errors reviewed with a tag each."""
    from labeltool.projects import get_project

    project_id = get_project(session, project).id
    for name in ("blurry", "incorrectly labeled", "dark"):
        create_category(session, project_id=project_id, name=name)
    category_ids = [c.id for c in list_categories(session, project_id=project_id)]
    errors = review_queue.queue_count(session, project_id=project_id, queue=QueueFilter())
    done = review_queue.queue_ids(
        session,
        project_id=project_id,
        queue=QueueFilter(),
        limit=int(errors * REVIEWED_BEFOREHAND),
    )
    for offset, category_id in enumerate(category_ids):
        labeling.set_tag(
            session, example_pks=done[offset::3], category_id=category_id, reviewer=REVIEWER
        )
    labeling.mark_reviewed(session, example_pks=done, reviewer=REVIEWER)
    return project_id


def _review(db: Database, project_id: int, rounds: int) -> dict[str, list[float]]:
    """Review `rounds` examples the way the page does; the milliseconds of every call."""
    timings: dict[str, list[float]] = {}

    def timed(name: str, call: Callable):
        started = time.perf_counter()
        with db.begin() as session:
            result = call(session)
        timings.setdefault(name, []).append((time.perf_counter() - started) * 1000)
        return result

    with db.begin() as session:
        category_ids = [c.id for c in list_categories(session, project_id=project_id)]
    pk = _first(db, project_id)
    for round_number in range(rounds):
        timed("list_categories", lambda s: list_categories(s, project_id=project_id))
        timed("confusion_pairs", lambda s: review_queue.confusion_pairs(s, project_id=project_id))
        timed("review_progress", lambda s: review_queue.review_progress(s, project_id=project_id))
        for suffix, queue in QUEUES.items():
            scope = {"project_id": project_id, "queue": queue}
            timed(f"queue_count{suffix}", lambda s, k=scope: review_queue.queue_count(s, **k))
            timed(f"first_in_queue{suffix}", lambda s, k=scope: review_queue.first_in_queue(s, **k))
            timed(
                f"queue_position{suffix}",
                lambda s, k=scope, p=pk: review_queue.queue_position(s, **k, pk=p),
            )
        timed("get_example_view", lambda s, p=pk: labeling.get_example_view(s, pk=p))
        category_id = category_ids[round_number % len(category_ids)]
        timed(
            "toggle_tag",
            lambda s, p=pk, c=category_id: labeling.toggle_tag(
                s, example_pk=p, category_id=c, reviewer=REVIEWER
            ),
        )
        timed(
            "mark_reviewed",
            lambda s, p=pk: labeling.mark_reviewed(s, example_pks=[p], reviewer=REVIEWER),
        )
        following = {
            suffix: timed(
                f"next_in_queue{suffix}",
                lambda s, q=queue, p=pk: review_queue.next_in_queue(
                    s, project_id=project_id, queue=q, after=p
                ),
            )
            for suffix, queue in QUEUES.items()
        }
        pk = following[""] or _first(db, project_id)
    return timings


def _first(db: Database, project_id: int) -> int:
    with db.begin() as session:
        pk = review_queue.first_in_queue(session, project_id=project_id, queue=QueueFilter())
    if pk is None:
        raise SystemExit("the generated project has no unreviewed errors left")
    return pk


def _write_predictions(path: Path, n: int) -> Path:
    """`n` rows over ten classes, every tenth one misclassified, with prob_ columns."""
    if path.exists():
        return path
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            ["example_id", "image", "label", "prediction", "confidence"]
            + [f"prob_{c}" for c in CLASSES]
        )
        every = round(1 / ERROR_SHARE)
        for i in range(n):
            label = CLASSES[i % len(CLASSES)]
            wrong = i % every == every - 1
            prediction = CLASSES[(i * 7 + 3) % len(CLASSES)] if wrong else label
            if wrong and prediction == label:
                prediction = CLASSES[(i + 1) % len(CLASSES)]
            confidence = 0.30 + (i * 37 % 70) / 100
            rest = (1 - confidence) / (len(CLASSES) - 1)
            probabilities = [confidence if c == prediction else rest for c in CLASSES]
            writer.writerow(
                [f"ex{i:07d}", f"images/ex{i:07d}.png", label, prediction, f"{confidence:.4f}"]
                + [f"{p:.4f}" for p in probabilities]
            )
    return path


def _print(title: str, results: list[dict]) -> None:
    print(f"\n{title}: median ms per call, each in its own transaction")
    names = [name for name in results[0]["timings"]]
    width = max(len(name) for name in names) + 2
    header = "".join(f"{r['n']:>12,}" for r in results)
    print(f"{'examples':<{width}}{header}")
    print(f"{'errors':<{width}}" + "".join(f"{r['errors']:>12,}" for r in results))
    for name in _ordered(names):
        cells = "".join(f"{statistics.median(r['timings'][name]):>12.2f}" for r in results)
        print(f"{name:<{width}}{cells}")
    # The default queue's calls: what one tag, save & next and the rerun after it cost.
    rerun = [
        sum(statistics.median(t) for name, t in r["timings"].items() if "[" not in name)
        for r in results
    ]
    print(f"{'sum (default queue)':<{width}}" + "".join(f"{ms:>12.2f}" for ms in rerun))
    print(
        f"{'import seconds':<{width}}" + "".join(f"{r['import_seconds']:>12.2f}" for r in results)
    )
    print(
        f"{'import rows/s':<{width}}"
        + "".join(f"{r['n'] / r['import_seconds']:>12,.0f}" for r in results)
    )


def _ordered(names: list[str]) -> list[str]:
    order = [*READS, *QUEUE_CALLS, *EXAMPLE_CALLS]
    return sorted(names, key=lambda name: (order.index(name.split(" ")[0]), name))


if __name__ == "__main__":
    main()
