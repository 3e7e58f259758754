"""A data version on projects, so the report can keep its numbers while nothing changed.

`projects.data_version` gets a fresh random value, on SQLite, from triggers on every row the
ceiling report reads (labeltool/report_cache.py says which and why). PostgreSQL uses its
snapshot instead and keeps the column at 0: a counter row there would make every reviewer's
write wait on the others'.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-25 19:00:00.000000

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: Columns whose change can move a report number (a comment, image path, confidence,
#: colour, description or effort cannot).
EXAMPLE_COLUMNS = (
    "project_id, example_id, label, prediction, split, is_error, shuffle_key, "
    "corrected_label, review_state"
)
CATEGORY_COLUMNS = "project_id, name, archived, marks_incorrect_label, created_at, position"
PROJECT_COLUMNS = "name, class_names, human_level_error, eyeball_fraction"


def _bump(project: str) -> str:
    return f"UPDATE projects SET data_version = random() WHERE id = {project};"


def _of_example(pk: str) -> str:
    return f"(SELECT project_id FROM examples WHERE id = {pk})"


def triggers() -> dict[str, str]:
    """{trigger name: CREATE TRIGGER statement} for SQLite."""
    made = {}

    def add(name: str, event: str, table: str, body: str) -> None:
        made[name] = f"CREATE TRIGGER {name} AFTER {event} ON {table} FOR EACH ROW BEGIN {body} END"

    add("lt_version_examples_insert", "INSERT", "examples", _bump("NEW.project_id"))
    add("lt_version_examples_delete", "DELETE", "examples", _bump("OLD.project_id"))
    add(
        "lt_version_examples_update",
        f"UPDATE OF {EXAMPLE_COLUMNS}",
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
    add("lt_version_categories_insert", "INSERT", "categories", _bump("NEW.project_id"))
    add("lt_version_categories_delete", "DELETE", "categories", _bump("OLD.project_id"))
    add(
        "lt_version_categories_update",
        f"UPDATE OF {CATEGORY_COLUMNS}",
        "categories",
        _bump("OLD.project_id") + " " + _bump("NEW.project_id"),
    )
    add(
        "lt_version_projects_update",
        f"UPDATE OF {PROJECT_COLUMNS}",
        "projects",
        _bump("NEW.id"),
    )
    return made


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table("projects", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("data_version", sa.BigInteger(), server_default="0", nullable=False)
        )
    if op.get_context().dialect.name == "sqlite":
        for statement in triggers().values():
            op.execute(statement)


def downgrade() -> None:
    """Downgrade schema."""
    if op.get_context().dialect.name == "sqlite":
        for name in triggers():
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
    with op.batch_alter_table("projects", schema=None) as batch_op:
        batch_op.drop_column("data_version")
