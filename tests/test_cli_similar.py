"""`labeltool analyze` embeds the errors' images, and `labeltool similar` / `labeltool clusters`
list look-alike errors, on the sample digits (real images) on both databases."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from labeltool.cli import cli
from labeltool.db import Database
from labeltool.models import Example


@pytest.fixture
def analysed(db_url: str, sample_dir: Path) -> tuple[list[str], str]:
    """(the CLI's --db arguments, analyze's output) after importing and analysing digits."""
    runner = CliRunner()
    base = ["--db", db_url]
    result = runner.invoke(
        cli, [*base, "import", str(sample_dir / "predictions.csv"), "--project", "digits"]
    )
    assert result.exit_code == 0, result.output
    result = runner.invoke(cli, [*base, "analyze", "--project", "digits"])
    assert result.exit_code == 0, result.output
    return base, result.output


def _errors(db_url: str) -> list[str]:
    database = Database.open(db_url)
    try:
        with database.begin() as session:
            return list(
                session.scalars(
                    select(Example.example_id).where(Example.is_error, Example.split == "dev")
                )
            )
    finally:
        database.dispose()


def test_analyze_embeds_every_error_once(analysed, db_url: str) -> None:
    base, output = analysed
    errors = _errors(db_url)
    assert f"{len(errors):,} pixel embeddings stored (0 errors already had one" in output

    again = CliRunner().invoke(cli, [*base, "analyze", "--project", "digits"])

    assert f"0 pixel embeddings stored ({len(errors):,} errors already had one" in again.output


def test_similar_lists_the_nearest_errors_nearest_first(analysed, db_url: str) -> None:
    base, _ = analysed
    errors = _errors(db_url)
    chosen = errors[7]

    result = CliRunner().invoke(
        cli,
        [
            *base,
            "similar",
            "--project",
            "digits",
            "--example",
            chosen,
            "-k",
            "5",
            "--format",
            "csv",
        ],
    )

    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.output)))
    assert list(rows[0]) == ["example_id", "distance", "label", "prediction", "review_state"]
    assert len(rows) == 5
    assert chosen not in {r["example_id"] for r in rows}
    assert {r["example_id"] for r in rows} <= set(errors)
    distances = [float(r["distance"]) for r in rows]
    assert distances == sorted(distances) and 0 <= distances[0] < 1


def test_similar_names_an_unknown_example(analysed) -> None:
    base, _ = analysed
    result = CliRunner().invoke(
        cli, [*base, "similar", "--project", "digits", "--example", "no-such-digit"]
    )
    assert result.exit_code != 0
    assert "no-such-digit" in result.output


def test_clusters_list_every_untagged_error_once_largest_group_first(analysed, db_url: str) -> None:
    base, _ = analysed
    errors = _errors(db_url)

    result = CliRunner().invoke(
        cli, [*base, "clusters", "--project", "digits", "--clusters", "6", "--format", "json"]
    )

    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert sorted(r["example_id"] for r in rows) == sorted(errors)
    sizes = [sum(1 for r in rows if r["cluster"] == n) for n in range(1, 7)]
    assert sizes == sorted(sizes, reverse=True) and sum(sizes) == len(errors)
    for number in range(1, 7):
        members = [r for r in rows if r["cluster"] == number]
        assert [m["rank"] for m in members] == list(range(1, len(members) + 1))
        nearest = [m["distance_to_centre"] for m in members]
        assert nearest == sorted(nearest)

    table = CliRunner().invoke(cli, [*base, "clusters", "--project", "digits", "--clusters", "6"])
    assert table.output.splitlines()[0].startswith("cluster   1:")
    assert len(table.output.splitlines()) == 6


def test_similar_names_the_example_that_has_no_embedding(analysed, db_url: str) -> None:
    """A correctly classified example has no embedding among the errors: the message names
    it by its id, not the database's number."""
    base, _ = analysed
    database = Database.open(db_url)
    try:
        with database.begin() as session:
            right = session.scalar(select(Example.example_id).where(~Example.is_error).limit(1))
    finally:
        database.dispose()

    result = CliRunner().invoke(cli, [*base, "similar", "--project", "digits", "--example", right])

    assert result.exit_code != 0
    assert f"example '{right}' has no embedding" in result.output
