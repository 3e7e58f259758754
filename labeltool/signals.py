"""Signals: what the tool can notice about a run's dev examples before a reviewer looks.

`analyze` computes, for a project's run, and stores in `signals` (one row per example and
kind, replaced on each analysis):

- *likely label error*: confident learning over the `prob_<class>` columns
  (labeltool.label_issues), ranked by self-confidence;
- *blurry*, *dark*, *bright*, *low information*, *odd size*: image measures judged against the
  project's own distribution (labeltool.image_measures), measured once per image and kept in
  `image_measures`, so a second analysis measures only images it has not seen (incremental,
  and resumable: a stopped analysis keeps what it measured);
- *near duplicate*: perceptual hashes within the dev set and between dev and train propose
  candidate pairs, and each is confirmed on the two pictures themselves, read again (only the
  candidates' images): their thumbnails must be all but identical
  (labeltool.image_measures.same_pictures), so two digits of one class that merely hash alike
  are not flagged.

A degraded image explains a model's doubt better than a wrong label does: a likely label error
on an image flagged blurry, dark, bright or low information is set aside (not stored, so not
suggested; the summary counts them) when the model errs on such images at least
DEGRADED_ERROR_RATIO times as often as on images with no image flag. A model that reads them
well (trained on blurred copies, say) keeps its label-error flags on them.

`suggestions` turns the signals of the run's dev errors into suggested categories: a kind
suggests the project's category of the same name (case aside), and a likely label error the
category that marks incorrect labels. Suggestions are never applied on their own.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from labeltool import report_cache
from labeltool.config import DEFAULT_SPLIT
from labeltool.limits import shown
from labeltool.models import (
    REVIEWED_STATES,
    Category,
    Example,
    ImageMeasure,
    Project,
    Run,
    Signal,
    Tag,
    utcnow,
)
from labeltool.runs import get_run
from labeltool.storage import images_root

LABEL_ERROR = "likely label error"
NEAR_DUPLICATE = "near duplicate"
#: The image kinds labeltool.image_measures.flag_outliers gives.
IMAGE_KINDS = ("blurry", "dark", "bright", "low information", "odd size")
KINDS = (LABEL_ERROR, *IMAGE_KINDS, NEAR_DUPLICATE)
#: The image kinds that degrade what a model can read (a size is no degradation).
DEGRADED_KINDS = ("blurry", "dark", "bright", "low information")
#: How many times the error rate of the images with no image flag the model's error rate on
#: the images of one degraded kind must be for that kind to explain a likely label error.
DEGRADED_ERROR_RATIO = 2.0
#: How many bits apart two perceptual hashes may be for their images to be compared as
#: near-duplicate candidates: a copy re-encoded as JPEG can move a 28x28 digit's hash 6 bits,
#: and the comparison of the pictures, not the hash, decides.
CANDIDATE_DISTANCE = 6

#: progress(stage, done, total).
Progress = Callable[[str, int, int], None]

_BATCH = 500
#: The ImageMeasures fields an image_measures row keeps (aspect follows from width/height).
_KEPT_MEASURES = ("blur", "brightness", "contrast", "entropy", "width", "height", "phash")


@dataclass(frozen=True)
class AnalysisSummary:
    """What an analysis found, for the CLI's last line."""

    run: str
    examples: int
    measured: int
    unreadable: int
    found: dict[str, int]
    #: Likely label errors set aside as explained by a degraded image, by its kind.
    set_aside: dict[str, int] = field(default_factory=dict)

    def __str__(self) -> str:
        found = ", ".join(f"{n} {kind}" for kind, n in self.found.items() if n) or "nothing"
        text = (
            f"run '{self.run}': {self.examples} dev examples analysed, {self.measured} images "
            f"measured ({self.unreadable} unreadable); found {found}"
        )
        if self.set_aside:
            kinds = ", ".join(f"{n} {kind}" for kind, n in self.set_aside.items())
            text += (
                f"; {sum(self.set_aside.values())} more {LABEL_ERROR} set aside, their images "
                f"degraded ({kinds}) in a way the model often misreads"
            )
        return text


@dataclass(frozen=True)
class Suggestion:
    """A suggested category for one dev error, with the signal behind it."""

    example_id: str
    category: str
    kind: str
    score: float
    reason: str


