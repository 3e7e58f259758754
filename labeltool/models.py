"""The database schema: projects, their runs and examples, error categories, tags and reviews.

A *project* is one dev set and its error analysis; each *run* is one model's predictions
over it (a new model version is a new run). Every example of a run is stored, the correctly
classified ones too, so the dev error rate is known. Reviewers tag the
misclassified dev examples with error *categories*; a *tag* is example x category x
reviewer, so two reviewers can tag the same example independently. A *review* records
that a reviewer finished looking at an example. A project's *members* (labeltool.roles) say
who may do what in it.
"""

from __future__ import annotations

import enum
import secrets
from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

#: Constraint names Alembic can rely on, on SQLite and PostgreSQL alike.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    """Timezone-aware now, the default for every timestamp column."""
    return datetime.now(UTC)


class ReviewState(enum.StrEnum):
    """Where an example stands in the review."""

    UNREVIEWED = "unreviewed"
    REVIEWED = "reviewed"
    SKIPPED = "skipped"
    #: Reviewed before a category was added: the method says to go back over it.
    NEEDS_REREVIEW = "needs re-review"


class ReachedBy(enum.StrEnum):
    """How a reviewed example was reached, which says what the reviewed errors are a sample of.

    A random queue of all errors is a fair sample of them; a random queue of one confusion
    pair is a fair sample of that pair (and the pairs' sizes are known); any other filter, the
    confidence order or a pick by hand is a targeted look. A spreadsheet's rows count as a
    random sample unless its import says they were targeted.
    """

    RANDOM = "random"
    RANDOM_IN_PAIR = "random in pair"
    FILTERED = "filtered"
    CONFIDENCE_ORDER = "confidence order"
    BY_HAND = "by hand"
    SPREADSHEET = "spreadsheet"
    SPREADSHEET_TARGETED = "spreadsheet, targeted"

    @property
    def is_random(self) -> bool:
        """Whether reviews reached this way are a random sample (of all errors or one pair)."""
        return self in (ReachedBy.RANDOM, ReachedBy.RANDOM_IN_PAIR, ReachedBy.SPREADSHEET)


class Scope(enum.StrEnum):
    """What a category is a property of, which says whether its tags carry over to a new run.

    An *image* category (blurry, incorrectly labeled, dark) describes the example itself: its
    tags apply to the example in every run. An *error* category (dog-as-cat) describes one
    model's mistake: its tags belong to the run they were made in.
    """

    IMAGE = "image"
    ERROR = "error"


#: States whose tags count in the report: the example has been looked at.
REVIEWED_STATES = (ReviewState.REVIEWED.value, ReviewState.NEEDS_REREVIEW.value)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Project(Base):
    """One dev set, its categories, and the runs of the classifier over it."""

    __tablename__ = "projects"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    #: Class names in the model's output order.
    class_names: Mapped[list[str]] = mapped_column(JSON, default=list)
    #: Absolute folder that every example's `image` path is relative to.
    images_root: Mapped[str] = mapped_column(Text)
    #: The lead's estimate of human-level error (a proxy for Bayes error), as a fraction.
    human_level_error: Mapped[float | None] = mapped_column(Float)
    #: The share of the dev set kept as the "eyeball" part whose errors are reviewed; None
    #: means the whole dev set (see labeltool.eyeball).
    eyeball_fraction: Mapped[float | None] = mapped_column(Float)
    #: The share of the random queue's errors that two reviewers review, each blind to the
    #: other's tags until both are done (labeltool.double_review); None or 0: one reviewer each.
    overlap_fraction: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    #: A random value that changes whenever the report's numbers may have (SQLite triggers;
    #: see labeltool.report_cache); PostgreSQL uses its snapshot instead. Random from the
    #: start, so two databases' first projects never share one.
    data_version: Mapped[int] = mapped_column(
        BigInteger, default=lambda: secrets.randbits(62), server_default="0"
    )

    examples: Mapped[list[Example]] = relationship(
        back_populates="project", cascade="all, delete-orphan", passive_deletes=True
    )
    runs: Mapped[list[Run]] = relationship(
        back_populates="project",
        cascade="all, delete-orphan",
        passive_deletes=True,
        order_by="Run.id",
    )
    categories: Mapped[list[Category]] = relationship(
        back_populates="project",
        cascade="all, delete-orphan",
        passive_deletes=True,
        order_by="Category.position",
    )

    def __repr__(self) -> str:
        return f"Project(id={self.id}, name={self.name!r})"


