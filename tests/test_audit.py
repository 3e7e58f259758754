"""The audit trail: every change to tags, comments, corrected labels, review states, reviews,
categories and settings is kept with who, when, old and new; the trail replays to the
database; a user can undo their own last change, and only while nobody changed it since."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from labeltool import audit, eyeball, labeling, review_actions, splits
from labeltool.categories import create_category, update_category
from labeltool.db import Database
from labeltool.errors import Forbidden, InvalidInput
from labeltool.importing import import_predictions
from labeltool.models import AuditEvent, Category, Example, Review, Tag
from labeltool.review_actions import ActionKind, ReviewAction
from labeltool.roles import set_role
from labeltool.tags_import import import_tags
from tests.conftest import make_rows
from tests.test_report import make_project


@pytest.fixture
def project(db: Database, write_predictions) -> int:
    """Project "run1": 20 dev examples, the first 6 misclassified; categories blurry and
    incorrectly labeled, made by ann."""
    project_id = make_project(db, write_predictions, dev=20, errors=6)
    with db.begin() as session:
        create_category(session, project_id=project_id, name="blurry", user="ann")
        create_category(session, project_id=project_id, name="incorrectly labeled", user="ann")
    return project_id


def _errors(db: Database, project_id: int) -> list[int]:
    with db.begin() as session:
        return list(
            session.scalars(
                select(Example.id)
                .where(Example.project_id == project_id, Example.is_error)
                .order_by(Example.id)
            )
        )


def _category(db: Database, project_id: int, name: str) -> int:
    with db.begin() as session:
        return session.scalar(
            select(Category.id).where(Category.project_id == project_id, Category.name == name)
        )


def _apply(db: Database, project_id: int, *actions: ReviewAction) -> None:
    with db.begin() as session:
        results = review_actions.apply_actions(
            session, project_id=project_id, actions=list(actions)
        )
    assert all(r.error is None for r in results), results


def _differences(db: Database, project_id: int) -> list[str]:
    with db.begin() as session:
        return audit.differences(session, project_id=project_id)


def test_each_review_screen_action_is_kept_with_who_old_and_new(db: Database, project: int) -> None:
    """Tag, untag, comment, corrected label, save and skip through the review screen's core
    each leave rows naming the reviewer, the example, the old and the new value."""
    first, second, *_ = _errors(db, project)
    blurry = _category(db, project, "blurry")
    _apply(
        db,
        project,
        ReviewAction(1, ActionKind.TAG, first, "bob", category_id=blurry, on=True),
        ReviewAction(2, ActionKind.COMMENT, first, "bob", text="smudged lens"),
        ReviewAction(3, ActionKind.CORRECTED_LABEL, first, "bob", text="fox"),
        ReviewAction(4, ActionKind.SAVE, first, "bob"),
    )
    _apply(
        db,
        project,
        ReviewAction(5, ActionKind.TAG, first, "bob", category_id=blurry, on=False),
        ReviewAction(6, ActionKind.COMMENT, first, "bob", text="fine after all"),
        ReviewAction(7, ActionKind.SKIP, second, "bob"),
    )
    with db.begin() as session:
        rows = audit.history(session, project_id=project, user="bob")
    assert set(rows["user"]) == {"bob"}
    changes = list(
        rows[["change", "example_id", "what", "old", "new"]].itertuples(index=False, name=None)
    )[::-1]  # oldest first
    assert changes == [
        ("tag", "ex0000", "blurry", None, "tagged"),
        ("comment", "ex0000", "comment", "", "smudged lens"),
        ("corrected label", "ex0000", "corrected label", None, "fox"),
        ("review state", "ex0000", "review state", "unreviewed", "reviewed"),
        ("review", "ex0000", "review", None, "random"),
        ("tag", "ex0000", "blurry", "tagged", None),
        ("comment", "ex0000", "comment", "smudged lens", "fine after all"),
        ("review state", "ex0001", "review state", "unreviewed", "skipped"),
    ]
    # One change per action (a save is a review state and a review row).
    assert rows["change_id"].nunique() == 7
    assert rows["at"].is_monotonic_decreasing
    assert _differences(db, project) == []


def test_repeating_an_action_records_nothing_more(db: Database, project: int) -> None:
    """Tagging what is tagged, or saving a comment unchanged, changes nothing and adds no row."""
    first = _errors(db, project)[0]
    blurry = _category(db, project, "blurry")
    for _ in range(2):
        _apply(
            db,
            project,
            ReviewAction(1, ActionKind.TAG, first, "bob", category_id=blurry, on=True),
            ReviewAction(2, ActionKind.COMMENT, first, "bob", text="same"),
        )
    with db.begin() as session:
        kinds = audit.history(session, project_id=project)["change"].tolist()
    assert kinds.count("tag") == 1 and kinds.count("comment") == 1


def test_categories_settings_and_members_are_kept(db: Database, project: int) -> None:
    """A category's creation and each setting change, the eyeball share, human-level error
    and roles are kept with the old and new value."""
    with db.begin() as session:
        blurry = session.get(Category, _category(db, project, "blurry"))
        update_category(session, category_id=blurry.id, name="out of focus", effort=2.5, user="ann")
        eyeball.set_eyeball_fraction(session, project_id=project, fraction=0.5, user="ann")
        splits.set_human_level_error(session, project_id=project, error=0.02, user="ann")
        set_role(session, project_id=project, user="ann", role="lead", by=None)
        set_role(session, project_id=project, user="bob", role="reviewer", by="ann")
    with db.begin() as session:
        rows = audit.history(session, project_id=project)
    got = set(rows[["user", "change", "what", "old", "new"]].itertuples(index=False, name=None))
    assert {
        ("ann", "category", "created", None, "blurry"),
        ("ann", "category", "name", "blurry", "out of focus"),
        ("ann", "category", "effort", None, "2.5"),
        ("ann", "setting", "eyeball share", None, "0.5"),
        ("ann", "setting", "human-level error", None, "0.02"),
        ("", "member", "ann", None, "lead"),
        ("ann", "member", "bob", None, "reviewer"),
    } <= got


def test_the_trail_replays_to_the_database_through_every_write_path(
    db: Database, project: int, write_predictions, tmp_path
) -> None:
    """Tags on many examples at once, a new category (reviewed examples need re-review), an
    incorrect-label tag (prefilled label), a spreadsheet of tags, and a second run that
    carries the first's work over: the replay of the trail equals the database throughout."""
    errors = _errors(db, project)
    blurry, wrong = _category(db, project, "blurry"), _category(db, project, "incorrectly labeled")
    with db.begin() as session:
        labeling.set_tag(session, example_pks=errors[:4], category_id=blurry, reviewer="ann")
        labeling.toggle_tag(session, example_pk=errors[4], category_id=wrong, reviewer="ann")
        labeling.mark_reviewed(session, example_pks=errors[:5], reviewer="ann")
        labeling.set_comment(session, example_pk=errors[0], comment="dark too", user="ann")
    assert _differences(db, project) == []
    with db.begin() as session:
        create_category(session, project_id=project, name="dark", user="ann")
    with db.begin() as session:
        assert (
            session.scalar(select(func.count()).where(Example.review_state == "needs re-review"))
            == 5
        )
    assert _differences(db, project) == []

    sheet = tmp_path / "tags.csv"
    sheet.write_text(
        "example_id,reviewer,comment,blurry,incorrectly labeled,dark\n"
        "ex0001,cy,from the sheet,0,1,1\n"
        "ex0005,cy,,1,0,0\n",
        encoding="utf-8",
    )
    with db.begin() as session:
        import_tags(session, sheet, project_id=project, user="cy")
    assert _differences(db, project) == []

    path = write_predictions(make_rows(20, errors=8), name="run2.csv", images=False)
    with db.begin() as session:
        import_predictions(session, path, project="run1", check_images=False, run="2", user="dan")
    assert _differences(db, project) == []
    with db.begin() as session:
        carried = audit.history(session, project_id=project, user="dan")
        assert len(carried) > 0 and set(carried["run"]) == {"2"}
        assert "ann" in set(carried["whose"])  # the tags carried over are still ann's


