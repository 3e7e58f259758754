"""`labeltool overlap`, `disagreements`, `adjudicate` and `report --counting`: double review
from the command line, acting as the --as user, on both databases."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from click.testing import CliRunner
from sqlalchemy import select

from labeltool import labeling, report
from labeltool.categories import create_category
from labeltool.cli import _COUNTING, cli
from labeltool.db import Database
from labeltool.importing import import_predictions
from labeltool.models import Example, Project
from labeltool.roles import set_role
from tests.conftest import make_rows


def _disagreeing(db: Database, write_predictions) -> str:
    """Project "p": ann leads, bob and cy review; on ex0000 bob says blurry and dark, cy dark;
    on ex0001 both say blurry. Returns the database URL."""
    path = write_predictions(make_rows(30, errors=10))
    with db.begin() as session:
        import_predictions(session, path, project="p", check_images="none")
        project_id = session.scalar(select(Example.project_id))
        blurry = create_category(session, project_id=project_id, name="blurry").id
        dark = create_category(session, project_id=project_id, name="dark").id
        set_role(session, project_id=project_id, user="ann", role="lead", by=None)
        for who in ("bob", "cy"):
            set_role(session, project_id=project_id, user=who, role="reviewer", by="ann")
        pk = dict(session.execute(select(Example.example_id, Example.id)).all())
        said = {
            ("ex0000", "bob"): [blurry, dark],
            ("ex0000", "cy"): [dark],
            ("ex0001", "bob"): [blurry],
            ("ex0001", "cy"): [blurry],
        }
        for (example_id, who), categories in said.items():
            for category_id in categories:
                labeling.set_tag(
                    session, example_pks=[pk[example_id]], category_id=category_id, reviewer=who
                )
            labeling.mark_reviewed(session, example_pks=[pk[example_id]], reviewer=who)
    return db.engine.url.render_as_string(hide_password=False)


def _run(url: str, *args: str, user: str | None = None):
    return CliRunner().invoke(cli, ["--db", url, *(["--as", user] if user else []), *args])


def test_the_cli_names_the_reports_counting_modes() -> None:
    """--counting offers exactly the report's modes, its default first."""
    assert _COUNTING == report.COUNTING
    assert _COUNTING[0] == report.DEFAULT_COUNTING


def test_overlap_is_the_leads_to_set_and_shows_the_progress(
    db: Database, write_predictions
) -> None:
    """The lead sets the share as a percentage; a reviewer is refused in one line; without a
    share, the command says how far the double review has got."""
    url = _disagreeing(db, write_predictions)
    refused = _run(url, "overlap", "--project", "p", "20", user="bob")
    assert refused.exit_code == 1
    assert "setting the overlap share needs the lead role" in refused.output
    done = _run(url, "overlap", "--project", "p", "20%", user="ann")
    assert done.exit_code == 0, done.output
    assert "double-reviewed" in done.output and "(20% of the random queue)" in done.output
    with db.begin() as session:
        assert session.scalar(select(Project.overlap_fraction)) == 0.2
    wrong = _run(url, "overlap", "--project", "p", "120", user="ann")
    assert wrong.exit_code == 2 and "not between 0 and 100" in wrong.output
    shown = _run(url, "overlap", "--project", "p")
    assert shown.exit_code == 0 and "2 reviewed by two or more, 1 disagree" in shown.output


def test_disagreements_list_each_reviewers_categories(db: Database, write_predictions) -> None:
    """Table, CSV and JSON list the error the reviewers disagree on, with what each said."""
    url = _disagreeing(db, write_predictions)
    table = _run(url, "disagreements", "--project", "p")
    assert table.exit_code == 0, table.output
    assert table.output.strip() == "ex0000  cat-as-dog  bob: blurry, dark; cy: dark"
    rows = list(
        csv.DictReader(
            io.StringIO(_run(url, "disagreements", "--project", "p", "--format", "csv").output)
        )
    )
    assert [(r["example_id"], r["consensus"], r["differing"]) for r in rows] == [
        ("ex0000", "dark", "blurry")
    ]
    records = json.loads(_run(url, "disagreements", "--project", "p", "--format", "json").output)
    assert records[0]["tags"] == {"bob": ["blurry", "dark"], "cy": ["dark"]}
    assert records[0]["decided"] is None


def test_adjudicate_settles_a_disagreement_and_the_report_counts_it(
    db: Database, write_predictions
) -> None:
    """A reviewer is refused; the lead's decision takes the error off the list, and the report
    counts it by default, by consensus or by any reviewer as asked, saying which."""
    url = _disagreeing(db, write_predictions)
    args = ["adjudicate", "--project", "p", "--example", "ex0000"]
    refused = _run(url, *args, "--categories", "dark", user="bob")
    assert refused.exit_code == 1 and "adjudicating a disagreement needs the lead role" in (
        refused.output
    )
    unknown = _run(url, *args, "--categories", "foggy", user="ann")
    assert unknown.exit_code == 1 and "no category 'foggy'" in unknown.output
    done = _run(url, *args, "--categories", "Dark", user="ann")
    assert done.exit_code == 0, done.output
    assert done.output.strip() == "example 'ex0000': dark (adjudicated)"
    waiting = _run(url, "disagreements", "--project", "p")
    assert "no disagreement awaits adjudication" in waiting.output
    decided = _run(url, "disagreements", "--project", "p", "--all").output
    assert "decided by ann: dark" in decided

    def blurry(counting: str | None) -> int:
        extra = ["--counting", counting] if counting else []
        data = json.loads(_run(url, "report", "--project", "p", "--format", "json", *extra).output)
        assert data["counting"] == (counting or "adjudicated")
        return next(c["errors"] for c in data["categories"] if c["category"] == "blurry")

    assert (blurry(None), blurry("any"), blurry("consensus")) == (1, 2, 1)
    text = _run(url, "report", "--project", "p", "--counting", "any").output
    assert "Counting: any (any reviewer's tag counts)" in text
    none = _run(url, *args, "--categories", "", user="ann")
    assert none.output.strip() == "example 'ex0000': no category (adjudicated)"


def test_export_counts_the_report_as_asked(db: Database, write_predictions, tmp_path: Path) -> None:
    """export --table report --counting consensus writes that mode's numbers and says so."""
    url = _disagreeing(db, write_predictions)
    out = tmp_path / "report.csv"
    result = _run(
        url, "export", "--project", "p", "--table", "report", "--out", str(out),
        "--counting", "consensus",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "counting: consensus" in result.output
    rows = {r["category"]: r for r in csv.DictReader(out.open(encoding="utf-8"))}
    assert rows["blurry"]["errors"] == "1"
