"""Embeddings (each example's feature vector, for "more like this" and the gallery's clusters)
and dismissed suggestions (a reviewer's "no" to a suggestion on one example).

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-28 10:00:00.000000

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0011"
down_revision: str | Sequence[str] | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "embeddings",
        sa.Column("example_pk", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("vector", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(["example_pk"], ["examples.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("example_pk"),
    )
    op.create_table(
        "suggestion_dismissals",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("example_pk", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("reviewer", sa.String(length=100), nullable=False),
        sa.Column("dismissed_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["example_pk"], ["examples.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("example_pk", "kind", "reviewer"),
    )


def downgrade() -> None:
    # Embeddings are derived (predict or analyze make them again); dismissals are a
    # reviewer's judgement, lost with the table, as the step down says.
    op.drop_table("suggestion_dismissals")
    op.drop_table("embeddings")
