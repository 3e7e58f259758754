"""Runs on the review side: queues against the previous run, category scope, import-tags into
one run, dev error and ceilings across runs, a confusion pair's category in one run.

The scenario of tests/test_runs.py, worked by hand. Six dev examples; run 1 gets e1, e2
(cat-as-dog) and e3 (dog-as-cat) wrong: dev error 3/6 = 1/2. Ann makes four categories, then
reviews all three errors (a random queue): blurry (image) on e1 and e3, cropped (image) on e1
and e2, distracted (error) on all three, look-alike (error) on e1 and e2. Run 2 fixes e2,
still gets e1 (now cat-as-fox) and e3 wrong and newly gets c1 wrong (3/6 = 1/2): e1 and e3
arrive reviewed, with ann's reviews (carried) and their image tags. Run 3, where used, gets
e2 wrong again, fixes c1 and newly gets c2 wrong: errors e1, e2, e3, c2.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from labeltool import compare, labeling, review_queue
from labeltool.categories import (
    create_category,
    list_categories,
    load_categories_file,
    update_category,
)
from labeltool.cli import cli
from labeltool.db import Database
from labeltool.errors import InvalidInput
from labeltool.models import Category, Example, Project, ReachedBy, Run, Tag
from labeltool.review_actions import reached_by
from labeltool.review_queue import QueueFilter
from labeltool.tags_import import import_tags
from tests.run_scenario import RUN1, RUN2, import_run

RUN3 = RUN2 | {"e2": ("cat", "dog"), "c1": ("cat", "cat"), "c2": ("dog", "cat")}
#: The wide table's category columns, in this order.
CATEGORIES = ("blurry", "cropped", "distracted", "look-alike")
#: Tags after the review of run 1 and the import of run 2 (image tags of e1, e3 carried).
RUN1_TAGS = {
    ("e1", "blurry"),
    ("e3", "blurry"),
    ("e1", "cropped"),
    ("e2", "cropped"),
    ("e1", "distracted"),
    ("e2", "distracted"),
    ("e3", "distracted"),
    ("e1", "look-alike"),
    ("e2", "look-alike"),
}
RUN2_TAGS = {("e1", "blurry"), ("e3", "blurry"), ("e1", "cropped")}
#: z for a two-sided 95% interval.
Z = 1.959963984540054


def _project_id(session) -> int:
    return session.scalar(select(Project.id).where(Project.name == "p"))


def _run_id(session, run_name: str) -> int:
    return session.scalar(
        select(Run.id).where(Run.project_id == _project_id(session), Run.name == run_name)
    )


def _pk(session, run_name: str, example_id: str) -> int:
    return session.scalar(
        select(Example.id).where(
            Example.run_id == _run_id(session, run_name), Example.example_id == example_id
        )
    )


def _pks(session, rows: list[tuple[str, str]]) -> list[int]:
    """The pks of (run name, example id) rows, sorted."""
    return sorted(_pk(session, run, example_id) for run, example_id in rows)


def _tags(session, run_name: str) -> set[tuple[str, str]]:
    return set(
        session.execute(
            select(Example.example_id, Category.name)
            .join(Tag, Tag.example_pk == Example.id)
            .join(Category, Category.id == Tag.category_id)
            .where(Example.run_id == _run_id(session, run_name))
        ).all()
    )


def _scopes(session) -> dict[str, str]:
    """Category name -> scope, in project p."""
    return {c.name: c.scope for c in list_categories(session, project_id=_project_id(session))}


def _corrected(session, example_id: str) -> dict[str, str | None]:
    """Run name -> the corrected label on that run's row of the example."""
    return dict(
        session.execute(
            select(Run.name, Example.corrected_label)
            .join(Run, Run.id == Example.run_id)
            .where(Example.example_id == example_id)
        ).all()
    )


