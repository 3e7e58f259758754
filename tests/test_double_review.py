"""Double review (labeltool.double_review): the overlap of the random queue two reviewers
review, blind to each other until both are done; the disagreements a lead adjudicates; the
report's counting modes; and agreement per category on a double-reviewed sample."""

from __future__ import annotations

import math

import pytest
from sqlalchemy import select

from labeltool import audit, double_review, labeling, report
from labeltool.agreement import COHEN, agreement
from labeltool.categories import create_category
from labeltool.db import Database
from labeltool.errors import Forbidden, InvalidInput
from labeltool.eyeball import in_eyeball, set_eyeball_fraction
from labeltool.models import AdjudicatedTag, AuditEvent, Example
from labeltool.review_actions import (
    ActionKind,
    ReviewAction,
    Standing,
    apply_actions,
    hide_others_while_blind,
    standings,
    window,
)
from labeltool.review_queue import QueueFilter, queue_count, queue_ids
from labeltool.roles import set_role
from tests.test_report import make_project

# --- helpers ---------------------------------------------------------------------------------


def _project(db: Database, write_predictions, *, dev: int, errors: int) -> tuple[int, list[int]]:
    """A project whose first `errors` of `dev` examples are misclassified: its id and the
    errors' pks."""
    project_id = make_project(db, write_predictions, dev=dev, errors=errors)
    with db.begin() as session:
        pks = session.scalars(
            select(Example.id)
            .where(Example.project_id == project_id, Example.is_error.is_(True))
            .order_by(Example.id)
        ).all()
    return project_id, list(pks)


def _overlap(db: Database, project_id: int, share: float | None, user: str | None = None) -> None:
    with db.begin() as session:
        double_review.set_overlap_fraction(
            session, project_id=project_id, fraction=share, user=user
        )


def _overlap_pks(db: Database, project_id: int) -> set[int]:
    with db.begin() as session:
        return set(
            session.scalars(
                select(Example.id).where(
                    Example.project_id == project_id, double_review.in_overlap(project_id)
                )
            )
        )


def _queue(db: Database, project_id: int, reviewer: str | None) -> list[int]:
    with db.begin() as session:
        return queue_ids(
            session, project_id=project_id, queue=QueueFilter(reviewer=reviewer), limit=10_000
        )


def _review(db: Database, pk: int, reviewer: str, categories: list[int] = ()) -> None:
    """`reviewer` tags `pk` with `categories` and saves it."""
    with db.begin() as session:
        for category_id in categories:
            labeling.set_tag(session, example_pks=[pk], category_id=category_id, reviewer=reviewer)
        labeling.mark_reviewed(session, example_pks=[pk], reviewer=reviewer)


def _categories(db: Database, project_id: int, *names: str) -> list[int]:
    with db.begin() as session:
        return [
            create_category(session, project_id=project_id, name=name, mark_rereview=False).id
            for name in names
        ]


def _team(db: Database, project_id: int) -> None:
    """ann leads; bob and cy review."""
    with db.begin() as session:
        set_role(session, project_id=project_id, user="ann", role="lead", by=None)
        set_role(session, project_id=project_id, user="bob", role="reviewer", by="ann")
        set_role(session, project_id=project_id, user="cy", role="reviewer", by="ann")


def _audit(db: Database, project_id: int, kind: str) -> list[tuple]:
    with db.begin() as session:
        return [
            tuple(row)
            for row in session.execute(
                select(AuditEvent.user, AuditEvent.field, AuditEvent.old, AuditEvent.new)
                .where(AuditEvent.project_id == project_id, AuditEvent.kind == kind)
                .order_by(AuditEvent.id)
            )
        ]


# --- the overlap -----------------------------------------------------------------------------


