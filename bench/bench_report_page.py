"""Benchmark the report page: what one rerun of it asks of the core, on a project of 1,000,000
dev examples (10% misclassified: 100,000 errors) with 300,000 tags.

The project is built once in a SQLite file (a temp dir, or `--keep DIR` to reuse it between
runs): the real importer reads a generated CSV (ten classes, no images:
`check_images=False`), eight categories are added (one marks incorrect labels), and every
error is reviewed with three tags, by two reviewers. Building takes a few minutes; progress
is printed.

The bench then times the core calls of one report-page rerun, the same functions in the
same order and transactions as app_pages/report.py (the downloads are built only when
clicked, so none is in a rerun), and prints the median and p95 milliseconds of the rerun
and of each call; the target is a rerun under 300 ms. Three kinds of rerun are timed: with
the data unchanged (the numbers kept per data version, labeltool/report_cache.py), right
after the lead types an effort (no number depends on it), and right after a reviewer's
change (every number computed afresh: the cold figure). With `--apptest` (on by default) it
also times whole reruns of the page through Streamlit's AppTest (core, charts and tables).

    .venv/bin/python bench/bench_report_page.py [--examples 1000000] [--rounds 20]
        [--keep DIR] [--no-apptest]

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

from sqlalchemy import select  # noqa: E402

from labeltool import eyeball, labeling, report, review_queue, splits  # noqa: E402
from labeltool.categories import create_category, list_categories, update_category  # noqa: E402
from labeltool.db import Database  # noqa: E402
from labeltool.importing import import_predictions  # noqa: E402
from labeltool.models import Example, Project  # noqa: E402

PROJECT = "bench"
CLASSES = tuple(str(digit) for digit in range(10))
ERROR_SHARE = 0.10
CATEGORIES = (
    "incorrectly labeled",
    "blurry",
    "dark",
    "occluded",
    "small object",
    "unusual pose",
    "filter",
    "cropped",
)
#: Every error gets this many tags: 100,000 errors x 3 = 300,000 tags.
TAGS_PER_ERROR = 3
REVIEWERS = ("ann", "bob")
#: Rows per set_tag / mark_reviewed call while building (SQLite's bound-parameter limit).
CHUNK = 10_000
TARGET_MS = 300


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=1_000_000, help="dev examples")
    parser.add_argument("--rounds", type=int, default=20, help="reruns timed")
    parser.add_argument("--keep", type=Path, help="build (or reuse) the database in this folder")
    parser.add_argument("--no-apptest", action="store_true", help="skip the AppTest reruns")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="labeltool-bench-") as tmp:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"report-{args.examples}.db"
        url = f"sqlite:///{path}"
        db = Database.open(url)
        try:
            if not _built(db):
                _build(db, folder, args.examples)
            with db.begin() as session:
                project_id = session.scalar(select(Project.id).where(Project.name == PROJECT))
                _print_size(session, project_id)
            kept = _core_reruns(db, project_id, args.rounds)
            typed = _core_reruns(db, project_id, args.rounds, before=_type_an_effort)
            changed = _core_reruns(db, project_id, max(2, args.rounds // 4), before=_toggle_a_tag)
        finally:
            db.dispose()
        _print_timings("a rerun with the data unchanged (a slice picked, a chart shown)", kept)
        _print_timings("a rerun after the lead types an effort estimate", typed)
        _print_timings("a rerun after a reviewer's change (every number computed afresh)", changed)
        if not args.no_apptest:
            _apptest_reruns(url, args.rounds)


def page_rerun(db: Database, project_id: int, timed: Callable) -> None:
    """The core calls of one report-page rerun, in the page's order and transactions."""
    scope = {"project_id": project_id, "reviewer": None, "confusion_pair": None}
    with db.begin() as session:
        timed("reviewer_counts", lambda: report.reviewer_counts(session, project_id=project_id))
        timed(
            "confusion_pairs",
            lambda: review_queue.confusion_pairs(session, project_id=project_id),
        )
    with db.begin() as session:
        top = timed("headline", lambda: report.headline(session, **scope))
        timed("ceiling_table", lambda: report.ceiling_table(session, **scope, top=top))
        categories = timed(
            "list_categories",
            lambda: list_categories(session, project_id=project_id, include_archived=True),
        )
        if any(c.marks_incorrect_label for c in categories):
            timed(
                "incorrect_label_accounting",
                lambda: report.incorrect_label_accounting(session, **scope, top=top),
            )
    with db.begin() as session:
        timed("error_by_split", lambda: splits.error_by_split(session, project_id=project_id))
        timed("human_level_error", lambda: session.get(Project, project_id).human_level_error)
    with db.begin() as session:
        timed("eyeball_split", lambda: eyeball.eyeball_split(session, project_id=project_id))


def _type_an_effort(db: Database, project_id: int, round_: int) -> None:
    """What the page writes when the lead types an effort: no report number depends on it."""
    with db.begin() as session:
        category = list_categories(session, project_id=project_id)[0]
        update_category(session, category_id=category.id, effort=float(round_ + 1))


def _toggle_a_tag(db: Database, project_id: int, round_: int) -> None:
    """A reviewer's change committed before the rerun: every number must be computed afresh."""
    with db.begin() as session:
        category = list_categories(session, project_id=project_id)[0]
        pk = session.scalar(
            select(Example.id).where(Example.project_id == project_id, Example.is_error.is_(True))
        )
        labeling.set_tag(
            session,
            example_pks=[pk],
            category_id=category.id,
            reviewer="cy",
            tagged=round_ % 2 == 0,
        )