def _queued(session, project_id: int, run: str | None = None, **fields) -> list[int]:
    """The queue's pks, sorted; its count must agree."""
    run_id = None if run is None else _run_id(session, run)
    queue = QueueFilter(run_id=run_id, **fields)
    ids = review_queue.queue_ids(session, project_id=project_id, queue=queue)
    assert review_queue.queue_count(session, project_id=project_id, queue=queue) == len(ids)
    return sorted(ids)


def _sheet(tmp_path: Path, name: str, rows: list[tuple[str, set[str], str]], reviewer: str):
    """The wide table: one row per (example_id, ticked categories, corrected_label)."""
    lines = [",".join(["example_id", *CATEGORIES, "corrected_label", "reviewer"])]
    for example_id, ticked, corrected in rows:
        flags = ["1" if c in ticked else "0" for c in CATEGORIES]
        lines.append(",".join([example_id, *flags, corrected, reviewer]))
    path = tmp_path / f"{name}.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _wilson(k: int, n: int) -> tuple[float, float]:
    """The Wilson score interval of k / n, by the textbook formula."""
    p = k / n
    centre = (p + Z**2 / (2 * n)) / (1 + Z**2 / n)
    half = Z / (1 + Z**2 / n) * math.sqrt(p * (1 - p) / n + Z**2 / (4 * n**2))
    return centre - half, centre + half


@pytest.fixture
def reviewed_run1(db: Database, write_predictions) -> dict[str, int]:
    """Run 1 of project p, reviewed by ann as the module doc says; the project's and the
    categories' ids (by name)."""
    import_run(db, write_predictions, RUN1, "run1")
    with db.begin() as session:
        project_id = _project_id(session)
        ids = {
            name: create_category(session, project_id=project_id, name=name, scope=scope).id
            for name, scope in zip(CATEGORIES, ("image", "image", "error", "error"), strict=True)
        }
        pk = {i: _pk(session, "1", i) for i in RUN1}
        for name in CATEGORIES:
            tagged = [pk[i] for i, category in RUN1_TAGS if category == name]
            labeling.set_tag(session, example_pks=tagged, category_id=ids[name], reviewer="ann")
        labeling.mark_reviewed(session, example_pks=[pk["e1"], pk["e2"], pk["e3"]], reviewer="ann")
    return {"project": project_id, **ids}


@pytest.fixture
def two_runs(db: Database, write_predictions, reviewed_run1) -> dict[str, int]:
    """reviewed_run1, then run 2 imported: e1 and e3 carried over with their image tags."""
    assert import_run(db, write_predictions, RUN2, "run2", run="2").carried == 2
    with db.begin() as session:
        assert (_tags(session, "1"), _tags(session, "2")) == (RUN1_TAGS, RUN2_TAGS)
    return reviewed_run1


# --- queues against the previous run ---------------------------------------------------


@pytest.mark.parametrize(
    ("run", "change", "expected"),
    [
        # Run 2 (the latest) has errors e1, e3, c1; run 1 had e1, e2, e3.
        (None, None, [("2", "e1"), ("2", "e3"), ("2", "c1")]),
        (None, "new", [("2", "c1")]),
        ("2", "new", [("2", "c1")]),
        (None, "still wrong", [("2", "e1"), ("2", "e3")]),
        (None, "fixed", [("1", "e2")]),  # run 1's row: run 2 has no error e2 to show
        # Run 1 has no run before it: every error is new, none still wrong or fixed.
        ("1", None, [("1", "e1"), ("1", "e2"), ("1", "e3")]),
        ("1", "new", [("1", "e1"), ("1", "e2"), ("1", "e3")]),
        ("1", "still wrong", []),
        ("1", "fixed", []),
    ],
)
def test_a_change_queue_holds_the_errors_new_still_wrong_or_fixed_since_the_run_before(
    db: Database, two_runs, run, change, expected
):
    """Whatever their review state (states=()), the errors of the queue's run compared with
    the same examples in the run before it."""
    with db.begin() as session:
        queued = _queued(session, two_runs["project"], run, states=(), change=change)
        assert queued == _pks(session, expected)


