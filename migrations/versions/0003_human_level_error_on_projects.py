"""Human-level error on projects.

The lead's estimate of human-level error (a proxy for Bayes error) lets the report show
avoidable bias next to variance, data mismatch and overfitting to the dev set.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 12:13:19.488266

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table("projects", schema=None) as batch_op:
        batch_op.add_column(sa.Column("human_level_error", sa.Float(), nullable=True))


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table("projects", schema=None) as batch_op:
        batch_op.drop_column("human_level_error")
