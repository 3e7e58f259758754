"""Index dev errors by confusion pair.

The queue and report group the dev errors by (label, prediction) on every rerun; the old
(project_id, label, prediction) index made SQLite read every example of the project
(170 ms at 200k examples, bench/bench_queue.py). Leading with split and is_error makes it
an index range scan (about 4 ms).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 12:10:35.506899

"""

from collections.abc import Sequence

from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table("examples", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_examples_confusion_pair"))
        batch_op.create_index(
            "ix_examples_errors_by_pair",
            ["project_id", "split", "is_error", "label", "prediction"],
            unique=False,
        )


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table("examples", schema=None) as batch_op:
        batch_op.drop_index("ix_examples_errors_by_pair")
        batch_op.create_index(
            batch_op.f("ix_examples_confusion_pair"),
            ["project_id", "label", "prediction"],
            unique=False,
        )
