"""A team under load: reviewer processes tagging, untagging, commenting and saving at once.

`prepare_project` imports the bundled sample (246 dev errors) into a fresh database with the
real importer and gives it the sample's categories, a lead and reviewers r1..r8. `run_load`
then starts one OS process per reviewer (the "spawn" method: nothing shared but the database),
each with its own engine, as separate app processes would have. Each applies random actions
through `review_actions.apply_actions`, in a transaction of its own, as the review page does;
like the page (whose browser sends unacknowledged actions again) it tries a transaction again
when the database refuses it (SQLAlchemyError), a bounded number of times. r1 and r2 draw from
the same 30 examples, so they meet on them all the time; the others draw from every dev error.

Each worker keeps what it believes it has done: the tags it has on, the examples it saved, and
a log of every applied action. `check_database` compares that with the database; the test
(tests/test_team_load.py) and the bench (bench/bench_team_load.py) share this module.
"""

from __future__ import annotations

import math
import multiprocessing
import random
import time
import traceback
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from labeltool.config import DEFAULT_SPLIT, SAMPLE_DIR
from labeltool.db import Database
from labeltool.errors import LabeltoolError
from labeltool.models import Example, Review, Tag
from labeltool.review_actions import ActionKind, ReviewAction, apply_actions

PROJECT = "team-load"
LEAD = "lead"
REVIEWERS = tuple(f"r{number}" for number in range(1, 9))
#: The two reviewers who work on the same examples, and how many examples they share.
PAIR = ("r1", "r2")
SHARED_EXAMPLES = 30
#: Attempts at one transaction before its failure would reach the reviewer.
MAX_ATTEMPTS = 10
#: Seconds before the first retry; doubled each time, up to the screen's resend delay.
FIRST_BACKOFF = 0.02
RESEND_AFTER = 1.5
#: How long the processes may take to start (imports, engine) before the run is given up.
START_TIMEOUT = 300
#: How each step's kind is drawn (one step = one transaction of one to three actions).
ACTION_WEIGHTS = {
    "tag": 40,
    "untag": 20,
    "comment": 15,
    "save": 17,
    "skip": 4,
    "corrected_label": 4,
}
WORDS = ("blurry", "thin stroke", "looks like a 7", "cut off", "label wrong?", "ok", "dark")


@dataclass(frozen=True)
class Plan:
    """What one worker process is told: where, as whom, on which examples, for how long."""

    url: str
    project_id: int
    reviewer: str
    pool: tuple[int, ...]
    categories: tuple[int, ...]
    class_names: tuple[str, ...]
    seconds: float
    seed: int


@dataclass
class WorkerResult:
    """What one reviewer process did, and what it believes the database holds for it."""

    reviewer: str
    #: Actions applied (an action refused by the core is a failure, not an action).
    actions: int = 0
    #: Transactions committed.
    steps: int = 0
    #: Transactions tried again after the database refused them, by the exception's name.
    retries: Counter = field(default_factory=Counter)
    #: The most attempts one transaction needed.
    most_attempts: int = 0
    #: What would have reached the reviewer: refusals, give-ups after MAX_ATTEMPTS, crashes.
    failures: list[str] = field(default_factory=list)
    #: Milliseconds each step took, its retries included (what the reviewer waits).
    latencies_ms: list[float] = field(default_factory=list)
    seconds: float = 0.0
    #: (example_pk, category_id) of each tag this reviewer believes is on.
    tags: set[tuple[int, int]] = field(default_factory=set)
    #: Examples this reviewer saved (a Review row each).
    reviewed: set[int] = field(default_factory=set)
    #: Examples this reviewer applied an action to.
    touched: set[int] = field(default_factory=set)
    #: Every applied action: (time.time() at its commit, seq, kind, example_pk, category, on,
    #: text).
    log: list[tuple] = field(default_factory=list)
    #: The traceback when the worker itself crashed (the run is then void).
    crashed: str | None = None

    @property
    def actions_per_second(self) -> float:
        return self.actions / self.seconds if self.seconds else 0.0