def analyze(
    session: Session,
    *,
    project_id: int,
    run: str | None = None,
    images: bool = True,
    progress: Progress | None = None,
    user: str | None = None,
) -> AnalysisSummary:
    """Compute and store the signals of the project's run called `run` (the latest without
    one), see the module doc; returns what was found. `images=False` skips the image
    measures and near-duplicates (no image is read). `user` acts: once the project has
    members, analysing a run is the lead's (labeltool.roles)."""
    from labeltool.roles import Role, require

    require(session, project_id=project_id, user=user, needs=Role.LEAD, action="analysing a run")
    project = session.get(Project, project_id)
    run = get_run(session, project_id=project_id, name=run)
    rows = session.execute(
        select(
            Example.id,
            Example.example_id,
            Example.image,
            Example.label,
            Example.prediction,
            Example.probabilities,
            Example.split,
            Example.is_error,
        ).where(Example.run_id == run.id)
    ).all()
    dev = [r for r in rows if r.split == DEFAULT_SPLIT]
    found: dict[int, dict[str, tuple[float, str]]] = {}

    for pk, score, reason in _label_errors(dev, list(project.class_names or [])):
        found.setdefault(pk, {})[LABEL_ERROR] = (score, reason)

    measured = unreadable = 0
    if images:
        measured, unreadable, kept = _measure(session, project, rows, progress)
        root = images_root(project.images_root)
        for pk, kind, score, reason in _image_signals(dev, rows, kept, root):
            found.setdefault(pk, {})[kind] = (score, reason)
    set_aside = _set_aside_label_errors(dev, found)

    dev_pks = [r.id for r in dev]
    for start in range(0, len(dev_pks), _BATCH):
        batch = dev_pks[start : start + _BATCH]
        session.execute(delete(Signal).where(Signal.example_pk.in_(batch)))
    now = utcnow()
    session.add_all(
        Signal(example_pk=pk, kind=kind, score=score, reason=reason, computed_at=now)
        for pk, kinds in found.items()
        for kind, (score, reason) in kinds.items()
    )
    session.flush()
    report_cache.touch(session, project_id)  # the report's suggester table reads them
    counts = {kind: 0 for kind in KINDS}
    for kinds in found.values():
        for kind in kinds:
            counts[kind] += 1
    return AnalysisSummary(
        run=run.name,
        examples=len(dev),
        measured=measured,
        unreadable=unreadable,
        found=counts,
        set_aside=set_aside,
    )


def suggestions(session: Session, *, project_id: int, run: str | None = None) -> list[Suggestion]:
    """The suggested categories of the run's dev errors, most confident first within each
    kind, for the kinds the project has a category for."""
    run = get_run(session, project_id=project_id, name=run)
    categories = session.scalars(
        select(Category).where(Category.project_id == project_id, Category.archived.is_(False))
    ).all()
    by_kind = category_for_kind(categories)
    rows = session.execute(
        select(Example.example_id, Signal.kind, Signal.score, Signal.reason)
        .join(Signal, Signal.example_pk == Example.id)
        .where(
            Example.run_id == run.id,
            Example.split == DEFAULT_SPLIT,
            Example.is_error.is_(True),
        )
        .order_by(Signal.kind, Signal.score.desc(), Example.example_id)
    ).all()
    return [
        Suggestion(example_id, by_kind[kind], kind, float(score), reason)
        for example_id, kind, score, reason in rows
        if kind in by_kind
    ]


@dataclass(frozen=True)
class SuggesterQuality:
    """How one suggester did on the errors reviewers have reviewed: of those it suggested
    its category for, how many the reviewers tagged with it (precision), and of those they
    tagged with it, how many it had suggested (recall)."""

    kind: str
    category: str
    suggested: int
    confirmed: int
    tagged: int

    @property
    def precision(self) -> float | None:
        return self.confirmed / self.suggested if self.suggested else None

    @property
    def recall(self) -> float | None:
        return self.confirmed / self.tagged if self.tagged else None

    @property
    def precision_interval(self) -> tuple[float, float] | None:
        from labeltool.estimate import wilson_interval

        return wilson_interval(self.confirmed, self.suggested) if self.suggested else None