def test_a_change_queue_keeps_the_state_filter_on_the_rows_it_holds(db: Database, two_runs):
    """By default a queue shows unreviewed errors: run 2's new c1 is one, but e1 and e3 arrived
    reviewed (carried) and run 1's e2, the fixed one, was reviewed by ann, so the default
    still-wrong and fixed queues are empty; asking for reviewed ones brings them back."""
    project_id = two_runs["project"]
    with db.begin() as session:
        assert _queued(session, project_id, change="new") == _pks(session, [("2", "c1")])
        assert _queued(session, project_id, change="still wrong") == []
        assert _queued(session, project_id, change="fixed") == []
        reviewed = ("reviewed",)
        assert _queued(session, project_id, change="new", states=reviewed) == []
        assert _queued(session, project_id, change="fixed", states=reviewed) == _pks(
            session, [("1", "e2")]
        )
        assert _queued(session, project_id, change="still wrong", states=reviewed) == _pks(
            session, [("2", "e1"), ("2", "e3")]
        )


def test_an_unknown_change_is_refused(db: Database, two_runs):
    """A change that is not new, still wrong or fixed raises instead of queueing anything."""
    with db.begin() as session, pytest.raises(ValueError, match="unknown change 'gone'"):
        review_queue.queue_count(
            session, project_id=two_runs["project"], queue=QueueFilter(change="gone")
        )


def test_with_three_runs_each_compares_with_the_run_just_before(db: Database, write_predictions):
    """Run 3 (e1, e2, e3, c2 wrong) against run 2 (e1, e3, c1): e2 and c2 new, e1 and e3
    still wrong, run 2's c1 fixed. Against run 1 (e1, e2, e3) it would be: c2 new; e1, e2, e3
    still wrong; nothing fixed. Nothing is reviewed, so the default state keeps every row."""
    for name, predictions in (("1", RUN1), ("2", RUN2), ("3", RUN3)):
        import_run(db, write_predictions, predictions, f"run{name}", run=name)
    with db.begin() as session:
        project_id = _project_id(session)
        assert _queued(session, project_id, change="new") == _pks(
            session, [("3", "e2"), ("3", "c2")]
        )
        assert _queued(session, project_id, change="still wrong") == _pks(
            session, [("3", "e1"), ("3", "e3")]
        )
        assert _queued(session, project_id, change="fixed") == _pks(session, [("2", "c1")])
        assert _queued(session, project_id, "2", change="fixed") == _pks(session, [("1", "e2")])
        fixed = review_queue.queue_run_id(
            session, project_id=project_id, queue=QueueFilter(change="fixed")
        )
        assert fixed == _run_id(session, "2")


def test_the_queue_holds_its_runs_rows_or_for_fixed_the_run_befores(db: Database, two_runs):
    """The latest run by default, the run asked for, the run before it for "fixed" (and
    none before the first run)."""
    with db.begin() as session:
        one, two = _run_id(session, "1"), _run_id(session, "2")

        def run_of(**fields) -> int | None:
            return review_queue.queue_run_id(
                session, project_id=two_runs["project"], queue=QueueFilter(**fields)
            )

        assert (run_of(), run_of(change="new"), run_of(run_id=one)) == (two, two, one)
        assert (run_of(change="still wrong", run_id=one), run_of(change="fixed")) == (one, one)
        assert run_of(change="fixed", run_id=one) is None


@pytest.mark.parametrize(
    ("queue", "reached"),
    [
        (QueueFilter(change="new"), ReachedBy.FILTERED),
        (QueueFilter(change="still wrong"), ReachedBy.FILTERED),
        (QueueFilter(change="fixed"), ReachedBy.FILTERED),
        (QueueFilter(change="new", confusion_pair=("cat", "dog")), ReachedBy.FILTERED),
        (QueueFilter(), ReachedBy.RANDOM),
        (QueueFilter(confusion_pair=("cat", "dog")), ReachedBy.RANDOM_IN_PAIR),
    ],
)
def test_a_changed_queue_is_a_targeted_look(queue: QueueFilter, reached: ReachedBy):
    """The errors that changed are no fair sample of all errors: their reviews count as
    filtered; a plain random queue stays random."""
    assert reached_by(queue) is reached