@dataclass
class LoadResult:
    """The whole run on one database."""

    backend: str
    seconds: float
    workers: list[WorkerResult]

    @property
    def actions(self) -> int:
        return sum(w.actions for w in self.workers)

    @property
    def actions_per_second(self) -> float:
        return self.actions / self.seconds if self.seconds else 0.0

    @property
    def retries(self) -> Counter:
        return sum((w.retries for w in self.workers), Counter())

    @property
    def failures(self) -> list[str]:
        return [f"{w.reviewer}: {f}" for w in self.workers for f in w.failures]

    @property
    def crashes(self) -> list[str]:
        return [f"{w.reviewer}: {w.crashed}" for w in self.workers if w.crashed]

    def worker(self, reviewer: str) -> WorkerResult:
        return next(w for w in self.workers if w.reviewer == reviewer)

    @property
    def shared_touched(self) -> set[int]:
        """Examples both reviewers of PAIR applied actions to."""
        first, second = (self.worker(r).touched for r in PAIR)
        return first & second

    def latency_ms(self, percentile: float) -> float:
        """The step latency at `percentile` (nearest rank), over every worker."""
        ordered = sorted(ms for w in self.workers for ms in w.latencies_ms)
        if not ordered:
            return math.nan
        return ordered[max(0, math.ceil(percentile / 100 * len(ordered)) - 1)]

    def summary(self) -> str:
        """The figures, a few lines, for the bench's output and the test's messages."""
        retries = self.retries
        causes = ", ".join(f"{name} {n}" for name, n in retries.most_common()) or "none"
        rates = " ".join(f"{w.reviewer} {w.actions_per_second:.1f}" for w in self.workers)
        steps = sum(w.steps for w in self.workers)
        most = max((w.most_attempts for w in self.workers), default=0)
        return "\n".join(
            [
                f"{self.backend}: {len(self.workers)} reviewer processes for {self.seconds:.0f} s:"
                f" {self.actions:,} actions in {steps:,} transactions,"
                f" {self.actions_per_second:.1f} actions/s",
                f"  per reviewer (actions/s): {rates}",
                f"  step latency p50 {self.latency_ms(50):.1f} ms,"
                f" p95 {self.latency_ms(95):.1f} ms, max {self.latency_ms(100):.1f} ms",
                f"  retries {sum(retries.values()):,} ({causes}), most attempts at one step"
                f" {most}; failures reaching a reviewer {len(self.failures)}",
                f"  {PAIR[0]} and {PAIR[1]} both acted on {len(self.shared_touched)} of their"
                f" {SHARED_EXAMPLES} shared examples",
            ]
        )


def prepare_project(url: str) -> int:
    """Import the sample into the database at `url` as a fresh project with the sample's
    categories, LEAD as its lead and REVIEWERS as reviewers; return the project's id."""
    import csv

    from labeltool.categories import create_category
    from labeltool.importing import import_predictions
    from labeltool.models import Project
    from labeltool.roles import Role, set_role

    db = Database.open(url)
    try:
        with db.begin() as session:
            import_predictions(
                session,
                SAMPLE_DIR / "predictions.csv",
                project=PROJECT,
                images_root=SAMPLE_DIR,
                check_images="none",
            )
        with db.begin() as session:
            project_id = session.scalar(select(Project.id).where(Project.name == PROJECT))
            set_role(session, project_id=project_id, user=LEAD, role=Role.LEAD, by=None)
            for reviewer in REVIEWERS:
                set_role(session, project_id=project_id, user=reviewer, role="reviewer", by=LEAD)
        with db.begin() as session, Path(SAMPLE_DIR / "categories.csv").open() as handle:
            for row in csv.DictReader(handle):
                create_category(
                    session,
                    project_id=project_id,
                    name=row["name"],
                    description=row["description"],
                    shortcut=row["shortcut"],
                    colour=row["colour"],
                    user=LEAD,
                )
        return project_id
    finally:
        db.dispose()