def suggester_quality(
    session: Session, *, project_id: int, run: str | None = None, run_id: int | None = None
) -> list[SuggesterQuality]:
    """Each suggester's precision and recall on the run's reviewed dev errors, judged by the
    reviewers' own tags (a tag counts whether the reviewer accepted the suggestion or chose
    the category by hand). Aggregated in the database: no example is loaded."""
    run_row = (
        session.get(Run, run_id)
        if run_id is not None
        else get_run(session, project_id=project_id, name=run)
    )
    categories = session.scalars(
        select(Category).where(Category.project_id == project_id, Category.archived.is_(False))
    ).all()
    by_name = {c.name: c.id for c in categories}
    reviewed = (
        select(Example.id)
        .where(
            Example.run_id == run_row.id,
            Example.split == DEFAULT_SPLIT,
            Example.is_error.is_(True),
            Example.review_state.in_(REVIEWED_STATES),
        )
        .subquery()
    )
    found = []
    for kind, name in category_for_kind(categories).items():
        category_id = by_name[name]
        suggested = select(Signal.example_pk).where(
            Signal.kind == kind, Signal.example_pk.in_(select(reviewed.c.id))
        )
        tagged = select(Tag.example_pk).where(
            Tag.category_id == category_id, Tag.example_pk.in_(select(reviewed.c.id))
        )
        counts = session.execute(
            select(
                select(func.count()).select_from(suggested.subquery()).scalar_subquery(),
                select(func.count(func.distinct(tagged.subquery().c.example_pk))).scalar_subquery(),
                select(func.count())
                .select_from(suggested.where(Signal.example_pk.in_(tagged)).subquery())
                .scalar_subquery(),
            )
        ).one()
        found.append(
            SuggesterQuality(
                kind=kind,
                category=name,
                suggested=int(counts[0]),
                tagged=int(counts[1]),
                confirmed=int(counts[2]),
            )
        )
    return found


def analysed(session: Session, *, run_id: int) -> bool:
    """Whether `labeltool analyze` has stored any signal for the run."""
    return (
        session.scalar(
            select(Signal.id)
            .join(Example, Example.id == Signal.example_pk)
            .where(Example.run_id == run_id)
            .limit(1)
        )
        is not None
    )


def category_for_kind(categories: Sequence[Category]) -> dict[str, str]:
    """Which category each signal kind suggests: the category of the same name (case aside);
    a likely label error, the category that marks incorrect labels."""
    names = {c.name.casefold(): c.name for c in categories}
    found = {kind: names[kind] for kind in KINDS if kind in names}
    marking = [c.name for c in categories if c.marks_incorrect_label]
    if marking:
        found[LABEL_ERROR] = marking[0]
    if NEAR_DUPLICATE not in found and "duplicate" in names:
        found[NEAR_DUPLICATE] = names["duplicate"]
    return found


# --- likely label errors ---------------------------------------------------------------


def _label_errors(dev: list, classes: list[str]) -> list[tuple[int, float, str]]:
    """(example pk, score, reason) of the dev examples confident learning flags."""
    from labeltool import label_issues

    index = {c: i for i, c in enumerate(classes)}
    usable = [
        r
        for r in dev
        if r.probabilities and r.label in index and all(c in r.probabilities for c in classes)
    ]
    if len(usable) < 2 or len(classes) < 2:
        return []
    labels = np.array([index[r.label] for r in usable])
    probs = np.array([[r.probabilities[c] for c in classes] for r in usable], dtype=float)
    totals = probs.sum(axis=1, keepdims=True)
    probs = np.divide(probs, totals, out=np.full_like(probs, 1 / len(classes)), where=totals > 0)
    flagged = label_issues.find_label_issues(labels, probs, rank_by="self_confidence")
    quality = label_issues.label_quality(labels, probs, rank_by="self_confidence")
    found = []
    for position in flagged:
        row = usable[int(position)]
        top = int(np.argmax(probs[position]))
        found.append(
            (
                row.id,
                float(1.0 - quality[position]),
                f"the model gives {probs[position, top]:.2f} to {shown(classes[top])}, the "
                f"label {shown(row.label)} only {probs[position, labels[position]]:.2f}",
            )
        )
    return found


def _set_aside_label_errors(dev: list, found: dict[int, dict]) -> dict[str, int]:
    """Drop from `found` the likely label errors a degraded image explains (see the module
    doc); return how many were dropped, by the first degraded kind of each image."""
    unflagged = [r.is_error for r in dev if not (found.get(r.id, {}).keys() - {LABEL_ERROR})]
    clean_rate = sum(unflagged) / len(unflagged) if unflagged else 0.0
    explaining = []
    for kind in DEGRADED_KINDS:
        degraded = [r.is_error for r in dev if kind in found.get(r.id, {})]
        if degraded and sum(degraded) / len(degraded) >= DEGRADED_ERROR_RATIO * clean_rate:
            explaining.append(kind)
    set_aside: dict[str, int] = {}
    for kinds in found.values():
        cause = next((kind for kind in explaining if kind in kinds), None)
        if cause and LABEL_ERROR in kinds:
            del kinds[LABEL_ERROR]
            set_aside[cause] = set_aside.get(cause, 0) + 1
    return set_aside