def test_the_overlap_is_a_stable_share_sized_subset_that_only_grows(
    db: Database, write_predictions
) -> None:
    """The overlap holds about its share of the examples, the same ones every time, and
    raising the share adds examples without taking any out."""
    project_id, _ = _project(db, write_predictions, dev=2000, errors=2000)
    assert _overlap_pks(db, project_id) == set()  # no share: nobody reviews twice
    _overlap(db, project_id, 0.1)
    tenth = _overlap_pks(db, project_id)
    assert tenth == _overlap_pks(db, project_id)
    assert abs(len(tenth) - 200) < 3 * math.sqrt(2000 * 0.1 * 0.9)
    _overlap(db, project_id, 0.3)
    third = _overlap_pks(db, project_id)
    assert tenth < third
    assert abs(len(third) - 600) < 3 * math.sqrt(2000 * 0.3 * 0.7)
    _overlap(db, project_id, 0)
    assert _overlap_pks(db, project_id) == set()


def test_the_overlap_is_independent_of_the_eyeball_split(db: Database, write_predictions) -> None:
    """The overlap takes about its share of the eyeball part and of the blackbox part alike:
    the two random choices do not line up."""
    project_id, _ = _project(db, write_predictions, dev=4000, errors=4000)
    _overlap(db, project_id, 0.2)
    with db.begin() as session:
        set_eyeball_fraction(session, project_id=project_id, fraction=0.3)
    with db.begin() as session:
        eyeball = set(
            session.scalars(
                select(Example.id).where(Example.project_id == project_id, in_eyeball(project_id))
            )
        )
        everyone = set(session.scalars(select(Example.id).where(Example.project_id == project_id)))
    overlap = _overlap_pks(db, project_id)
    blackbox = everyone - eyeball
    in_eyeball_share = len(overlap & eyeball) / len(eyeball)
    in_blackbox_share = len(overlap & blackbox) / len(blackbox)
    assert in_eyeball_share == pytest.approx(0.2, abs=0.04)
    assert in_blackbox_share == pytest.approx(0.2, abs=0.03)


def test_only_a_lead_sets_the_overlap_share_and_the_trail_keeps_it(
    db: Database, write_predictions
) -> None:
    """A reviewer is refused, a share outside 0-100% is refused, and the lead's change is an
    audit row with the old and new share."""
    project_id, _ = _project(db, write_predictions, dev=20, errors=10)
    _team(db, project_id)
    with pytest.raises(Forbidden, match="setting the overlap share needs the lead role"):
        _overlap(db, project_id, 0.2, user="bob")
    with pytest.raises(InvalidInput, match="between 0% and 100%"):
        _overlap(db, project_id, 1.5, user="ann")
    _overlap(db, project_id, 0.2, user="ann")
    _overlap(db, project_id, 0.0, user="ann")
    assert _audit(db, project_id, "setting") == [
        ("ann", "overlap share", None, "0.2"),
        ("ann", "overlap share", "0.2", None),
    ]


# --- the queue and the blind view --------------------------------------------------------------


def test_an_overlap_error_stays_in_other_reviewers_queues_until_two_are_done(
    db: Database, write_predictions
) -> None:
    """With every error in the overlap, ann's review keeps the error in bob's and cy's queues
    but not in hers; bob's second review takes it out of everyone's."""
    project_id, pks = _project(db, write_predictions, dev=10, errors=5)
    _overlap(db, project_id, 1.0)
    first = _queue(db, project_id, "ann")[0]
    _review(db, first, "ann")
    assert first not in _queue(db, project_id, "ann")
    assert first in _queue(db, project_id, "bob")
    assert first in _queue(db, project_id, "cy")
    assert first not in _queue(db, project_id, None)  # nobody's queue: as before
    with db.begin() as session:
        assert queue_count(session, project_id=project_id, queue=QueueFilter(reviewer="bob")) == 5
    _review(db, first, "bob")
    for who in ("ann", "bob", "cy"):
        assert first not in _queue(db, project_id, who)
    assert set(_queue(db, project_id, "cy")) == set(pks) - {first}


def test_without_an_overlap_one_review_takes_an_error_out_of_every_queue(
    db: Database, write_predictions
) -> None:
    """No overlap share: the queue is what it always was."""
    project_id, _ = _project(db, write_predictions, dev=10, errors=5)
    first = _queue(db, project_id, "ann")[0]
    _review(db, first, "ann")
    assert first not in _queue(db, project_id, "bob")