def run_load(
    url: str,
    project_id: int,
    *,
    seconds: float,
    reviewers: tuple[str, ...] = REVIEWERS,
    seed: int | None = None,
) -> LoadResult:
    """Run one process per reviewer on the project for `seconds`, all starting together."""
    from labeltool.categories import list_categories
    from labeltool.models import Project

    db = Database.open(url, migrate=False)
    try:
        with db.begin() as session:
            errors = tuple(session.scalars(_dev_errors(project_id)))
            categories = tuple(c.id for c in list_categories(session, project_id=project_id))
            classes = tuple(session.get(Project, project_id).class_names)
            backend = db.engine.dialect.name
    finally:
        db.dispose()
    seed = random.randrange(2**32) if seed is None else seed
    shared = tuple(random.Random(seed).sample(errors, SHARED_EXAMPLES))
    plans = [
        Plan(
            url=url,
            project_id=project_id,
            reviewer=reviewer,
            pool=shared if reviewer in PAIR else errors,
            categories=categories,
            class_names=classes,
            seconds=seconds,
            seed=seed + number,
        )
        for number, reviewer in enumerate(reviewers)
    ]
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(len(plans))
    results = context.Queue()
    processes = [
        context.Process(target=_work, args=(plan, barrier, results), name=plan.reviewer)
        for plan in plans
    ]
    for process in processes:
        process.start()
    try:
        workers = [results.get(timeout=START_TIMEOUT + seconds + 120) for _ in processes]
    finally:
        for process in processes:
            process.join(timeout=30)
            if process.is_alive():
                process.kill()
    workers.sort(key=lambda w: reviewers.index(w.reviewer))
    return LoadResult(backend=backend, seconds=seconds, workers=workers)


def check_database(url: str, project_id: int, result: LoadResult) -> list[str]:
    """What the database says against what the workers believe: each reviewer's tags and
    reviews exactly as their worker left them, no tag or review twice. Empty when all agree."""
    db = Database.open(url, migrate=False)
    problems = []
    try:
        with db.begin() as session:
            in_project = select(Example.id).where(Example.project_id == project_id)
            tag_rows = session.execute(
                select(Tag.example_pk, Tag.category_id, Tag.reviewer).where(
                    Tag.example_pk.in_(in_project)
                )
            ).all()
            review_rows = session.execute(
                select(Review.example_pk, Review.reviewer).where(Review.example_pk.in_(in_project))
            ).all()
    finally:
        db.dispose()
    for what, rows in (("tag", tag_rows), ("review", review_rows)):
        twice = [row for row, n in Counter(tuple(r) for r in rows).items() if n > 1]
        if twice:
            problems.append(f"{len(twice)} {what}s held twice, e.g. {twice[:3]}")
    for worker in result.workers:
        tags = {(pk, category) for pk, category, who in tag_rows if who == worker.reviewer}
        reviewed = {pk for pk, who in review_rows if who == worker.reviewer}
        for what, held, believed in (
            ("tags", tags, worker.tags),
            ("reviews", reviewed, worker.reviewed),
        ):
            lost, extra = believed - held, held - believed
            if lost or extra:
                problems.append(
                    f"{worker.reviewer}'s {what}: {len(lost)} lost (e.g. {sorted(lost)[:3]}),"
                    f" {len(extra)} not theirs to have (e.g. {sorted(extra)[:3]})"
                )
    return problems


def actions_on(result: LoadResult, example_pks: set[int], *, most: int = 40) -> list[str]:
    """The applied actions on these examples, in the order they were applied (by clock), to
    say which actions a replay difference comes from."""
    found = sorted(
        (entry[0], worker.reviewer, entry)
        for worker in result.workers
        for entry in worker.log
        if entry[3] in example_pks
    )
    start = min((w.log[0][0] for w in result.workers if w.log), default=0.0)
    return [
        f"{at - start:8.3f}s {who} #{seq} {kind} pk={pk}"
        + (f" category={category} on={on}" if category is not None else "")
        + (f" text={text!r}" if text is not None else "")
        for at, who, (_, seq, kind, pk, category, on, text) in found[-most:]
    ]


# --- the worker process ------------------------------------------------------------------


def _work(plan: Plan, barrier, results) -> None:
    """One reviewer's process: wait for the others, act until time is up, report."""
    worker = WorkerResult(plan.reviewer)
    try:
        db = Database.open(plan.url, migrate=False)
        try:
            barrier.wait(timeout=START_TIMEOUT)
            _act(db, plan, worker)
        finally:
            db.dispose()
    except BaseException:  # noqa: BLE001 - the parent must hear of any crash, not wait for it
        worker.crashed = traceback.format_exc()
    results.put(worker)