class Run(Base):
    """One model's predictions over the project's examples: a version of the classifier.

    The method is a loop (analyse the errors, fix the biggest category, retrain, analyse
    again); each turn of it is a run. The latest run (highest id) is the one the pages and the
    CLI show unless asked for another.
    """

    __tablename__ = "runs"
    __table_args__ = (UniqueConstraint("project_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(100))
    #: What changed in this model, e.g. "v3: deblur augmentation".
    note: Mapped[str] = mapped_column(Text, default="", server_default="")
    #: The category this run set out to fix, for the comparison's "what the fix bought".
    target_category: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    imported_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    project: Mapped[Project] = relationship(back_populates="runs")

    def __repr__(self) -> str:
        return f"Run(id={self.id}, name={self.name!r})"


class Example(Base):
    """One example in one run: the user's id, its image, true and predicted label.

    Each run has its own row for each example (its prediction, review state, tags and
    reviews); what belongs to the example whatever the run (its corrected label, its
    image-scope tags) is kept the same on every run's row (labeltool.labeling).
    """

    __tablename__ = "examples"
    __table_args__ = (
        UniqueConstraint("run_id", "example_id"),
        CheckConstraint(
            "review_state IN ('unreviewed', 'reviewed', 'skipped', 'needs re-review')",
            name="review_state",
        ),
        # The queue: a project's dev errors in a fixed random order, by review state.
        Index("ix_examples_queue", "run_id", "split", "is_error", "shuffle_key"),
        Index("ix_examples_state", "run_id", "split", "is_error", "review_state"),
        # Confusion pairs of the dev errors (GROUP BY label, prediction) without a table scan.
        Index("ix_examples_errors_by_pair", "run_id", "split", "is_error", "label", "prediction"),
        # The same example in the project's other runs (carry-over, comparison).
        Index("ix_examples_project_id_example_id", "project_id", "example_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    #: The user's own identifier for the example (kept as text: "007" stays "007").
    example_id: Mapped[str] = mapped_column(String(255))
    #: Path of the image relative to the project's images root, with forward slashes.
    image: Mapped[str] = mapped_column(Text)
    label: Mapped[str] = mapped_column(String(255))
    prediction: Mapped[str] = mapped_column(String(255))
    confidence: Mapped[float | None] = mapped_column(Float)
    #: {class name: probability}, when the predictions file had prob_<class> columns.
    probabilities: Mapped[dict[str, float] | None] = mapped_column(JSON)
    split: Mapped[str] = mapped_column(String(16), default="dev")
    #: label != prediction, kept as a column so the queue can use an index.
    is_error: Mapped[bool] = mapped_column(Boolean)
    #: A fixed pseudo-random number: ordering by it gives a fair sample of the errors.
    shuffle_key: Mapped[int] = mapped_column(BigInteger)
    comment: Mapped[str] = mapped_column(Text, default="")
    #: The right label, when the dataset's label was wrong ("incorrectly labeled").
    corrected_label: Mapped[str | None] = mapped_column(String(255))
    review_state: Mapped[str] = mapped_column(String(16), default=ReviewState.UNREVIEWED.value)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow
    )

    project: Mapped[Project] = relationship(back_populates="examples")
    run: Mapped[Run] = relationship()
    tags: Mapped[list[Tag]] = relationship(
        back_populates="example", cascade="all, delete-orphan", passive_deletes=True
    )

    @property
    def confusion_pair(self) -> str:
        """The method's name for this kind of error, e.g. "dog-as-cat"."""
        return confusion_pair_name(self.label, self.prediction)

    def __repr__(self) -> str:
        return f"Example(id={self.id}, example_id={self.example_id!r}, {self.confusion_pair})"


class Category(Base):
    """An error category of a project, such as "blurry" or "dog-as-cat"."""

    __tablename__ = "categories"
    __table_args__ = (
        UniqueConstraint("project_id", "name"),
        CheckConstraint("scope IN ('image', 'error')", name="scope"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(100))
    description: Mapped[str] = mapped_column(Text, default="")
    #: The key that toggles the category in the review screen, e.g. "1" or "b".
    shortcut: Mapped[str | None] = mapped_column(String(16))
    colour: Mapped[str] = mapped_column(String(7), default="#4c78a8")
    archived: Mapped[bool] = mapped_column(Boolean, default=False)
    #: This category means the dataset's label was wrong; tagging it asks for the right one.
    marks_incorrect_label: Mapped[bool] = mapped_column(Boolean, default=False)
    #: A Scope value: "image" tags carry over to new runs, "error" tags stay in their run.
    scope: Mapped[str] = mapped_column(
        String(8), default=Scope.IMAGE.value, server_default=Scope.IMAGE.value
    )
    #: The lead's estimate of the effort to fix it (e.g. days), for the second ranking.
    effort: Mapped[float | None] = mapped_column(Float)
    position: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    project: Mapped[Project] = relationship(back_populates="categories")

    def __repr__(self) -> str:
        return f"Category(id={self.id}, name={self.name!r})"


# Races closed in the schema (two reviewers adding a category at the same moment): a name is
# unique in its project ignoring case, and a key toggles at most one live category.
Index(
    "uq_categories_project_id_lower_name",
    Category.project_id,
    func.lower(Category.name),
    unique=True,
)
Index(
    "uq_categories_project_id_live_shortcut",
    Category.project_id,
    Category.shortcut,
    unique=True,
    sqlite_where=text("NOT archived AND shortcut IS NOT NULL"),
    postgresql_where=text("NOT archived AND shortcut IS NOT NULL"),
)


class Tag(Base):
    """Reviewer `reviewer` put example `example_pk` in category `category_id`."""

    __tablename__ = "tags"
    __table_args__ = (
        UniqueConstraint("example_pk", "category_id", "reviewer"),
        Index("ix_tags_category_id", "category_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    example_pk: Mapped[int] = mapped_column(ForeignKey("examples.id", ondelete="CASCADE"))
    category_id: Mapped[int] = mapped_column(ForeignKey("categories.id", ondelete="CASCADE"))
    reviewer: Mapped[str] = mapped_column(String(100))
    tagged_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    #: The reviewer accepted a suggestion (labeltool.signals) to make this tag, rather than
    #: choosing the category themselves.
    suggested: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))

    example: Mapped[Example] = relationship(back_populates="tags")
    category: Mapped[Category] = relationship()


class Review(Base):
    """Reviewer `reviewer` finished looking at example `example_pk` (a per-reviewer record)."""

    __tablename__ = "reviews"
    __table_args__ = (UniqueConstraint("example_pk", "reviewer"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    example_pk: Mapped[int] = mapped_column(ForeignKey("examples.id", ondelete="CASCADE"))
    reviewer: Mapped[str] = mapped_column(String(100))
    reviewed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    #: How the reviewer reached the example (a ReachedBy value); a re-review keeps the first.
    reached: Mapped[str] = mapped_column(
        String(24), default=ReachedBy.RANDOM.value, server_default=ReachedBy.RANDOM.value
    )
    #: Copied from the previous run when this run was imported (the example was an error in
    #: both): it looked at the example's image-scope categories, not at this run's error ones.
    carried: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))


class Signal(Base):
    """What `labeltool analyze` found about example `example_pk`: a likely label error, a
    blurry or dark image, a near-duplicate... Each is a suggestion a reviewer confirms or
    ignores; nothing here is a tag.
    """

    __tablename__ = "signals"
    __table_args__ = (UniqueConstraint("example_pk", "kind"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    example_pk: Mapped[int] = mapped_column(ForeignKey("examples.id", ondelete="CASCADE"))
    #: A labeltool.signals kind, e.g. "likely label error", "blurry", "near duplicate".
    kind: Mapped[str] = mapped_column(String(32))
    #: Larger = more confident (comparable within a kind only).
    score: Mapped[float] = mapped_column(Float)
    #: One line in the method's words, e.g. "the model gives 0.97 to 4, the label 9 only 0.01".
    reason: Mapped[str] = mapped_column(Text)
    computed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ImageMeasure(Base):
    """What `labeltool analyze` measured of one image of a project, kept so that a second
    analysis measures only the images it has not seen (labeltool.image_measures)."""

    __tablename__ = "image_measures"
    __table_args__ = (UniqueConstraint("project_id", "image"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    image: Mapped[str] = mapped_column(Text)
    blur: Mapped[float | None] = mapped_column(Float)
    brightness: Mapped[float | None] = mapped_column(Float)
    contrast: Mapped[float | None] = mapped_column(Float)
    entropy: Mapped[float | None] = mapped_column(Float)
    width: Mapped[int | None] = mapped_column(Integer)
    height: Mapped[int | None] = mapped_column(Integer)
    #: Perceptual hash (hex), for near-duplicates.
    phash: Mapped[str | None] = mapped_column(String(64))
    #: Why the image could not be measured (missing, unreadable), or None.
    problem: Mapped[str | None] = mapped_column(Text)


class Embedding(Base):
    """One example's feature vector: the model's penultimate-layer features (from `labeltool
    predict` or the predictions file), or, when a run brings none, a small picture of the
    image's pixels that `labeltool analyze` makes. "More like this" and the gallery's clusters
    compare these (labeltool.similar)."""

    __tablename__ = "embeddings"

    example_pk: Mapped[int] = mapped_column(
        ForeignKey("examples.id", ondelete="CASCADE"), primary_key=True
    )
    #: "model" (the classifier's own features) or "pixels" (labeltool's stand-in).
    source: Mapped[str] = mapped_column(String(16))
    #: float32 values, little-endian, packed (numpy's tobytes()).
    vector: Mapped[bytes] = mapped_column(LargeBinary)


class Dismissal(Base):
    """A reviewer said no to a suggestion on an example: the review screen stops showing it to
    them. The suggestion itself stays (the suggesters' precision counts it as a miss)."""

    __tablename__ = "suggestion_dismissals"
    __table_args__ = (UniqueConstraint("example_pk", "kind", "reviewer"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    example_pk: Mapped[int] = mapped_column(ForeignKey("examples.id", ondelete="CASCADE"))
    #: The signal's kind, as in Signal.kind.
    kind: Mapped[str] = mapped_column(String(32))
    reviewer: Mapped[str] = mapped_column(String(100))
    dismissed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ProjectMember(Base):
    """User `user` has `role` in project `project_id`: lead, reviewer or viewer
    (labeltool.roles says what each may do). A project without members is open to anyone."""

    __tablename__ = "project_members"
    __table_args__ = (
        UniqueConstraint("project_id", "user"),
        CheckConstraint("role IN ('lead', 'reviewer', 'viewer')", name="role"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    #: The name the user acts as: the Reviewer name on the pages, --as on the command line.
    user: Mapped[str] = mapped_column(String(100))
    #: A labeltool.roles.Role value.
    role: Mapped[str] = mapped_column(String(16))
    added_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Adjudication(Base):
    """A lead settled a disagreement: example `example_pk`'s categories are those in
    AdjudicatedTag, whatever its reviewers tagged (labeltool.double_review)."""

    __tablename__ = "adjudications"

    example_pk: Mapped[int] = mapped_column(
        ForeignKey("examples.id", ondelete="CASCADE"), primary_key=True
    )
    lead: Mapped[str] = mapped_column(String(100))
    decided_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class AdjudicatedTag(Base):
    """One category of an adjudicated example, as the lead decided it."""

    __tablename__ = "adjudicated_tags"

    example_pk: Mapped[int] = mapped_column(
        ForeignKey("adjudications.example_pk", ondelete="CASCADE"), primary_key=True
    )
    category_id: Mapped[int] = mapped_column(
        ForeignKey("categories.id", ondelete="CASCADE"), primary_key=True
    )


class AuditEvent(Base):
    """One change to a project, kept for good: who made it, when, the old and the new value
    (labeltool.audit). Rows are only ever added; an undo is a new change that names the one
    it undoes. The rows of one transaction share a `change_id`: one action of a person.
    """

    __tablename__ = "audit_events"
    __table_args__ = (
        Index("ix_audit_events_project_id_id", "project_id", "id"),
        Index("ix_audit_events_example_pk", "example_pk"),
        Index("ix_audit_events_project_id_user_id", "project_id", "user", "id"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    #: The transaction the change was made in: one action of a person (undone as one).
    change_id: Mapped[str] = mapped_column(String(32))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    #: Who made the change ("" when nobody was named, on an open project).
    user: Mapped[str] = mapped_column(String(100), default="")
    #: What changed: an audit.Kind value ("tag", "comment", "review state", "category"...).
    kind: Mapped[str] = mapped_column(String(24))
    #: Which part of it: a tag's category name, a setting's name, a category's field.
    field: Mapped[str] = mapped_column(String(100), default="")
    old: Mapped[str | None] = mapped_column(Text)
    new: Mapped[str | None] = mapped_column(Text)
    #: The example changed (kept as the user's id and run too, should the run be deleted).
    example_pk: Mapped[int | None] = mapped_column(ForeignKey("examples.id", ondelete="SET NULL"))
    example_id: Mapped[str | None] = mapped_column(String(255))
    run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id", ondelete="SET NULL"))
    category_id: Mapped[int | None] = mapped_column(
        ForeignKey("categories.id", ondelete="SET NULL")
    )
    #: Whose tag or review it is, when that is not `user` (a run's carry-over, a sheet).
    reviewer: Mapped[str | None] = mapped_column(String(100))
    #: The change_id this row's change undoes, for an undo.
    undoes: Mapped[str | None] = mapped_column(String(32))


def confusion_pair_name(label: str, prediction: str) -> str:
    """Name a confusion pair the way the method does: true label "-as-" predicted label."""
    return f"{label}-as-{prediction}"