def test_each_reviewer_sees_only_their_own_tags_until_both_are_done(
    db: Database, write_predictions
) -> None:
    """Blind: on an overlap error one reviewer finished, the other sees none of their tags
    and the screen says why; once both are done, each sees the other's tags."""
    project_id, pks = _project(db, write_predictions, dev=10, errors=5)
    blurry, dark = _categories(db, project_id, "blurry", "dark")
    _overlap(db, project_id, 1.0)
    pk = pks[0]
    _review(db, pk, "ann", [blurry])

    def seen_by(who: str):
        with db.begin() as session:
            views = labeling.example_views(session, pks=[pk], reviewer=who)
            views, blind = hide_others_while_blind(
                session, project_id=project_id, views=views, reviewer=who
            )
            where = standings(
                session,
                project_id=project_id,
                queue=QueueFilter(reviewer=who),
                views=views,
                blind=blind,
            )
        return views[0].tags_by_reviewer, where[pk]

    assert seen_by("bob") == ({}, Standing.DOUBLE_REVIEW)
    assert seen_by("ann") == ({"ann": {blurry}}, Standing.DOUBLE_REVIEW)
    assert "hidden until you both finish" in Standing.DOUBLE_REVIEW.value
    with db.begin() as session:
        labeling.set_tag(session, example_pks=[pk], category_id=dark, reviewer="bob")
    assert seen_by("bob")[0] == {"bob": {dark}}  # still blind while bob works on it
    _review(db, pk, "bob")
    assert seen_by("ann") == ({"ann": {blurry}, "bob": {dark}}, Standing.REVIEWED_ELSEWHERE)


# --- disagreements and adjudication ------------------------------------------------------------


def test_disagreements_list_each_reviewers_categories(db: Database, write_predictions) -> None:
    """An error two reviewers tagged differently is a disagreement showing what each said and
    what they agreed on; one they tagged alike is not."""
    project_id, pks = _project(db, write_predictions, dev=10, errors=5)
    blurry, dark = _categories(db, project_id, "blurry", "dark")
    _review(db, pks[0], "ann", [blurry, dark])
    _review(db, pks[0], "bob", [dark])
    _review(db, pks[1], "ann", [blurry])
    _review(db, pks[1], "bob", [blurry])
    _review(db, pks[2], "ann", [blurry])  # one reviewer: nothing to disagree on
    with db.begin() as session:
        found = double_review.disagreements(session, project_id=project_id)
        state = double_review.status(session, project_id=project_id)
    assert [d.example_pk for d in found] == [pks[0]]
    assert found[0].tags == {"ann": ["blurry", "dark"], "bob": ["dark"]}
    assert (found[0].consensus, found[0].differing) == (["dark"], ["blurry"])
    assert (state.agreeing, state.disagreeing, state.awaiting_adjudication) == (1, 1, 1)


def test_a_category_added_after_a_review_is_no_disagreement(
    db: Database, write_predictions
) -> None:
    """A reviewer whose review came before a category could not have used it: the other's tag
    of it is no disagreement (the report's rule)."""
    project_id, pks = _project(db, write_predictions, dev=10, errors=5)
    _review(db, pks[0], "ann")
    (late,) = _categories(db, project_id, "late")
    _review(db, pks[0], "bob", [late])
    with db.begin() as session:
        assert double_review.disagreements(session, project_id=project_id) == []


