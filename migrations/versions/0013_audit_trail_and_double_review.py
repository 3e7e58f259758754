"""Audit trail (every change with who, when, old and new), double review (the overlap share)
and adjudication (a lead's decision on a disagreement).

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-26 14:00:00.000000

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0013"
down_revision: str | Sequence[str] | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A plain ADD COLUMN: a batch copy of `projects` would trip the data-version triggers
    # (0007) that name it.
    op.add_column("projects", sa.Column("overlap_fraction", sa.Float(), nullable=True))
    op.create_table(
        "adjudications",
        sa.Column("example_pk", sa.Integer(), nullable=False),
        sa.Column("lead", sa.String(length=100), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["example_pk"], ["examples.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("example_pk"),
    )
    op.create_table(
        "adjudicated_tags",
        sa.Column("example_pk", sa.Integer(), nullable=False),
        sa.Column("category_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["example_pk"], ["adjudications.example_pk"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["category_id"], ["categories.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("example_pk", "category_id"),
    )
    op.create_table(
        "audit_events",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("change_id", sa.String(length=32), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("user", sa.String(length=100), nullable=False),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("field", sa.String(length=100), nullable=False),
        sa.Column("old", sa.Text(), nullable=True),
        sa.Column("new", sa.Text(), nullable=True),
        sa.Column("example_pk", sa.Integer(), nullable=True),
        sa.Column("example_id", sa.String(length=255), nullable=True),
        sa.Column("run_id", sa.Integer(), nullable=True),
        sa.Column("category_id", sa.Integer(), nullable=True),
        sa.Column("reviewer", sa.String(length=100), nullable=True),
        sa.Column("undoes", sa.String(length=32), nullable=True),
        sa.ForeignKeyConstraint(["project_id"], ["projects.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["example_pk"], ["examples.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["category_id"], ["categories.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_audit_events_project_id_id", "audit_events", ["project_id", "id"])
    op.create_index("ix_audit_events_example_pk", "audit_events", ["example_pk"])
    op.create_index(
        "ix_audit_events_project_id_user_id", "audit_events", ["project_id", "user", "id"]
    )


def downgrade() -> None:
    # The history of changes and the leads' adjudications are lost with their tables; the
    # tags themselves stay. The overlap share goes too: everyone reviews alone again.
    op.drop_index("ix_audit_events_project_id_user_id", table_name="audit_events")
    op.drop_index("ix_audit_events_example_pk", table_name="audit_events")
    op.drop_index("ix_audit_events_project_id_id", table_name="audit_events")
    op.drop_table("audit_events")
    op.drop_table("adjudicated_tags")
    op.drop_table("adjudications")
    # SQLite 3.35+ and PostgreSQL both drop a column in place (no table copy; see upgrade).
    op.execute("ALTER TABLE projects DROP COLUMN overlap_fraction")
