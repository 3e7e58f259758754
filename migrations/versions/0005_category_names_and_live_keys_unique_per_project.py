"""Category names unique per project ignoring case; live keys unique per project.

Two reviewers adding "blurry" and "Blurry" at the same moment both passed the check in
labeltool.categories and both got in; so did two live categories given the same key. The
database now refuses the second: a unique index on (project_id, lower(name)), and a partial
unique index on (project_id, shortcut) over live categories with a key.

Existing data that breaks the new rules is fixed deterministically before the indexes are
built, keeping the oldest category (lowest id) of each clash as it is:
- a later category whose name differs only in case is renamed "<name> (2)", "(3)", ...;
  its tags, reviews and settings stay with it, nothing is merged;
- a later live category sharing a key loses its key (it can be given a free one on the
  Categories screen).
Each change is logged as a warning naming the project and category.

SQLite cannot reflect an expression index: a later batch migration of `categories` copies the
table without the name index and must create it again.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26 10:00:00.000000

"""

import logging
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NAME_INDEX = "uq_categories_project_id_lower_name"
KEY_INDEX = "uq_categories_project_id_live_shortcut"
LIVE_WITH_KEY = "NOT archived AND shortcut IS NOT NULL"
MAX_NAME = 100

log = logging.getLogger("alembic.runtime.migration")


def upgrade() -> None:
    """Upgrade schema."""
    connection = op.get_bind()
    _rename_names_equal_but_for_case(connection)
    _free_keys_shared_by_live_categories(connection)
    op.create_index(NAME_INDEX, "categories", ["project_id", sa.text("lower(name)")], unique=True)
    op.create_index(
        KEY_INDEX,
        "categories",
        ["project_id", "shortcut"],
        unique=True,
        sqlite_where=sa.text(LIVE_WITH_KEY),
        postgresql_where=sa.text(LIVE_WITH_KEY),
    )


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_index(KEY_INDEX, table_name="categories")
    op.drop_index(NAME_INDEX, table_name="categories")


def _rename_names_equal_but_for_case(connection: sa.Connection) -> None:
    rows = connection.execute(
        sa.text("SELECT id, project_id, name, lower(name) FROM categories ORDER BY id")
    ).all()
    taken = {(project_id, lowered) for _id, project_id, _name, lowered in rows}
    seen: set[tuple[int, str]] = set()
    for category_id, project_id, name, lowered in rows:
        if (project_id, lowered) not in seen:
            seen.add((project_id, lowered))
            continue
        number = 2
        while True:
            suffix = f" ({number})"
            candidate = name[: MAX_NAME - len(suffix)] + suffix
            candidate_lowered = connection.execute(
                sa.text("SELECT lower(:name)"), {"name": candidate}
            ).scalar_one()
            if (project_id, candidate_lowered) not in taken:
                break
            number += 1
        connection.execute(
            sa.text("UPDATE categories SET name = :name WHERE id = :id"),
            {"name": candidate, "id": category_id},
        )
        taken.add((project_id, candidate_lowered))
        log.warning(
            "project %s: category %s '%s' renamed '%s' (another differs only in case)",
            project_id,
            category_id,
            name,
            candidate,
        )


def _free_keys_shared_by_live_categories(connection: sa.Connection) -> None:
    rows = connection.execute(
        sa.text(
            f"SELECT id, project_id, name, shortcut FROM categories WHERE {LIVE_WITH_KEY}"
            " ORDER BY id"
        )
    ).all()
    seen: set[tuple[int, str]] = set()
    for category_id, project_id, name, shortcut in rows:
        if (project_id, shortcut) not in seen:
            seen.add((project_id, shortcut))
            continue
        connection.execute(
            sa.text("UPDATE categories SET shortcut = NULL WHERE id = :id"), {"id": category_id}
        )
        log.warning(
            "project %s: category %s '%s' loses key '%s' (an older live category has it)",
            project_id,
            category_id,
            name,
            shortcut,
        )
