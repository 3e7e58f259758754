"""The review page with double review, through AppTest: the second reviewer gets the overlap
error the first one finished, without the first one's tags and with the screen saying why; the
first reviewer does not get it back."""

from __future__ import annotations

import pytest

from labeltool import double_review, labeling
from labeltool.db import Database
from labeltool.review_actions import Standing
from tests.app_scenario import AppProject, open_app_project
from tests.test_review_page import _screen

pytestmark = pytest.mark.usefixtures("fresh_streamlit_caches")


@pytest.fixture
def project(db: Database, write_predictions, monkeypatch: pytest.MonkeyPatch) -> AppProject:
    """Project "run1" with every error in the overlap; ann has reviewed the queue's first
    error (`project.seen`) and tagged it blurry."""
    found = open_app_project(db, write_predictions, monkeypatch, examples=12, errors=10)
    with db.begin() as session:
        double_review.set_overlap_fraction(session, project_id=found.id, fraction=1.0, user=None)
    found.seen = found.queue()[0]
    with db.begin() as session:
        labeling.set_tag(
            session, example_pks=[found.seen], category_id=found.blurry, reviewer="ann"
        )
        labeling.mark_reviewed(session, example_pks=[found.seen], reviewer="ann")
    return found


def test_the_second_reviewer_gets_it_blind_and_is_told_why(project: AppProject) -> None:
    """bob's screen opens on the error ann finished, with none of her tags and the double
    review's note; ann's own screen moves past it."""
    bobs = _screen(project, reviewer="bob")
    assert bobs.data["anchor"] == project.seen
    shown = bobs.example()
    assert shown["tags"] == {}
    assert shown["standing"] == Standing.DOUBLE_REVIEW.value
    assert shown["reviewable"]
    assert any("Double review" in c.value for c in bobs.at.caption)
    anns = _screen(project, reviewer="ann")
    assert project.seen not in anns.data["order"]
