"""The small project the labeling and queue tests share, and how to import and query it.

9 dev errors in three confusion pairs (one confidence tie, one missing confidence), 3 correct
dev examples, and 2 errors outside the dev set. Its `run` and `other` fixtures are available
to every test (tests/conftest.py loads this module as a plugin).
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from sqlalchemy import func, select

from labeltool.db import Database
from labeltool.importing import import_predictions
from labeltool.models import Example, ReviewState
from labeltool.review_queue import QueueFilter, queue_ids

ALL = QueueFilter(states=())
UNREVIEWED = ReviewState.UNREVIEWED.value
REVIEWED = ReviewState.REVIEWED.value
SKIPPED = ReviewState.SKIPPED.value
NEEDS_REREVIEW = ReviewState.NEEDS_REREVIEW.value

#: (example_id, label, prediction, confidence, split). e00-e08 are the dev errors.
ROWS = [
    ("e00", "cat", "dog", "0.90", "dev"),
    ("e01", "cat", "dog", "0.70", "dev"),
    ("e02", "cat", "dog", "0.70", "dev"),  # ties with e01
    ("e03", "cat", "dog", "", "dev"),  # no confidence
    ("e04", "cat", "dog", "0.55", "dev"),
    ("e05", "dog", "fox", "0.95", "dev"),
    ("e06", "dog", "fox", "0.60", "dev"),
    ("e07", "dog", "fox", "0.40", "dev"),
    ("e08", "fox", "cat", "0.80", "dev"),
    ("c00", "cat", "cat", "0.99", "dev"),
    ("c01", "dog", "dog", "0.98", "dev"),
    ("c02", "fox", "fox", "0.97", ""),  # empty split means dev
    ("t00", "cat", "dog", "0.50", "test"),  # an error, but not in the dev set
    ("r00", "dog", "fox", "0.45", "train"),
]
DEV_ERRORS = [f"e{i:02d}" for i in range(9)]
CONFIDENCE = {r[0]: (float(r[3]) if r[3] else None) for r in ROWS}


@dataclass
class Run:
    """An imported project: its id and its examples' pks by example_id."""

    id: int
    pk: dict[str, int]

    def ids(self, pks: list[int]) -> list[str]:
        by_pk = {v: k for k, v in self.pk.items()}
        return [by_pk[p] for p in pks]


def import_run(db: Database, write_predictions, project: str, file: str) -> Run:
    """Import ROWS as project `project` (from a CSV named `file`)."""
    rows = [
        {
            "example_id": example_id,
            "image": f"images/{example_id}.png",
            "label": label,
            "prediction": prediction,
            "confidence": confidence,
            "split": split,
        }
        for example_id, label, prediction, confidence, split in ROWS
    ]
    path = write_predictions(rows, name=file)
    with db.begin() as session:
        import_predictions(session, path, project=project)
    with db.begin() as session:
        project_id = session.scalar(select(func.max(Example.project_id)))
        pks = dict(
            session.execute(
                select(Example.example_id, Example.id).where(Example.project_id == project_id)
            ).all()
        )
    return Run(id=project_id, pk=pks)


def queue_examples(db: Database, run: Run, queue: QueueFilter) -> set[str]:
    """The example_ids of the queue's examples."""
    with db.begin() as session:
        pks = queue_ids(session, project_id=run.id, queue=queue, limit=1000)
    return set(run.ids(pks))


@pytest.fixture
def run(db: Database, write_predictions) -> Run:
    """Project "run1": 9 dev errors in three confusion pairs, 3 correct, 2 non-dev errors."""
    return import_run(db, write_predictions, "run1", "run1.csv")


@pytest.fixture
def other(db: Database, write_predictions, run: Run) -> Run:
    """Project "run2" with the same rows, to check nothing leaks across projects."""
    return import_run(db, write_predictions, "run2", "run2.csv")