def test_only_a_lead_adjudicates_and_the_trail_keeps_each_decided_category(
    db: Database, write_predictions
) -> None:
    """A reviewer is refused; the lead's decision replaces an earlier one, takes the example
    off the disagreement list, and each category whose decided state changed is an audit
    row."""
    project_id, pks = _project(db, write_predictions, dev=10, errors=5)
    blurry, dark = _categories(db, project_id, "blurry", "dark")
    _team(db, project_id)
    _review(db, pks[0], "bob", [blurry])
    _review(db, pks[0], "cy", [dark])
    with db.begin() as session, pytest.raises(Forbidden, match="adjudicating"):
        double_review.adjudicate(session, example_pk=pks[0], category_ids=[blurry], lead="bob")
    with db.begin() as session:
        decided = double_review.adjudicate(
            session, example_pk=pks[0], category_ids=[blurry], lead="ann"
        )
    assert decided == ["blurry"]
    with db.begin() as session:
        double_review.adjudicate(session, example_pk=pks[0], category_ids=[dark], lead="ann")
    with db.begin() as session:
        stored = set(
            session.scalars(
                select(AdjudicatedTag.category_id).where(AdjudicatedTag.example_pk == pks[0])
            )
        )
        assert double_review.disagreements(session, project_id=project_id) == []
        [shown] = double_review.disagreements(
            session, project_id=project_id, include_adjudicated=True
        )
    assert stored == {dark}
    assert (shown.decided, shown.lead) == (["dark"], "ann")
    assert _audit(db, project_id, "adjudication") == [
        ("ann", "decided", None, "decided"),
        ("ann", "blurry", None, "tagged"),
        ("ann", "blurry", "tagged", None),
        ("ann", "dark", None, "tagged"),
    ]


def test_a_first_decision_of_no_category_is_kept_and_can_be_undone(
    db: Database, write_predictions
) -> None:
    """Deciding that neither reviewer's category holds is a change in the trail too, and the
    lead's undo takes the decision back: the example is a disagreement again."""
    project_id, pks = _project(db, write_predictions, dev=10, errors=5)
    blurry, dark = _categories(db, project_id, "blurry", "dark")
    _team(db, project_id)
    _review(db, pks[0], "bob", [blurry])
    _review(db, pks[0], "cy", [dark])
    with db.begin() as session:
        assert (
            double_review.adjudicate(session, example_pk=pks[0], category_ids=[], lead="ann") == []
        )
    assert _audit(db, project_id, "adjudication") == [("ann", "decided", None, "decided")]
    with db.begin() as session:
        assert double_review.disagreements(session, project_id=project_id) == []
        audit.undo_last(session, project_id=project_id, user="ann")
    with db.begin() as session:
        assert len(double_review.disagreements(session, project_id=project_id)) == 1


def test_adjudicating_refuses_an_archived_or_unknown_category(
    db: Database, write_predictions
) -> None:
    """The lead decides on the project's live categories only; nothing is stored otherwise."""
    project_id, pks = _project(db, write_predictions, dev=10, errors=5)
    (blurry,) = _categories(db, project_id, "blurry")
    with db.begin() as session, pytest.raises(Exception, match="no category with id 999999"):
        double_review.adjudicate(session, example_pk=pks[0], category_ids=[999999], lead="ann")
    with db.begin() as session:
        assert session.scalars(select(AdjudicatedTag)).all() == []


# --- counting modes ----------------------------------------------------------------------------