# --- category scope ----------------------------------------------------------------------


def test_the_categories_file_sets_the_scope(db: Database, write_predictions, tmp_path: Path):
    """Blank: by the name (a pair over the classes cat, dog, fox is an error category,
    anything else an image one); image or error in any case, overriding the name."""
    import_run(db, write_predictions, RUN1, "run1")
    path = tmp_path / "categories.csv"
    path.write_text(
        "name,scope\nblurry,\ncat-as-dog,\ndark,Image\nfox-as-cat,image\nlook-alike,ERROR\n",
        encoding="utf-8",
    )
    with db.begin() as session:
        load_categories_file(session, path, project_id=_project_id(session))
    with db.begin() as session:
        scopes = _scopes(session)
    assert scopes == {
        "blurry": "image",
        "cat-as-dog": "error",
        "dark": "image",
        "fox-as-cat": "image",
        "look-alike": "error",
    }


def test_a_bad_scope_names_its_row_and_column_and_creates_nothing(
    db: Database, write_predictions, tmp_path: Path
):
    """Row 3 (header = row 1) says "photo": refused before blurry (row 2) is created."""
    import_run(db, write_predictions, RUN1, "run1")
    path = tmp_path / "categories.csv"
    path.write_text("name,scope\nblurry,image\ndark,photo\n", encoding="utf-8")
    with db.begin() as session:
        project_id = _project_id(session)
        with pytest.raises(InvalidInput) as refused:
            load_categories_file(session, path, project_id=project_id)
        assert list_categories(session, project_id=project_id, include_archived=True) == []
    assert str(refused.value).startswith("categories.csv, row 3, column 'scope': ")
    assert "'photo'" in str(refused.value)


def test_a_scope_changes_with_one_run_or_without_tags(db: Database, write_predictions):
    """p has one run (and q one more: runs count per project), so tagged blurry changes; once
    p has run 2, untagged fresh still changes."""
    import_run(db, write_predictions, RUN1, "run1")
    import_run(db, write_predictions, RUN1, "q", project="q")
    with db.begin() as session:
        blurry = create_category(session, project_id=_project_id(session), name="blurry")
        labeling.set_tag(
            session, example_pks=[_pk(session, "1", "e1")], category_id=blurry.id, reviewer="ann"
        )
        update_category(session, category_id=blurry.id, scope="error")
    import_run(db, write_predictions, RUN2, "run2", run="2")
    with db.begin() as session:
        fresh = create_category(session, project_id=_project_id(session), name="fresh")
        assert fresh.scope == "image"
        update_category(session, category_id=fresh.id, scope="error")
    with db.begin() as session:
        scopes = _scopes(session)
    assert scopes == {"blurry": "error", "fresh": "error"}


def test_a_scope_cannot_change_once_the_category_has_tags_and_there_are_several_runs(
    db: Database, two_runs
):
    """blurry (image, tagged in both runs) and look-alike (error, tagged in run 1) of a
    two-run project keep their scopes; naming the scope a category already has is no change."""
    with db.begin() as session:
        for name, scope, other in (("blurry", "image", "error"), ("look-alike", "error", "image")):
            category = session.get(Category, two_runs[name])
            with pytest.raises(InvalidInput, match="cannot change"):
                update_category(session, category_id=category.id, scope=other)
            assert category.scope == scope
            update_category(session, category_id=category.id, scope=scope)
    with db.begin() as session:
        scopes = _scopes(session)
    assert scopes == dict(zip(CATEGORIES, ("image", "image", "error", "error"), strict=True))