def test_differences_name_what_the_trail_does_not_explain(db: Database, project: int) -> None:
    """A tag written behind the core's back is found by the replay."""
    first = _errors(db, project)[0]
    with db.begin() as session:
        session.add(
            Tag(example_pk=first, category_id=_category(db, project, "blurry"), reviewer="x")
        )
    lines = _differences(db, project)
    assert len(lines) == 1 and "in the database, not in the trail" in lines[0]


def test_history_of_one_example_across_runs(db: Database, project: int) -> None:
    """`example_id` filters the trail to one example (by the user's id)."""
    first, second, *_ = _errors(db, project)
    with db.begin() as session:
        labeling.set_comment(session, example_pk=first, comment="a", user="ann")
        labeling.set_comment(session, example_pk=second, comment="b", user="ann")
        rows = audit.history(session, project_id=project, example_id="ex0001")
    assert rows["new"].tolist() == ["b"]


def test_undo_takes_back_ones_own_last_change_whole(db: Database, project: int) -> None:
    """Undo reverts every value of the user's last change (a save: its review state and
    review), is itself kept in the trail, and each next undo goes one change further back:
    the comment, the tag, then the comment before."""
    first = _errors(db, project)[0]
    blurry = _category(db, project, "blurry")
    _apply(db, project, ReviewAction(1, ActionKind.COMMENT, first, "bob", text="one"))
    _apply(
        db,
        project,
        ReviewAction(1, ActionKind.TAG, first, "bob", category_id=blurry, on=True),
        ReviewAction(2, ActionKind.COMMENT, first, "bob", text="two"),
        ReviewAction(3, ActionKind.SAVE, first, "bob"),
    )
    with db.begin() as session:
        undone = audit.undo_last(session, project_id=project, user="bob")
    assert undone.values == 2 and "example ex0000" in undone.summary
    with db.begin() as session:
        example = session.get(Example, first)
        assert (example.comment, example.review_state) == ("two", "unreviewed")
        assert session.scalar(select(func.count()).select_from(Review)) == 0
        rows = audit.history(session, project_id=project)
        assert rows["undoes"].iloc[0] == undone.change_id
    assert _differences(db, project) == []
    with db.begin() as session:
        audit.undo_last(session, project_id=project, user="bob")
        assert session.get(Example, first).comment == "one"
    with db.begin() as session:
        audit.undo_last(session, project_id=project, user="bob")
        assert session.scalar(select(func.count()).select_from(Tag)) == 0
    with db.begin() as session:
        audit.undo_last(session, project_id=project, user="bob")
        assert session.get(Example, first).comment == ""
    with db.begin() as session, pytest.raises(InvalidInput, match="bob has no change to undo"):
        audit.undo_last(session, project_id=project, user="bob")
    assert _differences(db, project) == []