def _act(db: Database, plan: Plan, worker: WorkerResult) -> None:
    chance = random.Random(plan.seed)
    kinds, weights = zip(*ACTION_WEIGHTS.items(), strict=True)
    seq = 0
    started = time.perf_counter()
    deadline = started + plan.seconds
    while time.perf_counter() < deadline:
        pk = chance.choice(plan.pool)
        batch = []
        for kind in chance.choices(kinds, weights, k=chance.choice((1, 1, 1, 2, 3))):
            seq += 1
            batch.append(_action(chance, plan, worker, seq, kind, pk))
        began = time.perf_counter()
        results = _apply(db, plan, worker, batch, chance)
        worker.latencies_ms.append((time.perf_counter() - began) * 1000)
        if results is None:
            continue
        worker.steps += 1
        for action, outcome in zip(batch, results, strict=True):
            if outcome.applied:
                _believe(worker, action, at=time.time())
            else:
                worker.failures.append(f"refused {action.kind} on {pk}: {outcome.error}")
    worker.seconds = time.perf_counter() - started


def _action(
    chance: random.Random, plan: Plan, worker: WorkerResult, seq: int, kind: str, pk: int
) -> ReviewAction:
    """A random action of `kind` on example `pk`, as the screen would send it."""
    base = {"seq": seq, "example_pk": pk, "reviewer": plan.reviewer}
    if kind == "untag":
        mine = [category for tagged, category in worker.tags if tagged == pk]
        category = chance.choice(mine or plan.categories)
        return ReviewAction(kind=ActionKind.TAG, category_id=category, on=False, **base)
    if kind == "tag":
        category = chance.choice(plan.categories)
        return ReviewAction(kind=ActionKind.TAG, category_id=category, on=True, **base)
    if kind == "comment":
        text = "" if chance.random() < 0.2 else f"{plan.reviewer} #{seq}: {chance.choice(WORDS)}"
        return ReviewAction(kind=ActionKind.COMMENT, text=text, **base)
    if kind == "corrected_label":
        text = "" if chance.random() < 0.3 else chance.choice(plan.class_names)
        return ReviewAction(kind=ActionKind.CORRECTED_LABEL, text=text, **base)
    return ReviewAction(kind=ActionKind(kind), **base)


def _apply(db: Database, plan: Plan, worker: WorkerResult, batch: list, chance: random.Random):
    """The page's transaction around apply_actions, tried again while the database refuses
    it; the results, or None when it failed (the failure is recorded)."""
    backoff = FIRST_BACKOFF
    for attempt in range(1, MAX_ATTEMPTS + 1):
        try:
            with db.begin() as session:
                results = apply_actions(session, project_id=plan.project_id, actions=batch)
        except SQLAlchemyError as exc:  # as the page: the browser sends the actions again
            if attempt == MAX_ATTEMPTS:
                worker.failures.append(f"gave up after {attempt} attempts: {_short(exc)}")
                return None
            worker.retries[type(exc.orig if exc.orig is not None else exc).__name__] += 1
            time.sleep(backoff * chance.uniform(0.5, 1.5))
            backoff = min(backoff * 2, RESEND_AFTER)
        except LabeltoolError as exc:  # apply_actions refuses per action; this would be a bug
            worker.failures.append(f"refused the whole batch: {exc}")
            return None
        except Exception as exc:  # noqa: BLE001 - on the page, a traceback the reviewer sees
            worker.failures.append(f"crashed: {_short(exc)}")
            return None
        else:
            worker.most_attempts = max(worker.most_attempts, attempt)
            return results
    return None  # pragma: no cover - the loop returns


def _believe(worker: WorkerResult, action: ReviewAction, *, at: float) -> None:
    """Note what an applied action changed for this reviewer."""
    pk = action.example_pk
    worker.actions += 1
    worker.touched.add(pk)
    if action.kind is ActionKind.TAG:
        if action.on:
            worker.tags.add((pk, action.category_id))
        else:
            worker.tags.discard((pk, action.category_id))
    elif action.kind is ActionKind.SAVE:
        worker.reviewed.add(pk)
    category = action.category_id if action.kind is ActionKind.TAG else None
    on = action.on if category is not None else None
    worker.log.append((at, action.seq, str(action.kind), pk, category, on, action.text))


def _dev_errors(project_id: int):
    return (
        select(Example.id)
        .where(
            Example.project_id == project_id,
            Example.is_error.is_(True),
            Example.split == DEFAULT_SPLIT,
        )
        .order_by(Example.id)
    )


def _short(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}"