def _core_reruns(
    db: Database, project_id: int, rounds: int, before: Callable | None = None
) -> dict[str, list[float]]:
    """Milliseconds of each call, and of the whole rerun ("rerun"), over `rounds` reruns,
    each after `before(db, project_id, round)` when given."""
    timings: dict[str, list[float]] = {}

    def timed(name: str, call: Callable):
        started = time.perf_counter()
        result = call()
        timings.setdefault(name, []).append((time.perf_counter() - started) * 1000)
        return result

    page_rerun(db, project_id, lambda name, call: call())  # warm the page cache once
    for round_ in range(rounds):
        if before is not None:
            before(db, project_id, round_)
        started = time.perf_counter()
        page_rerun(db, project_id, timed)
        timings.setdefault("rerun", []).append((time.perf_counter() - started) * 1000)
    return timings


def _apptest_reruns(url: str, rounds: int) -> None:
    """Whole reruns of the report page through AppTest: core, charts, tables and widgets."""
    from streamlit.testing.v1 import AppTest

    from labeltool.config import APP_PATH, DB_ENV_VAR

    os.environ[DB_ENV_VAR] = url
    app = AppTest.from_file(str(APP_PATH), default_timeout=600)
    app.switch_page("app_pages/report.py")
    started = time.perf_counter()
    app.run()
    first = (time.perf_counter() - started) * 1000
    if app.exception:
        print(f"\nAppTest run failed: {app.exception}")
        return
    reruns = []
    for _ in range(max(3, rounds // 4)):
        started = time.perf_counter()
        app.run()
        reruns.append((time.perf_counter() - started) * 1000)
    print(
        f"\nAppTest, whole page: first run {first:,.0f} ms (opens the database); reruns median "
        f"{statistics.median(reruns):,.0f} ms, p95 {_p95(reruns):,.0f} ms ({len(reruns)} reruns)"
    )


def _built(db: Database) -> bool:
    with db.begin() as session:
        return session.scalar(select(Project.id).where(Project.name == PROJECT)) is not None


def _build(db: Database, folder: Path, examples: int) -> None:
    """Import `examples` rows, add the categories, review every error with three tags."""
    started = time.perf_counter()
    csv_path = _write_predictions(folder / f"predictions-{examples}.csv", examples)
    print(f"wrote {examples:,} rows in {time.perf_counter() - started:.0f}s", flush=True)
    started = time.perf_counter()
    with db.begin() as session:
        summary = import_predictions(session, csv_path, project=PROJECT, check_images=False)
    print(
        f"imported {examples:,} examples ({summary.misclassified:,} misclassified) in "
        f"{time.perf_counter() - started:.0f}s",
        flush=True,
    )
    started = time.perf_counter()
    with db.begin() as session:
        project_id = session.scalar(select(Project.id).where(Project.name == PROJECT))
        category_ids = [
            create_category(
                session,
                project_id=project_id,
                name=name,
                marks_incorrect_label=name == "incorrectly labeled" or None,
            ).id
            for name in CATEGORIES
        ]
        errors = list(
            session.scalars(
                select(Example.id)
                .where(Example.project_id == project_id, Example.is_error.is_(True))
                .order_by(Example.id)
            )
        )
    # Error i gets categories i, i+3 and i+5 (mod 8): three tags each, every category used.
    for start in range(0, len(errors), CHUNK):
        chunk = errors[start : start + CHUNK]
        reviewer = REVIEWERS[(start // CHUNK) % len(REVIEWERS)]
        with db.begin() as session:
            for offset, category_id in enumerate(category_ids):
                wanted = [
                    pk
                    for i, pk in enumerate(chunk, start)
                    if offset in {(i + step) % len(category_ids) for step in (0, 3, 5)}
                ]
                labeling.set_tag(
                    session, example_pks=wanted, category_id=category_id, reviewer=reviewer
                )
            labeling.mark_reviewed(session, example_pks=chunk, reviewer=reviewer)
        done = min(start + CHUNK, len(errors))
        print(f"  reviewed {done:,} of {len(errors):,} errors", flush=True)
    print(
        f"tagged {len(errors) * TAGS_PER_ERROR:,} tags in {time.perf_counter() - started:.0f}s",
        flush=True,
    )


def _write_predictions(path: Path, n: int) -> Path:
    """`n` rows over ten classes, every tenth one misclassified."""
    if path.exists():
        return path
    every = round(1 / ERROR_SHARE)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["example_id", "image", "label", "prediction", "confidence"])
        for i in range(n):
            label = CLASSES[i % len(CLASSES)]
            wrong = i % every == every - 1
            prediction = CLASSES[(i + 1 + i // every % 9) % len(CLASSES)] if wrong else label
            confidence = 0.30 + (i * 37 % 70) / 100
            writer.writerow(
                [f"ex{i:07d}", f"images/ex{i:07d}.png", label, prediction, f"{confidence:.4f}"]
            )
    return path


def _print_size(session, project_id: int) -> None:
    top = report.headline(session, project_id=project_id)
    print(
        f"\n{top.dev_examples:,} dev examples, {top.misclassified:,} misclassified, "
        f"{top.reviewed:,} reviewed errors"
    )


def _print_timings(what: str, timings: dict[str, list[float]]) -> None:
    rerun = timings.pop("rerun")
    print(f"\nCore time of {what} (target under {TARGET_MS} ms):")
    print(f"  median {statistics.median(rerun):,.1f} ms, p95 {_p95(rerun):,.1f} ms")
    width = max(len(name) for name in timings) + 2
    print(f"\n{'call':<{width}}{'median ms':>12}{'p95 ms':>12}")
    for name, values in timings.items():
        print(f"{name:<{width}}{statistics.median(values):>12.1f}{_p95(values):>12.1f}")


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


if __name__ == "__main__":
    main()