# --- import-tags into one run --------------------------------------------------------------


def test_import_tags_writes_the_latest_run_and_image_tags_and_labels_reach_the_other(
    db: Database, two_runs, tmp_path: Path
):
    """Bob's row for c1 (wrong in run 2 only) ticks blurry (image) and look-alike (error) and
    corrects the label to dog: run 2's c1 gets both tags, run 1's c1 blurry only, and both c1
    rows read dog. His next file unticks blurry: it leaves both rows, look-alike stays."""
    project_id = two_runs["project"]
    with db.begin() as session:
        sheet = _sheet(tmp_path, "one", [("c1", {"blurry", "look-alike"}, "dog")], "bob")
        summary = import_tags(session, sheet, project_id=project_id)
        assert (summary.tags_added, summary.tags_removed, summary.corrections) == (2, 0, 1)
    with db.begin() as session:
        assert _tags(session, "2") == RUN2_TAGS | {("c1", "blurry"), ("c1", "look-alike")}
        assert _tags(session, "1") == RUN1_TAGS | {("c1", "blurry")}
        assert _corrected(session, "c1") == {"1": "dog", "2": "dog"}
        sheet = _sheet(tmp_path, "two", [("c1", {"look-alike"}, "dog")], "bob")
        import_tags(session, sheet, project_id=project_id)
    with db.begin() as session:
        assert _tags(session, "2") == RUN2_TAGS | {("c1", "look-alike")}
        assert _tags(session, "1") == RUN1_TAGS


def test_import_tags_into_a_named_run_writes_that_runs_rows(db: Database, two_runs, tmp_path: Path):
    """Into run 1, ann's rows: e1 ticks cropped, distracted (she had blurry, cropped,
    distracted, look-alike) and is corrected to fox; e2, wrong in run 1 only, ticks look-alike
    (had cropped, distracted, look-alike); e3 ticks blurry, distracted, look-alike (had blurry,
    distracted). 1 tag added, 4 removed. Blurry, an image tag, leaves run 2's e1 too; look-alike,
    an error tag, reaches run 1's e3 only; fox reaches both e1 rows."""
    rows = [
        ("e1", {"cropped", "distracted"}, "fox"),
        ("e2", {"look-alike"}, ""),
        ("e3", {"blurry", "distracted", "look-alike"}, ""),
    ]
    with db.begin() as session:
        summary = import_tags(
            session,
            _sheet(tmp_path, "run1", rows, "ann"),
            project_id=two_runs["project"],
            run_id=_run_id(session, "1"),
        )
        assert (summary.tags_added, summary.tags_removed) == (1, 4)
    with db.begin() as session:
        assert _tags(session, "1") == {
            ("e1", "cropped"),
            ("e1", "distracted"),
            ("e2", "look-alike"),
            ("e3", "blurry"),
            ("e3", "distracted"),
            ("e3", "look-alike"),
        }
        assert _tags(session, "2") == {("e1", "cropped"), ("e3", "blurry")}
        assert _corrected(session, "e1") == {"1": "fox", "2": "fox"}


def test_cli_import_tags_takes_the_run(db_url: str, db: Database, two_runs, tmp_path: Path):
    """e2 is an error of run 1 only: without --run (run 2) its row is refused, with --run 1
    it is imported there; --run 9 names the runs there are."""
    sheet = _sheet(tmp_path, "cli", [("e2", {"blurry"}, "")], "cy")
    args = ["--db", db_url, "import-tags", str(sheet), "--project", "p"]
    runner = CliRunner()
    latest = runner.invoke(cli, args)
    assert latest.exit_code != 0
    assert "'e2' is not a misclassified dev example" in latest.output
    one = runner.invoke(cli, [*args, "--run", "1"])
    assert one.exit_code == 0, one.output
    with db.begin() as session:
        assert _tags(session, "1") == RUN1_TAGS | {("e2", "blurry")}
    unknown = runner.invoke(cli, [*args, "--run", "9"])
    assert unknown.exit_code != 0
    assert "no run '9' in this project (runs: '1', '2')" in unknown.output


