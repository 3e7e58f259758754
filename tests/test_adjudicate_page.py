"""The Adjudicate page and the report page's double-review controls, driven through the real app
with AppTest: the lead settles disagreements one at a time, others read the list, the report
says (and lets one choose) how it counts, and the lead sets the overlap share."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from labeltool import labeling
from labeltool.categories import create_category
from labeltool.db import Database
from labeltool.models import AdjudicatedTag, Adjudication, Example, Project
from labeltool.roles import set_role
from tests.test_report import make_project

PAGE = "app_pages/adjudicate.py"
REPORT = "app_pages/report.py"


@pytest.fixture
def disagreeing(sqlite_db: Database, write_predictions) -> dict:
    """Project "run1" with a lead (ann) and two reviewers (bob, cy) who disagree on two errors
    (one with a category named like Markdown) and agree on a third."""
    project_id = make_project(sqlite_db, write_predictions, dev=20, errors=5)
    with sqlite_db.begin() as session:
        blurry = create_category(session, project_id=project_id, name="blurry").id
        odd = create_category(session, project_id=project_id, name="**bold**").id
        set_role(session, project_id=project_id, user="ann", role="lead", by=None)
        set_role(session, project_id=project_id, user="bob", role="reviewer", by="ann")
        set_role(session, project_id=project_id, user="cy", role="reviewer", by="ann")
        pks = session.scalars(
            select(Example.id).where(Example.is_error.is_(True)).order_by(Example.shuffle_key)
        ).all()
        said = {
            pks[0]: {"bob": [blurry, odd], "cy": [odd]},
            pks[1]: {"bob": [], "cy": [blurry]},
            pks[2]: {"bob": [blurry], "cy": [blurry]},
        }
        for pk, by in said.items():
            for who, categories in by.items():
                for category_id in categories:
                    labeling.set_tag(
                        session, example_pks=[pk], category_id=category_id, reviewer=who
                    )
                labeling.mark_reviewed(session, example_pks=[pk], reviewer=who)
    return {"id": project_id, "pks": pks, "blurry": blurry, "odd": odd}


def _decided(db: Database) -> dict[int, set[int]]:
    with db.begin() as session:
        found: dict[int, set[int]] = {}
        for pk, category_id in session.execute(
            select(AdjudicatedTag.example_pk, AdjudicatedTag.category_id)
        ):
            found.setdefault(pk, set()).add(category_id)
        return found


def _open(run_app, db: Database, page: str, who: str):
    app = run_app(db, page, query_params={"project": "run1"})
    app.session_state["reviewer"] = who
    app.run()
    assert not app.exception, app.exception
    return app


def test_the_lead_settles_disagreements_one_at_a_time(
    sqlite_db: Database, disagreeing: dict, run_app
) -> None:
    """The first disagreement shows each reviewer's categories as text, the choice prefilled
    with what they agreed on; saving stores the decision and shows the next one."""
    app = _open(run_app, sqlite_db, PAGE, "ann")
    first, second = disagreeing["pks"][:2]
    choice = app.multiselect(key=f"adjudicate_{first}")
    assert choice.value == ["**bold**"]  # what bob and cy agreed on
    shown = [t.value for t in app.text]
    assert "**bold**\nblurry" in shown and "**bold**" in shown  # as typed, not Markdown
    choice.set_value(["blurry", "**bold**"])
    app.button[0].click().run()  # the form's "Save decision"
    assert not app.exception, app.exception
    assert _decided(sqlite_db) == {first: {disagreeing["blurry"], disagreeing["odd"]}}
    assert [s.value for s in app.success if "Decided" in s.value]
    assert app.multiselect(key=f"adjudicate_{second}").value == []  # the next one
    app.button[0].click().run()  # none is a decision too
    with sqlite_db.begin() as session:
        assert session.get(Adjudication, second).lead == "ann"
    assert second not in _decided(sqlite_db)  # decided: no category
    assert [s.value for s in app.success if "No disagreement awaits" in s.value]


def test_a_reviewer_reads_the_list_but_cannot_decide(
    sqlite_db: Database, disagreeing: dict, run_app
) -> None:
    """A reviewer sees the disagreements and a note that adjudication is the lead's, and no
    control to decide with."""
    app = _open(run_app, sqlite_db, PAGE, "bob")
    assert any("Adjudication is the lead's" in i.value for i in app.info)
    assert not app.multiselect
    table = next(d.value for d in app.dataframe if "differing" in d.value.columns)
    assert len(table) == 2
    assert "bob: **bold**, blurry; cy: **bold**" in set(table["tags"])


def test_the_report_says_how_it_counts_and_lets_one_choose(
    sqlite_db: Database, disagreeing: dict, run_app
) -> None:
    """The report names its counting mode and the disagreements awaiting adjudication;
    choosing consensus counts only what every reviewer tagged."""
    app = _open(run_app, sqlite_db, REPORT, "ann")
    assert app.selectbox(key="report_counting").value == "adjudicated"
    said = " ".join(w.value for w in app.warning)
    assert "Counting: adjudicated" in said
    assert "2 disagreements between reviewers await adjudication" in said

    def blurry_errors() -> int:
        table = app.dataframe[0].value
        return int(table.loc[table["category"] == "blurry", "errors"].iloc[0])

    assert blurry_errors() == 3
    app.selectbox(key="report_counting").set_value("consensus").run()
    assert not app.exception, app.exception
    assert blurry_errors() == 1
    assert any("Counting: consensus" in w.value for w in app.warning)
    assert any("Double review" in c.value for c in app.caption)


@pytest.mark.parametrize(("who", "saved"), [("ann", 0.25), ("bob", None)])
def test_the_overlap_share_is_the_leads_to_set(
    sqlite_db: Database, disagreeing: dict, run_app, who: str, saved: float | None
) -> None:
    """The lead sets the double-review share on the report page; a reviewer is refused with
    the role it needs."""
    app = _open(run_app, sqlite_db, REPORT, who)
    app.number_input(key="overlap_share").set_value(25.0).run()
    assert not app.exception, app.exception
    with sqlite_db.begin() as session:
        assert session.get(Project, disagreeing["id"]).overlap_fraction == saved
    refused = [e.value for e in app.error if "needs the lead role" in e.value]
    assert bool(refused) == (who == "bob")
