"""The report page's "How good the suggestions are" table, kept between reruns like the
report's numbers, yet shown as soon as `labeltool analyze` has stored new signals."""

from __future__ import annotations

import pytest

from labeltool import labeling
from labeltool.categories import list_categories
from labeltool.db import Database
from labeltool.models import Example, Signal
from labeltool.signals import analyze
from tests.test_signals import FLIPPED, project  # noqa: F401 - the fixture

REPORT = "app_pages/report.py"


def _quality(at) -> list[dict] | None:
    """The table's rows, or None when the page shows no such table."""
    frames = [d.value for d in at.dataframe if "suggester" in d.value.columns]
    return frames[0].to_dict("records") if frames else None


@pytest.mark.usefixtures("fresh_streamlit_caches")
def test_the_table_appears_after_analyze_and_follows_the_reviewers_tags(
    db: Database,
    project: int,  # noqa: F811
    run_app,
) -> None:
    at = run_app(db, REPORT, query_params={"project": "pets"})
    assert _quality(at) is None
    assert any("No suggestions for this run" in c.value for c in at.caption)

    with db.begin() as session:
        analyze(session, project_id=project, images=False)
    at.run()
    rows = {r["suggester"]: r for r in _quality(at)}
    assert rows["likely label error"]["confirmed"] == 0

    with db.begin() as session:
        pk = session.query(Example.id).filter(Example.example_id == FLIPPED).scalar()
        wrong = next(
            c for c in list_categories(session, project_id=project) if c.marks_incorrect_label
        )
        labeling.set_tag(session, example_pks=[pk], category_id=wrong.id, reviewer="ann")
        labeling.mark_reviewed(session, example_pks=[pk], reviewer="ann")
        assert session.query(Signal).filter(Signal.example_pk == pk).count() == 1
    at.run()
    rows = {r["suggester"]: r for r in _quality(at)}
    assert rows["likely label error"]["confirmed"] == 1
