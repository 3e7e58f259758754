"""Comparing two runs (`labeltool.compare`, `labeltool compare`), with numbers worked by hand.

The project: 10 dev examples e0-e9 (cat/dog) and one test example, two image-scope
categories, blurry and dark, created before any review.

Run "1": e0-e3 misclassified (dev error 4/10 = 40%). All four reviewed: blurry e0, e1, e2;
dark e3. blurry share 3/4 = 75%, ceiling 0.75 x 0.40 = 30 points; dark 1/4, ceiling 10.

Run "2" (target blurry): e2, e3, e4 misclassified (3/10 = 30%). e0, e1 are fixed, e4 is new,
e2 and e3 are errors in both. The new run starts with e2 (blurry) and e3 (dark) carried over,
reviewed; e4 is reviewed in run 2 and tagged dark. blurry 1/3, ceiling 1/3 x 0.30 = 10 points;
dark 2/3, ceiling 20 points. The fix bought 30 - 10 = 20 points of blurry's ceiling.

Wilson 95% intervals (z = 1.96): 4 of 10 -> 16.82% - 68.73%; 3 of 10 -> 10.78% - 60.32%.
"""

from __future__ import annotations

import json
import math

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from labeltool import labeling
from labeltool.categories import create_category
from labeltool.cli import cli
from labeltool.compare import compare_runs, comparison_json, comparison_table, comparison_text
from labeltool.db import Database
from labeltool.errors import InvalidInput
from labeltool.importing import import_predictions
from labeltool.models import Example
from labeltool.projects import get_project
from labeltool.runs import get_run

DEV = [f"e{i}" for i in range(10)]


def _rows(errors: set[str], *, ids: list[str] = DEV) -> list[dict]:
    rows = []
    for i, example_id in enumerate(ids):
        label = "cat" if i % 2 == 0 else "dog"
        wrong = "dog" if label == "cat" else "cat"
        rows.append(
            {
                "example_id": example_id,
                "image": f"images/{example_id}.png",
                "label": label,
                "prediction": wrong if example_id in errors else label,
                "confidence": "0.80",
                "split": "dev",
            }
        )
    # an error outside the dev set: never counted
    rows.append(
        {
            "example_id": "t0",
            "image": "images/t0.png",
            "label": "cat",
            "prediction": "dog",
            "confidence": "0.50",
            "split": "test",
        }
    )
    return rows


def _pks(session, project_id: int, run: str, ids: list[str]) -> list[int]:
    run_id = get_run(session, project_id=project_id, name=run).id
    return list(
        session.scalars(
            select(Example.id).where(Example.run_id == run_id, Example.example_id.in_(ids))
        )
    )


def _review(session, project_id: int, run: str, tags: dict[str, list[str]], cats: dict) -> None:
    for category, ids in tags.items():
        labeling.set_tag(
            session,
            example_pks=_pks(session, project_id, run, ids),
            category_id=cats[category],
            reviewer="ana",
        )
    reviewed = sorted({i for ids in tags.values() for i in ids})
    labeling.mark_reviewed(
        session, example_pks=_pks(session, project_id, run, reviewed), reviewer="ana"
    )


@pytest.fixture
def project(db: Database, write_predictions) -> int:
    """Project "p" with runs "1" and "2" as in the module doc; returns its id."""
    with db.begin() as session:
        import_predictions(
            session,
            write_predictions(_rows({"e0", "e1", "e2", "e3"}), name="one.csv"),
            project="p",
            run="1",
        )
        project_id = get_project(session, "p").id
        cats = {
            name: create_category(session, project_id=project_id, name=name).id
            for name in ("blurry", "dark")
        }
    with db.begin() as session:
        _review(session, project_id, "1", {"blurry": ["e0", "e1", "e2"], "dark": ["e3"]}, cats)
    with db.begin() as session:
        import_predictions(
            session,
            write_predictions(_rows({"e2", "e3", "e4"}), name="two.csv"),
            project="p",
            run="2",
            note="more blurry data",
            target_category="blurry",
        )
    with db.begin() as session:
        _review(session, project_id, "2", {"dark": ["e4"]}, cats)
    return project_id