# --- the trend across runs, a confusion pair per run -----------------------------------------


def test_run_trend_holds_each_runs_dev_error_and_the_top_ceilings(db: Database, two_runs):
    """Dev error 3/6 = 1/2 in both runs; ceiling = share x 1/2. Run 1 (3 reviews): distracted
    3/3 -> 1/2, blurry, cropped, look-alike 2/3 -> 1/3. Run 2 (2 carried reviews, which looked
    for image categories only): blurry 2/2 -> 1/2, cropped 1/2 -> 1/4; distracted and look-alike
    no share, so no row. Highest in any run (ties by name): blurry 1/2, distracted 1/2, cropped
    1/3, look-alike 1/3. Mutants: the first run's ceilings put distracted first; the last one
    seen (cropped 1/4) puts look-alike third; their sum (cropped 7/12) puts cropped second."""
    dev = compare.DEV_ERROR
    expected = [  # run, position, measure, value, then the interval's k, n and scale
        ("1", 0, dev, 1 / 2, 3, 6, 1.0),
        ("1", 0, "distracted", 1 / 2, 3, 3, 1 / 2),
        ("1", 0, "blurry", 1 / 3, 2, 3, 1 / 2),
        ("1", 0, "cropped", 1 / 3, 2, 3, 1 / 2),
        ("2", 1, dev, 1 / 2, 3, 6, 1.0),
        ("2", 1, "blurry", 1 / 2, 2, 2, 1 / 2),
        ("2", 1, "cropped", 1 / 4, 1, 2, 1 / 2),
    ]
    with db.begin() as session:
        trend, top_two, top_one = (
            compare.run_trend(session, project_id=two_runs["project"], top=top) for top in (3, 2, 1)
        )
    assert compare.TREND_COLUMNS == ("run", "position", "measure", "value", "low", "high")
    assert tuple(trend.columns) == compare.TREND_COLUMNS
    assert [tuple(row[:3]) for row in trend.itertuples(index=False)] == [
        row[:3] for row in expected
    ]
    for row, (*_, value, k, n, scale) in zip(trend.itertuples(index=False), expected, strict=True):
        low, high = _wilson(k, n)
        assert (row.value, row.low, row.high) == pytest.approx((value, low * scale, high * scale))
    assert top_two["measure"].tolist() == [dev, "distracted", "blurry", dev, "blurry"]
    assert top_one["measure"].tolist() == [dev, "blurry", dev, "blurry"]


def test_a_confusion_pairs_category_tags_the_errors_of_the_run_asked_for(
    db: Database, write_predictions
):
    """cat-as-dog is e1 and e2 in run 1, c1 in run 2 (e1 became cat-as-fox). Run 1's pair
    tags 2 there and none in run 2; the latest's then tags run 2's c1 only (an error
    category: run 1's c1, correct there, stays untagged)."""
    import_run(db, write_predictions, RUN1, "run1")
    import_run(db, write_predictions, RUN2, "run2", run="2")
    pair = {"label": "cat", "prediction": "dog", "reviewer": "ann"}
    with db.begin() as session:
        project_id = _project_id(session)
        category, tagged = labeling.category_from_confusion_pair(
            session, project_id=project_id, run_id=_run_id(session, "1"), **pair
        )
        assert (category.name, category.scope, tagged) == ("cat-as-dog", "error", 2)
        assert _tags(session, "1") == {("e1", "cat-as-dog"), ("e2", "cat-as-dog")}
        assert _tags(session, "2") == set()
        _, tagged = labeling.category_from_confusion_pair(session, project_id=project_id, **pair)
        assert tagged == 1
        assert _tags(session, "2") == {("c1", "cat-as-dog")}
        assert _tags(session, "1") == {("e1", "cat-as-dog"), ("e2", "cat-as-dog")}
