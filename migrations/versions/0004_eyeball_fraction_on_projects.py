"""Eyeball fraction on projects.

The share of a large dev set kept as the eyeball part whose errors reviewers look at; the
rest is the blackbox part (see labeltool/eyeball.py).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25 12:25:02.966368

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table("projects", schema=None) as batch_op:
        batch_op.add_column(sa.Column("eyeball_fraction", sa.Float(), nullable=True))


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table("projects", schema=None) as batch_op:
        batch_op.drop_column("eyeball_fraction")