def test_compare_runs_worked_by_hand(db: Database, project: int) -> None:
    with db.begin() as session:
        c = compare_runs(session, project_id=project, before="1", after="2")

    assert (c.before.name, c.before.dev_examples, c.before.misclassified) == ("1", 10, 4)
    assert (c.after.name, c.after.note, c.after.misclassified) == ("2", "more blurry data", 3)
    assert c.before.dev_error == pytest.approx(0.4)
    assert c.after.dev_error == pytest.approx(0.3)
    assert (c.before.dev_error_low, c.before.dev_error_high) == pytest.approx(
        (0.1682, 0.6873), abs=1e-4
    )
    assert (c.after.dev_error_low, c.after.dev_error_high) == pytest.approx(
        (0.1078, 0.6032), abs=1e-4
    )
    assert (c.fixed, c.new, c.both) == (2, 1, 2)
    assert (c.unmatched_before, c.unmatched_after) == (0, 0)

    table = c.categories.set_index("category")
    assert list(c.categories.columns) == [
        "category", "errors_before", "share_before", "ceiling_before",
        "errors_after", "share_after", "ceiling_after", "ceiling_change",
    ]  # fmt: skip
    assert set(table.index) == {"blurry", "dark"}
    blurry, dark = table.loc["blurry"], table.loc["dark"]
    assert (blurry.errors_before, blurry.errors_after) == (3, 1)
    assert (dark.errors_before, dark.errors_after) == (1, 2)
    assert blurry.share_before == pytest.approx(3 / 4)
    assert blurry.ceiling_before == pytest.approx(0.30)
    assert blurry.share_after == pytest.approx(1 / 3)
    assert blurry.ceiling_after == pytest.approx(0.10)
    assert blurry.ceiling_change == pytest.approx(-0.20)
    assert dark.share_before == pytest.approx(1 / 4)
    assert dark.ceiling_before == pytest.approx(0.10)
    assert dark.share_after == pytest.approx(2 / 3)
    assert dark.ceiling_after == pytest.approx(0.20)
    assert dark.ceiling_change == pytest.approx(0.10)
    # the after run's ranking order: dark (2/3) before blurry (1/3)
    assert list(c.categories["category"]) == ["dark", "blurry"]

    assert c.target is not None
    assert c.target.category == "blurry"  # the run's own target
    assert c.target.recovered == pytest.approx(0.20)
    assert c.target.sentence == "blurry: ceiling was 30.0 points, the new run recovered 20.0"


def test_an_explicit_target_overrides_the_runs_and_an_unknown_one_is_refused(
    db: Database, project: int
) -> None:
    with db.begin() as session:
        dark = compare_runs(session, project_id=project, before="1", after="2", target="Dark")
        with pytest.raises(InvalidInput, match="no category 'sharp'.*'dark', 'blurry'"):
            compare_runs(session, project_id=project, before="1", after="2", target="sharp")
        with pytest.raises(InvalidInput, match="no run '3'"):
            compare_runs(session, project_id=project, before="1", after="3")

    assert dark.target is not None
    assert dark.target.category == "dark"
    assert dark.target.recovered == pytest.approx(-0.10)
    assert dark.target.sentence == (
        "dark: ceiling was 10.0 points, the new run recovered none: it grew by 10.0"
    )


def test_no_target_without_one_and_the_table_json_and_text(db: Database, project: int) -> None:
    with db.begin() as session:
        backwards = compare_runs(session, project_id=project, before="2", after="1")
        c = compare_runs(session, project_id=project, before="1", after="2")

    assert backwards.target is None  # run 1 targets nothing
    assert (backwards.fixed, backwards.new, backwards.both) == (1, 2, 2)

    table = comparison_table(c)
    assert list(table["category"]) == ["dark", "blurry"]
    assert list(table["target"]) == [False, True]

    data = comparison_json(c)
    json.dumps(data, allow_nan=False)
    assert data["errors"] == {
        "fixed": 2, "new": 1, "both": 2, "unmatched_before": 0, "unmatched_after": 0
    }  # fmt: skip
    assert data["before"]["misclassified"] == 4
    assert data["dev_error_change"] == pytest.approx(-0.1)
    assert data["target"]["recovered"] == pytest.approx(0.2)
    assert data["categories"][1]["category"] == "blurry"
    assert data["categories"][1]["errors_before"] == 3

    text = comparison_text(c)
    assert "run '1'  dev error 40.0% (95% interval 16.8% - 68.7%), 4 of 10 dev examples\n" in text
    assert "run '2'  dev error 30.0% (95% interval 10.8% - 60.3%), 3 of 10 dev examples" in text
    assert "dev error change: -10.0 points\n" in text
    assert "errors fixed: 2, new: 1, in both runs: 2\n" in text
    assert "blurry: ceiling was 30.0 points, the new run recovered 20.0\n" in text