def _image_score(kind: str, measure) -> float:
    """How strongly an image is what its flag says, for ranking within a kind (larger: more)."""
    if kind == "blurry":  # on sharpness, as flagged: a sharp photo ~0.1 scores ~0.1
        return 1.0 / (1.0 + 100 * max(measure.sharpness, 0.0))
    if kind == "dark":
        return 1.0 - measure.brightness
    if kind == "bright":
        return measure.brightness
    if kind == "low information":
        return 1.0 / (1.0 + max(measure.entropy, 0.0))
    return 1.0


# --- image measures --------------------------------------------------------------------


def _measure(session: Session, project: Project, rows: list, progress: Progress | None):
    """Measure the run's images not measured yet; return (measured now, unreadable in all,
    {image: ImageMeasure} of every image of the run)."""
    from labeltool import image_measures

    wanted = sorted({r.image for r in rows})
    kept = {
        m.image: m
        for m in session.scalars(select(ImageMeasure).where(ImageMeasure.project_id == project.id))
    }
    todo = [image for image in wanted if image not in kept]
    root = images_root(project.images_root)
    done = 0
    for start in range(0, len(todo), _BATCH):
        batch = todo[start : start + _BATCH]
        results = image_measures.measure_images(root, batch)
        for image in batch:
            result = results.get(image, "not measured")
            if isinstance(result, str):
                measure = ImageMeasure(project_id=project.id, image=image, problem=result)
            else:
                measure = ImageMeasure(
                    project_id=project.id,
                    image=image,
                    **{name: getattr(result, name) for name in _KEPT_MEASURES},
                )
            session.add(measure)
            kept[image] = measure
        session.flush()  # resumable: what is measured stays measured in this transaction
        done += len(batch)
        if progress:
            progress("measuring images", done, len(todo))
    unreadable = sum(1 for image in wanted if kept[image].problem)
    return len(todo), unreadable, {image: kept[image] for image in wanted}


def _image_signals(dev: list, rows: list, kept: dict, root) -> list[tuple[int, str, float, str]]:
    """(example pk, kind, score, reason) from the image measures of the dev images, judged
    against the project's own distribution, and near-duplicates (the candidates' images read
    again from `root`)."""
    from labeltool import image_measures

    measures = {
        image: image_measures.ImageMeasures(
            **{name: getattr(m, name) for name in _KEPT_MEASURES},
            aspect=(m.width / m.height) if m.width and m.height else 1.0,
        )
        for image, m in kept.items()
        if not m.problem
    }
    dev_images = {r.image for r in dev}
    flags = image_measures.flag_outliers(
        {image: v for image, v in measures.items() if image in dev_images}
    )
    found = []
    by_image: dict[str, list] = {}
    for r in dev:
        by_image.setdefault(r.image, []).append(r)
    for image, image_flags in flags.items():
        for flag in image_flags:
            score = _image_score(flag.kind, measures[image])
            for r in by_image.get(image, ()):
                found.append((r.id, flag.kind, score, flag.reason))

    dev_hashes = {i: m.phash for i, m in measures.items() if i in dev_images and m.phash}
    train_images = {r.image for r in rows if r.split != DEFAULT_SPLIT} - dev_images
    train_hashes = {i: m.phash for i, m in measures.items() if i in train_images and m.phash}
    candidates = image_measures.near_duplicates(dev_hashes, max_distance=CANDIDATE_DISTANCE)
    if train_hashes:
        candidates += image_measures.near_duplicates(
            dev_hashes, against=train_hashes, max_distance=CANDIDATE_DISTANCE
        )
    pictures = image_measures.thumbnails(root, [i for pair in candidates for i in pair[:2]])
    closest: dict[str, tuple[float, int, str]] = {}
    for a, b, distance, apart in image_measures.same_pictures(candidates, pictures):
        for image, other in ((a, b), (b, a)):
            if image in dev_images and (image not in closest or apart < closest[image][0]):
                closest[image] = (apart, distance, other)
    for image, (apart, distance, other) in closest.items():
        where = "the train split" if other in train_images else "the dev set"
        for r in by_image.get(image, ()):
            found.append(
                (
                    r.id,
                    NEAR_DUPLICATE,
                    1.0 - apart,
                    f"looks like {shown(other)} in {where}: the same picture at thumbnail "
                    f"size (difference {apart:.3f} of its detail; hash distance {distance})",
                )
            )
    return found
