"""Runs: a project holds one row per example per model run.

Each project's predictions become its first run, named "1", with every example, tag, review,
comment and corrected label kept. Categories gain a scope ("image" tags carry over to a new
run, "error" tags stay in theirs; existing categories are "image"), and reviews a `carried`
flag for those copied into a new run. The examples table is rebuilt on SQLite, so its
data-version triggers (0007) are made again, now also watching `run_id`.

Downgrade keeps each project's first run and drops the others' examples (with their tags
and reviews): the schema below has room for one set of predictions.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-25 19:30:00.000000

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _bump(project: str) -> str:
    return f"UPDATE projects SET data_version = random() WHERE id = {project};"


def _of_example(pk: str) -> str:
    return f"(SELECT project_id FROM examples WHERE id = {pk})"


#: 0007's columns of examples whose change can move a report number; 0008 adds run_id.
_COLUMNS_0007 = (
    "project_id, example_id, label, prediction, split, is_error, shuffle_key, "
    "corrected_label, review_state"
)
_COLUMNS = _COLUMNS_0007 + ", run_id"


def _triggers(example_columns: str) -> list[str]:
    """0007's data-version triggers (SQLite), with `example_columns` watched on examples."""
    made = []

    def add(name: str, event: str, table: str, body: str) -> None:
        made.append(f"CREATE TRIGGER {name} AFTER {event} ON {table} FOR EACH ROW BEGIN {body} END")

    add("lt_version_examples_insert", "INSERT", "examples", _bump("NEW.project_id"))
    add("lt_version_examples_delete", "DELETE", "examples", _bump("OLD.project_id"))
    add(
        "lt_version_examples_update",
        f"UPDATE OF {example_columns}",
        "examples",
        _bump("OLD.project_id") + " " + _bump("NEW.project_id"),
    )
    for table in ("tags", "reviews"):
        add(f"lt_version_{table}_insert", "INSERT", table, _bump(_of_example("NEW.example_pk")))
        add(f"lt_version_{table}_delete", "DELETE", table, _bump(_of_example("OLD.example_pk")))
        add(
            f"lt_version_{table}_update",
            "UPDATE",
            table,
            _bump(_of_example("OLD.example_pk")) + " " + _bump(_of_example("NEW.example_pk")),
        )
    columns = "project_id, name, archived, marks_incorrect_label, created_at, position"
    add("lt_version_categories_insert", "INSERT", "categories", _bump("NEW.project_id"))
    add("lt_version_categories_delete", "DELETE", "categories", _bump("OLD.project_id"))
    add(
        "lt_version_categories_update",
        f"UPDATE OF {columns}",
        "categories",
        _bump("OLD.project_id") + " " + _bump("NEW.project_id"),
    )
    add(
        "lt_version_projects_update",
        "UPDATE OF name, class_names, human_level_error, eyeball_fraction",
        "projects",
        _bump("NEW.id"),
    )
    return made


def _drop_triggers() -> None:
    """SQLite rebuilds a table to alter it, and a trigger naming it breaks the rebuild: the
    data-version triggers go first and are made again afterwards."""
    if op.get_context().dialect.name != "sqlite":
        return
    names = op.get_bind().exec_driver_sql(
        "SELECT name FROM sqlite_master WHERE type = 'trigger' AND name LIKE 'lt_version_%'"
    )
    for (name,) in names.fetchall():
        op.execute(f"DROP TRIGGER {name}")


def _make_triggers(example_columns: str) -> None:
    if op.get_context().dialect.name == "sqlite":
        for statement in _triggers(example_columns):
            op.execute(statement)


#: The queue's indexes on examples, by their columns after the leading one.
_QUEUE_INDEXES = {
    "ix_examples_queue": ["split", "is_error", "shuffle_key"],
    "ix_examples_state": ["split", "is_error", "review_state"],
    "ix_examples_errors_by_pair": ["split", "is_error", "label", "prediction"],
}


