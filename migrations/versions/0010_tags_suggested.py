"""Which tags came from an accepted suggestion: the review screen shows the categories
`labeltool analyze` suggests, and a reviewer accepts them with one key. Tags made before
this was recorded were all chosen by hand (suggestions were never applied on their own).

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-27 10:00:00.000000

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0010"
down_revision: str | Sequence[str] | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    # Plain ADD COLUMN, no table rebuild (as in 0008).
    op.add_column(
        "tags",
        sa.Column("suggested", sa.Boolean(), server_default=sa.text("false"), nullable=False),
    )


def downgrade() -> None:
    """Downgrade schema."""
    if op.get_context().dialect.name == "sqlite":  # DROP COLUMN without a rebuild
        op.execute("ALTER TABLE tags DROP COLUMN suggested")
    else:
        op.drop_column("tags", "suggested")
