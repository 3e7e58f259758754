"""`labeltool agreement`: the per-category agreement table for scripts, on both databases."""

from __future__ import annotations

import csv
import io
import json

from click.testing import CliRunner
from sklearn.metrics import cohen_kappa_score
from sqlalchemy import select

from labeltool import labeling
from labeltool.categories import create_category
from labeltool.cli import cli
from labeltool.db import Database
from labeltool.importing import import_predictions
from labeltool.models import Example
from tests.conftest import make_rows

#: Which of the 20 errors each reviewer tagged blurry: they agree on 0-5, differ on 6-9.
ANN = set(range(0, 8))
BOB = set(range(0, 6)) | {8, 9}


def _two_reviewers(db: Database, write_predictions) -> None:
    path = write_predictions(make_rows(30, errors=20))
    with db.begin() as session:
        import_predictions(session, path, project="p", check_images="none")
        project_id = session.scalar(select(Example.project_id))
        blurry = create_category(session, project_id=project_id, name="blurry")
        pks = list(
            session.scalars(select(Example.id).where(Example.is_error).order_by(Example.example_id))
        )
        for who, chosen in (("ann", ANN), ("bob", BOB)):
            labeling.set_tag(
                session,
                example_pks=[pks[i] for i in chosen],
                category_id=blurry.id,
                reviewer=who,
            )
            labeling.mark_reviewed(session, example_pks=pks, reviewer=who)


def test_agreement_prints_cohens_kappa_per_category(db: Database, write_predictions) -> None:
    _two_reviewers(db, write_predictions)
    url = db.engine.url.render_as_string(hide_password=False)
    expected = cohen_kappa_score([i in ANN for i in range(20)], [i in BOB for i in range(20)])

    result = CliRunner().invoke(
        cli, ["--db", url, "agreement", "--project", "p", "--format", "csv"]
    )
    assert result.exit_code == 0, result.output
    (row,) = list(csv.DictReader(io.StringIO(result.output)))
    assert row["category"] == "blurry" and row["examples"] == "20"
    assert row["statistic"] == "Cohen's kappa"
    assert abs(float(row["coefficient"]) - expected) < 1e-9
    assert float(row["ci_low"]) <= expected <= float(row["ci_high"])

    table = CliRunner().invoke(cli, ["--db", url, "agreement", "--project", "p"])
    assert f"Cohen's kappa {expected:5.2f}" in table.output
    records = json.loads(
        CliRunner()
        .invoke(cli, ["--db", url, "agreement", "--project", "p", "--format", "json"])
        .output
    )
    assert records[0]["reading"] == row["reading"]


def test_agreement_says_why_there_is_nothing_yet(db: Database, write_predictions) -> None:
    path = write_predictions(make_rows(10, errors=5))
    with db.begin() as session:
        import_predictions(session, path, project="p", check_images="none")
    url = db.engine.url.render_as_string(hide_password=False)

    result = CliRunner().invoke(cli, ["--db", url, "agreement", "--project", "p"])

    assert result.exit_code == 0, result.output
    assert "review" in result.output.lower()