def test_undo_is_refused_when_someone_changed_it_since(db: Database, project: int) -> None:
    """Bob's comment, then Cy's on the same example: Bob's undo would overwrite Cy's, so it is
    refused, naming Cy, and nothing changes."""
    first = _errors(db, project)[0]
    with db.begin() as session:
        labeling.set_comment(session, example_pk=first, comment="bob's", user="bob")
    with db.begin() as session:
        labeling.set_comment(session, example_pk=first, comment="cy's", user="cy")
    before = _count(db)
    with db.begin() as session, pytest.raises(InvalidInput, match=r"no longer .*\(cy changed it"):
        audit.undo_last(session, project_id=project, user="bob")
    assert _count(db) == before
    with db.begin() as session:
        assert session.get(Example, first).comment == "cy's"


def test_undo_only_ones_own_and_with_the_role_it_needs(db: Database, project: int) -> None:
    """Undo never reaches another user's change; a reviewer cannot undo a lead's category
    change they could not have made."""
    with db.begin() as session:
        set_role(session, project_id=project, user="ann", role="lead", by=None)
        set_role(session, project_id=project, user="bob", role="reviewer", by="ann")
    with db.begin() as session:
        labeling.set_comment(session, example_pk=_errors(db, project)[0], comment="x", user="bob")
    with db.begin() as session:
        audit.undo_last(session, project_id=project, user="bob")  # his own: fine
    with db.begin() as session:
        create_category(session, project_id=project, name="dark", user="ann")
    with db.begin() as session, pytest.raises(InvalidInput, match="bob has no change"):
        audit.undo_last(session, project_id=project, user="bob")
    with db.begin() as session:
        undone = audit.undo_last(session, project_id=project, user="ann")  # the new category
        assert session.scalar(select(Category.archived).where(Category.name == "dark"))
    assert "created" in undone.summary


def test_undo_of_a_category_change_needs_the_lead(db: Database, project: int) -> None:
    """A user demoted to reviewer cannot undo their own category change."""
    with db.begin() as session:
        set_role(session, project_id=project, user="ann", role="lead", by=None)
        set_role(session, project_id=project, user="bob", role="lead", by="ann")
        update_category(
            session, category_id=_category(db, project, "blurry"), effort=3.0, user="bob"
        )
        set_role(session, project_id=project, user="bob", role="reviewer", by="ann")
    with db.begin() as session, pytest.raises(Forbidden, match="needs the lead role"):
        audit.undo_last(session, project_id=project, user="bob")


def _count(db: Database) -> int:
    with db.begin() as session:
        return session.scalar(select(func.count()).select_from(AuditEvent))