def test_nan_shares_are_none_in_json(db: Database, project: int) -> None:
    """A category made after every review: no review could use it, no share, no ceiling."""
    with db.begin() as session:
        create_category(session, project_id=project, name="noisy", mark_rereview=False)
    with db.begin() as session:
        c = compare_runs(session, project_id=project, before="1", after="2", target="noisy")

    row = c.categories.set_index("category").loc["noisy"]
    assert math.isnan(row.ceiling_before) and math.isnan(row.ceiling_change)
    assert comparison_json(c)["target"]["ceiling_before"] is None
    assert c.target is not None
    assert c.target.sentence == (
        "noisy: no ceiling in the earlier run (no review could use the category)"
    )


def test_unmatched_examples_are_counted_apart(db: Database, write_predictions) -> None:
    """Run 2 drops e9 and adds e10: each run has one dev example the other lacks."""
    with db.begin() as session:
        import_predictions(
            session, write_predictions(_rows({"e0", "e9"}), name="one.csv"), project="q", run="1"
        )
        ids = [*DEV[:9], "e10"]
        import_predictions(
            session,
            write_predictions(_rows({"e1", "e10"}, ids=ids), name="two.csv"),
            project="q",
            run="2",
            allow_different_examples=True,
        )
        c = compare_runs(session, project_id=get_project(session, "q").id, before="1", after="2")

    assert (c.fixed, c.new, c.both) == (1, 1, 0)  # e0 fixed, e1 new; e9 and e10 unmatched
    assert (c.unmatched_before, c.unmatched_after) == (1, 1)
    assert "dev examples only in run '1': 1, only in run '2': 1 (not counted above)" in (
        comparison_text(c)
    )


def test_cli_compare_in_three_formats(db: Database, project: int) -> None:
    url = db.engine.url.render_as_string(hide_password=False)

    def run(*args: str):
        result = CliRunner().invoke(
            cli, ["--db", url, "compare", "--project", "p", "--runs", "1", "2", *args],
            prog_name="labeltool",
        )  # fmt: skip
        return result

    table = run()
    csv = run("--format", "csv")
    data = run("--format", "json")
    unknown = run("--target", "sharp")

    assert table.exit_code == 0, table.output
    assert table.stdout == (
        "Project 'p': run '1' -> run '2'\n"
        "\n"
        "run '1'  dev error 40.0% (95% interval 16.8% - 68.7%), 4 of 10 dev examples\n"
        "run '2'  dev error 30.0% (95% interval 10.8% - 60.3%), 3 of 10 dev examples"
        "  more blurry data\n"
        "dev error change: -10.0 points\n"
        "errors fixed: 2, new: 1, in both runs: 2\n"
        "blurry: ceiling was 30.0 points, the new run recovered 20.0\n"
        "\n"
        "category  errors '1'  share '1'  ceiling '1'  errors '2'  share '2'  ceiling '2'"
        "   change\n"
        "dark               1      25.0%       10.00%           2      66.7%       20.00%"
        "  +10.00%\n"
        "blurry             3      75.0%       30.00%           1      33.3%       10.00%"
        "  -20.00%\n"
    )
    assert csv.exit_code == 0, csv.output
    lines = csv.stdout.splitlines()
    assert lines[0] == (
        "category,errors_before,share_before,ceiling_before,errors_after,share_after,"
        "ceiling_after,ceiling_change,target"
    )
    assert lines[1].startswith("dark,1,0.25,0.1") and lines[1].endswith(",False")
    assert lines[2].startswith("blurry,3,0.75,0.3") and lines[2].endswith(",True")
    assert len(lines) == 3
    assert data.exit_code == 0, data.output
    parsed = json.loads(data.stdout)
    assert parsed["target"]["sentence"] == (
        "blurry: ceiling was 30.0 points, the new run recovered 20.0"
    )
    assert (parsed["errors"]["fixed"], parsed["errors"]["new"]) == (2, 1)
    assert unknown.exit_code == 1
    assert "no category 'sharp' in these runs (categories: 'dark', 'blurry')" in unknown.stderr
