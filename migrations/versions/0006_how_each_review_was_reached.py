"""How each review's example was reached: the sampling design the report's estimate rests on.

A share of the reviewed errors estimates the share of all errors only when the reviewed ones
are a fair sample; reviewers also sort by confidence, filter and pick by hand. Each review now
records how its example was reached (labeltool.models.ReachedBy). Reviews made before this
was recorded are taken as reached from the random queue, the review screen's default.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-25 17:40:00.000000

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table("reviews", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("reached", sa.String(length=24), server_default="random", nullable=False)
        )


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table("reviews", schema=None) as batch_op:
        batch_op.drop_column("reached")