def test_counting_modes_count_any_consensus_or_the_leads_decision(
    db: Database, write_predictions
) -> None:
    """On three errors two reviewers reviewed: "any" counts a tag by either, "consensus" only
    tags both made, "adjudicated" the lead's decision where there is one; the report says
    which it used and how many disagreements await adjudication."""
    project_id, pks = _project(db, write_predictions, dev=10, errors=4)
    blurry, dark = _categories(db, project_id, "blurry", "dark")
    e1, e2, e3 = pks[:3]
    _review(db, e1, "ann", [blurry])
    _review(db, e1, "bob", [blurry])
    _review(db, e2, "ann", [blurry])
    _review(db, e2, "bob")
    _review(db, e3, "ann", [dark])
    _review(db, e3, "bob", [dark, blurry])

    def errors(counting: str) -> dict[str, int]:
        with db.begin() as session:
            table = report.ceiling_table(session, project_id=project_id, counting=counting)
        assert table.attrs["counting"] == counting
        return dict(zip(table["category"], table["errors"], strict=True))

    assert errors("any") == {"blurry": 3, "dark": 1, "(no category)": 0}
    assert errors("consensus") == {"blurry": 1, "dark": 1, "(no category)": 1}
    assert errors("adjudicated") == errors("any")  # nothing decided yet
    with db.begin() as session:
        top = report.headline(session, project_id=project_id)
    assert "2 disagreements between reviewers await adjudication" in top.counting_sentence
    with db.begin() as session:
        double_review.adjudicate(session, example_pk=e2, category_ids=[], lead="lee")
        double_review.adjudicate(session, example_pk=e3, category_ids=[blurry, dark], lead="lee")
    assert errors("adjudicated") == {"blurry": 2, "dark": 1, "(no category)": 1}
    assert errors("any") == {"blurry": 3, "dark": 1, "(no category)": 0}
    with db.begin() as session:
        text = report.report_text(
            report.headline(session, project_id=project_id, counting="consensus"),
            report.ceiling_table(session, project_id=project_id, counting="consensus"),
        )
        data = report.report_json(session, project_id=project_id)
    assert "Counting: consensus (a category counts on an error only when every" in text
    assert "no disagreement awaits adjudication" in text
    assert (data["counting"], data["awaiting_adjudication"]) == ("adjudicated", 0)


def test_an_unknown_counting_mode_is_refused(db: Database, write_predictions) -> None:
    """A mistyped mode names the ones there are."""
    project_id, _ = _project(db, write_predictions, dev=10, errors=4)
    with db.begin() as session, pytest.raises(InvalidInput, match="adjudicated, consensus, any"):
        report.headline(session, project_id=project_id, counting="majority")


# --- end to end: two reviewers through the queue, then agreement -------------------------------


def test_a_double_reviewed_sample_gives_a_kappa_per_category(
    db: Database, write_predictions
) -> None:
    """Two reviewers review through their own queues (as the review screen does) with half
    the errors in the overlap, each blind to the other; every overlap error ends up reviewed
    by both, and agreement has Cohen's kappa for each category."""
    project_id, pks = _project(db, write_predictions, dev=120, errors=60)
    blurry, dark = _categories(db, project_id, "blurry", "dark")
    _overlap(db, project_id, 0.5)

    def says(who: str, pk: int) -> list[int]:
        """Each reviewer's judgement: mostly the same, not always."""
        tags = []
        if pk % 3 == 0 or (who == "bob" and pk % 7 == 0):
            tags.append(blurry)
        if pk % 4 == 0 or (who == "ann" and pk % 5 == 0):
            tags.append(dark)
        return tags

    seq = 0
    for who in ("ann", "bob"):
        queue = QueueFilter(reviewer=who)
        while True:
            with db.begin() as session:
                order = window(session, project_id=project_id, queue=queue, anchor=None)
                if order:
                    views = labeling.example_views(session, pks=order[:1], reviewer=who)
                    views, _ = hide_others_while_blind(
                        session, project_id=project_id, views=views, reviewer=who
                    )
            if not order:
                break
            pk = order[0]
            assert set(views[0].tags_by_reviewer) <= {who}  # never the other's tags
            actions = []
            for category_id in says(who, pk):
                seq += 1
                actions.append(ReviewAction(seq, ActionKind.TAG, pk, who, category_id))
            seq += 1
            actions.append(ReviewAction(seq, ActionKind.SAVE, pk, who))
            with db.begin() as session:
                results = apply_actions(session, project_id=project_id, actions=actions)
            assert all(r.applied for r in results)
    with db.begin() as session:
        state = double_review.status(session, project_id=project_id)
        rows = {r.category: r for r in agreement(session, project_id=project_id)}
    assert state.in_overlap > 15
    assert state.done == state.in_overlap
    assert (state.unreviewed, state.one_reviewer) == (0, 0)
    assert set(rows) == {"blurry", "dark"}
    for row in rows.values():
        assert row.statistic == COHEN
        assert row.examples == state.done
        assert row.coefficient is not None and -1 <= row.coefficient < 1