def _queue_indexes(batch_op, *, lead: str) -> None:
    """Make the queue's indexes lead with `lead` (run_id from 0008, project_id before)."""
    for name, columns in _QUEUE_INDEXES.items():
        batch_op.drop_index(name)
        batch_op.create_index(name, [lead, *columns], unique=False)


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("note", sa.Text(), server_default="", nullable=False),
        sa.Column("target_category", sa.String(length=100), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("imported_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_runs_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_runs")),
        sa.UniqueConstraint("project_id", "name", name=op.f("uq_runs_project_id_name")),
    )
    op.execute(
        "INSERT INTO runs (project_id, name, note, created_at, imported_at) "
        "SELECT id, '1', '', created_at, created_at FROM projects ORDER BY id"
    )
    _drop_triggers()
    with op.batch_alter_table("examples", schema=None) as batch_op:
        batch_op.add_column(sa.Column("run_id", sa.Integer(), nullable=True))
    op.execute(
        "UPDATE examples SET run_id = (SELECT runs.id FROM runs "
        "WHERE runs.project_id = examples.project_id)"
    )
    with op.batch_alter_table("examples", schema=None) as batch_op:
        batch_op.alter_column("run_id", existing_type=sa.Integer(), nullable=False)
        batch_op.create_foreign_key(
            batch_op.f("fk_examples_run_id_runs"), "runs", ["run_id"], ["id"], ondelete="CASCADE"
        )
        batch_op.drop_constraint("uq_examples_project_id_example_id", type_="unique")
        batch_op.create_unique_constraint(
            batch_op.f("uq_examples_run_id_example_id"), ["run_id", "example_id"]
        )
        _queue_indexes(batch_op, lead="run_id")
        batch_op.create_index(
            "ix_examples_project_id_example_id", ["project_id", "example_id"], unique=False
        )
    # Plain ADD COLUMN, no table rebuild: SQLite's rebuild would lose the expression and
    # partial unique indexes of categories (0005).
    op.add_column(
        "categories",
        sa.Column("scope", sa.String(length=8), server_default="image", nullable=False),
    )
    if op.get_context().dialect.name != "sqlite":  # SQLite cannot add a CHECK to a table
        op.create_check_constraint(
            op.f("ck_categories_scope"), "categories", "scope IN ('image', 'error')"
        )
    op.add_column(
        "reviews",
        sa.Column("carried", sa.Boolean(), server_default=sa.text("false"), nullable=False),
    )
    _make_triggers(_COLUMNS)


def downgrade() -> None:
    """Downgrade schema."""
    _drop_triggers()
    if op.get_context().dialect.name == "sqlite":  # DROP COLUMN without a rebuild
        op.execute("ALTER TABLE reviews DROP COLUMN carried")
        op.execute("ALTER TABLE categories DROP COLUMN scope")
    else:
        op.drop_constraint(op.f("ck_categories_scope"), "categories", type_="check")
        op.drop_column("categories", "scope")
        op.drop_column("reviews", "carried")
    # Only the first run of each project fits the older schema. (Foreign keys are off
    # while SQLite migrates, so the tags and reviews go first, by hand.)
    later = (
        "SELECT id FROM examples WHERE run_id NOT IN (SELECT min(id) FROM runs GROUP BY project_id)"
    )
    op.execute(f"DELETE FROM tags WHERE example_pk IN ({later})")
    op.execute(f"DELETE FROM reviews WHERE example_pk IN ({later})")
    op.execute(f"DELETE FROM examples WHERE id IN ({later})")
    with op.batch_alter_table("examples", schema=None) as batch_op:
        batch_op.drop_index("ix_examples_project_id_example_id")
        _queue_indexes(batch_op, lead="project_id")
        batch_op.drop_constraint("uq_examples_run_id_example_id", type_="unique")
        batch_op.create_unique_constraint(
            batch_op.f("uq_examples_project_id_example_id"), ["project_id", "example_id"]
        )
        batch_op.drop_constraint("fk_examples_run_id_runs", type_="foreignkey")
        batch_op.drop_column("run_id")
    op.drop_table("runs")
    _make_triggers(_COLUMNS_0007)
