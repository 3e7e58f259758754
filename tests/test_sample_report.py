"""The method on the shipped sample: a reviewer who sees the truth gets the injected ranking.

An "oracle" reviewer tags every misclassified sample example from sample_data/ground_truth.csv
(blurred -> blurry, flipped label -> incorrectly labeled with the true label as correction,
the commonest natural confusion -> its pair category), through the same core functions the
review page calls. The ceiling report must then rank the categories as the faults imply, and
the corrections export must list exactly the flipped labels it found.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from labeltool import labeling, report, review_queue
from labeltool.categories import list_categories, load_categories_file
from labeltool.db import Database
from labeltool.export import corrections_table
from labeltool.importing import import_predictions
from labeltool.projects import get_project

REVIEWER = "oracle"


@pytest.fixture
def oracle_reviewed(db: Database, sample_dir: Path) -> tuple[Database, int, dict, set[str]]:
    """The sample imported with its categories, every error tagged from the ground truth."""
    truth = {row["example_id"]: row for row in _rows(sample_dir / "ground_truth.csv")}
    with db.begin() as session:
        import_predictions(session, sample_dir / "predictions.csv", project="digits")
        project_id = get_project(session, "digits").id
        load_categories_file(session, sample_dir / "categories.csv", project_id=project_id)
    with db.begin() as session:
        by_name = {c.name: c for c in list_categories(session, project_id=project_id)}
        pair = next(c for c in by_name.values() if "-as-" in c.name)
        pair_label, pair_prediction = pair.name.split("-as-")
        pks = review_queue.queue_ids(
            session, project_id=project_id, queue=review_queue.QueueFilter(states=()), limit=10_000
        )
        views = labeling.example_views(session, pks=pks)
        for view in views:
            fault = truth[view.example_id]
            if fault["blurred"] == "true":
                labeling.toggle_tag(
                    session,
                    example_pk=view.pk,
                    category_id=by_name["blurry"].id,
                    reviewer=REVIEWER,
                )
            if fault["label_flipped"] == "true":
                labeling.toggle_tag(
                    session,
                    example_pk=view.pk,
                    category_id=by_name["incorrectly labeled"].id,
                    reviewer=REVIEWER,
                )
                labeling.set_corrected_label(
                    session, example_pk=view.pk, corrected_label=fault["true_label"]
                )
            if (view.label, view.prediction) == (pair_label, pair_prediction):
                labeling.toggle_tag(
                    session, example_pk=view.pk, category_id=pair.id, reviewer=REVIEWER
                )
        labeling.mark_reviewed(session, example_pks=pks, reviewer=REVIEWER)
    return db, project_id, truth, {view.example_id for view in views}


def test_report_ranks_the_sample_categories_as_its_injected_faults_imply(oracle_reviewed):
    """Blurry (most injected errors) ranks first, then incorrectly labeled, then the pair."""
    db, project_id, _truth, _errors = oracle_reviewed
    with db.begin() as session:
        table = report.ceiling_table(session, project_id=project_id)
        top = report.headline(session, project_id=project_id)
    ranked = table["category"].tolist()
    assert ranked[:2] == ["blurry", "incorrectly labeled"]
    assert "-as-" in ranked[2]
    assert ranked[-1] == report.NO_CATEGORY
    assert top.reviewed == top.misclassified >= 100
    blurry = table.iloc[0]
    assert blurry["ceiling"] == pytest.approx(blurry["share"] * top.dev_error)
    assert blurry["ci_low"] < blurry["share"] < blurry["ci_high"]


def test_incorrect_label_accounting_on_the_sample_matches_the_flipped_errors(oracle_reviewed):
    """The incorrectly-labeled part of the dev error is exactly the flipped errors / dev set."""
    db, project_id, truth, errors = oracle_reviewed
    with db.begin() as session:
        accounting = report.incorrect_label_accounting(session, project_id=project_id)
        top = report.headline(session, project_id=project_id)
        corrections = corrections_table(session, project_id=project_id)
    corrected = set(corrections["example_id"])
    expected = {
        example_id
        for example_id, fault in truth.items()
        if fault["label_flipped"] == "true" and example_id in errors
    }
    assert corrected == expected and len(expected) > 0
    assert accounting is not None
    assert accounting.due_to_incorrect_labels == pytest.approx(len(expected) / top.dev_examples)
    assert set(corrections["corrected_label"]) <= {str(d) for d in range(10)}
    assert (corrections["corrected_label"] != corrections["label"]).all()


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))
