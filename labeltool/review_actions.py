"""What a reviewer did on the review screen, applied in order to the example they saw.

The review screen records every key press in the browser together with the example on screen
and sends the list to the server, which may still be busy with earlier presses. Each action
here names its example and its reviewer and says what the result should be ("tag on", not
"toggle"), so applying the same action twice changes nothing: a press that reaches the server
twice, or late, can never land on another example or undo itself. `window` tells the screen
which examples come next, so it can show the next one without waiting for the server.

Functions take the session first and never commit; the page owns the transaction.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from labeltool import audit, double_review, labeling, review_queue
from labeltool.config import DEFAULT_SPLIT
from labeltool.errors import InvalidInput, LabeltoolError
from labeltool.eyeball import in_eyeball
from labeltool.labeling import ExampleView
from labeltool.models import Category, Example, ReachedBy, ReviewState
from labeltool.review_queue import QueueFilter

#: How many examples after the one on screen the screen keeps ready.
AHEAD = 20
#: The longest comment a reviewer can save.
MAX_COMMENT = 10_000
#: The longest signal kind a dismiss action may name (Dismissal.kind's column).
MAX_KIND = 32


class ActionKind(enum.StrEnum):
    """What a key press (or click) on the review screen asks for."""

    TAG = "tag"  #: category on or off for this reviewer
    #: the suggested categories the screen showed, on for this reviewer (labeltool.signals)
    ACCEPT = "accept"
    #: the suggestions the screen showed (by signal kind), no for this reviewer: not shown to
    #: them again; the signals stay
    DISMISS = "dismiss"
    SAVE = "save"  #: the reviewer is done with the example: it counts as reviewed
    SKIP = "skip"  #: put aside; not part of the reviewed sample
    COMMENT = "comment"  #: the example's comment
    CORRECTED_LABEL = "corrected_label"  #: the right label (or none)
    #: open the Gallery on the errors most like this one: nothing is saved; the page leaves
    #: for the Gallery once every action before it is applied
    SIMILAR = "similar"


@dataclass(frozen=True)
class ReviewAction:
    """One thing a reviewer did to one example, numbered in the order they did it."""

    seq: int
    kind: ActionKind
    example_pk: int
    reviewer: str
    category_id: int | None = None
    on: bool = True
    text: str | None = None
    #: An accept action's categories: the suggestions the screen showed for the example.
    categories: tuple[int, ...] = ()
    #: A dismiss action's signal kinds (labeltool.signals): the suggestions said no to.
    kinds: tuple[str, ...] = ()


@dataclass(frozen=True)
class ActionResult:
    """What became of an action: applied, or refused with the reason a person can read."""

    seq: int
    example_pk: int
    error: str | None = None

    @property
    def applied(self) -> bool:
        return self.error is None


class Standing(enum.StrEnum):
    """Where an example stands against the reviewer's queue, said in the method's words."""

    IN_QUEUE = "in the queue"
    CORRECT = "correctly classified"
    NOT_DEV = "not in the dev set"
    BLACKBOX = "in the blackbox part of the dev set"
    REVIEWED_ELSEWHERE = "reviewed, not in this queue"
    OUTSIDE_FILTER = "not in this queue"
    #: An overlap error fewer than two reviewers have finished (labeltool.double_review).
    DOUBLE_REVIEW = (
        "in the double review: the other reviewer's tags are hidden until you both finish"
    )

    @property
    def reviewable(self) -> bool:
        """Whether the example is a dev error reviewers look at (so it can be tagged)."""
        return self not in (Standing.CORRECT, Standing.NOT_DEV, Standing.BLACKBOX)


def reached_by(queue: QueueFilter) -> ReachedBy:
    """What the queue's examples are a sample of: a random queue of all errors, a random queue
    of one confusion pair, or a targeted look (another filter, or the confidence order)."""
    if queue.order != "random":
        return ReachedBy.CONFIDENCE_ORDER
    if (
        queue.category_id is not None
        or queue.change is not None
        or queue.min_confidence > 0.0
        or queue.max_confidence < 1.0
    ):
        return ReachedBy.FILTERED
    if queue.confusion_pair is not None:
        return ReachedBy.RANDOM_IN_PAIR
    return ReachedBy.RANDOM


def parse_actions(raw: object, *, after: int = 0) -> list[ReviewAction]:
    """Turn the screen's list of actions (JSON from the browser) into ReviewActions, in order,
    keeping those numbered above `after` (the ones not applied yet).

    The browser is not trusted: anything malformed raises InvalidInput and nothing is applied.
    """
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise InvalidInput("the review screen sent actions that are not a list")
    actions = []
    for item in raw:
        if not isinstance(item, dict):
            raise InvalidInput("the review screen sent an action that is not an object")
        try:
            action = ReviewAction(
                seq=_integer(item.get("seq")),
                kind=ActionKind(item.get("kind")),
                example_pk=_integer(item.get("pk")),
                reviewer=str(item.get("reviewer") or ""),
                category_id=(
                    _integer(item["category"]) if item.get("category") is not None else None
                ),
                on=bool(item.get("on", True)),
                text=None if item.get("text") is None else str(item["text"]),
                categories=_whole_numbers(item.get("categories")),
                kinds=_kinds(item.get("kinds")),
            )
        except (ValueError, TypeError, KeyError) as exc:
            raise InvalidInput(f"the review screen sent a malformed action ({exc})") from None
        if action.seq > after:
            actions.append(action)
    actions.sort(key=lambda action: action.seq)
    return actions


def apply_actions(
    session: Session,
    *,
    project_id: int,
    actions: Iterable[ReviewAction],
    reached: ReachedBy = ReachedBy.RANDOM,
    by_hand: Collection[int] = (),
) -> list[ActionResult]:
    """Apply each action to its own example, in order, each all-or-nothing.

    A save records that its example was `reached` through the queue (`reached_by`),
    or by hand for the examples in `by_hand` (opened by a link). An action that cannot be
    applied (the category was archived meanwhile, the example is not a dev error, no reviewer
    name) is refused with its reason; the others still apply.
    """
    results = []
    for action in actions:
        how = ReachedBy.BY_HAND if action.example_pk in by_hand else reached
        audit.new_change(session)  # each key press is a change of its own, undone alone
        try:
            with session.begin_nested():
                _apply(session, project_id, action, reached=how)
        except LabeltoolError as exc:
            results.append(ActionResult(action.seq, action.example_pk, str(exc)))
        else:
            results.append(ActionResult(action.seq, action.example_pk))
    return results


def similar_requested(
    actions: Sequence[ReviewAction], results: Sequence[ActionResult]
) -> int | None:
    """The example whose like the reviewer asked to see (the last "similar" action), when it
    and every action before it were applied; None otherwise, so no refusal goes unseen."""
    asked = [action for action in actions if action.kind is ActionKind.SIMILAR]
    if not asked:
        return None
    last = asked[-1]
    if all(result.applied for result in results if result.seq <= last.seq):
        return last.example_pk
    return None


def window(
    session: Session,
    *,
    project_id: int,
    queue: QueueFilter,
    anchor: int | None,
    ahead: int = AHEAD,
) -> list[int]:
    """The example on screen (`anchor`) and the `ahead` queue examples after it, in queue order.

    Without an anchor (or when it is gone) the window starts at the queue's first example.
    The examples after the anchor follow it in queue order even when the anchor itself has left
    the queue (it was just reviewed), so the next example is known before the server hears of it.
    """
    if anchor is not None:
        example = session.get(Example, anchor)
        if example is None or example.project_id != project_id:
            anchor = None
    if anchor is None:
        return review_queue.queue_ids(session, project_id=project_id, queue=queue, limit=ahead + 1)
    return [anchor] + review_queue.queue_ids_after(
        session, project_id=project_id, queue=queue, after=anchor, limit=ahead
    )


def hide_others_while_blind(
    session: Session, *, project_id: int, views: Sequence[ExampleView], reviewer: str | None
) -> tuple[list[ExampleView], frozenset[int]]:
    """The views as `reviewer` may see them, and the pks of those that are blind: on an
    overlap error fewer than two reviewers have finished, only the reviewer's own tags
    (labeltool.double_review), so neither reviewer is swayed by the other. Once both are done,
    everyone sees every tag. One query for the lot."""
    blind = double_review.blind_pks(session, project_id=project_id, pks=[v.pk for v in views])
    shown = [
        dataclasses.replace(
            view,
            tags_by_reviewer=(
                {reviewer: set(view.tags_of(reviewer))}
                if reviewer and view.tags_of(reviewer)
                else {}
            ),
        )
        if view.pk in blind
        else view
        for view in views
    ]
    return shown, frozenset(blind)


def standings(
    session: Session,
    *,
    project_id: int,
    queue: QueueFilter,
    views: Sequence[ExampleView],
    blind: Collection[int] = (),
) -> dict[int, Standing]:
    """Where each shown example stands against the queue (from one query for the lot); a
    reviewable example in `blind` (hide_others_while_blind) is in the double review."""
    pks = [view.pk for view in views]
    if not pks:
        return {}
    in_queue = set(
        session.scalars(
            select(Example.id).where(
                Example.id.in_(pks), *review_queue.queue_conditions(project_id, queue)
            )
        )
    )
    eyeball = set(
        session.scalars(select(Example.id).where(Example.id.in_(pks), in_eyeball(project_id)))
    )
    result = {}
    for view in views:
        reviewable = view.split == DEFAULT_SPLIT and view.label != view.prediction
        if view.pk in blind and reviewable and view.pk in eyeball:
            result[view.pk] = Standing.DOUBLE_REVIEW
        elif view.pk in in_queue:
            result[view.pk] = Standing.IN_QUEUE
        elif view.split != DEFAULT_SPLIT:
            result[view.pk] = Standing.NOT_DEV
        elif view.label == view.prediction:
            result[view.pk] = Standing.CORRECT
        elif view.pk not in eyeball:
            result[view.pk] = Standing.BLACKBOX
        elif view.review_state != ReviewState.UNREVIEWED.value:
            result[view.pk] = Standing.REVIEWED_ELSEWHERE
        else:
            result[view.pk] = Standing.OUTSIDE_FILTER
    return result


# --- private helpers -------------------------------------------------------------------


def _apply(session: Session, project_id: int, action: ReviewAction, *, reached: ReachedBy) -> None:
    example = session.get(Example, action.example_pk)
    if example is None or example.project_id != project_id:
        raise InvalidInput(f"no example with id {action.example_pk} in this project")
    if action.kind in (
        ActionKind.TAG,
        ActionKind.ACCEPT,
        ActionKind.DISMISS,
        ActionKind.SAVE,
        ActionKind.SKIP,
    ) and not (example.is_error and example.split == DEFAULT_SPLIT):
        raise InvalidInput(
            f"example '{example.example_id}' is not a misclassified dev example: "
            "only dev errors are tagged and reviewed"
        )
    if action.kind is ActionKind.TAG:
        if action.category_id is None:
            raise InvalidInput("a tag action needs a category")
        labeling.set_tag(
            session,
            example_pks=[example.id],
            category_id=_live_category(session, project_id, action.category_id),
            reviewer=action.reviewer,
            tagged=action.on,
        )
    elif action.kind is ActionKind.ACCEPT:
        _accept(session, project_id, example, action)
    elif action.kind is ActionKind.DISMISS:
        if not action.kinds:
            raise InvalidInput("a dismiss action needs the suggestions' kinds")
        labeling.dismiss_suggestions(
            session, example_pk=example.id, kinds=action.kinds, reviewer=action.reviewer
        )
    elif action.kind is ActionKind.SAVE:
        labeling.mark_reviewed(
            session,
            example_pks=[example.id],
            reviewer=action.reviewer,
            project_id=project_id,
            reached=reached,
        )
    elif action.kind is ActionKind.SKIP:
        labeling.skip_example(session, example_pk=example.id, user=action.reviewer)
    elif action.kind is ActionKind.COMMENT:
        text = action.text or ""
        if len(text) > MAX_COMMENT:
            raise InvalidInput(f"a comment has at most {MAX_COMMENT:,} characters")
        labeling.set_comment(session, example_pk=example.id, comment=text, user=action.reviewer)
    elif action.kind is ActionKind.CORRECTED_LABEL:
        labeling.set_corrected_label(
            session,
            example_pk=example.id,
            corrected_label=action.text or None,
            user=action.reviewer,
        )
    # SIMILAR saves nothing: it only had to name an example of this project (the page opens
    # the Gallery on it).


def _accept(session: Session, project_id: int, example: Example, action: ReviewAction) -> None:
    """Turn on, for the reviewer, the suggested categories the screen showed, each tag
    recorded as an accepted suggestion; a category already on stays as it was. Refused as a
    whole (nothing tagged) when one of them is archived or no longer suggested to this
    reviewer (they dismissed it)."""
    if not action.categories:
        raise InvalidInput("an accept action needs the suggested categories")
    suggested = {
        s.category_id
        for s in labeling.suggested_categories(
            session, pks=[example.id], reviewer=action.reviewer
        ).get(example.id, [])
    }
    for category_id in dict.fromkeys(action.categories):
        category_id = _live_category(session, project_id, category_id)
        if category_id not in suggested:
            name = session.get(Category, category_id).name
            raise InvalidInput(
                f"'{name}' is no longer suggested for example '{example.example_id}'; "
                "nothing was accepted"
            )
        labeling.set_tag(
            session,
            example_pks=[example.id],
            category_id=category_id,
            reviewer=action.reviewer,
            suggested=True,
        )


def _live_category(session: Session, project_id: int, category_id: int) -> int:
    category = session.get(Category, category_id)
    if category is None or category.project_id != project_id:
        raise InvalidInput(f"no category with id {category_id} in this project")
    if category.archived:
        raise InvalidInput(f"category '{category.name}' was archived; its tags stay as they are")
    return category.id


def _whole_numbers(value: object) -> tuple[int, ...]:
    """A list of whole numbers from the browser (none when absent), at most 1,000 of them."""
    if value is None:
        return ()
    if not isinstance(value, list) or len(value) > 1000:
        raise ValueError("categories must be a list of category ids")
    return tuple(_integer(item) for item in value)


def _kinds(value: object) -> tuple[str, ...]:
    """A list of signal kinds from the browser (none when absent), at most 100 short strings."""
    if value is None:
        return ()
    if not isinstance(value, list) or len(value) > 100:
        raise ValueError("kinds must be a list of signal kinds")
    if not all(isinstance(kind, str) and 0 < len(kind) <= MAX_KIND for kind in value):
        raise ValueError(f"each kind must be a name of 1 to {MAX_KIND} characters")
    return tuple(value)


def _integer(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"{value!r} is not a whole number")
    number = int(value)
    if number != float(value):
        raise ValueError(f"{value!r} is not a whole number")
    return number
